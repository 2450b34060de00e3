"""The bridges as research code uses them: a whole torch.compile'd training step,
torch.func transforms over index arithmetic, index arrays of another library."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from corpus import ELMAN

import tensorcalc as tc

torch = pytest.importorskip("torch")


def test_a_compiled_training_step_runs_and_agrees() -> None:
    f = tc.to_torch("L = sum[n](softplus(X[n,d] w[d])) + 0.5 w[d] w[d]")
    X = torch.tensor(np.random.default_rng(0).normal(size=(8, 3)))

    def step(w: torch.Tensor) -> torch.Tensor:
        w = w.detach().requires_grad_()
        f(X=X, w=w).backward()
        return w.grad

    compiled = torch.compile(step, fullgraph=False)  # graph breaks around tensorcalc
    w = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(2):  # the second call runs what the first compiled
            got = compiled(w + k)
            z = X.numpy() @ (w + k).numpy()
            expected = X.numpy().T @ (1 / (1 + np.exp(-z))) + (w + k).numpy()
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_a_compiled_training_step_of_a_recurrence_trains_as_plain_torch_does() -> None:
    """An Elman RNN written as a recurrence, trained for three SGD steps by a
    torch.compile'd step through tc.to_torch, against the same RNN written in torch
    (a Python loop over the steps) and trained the same way."""
    f = tc.to_torch(ELMAN)
    rng = np.random.default_rng(3)
    T, H, M = 12, 4, 3
    start = {"W": 0.5 * rng.normal(size=(H, H)), "U": 0.5 * rng.normal(size=(H, M)),
             "b": 0.1 * rng.normal(size=H)}
    data = {k: torch.tensor(v) for k, v in {"h0": 0.5 * rng.normal(size=H),
                                            "x": rng.normal(size=(T, M)),
                                            "y": rng.normal(size=(T, H))}.items()}

    def plain(W: torch.Tensor, U: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, total = data["h0"], torch.zeros((), dtype=torch.float64)
        for t in range(T):
            h = torch.tanh(W @ h + U @ data["x"][t] + b)
            total = total + h @ data["y"][t]
        return total

    def train(loss: object, compile_it: bool) -> list[np.ndarray]:
        params = [torch.tensor(start[k], requires_grad=True) for k in ("W", "U", "b")]
        opt = torch.optim.SGD(params, lr=0.05)

        def step() -> torch.Tensor:
            opt.zero_grad()
            value = loss(*params)  # type: ignore[operator]
            value.backward()
            opt.step()
            return value.detach()

        run = torch.compile(step, fullgraph=False) if compile_it else step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            losses = [float(run()) for _ in range(3)]
        assert losses[-1] < losses[0]  # it trains
        return [p.detach().numpy() for p in params] + [np.array(losses)]

    ours = train(lambda W, U, b: f(W=W, U=U, b=b, **data), compile_it=True)
    for got, want in zip(ours, train(plain, compile_it=False)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_torch_func_hessian_and_vmap_grad_through_a_shifted_read() -> None:
    f = tc.to_torch("d[i] = x[i+1] - x[i]\nL = d[q]^2")
    x = torch.tensor([1.0, 3, 2, 5, 4], dtype=torch.float64)
    h = torch.func.hessian(lambda v: f(x=v))(x)
    expected = 2 * (np.diag([1.0, 2, 2, 2, 1]) - np.eye(5, k=1) - np.eye(5, k=-1))
    np.testing.assert_allclose(h.numpy(), expected)
    g = torch.func.vmap(torch.func.grad(lambda v: f(x=v)))(torch.stack([x, 2 * x]))
    d = np.diff(x.numpy())
    one = np.r_[0, 2 * d] - np.r_[2 * d, 0]
    np.testing.assert_allclose(g.numpy(), np.stack([one, 2 * one]))


def test_an_index_array_of_another_library_is_moved_to_the_numbers_library() -> None:
    jnp = pytest.importorskip("jax.numpy")
    E = np.random.default_rng(1).normal(size=(4, 3))
    t = np.array([0, 2, 2, 1])
    g = tc.grad("L = E[t[n],j]^2", "E")
    expected = g(E=E, t=t)
    for e, i in [(E, torch.tensor(t)), (torch.tensor(E), jnp.asarray(t)),
                 (jnp.asarray(E), torch.tensor(t))]:
        np.testing.assert_allclose(np.asarray(g(E=e, t=i)), expected)


def test_a_traced_index_array_beside_numpy_numbers_is_named() -> None:
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    f = tc.to_jax("L = E[t[n],j]^2")
    E = np.ones((4, 3))
    ts = jnp.asarray(np.array([[0, 1], [2, 3]]))
    with pytest.raises(tc.InputError, match="index array t is a JAX array.*NumPy"):
        jax.vmap(lambda t: f(E=E, t=t))(ts)
    np.testing.assert_allclose(jax.vmap(lambda t: f(E=jnp.asarray(E), t=t))(ts), [6.0, 6.0])

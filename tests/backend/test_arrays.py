"""Arrays of other libraries stay in their library; torch and JAX differentiate through us.

Each library's tests skip cleanly where it is not installed (CI installs them all).
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc

MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"
SHAPES = {"X": (3, 4), "W": (4, 5), "c": (5,), "V": (5, 2), "T": (3, 2)}


def numpy_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in SHAPES.items()}


def mlp_grad_w(X, W, c, V, T):  # noqa: N803 - the names of the formula
    H = np.tanh(X @ W + c)
    return X.T @ ((2 * (H @ V - T)) @ V.T * (1 - H * H))


PROGRAMS = [
    ("evaluate", lambda: tc.compile(MLP), lambda a: ((np.tanh(a["X"] @ a["W"] + a["c"]) @ a["V"]
                                                      - a["T"]) ** 2).sum()),
    ("grad", lambda: tc.grad(MLP, "W"), lambda a: mlp_grad_w(**a)),
    ("jacobian", lambda: tc.derive("y[i] = sigmoid(x[i])", "x"), None),
]


# --- torch ----------------------------------------------------------------------


def test_torch_tensors_stay_torch_and_keep_float32() -> None:
    torch = pytest.importorskip("torch")
    a = numpy_arrays()
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in a.items()}
    for _, make, reference in PROGRAMS[:2]:
        value = make()(**tensors)
        assert isinstance(value, torch.Tensor) and value.dtype == torch.float32
        np.testing.assert_allclose(value.numpy(), reference(a), rtol=1e-4, atol=1e-5)


def test_torch_jacobian_dense_and_compact() -> None:
    torch = pytest.importorskip("torch")
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    d = tc.derive("y[i] = sigmoid(x[i])", "x")
    s = torch.sigmoid(x)
    dense = d(x=x)
    assert isinstance(dense, torch.Tensor)
    torch.testing.assert_close(dense, torch.diag(s * (1 - s)))
    c = d.evaluate(compact=True, x=x)
    assert isinstance(c.core, torch.Tensor) and tuple(c.core.shape) == (5,)
    torch.testing.assert_close(c.toarray(), dense)


# Dense derivatives with deltas: one tie, two ties, a tie between axes that are not
# neighbours, against NumPy's (a diagonal view of NumPy's zeros) and torch.func's own.
DELTAS = [
    ("Y[i,j] = X[i,k] W[k,j]", "X", {"X": (3, 4), "W": (4, 2)}),
    ("Y[i,j] = tanh(X[i,j])", "X", {"X": (3, 4)}),
    ("L = (X[m,p] W[p,q] - Y[m,q])^2", "W", {"X": (5, 3), "W": (3, 2), "Y": (5, 2)}),
    ("Y[i,j,k] = A[i,k] B[j]", "A", {"A": (2, 3), "B": (4,)}),
]


@pytest.mark.parametrize("src, wrt, shapes", DELTAS)
def test_torch_dense_derivatives_with_deltas(src, wrt, shapes) -> None:
    """On torch the delta structure is written into a diagonal view of zeros made like
    the core; the same values as NumPy's, and under ``vmap`` as a loop's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    a = {k: rng.normal(size=v) for k, v in shapes.items()}
    d = tc.derive(src, wrt) if not src.startswith("L") else tc.hessian(src, wrt)
    t = {k: torch.tensor(v) for k, v in a.items()}
    np.testing.assert_allclose(d(**t).numpy(), d(**a), rtol=1e-12, atol=1e-12)
    other = next(k for k in a if k != wrt) if len(a) > 1 else wrt
    batch = torch.tensor(rng.normal(size=(3, *shapes[other])))
    got = torch.func.vmap(lambda v: d(**{**t, other: v}))(batch)
    torch.testing.assert_close(got, torch.stack([d(**{**t, other: v}) for v in batch]))


def test_to_torch_backward_is_the_symbolic_vjp() -> None:
    torch = pytest.importorskip("torch")
    a = numpy_arrays(1)
    ours = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    loss = tc.to_torch(MLP)(**ours)
    loss.backward()
    X, W, c, V, T = (theirs[k] for k in "XWcVT")
    ((torch.tanh(X @ W + c) @ V - T) ** 2).sum().backward()
    for k in a:
        torch.testing.assert_close(ours[k].grad, theirs[k].grad)


def test_to_torch_in_a_module_with_a_nonscalar_output() -> None:
    torch = pytest.importorskip("torch")
    layer = tc.to_torch("H[b,h] = tanh(X[b,d] W[d,h] + c[h])")

    class Layer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
            self.c = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))

        def forward(self, x):
            return layer(X=x, W=self.W, c=self.c)

    model = Layer()
    x = torch.randn(6, 4, dtype=torch.float64)
    (model(x) ** 3).sum().backward()
    W = model.W.detach().clone().requires_grad_()
    c = model.c.detach().clone().requires_grad_()
    (torch.tanh(x @ W + c) ** 3).sum().backward()
    torch.testing.assert_close(model.W.grad, W.grad)
    torch.testing.assert_close(model.c.grad, c.grad)


def test_to_torch_names_its_inputs() -> None:
    torch = pytest.importorskip("torch")
    f = tc.to_torch("y[i] = W[i,j] x[j]")
    with pytest.raises(tc.InputError, match="unknown: z"):
        f(W=torch.ones(2, 2), x=torch.ones(2), z=torch.ones(2))


# --- JAX ------------------------------------------------------------------------


@pytest.fixture()
def jax64():
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


def test_jax_arrays_stay_jax(jax64) -> None:
    jnp = jax64.numpy
    a = numpy_arrays()
    arrays = {k: jnp.asarray(v) for k, v in a.items()}
    value = tc.grad(MLP, "W")(**arrays)
    assert isinstance(value, jax64.Array)
    np.testing.assert_allclose(np.asarray(value), mlp_grad_w(**a), rtol=1e-10)
    f32 = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in a.items()}
    assert tc.compile(MLP)(**f32).dtype == jnp.float32


def test_to_jax_gradient_under_jit(jax64) -> None:
    jnp = jax64.numpy
    a = {k: jnp.asarray(v) for k, v in numpy_arrays(2).items()}
    f = tc.to_jax(MLP)

    def ours(W):  # noqa: N803
        return f(**{**a, "W": W})

    def theirs(W):  # noqa: N803
        return jnp.sum((jnp.tanh(a["X"] @ W + a["c"]) @ a["V"] - a["T"]) ** 2)

    expected = jax64.grad(theirs)(a["W"])
    np.testing.assert_allclose(jax64.grad(ours)(a["W"]), expected, rtol=1e-10)
    np.testing.assert_allclose(jax64.jit(jax64.grad(ours))(a["W"]), expected, rtol=1e-10)


# --- Dask -----------------------------------------------------------------------


def test_dask_arrays_stay_lazy() -> None:
    da = pytest.importorskip("dask.array")
    a = numpy_arrays(3)
    chunked = {k: da.from_array(v, chunks=2) for k, v in a.items()}
    g = tc.grad(MLP, "W")(**chunked)
    assert isinstance(g, da.Array)  # nothing computed yet
    np.testing.assert_allclose(g.compute(), mlp_grad_w(**a), rtol=1e-10)
    y = tc.evaluate("Y[i,j] = X[i,k] W[k,j]", X=chunked["X"], W=chunked["W"])
    assert isinstance(y, da.Array)
    np.testing.assert_allclose(y.compute(), a["X"] @ a["W"], rtol=1e-12)

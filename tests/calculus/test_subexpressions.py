"""Pieces of an expression that a derivative would compute again are computed once, by a
statement of their own (calculus/subexpressions.py): LayerNorm's ``x - mu`` and
``1/sqrt(v + eps)``, a Gaussian process's kernel without its noise. Values and
derivatives to second order against JAX (float64), torch and central differences;
what is printed; what is left alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorcalc as tc
from tests.fd import numeric_jacobian
from tests.support import EXACT

LAYERNORM = """
mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
y[b,d] = (x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d]
L = sum[b,d]((y[b,d] - T[b,d])^2)
"""
GP = """
K[i,j] = exp(-0.5 exp(-2 ll) sum[n]((X[i,n] - X[j,n])^2)) + 0.1 delta[i,j]
L = 0.5 y[i] inv[i,j](K[i,j]) y[j] + 0.5 logdet[i,j](K[i,j])
"""
RNG = np.random.default_rng(8)

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _layernorm(x: Any, g: Any, be: Any, T: Any) -> Any:  # noqa: N803 - the program's names
    mu = x.mean(axis=1, keepdims=True)
    v = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return jnp.sum(((x - mu) / jnp.sqrt(v + 1e-5) * g + be - T) ** 2)


def _gp(ll: Any, X: Any, y: Any) -> Any:  # noqa: N803
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    K = jnp.exp(-0.5 * jnp.exp(-2 * ll) * D) + 0.1 * jnp.eye(len(y))
    return 0.5 * y @ jnp.linalg.inv(K) @ y + 0.5 * jnp.linalg.slogdet(K)[1]


def _layernorm_arrays(b: int = 4, d: int = 6) -> dict[str, np.ndarray]:
    return {"x": RNG.standard_normal((b, d)), "g": 1 + 0.1 * RNG.standard_normal(d),
            "be": RNG.standard_normal(d), "T": RNG.standard_normal((b, d))}


def _gp_arrays(n: int = 6) -> dict[str, np.ndarray]:
    return {"X": RNG.standard_normal((n, 2)), "y": RNG.standard_normal(n),
            "ll": np.asarray(0.2)}


def _lines(p: tc.Program) -> dict[str, str]:
    """Each statement's printed line, by its name."""
    return {line.split("[")[0].split(" =")[0]: line for line in str(p).splitlines()
            if "=" in line and not line.startswith("input")}


def _rhs(line: str) -> str:
    return line.split(" = ", 1)[1]


def test_layernorm_gradient_reads_the_centred_input_and_the_inverse_root() -> None:
    g = tc.grad(LAYERNORM, "x")
    lines = _lines(g)
    assert lines["x_mu"] == "x_mu[b,d] = x[b,d] - mu[b]"
    assert lines["v"] == "v[b] = mean[d](x_mu[b,d]^2)"  # the forward pass reads it too
    assert lines["v_pow"] == "v_pow[b] = 1 / sqrt(v[b] + 1e-05)"
    derivative = [_rhs(line) for name, line in lines.items() if name.endswith(("_bar", "_dx"))]
    assert len(derivative) == 4 and not any("x[" in rhs or "sqrt" in rhs for rhs in derivative)
    # the counts are named by x_mu's axis: no input is declared only for their sizes
    assert "size(q)" in lines["dL_dx"] and not str(g).startswith("input")
    a = _layernorm_arrays()
    np.testing.assert_allclose(g(**a), jax.grad(_layernorm)(*map(jnp.asarray, a.values())),
                               **EXACT)


def test_layernorm_hessian_and_other_sizes() -> None:
    h = tc.hessian(LAYERNORM, "x")
    for b, d in ((3, 5), (2, 7)):  # the counts are sized by x_mu's axis, at any size
        a = _layernorm_arrays(b, d)
        expected = jax.hessian(_layernorm)(*map(jnp.asarray, a.values()))
        np.testing.assert_allclose(h(**a), expected, rtol=1e-9, atol=1e-10)


def test_gp_gradient_reuses_the_kernel_of_the_forward_pass() -> None:
    g = tc.grad(GP, "ll")
    lines = _lines(g)
    assert lines["K"].startswith("K[i,j] = ") and "exp(" not in lines["K"]
    assert "exp(-sum" not in lines["dL_dll"]
    a = _gp_arrays()
    expected = jax.grad(_gp)(jnp.asarray(0.2), jnp.asarray(a["X"]), jnp.asarray(a["y"]))
    np.testing.assert_allclose(g(**a), expected, **EXACT)


def test_gp_second_derivative_against_central_differences() -> None:
    g, h = tc.grad(GP, "ll"), tc.hessian(GP, "ll")
    a = _gp_arrays()
    numeric = numeric_jacobian(g, "ll", a)
    np.testing.assert_allclose(h(**a), numeric, rtol=1e-6, atol=1e-8)
    expected = jax.hessian(_gp)(jnp.asarray(0.2), jnp.asarray(a["X"]), jnp.asarray(a["y"]))
    np.testing.assert_allclose(h(**a), expected, rtol=1e-9)


def test_to_torch_double_backward_through_the_named_pieces() -> None:
    torch = pytest.importorskip("torch")
    f = tc.to_torch(LAYERNORM)
    a = {k: torch.tensor(v, requires_grad=(k == "x")) for k, v in _layernorm_arrays().items()}
    (grad,) = torch.autograd.grad(f(**a), a["x"], create_graph=True)
    v = torch.tensor(RNG.standard_normal(a["x"].shape))
    (hv,) = torch.autograd.grad((grad * v).sum(), a["x"])
    arrays = [jnp.asarray(t.detach().numpy()) for t in a.values()]
    expected = jax.jvp(lambda x: jax.grad(_layernorm)(x, *arrays[1:]), (arrays[0],),
                       (jnp.asarray(v.numpy()),))[1]
    np.testing.assert_allclose(hv.numpy(), expected, rtol=1e-9, atol=1e-10)


def test_an_elementwise_function_of_one_tensor_stays_inline() -> None:
    """``tanh(H)``-like pieces cost the same pass to compute as to read: not named."""
    g = tc.grad("H[b,h] = tanh(X[b,d] W[d,h])\nL = sum[b,h](H[b,h]^2) + sum[b,h](exp(H[b,h]))",
                "W")
    assert not any(name.endswith(("_pow", "_exp", "_tanh")) for name in _lines(g))


def test_statements_with_index_arithmetic_are_left_as_written(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Their ranges belong to them: ``(x[i+1] - x[i])`` is not named, and the derivative
    is the one made without the pass."""
    from tensorcalc import derivatives

    src = "y[i] = tanh(x[i+1] - x[i])\nL = sum[i](y[i]^2) + sum[i](tanh(x[i+1] - x[i]))"
    g = tc.grad(src, "x")
    without = tuple(p for p in derivatives.PASSES if p.__name__ != "share_forward_pieces")
    monkeypatch.setattr(derivatives, "PASSES", without)
    assert str(g) == str(tc.grad(src, "x"))
    x = RNG.standard_normal(7)
    np.testing.assert_allclose(g(x=x), numeric_jacobian(tc.compile(src), "x", {"x": x}),
                               rtol=1e-6, atol=1e-8)

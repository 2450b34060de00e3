"""The research formulas of ``examples/research_formulas.py`` (LayerNorm, RMSNorm,
BatchNorm, label-smoothed cross entropy, an exact-GELU MLP, causal self-attention, a
multiclass hinge, Huber, Poisson and Dirichlet log-likelihoods, 2×2 average and max
pooling), each written as in a paper: gradient and Hessian against JAX in float64 (the
same formulas written by hand in jax.numpy), the printed gradient compiled again,
``to_python``, and torch and JAX arrays through the gradient."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

import tensorcalc as tc
from tests.support import EXACT, ROOT, close

_spec = importlib.util.spec_from_file_location("research_formulas",
                                               ROOT / "examples" / "research_formulas.py")
assert _spec is not None and _spec.loader is not None
formulas = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(formulas)

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
jsp = jax.scipy.special


def _layernorm(x: Any, g: Any, be: Any, T: Any) -> Any:  # noqa: N803 - the program's names
    mu = x.mean(axis=1, keepdims=True)
    v = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return jnp.sum(((x - mu) / jnp.sqrt(v + 1e-5) * g + be - T) ** 2)


def _rmsnorm(x: Any, g: Any, T: Any) -> Any:  # noqa: N803
    r = jnp.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-6)
    return jnp.sum((x / r * g - T) ** 2)


def _batchnorm(x: Any, g: Any, be: Any, T: Any) -> Any:  # noqa: N803
    mu = x.mean(axis=0)
    v = ((x - mu) ** 2).mean(axis=0)
    return jnp.sum(((x - mu) / jnp.sqrt(v + 1e-5) * g + be - T) ** 2)


def _smoothed(Z: Any, t: Any) -> Any:  # noqa: N803
    picked = jnp.take_along_axis(Z, t[:, None], axis=1)[:, 0]
    return jnp.sum(jax.nn.logsumexp(Z, axis=1) - 0.9 * picked - 0.1 * Z.mean(axis=1))


def _gelu_mlp(X: Any, W1: Any, b1: Any, W2: Any, T: Any) -> Any:  # noqa: N803
    H = jax.nn.gelu(X @ W1 + b1, approximate=False)
    return jnp.sum((H @ W2 - T) ** 2)


def _attention(Q: Any, K: Any, V: Any, T: Any) -> Any:  # noqa: N803
    S = Q @ K.T / jnp.sqrt(Q.shape[1])
    S = jnp.where(jnp.tril(jnp.ones(S.shape, bool)), S, -jnp.inf)
    return jnp.sum((jax.nn.softmax(S, axis=1) @ V - T) ** 2)


def _hinge(Z: Any, t: Any) -> Any:  # noqa: N803
    picked = jnp.take_along_axis(Z, t[:, None], axis=1)
    others = jnp.arange(Z.shape[1])[None, :] != t[:, None]
    return jnp.sum(jnp.where(others, jax.nn.relu(1 + Z - picked), 0.0))


def _huber(X: Any, w: Any, y: Any) -> Any:  # noqa: N803
    r = X @ w - y
    return jnp.sum(jnp.where(jnp.abs(r) <= 1, 0.5 * r**2, jnp.abs(r) - 0.5))


def _poisson(X: Any, w: Any, y: Any) -> Any:  # noqa: N803
    eta = X @ w
    return jnp.sum(y * eta - jnp.exp(eta) - jsp.gammaln(y + 1))


def _dirichlet(la: Any, p: Any) -> Any:
    a = jnp.exp(la)
    return p.shape[0] * (jsp.gammaln(a.sum()) - jsp.gammaln(a).sum()) + \
        jnp.sum((a - 1) * jnp.log(p))


def _pool(reduce: str) -> Any:
    def loss(X: Any, W: Any) -> Any:  # noqa: N803
        blocks = X.reshape(3, 2, 3, 2)
        P = blocks.mean(axis=(1, 3)) if reduce == "mean" else blocks.max(axis=(1, 3))
        return jnp.sum(P**2 * W)
    return loss


# Each formula's loss in jax.numpy, its arguments in the order of the example's inputs.
JAX_LOSSES = {
    "LayerNorm": _layernorm, "RMSNorm": _rmsnorm, "BatchNorm": _batchnorm,
    "label-smoothed cross entropy": _smoothed, "exact-GELU MLP": _gelu_mlp,
    "causal self-attention": _attention, "multiclass hinge": _hinge,
    "Huber regression": _huber, "Poisson log-likelihood": _poisson,
    "Dirichlet log-likelihood": _dirichlet, "2x2 average pooling": _pool("mean"),
    "2x2 max pooling": _pool("max"),
}


def test_every_formula_has_an_oracle() -> None:
    assert set(JAX_LOSSES) == set(formulas.FORMULAS)


def _case(name: str) -> tuple[tc.Program, str, dict[str, np.ndarray], Any, int]:
    source, wrt, sizes = formulas.FORMULAS[name]
    arrays = formulas.inputs(name, seed=3)
    return tc.compile(source, sizes=sizes), wrt, arrays, JAX_LOSSES[name], \
        list(arrays).index(wrt)


@pytest.mark.parametrize("name", list(formulas.FORMULAS))
def test_value_gradient_and_hessian_against_jax(name: str) -> None:
    loss, wrt, arrays, oracle, k = _case(name)
    args = [jnp.asarray(a) for a in arrays.values()]
    close(loss(**arrays), oracle(*args), **EXACT)
    close(tc.grad(loss, wrt)(**arrays), jax.grad(oracle, argnums=k)(*args), **EXACT)
    close(tc.hessian(loss, wrt)(**arrays), jax.hessian(oracle, argnums=k)(*args),
          rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", list(formulas.FORMULAS))
def test_printed_gradient_exported_and_on_torch_and_jax(name: str) -> None:
    torch = pytest.importorskip("torch")
    loss, wrt, arrays, _, _ = _case(name)
    sizes = formulas.FORMULAS[name][2]
    grad = tc.grad(loss, wrt)
    want = grad(**arrays)
    close(tc.compile(str(grad), sizes=sizes)(**arrays), want, **EXACT)
    namespace: dict[str, Any] = {}
    exec(grad.to_python(), namespace)
    exported = namespace[grad.statements[-1].name]
    close(exported(**arrays, **({"index_sizes": sizes} if sizes else {})), want, **EXACT)
    close(grad(**{n: torch.from_numpy(a) for n, a in arrays.items()}).numpy(), want, **EXACT)
    close(np.asarray(grad(**{n: jnp.asarray(a) for n, a in arrays.items()})), want, **EXACT)

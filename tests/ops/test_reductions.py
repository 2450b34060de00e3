"""Functions of whole axes (docs/functions.md, docs/derivatives.md): max, min, logsumexp, softmax,
inv, det and logdet. Values against NumPy and JAX, derivatives (Jacobians, Hessians, vjp/jvp)
against jax.jacobian / jax.hessian in float64 and central finite differences (tests/fd.py), Matrix
Cookbook closed forms for the research formulas (Gaussian NLL, GP marginal likelihood,
ridge, attention, softmax cross-entropy), stability at logits of ±1000, the errors, and
round trips through str() and to_python().
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus import (
    GAUSS,
    REDUCTION_CASES,
    gauss_arrays,
    gauss_jax,
    general,
    spd,
    xp_logabsdet,
    xp_logsumexp,
    xp_softmax,
)
from fd import numeric_jacobian
from support import EXACT, close, jax_arrays

import tensorcalc as tc

RTOL = 1e-6
ATOL = 1e-7


# --------------------------------------------------------------------------- helpers








def jax_jacobian(jax, fn, arrays, wrt):
    a = jax_arrays(jax, arrays)
    return np.asarray(jax.jit(jax.jacobian(lambda w: fn(jax.numpy, **{**a, wrt: w})))(a[wrt]))


def jax_hessian(jax, fn, arrays, wrt):
    a = jax_arrays(jax, arrays)
    return np.asarray(jax.jit(jax.hessian(lambda w: fn(jax.numpy, **{**a, wrt: w})))(a[wrt]))


def run_exported(p: tc.Program, arrays: dict):
    """Execute ``p.to_python()`` in a fresh namespace and call the function it defines."""
    namespace: dict = {}
    exec(compile(p.to_python(), f"<{p.result}>", "exec"), namespace)
    return namespace[p.result](**{k: v for k, v in arrays.items() if k in p.accepts})


def reparsed(d: tc.Program, arrays: dict):
    """``str(d)`` compiled again and run on the same arrays."""
    q = tc.compile(str(d))
    return q(**{k: v for k, v in arrays.items() if k in q.accepts})


IDS = [c[0] for c in REDUCTION_CASES]
SCALAR_CASES = [c for c in REDUCTION_CASES if c[1].split("=")[0].strip().isidentifier()]


@pytest.mark.parametrize("name, src, wrt, make, fn", REDUCTION_CASES, ids=IDS)
def test_value_against_numpy(name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(1))
    value = tc.compile(src)(**arrays)
    close(value, fn(np, **arrays), **EXACT)


@pytest.mark.parametrize("name, src, wrt, make, fn", REDUCTION_CASES, ids=IDS)
def test_jacobian_against_jax_and_finite_differences(jax64, name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(2))
    d = tc.derive(src, wrt)
    J = np.asarray(d(**arrays))
    close(J, jax_jacobian(jax64, fn, arrays, wrt), rtol=1e-9, atol=1e-11)
    close(J, numeric_jacobian(src, wrt, arrays), rtol=RTOL, atol=ATOL)
    # the printed derivative and the exported function give the same numbers
    close(reparsed(d, arrays), J, **EXACT)
    close(run_exported(d, arrays), J, **EXACT)


@pytest.mark.parametrize("name, src, wrt, make, fn", SCALAR_CASES,
                         ids=[c[0] for c in SCALAR_CASES])
def test_hessian_against_jax_and_finite_differences(jax64, name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(3))
    h = tc.hessian(src, wrt)
    H = np.asarray(h(**arrays))
    close(H, jax_hessian(jax64, fn, arrays, wrt), rtol=1e-8, atol=1e-10)
    close(H, numeric_jacobian(tc.grad(src, wrt), wrt, arrays), rtol=1e-5, atol=1e-6)
    close(reparsed(h, arrays), H, **EXACT)


@pytest.mark.parametrize("name, src, wrt, make, fn", REDUCTION_CASES, ids=IDS)
def test_exported_program_gives_the_same_values(name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(4))
    p = tc.compile(src)
    close(run_exported(p, arrays), p(**arrays), **EXACT)
    assert tc.compile(str(p))(**arrays).shape == np.shape(p(**arrays))
    close(tc.compile(str(p))(**arrays), p(**arrays), **EXACT)


def test_second_derivative_of_a_jacobian_program(jax64):
    """A derivative derives again: d/dA of (d x / d b) for x = A⁻¹ b is d A⁻¹ / d A."""
    rng = np.random.default_rng(5)
    arrays = {"A": general(rng, 3), "b": rng.normal(size=3)}
    d = tc.derive("x[i] = inv[i,j](A[i,j]) b[j]", "b")
    dd = tc.derive(d, "A")
    expected = jax_jacobian(jax64, lambda xp, A, b: xp.linalg.inv(A), arrays, "A")
    close(dd(**arrays), expected, rtol=1e-9, atol=1e-11)


def _moved(a, source, destination):
    return np.moveaxis(a, source, destination)


# axes in any order: the batch axis first, last or between the matrix axes, kept indices
# written in another order on the left, contractions from either side
LAYOUTS = [
    ("B[b,i,j] = inv[i,j](S[i,b,j])", lambda r: {"S": _moved(spd(r, 3, (2,)), 0, 1)},
     lambda S: np.linalg.inv(_moved(S, 1, 0))),
    ("B[i,j,b] = inv[i,j](S[i,j,b])", lambda r: {"S": _moved(general(r, 3, (2,)), 0, 2)},
     lambda S: _moved(np.linalg.inv(_moved(S, 2, 0)), 0, 2)),
    ("B[j,b,i] = inv[i,j](S[i,b,j])", lambda r: {"S": _moved(general(r, 3, (2,)), 0, 1)},
     lambda S: np.transpose(np.linalg.inv(_moved(S, 1, 0)), (2, 0, 1))),
    ("y[b] = logdet[i,j](S[i,j,b])", lambda r: {"S": _moved(spd(r, 3, (2,)), 0, 2)},
     lambda S: np.linalg.slogdet(_moved(S, 2, 0))[1]),
    ("y[b] = det[i,j](S[j,b,i])", lambda r: {"S": np.transpose(general(r, 3, (2,)), (2, 0, 1))},
     lambda S: np.linalg.det(np.transpose(S, (1, 2, 0)))),
    ("x[i,b] = inv[i,j](S[i,j,b]) v[j,b]",
     lambda r: {"S": _moved(general(r, 3, (2,)), 0, 2), "v": r.normal(size=(3, 2))},
     lambda S, v: np.einsum("bij,jb->ib", np.linalg.inv(_moved(S, 2, 0)), v)),
    ("x[k,i] = inv[i,j](A[i,j]) v[k,j]",
     lambda r: {"A": general(r, 3), "v": r.normal(size=(4, 3))},
     lambda A, v: v @ np.linalg.inv(A).T),
    ("y[k,j] = v[k,i] inv[i,j](A[i,j])",
     lambda r: {"A": general(r, 3), "v": r.normal(size=(4, 3))},
     lambda A, v: v @ np.linalg.inv(A)),
    ("y[k,b,j] = v[k,i,b] inv[i,j](S[i,b,j])",
     lambda r: {"S": _moved(general(r, 3, (2,)), 0, 1), "v": r.normal(size=(4, 3, 2))},
     lambda S, v: np.einsum("kib,bij->kbj", v, np.linalg.inv(_moved(S, 1, 0)))),
    ("x[b,i] = inv[i,j](S[b,i,j]) v[j]",
     lambda r: {"S": general(r, 3, (2,)), "v": r.normal(size=3)},
     lambda S, v: np.linalg.inv(S) @ v),
    ("x[b,i] = inv[i,j](A[i,j]) v[b,j]",
     lambda r: {"A": general(r, 3), "v": r.normal(size=(2, 3))},
     lambda A, v: v @ np.linalg.inv(A).T),
    ("s[b] = v[b,i] inv[i,j](S[b,i,j]) v[b,j]",
     lambda r: {"S": general(r, 3, (2,)), "v": r.normal(size=(2, 3))},
     lambda S, v: np.einsum("bi,bij,bj->b", v, np.linalg.inv(S), v)),
    ("s = inv[i,j](S[b,i,j]) T[b,j,i]",
     lambda r: {"S": general(r, 3, (2,)), "T": r.normal(size=(2, 3, 3))},
     lambda S, T: np.einsum("bij,bji->", np.linalg.inv(S), T)),
    ("C[i,k] = inv[i,j](A[i,j]) inv[j,k](A[j,k])", lambda r: {"A": general(r, 3)},
     lambda A: np.linalg.inv(A) @ np.linalg.inv(A)),
    ("B[i,j] = inv[i,j](inv[i,j](A[i,j]))", lambda r: {"A": general(r, 3)},
     lambda A: A),
    ("y = det[i,j](A[i,k] B[k,j])", lambda r: {"A": general(r, 3), "B": general(r, 3)},
     lambda A, B: np.linalg.det(A) * np.linalg.det(B)),
    ("y = logdet[i,j](X[k,i] X[k,j])", lambda r: {"X": r.normal(size=(5, 3))},
     lambda X: np.linalg.slogdet(X.T @ X)[1]),
    ("Y[i,j] = inv[i,j](A[i,j] + delta[i,j])", lambda r: {"A": spd(r, 3)},
     lambda A: np.linalg.inv(A + np.eye(3))),
    ("y[i] = max[j](X[j,i])", lambda r: {"X": r.normal(size=(4, 3))}, lambda X: X.max(0)),
    ("Y[i,j] = softmax[j](X[j,i])", lambda r: {"X": r.normal(size=(4, 3))},
     lambda X: (np.exp(X) / np.exp(X).sum(0)).T),
    ("y[b] = logsumexp[i,j](X[i,b,j])", lambda r: {"X": r.normal(size=(3, 2, 4))},
     lambda X: np.log(np.exp(X).sum((0, 2)))),
    ("Y[i,b,j] = softmax[i,j](X[i,b,j])", lambda r: {"X": r.normal(size=(3, 2, 4))},
     lambda X: np.exp(X) / np.exp(X).sum((0, 2), keepdims=True)),
    ("y[b] = min[i,j](X[j,b,i])", lambda r: {"X": r.normal(size=(3, 2, 4))},
     lambda X: X.min((0, 2))),
    ("y = max[i](min[j](X[i,j]))", lambda r: {"X": r.normal(size=(3, 4))},
     lambda X: X.min(1).max()),
    ("y[j] = softmax[j](x[j] / t)", lambda r: {"x": r.normal(size=4), "t": np.array(0.7)},
     lambda x, t: np.exp(x / t) / np.exp(x / t).sum()),
    ("y[i] = logsumexp[j](X[i,j] + c[j]) - max[j](X[i,j])",
     lambda r: {"X": r.normal(size=(3, 4)), "c": r.normal(size=4)},
     lambda X, c: np.log(np.exp(X + c).sum(1)) - X.max(1)),
    ("Y[i,j] = softmax[j](W[i,k] X[k,j])",
     lambda r: {"W": r.normal(size=(2, 3)), "X": r.normal(size=(3, 4))},
     lambda W, X: np.exp(W @ X) / np.exp(W @ X).sum(1, keepdims=True)),
]


@pytest.mark.parametrize("src, make, ref", LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_axis_layouts_values_and_jacobians(src, make, ref):
    arrays = make(np.random.default_rng(30))
    p = tc.compile(src)
    close(p(**arrays), ref(**arrays), rtol=1e-10, atol=1e-11)
    close(run_exported(p, arrays), ref(**arrays), rtol=1e-10, atol=1e-11)
    for wrt in arrays:
        d = tc.derive(src, wrt)
        J = np.asarray(d(**arrays))
        close(J, numeric_jacobian(src, wrt, arrays), rtol=RTOL, atol=ATOL)
        close(run_exported(d, arrays), J, **EXACT)


@pytest.mark.parametrize("src, wrt, make", [
    ("Y[i,j] = softmax[j](X[i,j])", "X", lambda r: {"X": r.normal(size=(2, 3))}),
    ("y[i] = logsumexp[j](X[i,j])", "X", lambda r: {"X": r.normal(size=(2, 3))}),
    ("y[i] = max[j](X[i,j])", "X", lambda r: {"X": r.normal(size=(2, 3))}),
    ("B[b,i,j] = inv[i,j](S[b,i,j])", "S", lambda r: {"S": spd(r, 3, (2,))}),
    ("y[b] = logdet[i,j](S[b,i,j])", "S", lambda r: {"S": spd(r, 3, (2,))}),
    ("x[b,i] = inv[i,j](S[b,i,j]) v[b,j]", "v",
     lambda r: {"S": spd(r, 3, (2,)), "v": r.normal(size=(2, 3))}),
])
def test_batch_jacobians_are_compact(src, wrt, make):
    """A batch axis gives a block-diagonal Jacobian: the compact form keeps the tie."""
    arrays = make(np.random.default_rng(31))
    d = tc.derive(src, wrt)
    c = d.evaluate(compact=True, **arrays)
    assert c.ties, c
    close(c.toarray(), d(**arrays), **EXACT)
    close(c.toarray(), numeric_jacobian(src, wrt, arrays), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("wrt", ["A", "x", "X", "S"])
def test_vjp_and_jvp_agree_with_the_gradient(wrt):
    src = ("L = det[i,j](A[i,j]) + max[j](x[j]) + logsumexp[j](x[j])"
           " + c[a,e] softmax[e](X[a,e]) + logdet[k,l](S[k,l])")
    rng = np.random.default_rng(32)
    a = {"A": general(rng, 3), "x": rng.normal(size=3), "c": rng.normal(size=(2, 3)),
         "X": rng.normal(size=(2, 3)), "S": spd(rng, 3)}
    g = np.asarray(tc.grad(src, wrt)(**a))
    close(g, numeric_jacobian(src, wrt, a), rtol=RTOL, atol=ATOL)
    close(tc.vjp(src, wrt, cotangent="G")(**a, G=np.array(1.7)), 1.7 * g, **EXACT)
    T = rng.normal(size=a[wrt].shape)
    close(tc.jvp(src, wrt, tangent="T")(**a, T=T), np.sum(g * T), **EXACT)


# --------------------------------------------------------------------------- ties


@pytest.mark.parametrize("src, x, expected", [
    ("y = max[j](x[j])", [1.0, 3.0, 3.0], [0.0, 0.5, 0.5]),
    ("y = min[j](x[j])", [1.0, 1.0, 3.0], [0.5, 0.5, 0.0]),
    ("y = max[j](x[j])", [2.0, 2.0, 2.0, 2.0], [0.25] * 4),
    ("y = min[j](x[j])", [-1.0, 4.0, -1.0, -1.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
])
def test_ties_share_the_derivative_equally(jax64, src, x, expected):
    x = np.array(x)
    g = np.asarray(tc.grad(src, "x")(x=x))
    close(g, expected, **EXACT)
    jfn = jax64.numpy.max if "max" in src else jax64.numpy.min
    close(g, np.asarray(jax64.grad(jfn)(jax64.numpy.asarray(x))), **EXACT)


def test_ties_in_rows_and_over_two_indices(jax64):
    jnp = jax64.numpy
    X = np.array([[1.0, 3.0, 3.0], [5.0, 0.0, -1.0], [2.0, 2.0, 2.0]])
    J = np.asarray(tc.derive("y[i] = max[j](X[i,j])", "X")(X=X))
    close(J, np.asarray(jax64.jacobian(lambda a: jnp.max(a, axis=1))(jnp.asarray(X))), **EXACT)
    assert J[0, 0].tolist() == [0.0, 0.5, 0.5] and J[2, 2].tolist() == [1 / 3] * 3
    T = np.array([[1.0, 3.0], [3.0, 0.0]])
    G = np.asarray(tc.grad("y = max[i,j](X[i,j])", "X")(X=T))
    close(G, [[0.0, 0.5], [0.5, 0.0]], **EXACT)
    close(G, np.asarray(jax64.grad(jnp.max)(jnp.asarray(T))), **EXACT)


# --------------------------------------------------------------------------- kept indices


def test_solve_is_used_when_the_inverse_is_only_contracted():
    """docs/functions.md: x = A⁻¹ b runs as a linear solve, never an explicit inverse."""
    p = tc.compile("x[i] = inv[i,j](A[i,j]) b[j]")
    source = p.to_python()
    assert "solve" in source
    assert "linalg.inv" not in source
    rng = np.random.default_rng(6)
    A, b = general(rng, 5), rng.normal(size=5)
    close(p(A=A, b=b), np.linalg.solve(A, b), **EXACT)


def test_kept_indices_of_softmax_are_ordinary_indices():
    rng = np.random.default_rng(7)
    X, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    out = tc.compile("Y[i,c] = softmax[j](X[i,j]) W[j,c]")(X=X, W=W)
    e = np.exp(X - X.max(1, keepdims=True))
    close(out, (e / e.sum(1, keepdims=True)) @ W, **EXACT)


def test_nested_log_det_inv_is_minus_logdet():
    rng = np.random.default_rng(8)
    X = spd(rng, 4)
    value = tc.compile("L = log(det[i,j](inv[i,j](X[i,j])))")(X=X)
    close(value, -np.linalg.slogdet(X)[1], **EXACT)
    # d/dX log det X⁻¹ = -X⁻ᵀ (Matrix Cookbook (57) with the chain rule)
    close(tc.grad("L = log(det[i,j](inv[i,j](X[i,j])))", "X")(X=X), -np.linalg.inv(X).T,
           rtol=1e-9, atol=1e-11)


def test_cookbook_det_and_inverse_derivatives():
    """Matrix Cookbook (49) d det X / dX = det(X) X⁻ᵀ, (59) d X⁻¹ = -X⁻¹ dX X⁻¹,
    (61) d aᵀX⁻¹b / dX = -X⁻ᵀ a bᵀ X⁻ᵀ."""
    rng = np.random.default_rng(9)
    X, a, b = general(rng, 4), rng.normal(size=4), rng.normal(size=4)
    Xi = np.linalg.inv(X)
    close(tc.grad("y = det[i,j](X[i,j])", "X")(X=X), np.linalg.det(X) * Xi.T, rtol=1e-9)
    close(tc.grad("y = logdet[i,j](X[i,j])", "X")(X=X), Xi.T, rtol=1e-9, atol=1e-12)
    J = tc.derive("Y[i,j] = inv[i,j](X[i,j])", "X")(X=X)
    close(J, -np.einsum("ip,qj->ijpq", Xi, Xi), rtol=1e-9, atol=1e-12)
    g = tc.grad("s = a[i] inv[i,j](X[i,j]) b[j]", "X")(X=X, a=a, b=b)
    close(g, -Xi.T @ np.outer(a, b) @ Xi.T, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- research formulas



def test_gaussian_nll_value():
    a = gauss_arrays(10)
    r = a["x"] - a["mu"]
    expected = 0.5 * np.linalg.slogdet(a["S"])[1] + 0.5 * r @ np.linalg.solve(a["S"], r)
    close(tc.compile(GAUSS)(**a), expected, **EXACT)


def test_gaussian_nll_gradient_wrt_covariance(jax64):
    a = gauss_arrays(11)
    g = tc.grad(GAUSS, "S")
    assert "inv[" in str(g)
    G = np.asarray(g(**a))
    Si = np.linalg.inv(a["S"])
    r = a["x"] - a["mu"]
    close(G, 0.5 * (Si - Si @ np.outer(r, r) @ Si), rtol=1e-9, atol=1e-12)
    # the entries are independent: compare with JAX and with perturbing each entry alone
    close(G, jax_jacobian(jax64, gauss_jax, a, "S"), rtol=1e-9, atol=1e-12)
    close(G, numeric_jacobian(GAUSS, "S", a), rtol=RTOL, atol=ATOL)
    close(reparsed(g, a), G, **EXACT)
    close(run_exported(g, a), G, **EXACT)


def test_gaussian_nll_gradient_wrt_a_nonsymmetric_matrix(jax64):
    """Cookbook (57) and (61) with X⁻ᵀ: 0.5 (S⁻ᵀ - S⁻ᵀ r rᵀ S⁻ᵀ)."""
    a = gauss_arrays(12, symmetric=False)
    G = np.asarray(tc.grad(GAUSS, "S")(**a))
    SiT = np.linalg.inv(a["S"]).T
    r = a["x"] - a["mu"]
    close(G, 0.5 * (SiT - SiT @ np.outer(r, r) @ SiT), rtol=1e-9, atol=1e-12)
    close(G, jax_jacobian(jax64, gauss_jax, a, "S"), rtol=1e-9, atol=1e-12)


def test_gaussian_nll_gradient_and_hessian_wrt_mean(jax64):
    a = gauss_arrays(13)
    Si = np.linalg.inv(a["S"])
    r = a["x"] - a["mu"]
    g = np.asarray(tc.grad(GAUSS, "mu")(**a))
    close(g, -Si @ r, rtol=1e-9, atol=1e-12)
    close(g, jax_jacobian(jax64, gauss_jax, a, "mu"), rtol=1e-9, atol=1e-12)
    h = tc.hessian(GAUSS, "mu")
    H = np.asarray(h(**a))
    close(H, Si, rtol=1e-9, atol=1e-12)
    close(H, jax_hessian(jax64, gauss_jax, a, "mu"), rtol=1e-9, atol=1e-12)
    close(H, numeric_jacobian(tc.grad(GAUSS, "mu"), "mu", a), rtol=RTOL, atol=ATOL)
    # non-symmetric S: the Hessian is the symmetric part of S⁻¹
    b = gauss_arrays(14, symmetric=False)
    Sb = np.linalg.inv(b["S"])
    close(tc.hessian(GAUSS, "mu")(**b), 0.5 * (Sb + Sb.T), rtol=1e-9, atol=1e-12)


def test_gaussian_nll_hessian_wrt_covariance(jax64):
    a = gauss_arrays(15)
    H = np.asarray(tc.hessian(GAUSS, "S")(**a))
    close(H, jax_hessian(jax64, gauss_jax, a, "S"), rtol=1e-8, atol=1e-11)


GP_DELTA = """K[i,j] = s2 exp(-0.5 sum[d]((X[i,d]-X[j,d])^2) / l2) + noise delta[i,j]
L = 0.5 logdet[i,j](K[i,j]) + 0.5 y[i] inv[i,j](K[i,j]) y[j]"""
GP_EYE = """K[i,j] = s2 exp(-0.5 sum[d]((X[i,d]-X[j,d])^2) / l2) + noise I[i,j]
L = 0.5 logdet[i,j](K[i,j]) + 0.5 y[i] inv[i,j](K[i,j]) y[j]"""


def _gp_jax(xp, X, y, s2, l2, noise, I=None):  # noqa: E741
    sq = xp.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    K = s2 * xp.exp(-0.5 * sq / l2) + noise * xp.eye(X.shape[0])
    return 0.5 * xp_logabsdet(xp, K) + 0.5 * y @ xp.linalg.solve(K, y)


def _gp_arrays(seed, eye=False):
    rng = np.random.default_rng(seed)
    a = {"X": rng.normal(size=(5, 2)), "y": rng.normal(size=5), "s2": np.array(1.3),
         "l2": np.array(0.7), "noise": np.array(0.2)}
    if eye:
        a["I"] = np.eye(5)
    return a


@pytest.mark.parametrize("src", [GP_DELTA, GP_EYE], ids=["delta", "identity-input"])
@pytest.mark.parametrize("wrt", ["s2", "l2", "noise", "X"])
def test_gp_marginal_likelihood_gradients(jax64, src, wrt):
    a = _gp_arrays(16, eye=src is GP_EYE)
    close(tc.compile(src)(**a), _gp_jax(np, **a), **EXACT)
    g = tc.grad(src, wrt)
    G = np.asarray(g(**a))
    close(G, jax_jacobian(jax64, _gp_jax, a, wrt), rtol=1e-9, atol=1e-11)
    close(G, numeric_jacobian(src, wrt, a), rtol=RTOL, atol=ATOL)
    close(run_exported(g, a), G, **EXACT)


def test_gp_hyperparameter_gradients_closed_form():
    """Rasmussen & Williams (5.9): dL/dθ = 0.5 tr(K⁻¹ dK/dθ) - 0.5 αᵀ (dK/dθ) α, α = K⁻¹y."""
    a = _gp_arrays(17)
    X, y = a["X"], a["y"]
    sq = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    R = np.exp(-0.5 * sq / a["l2"])
    K = a["s2"] * R + a["noise"] * np.eye(5)
    Ki = np.linalg.inv(K)
    alpha = Ki @ y
    for wrt, dK in [("noise", np.eye(5)), ("s2", R), ("l2", a["s2"] * R * 0.5 * sq / a["l2"] ** 2)]:
        expected = 0.5 * np.trace(Ki @ dK) - 0.5 * alpha @ dK @ alpha
        close(tc.grad(GP_DELTA, wrt)(**a), expected, rtol=1e-9, atol=1e-12)


def test_gp_hessian_wrt_noise(jax64):
    a = _gp_arrays(18)
    H = tc.hessian(GP_DELTA, "noise")(**a)
    close(H, jax_hessian(jax64, _gp_jax, a, "noise"), rtol=1e-8, atol=1e-11)


RIDGE_DELTA = "w[i] = inv[i,j](A[k,i] A[k,j] + lam delta[i,j]) A[m,j] y[m]"
RIDGE_EYE = "w[i] = inv[i,j](A[k,i] A[k,j] + lam I[i,j]) A[m,j] y[m]"


def _ridge_jax(xp, A, y, lam, I=None):  # noqa: E741
    return xp.linalg.solve(A.T @ A + lam * xp.eye(A.shape[1]), A.T @ y)


@pytest.mark.parametrize("src", [RIDGE_DELTA, RIDGE_EYE], ids=["delta", "identity-input"])
def test_ridge_solution_and_its_derivative_wrt_lambda(jax64, src):
    rng = np.random.default_rng(19)
    a = {"A": rng.normal(size=(6, 3)), "y": rng.normal(size=6), "lam": np.array(0.5)}
    if src is RIDGE_EYE:
        a["I"] = np.eye(3)
    M = a["A"].T @ a["A"] + a["lam"] * np.eye(3)
    w = np.linalg.solve(M, a["A"].T @ a["y"])
    close(tc.compile(src)(**a), w, **EXACT)
    d = tc.derive(src, "lam")
    D = np.asarray(d(**a))
    close(D, -np.linalg.solve(M, w), rtol=1e-9, atol=1e-12)  # dw/dλ = -M⁻¹ w
    close(D, jax_jacobian(jax64, _ridge_jax, a, "lam"), rtol=1e-9, atol=1e-12)
    close(D, numeric_jacobian(src, "lam", a), rtol=RTOL, atol=ATOL)
    JA = np.asarray(tc.derive(src, "A")(**a))
    close(JA, jax_jacobian(jax64, _ridge_jax, a, "A"), rtol=1e-9, atol=1e-11)


ATTN = "o[q,e] = softmax[k](Q[q,d] K[k,d]) V[k,e]"
ATTN_LOSS = ATTN + "\nL = 0.5 o[q,e] o[q,e]"


def _attn_jax(xp, Q, K, V):
    return xp_softmax(xp, Q @ K.T, 1) @ V


def _attn_loss_jax(xp, Q, K, V):
    return 0.5 * xp.sum(_attn_jax(xp, Q, K, V) ** 2)


def _attn_arrays(seed):
    rng = np.random.default_rng(seed)
    return {"Q": rng.normal(size=(2, 3)), "K": rng.normal(size=(4, 3)),
            "V": rng.normal(size=(4, 2))}


@pytest.mark.parametrize("wrt", ["Q", "K", "V"])
def test_attention_jacobian_and_loss_gradient(jax64, wrt):
    a = _attn_arrays(20)
    close(tc.compile(ATTN)(**a), _attn_jax(np, **a), **EXACT)
    J = np.asarray(tc.derive(ATTN, wrt)(**a))
    close(J, jax_jacobian(jax64, _attn_jax, a, wrt), rtol=1e-9, atol=1e-11)
    close(J, numeric_jacobian(ATTN, wrt, a), rtol=RTOL, atol=ATOL)
    g = tc.grad(ATTN_LOSS, wrt)
    G = np.asarray(g(**a))
    close(G, jax_jacobian(jax64, _attn_loss_jax, a, wrt), rtol=1e-9, atol=1e-11)
    close(G, numeric_jacobian(ATTN_LOSS, wrt, a), rtol=RTOL, atol=ATOL)
    close(reparsed(g, a), G, **EXACT)


@pytest.mark.parametrize("wrt", ["Q", "K", "V"])
def test_attention_vjp_and_jvp(jax64, wrt):
    a = _attn_arrays(21)
    rng = np.random.default_rng(22)
    G = rng.normal(size=(2, 2))
    T = rng.normal(size=a[wrt].shape)
    ja = jax_arrays(jax64, a)

    def f(w):
        return _attn_jax(jax64.numpy, **{**ja, wrt: w})

    _, pullback = jax64.vjp(f, ja[wrt])
    close(tc.vjp(ATTN, wrt, cotangent="G")(**a, G=G), pullback(jax64.numpy.asarray(G))[0],
           rtol=1e-9, atol=1e-11)
    _, tangent_out = jax64.jvp(f, (ja[wrt],), (jax64.numpy.asarray(T),))
    close(tc.jvp(ATTN, wrt, tangent="T")(**a, T=T), tangent_out, rtol=1e-9, atol=1e-11)


XENT = "L = sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])"


def _xent_jax(xp, z, y):
    return xp.sum(xp_logsumexp(xp, z, axis=1) - xp.sum(y * z, axis=1))


def test_softmax_cross_entropy(jax64):
    rng = np.random.default_rng(23)
    z = rng.normal(size=(3, 4))
    y = np.eye(4)[[0, 2, 1]]
    a = {"z": z, "y": y}
    close(tc.compile(XENT)(**a), _xent_jax(np, **a), **EXACT)
    s = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    g = tc.grad(XENT, "z")
    G = np.asarray(g(**a))
    close(G, s - y, rtol=1e-10, atol=1e-12)
    close(G, jax_jacobian(jax64, _xent_jax, a, "z"), rtol=1e-10, atol=1e-12)
    close(G, numeric_jacobian(XENT, "z", a), rtol=RTOL, atol=ATOL)
    H = np.asarray(tc.hessian(XENT, "z")(**a))
    block = np.einsum("nj,jk->njk", s, np.eye(4)) - np.einsum("nj,nk->njk", s, s)
    close(H, np.einsum("njk,nm->njmk", block, np.eye(3)), rtol=1e-10, atol=1e-12)
    close(H, jax_hessian(jax64, _xent_jax, a, "z"), rtol=1e-10, atol=1e-12)
    close(run_exported(g, a), G, **EXACT)


# --------------------------------------------------------------------------- stability


def test_logsumexp_and_softmax_at_large_logits(jax64):
    jnp = jax64.numpy
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        lse = tc.compile("y = logsumexp[j](x[j])")
        assert float(lse(x=np.array([1000.0, 0.0]))) == 1000.0
        for x in ([1000.0, 0.0], [-1000.0, -1000.0], [1000.0, 1000.0, -1000.0]):
            x = np.array(x)
            v = lse(x=x)
            assert np.isfinite(v)
            close(v, jax64.nn.logsumexp(jnp.asarray(x)), **EXACT)
        sm = tc.compile("y[j] = softmax[j](x[j])")
        for x in ([1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -999.0], [1000.0, 1000.0]):
            x = np.array(x)
            v = sm(x=x)
            assert np.all(np.isfinite(v))
            close(v, jax64.nn.softmax(jnp.asarray(x)), **EXACT)
        X = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
        close(tc.compile("y[i] = logsumexp[j](X[i,j])")(X=X),
               jax64.nn.logsumexp(jnp.asarray(X), axis=1), **EXACT)
        close(tc.compile("Y[i,j] = softmax[i,j](X[i,j])")(X=X),
               jax64.nn.softmax(jnp.asarray(X).reshape(-1)).reshape(2, 3), **EXACT)


def test_gradients_at_large_logits_are_finite(jax64):
    jnp = jax64.numpy
    x = np.array([1000.0, 0.0, -1000.0])
    g = np.asarray(tc.grad("y = logsumexp[j](x[j])", "x")(x=x))
    assert np.all(np.isfinite(g))
    close(g, jax64.grad(jax64.nn.logsumexp)(jnp.asarray(x)), **EXACT)
    J = np.asarray(tc.derive("y[j] = softmax[j](x[j])", "x")(x=x))
    assert np.all(np.isfinite(J))
    close(J, jax64.jacobian(jax64.nn.softmax)(jnp.asarray(x)), **EXACT)
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    a = {"z": z, "y": np.eye(3)[[1, 2]]}
    G = np.asarray(tc.grad(XENT, "z")(**a))
    assert np.all(np.isfinite(G))
    close(G, jax_jacobian(jax64, _xent_jax, a, "z"), **EXACT)
    H = np.asarray(tc.hessian(XENT, "z")(**a))
    assert np.all(np.isfinite(H))
    close(H, jax_hessian(jax64, _xent_jax, a, "z"), **EXACT)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("src, arrays", [
    ("B[i,j] = inv[i,j](A[i,j])", {"A": np.ones((3, 3))}),
    ("x[i] = inv[i,j](A[i,j]) b[j]", {"A": np.zeros((3, 3)), "b": np.ones(3)}),
    ("B[b,i,j] = inv[i,j](S[b,i,j])", {"S": np.stack([np.eye(3), np.ones((3, 3))])}),
])
def test_singular_matrix_is_an_input_error_naming_the_statement(src, arrays):
    statement = src.split("[")[0]
    with pytest.raises(tc.InputError, match="singular") as info:
        tc.compile(src)(**arrays)
    assert f"statement {statement}" in str(info.value)
    assert isinstance(info.value, tc.TensorCalcError)


def test_singular_matrix_in_a_gradient_is_an_input_error():
    with pytest.raises(tc.InputError, match="singular"):
        tc.grad("y = logdet[i,j](A[i,j])", "A")(A=np.ones((3, 3)))


@pytest.mark.parametrize("src", [
    "B[i,j] = inv[i,j](A[i,j])",
    "y = det[i,j](A[i,j])",
    "y = logdet[i,j](A[i,j])",
    "x[i] = inv[i,j](A[i,j]) b[j]",
])
def test_non_square_matrix_is_a_shape_error(src):
    arrays = {"A": np.ones((3, 4))}
    if "b[j]" in src:
        arrays["b"] = np.ones(4)
    with pytest.raises(tc.ShapeError) as info:
        tc.compile(src)(**arrays)
    message = str(info.value)
    assert "square" in message and "3" in message and "4" in message
    assert isinstance(info.value, tc.TensorCalcError)


@pytest.mark.parametrize("src, words", [
    ("B[i,j] = inv[i,i](A[i,j])", ["inv", "twice", "two different indices"]),
    ("y = det[i,i](A[i,i])", ["det", "twice"]),
    ("B[i] = inv[i](A[i,j])", ["inv", "1 index", "two"]),
    ("y = logdet[i,j,k](A[i,j,k])", ["logdet", "two"]),
    ("y = max(x[i])", ["max", "axes", "max[j]"]),
    ("y = softmax(x[i])", ["softmax", "axes"]),
    ("max = x[i] x[i]", ["max", "reserved"]),
    ("y = max * 2", ["max", "reserved"]),
    ("input softmax[i]\ny = x[i] x[i]", ["softmax", "reserved"]),
    ("y = x[i] softmax", ["softmax", "reserved"]),
    ("inv[i,j] = A[i,j]", ["inv", "reserved"]),
    ("y = logsumexp[j](x[i])", ["logsumexp", "index j", "does not have"]),
    ("y = logdet[i,j](x[i])", ["logdet", "index j", "does not have"]),
    ("y[i] = max[i](x[i])", ["index i", "max[i]"]),
    ("Y[i,j] = softmax[j](x[j])", ["index i", "never appears"]),
])
def test_malformed_programs_are_clear_errors(src, words):
    with pytest.raises(tc.TensorCalcError) as info:
        tc.compile(src)
    message = str(info.value)
    for w in words:
        assert w in message, (w, message)


def test_every_reserved_word_is_refused_as_a_name():
    for word in ("sum", "max", "min", "logsumexp", "softmax", "inv", "det", "logdet", "delta",
                 "input"):
        with pytest.raises(tc.TensorCalcError, match="reserved"):
            tc.compile(f"{word} = x[i] x[i]")
        # nor as an index (the lexer takes the word whatever the parser expects there)
        with pytest.raises(tc.ParseError, match=f"{word} is a reserved word"):
            tc.compile(f"y[{word}] = x[{word}]")


# --------------------------------------------------------------------------- printing


def test_printed_forms_and_latex():
    g = tc.grad("L = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]", "S")
    assert "S_inv[q,p] = inv[q,p](S[q,p])" in str(g)
    p = tc.compile(GAUSS)
    latex = p.latex()
    assert "\\log\\det" in latex and "^{-1}" in latex
    for src in ["y = max[j](x[j])", "y = min[j](x[j])", "y = logsumexp[j](x[j])",
                "y[j] = softmax[j](x[j])", "y = det[i,j](A[i,j])"]:
        assert tc.compile(src).latex()
        assert str(tc.compile(str(tc.compile(src)))) == str(tc.compile(src))

"""Functions of whole axes (docs/functions.md) with other array libraries: torch float64 tensors and
JAX arrays evaluate softmax, logsumexp, inv, solve, logdet and max programs and their
derivatives to the same numbers as NumPy, and torch / JAX differentiate through them
(to_torch, to_jax) to the same gradients as their own linear algebra.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus import GAUSS, gauss_arrays, gauss_jax, general, spd
from support import EXACT, close, jax_arrays

import tensorcalc as tc

FRAMEWORK_PROGRAMS = [
    ("softmax", "Y[i,j] = softmax[j](X[i,j])", lambda r: {"X": r.normal(size=(3, 4))}),
    ("logsumexp", "y[i] = logsumexp[j](X[i,j])", lambda r: {"X": r.normal(size=(3, 4))}),
    ("inv", "B[i,j] = inv[i,j](A[i,j])", lambda r: {"A": spd(r, 4)}),
    ("solve", "x[i] = inv[i,j](A[i,j]) b[j]",
     lambda r: {"A": spd(r, 4), "b": r.normal(size=4)}),
    ("logdet", "y = logdet[i,j](A[i,j])", lambda r: {"A": spd(r, 4)}),
    ("max", "y[i] = max[j](X[i,j])", lambda r: {"X": r.normal(size=(3, 4))}),
    ("gaussian", GAUSS, lambda r: gauss_arrays(24)),
]


@pytest.mark.parametrize("name, src, make", FRAMEWORK_PROGRAMS,
                         ids=[c[0] for c in FRAMEWORK_PROGRAMS])
def test_torch_tensors(name, src, make):
    torch = pytest.importorskip("torch")
    arrays = make(np.random.default_rng(25))
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in arrays.items()}
    value = tc.compile(src)(**tensors)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    close(value.numpy(), tc.compile(src)(**arrays), **EXACT)
    wrt = tc.compile(src).inputs[-1]
    d = tc.derive(src, wrt)
    J = d(**tensors)
    assert isinstance(J, torch.Tensor)
    close(J.numpy(), d(**arrays), **EXACT)


@pytest.mark.parametrize("name, src, make", FRAMEWORK_PROGRAMS,
                         ids=[c[0] for c in FRAMEWORK_PROGRAMS])
def test_jax_arrays(jax64, name, src, make):
    arrays = make(np.random.default_rng(26))
    ja = jax_arrays(jax64, arrays)
    value = tc.compile(src)(**ja)
    assert isinstance(value, jax64.Array)
    close(np.asarray(value), tc.compile(src)(**arrays), **EXACT)
    wrt = tc.compile(src).inputs[-1]
    d = tc.derive(src, wrt)
    J = d(**ja)
    assert isinstance(J, jax64.Array)
    close(np.asarray(J), d(**arrays), **EXACT)


def test_torch_backward_through_the_gaussian_nll():
    torch = pytest.importorskip("torch")
    a = gauss_arrays(27)
    ours = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    tc.to_torch(GAUSS)(**ours).backward()
    S = torch.tensor(a["S"], requires_grad=True)
    mu = torch.tensor(a["mu"], requires_grad=True)
    r = torch.tensor(a["x"]) - mu
    (0.5 * torch.linalg.slogdet(S)[1] + 0.5 * r @ torch.linalg.solve(S, r)).backward()
    torch.testing.assert_close(ours["S"].grad, S.grad)
    torch.testing.assert_close(ours["mu"].grad, mu.grad)


def test_jax_grad_through_the_gaussian_nll(jax64):
    a = jax_arrays(jax64, gauss_arrays(28))
    f = tc.to_jax(GAUSS)

    def ours(S):
        return f(**{**a, "S": S})

    expected = jax64.grad(lambda S: gauss_jax(jax64.numpy, a["x"], a["mu"], S))(a["S"])
    close(jax64.grad(ours)(a["S"]), expected, rtol=1e-9, atol=1e-12)
    close(jax64.jit(jax64.grad(ours))(a["S"]), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("src, make, ref", [
    ("L = v[b,i] inv[i,j](S[b,i,j]) v[b,j]",
     lambda r: {"S": spd(r, 3, (2,)), "v": r.normal(size=(2, 3))},
     lambda torch, S, v: torch.einsum("bi,bij,bj->", v, torch.linalg.inv(S), v)),
    ("L = det[i,j](A[i,j]) + max[j](x[j]) + logsumexp[j](x[j])",
     lambda r: {"A": general(r, 3), "x": r.normal(size=3)},
     lambda torch, A, x: torch.linalg.det(A) + x.max() + torch.logsumexp(x, 0)),
    ("L = c[i,j] softmax[j](X[i,j]) + min[i,j](X[i,j])",
     lambda r: {"c": r.normal(size=(2, 3)), "X": r.normal(size=(2, 3))},
     lambda torch, c, X: (c * torch.softmax(X, 1)).sum() + X.min()),
], ids=["batched-quadratic", "det-max-logsumexp", "softmax-min"])
def test_torch_backward_through_reductions(src, make, ref):
    torch = pytest.importorskip("torch")
    a = make(np.random.default_rng(33))
    ours = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    value = tc.to_torch(src)(**ours)
    value.backward()
    expected = ref(torch, **theirs)
    expected.backward()
    torch.testing.assert_close(value, expected)
    for k in a:
        torch.testing.assert_close(ours[k].grad, theirs[k].grad)

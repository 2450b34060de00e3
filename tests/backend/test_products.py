"""Products large enough for BLAS run as one ``np.matmul`` when they are one matrix product
(after multiplying the operands over the same axes), laid out in the value's own order.
Every pattern is checked against ``np.einsum`` at sizes past the small-einsum cutoff."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.backend.binder import SMALL_EINSUM

SIZES = {"b": 3, "i": 37, "j": 41, "k": 29, "l": 5}


# Those not one matrix product: three operand groups (opt_einsum), or too small.
NOT_MATMUL = {"ij,jk,ik->ik", "ij,ij->"}


PRODUCTS = [
    ("Y[i,k] = A[i,j] B[j,k]", "ij,jk->ik"),
    ("Y[k,i] = A[i,j] B[j,k]", "ij,jk->ki"),
    ("Y[i,k] = A[j,i] B[k,j]", "ji,kj->ik"),
    ("Y[b,i,k] = A[b,i,j] B[b,j,k]", "bij,bjk->bik"),
    ("Y[i,b,k] = A[b,i,j] B[b,j,k]", "bij,bjk->ibk"),
    ("Y[k,i,b] = A[b,j,i] B[k,b,j]", "bji,kbj->kib"),
    ("Y[i,k] = A[i,j] C[i,j] B[j,k]", "ij,ij,jk->ik"),
    ("Y[i,k,l] = A[i,j] D[j,k,l]", "ij,jkl->ikl"),
    ("Y[l,i,k] = A[i,j] D[j,k,l]", "ij,jkl->lik"),
    ("Y[i,k] = E[i,j,l] F[l,j,k]", "ijl,ljk->ik"),
    ("Y[i,k] = A[i,j] B[j,k] G[i,k]", "ij,jk,ik->ik"),
    ("y = A[i,j] C[i,j]", "ij,ij->"),
    ("Y[i,k] = A[i,j] v[j] B[j,k]", "ij,j,jk->ik"),
    ("Y[j,k] = A[i,j] v[i] w[i] C[i,k]", "ij,i,i,ik->jk"),
    ("Y[i,k] = E[i,j,l] u[l,j] F[l,j,k]", "ijl,lj,ljk->ik"),
    ("Y[i,j,k] = A[i,j] B[j,k]", "ij,jk->ijk"),
]


def _arrays(p: tc.Program) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for st in p.statements:
        for t in st.rhs.terms:
            for f in t.factors:
                arrays.setdefault(f.name, rng.standard_normal(  # type: ignore[union-attr]
                    tuple(SIZES[i] for i in f.indices)))  # type: ignore[union-attr]
    return arrays


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """``module.name`` made to count its calls (the list grows by one per call)."""
    calls: list[int] = []
    original = getattr(module, name)

    def counted(*args: object) -> object:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("text, spec", PRODUCTS)
def test_matrix_products_agree_with_einsum(text: str, spec: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, np, "matmul")
    p = tc.compile(text)
    arrays = _arrays(p)
    names = list(p.inputs)
    combos = 1
    for i in set(spec.replace(",", "").replace("->", "")):
        combos *= SIZES[i]
    assert combos > SMALL_EINSUM or spec in ("ij,ij->",), "too small to test the BLAS path"
    expected = np.einsum(spec, *[arrays[n] for n in names])
    value = p(**{n: arrays[n] for n in names})
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    assert not any(np.may_share_memory(value, a) for a in arrays.values())
    assert bool(calls) == (spec not in NOT_MATMUL)


def test_float32_stays_float32() -> None:
    rng = np.random.default_rng(1)
    A = rng.standard_normal((200, 300)).astype(np.float32)
    B = rng.standard_normal((300, 100)).astype(np.float32)
    value = tc.compile("Y[k,i] = A[i,j] B[j,k]")(A=A, B=B)
    assert value.dtype == np.float32 and value.flags.c_contiguous
    np.testing.assert_allclose(value, (A @ B).T, rtol=1e-4)


@pytest.mark.parametrize("text, spec", PRODUCTS)
def test_torch_products_are_one_matmul_laid_out_as_the_value(
        text: str, spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On torch the same products run as ``torch.matmul`` in the value's own order: the
    result is contiguous (opt_einsum's ``W^T X^T`` then a transpose would not be)."""
    torch = pytest.importorskip("torch")
    calls = _counting(monkeypatch, torch, "matmul")
    p = tc.compile(text)
    arrays = _arrays(p)
    names = list(p.inputs)
    value = p(**{n: torch.tensor(arrays[n]) for n in names})
    expected = np.einsum(spec, *[arrays[n] for n in names])
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert bool(calls) == (spec not in NOT_MATMUL)
    if calls:
        assert value.is_contiguous()


@pytest.mark.parametrize("text, spec", PRODUCTS[:8])
def test_jax_products_agree_with_einsum(text: str, spec: str) -> None:
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        p = tc.compile(text)
        arrays = _arrays(p)
        names = list(p.inputs)
        value = p(**{n: jax.numpy.asarray(arrays[n]) for n in names})
        expected = np.einsum(spec, *[arrays[n] for n in names])
        np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-12, atol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_a_weighted_gram_matrix_runs_as_one_symmetric_product(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``X[k,p] w[k] X[k,q]`` with weights at least 0 is ``Aᵀ A`` for ``A = X sqrt(w)``, one
    buffer on both sides (BLAS's syrk): exactly symmetric, equal to einsum. Negative or nan
    weights, or two different arrays, take the general product, with the same values."""
    roots = _counting(monkeypatch, np, "sqrt")
    p = tc.compile("H[p,q] = X[k,p] w[k] X[k,q]")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 40))
    for w, symmetric in ((rng.random(300), True), (rng.standard_normal(300), False)):
        roots.clear()
        value = p(X=X, w=w)
        np.testing.assert_allclose(value, np.einsum("kp,k,kq->pq", X, w, X), rtol=1e-10,
                                   atol=1e-10)
        assert bool(roots) == symmetric
        if symmetric:
            assert np.array_equal(value, value.T)
    w = rng.random(300)
    w[3] = np.nan
    assert np.isnan(p(X=X, w=w)).all()
    q = tc.compile("H[p,q] = X[k,p] w[k] Y[k,q]")
    roots.clear()
    Y = rng.standard_normal((300, 40))
    np.testing.assert_allclose(q(X=X, w=rng.random(300) + 0 * X[:, 0], Y=Y).shape, (40, 40))
    assert not roots
    # the same tensor read with its axes the other way round is no Gram matrix
    r = tc.compile("H[p,q] = X[k,p] w[k] X[q,k]")
    Z = rng.standard_normal((40, 40))
    w = rng.random(40)
    np.testing.assert_allclose(r(X=Z, w=w), np.einsum("kp,k,qk->pq", Z, w, Z), rtol=1e-10)

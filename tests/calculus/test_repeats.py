"""Statements alike up to the names of their tensors are differentiated once
(``tensorcalc/calculus/repeats.py``): the derivative of a deep chain of one block is the block's
adjoint, renamed. Every derivative here is compared with the same derivation done with
nothing kept (it must print the same, character for character) and with central
differences; the cache must actually be used where blocks repeat."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import derivation_cases
from fd import numeric_jacobian
from support import derivatives_of

import tensorcalc as tc
from tensorcalc.calculus import repeats

CHAIN = "\n".join([f"h{k}[b,j] = tanh(h{k - 1}[b,i] W{k}[i,j])" for k in range(1, 13)]
                  + ["L = h12[b,j]^2"])
RESIDUAL = "\n".join([f"h{k}[b,j] = h{k - 1}[b,j] + tanh(h{k - 1}[b,i] W{k}[i,j] + c{k}[j])"
                      for k in range(1, 5)] + ["L = sum[b,j](softplus(h4[b,j]))"])
SHARED_WEIGHT = "\n".join([f"h{k}[i] = sigmoid(A[i,j] h{k - 1}[j])" for k in range(1, 6)]
                          + ["L = h5[i] y[i]"])
SOFTMAX = "\n".join([f"s{k}[b,j] = softmax[j](s{k - 1}[b,i] W{k}[i,j])" for k in range(1, 4)]
                    + ["L = s3[b,j] T[b,j]"])
CONV = "\n".join([f"x{k}[i] = tanh(x{k - 1}[i+a] w{k}[a])" for k in range(1, 4)]
                 + ["L = x3[i]^2"])

CASES = [(CHAIN, "W1"), (CHAIN, "W7"), (CHAIN, "h0"), (RESIDUAL, "W1"), (RESIDUAL, "c2"),
         (SHARED_WEIGHT, "A"), (SHARED_WEIGHT, "h0"), (SOFTMAX, "W1"), (CONV, "w1"),
         (CONV, "x0")]


def _arrays(program: tc.Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Batch 2, width 3; the convolution's signal 9 long and its kernels 2."""
    out = {}
    for name in program.inputs:
        if program.accepts[name] == 2:
            shape: tuple[int, ...] = (2, 3) if name in ("h0", "s0", "T") else (3, 3)
        else:
            shape = {"x0": (9,)}.get(name, (2,) if name.startswith("w") else (3,))
        out[name] = rng.standard_normal(shape) * 0.7
    return out


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    hits = [0]
    get = repeats.Repeats.get

    def counting(self: repeats.Repeats, key: repeats.Key, names: tuple[str, ...]):
        found = get(self, key, names)
        hits[0] += found is not None
        return found

    monkeypatch.setattr(repeats.Repeats, "get", counting)
    return hits


@pytest.mark.parametrize("src, wrt", CASES)
def test_repeated_blocks_derive_as_without_the_cache(src: str, wrt: str, counted: list[int],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = tc.compile(src)
    kept = tc.grad(p, wrt)
    hits = counted[0]
    with monkeypatch.context() as m:
        m.setattr(repeats.Repeats, "get", lambda self, key, names: None)
        fresh = tc.grad(tc.compile(src), wrt)
    assert str(kept) == str(fresh)
    arrays = _arrays(p, np.random.default_rng(7))
    np.testing.assert_allclose(kept(**arrays), numeric_jacobian(src, wrt, arrays),
                               rtol=1e-5, atol=1e-7)
    least = 8 if (src, wrt) == (CHAIN, "W1") else int(src in (CHAIN, SHARED_WEIGHT, RESIDUAL))
    assert hits >= least, f"only {hits} statements were taken from the cache"


@pytest.mark.parametrize("src, wrt", CASES)
def test_forward_mode_derives_as_without_the_cache(src: str, wrt: str, counted: list[int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """JVPs (forward mode) take tangents from the cache too: the same text, the
    directional derivative of central differences."""
    p = tc.compile(src)
    kept = tc.jvp(p, wrt)
    hits = counted[0]
    with monkeypatch.context() as m:
        m.setattr(repeats.Repeats, "get", lambda self, key, names: None)
        fresh = tc.jvp(tc.compile(src), wrt)
    assert str(kept) == str(fresh)
    rng = np.random.default_rng(8)
    arrays = _arrays(p, rng)
    v = rng.standard_normal(arrays[wrt].shape)
    expected = np.tensordot(numeric_jacobian(src, wrt, arrays), v, axes=v.ndim)
    np.testing.assert_allclose(kept(**arrays, V=v), expected, rtol=1e-5, atol=1e-7)
    # Forward mode hoists a tangent every third tanh, so that the blocks repeat with
    # period 3; h10's names sort unlike h9's (the key holds their order).
    least = 3 if (src, wrt) in ((CHAIN, "W1"), (CHAIN, "h0")) \
        else int(src in (SHARED_WEIGHT, RESIDUAL))
    assert hits >= least, f"only {hits} tangents were taken from the cache"


def test_a_long_chain_takes_most_tangents_from_the_cache(counted: list[int]) -> None:
    src = "\n".join([f"h{k:02d}[b,j] = tanh(h{k - 1:02d}[b,i] W{k:02d}[i,j])"
                     for k in range(1, 41)] + ["L = h40[b,j]^2"])
    tc.jvp(src, "W01")
    assert counted[0] >= 30


def test_second_derivatives_of_a_chain_use_it_too(counted: list[int]) -> None:
    src = "\n".join([f"h{k}[i] = tanh(W{k}[i,j] h{k - 1}[j])" for k in range(1, 5)]
                    + ["L = h4[i] h4[i]"])
    h = tc.hessian(src, "h0")
    rng = np.random.default_rng(3)
    arrays = {"h0": rng.standard_normal(3),
              **{f"W{k}": rng.standard_normal((3, 3)) * 0.6 for k in range(1, 5)}}
    g = tc.grad(src, "h0")
    np.testing.assert_allclose(h(**arrays), numeric_jacobian(g, "h0", arrays), rtol=1e-5,
                               atol=1e-7)
    assert counted[0] > 0


def test_rename_tensors_renames_extents_and_index_arrays() -> None:
    from tensorcalc.ir import Extent, Gather, Ref, Term

    t = Term(1.0, (Ref("E", ("n", "j"), (Gather("t", ("n",)), "j")),), frozenset({"n"}),
             (Extent("j", "E", 1),))
    r = repeats.rename_tensors(t, {"E": "F", "t": "u"})
    assert r.factors[0] == Ref("F", ("n", "j"), (Gather("u", ("n",)), "j"))
    assert r.extents == (Extent("j", "F", 1),)


def test_the_whole_corpus_prints_the_same_without_the_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """First, second and mixed derivatives of the simplification corpus (the fuzz's valid
    programs, reductions, powers, index arithmetic) print the same with the cache as
    with every statement derived anew."""
    corpus = derivation_cases()
    kept = [[str(d) for d in derivatives_of(*case)] for case in corpus]
    monkeypatch.setattr(repeats.Repeats, "get", lambda self, key, names: None)
    fresh = [[str(d) for d in derivatives_of(*case)] for case in corpus]
    differ = [(case, a, b) for case, a, b in zip(corpus, kept, fresh) if a != b]
    assert not differ, differ[0]
    assert sum(map(len, kept)) > 300

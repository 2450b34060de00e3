"""Fused elementwise passes in exported code (backend/export_fused.py): a fused sum is
one helper call that runs numba's loop where numba is installed and the same arithmetic
on whole arrays where it is not; both give the runner's numbers, in the inputs' float
type."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import tensorcalc as tc

LAYERNORM = """
mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
y[b,d] = (x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d]
L = sum[b,d]((y[b,d] - T[b,d])^2)
"""
XENT = "L = sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])"
RNG = np.random.default_rng(12)


def _exported(p: tc.Program, without_numba: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    if without_numba:
        monkeypatch.setitem(sys.modules, "numba", None)  # ``import numba`` fails
    namespace: dict[str, Any] = {}
    exec(p.to_python("f"), namespace)  # noqa: S102 - our own generated code
    return namespace["f"]


@pytest.mark.parametrize("without_numba", [False, True])
def test_layernorm_gradient_exported_fused_agrees(without_numba: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if not without_numba:
        pytest.importorskip("numba")
    g = tc.grad(LAYERNORM, "x")
    code = g.to_python("f")
    assert "_numba_or_numpy" in code and "def _fused1_loop(" in code
    assert "import numba" not in code.split("def f(")[0]  # not at import time
    f = _exported(g, without_numba, monkeypatch)
    a = {"x": RNG.standard_normal((40, 30)), "g": RNG.standard_normal(30),
         "be": RNG.standard_normal(30), "T": RNG.standard_normal((40, 30))}
    np.testing.assert_allclose(f(**a), g(**a), rtol=1e-13, atol=1e-13)
    a32 = {k: v.astype(np.float32) for k, v in a.items()}
    got = f(**a32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, g(**a), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("without_numba", [False, True])
def test_softmax_minus_targets_exported_in_one_pass(without_numba: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not without_numba:
        pytest.importorskip("numba")
    g = tc.grad(XENT, "z")
    assert "_fused1(" in g.to_python("f")
    f = _exported(g, without_numba, monkeypatch)
    z, y = 4 * RNG.standard_normal((20, 9)), np.eye(9)[RNG.integers(0, 9, 20)]
    z[0, 0] = -np.inf  # an entry that takes no part, as the runner gives it
    e = np.exp(z - z.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True) - y
    np.testing.assert_allclose(f(z=z, y=y), expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(f(z=z, y=y), g(z=z, y=y))


def test_a_single_operation_is_written_as_before() -> None:
    """``x - mu`` is one NumPy pass either way: no helper."""
    code = tc.compile("c[b,d] = x[b,d] - m[b]").to_python("f")
    assert "_fused" not in code and "_numba_or_numpy" not in code


def test_a_very_long_sum_is_not_one_loop() -> None:
    """Past ``fused.MOST_OPERATIONS`` a sum keeps the plain route (one expression of 3,000
    additions made Python's compiler recurse past its limit)."""
    long = tc.compile("R[i] = " + " + ".join(f"x[i]^{k}" for k in range(1, 300)))
    assert "_fused" not in long.to_python("f")
    short = tc.compile("R[i] = " + " + ".join(f"x[i]^{k}" for k in range(1, 20)))
    assert "_fused1(" in short.to_python("f")

"""Fused elementwise passes (backend/fused.py): which sums run as one compiled loop, the
same numbers as the NumPy route, float32 kept, broadcasting, derivatives through the
fused route against central differences, threads, the NumPy route for a statement's
first runs, and the fallback without numba."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backend.test_threads import run_threads
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.backend import fused

pytest.importorskip("numba")

ROOT = Path(__file__).resolve().parents[2]

LAYERNORM = """
mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
y[b,d] = (x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d]
L = y[b,d] Gy[b,d]
"""
XENT = "L = sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])"
MLP = "H[n,h] = tanh(W[h,d] X[n,d])\nL = sum[n,h](H[n,h] V[n,h])"
CHAIN = "y[i,j] = tanh(2 x[i,j] + b[j])^2 - exp(-x[i,j]) / (1 + a[i]^2) + 3"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements bound with a fused loop, compiled from their first run; every
    function template fused, and arrays of any size (numba here may lack SVML, and the
    tests' arrays are small)."""
    bound: list[str] = []
    real = fused.fused_sum

    def recording(ctx: Any, plan: Any, order: tuple[str, ...]) -> Any:
        step = real(ctx, plan, order)
        if step is not None:
            bound.append(ctx.owner[0])
        return step

    monkeypatch.setattr(fused, "SMALLEST", 1)
    monkeypatch.setattr(fused, "NUMPY_RUNS", 0)
    monkeypatch.setattr(fused, "functions",
                        lambda: {**fused.FUNCTIONS, **fused.FAST_FUNCTIONS})
    monkeypatch.setattr("tensorcalc.backend.binder.fused_sum", recording)
    yield bound


def unfused(program: tc.Program, arrays: dict[str, np.ndarray],
            monkeypatch: pytest.MonkeyPatch) -> Any:
    """The value by the NumPy route: the same program text, bound without numba."""
    with monkeypatch.context() as m:
        m.setattr(fused, "available", lambda: False)
        return tc.compile(program.source(), program.result)(**arrays)


def layernorm_arrays(b: int = 6, d: int = 5, dtype: Any = np.float64) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    arrays = {"x": rng.standard_normal((b, d)), "g": 1 + 0.1 * rng.standard_normal(d),
              "be": 0.1 * rng.standard_normal(d), "Gy": rng.standard_normal((b, d))}
    return {k: v.astype(dtype) for k, v in arrays.items()}


def test_layernorm_gradient_is_fused_with_the_same_numbers(
        spy: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    gradient = tc.grad(LAYERNORM, "x")
    arrays = layernorm_arrays()
    value = gradient(**arrays)
    assert gradient.result in spy
    np.testing.assert_allclose(value, unfused(gradient, arrays, monkeypatch), rtol=1e-13)


def test_mlp_one_minus_h_squared_is_fused(spy: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    gradient = tc.grad(MLP, "W")
    rng = np.random.default_rng(2)
    arrays = {"W": rng.standard_normal((4, 3)), "X": rng.standard_normal((5, 3)),
              "V": rng.standard_normal((5, 4))}
    value = gradient(**arrays)
    assert gradient.result in spy  # the group (1 - H^2) of the contraction
    np.testing.assert_allclose(value, unfused(gradient, arrays, monkeypatch), rtol=1e-13)


def test_softmax_cross_entropy_gradient_is_fused(spy: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``softmax[q](z) - y``: the softmax's division and the subtraction in one pass,
    bit for bit the NumPy route's numbers; an infinite logit too."""
    gradient = tc.grad(XENT, "z")
    rng = np.random.default_rng(3)
    arrays = {"z": rng.standard_normal((6, 5)), "y": rng.standard_normal((6, 5))}
    arrays["z"][2, 3] = np.inf
    arrays["z"][4] = -np.inf
    value = gradient(**arrays)
    assert gradient.result in spy
    with np.errstate(invalid="ignore"):  # the row of -inf is nan, as on the NumPy route
        np.testing.assert_array_equal(value, unfused(gradient, arrays, monkeypatch))
    z = arrays["z"][:2]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(value[:2], e / e.sum(axis=1, keepdims=True) - arrays["y"][:2],
                               rtol=1e-13)


def test_softmax_along_a_leading_axis(spy: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    program = tc.compile("P[i,j] = 2 softmax[i](z[i,j]) - y[j,i]")
    rng = np.random.default_rng(9)
    arrays = {"z": rng.standard_normal((3, 4)), "y": rng.standard_normal((4, 3))}
    value = program(**arrays)
    assert "P" in spy
    e = np.exp(arrays["z"] - arrays["z"].max(axis=0))
    np.testing.assert_allclose(value, 2 * e / e.sum(axis=0) - arrays["y"].T, rtol=1e-13)
    np.testing.assert_allclose(value, unfused(program, arrays, monkeypatch), rtol=1e-13)


def test_functions_powers_and_broadcasting(spy: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    program = tc.compile(CHAIN)
    rng = np.random.default_rng(4)
    arrays = {"x": rng.standard_normal((7, 5)), "b": rng.standard_normal(5),
              "a": rng.standard_normal(7)}
    value = program(**arrays)
    assert "y" in spy
    x, a, b = arrays["x"], arrays["a"], arrays["b"]
    expected = np.tanh(2 * x + b) ** 2 - np.exp(-x) / (1 + a[:, None] ** 2) + 3
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    np.testing.assert_allclose(value, unfused(program, arrays, monkeypatch), rtol=1e-13)


def test_transposed_operands_and_a_reduction_after(spy: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A read with its axes in another order, and a sum along an axis of the fused value
    (the reduction runs on the fused pass's result)."""
    program = tc.compile("E[i,j] = exp(x[i,j] - m[j,i]) * x[i,j] + 1\n"
                         "s[i] = sum[j](E[i,j] * E[i,j] - x[i,j])")
    rng = np.random.default_rng(5)
    arrays = {"x": rng.standard_normal((4, 6)), "m": rng.standard_normal((6, 4))}
    x, m = arrays["x"], arrays["m"]
    e = np.exp(x - m.T) * x + 1
    value = program(**arrays)
    assert "E" in spy
    np.testing.assert_allclose(value, (e * e - x).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(value, unfused(program, arrays, monkeypatch), rtol=1e-13)


def test_float32_stays_float32(spy: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Constants are passed as float32 scalars: nothing is computed in float64. (Forward
    programs: the suite's check that a printed derivative runs to the same numbers asks
    for rtol 1e-9, which float32 meets only by running the very same passes.)"""
    layernorm = tc.compile(LAYERNORM, "y")
    arrays = layernorm_arrays(dtype=np.float32)
    value = layernorm(**arrays)
    assert "y" in spy
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, unfused(layernorm, arrays, monkeypatch), rtol=1e-5)
    chained = tc.compile(CHAIN)
    rng = np.random.default_rng(6)
    small = {k: v.astype(np.float32) for k, v in {
        "x": rng.standard_normal((3, 4)), "b": rng.standard_normal(4),
        "a": rng.standard_normal(3)}.items()}
    value = chained(**small)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, unfused(chained, small, monkeypatch), rtol=1e-5)


def test_gradient_and_hessian_through_the_fused_route(spy: list[str]) -> None:
    """First and second derivatives of a chain the fused route runs, against central
    differences of the value and of the gradient."""
    source = "L = sum[i,j](tanh(x[i,j] a[j])^2 + exp(-x[i,j]^2) (1 + a[j]))"
    rng = np.random.default_rng(7)
    arrays = {"x": 0.5 * rng.standard_normal((3, 4)), "a": rng.standard_normal(4)}
    gradient = tc.grad(source, "x")
    np.testing.assert_allclose(gradient(**arrays),
                               numeric_jacobian(source, "x", arrays), rtol=1e-6, atol=1e-8)
    hessian = tc.hessian(source, "x")
    np.testing.assert_allclose(hessian(**arrays), numeric_jacobian(gradient, "x", arrays),
                               rtol=1e-6, atol=1e-8)
    assert gradient.result in spy
    # the Hessian's own statements (its result is a delta-tied term: the NumPy route's)
    own = {st.name for st in hessian.statements} - {st.name for st in gradient.statements}
    assert own & set(spy)


def test_layernorm_hessian_against_differences(spy: list[str]) -> None:
    arrays = layernorm_arrays(b=2, d=3)
    gradient = tc.grad(LAYERNORM, "x")
    np.testing.assert_allclose(gradient(**arrays), numeric_jacobian(LAYERNORM, "x", arrays),
                               rtol=1e-6, atol=1e-8)
    hessian = tc.hessian(LAYERNORM, "x")
    np.testing.assert_allclose(hessian(**arrays), numeric_jacobian(gradient, "x", arrays),
                               rtol=1e-5, atol=1e-7)
    assert gradient.result in spy


def test_one_program_from_many_threads(spy: list[str]) -> None:
    gradient = tc.grad(LAYERNORM, "x")
    inputs = [layernorm_arrays(b=4 + k % 3, d=5) for k in range(8)]
    expected = [gradient(**a) for a in inputs]

    def work(k: int) -> None:
        for _ in range(20):
            np.testing.assert_allclose(gradient(**inputs[k]), expected[k], rtol=1e-13)

    run_threads(work)
    assert gradient.result in spy


def test_without_numba_the_numpy_route_runs(spy: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "available", lambda: False)
    gradient = tc.grad(LAYERNORM, "x")
    arrays = layernorm_arrays()
    value = gradient(**arrays)
    assert spy == []
    x = arrays["x"]
    mu = x.mean(axis=1, keepdims=True)
    r = 1 / np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5)
    xh, dxh = (x - mu) * r, arrays["Gy"] * arrays["g"]
    expected = r * (dxh - dxh.mean(axis=1, keepdims=True)
                    - xh * (dxh * xh).mean(axis=1, keepdims=True))
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_the_loop_is_compiled_at_the_third_run(spy: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "NUMPY_RUNS", 2)
    sources: list[str] = []
    real = fused.compiled

    def counting(source: str) -> Any:
        sources.append(source)
        return real(source)

    monkeypatch.setattr(fused, "compiled", counting)
    program = tc.compile(CHAIN)
    rng = np.random.default_rng(10)
    arrays = {"x": rng.standard_normal((7, 5)), "b": rng.standard_normal(5),
              "a": rng.standard_normal(7)}
    values = [program(**arrays) for _ in range(2)]
    assert sources == []
    values.append(program(**arrays))
    compiled = len(sources)
    assert compiled >= 1
    values.append(program(**arrays))
    assert len(sources) == compiled  # each loop compiled once
    for value in values[1:]:
        np.testing.assert_allclose(value, values[0], rtol=1e-13)


def test_numba_waits_for_the_third_run() -> None:
    """``import tensorcalc`` and a program's first runs leave numba alone: the third run
    of a bound statement compiles its loop."""
    code = ("import sys, numpy as np, tensorcalc as tc\n"
            "p = tc.compile('y[i,j] = 2 x[i,j] x[i,j] - x[i,j] + 1')\n"
            "x = np.ones((100, 100))\n"
            "p(x=x); p(x=x)\n"
            "print('numba' in sys.modules)\n"
            "print(float(p(x=x)[0, 0]), 'numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["False", "2.0", "True"]


def test_other_array_libraries_keep_their_route(spy: list[str]) -> None:
    torch = pytest.importorskip("torch")
    program = tc.compile(CHAIN)
    rng = np.random.default_rng(8)
    arrays = {"x": rng.standard_normal((3, 4)), "b": rng.standard_normal(4),
              "a": rng.standard_normal(3)}
    value = program(**{k: torch.from_numpy(v) for k, v in arrays.items()})
    assert spy == []
    np.testing.assert_allclose(value.numpy(), program(**arrays), rtol=1e-13)

"""The benchmark definitions are right: for every workload in ``benchmarks/``, at a tiny
size, tensorcalc's value equals the hand-written NumPy formula (and so do the jax and
torch peers, where installed), and every workload declares a goal. Nothing is timed."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support import ROOT

import tensorcalc as tc
from tensorcalc.errors import ProgramError

if str(ROOT) not in sys.path:  # the benchmarks package lives at the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402
from benchmarks.spec import Arrays, Call, Context, Workload, timed_row  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    ALL,
    conv,
    elman,
    first_call,
    jax_jit,
    lstm,
    torch_step,
)

RTOL = 1e-9
ATOL = 1e-12


def close(got: Any, want: Any, what: str = "") -> None:
    np.testing.assert_allclose(harness.to_numpy(got), np.asarray(want), rtol=RTOL, atol=ATOL,
                               err_msg=what)


def test_the_workloads_are_the_rows_of_the_table() -> None:
    keys = [w.key for w in ALL]
    assert keys == ["1", "2", "2b", "3", "4", "4b", "5", "6", "6b", "7", "8", "9", "10", "10i",
                    "11", "12", "13", "14", "14b", "15", "16", "17", "15t", "16t", "17t", "18",
                    "20", "21", "22", "23", "23x", "24"]


@pytest.mark.parametrize("w", ALL, ids=lambda w: w.key)
def test_every_workload_declares_a_goal(w: Workload) -> None:
    assert w.goals, f"workload {w.key} has no goal"
    for goal in w.goals:
        assert goal.on.strip(), "a goal says what it is measured on"
        assert goal.op in ("≤", "<")
        bound = goal.bound(w.size)
        assert math.isfinite(bound) and bound > 0
        assert goal.text(w.size)
    assert w.label() and w.label(w.tiny)


def test_the_counted_goals() -> None:
    """Forty-one goals are counted: rows 1, 2, 2b, 3, 4, 4b (compact core time), 4c (its
    peak memory), 5, 6, 7, three in row 8 (tc.grad alone at N=50; grad + first evaluation
    against jax's trace + compile + first call, row 8j; per-statement growth to N=200), 9,
    9j (faster than jax.jit), 10 and 10j (against the NumPy formula and ahead of jax.jit),
    10i (integer labels), 11, 12, 13 (tensorcalc inside jax.jit against jax.jit of JAX's own
    autodiff), 14, 14b (an Adam step and a double-backward Hessian-vector product through
    tc.to_torch against plain torch), two in each of rows 15, 16, 17 (the float32
    convolution and its two gradients against the NumPy im2col formula and against torch;
    one table row each, met in the SUMMARY only when both are), 15t, 16t, 17t (the same on
    torch tensors against torch itself), 18, 18m (the embedding gradient's time and its
    peak memory), 20 and 20j (LayerNorm, against both), 21 (causal attention), 22 (a
    GP's gradient), 23 and 23j (an LSTM's gradient w.r.t. ``Wh``, against both) and 23x
    (w.r.t. ``Wx``); the fresh-process rows 6b and 6c, rows 10ij, 21j and 22j (against
    jax.jit) and rows 24 and 24j (a tiny RNN's cost per position) are information only."""
    assert sum(g.counted for w in ALL for g in w.goals) == 41
    assert len(next(w for w in ALL if w.key == "4b").goals) == 2
    assert len(next(w for w in ALL if w.key == "8").goals) == 3
    assert all(len(w.goals) == 2 for w in ALL if w.key in ("15", "16", "17", "18"))


@pytest.mark.parametrize("w", ALL, ids=lambda w: w.key)
def test_tensorcalc_equals_the_numpy_formula(w: Workload, request: pytest.FixtureRequest) -> None:
    if w.key in jax_jit.KEYS:  # tensorcalc inside jax.jit: needs jax, in float64
        request.getfixturevalue("x64_jax")
    if w.key in torch_step.KEYS + conv.TORCH_KEYS:  # tensorcalc on torch tensors
        pytest.importorskip("torch")
    if w.key in lstm.KEYS and not recurrences_built():
        pytest.skip("recurrences not built yet")
    arrays = w.arrays(w.tiny)
    assert all(a.dtype == np.float64 or np.issubdtype(a.dtype, np.integer)  # index arrays
               for a in arrays.values())
    got = w.value(arrays)
    want = w.expected(arrays)
    assert np.shape(got) == np.shape(want)
    close(got, want)
    assert harness.difference(got, want) is None  # what the benchmark itself checks
    for name, (program, reference) in w.extras.items():
        close(program(arrays)(), reference(**arrays), name)


def recurrences_built() -> bool:
    """Whether the language has recurrences (issue 28): rows 23 and 23x need them."""
    try:
        tc.compile(lstm.SOURCE)
    except ProgramError:
        return False
    return True


def test_the_elman_formula_equals_central_differences() -> None:
    """Row 24: the hand-written backpropagation through time equals central differences
    of the forward loop."""
    w = elman.WORKLOADS[0]
    arrays = w.arrays(w.tiny)
    formula = elman.reference(**arrays)
    numeric = np.zeros_like(formula)
    for k in range(numeric.size):
        moved = {}
        for sign in (1, -1):
            value = arrays["W"].copy()
            value.flat[k] += sign * 1e-6
            moved[sign] = elman.loss(**{**arrays, "W": value})
        numeric.flat[k] = (moved[1] - moved[-1]) / 2e-6
    np.testing.assert_allclose(formula, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(formula).max() > 1e-2


@pytest.mark.parametrize("wrt", ["Wh", "Wx"])
def test_the_lstm_formula_equals_central_differences(wrt: str) -> None:
    """Rows 23 and 23x: the hand-written backpropagation through time equals central
    differences of the forward loop, entry by entry (jax and torch are checked against
    it by the peer tests below)."""
    w = lstm.WORKLOADS[0]
    arrays = w.arrays(w.tiny)
    formula = {"Wh": lstm.reference, "Wx": lstm.reference_wx}[wrt](**arrays)
    assert formula.shape == arrays[wrt].shape
    numeric = np.zeros_like(formula)
    eps = 1e-6
    for k in range(numeric.size):
        moved = {}
        for sign in (1, -1):
            value = arrays[wrt].copy()
            value.flat[k] += sign * eps
            moved[sign] = lstm.loss(**{**arrays, wrt: value})
        numeric.flat[k] = (moved[1] - moved[-1]) / (2 * eps)
    np.testing.assert_allclose(formula, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(formula).max() > 1e-2  # a gradient that is not all zeros


@pytest.mark.parametrize("w", conv.WORKLOADS, ids=lambda w: w.key)
def test_the_float32_rows_stay_float32(w: Workload) -> None:
    """The convolution rows run in float32 (``bits=32``): at a tiny size in float32,
    tensorcalc's result is float32 and passes the check the benchmark makes."""
    arrays = w.arrays({**w.tiny, "bits": 32})
    assert all(a.dtype == np.float32 for a in arrays.values())
    want = w.expected(arrays)
    assert want.dtype == np.float32
    assert conv.difference(w.value(arrays), want) is None
    assert conv.difference(want * (1 + 1e-3), want) is not None


def test_a_mismatch_is_caught() -> None:
    w = ALL[0]
    arrays = w.arrays(w.tiny)
    want = w.expected(arrays)
    assert harness.difference(want * (1 + 1e-3), want) is not None
    assert harness.difference(want[:1], want) is not None


def test_a_program_that_fails_to_build_leaves_the_others_timed() -> None:
    """A tensorcalc program that raises while it is built (a construct not in the language
    yet) is a loud error and an "error" cell; the NumPy formula is still timed."""

    def refused(arrays: Arrays) -> Call:
        raise ProgramError("not in the language yet")

    w = lstm.WORKLOADS[0]
    w = dataclasses.replace(w, size=w.tiny, peers={}, program=refused, target=1e-3)
    ctx = Context(harness.Report(), repeats=1)
    row, times = timed_row(w, ctx)
    assert row.cells["ours"] == "error" and row.bad == ["ours"]
    assert set(times) == {"numpy"}
    assert "not in the language yet" in ctx.report.errors[0]


def test_the_fresh_process_child(capsys: pytest.CaptureFixture[str]) -> None:
    """What row 6b/6c's fresh process runs, here in-process at the tiny size."""
    first_call.child(0.0, 0.0, json.dumps(dict(first_call.FIRST_CALL.tiny)))
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] is True


@pytest.fixture
def x64_jax() -> Iterator[None]:
    """jax with x64 enabled for the test only (the benchmark enables it for good)."""
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("w", [w for w in ALL if "jax" in w.peers], ids=lambda w: w.key)
def test_jax_peer_equals_the_numpy_formula(w: Workload, x64_jax: None) -> None:
    arrays = w.arrays(w.tiny)
    close(w.peers["jax"](arrays)(), w.expected(arrays))


@pytest.mark.parametrize("w", [w for w in ALL if "torch" in w.peers], ids=lambda w: w.key)
def test_torch_peer_equals_the_numpy_formula(w: Workload) -> None:
    pytest.importorskip("torch")
    arrays = w.arrays(w.tiny)
    close(w.peers["torch"](arrays)(), w.expected(arrays))


def test_the_gpu_table_checks_every_row_on_the_cpu_with_torch() -> None:
    """``benchmarks/gpu_check.py --cpu`` in brief: every row of the GPU table (the
    convolution and embedding rows included), at its dry-run size, run through tensorcalc
    on torch tensors and checked against the hand formula in torch (index arrays stay
    integer on the device)."""
    pytest.importorskip("torch")
    from benchmarks import gpu_check

    lib = gpu_check.torch_lib(cpu=True, dtype="float64")
    assert isinstance(lib, gpu_check.Lib)
    report = gpu_check.Report()
    rows = gpu_check.checks(cpu=True, mlp=(16, 8, 4, 3), sigmoid_n=1000)
    assert {"15", "16", "17", "18"} <= {c.key for c in rows}
    for c in rows:
        if "torch" in c.libs:
            gpu_check.run_check(c, lib, c.setup(), "float64", report)
    assert not report.failures, report.failures
    assert len(report.rows) >= 10

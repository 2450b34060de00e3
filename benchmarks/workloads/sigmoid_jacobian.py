"""Rows 4, 4b and 4c: the Jacobian of the elementwise sigmoid, dense at n=4000 (timed
against ``np.diag(s*(1-s))``) and compact at n=10⁶ (4b: its core timed against
``s*(1-s)``; 4c: its peak memory)."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, fmt_bytes, peak_memory
from benchmarks.spec import Arrays, Call, Context, Workload, derivative, sigmoid, timed_row

SOURCE = "y[i] = sigmoid(x[i])"
#: The compact Jacobian is diagonal: its output index ``p`` is tied to ``i``.
COMPACT_TIES = {"p": "i"}


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    return {"x": rng.standard_normal(size["n"])}


def reference(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return np.diag(s * (1 - s))


def compact_reference(x: np.ndarray) -> np.ndarray:
    s = sigmoid(x)
    return s * (1 - s)


def jax_jacobian(arrays: Arrays) -> Call:
    jax = peers.jax()
    jacobian = jax.jit(jax.jacobian(jax.nn.sigmoid))
    x = peers.to_jax(arrays)["x"]
    return lambda: jacobian(x).block_until_ready()


def torch_jacobian(arrays: Arrays) -> Call:
    torch = peers.torch()
    jacobian = torch.func.jacrev(torch.sigmoid)
    x = peers.to_torch(arrays)["x"]
    return lambda: jacobian(x)


def jax_diagonal(arrays: Arrays) -> Call:
    jax = peers.jax()
    diagonal = jax.jit(jax.vmap(jax.grad(jax.nn.sigmoid)))
    x = peers.to_jax(arrays)["x"]
    return lambda: diagonal(x).block_until_ready()


def torch_diagonal(arrays: Arrays) -> Call:
    torch = peers.torch()
    diagonal = torch.func.vmap(torch.func.grad(torch.sigmoid))
    x = peers.to_torch(arrays)["x"]
    return lambda: diagonal(x)


def compact_program(arrays: Arrays) -> Call:
    jacobian = tc.derive(SOURCE, "x")
    return lambda: jacobian.evaluate(compact=True, **arrays).core


def measure_compact(w: Workload, ctx: Context) -> None:
    """Row 4b: the compact evaluation timed, ours / ``s*(1-s)`` judged against
    ``w.goals[0]``; row 4c: its peak memory, judged against ``w.goals[1]``."""
    time_goal, memory_goal = w.goals
    arrays = w.arrays()
    ties: Any = tc.derive(SOURCE, "x").evaluate(compact=True, **arrays).ties
    row, times = timed_row(w, ctx)
    if ties != COMPACT_TIES:
        ctx.report.loud(f"[{row.workload}] unexpected ties {ties} (expected {COMPACT_TIES})")
        row.bad.append("ours")
    if "ours" in times and "numpy" in times:
        ratio = times.ratio("ours", "numpy")
        row.ratio = f"{ratio:.2f}"
        row.judge(time_goal, ratio, w.size)
    else:
        row.goal = time_goal.text(w.size)
        row.met = False
    ctx.report.rows.append(row)

    n = w.size["n"]
    mrow = Row("4c", f"peak memory of 4b (n={n:,}; tracemalloc)")
    run = w.program(arrays)
    run()  # planned once, as in the timed rows
    p_ours = peak_memory(run)
    p_numpy = peak_memory(lambda: w.reference(**arrays))
    mrow.cells["ours"] = f"{fmt_bytes(p_ours)} = {p_ours / (8 * n):.1f}·n·8 B"
    mrow.cells["numpy"] = f"{fmt_bytes(p_numpy)} = {p_numpy / (8 * n):.1f}·n·8 B"
    mrow.ratio = f"{p_ours / p_numpy:.2f} (mem)"
    mrow.judge(memory_goal, p_ours, w.size)
    ctx.report.rows.append(mrow)


WORKLOADS = (
    Workload(
        key="4",
        title="sigmoid Jacobian, dense (n={n})",
        size={"n": 4000},
        tiny={"n": 7},
        setup=setup,
        program=derivative(tc.derive, SOURCE, "x"),
        reference=reference,
        peers={"jax": jax_jacobian, "torch": torch_jacobian},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.05),),
    ),
    Workload(
        key="4b",
        title="sigmoid Jacobian, compact (n={n:,}; jax/torch: vmap(grad))",
        size={"n": 10**6},
        tiny={"n": 7},
        setup=setup,
        program=compact_program,
        reference=compact_reference,
        peers={"jax": jax_diagonal, "torch": torch_diagonal},
        goals=(Goal("tensorcalc compact core time / NumPy s*(1-s) time", 1.2),
               Goal("peak bytes allocated while evaluating the compact Jacobian",
                    lambda s: 10 * 8 * s["n"], unit="B", formula="10·n·8 B"),),
        measure=measure_compact,
    ),
)

"""Rows 18 and 18m: the gradient of an embedding lookup (a gather with an index array,
docs/index-arithmetic.md) w.r.t. its table: ``L = G[n,j] E[t[n],j]`` with integer token ids ``t``
and a fixed cotangent ``G``, so that ``E_bar[v,j]`` is the sum of ``G[n,j]`` over the lookups
``n`` with ``t[n] = v`` (a scatter-add: rows that nobody looked up are zero, rows looked
up twice get two rows of ``G``).

Row 18 times it against the fastest NumPy formula without ``np.add.at``: one
``np.bincount`` over the flat (row, column) positions (faster here than sorting and
``np.add.reduceat``); row 18m is tensorcalc's peak memory (tracemalloc, NumPy's
allocations included), against twice the gradient's own size, which a dense one-hot
``N×V`` matrix (N/D = 32 times the gradient's size at the benchmark size) could never
fit. float64, like the other rows; the token ids are int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, fmt_bytes, peak_memory
from benchmarks.spec import Arrays, Call, Context, Workload, derivative, timed_row

SOURCE = "L = G[n,j] E[t[n],j]"


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """A table ``E`` (V×D), ``N`` uniform token ids (repeats included: about 650 at the
    benchmark size), the cotangent ``G`` (N×D)."""
    v, d, n = size["v"], size["d"], size["n"]
    return {"E": rng.standard_normal((v, d)), "t": rng.integers(0, v, n),
            "G": rng.standard_normal((n, d))}


def reference(E: np.ndarray, t: np.ndarray, G: np.ndarray) -> np.ndarray:
    """One ``np.bincount`` with weights over the flat positions ``t[n]·D + j``."""
    v, d = E.shape
    flat = (t[:, None] * d + np.arange(d)).ravel()
    return np.bincount(flat, weights=G.ravel(), minlength=v * d).reshape(v, d)


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(E: Any, t: Any, G: Any) -> Any:
        return jnp.sum(E[t] * G)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["E"], a["t"], a["G"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    """torch autograd's backward of the lookup ``E[t]`` alone (graph built once)."""
    torch = peers.torch()
    t = peers.to_torch(arrays)
    table = t["E"].clone().requires_grad_(True)
    looked_up = table[t["t"]]
    G = t["G"]
    return lambda: torch.autograd.grad(looked_up, table, G, retain_graph=True)[0]


def measure_with_memory(w: Workload, ctx: Context) -> None:
    """Row 18: the standard row (ours / NumPy against ``w.goals[0]``); row 18m: the peak
    memory of one tensorcalc call, against ``w.goals[1]``, NumPy's shown for scale."""
    time_goal, memory_goal = w.goals
    row, times = timed_row(w, ctx)
    if "ours" in times and "numpy" in times:
        ratio = times.ratio("ours", "numpy")
        row.ratio = f"{ratio:.2f}"
        row.judge(time_goal, ratio, w.size)
    else:
        row.goal = time_goal.text(w.size)
        row.met = False
    ctx.report.rows.append(row)

    v, d, n = w.size["v"], w.size["d"], w.size["n"]
    mrow = Row(f"{w.key}m", f"peak memory of {w.key} (tracemalloc; a one-hot N×V would be "
                            f"{8 * n * v / 2**30:.1f} GiB)")
    arrays = w.arrays()
    run = w.program(arrays)
    run()  # planned once, as in the timed row
    p_ours = peak_memory(run)
    p_numpy = peak_memory(lambda: w.reference(**arrays))
    unit = 8 * v * d
    mrow.cells["ours"] = f"{fmt_bytes(p_ours)} = {p_ours / unit:.2f}·V·D·8 B"
    mrow.cells["numpy"] = f"{fmt_bytes(p_numpy)} = {p_numpy / unit:.2f}·V·D·8 B"
    mrow.ratio = f"{p_ours / p_numpy:.2f} (mem)"
    mrow.judge(memory_goal, p_ours, w.size)
    ctx.report.rows.append(mrow)


WORKLOADS = (
    Workload(
        key="18",
        title="embedding gradient wrt the table E of L = G[n,j] E[t[n],j] (scatter-add), "
              "table {v:,}×{d}, {n:,} lookups, float64",
        size={"v": 50_000, "d": 256, "n": 8_192},
        tiny={"v": 5, "d": 3, "n": 12},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "E"),
        reference=reference,
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time (np.bincount, no np.add.at)", 1.5),
               Goal("peak bytes allocated while evaluating the gradient",
                    lambda s: 2 * 8 * s["v"] * s["d"], unit="B", formula="2·V·D·8 B")),
        measure=measure_with_memory,
    ),
)

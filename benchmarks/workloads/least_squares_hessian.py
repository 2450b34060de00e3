"""Rows 2 and 2b: the Hessian of least squares ``(X W - Y)^2`` w.r.t. the matrix ``W``,
dense (timed against NumPy) and compact (its core's size against the dense n·k·n·k)."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, bench, fmt_time
from benchmarks.spec import Arrays, Call, Context, Workload, derivative

SOURCE = "L = (X[i,j] W[j,k] - Y[i,k])^2"


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    m, n, k = size["m"], size["n"], size["k"]
    return {"X": rng.standard_normal((m, n)), "W": rng.standard_normal((n, k)),
            "Y": rng.standard_normal((m, k))}


def reference(X: np.ndarray, W: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The dense Hessian ``2 XᵀX ⊗ I``, shape (n, k, n, k)."""
    return np.einsum("pr,qs->pqrs", 2 * X.T @ X, np.eye(W.shape[1]))


def core_reference(X: np.ndarray, W: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """What the compact form needs to store: ``2 XᵀX``."""
    return 2 * X.T @ X


def jax_hessian(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(W: Any, X: Any, Y: Any) -> Any:
        return jnp.sum((X @ W - Y) ** 2)

    hessian = jax.jit(jax.hessian(loss))
    a = peers.to_jax(arrays)
    return lambda: hessian(a["W"], a["X"], a["Y"]).block_until_ready()


def torch_hessian(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(W: Any, X: Any, Y: Any) -> Any:
        return torch.sum((X @ W - Y) ** 2)

    hessian = torch.func.hessian(loss)
    t = peers.to_torch(arrays)
    return lambda: hessian(t["W"], t["X"], t["Y"])


def compact_program(arrays: Arrays) -> Call:
    hessian = tc.hessian(SOURCE, "W")
    return lambda: hessian.evaluate(compact=True, **arrays)


def dense_size(size: Size) -> int:
    return (size["n"] * size["k"]) ** 2


def measure_compact(w: Workload, ctx: Context) -> None:
    """The compact Hessian: ``toarray()`` checked against the dense formula, its core's
    size judged, its evaluation timed against NumPy's ``2XᵀX``."""
    arrays = w.arrays()
    row = Row(w.key, w.label())
    run = w.program(arrays)
    compact = run()
    size = int(np.asarray(compact.core).size)
    ctx.report.check(row, "ours compact.toarray()", w.value(arrays), w.expected(arrays),
                     mark="ours")
    times = bench({"ours": run, "numpy": lambda: core_reference(**arrays)}, ctx.repeats)
    n = w.size["n"]
    row.cells["ours"] = (f"{size:,} elements {tuple(np.shape(compact.core))}, "
                         f"ties {compact.ties}; {fmt_time(times['ours'])}")
    row.cells["numpy"] = f"2XᵀX: {n * n:,} elements; {fmt_time(times['numpy'])}"
    row.ratio = f"{size / dense_size(w.size):.4f} (size)"
    row.judge(w.goal, size, w.size)
    ctx.report.rows.append(row)


SIZE = {"m": 100, "n": 60, "k": 20}
TINY = {"m": 7, "n": 4, "k": 3}

WORKLOADS = (
    Workload(
        key="2",
        title="least squares Hessian wrt W, dense (m={m}, n={n}, k={k})",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.hessian, SOURCE, "W"),
        reference=reference,
        peers={"jax": jax_hessian, "torch": torch_hessian},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.5),),
    ),
    Workload(
        key="2b",
        title=lambda s: f"same Hessian, compact: core size vs dense n·k·n·k = {dense_size(s):,}",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=compact_program,
        result=lambda compact: compact.toarray(),
        reference=reference,
        goals=(Goal("elements stored in the compact Hessian's core",
                    lambda s: s["n"] ** 2 + s["k"] + 16, unit="elements", formula="n²+k+16"),),
        measure=measure_compact,
    ),
)

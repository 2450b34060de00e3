"""Rows 9 and 9j: the gradient of the Gaussian negative log-likelihood w.r.t. the
covariance ``S`` (``logdet`` and ``inv``, docs/functions.md), timed against the hand-written
``0.5 (S⁻¹ − S⁻¹ r rᵀ S⁻¹)`` (one ``np.linalg.inv``) and, in row 9j, against
``jax.jit(jax.grad(...))`` of the same function. Row 10 (``softmax_xent``) reuses
:func:`measure_with_jax`."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size
from benchmarks.spec import Arrays, Call, Context, Workload, derivative, timed_row

SOURCE = ("r[i] = x[i] - mu[i]; "
          "L = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]")


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """A well-conditioned SPD ``S`` (eigenvalues in about [1, 5]), ``x`` and ``mu``."""
    n = size["n"]
    A = rng.standard_normal((n, n))
    return {"S": A @ A.T / n + np.eye(n), "x": rng.standard_normal(n),
            "mu": rng.standard_normal(n)}


def reference(S: np.ndarray, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``0.5 (S⁻¹ − S⁻¹ r rᵀ S⁻¹)`` with ``r = x − mu``: one inverse, one mat-vec."""
    Si = np.linalg.inv(S)
    v = Si @ (x - mu)
    return 0.5 * (Si - np.outer(v, v))


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(S: Any, x: Any, mu: Any) -> Any:
        r = x - mu
        return 0.5 * jnp.linalg.slogdet(S)[1] + 0.5 * r @ jnp.linalg.solve(S, r)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["S"], a["x"], a["mu"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(S: Any, x: Any, mu: Any) -> Any:
        r = x - mu
        return 0.5 * torch.linalg.slogdet(S)[1] + 0.5 * r @ torch.linalg.solve(S, r)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["S"], t["x"], t["mu"])


def measure_with_jax(w: Workload, ctx: Context) -> None:
    """The standard row (ours / NumPy judged against ``w.goals[0]``), then a row
    ``<key>j`` from the same timings: ours / jax.jit judged against ``w.goals[1]``.
    Without jax the second row says so and counts for nothing."""
    row, times = timed_row(w, ctx)
    numpy_goal, jax_goal = w.goals
    if "ours" in times and "numpy" in times:
        row.ratio = f"{times.ratio('ours', 'numpy'):.2f}"
        row.judge(numpy_goal, times.ratio("ours", "numpy"), w.size)
    else:
        row.goal = numpy_goal.text(w.size)
        row.met = False
    ctx.report.rows.append(row)

    jrow = Row(f"{w.key}j", "the same, tensorcalc vs jax.jit(jax.grad)",
               jax_goal.text(w.size))
    jrow.bad = [k for k in row.bad if k in ("ours", "jax")]
    for k in ("ours", "jax"):
        jrow.cells[k] = row.cells[k]
    if "jax" not in times and "jax" in w.peers and not peers.available("jax"):
        jrow.met_text = "(jax not installed)"
    else:
        jrow.judge_pair(times, "jax", jax_goal, w.size)
    ctx.report.rows.append(jrow)


def jax_goal(counted: bool = True, limit: float = 1.0) -> Goal:
    """ours / jax.jit below ``limit`` (1: faster than jax)."""
    return Goal("tensorcalc time / jax.jit time, same machine", limit, op="<",
                label="ours/jax", counted=counted)


WORKLOADS = (
    Workload(
        key="9",
        title="Gaussian NLL gradient wrt S (logdet, inv), n={n}",
        size={"n": 500},
        tiny={"n": 4},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "S"),
        reference=reference,
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.3), jax_goal()),
        measure=measure_with_jax,
    ),
)

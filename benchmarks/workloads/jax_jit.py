"""Rows 11, 12 and 13: tensorcalc inside ``jax.jit``, timed against JAX's own autodiff
of the same function written in ``jax.numpy``, also under ``jax.jit``.

* Row 11: ``jax.jit(jax.grad(tc.to_jax(MLP)))`` (row 3's MLP and arrays; JAX transposes
  tensorcalc's symbolic JVP) against ``jax.jit(jax.grad(loss))``.
* Rows 12 and 13: the logistic-regression Hessian (row 1) and the least-squares Hessian
  (row 2), built once with ``tc.hessian`` and called inside ``jax.jit``, against
  ``jax.jit(jax.hessian(loss))``.

Every implementation is checked against the NumPy formula first (also timed, shown for
scale); the ratio judged is tensorcalc's time over jax's, the two timed back to back.
Without jax the rows say so and count for nothing.
"""

from __future__ import annotations

from typing import Any

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row
from benchmarks.spec import Arrays, Call, Context, Workload
from benchmarks.workloads import least_squares_hessian, logistic_hessian, mlp_gradient

#: The rows whose tensorcalc side itself needs jax (with x64).
KEYS = ("11", "12", "13")


def to_jax_gradient(arrays: Arrays) -> Call:
    """``jax.jit(jax.grad(...))`` of ``tc.to_jax(MLP)`` as a function of ``W``."""
    jax = peers.jax()
    f = tc.to_jax(mlp_gradient.SOURCE)
    a = peers.to_jax(arrays)

    def loss(W: Any, X: Any, c: Any, V: Any, T: Any) -> Any:
        return f(X=X, W=W, c=c, V=V, T=T)

    gradient = jax.jit(jax.grad(loss))
    return lambda: gradient(a["W"], a["X"], a["c"], a["V"], a["T"]).block_until_ready()


def jitted_hessian(source: str, wrt: str) -> Any:
    """A program that builds ``tc.hessian(source, wrt)`` once and calls it inside
    ``jax.jit`` on the arrays, already on the device."""

    def program(arrays: Arrays) -> Call:
        jax = peers.jax()
        hessian = tc.hessian(source, wrt)
        run = jax.jit(lambda **a: hessian(**a))
        a = peers.to_jax(arrays)
        return lambda: run(**a).block_until_ready()

    return program


def measure(w: Workload, ctx: Context) -> None:
    """One row: ours, the NumPy formula and jax checked, then timed interleaved with ours
    and jax back to back (three times the other rows' repeats); ours / jax judged against
    ``w.goal``."""
    row = Row(w.key, w.label(), w.goal.text(w.size))
    if not peers.available("jax"):
        row.met_text = "(jax not installed)"
        ctx.report.rows.append(row)
        return
    arrays = w.arrays()
    impls: dict[str, Call] = {"ours": w.program(arrays),
                              "numpy": lambda: w.reference(**arrays)}
    impls.update(ctx.peer_calls(w, arrays, row))
    # Both sides are one XLA computation of the same few dots (row 11's compile to the same
    # four), so the ratio's spread is the machine's: three times the repeats narrow its median
    times = ctx.report.run_impls(row, impls, w.expected(arrays), 3 * ctx.repeats, w.target,
                                 pairs=(("ours", "jax"),))
    row.judge_pair(times, "jax", w.goal, w.size)
    ctx.report.rows.append(row)


def jax_goal(limit: float) -> Goal:
    return Goal("tensorcalc time / jax.jit time, same machine", limit, label="ours/jax")


WORKLOADS = (
    Workload(
        key="11",
        title="jax.jit(jax.grad(tc.to_jax(MLP))) wrt W vs jax.jit(jax.grad) of the jnp "
              "MLP (batch {b}, {d}→{h}→{o})",
        size=mlp_gradient.SIZE,
        tiny=mlp_gradient.TINY,
        setup=mlp_gradient.setup,
        program=to_jax_gradient,
        reference=mlp_gradient.reference,
        peers={"jax": mlp_gradient.jax_gradient},
        goals=(jax_goal(1.05),),
        measure=measure,
    ),
    Workload(
        key="12",
        title="tc.hessian of logistic regression inside jax.jit vs jax.jit(jax.hessian) "
              "(X {m}×{d})",
        size={"m": 2000, "d": 500},
        tiny={"m": 12, "d": 4},
        setup=logistic_hessian.setup,
        program=jitted_hessian(logistic_hessian.SOURCE, "w"),
        reference=logistic_hessian.reference,
        peers={"jax": logistic_hessian.jax_hessian},
        goals=(jax_goal(0.6),),
        measure=measure,
    ),
    Workload(
        key="13",
        title="tc.hessian of least squares wrt W inside jax.jit vs jax.jit(jax.hessian) "
              "(m={m}, n={n}, k={k})",
        size=least_squares_hessian.SIZE,
        tiny=least_squares_hessian.TINY,
        setup=least_squares_hessian.setup,
        program=jitted_hessian(least_squares_hessian.SOURCE, "W"),
        reference=least_squares_hessian.reference,
        peers={"jax": least_squares_hessian.jax_hessian},
        goals=(jax_goal(0.6),),
        measure=measure,
    ),
)

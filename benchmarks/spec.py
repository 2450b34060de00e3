"""A workload as data, and the standard way to measure one.

A :class:`Workload` says what is computed (``setup``, ``program``, ``reference``,
``peers``), at which size (``size`` for the benchmark, ``tiny`` for the tests) and what
it must achieve (``goals``); its ``measure`` turns that into table rows. Most workloads
use :func:`compare`: check every implementation against the NumPy formula, time them
interleaved, and judge the ratio tensorcalc / NumPy against the goal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks import peers
from benchmarks.harness import Goal, Report, Row, Size, Timings

SEED = 0

Arrays = dict[str, np.ndarray]
Call = Callable[[], Any]
#: Builds the tensorcalc program once (deriving, compiling: not timed) and returns the
#: call that is timed.
Program = Callable[[Arrays], Call]
#: The hand-written NumPy formula, called with the arrays as keyword arguments.
Reference = Callable[..., Any]
#: Builds a peer (jax, torch) from the arrays, importing it through ``benchmarks.peers``,
#: and returns the call that is timed (which waits for the result).
Peer = Callable[[Arrays], Call]
Measure = Callable[["Workload", "Context"], None]


@dataclass
class Context:
    """What a measurement needs besides its workload."""

    report: Report
    repeats: int
    quick: bool = False

    def peer_calls(self, w: Workload, arrays: Arrays, row: Row) -> dict[str, Call]:
        """The installed peers of ``w``, built."""
        calls = {name: self.peer_call(w, name, arrays, row) for name in w.peers}
        return {name: call for name, call in calls.items() if call is not None}

    def peer_call(self, w: Workload, name: str, arrays: Arrays, row: Row) -> Call | None:
        """Peer ``name`` of ``w`` built; None when it is not installed or fails to build
        (reported)."""
        if not peers.available(name):
            return None
        return self.build(name, w.peers[name], arrays, row)

    def build(self, name: str, make: Callable[[Arrays], Call], arrays: Arrays,
              row: Row) -> Call | None:
        """``make(arrays)``, the call of implementation ``name``; None when building it
        raised (reported, and its cell reads "error"), so that the others are still
        timed: a program tensorcalc cannot build yet still shows the peers' times."""
        try:
            return make(arrays)
        except Exception as err:  # noqa: BLE001
            self.report.loud(f"[{row.workload}] building {name} raised "
                             f"{type(err).__name__}: {err}")
            row.cells[name] = "error"
            row.bad.append(name)
            return None


def compare(w: Workload, ctx: Context) -> None:
    """The standard measurement: one row, ours / NumPy judged against ``w.goal``."""
    row, times = timed_row(w, ctx)
    if "ours" in times and "numpy" in times:
        ratio = times.ratio("ours", "numpy")
        row.ratio = f"{ratio:.2f}"
        row.judge(w.goal, ratio, w.size)
    else:
        row.goal = w.goal.text(w.size)
        row.met = False
    ctx.report.rows.append(row)


def timed_row(w: Workload, ctx: Context, key: str | None = None,
              goal: str = "(info)") -> tuple[Row, Timings]:
    """A row for ``w`` at its benchmark size: tensorcalc, the NumPy formula and the
    peers, each checked against the formula, then timed interleaved."""
    arrays = w.arrays()
    row = Row(key or w.key, w.label(), goal)
    ours = ctx.build("ours", w.program, arrays, row)
    impls: dict[str, Call] = {} if ours is None else {"ours": ours}
    impls["numpy"] = lambda: w.reference(**arrays)
    impls.update(ctx.peer_calls(w, arrays, row))
    times = ctx.report.run_impls(row, impls, w.expected(arrays), ctx.repeats, w.target,
                                 transform=w.result)
    if "ours" in times and "jax" in times:
        row.vs_jax = f"{times.ratio('ours', 'jax'):.2f}"
    return row, times


@dataclass(frozen=True)
class Workload:
    """One benchmark workload, as data.

    ``title`` is formatted with the size (``str.format(**size)``) or is a function of
    it. ``setup(rng, size)`` draws the arrays. ``program(arrays)`` builds tensorcalc's
    program and returns the timed call; ``result``, when given, maps that call's output
    to what is compared with ``reference(**arrays)`` (e.g. ``Compact.toarray``).
    ``extras`` are further (program, reference) pairs that must agree (e.g. a forward
    pass). ``goals`` holds at least one :class:`Goal`; ``measure`` reads them.
    """

    key: str
    title: str | Callable[[Size], str]
    size: Size
    tiny: Size
    setup: Callable[[np.random.Generator, Size], Arrays]
    program: Program
    reference: Reference
    goals: tuple[Goal, ...]
    peers: Mapping[str, Peer] = field(default_factory=dict)
    extras: Mapping[str, tuple[Program, Reference]] = field(default_factory=dict)
    result: Callable[[Any], Any] | None = None
    target: float = 0.02  # seconds one timed repeat lasts (a batch of calls)
    measure: Measure = compare

    @property
    def goal(self) -> Goal:
        return self.goals[0]

    def label(self, size: Size | None = None) -> str:
        size = self.size if size is None else size
        return self.title(size) if callable(self.title) else self.title.format(**size)

    def arrays(self, size: Size | None = None) -> Arrays:
        """The arrays at ``size`` (the benchmark size by default), from a fixed seed."""
        return self.setup(np.random.default_rng(SEED), self.size if size is None else size)

    def value(self, arrays: Arrays) -> Any:
        """tensorcalc's result, as compared with the reference."""
        out = self.program(arrays)()
        return out if self.result is None else self.result(out)

    def expected(self, arrays: Arrays) -> Any:
        """The NumPy formula's result."""
        return self.reference(**arrays)


def derivative(make: Callable[[str, str], Any], source: str, wrt: str) -> Program:
    """A program that derives ``source`` w.r.t. ``wrt`` once (``tc.grad``, ``tc.hessian``,
    ``tc.derive``) and calls the result with the arrays."""

    def program(arrays: Arrays) -> Call:
        derived = make(source, wrt)
        return lambda: derived(**arrays)

    return program


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))

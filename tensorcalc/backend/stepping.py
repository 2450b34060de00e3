"""A recurrence bound to arrays and run along its index (docs/recurrences.md).

The step of each statement (``loops.py``) is bound once per pattern of present terms (the
first positions, where the state before is the start, the middle ones, the last ones, where
a read ahead falls past the end): a small program of the group's statements with the
recurrence index taken out, bound by the same runner as any program. Each position then
costs one run of that bound step. On NumPy each member's row is written into its whole
value as it is made; other libraries' rows are stacked along the index at the end (JAX's
arrays cannot be written into). A run of the result alone keeps whole only the members
that statements after the recurrence read (``kept``); the others keep their last row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..ir import Extent, Statement, Sum, refs
from .libraries import ArrayLibrary
from .loops import (
    LoopPlan,
    MemberPlan,
    Read,
    SizeOf,
    StepTerm,
    holds,
    slice_name,
    step_count,
    step_sizes,
)
from .plan import ProgramPlan, plan_program

Env = dict[Any, Any]
Sizes = dict[str, int]
Pattern = tuple[tuple[bool, ...], ...]

class Bound(NamedTuple):
    """A step bound for one pattern of present terms: the runner of its statements, the
    slices it reads and the name each is read by, and the zeros it starts from."""

    runner: Any
    reads: tuple[Read, ...]
    named: tuple[tuple[str, Read], ...]
    zeros: Env  # each member's row stand-in, and zeros for a member with no term here


#: In a run's arrays, asks every member's value of every recurrence kept (a caller that
#: reads each statement's value), not only those the statements after it read.
EVERY = "@every"


class LoopStep:
    """A recurrence bound to one input signature: the member shapes and the number of
    positions are known; ``__call__`` runs it and leaves every member's value in ``env``.

    ``make_runner(plan, env, given)`` binds a plan (``run.Runner``: handed in, since the
    runner is what builds this); ``lib`` the array library."""

    def __init__(self, loop: LoopPlan, sample: Env, given: Sizes | None,
                 make_runner: Callable[[Any, Env, Sizes | None], Any], lib: ArrayLibrary,
                 dtype: Any):
        self.loop = loop
        self.given = given
        self.make_runner = make_runner
        self.lib = lib
        self.xp = lib.xp
        self.dtype = dtype
        self.length = int(step_count(loop, _size_of(sample), given or {}))
        # what binding the steps sees: the statements before are shapes only as yet (and
        # stay so for a call that does not run them: those only a size is taken from)
        self.sample = {k: self.blank(v.shape) for k, v in sample.items()
                       if hasattr(v, "shape") and not hasattr(v, "dtype")}
        sample = {**sample, **self.sample}
        sizes = step_sizes(loop, _size_of(sample), given or {})
        self.rows = {m.name: tuple(int(sizes[m.name][i]) for i in m.indices)
                     for m in loop.members}
        self.shapes = {m.name: (self.length,) + self.rows[m.name] for m in loop.members}
        self._zeros: dict[str, Any] = {}
        #: the members a statement after the recurrence reads (the runner sets it)
        self.kept = {m.name for m in loop.members}
        self._bound: dict[Pattern, Bound] = {}
        self._patterns: list[Pattern] | None = None
        self._positions = any(t.onehots or t.scalars for m in loop.members for t in m.terms)

    def __call__(self, env: Env) -> Any:
        loop, n = self.loop, self.length
        order = list(range(n)) if loop.direction > 0 else list(range(n - 1, -1, -1))
        if self._patterns is None:  # a function of the position alone, for this binding
            self._patterns = [self._pattern(s) for s in range(n)]
        patterns = [self._patterns[s] for s in order]
        values: dict[str, list[Any]] = {m.name: [None] * n for m in loop.members}
        run = _longest_run(patterns) if self.lib.scans else None
        # the members the statements after read (every one where the caller keeps every
        # statement's value, or a scan runs); the others keep their last row only
        kept = {m.name for m in loop.members} if EVERY in env or run is not None \
            else self.kept
        block: dict[str, Any] = {}
        filled: dict[str, Any] = {}  # each member's whole value, written row by row
        for k, s in enumerate(order):
            if run is not None and run[0] <= k < run[1]:
                if k == run[0]:
                    block = self._scan(order[run[0]:run[1]], patterns[k], env, values)
                continue
            step = self._step(s, patterns[k], env, values, self._slices(s, patterns[k], env,
                                                                       values))
            for m in loop.members:
                if m.name in kept:
                    values[m.name][s] = self._keep(m.name, s, step[m.name], filled)
                else:
                    values[m.name][s] = step[m.name]
                    if k >= 2:  # a step reads the step before only
                        values[m.name][order[k - 2]] = None
        span = None if run is None else (min(order[run[0]], order[run[1] - 1]),
                                         max(order[run[0]], order[run[1] - 1]))
        for m in loop.members:
            whole = filled.get(m.name)
            if m.name in kept:
                env[m.name] = whole if whole is not None and run is None else \
                    self._assemble(m.name, values[m.name], block.get(m.name), span)
        return env.get(loop.members[0].name)

    def _keep(self, name: str, s: int, row: Any, filled: dict[str, Any]) -> Any:
        """Row ``s`` of a member, written into its whole value as it is made (NumPy: one
        copy of a row just computed, where stacking at the end reads every row again);
        the row itself where the library's arrays are not written into, or where the rows
        differ in type (``filled[name]`` None: stacked at the end)."""
        if self.lib.name != "NumPy" or filled.get(name, False) is None:
            return row
        whole = filled.get(name)
        if whole is None:
            whole = filled[name] = self.xp.empty(self.shapes[name], dtype=row.dtype)
        if row.dtype != whole.dtype or row.shape != whole.shape[1:]:
            filled[name] = None
            return row
        whole[s] = row
        return whole[s]

    def _slices(self, s: int, pattern: Pattern, env: Env, values: dict[str, list[Any]]
                ) -> Env:
        named = self._binding(pattern, s, env, values).named
        out = {name: _slice(read, s, env, values) for name, read in named}
        if self._positions:
            out.update(self._positional(s))
        return out

    def _positional(self, s: int) -> Env:
        """What a step reads of its position itself: one-hot rows (``delta[t,r]``) and
        conditions inside functions, as numbers."""
        out = {}
        for m in self.loop.members:
            for term in m.terms:
                for name, axis, offset in term.onehots:
                    out[name] = self._onehot(self.rows[m.name][axis], s + offset)
                for name, condition in term.scalars:
                    out[name] = self.xp.asarray(float(holds(condition, s)), dtype=self.dtype)
        return out

    def _onehot(self, n: int, at: int) -> Any:
        """A row of the identity of size ``n`` (zeros where ``at`` is outside it)."""
        xp = self.xp
        return xp.astype(xp.arange(n) == at, self.dtype)

    def _step(self, s: int, pattern: Pattern, env: Env, values: dict[str, list[Any]],
              slices: Env) -> Env:
        """One position run: ``env`` with the slices it reads and every member's value."""
        bound = self._binding(pattern, s, env, values)
        step = dict(env)
        step.update(slices)
        step.update(bound.zeros)
        bound.runner(step)
        return step

    def _scan(self, positions: list[int], pattern: Pattern, env: Env,
              values: dict[str, list[Any]]) -> dict[str, Any]:
        """Positions that share one pattern as one ``scan`` (JAX): the members' values at
        the position before are carried, the slices of other arrays are scanned over.
        Returns each member's values there, in order of position."""
        loop, xp = self.loop, self.xp
        reads = self._binding(pattern, positions[0], env, values).reads
        names = {m.name for m in loop.members}
        before = positions[0] - loop.direction
        carry = {m.name: values[m.name][before] if 0 <= before < self.length
                 and values[m.name][before] is not None else self.zeros(m.name)
                 for m in loop.members}
        xs = {}
        low, high = min(positions), max(positions) + 1
        for tensor, axis, offset in reads:
            if tensor not in names:
                part = _block(xp, env[tensor], axis, low + offset, high + offset)
                xs[slice_name(tensor, axis, offset)] = part if loop.direction > 0 else \
                    xp.flip(part, axis=0)
        if self._positional(positions[0]):
            each = [self._positional(s) for s in positions]
            xs.update({name: xp.stack([e[name] for e in each]) for name in each[0]})

        def body(carried: Env, sliced: Env) -> tuple[Env, Env]:
            own = {slice_name(*r): carried[r[0]] for r in reads if r[0] in names}
            step = self._step(positions[0], pattern, env, values, {**sliced, **own})
            out = {m.name: step[m.name] for m in loop.members}
            return out, out

        last, rows = self.lib.scan(body, carry, xs, len(positions))
        for m in loop.members:
            values[m.name][positions[-1]] = last[m.name]
        return {name: v if loop.direction > 0 else xp.flip(v, axis=0)
                for name, v in rows.items()}

    def _assemble(self, name: str, rows: list[Any], block: Any, span: tuple[int, int] | None
                  ) -> Any:
        """A member's value: its rows stacked along the recurrence index, with the scanned
        ``block`` in place over ``span``."""
        xp = self.xp
        if not rows:
            return xp.zeros(self.shapes[name], dtype=self.dtype)
        if span is None:
            return xp.stack(rows)
        pieces = [xp.stack(rows[:span[0]])] if span[0] else []
        pieces.append(block)
        if span[1] + 1 < len(rows):
            pieces.append(xp.stack(rows[span[1] + 1:]))
        return xp.concatenate(pieces) if len(pieces) > 1 else block

    def _pattern(self, s: int) -> Pattern:
        return tuple(tuple(_present(term, s, self.shapes) for term in m.terms)
                     for m in self.loop.members)

    def _binding(self, pattern: Pattern, s: int, env: Env, values: dict[str, list[Any]]
                 ) -> Bound:
        """The step bound for a pattern of present terms: bound at its first use."""
        found = self._bound.get(pattern)
        return found if found is not None else self._bind(pattern, s, env, values)

    def _bind(self, pattern: Pattern, s: int, env: Env, values: dict[str, list[Any]]
              ) -> Bound:
        statements = []
        reads: dict[Read, None] = {}
        for m, keeps in zip(self.loop.members, pattern):
            terms = [t for t, keep in zip(m.terms, keeps) if keep]
            if terms:
                statements.append(step_statement(m, terms))
                reads.update((r, None) for t in terms for r in t.reads)
        # the arrays at hand, and shapes of the statements the call did not run (those
        # only a size is taken from: plan.valued)
        sample = {**self.sample, **env}
        for m in self.loop.members:
            sample[m.name] = self.blank(self.rows[m.name])
            sample[row_name(m.name)] = self.blank(self.rows[m.name])
        for read in reads:
            sample[slice_name(*read)] = self.blank(self.rows[read[0]]) if read[0] in self.rows \
                else _slice(read, s, env, values)
        sample.update(self._positional(s))
        present = tuple(st.name for st in statements)
        runner = self.make_runner(plan_step(statements), sample, self.given) if statements \
            else (lambda step: step)
        zeros = {row_name(m.name): self.zeros(m.name) for m in self.loop.members}
        zeros.update({m.name: self.zeros(m.name) for m in self.loop.members
                      if m.name not in present})
        bound = Bound(runner, tuple(reads),
                      tuple((slice_name(*read), read) for read in reads), zeros)
        self._bound[pattern] = bound
        return bound

    def zeros(self, name: str) -> Any:
        """A member's value at a position where none of its terms is there."""
        if name not in self._zeros:
            self._zeros[name] = self.xp.zeros(self.rows[name], dtype=self.dtype)
        return self._zeros[name]

    def blank(self, shape: tuple[int, ...]) -> Any:
        """Zeros standing for a value binding needs the shape of (a view of one zero)."""
        return self.xp.broadcast_to(self.xp.zeros((), dtype=self.dtype), tuple(shape))


def _longest_run(patterns: list[Pattern]) -> tuple[int, int] | None:
    """The longest stretch ``[start, stop)`` of equal patterns, if longer than one."""
    best = (0, 0)
    start = 0
    for k in range(1, len(patterns) + 1):
        if k == len(patterns) or patterns[k] != patterns[start]:
            if k - start > best[1] - best[0]:
                best = (start, k)
            start = k
    return best if best[1] - best[0] > 1 else None


def step_statement(m: MemberPlan, terms: Sequence[StepTerm]) -> Statement:
    """A member's step with the terms present at a position; its indices sized by its row
    (``m@row``, a stand-in of that shape) where no term there sizes them."""
    rows = tuple(Extent(i, row_name(m.name), a) for a, i in enumerate(m.indices))
    return Statement(m.name, m.indices, Sum(tuple(t.term for t in terms)), m.extents + rows)


def row_name(member: str) -> str:
    return f"{member}@row"


def plan_step(statements: Sequence[Statement]) -> ProgramPlan:
    """The plan of a step's statements (``step_statement``): the members' values at one
    position, from the slices they read and the arrays outside."""
    made = {st.name for st in statements}
    inputs = tuple(dict.fromkeys(r.name for st in statements for r in refs(st.rhs)
                                 if r.name not in made))
    return plan_program(tuple(statements), inputs, statements[-1].name)


def _present(term: StepTerm, s: int, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether a term is there at position ``s``: its conditions hold and each step of the
    recurrence it reads is inside it. (A slice of another array past its ends reads
    zeros, as any read with a given size does: docs/index-arithmetic.md.)"""
    if not all(holds(c, s) for c in term.conditions):
        return False
    return all(0 <= s + offset < int(shapes[tensor][axis])
               for tensor, axis, offset in term.reads if tensor in shapes)


def _slice(read: Read, s: int, env: Env, values: dict[str, list[Any]]) -> Any:
    tensor, axis, offset = read
    if tensor in values:
        return values[tensor][s + offset]
    array = env[tensor]
    at = s + offset
    if not 0 <= at < int(array.shape[axis]):  # past its ends: zeros
        return 0 * array[(slice(None),) * axis + (0,)]
    return array[(slice(None),) * axis + (at,)]


def _block(xp: Any, array: Any, axis: int, start: int, stop: int) -> Any:
    """Rows ``start .. stop-1`` of ``array`` along ``axis``, moved first, zeros where they
    fall past its ends."""
    n = int(array.shape[axis])
    inside = xp.moveaxis(array[(slice(None),) * axis + (slice(max(start, 0), min(stop, n)),)],
                         axis, 0)
    before, after = max(0, min(-start, stop - start)), max(0, stop - max(n, start))
    if not before and not after:
        return inside
    zeros = 0 * inside[:1] if inside.shape[0] else \
        0 * xp.moveaxis(array[(slice(None),) * axis + (slice(0, 1),)], axis, 0)
    pieces = [xp.concatenate([zeros] * before)] if before else []
    pieces += [inside] if inside.shape[0] else []
    pieces += [xp.concatenate([zeros] * after)] if after else []
    return xp.concatenate(pieces)


def _size_of(sample: Env) -> SizeOf:
    """A tensor's axis's size from the arrays (or shapes) at hand; None where unknown."""
    def size_of(tensor: str, axis: int) -> int | None:
        shape = sample[tensor].shape if tensor in sample else ()
        return int(shape[axis]) if axis < len(shape) else None
    return size_of

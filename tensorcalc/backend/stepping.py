"""A recurrence bound to arrays and run along its index (docs/recurrences.md).

The step of each statement (``loops.py``) is bound once per pattern of present terms (the
first positions, where the state before is the start, the middle ones, the last ones, where
a read ahead falls past the end): a small program of the group's statements with the
recurrence index taken out, bound by the same runner as any program. Each position then
costs one run of that bound step, and the values are stacked along the index at the end,
so the step's arrays never need writing into (JAX's arrays cannot be).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import InputError, ProgramError, ShapeError
from ..ir import Ref, Statement, Sum, refs
from .loops import LoopPlan, MemberPlan, Read, StepTerm, holds, slice_name
from .plan import plan_program

Env = dict[Any, Any]
Sizes = dict[str, int]
Pattern = tuple[tuple[bool, ...], ...]


class LoopStep:
    """A recurrence bound to one input signature: the member shapes and the number of
    positions are known; ``__call__`` runs it and leaves every member's value in ``env``.

    ``make_runner(plan, env, given)`` binds a plan (``run.Runner``: handed in, since the
    runner is what builds this); ``xp`` is the array namespace."""

    def __init__(self, loop: LoopPlan, sample: Env, given: Sizes | None,
                 make_runner: Callable[[Any, Env, Sizes | None], Any], xp: Any, dtype: Any):
        self.loop = loop
        self.given = given
        self.make_runner = make_runner
        self.xp = xp
        self.dtype = dtype
        self.length = _length(loop, sample, given)
        # what binding the steps sees: the statements before are shapes only as yet
        sample = {k: v if hasattr(v, "dtype") or not hasattr(v, "shape") else
                  self.blank(v.shape) for k, v in sample.items()}
        self.rows = _row_shapes(loop, sample, given, make_runner, self.blank)
        self.shapes = {m.name: (self.length,) + self.rows[m.name] for m in loop.members}
        self._zeros: dict[str, Any] = {}
        self._bound: dict[Pattern, tuple[Any, tuple[str, ...], tuple[Read, ...]]] = {}

    def __call__(self, env: Env) -> Any:
        loop, n = self.loop, self.length
        values: dict[str, list[Any]] = {m.name: [None] * n for m in loop.members}
        positions: Iterable[int] = range(n) if loop.direction > 0 else range(n - 1, -1, -1)
        dtype = self.dtype
        for s in positions:
            pattern = self._pattern(s, env)
            runner, present, reads = self._bound.get(pattern) or self._bind(pattern, s, env,
                                                                            values)
            step = dict(env)
            for read in reads:
                step[slice_name(*read)] = _slice(read, s, env, values)
            for m in loop.members:  # no term there at this position: zero
                if m.name not in present:
                    step[m.name] = self.zeros(m.name)
            runner(step)
            for m in loop.members:
                if m.name in present:
                    values[m.name][s] = step[m.name]
                    dtype = step[m.name].dtype
        for m in loop.members:
            rows = [v if v is not None else self.xp.zeros(self.rows[m.name], dtype=dtype)
                    for v in values[m.name]]
            env[m.name] = self.xp.stack(rows) if rows else \
                self.xp.zeros(self.shapes[m.name], dtype=dtype)
        return env[loop.members[0].name]

    def _pattern(self, s: int, env: Env) -> Pattern:
        return tuple(tuple(_present(term, s, env, self.shapes) for term in m.terms)
                     for m in self.loop.members)

    def _bind(self, pattern: Pattern, s: int, env: Env, values: dict[str, list[Any]]
              ) -> tuple[Any, tuple[str, ...], tuple[Read, ...]]:
        statements = []
        reads: dict[Read, None] = {}
        for m, present in zip(self.loop.members, pattern):
            terms = [t for t, keep in zip(m.terms, present) if keep]
            if terms:
                statements.append(_statement(m, terms))
                reads.update((r, None) for t in terms for r in t.reads)
        sample = dict(env)
        for m in self.loop.members:
            sample[m.name] = self.blank(self.rows[m.name])
        for read in reads:
            sample[slice_name(*read)] = self.blank(self.rows[read[0]]) if read[0] in self.rows \
                else _slice(read, s, env, values)
        present = tuple(st.name for st in statements)
        if not statements:
            bound = (lambda step: step, present, tuple(reads))
        else:
            inputs = _inputs(statements)
            plan = plan_program(tuple(statements), inputs, statements[-1].name)
            runner = self.make_runner(plan, sample, self.given)
            bound = (runner, present, tuple(reads))
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


def _statement(m: MemberPlan, terms: list[StepTerm]) -> Statement:
    return Statement(m.name, m.indices, Sum(tuple(t.term for t in terms)), m.extents)


def _inputs(statements: list[Statement]) -> tuple[str, ...]:
    made = {st.name for st in statements}
    names: dict[str, None] = {}
    for st in statements:
        for r in refs(st.rhs):
            if r.name not in made:
                names.setdefault(r.name)
    return tuple(names)


def _present(term: StepTerm, s: int, env: Env, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether a term is there at position ``s``: its conditions hold and each slice it
    reads is inside its array."""
    if not all(holds(c, s) for c in term.conditions):
        return False
    for tensor, axis, offset in term.reads:
        shape = shapes[tensor] if tensor in shapes else env[tensor].shape
        if not 0 <= s + offset < int(shape[axis]):
            return False
    return True


def _slice(read: Read, s: int, env: Env, values: dict[str, list[Any]]) -> Any:
    tensor, axis, offset = read
    if tensor in values:
        return values[tensor][s + offset]
    array = env[tensor]
    return array[(slice(None),) * axis + (s + offset,)]


def _length(loop: LoopPlan, sample: Env, given: Sizes | None) -> int:
    """The number of positions: the length of an array a step reads plainly along the
    recurrence index, or the size given for it."""
    names = {m.name for m in loop.members}
    for m in loop.members:
        for term in m.terms:
            for tensor, axis, offset in term.reads:
                if offset == 0 and tensor not in names and tensor in sample:
                    return int(sample[tensor].shape[axis])
    for m in loop.members:
        if given and m.index in given:
            return int(given[m.index])
    for m in loop.members:  # an extent of the index, from outside the recurrence
        for tensor, axis in m.lengths:
            if tensor in sample and tensor not in names:
                return int(sample[tensor].shape[axis])
    index = loop.members[0].index
    raise InputError(f"cannot tell how many steps the recurrence of "
                     f"{', '.join(loop.names)} takes: no array is read along {index} there; "
                     f"give it with sizes={{{index!r}: ...}}")


def _row_shapes(loop: LoopPlan, sample: Env, given: Sizes | None,
                make_runner: Callable[[Any, Env, Sizes | None], Any],
                blank: Callable[[tuple[int, ...]], Any]) -> dict[str, tuple[int, ...]]:
    """Each member's shape at one position, bound from the terms whose reads are known:
    members are bound in turns until every one has its shape."""
    rows: dict[str, tuple[int, ...]] = {}
    shapes = {m.name: None for m in loop.members}
    last_error: Exception | None = None
    for _round in range(len(loop.members) + 1):
        for m in loop.members:
            if m.name in rows:
                continue
            known = [t for t in m.terms if all(r[0] not in shapes or r[0] in rows
                                               for r in t.reads)
                     and all(x.name not in shapes or x.name in rows for x in _step_refs(t))]
            if not known:
                continue
            env: Env = dict(sample)
            for name, row in rows.items():
                env[name] = blank(row)
            for t in known:
                for read in t.reads:
                    env[slice_name(*read)] = blank(_read_shape(read, sample, rows))
            st = _statement(m, known)
            try:
                plan = plan_program((st,), _inputs([st]), st.name)
                runner = make_runner(plan, env, given)
            except (InputError, ShapeError) as err:
                last_error = err
                continue
            rows[m.name] = tuple(runner.shape)
        if len(rows) == len(loop.members):
            return rows
    if last_error is not None:
        raise last_error
    raise ProgramError(f"cannot tell the shapes of {', '.join(loop.names)}: every term "
                       "of their steps reads another of them")  # pragma: no cover


def _step_refs(t: StepTerm) -> list[Ref]:
    return list(refs(Sum((t.term,))))


def _read_shape(read: Read, sample: Env, rows: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    tensor, axis, _offset = read
    if tensor in rows:
        return rows[tensor]
    shape = tuple(int(n) for n in sample[tensor].shape)
    return shape[:axis] + shape[axis + 1:]

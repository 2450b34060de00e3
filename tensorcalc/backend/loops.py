"""A recurrence's step, planned once (docs/recurrences.md).

The statements of a recurrence (``ir.recurrences``) are computed one position of their
first index at a time. Each statement is written once as its step: the recurrence index
taken out, each read that involves it replaced by a read of one slice (``x[t+1,m]`` reads
``x``'s row ``t+1``, ``h[t-1,k]`` the step before), and its conditions on it (``[t ==
0]``) kept aside to be decided at each position. A term whose slice lies outside its
array at a position is absent there (docs/index-arithmetic.md: padding belongs to a whole
term). The runner (``stepping.py``) binds each pattern of present terms once and runs it
along the index; nothing here sees an array.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, ProgramError
from ..ir import (
    SIZE_MARK,
    ZERO,
    Affine,
    Call,
    Cond,
    Delta,
    Extent,
    Factor,
    Power,
    Reduce,
    Ref,
    Shift,
    Statement,
    Subscript,
    Sum,
    Term,
    all_deltas,
    all_terms,
    mentioned,
    refs,
    statement_extents,
    sub_names,
)
from ..ir.recurrences import Group

Read = tuple[str, int, int]  # tensor, axis, offset from the step's position
# A size: a number where arrays are at hand (the runner), the source text that computes
# it where they are not (export); ``SizeOf`` gives a tensor's axis's, None where unknown.
Size = Any
SizeOf = Callable[[str, int], Size]


@dataclass(frozen=True)
class StepTerm:
    """One top-level term of a step: the term with the recurrence index taken out, the
    slices it reads and the conditions on the index it carries (each ``(op, a, b)``, with
    ``a`` and ``b`` offsets from the position, or None for a constant in ``constants``)."""

    term: Term
    reads: tuple[Read, ...]
    conditions: tuple[tuple[str, int | None, int | None, int], ...]
    # delta[t, r+c] with r an index of the step's own (a derivative with respect to an
    # input read along t): read as a one-hot row, ``(name, axis of r, offset)``: 1 at
    # position s + offset
    onehots: tuple[tuple[str, int, int], ...] = ()
    # a condition on t inside a function's argument: a number, 1 or 0 at each position
    scalars: tuple[tuple[str, tuple[str, int | None, int | None, int]], ...] = ()


@dataclass(frozen=True)
class MemberPlan:
    """One statement of a recurrence as its step: ``indices`` without the recurrence's."""

    name: str
    index: str  # the recurrence index, as this statement names it
    indices: tuple[str, ...]
    terms: tuple[StepTerm, ...]
    extents: tuple[Extent, ...]
    # where the recurrence index's size is given (a derivative's, or the caller's: ``#t``)
    lengths: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class LoopPlan:
    """A recurrence: its statements' steps in program order; ``direction`` +1 runs the
    positions up (a step reads the one before), -1 down."""

    members: tuple[MemberPlan, ...]
    direction: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)


def slice_name(tensor: str, axis: int, offset: int) -> str:
    """The name a step reads a slice by: ``x`` at axis 0, one position on: ``x@0+1``."""
    return f"{tensor}@{axis}{offset:+d}"


def plan_loops(statements: Sequence[Statement], groups: Sequence[Group]
               ) -> tuple[LoopPlan, ...]:
    """The recurrences (``groups``) among the statements, each planned as a step."""
    by_name = {st.name: st for st in statements}
    return tuple(_plan_loop(g, by_name) for g in groups)


def _plan_loop(group: Group, by_name: dict[str, Statement]) -> LoopPlan:
    members = set(group.members)
    return LoopPlan(tuple(_member(by_name[n], members) for n in group.members), group.direction)


def _member(st: Statement, members: set[str]) -> MemberPlan:
    t = st.indices[0]
    terms = tuple(_step_term(term, t, members, st.name, st.indices[1:])
                  for term in st.rhs.terms)
    extents = tuple(_extent(e, t, members, st.name) for e in st.extents if e.name != t)
    given = [e for e in statement_extents(st) if e.name == t and e.given]
    shifted = [r for term in terms for r in term.reads if r[0] not in members and r[2]]
    if shifted and not given:
        tensor, axis, offset = shifted[0]
        raise ProgramError(
            f"statement {st.name} is part of a recurrence along {t} and reads {tensor} "
            f"{offset:+d} along it: give the size of {t} (sizes={{{t!r}: ...}}, or an input "
            f"declaration), so that the recurrence runs over all of it and the read is zero "
            f"past {tensor}'s ends; or compute the shifted {tensor} in a statement before it "
            "(docs/recurrences.md)")
    lengths = tuple((e.tensor, e.axis) for e in given)
    return MemberPlan(st.name, t, st.indices[1:], terms, extents, lengths)


def _unsupported(name: str, t: str, what: str) -> ProgramError:
    return ProgramError(f"statement {name} is part of a recurrence along {t}, but {what}; a "
                        f"step of a recurrence reads {t} only as one subscript of a tensor "
                        f"({t}, {t}+1, {t}-1) and in conditions on {t} alone "
                        "(docs/recurrences.md)")


def _step_term(term: Term, t: str, members: set[str], name: str,
               own: tuple[str, ...]) -> StepTerm:
    found = _Found(name)
    conditions: list[tuple[str, int | None, int | None, int]] = []
    onehots: list[tuple[str, int, int]] = []
    factors: list[Factor] = []
    for f in term.factors:
        if t not in mentioned(f):
            factors.append(f)
        elif isinstance(f, (Delta, Shift)) and _onehot(f, t, own) is not None:
            index, offset = _onehot(f, t, own)  # type: ignore[misc]
            onehots.append((f"{name}@onehot{own.index(index)}{offset:+d}", own.index(index),
                            offset))
            factors.append(Ref(onehots[-1][0], (index,)))
        elif isinstance(f, (Shift, Cond, Delta)):
            conditions.append(_condition(f, t, name))
        else:
            factors.append(_factor(f, t, members, found, name))
    if t in term.summed:
        raise _unsupported(name, t, f"a term sums over {t}")
    extents = tuple(_extent(e, t, members, name) for e in term.extents if e.name != t)
    stepped = Term(term.coef, tuple(factors), term.summed, extents)
    if t in stepped.mentioned:
        raise _unsupported(name, t, f"{t} is used otherwise")
    return StepTerm(stepped, tuple(dict.fromkeys(found.reads)), tuple(conditions),
                    tuple(onehots), tuple(found.scalars))


_OPS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class _Found:
    """What a term's factors read of the recurrence index: slices, and conditions inside
    functions (each made a number, named ``#cond:...``)."""

    def __init__(self, member: str):
        self.member = member
        self.reads: list[Read] = []
        self.scalars: list[tuple[str, tuple[str, int | None, int | None, int]]] = []

    def scalar(self, condition: tuple[str, int | None, int | None, int]) -> Ref:
        op, a, b, constant = condition
        left, right = ("c" if k is None else f"{k:+d}" for k in (a, b))
        name = f"@cond{_OPS[op]}{left}{right}{constant:+d}"
        self.scalars.append((name, condition))
        return Ref(name, ())


def _onehot(f: Delta | Shift, t: str, own: tuple[str, ...]) -> tuple[str, int] | None:
    """``(r, c)`` where ``f`` is 1 exactly where ``r == t + c``, ``r`` an index of the
    step's own; None otherwise."""
    if isinstance(f, Delta):
        other = f.j if f.i == t else f.i if f.j == t else None
        return (other, 0) if other in own and other != t else None
    sub = f.sub
    if not isinstance(sub, Affine):
        return None
    if f.i == t and len(sub.parts) == 1 and sub.parts[0][1] == 1 and sub.parts[0][0] in own:
        return sub.parts[0][0], -sub.offset  # t == r + c: r == t - c
    if f.i in own and sub.parts == ((t, 1),):
        return f.i, sub.offset
    return None


def _factor(f: Factor, t: str, members: set[str], reads: _Found, name: str) -> Factor:
    """``f`` with each read that involves ``t`` made a read of one slice."""
    if isinstance(f, Ref):
        return _ref(f, t, members, reads, name)
    if isinstance(f, Call):
        return Call(f.fn, tuple(_sum(a, t, members, reads, name) for a in f.args))
    if isinstance(f, Power):
        return Power(_sum(f.base, t, members, reads, name),
                     _sum(f.exponent, t, members, reads, name))
    if isinstance(f, Reduce) and t not in f.indices:
        return Reduce(f.fn, f.indices, _sum(f.arg, t, members, reads, name), f.keeps, f.mask)
    if isinstance(f, Sum):
        return _sum(f, t, members, reads, name)
    raise _unsupported(name, t, f"a {type(f).__name__.lower()} uses {t}")


def _sum(expr: Sum, t: str, members: set[str], reads: _Found, name: str) -> Sum:
    terms = []
    for term in expr.terms:
        if t in term.summed:
            raise _unsupported(name, t, f"a term sums over {t}")
        factors = tuple(
            f if t not in mentioned(f) else
            reads.scalar(_condition(f, t, name)) if isinstance(f, (Shift, Cond, Delta)) else
            _factor(f, t, members, reads, name) for f in term.factors)
        terms.append(Term(term.coef, factors, term.summed, term.extents))
    return Sum(tuple(terms)) if terms else ZERO


def _ref(r: Ref, t: str, members: set[str], reads: _Found, name: str) -> Ref:
    found = [(axis, _offset(s, t)) for axis, s in enumerate(r.axes) if t in sub_names(s)]
    if len(found) != 1 or found[0][1] is None:
        raise _unsupported(name, t, f"it reads {r.name} with {t} in a subscript otherwise")
    axis, offset = found[0]
    assert offset is not None
    rest = r.axes[:axis] + r.axes[axis + 1:]
    if offset == 0 and r.name in members:
        target = r.name  # the same step of a statement before it: the step's own value
    else:
        target = slice_name(r.name, axis, offset)
        reads.reads.append((r.name, axis, offset))
    if all(isinstance(s, str) for s in rest):
        return Ref(target, tuple(rest))  # type: ignore[arg-type]
    names = tuple(dict.fromkeys(n for s in rest for n in sub_names(s)))
    return Ref(target, names, tuple(rest))


def _offset(s: Subscript, t: str) -> int | None:
    if s == t:
        return 0
    if isinstance(s, Affine) and s.parts == ((t, 1),):
        return s.offset
    return None


def _condition(f: Shift | Cond | Delta, t: str, name: str
               ) -> tuple[str, int | None, int | None, int]:
    """A condition on ``t`` alone as ``(op, a, b, constant)``: ``a``/``b`` the offsets
    of each side from the position, None where that side is ``constant``."""
    if isinstance(f, Delta):
        sides: tuple[Subscript, Subscript] = (f.i, f.j)
        op = "=="
    elif isinstance(f, Shift):
        sides, op = (f.i, f.sub), "=="
    else:
        sides, op = (f.a, f.b), f.op
    values: list[int | None] = []
    constant = 0
    for s in sides:
        offset = _offset(s, t)
        if offset is None and isinstance(s, Affine) and not s.parts:
            constant = s.offset
        elif offset is None:
            raise _unsupported(name, t, f"a condition ties {t} to another index")
        values.append(offset)
    return op, values[0], values[1], constant


def _extent(e: Extent, t: str, members: set[str], name: str) -> Extent:
    """An extent of an index other than ``t``: a step's own value has no ``t`` axis."""
    if e.tensor in members:
        if e.axis == 0:
            raise _unsupported(name, t, f"index {e.name} is sized like {t}")
        return Extent(e.name, e.tensor, e.axis - 1, e.given)
    return e


def holds(condition: tuple[str, int | None, int | None, int], position: int) -> bool:
    """Whether a step's condition holds at ``position``."""
    op, a, b, constant = condition
    left = position + a if a is not None else constant
    right = position + b if b is not None else constant
    return bool({"==": left == right, "!=": left != right, "<": left < right,
                 "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def step_count(loop: LoopPlan, size_of: SizeOf, given: Mapping[str, Size]) -> Size:
    """The number of positions: the size given to the recurrence index (by the caller, or
    a derivative's extent from outside the recurrence), else the length of an array a
    step reads plainly along it, else a size given by its name."""
    names = set(loop.names)
    for m in loop.members:  # a size given to the index: the caller's, or a derivative's
        for tensor, axis in m.lengths:
            if tensor.startswith(SIZE_MARK) and tensor[len(SIZE_MARK):] in given:
                return given[tensor[len(SIZE_MARK):]]
            found = size_of(tensor, axis) if tensor not in names else None
            if found is not None:
                return found
    for m in loop.members:
        for term in m.terms:
            for tensor, axis, offset in term.reads:
                found = size_of(tensor, axis) if offset == 0 and tensor not in names else None
                if found is not None:
                    return found
    for m in loop.members:
        if m.index in given:
            return given[m.index]
    index = loop.members[0].index
    raise InputError(f"cannot tell how many steps the recurrence of "
                     f"{', '.join(loop.names)} takes: no array is read along {index} there; "
                     f"give it with sizes={{{index!r}: ...}}")


def step_sizes(loop: LoopPlan, size_of: SizeOf, given: Mapping[str, Size]
               ) -> dict[str, dict[str, Size]]:
    """The size of each index of each member's step (its row's axes among them): the sizes
    its reads give, passed along the reads of one member by another (``v_prev[j]`` reads
    ``v``'s row) until every axis of every row has one."""
    names = set(loop.names)

    def axis_of(tensor: str, axis: int) -> Any:  # a member's row axis is a variable
        if tensor in names:
            return ("row", tensor, axis)
        found = size_of(tensor, axis)
        return ("unknown", tensor, axis) if found is None else found

    ties: list[tuple[Any, Any]] = []  # pairs of equal sizes: ("index", m, i), ("row", m, a)
    for m in loop.members:
        ties += [(("index", m.name, i), ("row", m.name, a)) for a, i in enumerate(m.indices)]
        ties += _read_ties(m, names, axis_of)
        ties += [(("index", m.name, i), given[i]) for i in m.indices if i in given]
    known = _propagated(ties)
    sizes = {}
    for m in loop.members:
        missing = [i for a, i in enumerate(m.indices) if ("row", m.name, a) not in known]
        if missing:
            raise InputError(f"cannot tell the size of index {missing[0]} in statement "
                             f"{m.name}: no array gives it; give it with "
                             f"sizes={{{missing[0]!r}: ...}}")
        sizes[m.name] = {key[2]: value for key, value in known.items()
                         if key[:2] == ("index", m.name)}
    return sizes


def _read_ties(m: MemberPlan, names: set[str], axis_of: Callable[[str, int], Any]
               ) -> list[tuple[Any, Any]]:
    """The sizes a member's extents, reads and deltas tie its indices to."""
    sliced = {slice_name(*r): r for t in m.terms for r in t.reads}
    whole = Sum(tuple(t.term for t in m.terms))
    ties: list[tuple[Any, Any]] = [
        (("index", m.name, e.name), axis_of(e.tensor, e.axis))
        for e in m.extents + tuple(e for term in all_terms(whole) for e in term.extents)]
    for r in refs(whole):
        for axis, i in r.plain_axes():
            if r.name in sliced:  # a slice: a member's row, or an array less its cut axis
                tensor, cut, _offset = sliced[r.name]
                where = axis if tensor in names else axis + (axis >= cut)
                ties.append((("index", m.name, i), axis_of(tensor, where)))
            else:
                ties.append((("index", m.name, i), axis_of(r.name, axis)))
    ties += [(("index", m.name, d.i), ("index", m.name, d.j)) for d in all_deltas(whole)]
    return ties


def _propagated(ties: list[tuple[Any, Any]]) -> dict[Any, Size]:
    """Each variable's size, passed along the ties from the sizes known (a tuple is a
    variable, anything else a size) to a fixed point."""
    known: dict[Any, Size] = {}
    changed = True
    while changed:
        changed = False
        for a, b in ties:
            for x, y in ((a, b), (b, a)):
                value = x if not isinstance(x, tuple) else known.get(x)
                if value is not None and isinstance(y, tuple) and y not in known:
                    known[y] = value
                    changed = True
    return known

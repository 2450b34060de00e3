"""The plan of a program: what each statement computes, decided once, with no arrays.

For each statement the plan holds its terms (deltas substituted away, the axes a delta
ties, the einsum spec of the product, the summed indices no factor carries), a tree of
operands for the factors that are not plain tensors (functions, powers, groups), which
operands repeat and are computed once, and where each index takes its size from. The
runner (``run.py``) binds a plan to arrays and the exporter (``export.py``) writes it as
Python: neither decides anything the plan has decided.

>>> from tensorcalc.api import compile
>>> p = compile("y[i] = W[i,j] x[j]")
>>> plan = plan_program(p.needed, p.needed_inputs, p.result)
>>> plan.statements[0].rhs.terms[0].spec
'ij,j->i'
>>> plan.statements[0].sources["j"]
('W', 1)
"""

from __future__ import annotations

from collections.abc import Iterable

import opt_einsum as oe

from ..calculus.simplify import bound_key, substitute_deltas, tie_groups
from ..ir import (
    all_deltas,
    all_factors,
    arithmetic,
    children,
    collapses,
    const_value,
    index_tensors,
    only_contracted,
    reads,
    reductions,
    refs,
    rename_term,
    statement_extents,
    statement_refs,
    unknown_kind,
)
from ..ir.nodes import Call, Cond, Delta, Factor, Power, Reduce, Ref, Shift, Statement, Sum, Term
from ..ir.recurrences import recurrence_groups, steps_together
from ..ir.sizes import index_sources
from ..ir.subscripts import Affine
from ..ops.reductions import MATRIX
from . import operands
from .invariants import hoist_invariants
from .loops import plan_loops
from .operands import ProgramPlan as ProgramPlan  # program.py takes it from here
from .shared_calls import share_calls


def plan_program(statements: tuple[Statement, ...], inputs: tuple[str, ...],
                 result: str) -> ProgramPlan:
    """The plan of the statements a result needs (in order), reading ``inputs``."""
    rectangular = any(arithmetic(st.rhs) for st in statements)
    groups = recurrence_groups(statements)
    written = {st.name for st in statements}
    if groups:
        statements = share_calls(statements, groups)
        groups = recurrence_groups(statements)
        statements = steps_together(hoist_invariants(statements, groups), groups)
    loops = plan_loops(statements, groups)
    valued = {result}
    while True:  # to a fixed point: a recurrence reads later statements
        before = len(valued)
        for st in reversed(statements):
            if st.name in valued:
                valued |= {r.name for r in statement_refs(st)} | \
                    {g.name for g in index_tensors(st.rhs)}
        for loop in loops:  # one member valued: the step computes them all
            if valued & set(loop.names):
                valued |= set(loop.names)
        if len(valued) == before:
            break
    return ProgramPlan(tuple(plan_statement(st, rectangular) for st in statements), inputs,
                       result, frozenset(valued), loops,
                       tuple(st for st in statements if st.name not in written))


def plan_statement(st: Statement, rectangular: bool = False) -> operands.StatementPlan:
    tensors = tuple((r.name, r.axes) for r in statement_refs(st)) + \
        tuple((g.name, g.indices) for g in index_tensors(st.rhs))
    occurrences = tuple((i, name, axis) for name, axes in tensors
                        for axis, i in enumerate(axes) if isinstance(i, str))
    sources = index_sources(st)
    accesses: tuple[tuple[str | None, int | str, Affine], ...] = ()
    given: dict[str, tuple[str, int]] = {}
    if arithmetic(st.rhs):
        accesses = tuple(
            (r.name, axis, sub) for r in statement_refs(st) for axis, sub in enumerate(r.axes)
            if isinstance(sub, Affine)) + tuple(
            (None, f.i, f.sub) for f in all_factors(st.rhs)
            if isinstance(f, Shift) and isinstance(f.sub, Affine))
        for e in statement_extents(st):
            if e.given:
                given.setdefault(e.name, (e.tensor, e.axis))
        sources = {**sources, **given}
    deltas = tuple((d.i, d.j) for d in all_deltas(st.rhs))
    every = tuple(dict.fromkeys(
        st.indices + tuple(i for t in st.rhs.terms for i in sorted(t.mentioned))))
    slots = _repeated(st.rhs)
    slots.rectangular = rectangular = rectangular or bool(accesses)
    rhs = plan_sum(st.rhs, slots, st.indices)
    square = tuple(dict.fromkeys((f.indices[0], f.indices[1], f.fn) for f, _ in reductions(st.rhs)
                                 if f.fn in MATRIX))
    return operands.StatementPlan(st.name, st.indices, rhs, tensors, occurrences, sources,
                                  deltas, every, square, accesses, given, rectangular,
                                  st.aliases, _summed_apart(st),
                                  _shortest(accesses, given))


def _shortest(accesses: tuple[tuple[str | None, int | str, Affine], ...],
              given: dict[str, tuple[str, int]]) -> frozenset[str]:
    """The indices a tensor reads alone through arithmetic (``V[t+1]``), but those with a
    given size (which cuts and pads as it is): the valid rule runs each over the largest
    range at which every read of it stays inside, the shortest of its plain reads too."""
    return frozenset(sub.parts[0][0] for name, _, sub in accesses
                     if name is not None and len(sub.parts) == 1) - set(given)


def _summed_apart(st: Statement) -> dict[str, tuple[frozenset[str], ...]]:
    """Each index that two or more top-level terms sum, each its own, with the names of
    the tensors of each such term: two sums that share a name, and so a size, only by the
    writer's choice (a size error between them suggests renaming one)."""
    terms: dict[str, list[frozenset[str]]] = {}
    for t in st.rhs.terms:
        names = frozenset(r.name for r in refs(Sum((t,))))
        for i in t.mentioned - frozenset(st.indices):  # no left-hand index: summed inside
            terms.setdefault(i, []).append(names)
    return {i: tuple(held) for i, held in terms.items() if len(held) > 1}


class _Slots:
    """Numbers for the operands that occur more than once in a statement, up to the names
    of their own bound indices (``sigmoid(X[k,l] w[l])`` and ``sigmoid(X[k,l1] w[l1])``
    are one value)."""

    def __init__(self, repeated: set[SlotKey], candidates: set[Rough]):
        self.repeated = repeated
        self.candidates = candidates  # rough keys that more than one factor has
        self.numbers: dict[SlotKey, int] = {}
        # In a statement with index arithmetic two indices a delta ties may have different
        # sizes (``delta[i,p]`` with i over N-1 and p over N): its deltas are operands.
        self.rectangular = False

    def slot(self, f: Factor) -> int | None:
        if rough_key(f) not in self.candidates:
            return None
        key = slot_key(f)
        if key not in self.repeated:
            return None
        return self.numbers.setdefault(key, len(self.numbers))


SlotKey = tuple[str, tuple[str, ...]]
Rough = tuple[str, tuple[str, ...], tuple[str, ...]]


def slot_key(f: Factor) -> SlotKey:
    """Equal for factors that compute the same values over the same axes, in order."""
    return bound_key(f), f.free


def rough_key(f: Factor) -> Rough:
    """Equal whenever ``slot_key`` is, and cheap: what the factor reads (``ir.reads``)
    and its axes."""
    return (*reads(f), f.free)


def plan_sum(expr: Sum, slots: _Slots | None = None,
             order: tuple[str, ...] = ()) -> operands.SumPlan:
    """The plan of a sum whose value is laid out over ``order``: each product is computed
    in that order of axes where it can be, so that nothing is transposed afterwards."""
    slots = slots if slots is not None else _Slots(set(), set())
    return operands.SumPlan(tuple(plan_term(t, slots, order) for t in expr.terms))


def plan_term(term: Term, slots: _Slots, order: tuple[str, ...] = ()) -> operands.TermPlan:
    term = substitute_deltas(term)
    scattered = _scattered(term)
    if scattered:
        return _plan_scatter(term, scattered, slots)
    ties = {i: r for i, r in tie_groups(term).items() if i != r}
    groups: dict[str, set[str]] = {}
    for i, r in ties.items():
        groups.setdefault(r, {r}).add(i)
    # Deltas are structure, not operands: the core is the product of the other factors
    # on the diagonal the deltas pick. Except where that diagonal would run through the
    # axes of an inv or a softmax (ir.collapses): then the deltas are identity operands.
    explicit = tuple(f for f in term.factors if isinstance(f, Delta)) \
        if slots.rectangular or any(collapses(term, g) for g in groups.values()) else ()
    if explicit:
        ties = {}
    core = rename_term(
        Term(term.coef, tuple(f for f in term.factors if not isinstance(f, Delta)), term.summed),
        ties,
    )
    parts = tuple(_operand(f, slots) for f in core.factors) + \
        tuple(operands.DeltaOperand(d.i, d.j) for d in explicit)
    present = {i for op in parts for i in operands.operand_indices(op)}
    core_free = tuple(dict.fromkeys(ties.get(i, i) for i in term.free))
    # Two or more operands: contract straight into the order of the value (one operand is
    # only a view to transpose, which is free).
    wanted = tuple(dict.fromkeys(ties.get(i, i) for i in order if ties.get(i, i) in core_free)
                   ) if len(parts) > 1 else ()
    einsum_out = tuple(i for i in wanted + core_free if i in present)
    einsum_out = tuple(dict.fromkeys(einsum_out))
    parts = _solves(parts, einsum_out)
    return operands.TermPlan(core.coef, parts, _spec(parts, einsum_out), einsum_out,
                             term.free, ties, tuple(sorted(core.summed - present)))


def _scattered(term: Term) -> tuple[Shift, ...]:
    """The shifted deltas of a term that run as a scatter-add: those whose target index
    no other factor has (the others are ``MaskOperand``s)."""
    shifts = [f for f in term.factors if isinstance(f, Shift)]
    if not shifts:
        return ()
    return tuple(s for s in shifts if not any(
        s.i in g.free for g in term.factors if g is not s) and
        sum(1 for t in shifts if t.i == s.i) == 1)


def _plan_scatter(term: Term, shifts: tuple[Shift, ...], slots: _Slots) -> operands.TermPlan:
    grid = tuple(dict.fromkeys(n for s in shifts for n in s.sub.names))
    others = tuple(f for f in term.factors if f not in shifts)
    core = Term(term.coef, others, term.summed - set(grid))
    core_plan = plan_term(core, slots)
    rest = tuple(i for i in core.free if i not in grid)
    kept = tuple(i for i in grid if i in term.free)
    targets = tuple(s.i for s in shifts)
    free = targets + kept + rest
    op = operands.ScatterOperand(core_plan, tuple((s.i, s.sub) for s in shifts), grid, kept,
                                 rest, free)
    out = tuple(i for i in term.free if i in free)
    return operands.TermPlan(1.0, (op,), _spec((op,), out), out, term.free, {}, ())


def _spec(parts: tuple[operands.Operand, ...], out: tuple[str, ...]) -> str:
    indices = [operands.operand_indices(op) for op in parts]
    letters = einsum_letters([i for idx in indices for i in idx] + list(out))
    return ",".join("".join(letters[i] for i in idx) for idx in indices) + "->" + \
        "".join(letters[i] for i in out)


def _solves(parts: tuple[operands.Operand, ...],
            out: tuple[str, ...]) -> tuple[operands.Operand, ...]:
    """Each inverse the term only contracts (over its column index, or its row index),
    with the operands that hold that index, made one ``SolveOperand``: ``inv[i,j](A) b[j]``
    is ``solve(A, b)``, never ``A⁻¹`` and a product. An inverse used again elsewhere in
    the statement (``shared``) is computed once instead."""
    for k, op in enumerate(parts):
        if not (isinstance(op, operands.ReduceOperand) and op.fn == "inv" and op.shared is None):
            continue
        others = parts[:k] + parts[k + 1:]
        i, j = op.indices
        for contracted, kept, transpose in ((j, i, False), (i, j, True)):
            right = tuple(o for o in others if contracted in operands.operand_indices(o))
            if contracted in out or not right:
                continue
            left = tuple(o for o in others if contracted not in operands.operand_indices(o))
            wanted = set(out) | set(op.free) | {x for o in left
                                                for x in operands.operand_indices(o)}
            z = tuple(dict.fromkeys(x for o in right for x in operands.operand_indices(o)
                                    if x in wanted or x == contracted))
            rest = tuple(x for x in z if x != contracted and x not in op.batch)
            right = _solves(right, z)
            right_plan = operands.TermPlan(1.0, right, _spec(right, z), z, z, {}, ())
            solve = operands.SolveOperand(op.arg, (i, j), op.batch, transpose, right_plan,
                                          rest, op.batch + (kept,) + rest)
            return _solves((solve,) + left, out)
    return parts


def _operand(f: Factor, slots: _Slots) -> operands.Operand:
    if isinstance(f, Ref):
        return operands.RefOperand(f.name, f.indices, f.subs)
    if isinstance(f, Shift):
        return operands.MaskOperand(f.i, f.sub, f.free)
    if isinstance(f, Cond):
        return condition(f, f.free)
    if isinstance(f, Call):
        return operands.CallOperand(f.fn, tuple(plan_sum(a, slots, f.free) for a in f.args),
                                    f.free, slots.slot(f))
    if isinstance(f, Power):
        n = const_value(f.exponent)
        exponent: float | operands.SumPlan = n if n is not None \
            else plan_sum(f.exponent, slots, f.free)
        return operands.PowerOperand(plan_sum(f.base, slots, f.free), exponent, f.free,
                                     slots.slot(f))
    if isinstance(f, Reduce):
        layout = f.batch + f.indices
        return operands.ReduceOperand(f.fn, f.indices, plan_sum(f.arg, slots, layout),
                                      f.batch, f.free, slots.slot(f),
                                      tuple(condition(c, layout) for c in f.mask))
    if isinstance(f, Sum):
        return operands.GroupOperand(plan_sum(f, slots, f.free), f.free, slots.slot(f))
    unknown_kind(f)  # a Delta is removed before this


def condition(c: Cond, free: tuple[str, ...]) -> operands.ConditionOperand:
    """An index condition laid out over ``free`` (its own indices, or a reduction's
    argument's axes)."""
    return operands.ConditionOperand(c.op, c.a, c.b, free)


def _repeated(expr: Sum) -> _Slots:
    """Slots for the function calls, powers, reductions and groups that occur more than
    once in a statement (up to the names of their bound indices)."""
    factors: list[Factor] = []
    solved: dict[int, bool] = {}  # an inverse's occurrence that runs as a solve
    stack = [expr]
    while stack:
        s = stack.pop()
        for t in s.terms:
            for f in t.factors:
                if isinstance(f, (Call, Power, Reduce, Sum)):
                    factors.append(f)
                    solved[len(factors) - 1] = only_contracted(f, t)
                    stack += children(f)
    rough: dict[Rough, int] = {}
    keys = [rough_key(f) for f in factors]
    for key in keys:
        rough[key] = rough.get(key, 0) + 1
    candidates = {key for key, n in rough.items() if n > 1}
    seen: set[SlotKey] = set()
    twice: set[SlotKey] = set()
    solves: set[SlotKey] = set()  # inverses only ever contracted
    dense: set[SlotKey] = set()  # anything else, inverses needed as a matrix included
    if not candidates:
        return _Slots(twice, candidates)
    for k, f in enumerate(factors):
        if keys[k] in candidates:
            exact = slot_key(f)
            (twice if exact in seen else seen).add(exact)
            (solves if solved[k] else dense).add(exact)
    # An inverse that is only ever contracted runs as a solve each time, never as a
    # matrix (docs/functions.md), however often it occurs.
    twice -= solves - dense
    return _Slots(twice, candidates)


def einsum_letters(indices: Iterable[str]) -> dict[str, str]:
    """Einsum letters: an index keeps its own name where it is one ASCII letter; others
    take unused symbols (opt_einsum has symbols beyond the 52 letters)."""
    names = list(dict.fromkeys(indices))
    letters = {i: i for i in names if len(i) == 1 and i.isascii() and i.isalpha()}
    used = set(letters.values())
    k = 0
    for i in names:
        if i not in letters:
            while oe.get_symbol(k) in used:
                k += 1
            letters[i] = oe.get_symbol(k)
            used.add(letters[i])
    return letters

"""Questions passes ask of terms and statements: which sizes a factor carries, which
extents a term still needs, what a statement depends on, whether a delta may be
substituted into a term.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..caching import READS
from . import nodes
from .nodes import Call, Cond, Delta, Extent, Factor, Reduce, Ref, Shift, Statement, Sum, Term
from .subscripts import Affine
from .walk import all_factors, arithmetic, index_tensors, refs, statement_extents

__all__ = [
    "broadcasts", "collapses", "dependencies", "extents_from", "needed_extents",
    "needed_statements", "only_contracted", "read_inside", "reads", "sizes_carried",
]


def collapses(term: Term, names: Iterable[str]) -> bool:
    """Would making ``names`` one index rename two axes of an ``inv`` or ``softmax``
    inside ``term`` alike? Their value on a diagonal is not the function of the diagonal
    (``inv[i,i](M[i,i])`` is not the diagonal of ``inv[i,j](M[i,j])``), so such a delta
    must not be substituted into them."""
    wanted = set(names)
    return any(isinstance(f, Reduce) and f.keeps and len(wanted & set(f.free)) > 1
               for f in all_factors(Sum((term,))))


def broadcasts(term: Term, around: Iterable[str]) -> list[tuple[Term, list[str]]]:
    """The terms of ``term``'s parenthesised sums, in reading order, each with the indices
    of ``around`` (summed around ``term`` as a whole) that it lacks, and so is added once
    per value of: in ``sum[i,j](lam (A[i]^2 + B[j]^2))`` A's term lacks ``j``. The sum
    reaches a group's terms where the group is the only factor of ``term`` that holds
    the index (a term inside that sums a name of its own stops it)."""
    found: list[tuple[Term, list[str]]] = []
    wanted = frozenset(around)
    for f in term.factors:
        if not isinstance(f, Sum):
            continue
        through = sorted(i for i in wanted if _only_holder(term, i, f))
        for t in f.terms:
            names = [i for i in through if i not in t.mentioned]
            if names:
                found.append((t, names))
            found += broadcasts(t, frozenset(through) - frozenset(names) - t.summed)
    return found


def _only_holder(term: Term, index: str, factor: Factor) -> bool:
    """Is ``factor`` the one factor of ``term`` that holds ``index``?"""
    holders = [g for g in term.factors if index in g.free]
    return len(holders) == 1 and holders[0] is factor


def only_contracted(f: Factor, term: Term) -> bool:
    """Is ``f`` an inverse that ``term`` contracts over its row or its column index with
    another factor (``inv[i,j](A[i,j]) b[j]``)? Such an inverse runs as a linear solve."""
    if not isinstance(f, Reduce) or f.fn != "inv":
        return False
    others = [g for g in term.factors if g is not f]
    return any(i in term.summed and any(i in g.free for g in others) for i in f.indices)


def sizes_carried(f: Factor) -> frozenset[str]:
    """The free indices of a factor whose sizes a tensor inside it gives (a delta gives none)."""
    if isinstance(f, Ref):
        return frozenset(f.indices if f.subs is None else (i for _, i in f.plain_axes()))
    if isinstance(f, (Delta, Shift, Cond)):
        return frozenset()
    inside = {i for s in nodes.children(f) for r in refs(s) for _, i in r.plain_axes()}
    return frozenset(f.free) & inside


def extents_from(indices: Iterable[str], factor: Factor) -> tuple[Extent, ...]:
    """The lengths of ``indices`` as the tensors inside ``factor`` give them."""
    found: dict[str, Extent] = {}
    wanted = set(indices)
    for r in refs(nodes.as_sum(factor)):
        for axis, i in r.plain_axes():
            if i in wanted and i not in found:
                found[i] = Extent(i, r.name, axis)
    return tuple(found.values())


def needed_extents(term: Term) -> tuple[Extent, ...]:
    """The term's extents that still matter: one per index of the term that none of its
    factors carries."""
    carried = {i for f in term.factors for i in sizes_carried(f)}
    kept: dict[str, Extent] = {}
    for e in sorted(term.extents, key=lambda e: not e.given):  # a given one first
        if e.name in term.mentioned and (e.name not in carried or e.given):
            kept.setdefault(e.name, e)
    return tuple(kept.values())


def dependencies(st: Statement) -> set[str]:
    """The names a statement needs: tensors it reads and tensors whose lengths it uses."""
    return {r.name for r in refs(st.rhs)} | {e.tensor for e in statement_extents(st)} | \
        ({g.name for g in index_tensors(st.rhs)} if arithmetic(st.rhs) else set())


def needed_statements(statements: Iterable[Statement], result: str) -> tuple[Statement, ...]:
    """The statements ``result`` depends on (for values or sizes), in program order."""
    statements = tuple(statements)
    want = {result}
    while True:  # once, unless a recurrence reads a later statement (docs/recurrences.md)
        before = len(want)
        for st in reversed(statements):
            if st.name in want:
                want |= dependencies(st)
        if len(want) == before:
            return tuple(st for st in statements if st.name in want)


def reads(f: Factor) -> tuple[str, tuple[str, ...]]:
    """The kind of factor (a function's name) and the tensors it reads, sorted: equal for
    factors equal up to the names of their indices, and cheap, so that canonical keys are
    computed only where these repeat."""
    kind = f.fn if isinstance(f, (Call, Reduce)) else type(f).__name__
    if isinstance(f, Ref):
        return kind, (f.name,)
    # kept on the factor: planning and reuse ask again and again
    return READS.of(f, lambda: (kind, tuple(sorted(r.name for s in nodes.children(f)
                                                for r in refs(s)))))


def read_inside(term: Term, name: str) -> bool:
    """Is the index ``name`` read through arithmetic inside a factor of the term that is not
    a tensor (``(x[i+1] - x[i])^2``)? There the read's zeros past the array's end do not
    zero the term, so its range is the only thing that keeps ``name`` in bounds: ``name``
    must not be replaced by another index (a delta substituted would run it over that
    index's range)."""
    for f in term.factors:
        if isinstance(f, (Ref, Delta, Shift, Cond)):
            continue
        for inner in nodes.children(f):
            if arithmetic(inner) and any(  # cached on the sum: usually no walk at all
                    isinstance(g, Ref) and g.subs is not None and any(
                        isinstance(s, Affine) and name in s.names for s in g.subs)
                    for g in all_factors(inner)):
                return True
    return False

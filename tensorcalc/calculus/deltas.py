"""Deltas out: a delta on a summed index renames that index to its partner; a shifted
delta solved for a summed index becomes a read through index arithmetic.

* ``substitute_deltas``: a delta with a summed index is removed by renaming that
  index to its partner everywhere in the term (``delta[i,p] A[p,q]``, ``p`` summed,
  becomes ``A[i,q]``); chains of deltas collapse the same way. A delta between two
  free indices stays: it is structure. ``delta[i,i]`` summed stays as the size of i.
* ``substitute_shifts``: with ``k`` summed, ``w[k] delta[p, i+k]`` is ``w[p-i]``
  (docs/derivatives.md, 'Shifted deltas').

>>> from tensorcalc.ir import Delta, Ref, Term
>>> t = Term(1.0, (Delta("i", "p"), Ref("A", ("p", "q"))), frozenset({"p"}))
>>> substitute_deltas(t).factors
(Ref(name='A', indices=('i', 'q')),)
"""

from __future__ import annotations

from ..ir import (
    affine,
    collapses,
    mentioned,
    read_inside,
    rename_term,
    same_factors,
    sub_names,
    substitute,
)
from ..ir.nodes import Delta, Extent, Factor, Ref, Shift, Term
from ..ir.subscripts import Affine, Subscript


def substitute_deltas(term: Term) -> Term:
    """Remove every delta of the term that has a summed index (top level only)."""
    while True:
        # One renaming for every delta that touches no name another one renames (a chain
        # delta[a,b] delta[b,c] takes two rounds): what one at a time would give, sooner.
        mapping: dict[str, str] = {}
        dropped: set[int] = set()
        for k, f in enumerate(term.factors):
            if not isinstance(f, Delta) or f.i == f.j:
                continue
            if f.i in term.summed:
                gone, keep = f.i, f.j
            elif f.j in term.summed:
                gone, keep = f.j, f.i
            else:
                continue
            if {gone, keep} & (mapping.keys() | set(mapping.values())):
                continue  # the next round
            if collapses(term, (gone, keep)) or read_inside(term, gone):  # stays: see there
                continue
            if _own_range(term, k, gone):
                continue
            mapping[gone] = keep
            dropped.add(k)
        if not mapping:
            break
        rest = tuple(f for k, f in enumerate(term.factors) if k not in dropped)
        term = rename_term(Term(term.coef, rest, term.summed - mapping.keys(), term.extents),
                           mapping)
    # delta[i,i] is one where i is free; summed it is the size of i, kept as written.
    return same_factors(term, (
        f for f in term.factors
        if not (isinstance(f, Delta) and f.i == f.j and f.i not in term.summed)
    ))


def _own_range(term: Term, k: int, gone: str) -> bool:
    """Does the summed ``gone`` of the delta ``term.factors[k]`` run over a range of its own
    that no factor left would keep (docs/index-arithmetic.md: ranges belong to the statement as
    written)? Then the delta stays, run as a rectangular identity: substituted, ``sum_k delta[p,k]``
    over k's N-1 values (``L = 3 (x[i+1] - x[i])``) would be 1 at p = N-1 where it is 0."""
    return not certified(term, gone, skip=k)


def certified(term: Term, name: str, skip: int = -1) -> bool:
    """May the summed ``name`` be replaced by another index or subscript without losing its
    range? Yes where it has no given range, or where a tensor factor of the term (not
    ``term.factors[skip]``) reads it plainly on the very axis that gives the range: zeros
    past that axis's end then zero the whole term, as the range did. A read inside a
    function, a power or a parenthesised sum does not (``1 - d[p]^2`` is 1 in the
    padding), nor does another tensor's axis (it may be longer)."""
    given = [(e.tensor, e.axis) for e in term.extents if e.name == name and e.given]
    if not given:
        return True
    return any(isinstance(f, Ref) and any(i == name and (f.name, axis) in given
                                          for axis, i in f.plain_axes())
               for j, f in enumerate(term.factors) if j != skip)


def substitute_shifts(term: Term) -> Term:
    """Remove every shifted delta of the term that can be solved for one of its summed
    indices (docs/derivatives.md, 'Shifted deltas'): with ``k`` summed, ``w[k] delta[p, i+k]`` is
    ``w[p-i]``. The index solved for must label an axis of a tensor factor of the term (``w[k]``),
    so that the tensor's zeros past its ends keep the sum where that index ran. A shifted delta that
    cannot be solved stays: it runs as a scatter-add (``delta[p, t[n]]``, ``delta[p,
    2*i+k]``)."""
    while True:
        for f in term.factors:
            if not isinstance(f, Shift):
                continue
            others = tuple(g for g in term.factors if g is not f)
            choice = _solve(term, f, others)
            if choice is None:
                continue
            name, expr = choice
            solved = substitute(Term(term.coef, others, term.summed, term.extents), name, expr)
            if solved is None:
                continue
            term = _with_given(solved, expr)
            break
        else:
            return term


def _solve(term: Term, f: Shift, others: tuple[Factor, ...]) -> tuple[str, Subscript] | None:
    """The summed index to eliminate ``f`` by, and what it equals: its own index where a
    tensor reads it plainly (``V[p] delta[p, i+k]`` is ``V[i+k]``); else the first summed
    index of its subscript, if its coefficient is ±1 (``delta[p, i+k]`` with ``i`` summed
    gives ``i = p-k``; a strided ``delta[p, 2*i+k]`` stays a scatter)."""
    plain = {i for g in others if isinstance(g, Ref) for _, i in g.plain_axes()}
    plain -= {i for i in plain if read_inside(term, i) or not certified(term, i)
              or _in_nonlinear(others, i)}
    if f.i in term.summed and f.i in plain:
        return f.i, f.sub
    if not isinstance(f.sub, Affine):
        return None
    for v, c in f.sub.parts:
        if v not in term.summed:
            continue
        if abs(c) != 1 or v not in plain:
            return None
        rest = [(n, -c * k) for n, k in f.sub.parts if n != v]
        return v, affine([(f.i, c)] + rest, -c * f.sub.offset)
    return None


def _in_nonlinear(factors: tuple[Factor, ...], name: str) -> bool:
    """Is ``name`` used inside a factor that is not a tensor or a delta (a function, a power,
    a parenthesised sum)? Solved for a subscript there, its reads would fall in the padding
    inside the factor, where zeros do not zero the term (``1 / h[p-k]`` is 1/0 past h's end,
    and the term's other zeros make it nan): padding belongs to the whole term
    (docs/index-arithmetic.md)."""
    return any(not isinstance(f, (Ref, Delta, Shift)) and name in mentioned(f) for f in factors)


def _with_given(term: Term, expr: Subscript) -> Term:
    """Extents for the indices of a new affine read that a tensor of the term reads plainly:
    their sizes are given, not shrunk to where the read stays inside (docs/index-arithmetic.md)."""
    wanted = set(sub_names(expr))
    found: list[Extent] = []
    for g in term.factors:
        if isinstance(g, Ref):
            for axis, i in g.plain_axes():
                if i in wanted:
                    found.append(Extent(i, g.name, axis, given=True))
                    wanted.discard(i)
    return Term(term.coef, term.factors, term.summed, term.extents + tuple(found))


def tie_groups(term: Term) -> dict[str, str]:
    """For a term whose deltas all tie free indices: each index to its group's first index."""
    parent: dict[str, str] = {}

    def find(i: str) -> str:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for f in term.factors:
        if isinstance(f, Delta) and f.i != f.j:
            a, b = find(f.i), find(f.j)
            if a != b:
                first, second = sorted((a, b), key=term.free.index) if a in term.free and \
                    b in term.free else (a, b)
                parent[second] = first
    return {i: find(i) for i in parent}

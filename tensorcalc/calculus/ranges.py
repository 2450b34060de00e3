"""Ranges belong to the statement as written (docs/index-arithmetic.md): the range of every index
that index arithmetic may narrow is recorded once, before any rewrite, and kept by every rewrite.

The valid rule sizes an index of a statement from all of its reads together: in
``L = 3 (x[i+1] - x[i])`` the index ``i`` runs over N-1 values, although the term
``-3 x[i]`` alone would run it over N. Differentiation expands products into terms and
substitutes deltas, after which no read of the derivative remembers that range. So,
before differentiating, each bound index whose range a read may narrow is given the size
of an axis of a *range statement*: a statement that repeats the reads of the statement
as written, with those indices on its left, ``L_range[i] = x[i+1] x[i]``. It is never
computed (only its shape is bound: the valid rule on the same reads gives the same
ranges), and a derivative that keeps such an index declares it as that statement's axis,
``input L_range[k]``, so that the printed program re-parses to the same numbers.

A range so given is what the index runs over in every term that descends from the
statement: ``simplify`` keeps a delta that would move the index onto another one
(``sum_k delta[p,k]`` over k's N-1 values is not 1 at p = N-1), unless a tensor of the
term reads the index plainly on an axis of exactly that range.

>>> from tensorcalc.api import compile
>>> from tensorcalc.calculus.ranges import narrowed
>>> narrowed(compile("L = 3 (x[i+1] - x[i])").statements[0])
('i',)
>>> narrowed(compile("y[i] = x[i+k] w[k]").statements[0])
()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..ir import (
    affine_reads,
    all_factors,
    all_terms,
    arithmetic,
    map_factor_sums,
    statement_extents,
)
from ..ir.nodes import Delta, Extent, Ref, Shift, Statement, Sum, Term
from ..ir.subscripts import Gather

#: The suffix of a range statement's name (``L_range``).
SUFFIX = "_range"


def _plain(expr: Sum) -> set[str]:
    out: set[str] = set()
    for f in all_factors(expr):
        if isinstance(f, Ref):
            out |= {i for _, i in f.plain_axes()}
            out |= {i for s in f.axes if isinstance(s, Gather) for i in s.indices}
        elif isinstance(f, Shift) and isinstance(f.sub, Gather):
            out |= set(f.sub.indices)
    return out


def _bound(expr: Sum) -> Iterator[str]:
    """Every index a term inside binds, outermost first, but those it gives a size already
    (a derivative's, derived again)."""
    for t in all_terms(expr):
        given = {e.name for e in t.extents if e.given}
        yield from sorted(t.summed - given)


def narrowed(st: Statement) -> tuple[str, ...]:
    """The bound indices of a statement whose range a read may make narrower than every
    plain read of them: those no tensor reads plainly, and those read alone through
    arithmetic (``x[i+1]``: the valid rule shrinks a plainly read index only by reads of it
    alone, docs/index-arithmetic.md). Also the indices of a read whose indices tensors all read
    plainly (``x[i+k]`` beside ``x[i]`` and ``w[k]``): the valid rule shrinks none of them and
    refuses the statement where the read falls outside; its derivatives must refuse too,
    and they do by binding the range statement."""
    if not arithmetic(st.rhs):
        return ()
    plain = _plain(st.rhs)
    alone = set()
    involved = set()
    for sub in affine_reads(st.rhs):
        involved |= set(sub.names)
        if len(sub.parts) == 1 or all(n in plain for n in sub.names):
            alone |= set(sub.names)
    free = set(st.indices)
    return tuple(i for i in dict.fromkeys(_bound(st.rhs))
                 if i in involved and i not in free and (i in alone or i not in plain))


def range_statement(st: Statement, indices: tuple[str, ...], name: str) -> Statement:
    """``name[indices] = <every read of st>``: a statement whose shape, bound by the valid
    rule, gives each of ``indices`` the range it has in ``st``."""
    factors: dict[Ref | Delta | Shift, None] = {}
    for f in all_factors(st.rhs):
        if isinstance(f, (Ref, Delta, Shift)):
            factors.setdefault(f)
    every = {i for f in factors for i in f.free}
    extents = tuple(dict.fromkeys(e for e in statement_extents(st) if e.given))
    term = Term(1.0, tuple(factors), frozenset(every - set(indices)), extents)
    return Statement(name, indices, Sum((term,)))


def with_ranges(statements: tuple[Statement, ...],
                fresh: Callable[[str], str]) -> tuple[Statement, ...]:
    """The statements with a range statement before each that has narrowed indices, and
    those indices given its axes in the terms that bind them."""
    out: list[Statement] = []
    for st in statements:
        indices = narrowed(st)
        if not indices:
            out.append(st)
            continue
        carrier = range_statement(st, indices, fresh(st.name + SUFFIX))
        give = {i: Extent(i, carrier.name, axis, True) for axis, i in enumerate(indices)}
        out += [carrier, Statement(st.name, st.indices, _given(st.rhs, give), st.extents,
                                   st.aliases)]
    return tuple(out)


def _given(expr: Sum, give: dict[str, Extent]) -> Sum:
    """Each term inside with the extents of the indices it binds."""
    def term(t: Term) -> Term:
        extra = tuple(give[i] for i in sorted(t.summed) if i in give)
        factors = tuple(map_factor_sums(f, lambda s: _given(s, give)) for f in t.factors)
        return Term(t.coef, factors, t.summed, t.extents + extra)

    return Sum(tuple(term(t) for t in expr.terms))


def own_ranges(st: Statement) -> dict[str, Extent]:
    """With index arithmetic, each left-hand index runs over the statement's own axis (the
    valid rule may have narrowed it): an index a derivative rule makes up as its copy
    (softmax's ``k`` of its ``i``, ``rules.differentiate``) runs over it too."""
    if not arithmetic(st.rhs):
        return {}
    return {i: Extent(i, st.name, axis, True) for axis, i in enumerate(st.indices)}

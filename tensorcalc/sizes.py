"""Where each index of a statement takes its size: one place for the rules.

An index is sized by the first tensor axis it labels on the right-hand side; an index
that only deltas carry takes the size of its partner; an index that nothing carries
takes its ``Extent`` (``ir.Extent``: recorded when a derivative drops the only factor
that carried it, or declared in the program text). Within one statement an index
name stands for one size throughout, so these sources are per statement.

>>> from tensorcalc.api import compile
>>> index_sources(compile("y[i] = W[i,j] x[j]").statements[0])
{'i': ('W', 0), 'j': ('W', 1)}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .ir import (
    Extent,
    Ref,
    Statement,
    Sum,
    Term,
    all_deltas,
    arithmetic,
    index_tensors,
    map_factor_sums,
    refs,
    statement_extents,
)

Source = tuple[str, int]


def carried_sources(st: Statement) -> dict[str, Source]:
    """Sizes the tensors on the right give, passed through deltas to their partners."""
    return expression_sources(st.rhs)


def expression_sources(expr: Sum) -> dict[str, Source]:
    """Sizes the tensors of an expression give, passed through deltas to their partners."""
    sources: dict[str, Source] = {}
    for r in refs(expr):
        for axis, i in r.plain_axes():
            sources.setdefault(i, (r.name, axis))
    for g in index_tensors(expr) if arithmetic(expr) else ():  # n in E[t[n], j]: by t
        for axis, i in enumerate(g.indices):
            sources.setdefault(i, (g.name, axis))
    return through_deltas(sources, ((d.i, d.j) for d in all_deltas(expr)))


def index_sources(st: Statement) -> dict[str, Source]:
    """Every index of the statement that can be sized, with the tensor axis that sizes it."""
    sources = carried_sources(st)
    added = False
    for e in statement_extents(st):
        if e.name not in sources:
            sources[e.name] = (e.tensor, e.axis)
            added = True
    if added:
        sources = through_deltas(sources, ((d.i, d.j) for d in all_deltas(st.rhs)))
    return sources


def through_deltas(sources: dict[str, Source],
                   pairs: Iterable[tuple[str, str]]) -> dict[str, Source]:
    """An index that only a delta carries takes the size of its partner."""
    pairs = list(pairs)
    changed = True
    while changed:
        changed = False
        for a, b in pairs:
            if a in sources and b not in sources:
                sources[b], changed = sources[a], True
            elif b in sources and a not in sources:
                sources[a], changed = sources[b], True
    return sources


def resolve(tensor: str, axis: int, statements: Mapping[str, Statement]) -> Source | None:
    """The input axis an axis of a tensor is sized by, following statements back to
    their inputs (None where nothing sizes it)."""
    seen: set[str] = set()
    while tensor in statements and tensor not in seen:
        seen.add(tensor)
        st = statements[tensor]
        if arithmetic(st.rhs):  # its sizes may be shrunk by its reads (SPEC §8): its own
            return tensor, axis
        source = index_sources(st).get(st.indices[axis])
        if source is None:
            return None
        tensor, axis = source
    return tensor, axis


def resolve_extents(statements: Iterable[Statement],
                    context: Iterable[Statement] = ()) -> list[Statement]:
    """The statements with every extent that names a statement replaced by the input axis
    that sizes it, so that no statement is computed only for its shape."""
    statements = list(statements)
    by_name = {st.name: st for st in (*context, *statements)}

    def fix(extents: tuple[Extent, ...]) -> tuple[Extent, ...]:
        out = []
        for e in extents:
            source = resolve(e.tensor, e.axis, by_name) if e.tensor in by_name else None
            out.append(Extent(e.name, *source, e.given) if source is not None else e)
        return tuple(out)

    def in_sum(expr: Sum) -> Sum:
        return Sum(tuple(Term(t.coef, tuple(map_factor_sums(f, in_sum) for f in t.factors),
                              t.summed, fix(t.extents)) for t in expr.terms))

    out = []
    for st in statements:
        if any(True for _ in statement_extents(st)):
            st = Statement(st.name, st.indices, in_sum(st.rhs), fix(st.extents))
            by_name[st.name] = st
        out.append(st)
    return out


def sized(st: Statement, sources: list[Ref]) -> Statement:
    """``st`` with extents for the left-hand indices its right-hand side cannot size, each
    the length of an axis of the first of ``sources`` that has it (an adjoint is shaped
    like its statement, a derivative like its result and ``wrt``). Extents may name
    statements; ``resolve_extents`` turns them into input axes."""
    # With index arithmetic every left-hand index is given its size: reads that rely on
    # zeros past an array's end (``x_bar[p] = y_bar[p-k] w[k]``) must not shrink it.
    known_plain = not arithmetic(st.rhs)
    known = set(index_sources(st)) if known_plain else set()
    known |= {e.name for e in st.extents}
    extents = list(st.extents)
    for i in st.indices:
        if i in known:
            continue
        for ref in sources:
            if i in ref.indices:
                extents.append(Extent(i, ref.name, ref.indices.index(i), not known_plain))
                known.add(i)
                break
    if len(extents) == len(st.extents):
        return st
    return Statement(st.name, st.indices, st.rhs, tuple(extents))

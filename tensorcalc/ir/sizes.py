"""Where each index of a statement takes its size: one place for the rules.

An index is sized by the first tensor axis it labels on the right-hand side; an index
that only deltas carry takes the size of its partner; an index that nothing carries
takes its ``Extent`` (``ir.Extent``: recorded when a derivative drops the only factor
that carried it, or declared in the program text). Within one statement an index
name stands for one size throughout, so these sources are per statement.

This module holds every rule that decides sizes before arrays are seen: the sources
above, following statements back to inputs (``resolve``), the extents a derivative's
axes and terms need (``sized``, ``sized_terms``), the sizes a caller gives by name
(``checked_sizes``, ``with_given_sizes``). Two other places finish the job, each with
one task: ``ranges`` records the range of an index of the statement as written, before
derivatives rewrite it (docs/index-arithmetic.md), and ``backend.run.bind_sizes`` binds all of it to
array shapes, with the valid rule's kernel ``backend.windows.shrink_sizes`` (a plain
function, also copied into exported code).

>>> from tensorcalc.api import compile
>>> index_sources(compile("y[i] = W[i,j] x[j]").statements[0])
{'i': ('W', 0), 'j': ('W', 1)}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from numbers import Integral

from ..errors import InputError
from . import (
    SIZE_MARK,
    Extent,
    Ref,
    Statement,
    Sum,
    Term,
    affine_reads,
    all_deltas,
    all_terms,
    arithmetic,
    index_tensors,
    map_factor_sums,
    mentioned,
    refs,
    sizes_carried,
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


def count(names: tuple[str, ...], fresh: tuple[str, ...], where: Sum,
          declared: Mapping[str, Source] | None = None) -> Sum:
    """How many values the indices ``names`` take together (``size(i)``, the divisor of
    ``mean[i](e)``), as the sum ``sum[fresh](1)`` whose ``fresh`` indices have the extents
    of ``names`` (see ``count_extent``)."""
    return Sum((Term(1.0, (), frozenset(fresh), tuple(
        count_extent(k, name, where, declared) for name, k in zip(names, fresh))),))


def count_extent(fresh: str, name: str, where: Sum,
                 declared: Mapping[str, Source] | None = None) -> Extent:
    """The extent of ``fresh``, which runs over what the index ``name`` runs over in
    ``where``: the axis of a tensor that ``where`` reads plainly with ``name``, where no
    read there shifts it (a shifted read may shrink its range, docs/index-arithmetic.md); else the
    axis a declaration gives it (``declared``); else the size given by name (``sizes=``)."""
    sources = expression_sources(where)
    if name in sources and name not in shifted_names(where):
        return Extent(fresh, *sources[name])
    if declared is not None and name in declared:
        return Extent(fresh, *declared[name])
    return Extent(fresh, SIZE_MARK + name, 0)


def shifted_names(expr: Sum) -> set[str]:
    """The indices that some read or shifted delta of ``expr`` uses in index arithmetic."""
    return {n for sub in affine_reads(expr) for n in sub.names}


def counts(st: Statement) -> dict[str, str]:
    """The counts of a statement (``sum[k](1)``: a summed index that no factor holds, with
    an extent) that an index of the statement can name, with that index: one a tensor
    reads plainly, with the same axis, and no read shifts, or the name a size was given by
    (``sizes=``). Printed, ``size(q)``."""
    shifted = shifted_names(st.rhs)
    by_source: dict[Source, str] = {}
    for r in refs(st.rhs):  # every plain read: Gy[p,q] x[p,q] names x's axis 1 too
        for axis, i in r.plain_axes():
            if i not in shifted:
                by_source.setdefault((r.name, axis), i)
    out: dict[str, str] = {}
    for t in all_terms(st.rhs):
        for e in t.extents:
            if e.name not in t.summed or any(e.name in mentioned(f) for f in t.factors):
                continue
            if (e.tensor, e.axis) in by_source:
                out[e.name] = by_source[(e.tensor, e.axis)]
            elif e.tensor.startswith(SIZE_MARK):  # a size given by name: by that name
                out[e.name] = e.tensor[len(SIZE_MARK):]
    return out


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
        if arithmetic(st.rhs):  # its sizes may be shrunk by its reads (valid rule): its own
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

    def fix(extents: tuple[Extent, ...], read: set[Source]) -> tuple[Extent, ...]:
        out = []
        for e in extents:
            source = resolve(e.tensor, e.axis, by_name) \
                if e.tensor in by_name and (e.tensor, e.axis) not in read else None
            out.append(Extent(e.name, *source, e.given) if source is not None else e)
        return tuple(out)

    def in_sum(expr: Sum, read: set[Source]) -> Sum:
        return Sum(tuple(Term(t.coef, tuple(map_factor_sums(f, lambda s: in_sum(s, read))
                                            for f in t.factors),
                              t.summed, fix(t.extents, read)) for t in expr.terms))

    out = []
    for st in statements:
        if any(True for _ in statement_extents(st)):
            # an axis of a statement this one reads plainly is its own: it stays named so
            # (a count printed as size(q) by the read ``x_mu[p,q]``)
            read = {(r.name, a) for r in refs(st.rhs) for a, _ in r.plain_axes()}
            st = Statement(st.name, st.indices, in_sum(st.rhs, read), fix(st.extents, read))
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


def sized_terms(expr: Sum) -> Sum:
    """Each top-level term with an extent for every index that no factor of it carries.

    In ``S = delta[a,i] W[j] + Y[i]`` the first term takes the size of ``i`` from the
    second, and in ``S = W[a] delta[k,k] + U[k,b]`` of ``k``; a derivative of the first
    term alone must keep that size.
    """
    out = []
    sources: dict[str, Source] | None = None
    for t in expr.terms:
        visible = {i for f in t.factors for i in f.free} | t.summed
        carried = {i for f in t.factors for i in sizes_carried(f)} | {e.name for e in t.extents}
        missing = sorted(visible - carried)
        if not missing:
            out.append(t)
            continue
        # An index only deltas carry takes its partner's size (``delta[i,a] ... W[i,i]``).
        sources = expression_sources(expr) if sources is None else sources
        extra = tuple(Extent(i, *sources[i]) for i in missing if i in sources)
        out.append(Term(t.coef, t.factors, t.summed, t.extents + extra) if extra else t)
    return Sum(tuple(out))


def checked_sizes(sizes: Mapping[str, int] | None) -> dict[str, int]:
    """Index sizes a caller gives: index names to whole numbers of at least 1."""
    if sizes is None:
        return {}
    if not isinstance(sizes, Mapping):
        raise InputError(f"sizes is a mapping of index names to sizes, not {type(sizes).__name__}")
    out: dict[str, int] = {}
    for name, n in sizes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"sizes names indices; {name!r} is not an index name")
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:  # NumPy ints too
            raise InputError(f"the size of index {name} must be a whole number of at least 1, "
                             f"not {n!r}")
        out[name] = int(n)
    return out


def with_given_sizes(st: Statement, keys: Iterable[str]) -> Statement:
    """``st`` with the sizes of the index names ``keys`` given by the caller attached, where
    the statement uses index arithmetic and no tensor there has the index plainly (where
    one has it, a size given by name is checked against it)."""
    if not arithmetic(st.rhs):
        return st
    used = set(st.indices) | {n for t in st.rhs.terms for n in t.mentioned}
    # Where a tensor has the index plainly too, its axis is checked against the given
    # size; the size is attached all the same, so that a derivative's term that keeps
    # only the shifted read (x[k+1], not v[k]) still reads zeros past the end
    keys = [k for k in keys if k in used or k in {w for _, w in st.aliases}]
    if not keys:
        return st

    renamed = {new for new, _ in st.aliases}  # internal names: never given by name
    names = [(k, k) for k in keys if k not in renamed] + \
        [(new, k) for new, k in st.aliases if k in keys]

    def attach(expr: Sum) -> Sum:
        out = []
        for t in expr.terms:
            extra = tuple(Extent(n, SIZE_MARK + k, 0, True) for n, k in names
                          if n in t.mentioned
                          and not any(e.tensor == SIZE_MARK + k and e.name == n
                                      for e in t.extents))
            out.append(Term(t.coef, tuple(map_factor_sums(f, attach) for f in t.factors),
                            t.summed, t.extents + extra))
        return Sum(tuple(out))

    lhs = tuple(Extent(k, SIZE_MARK + k, 0, True) for k in keys if k in st.indices)
    return Statement(st.name, st.indices, attach(st.rhs),
                     st.extents + tuple(e for e in lhs if e not in st.extents), st.aliases)

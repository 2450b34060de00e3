"""Renaming indices (free and bound alike, never capturing), fresh names, and an index
replaced by a subscript (``w[k]`` with k = p-i is ``w[p-i]``).

>>> from tensorcalc.ir.nodes import Ref, Term
>>> rename_term(Term(1.0, (Ref("x", ("i",)),)), {"i": "j"}).factors
(Ref(name='x', indices=('j',)),)
"""

from __future__ import annotations

from .nodes import (
    Cond,
    Delta,
    Extent,
    Factor,
    Reduce,
    Ref,
    Shift,
    Sum,
    Term,
    access,
    delta,
    mentioned,
)
from .subscripts import Stuck, Subscript, put, rename_subscript
from .walk import map_factor_sums, map_factors, same_factors, same_terms

__all__ = [
    "fresh_name", "freshen", "read_through", "rename_extents", "rename_factor", "rename_sum",
    "rename_term", "substitute",
]


def rename_factor(factor: Factor, mapping: dict[str, str]) -> Factor:
    """Rename free and bound indices alike (the caller guarantees no capture)."""
    if mapping.keys().isdisjoint(mentioned(factor)):
        return factor
    if isinstance(factor, Ref):
        if factor.subs is not None:
            return access(factor.name, (rename_subscript(s, mapping) for s in factor.subs))
        return Ref(factor.name, tuple(mapping.get(i, i) for i in factor.indices))
    if isinstance(factor, Shift):
        sub = rename_subscript(factor.sub, mapping)
        i = mapping.get(factor.i, factor.i)
        return delta(i, sub)
    if isinstance(factor, Delta):
        return Delta(mapping.get(factor.i, factor.i), mapping.get(factor.j, factor.j))
    if isinstance(factor, Cond):
        return Cond(factor.op, rename_subscript(factor.a, mapping),
                    rename_subscript(factor.b, mapping))
    if isinstance(factor, Reduce):
        return Reduce(factor.fn, tuple(mapping.get(i, i) for i in factor.indices),
                      rename_sum(factor.arg, mapping), factor.keeps,
                      tuple(rename_factor(c, mapping) for c in factor.mask))  # type: ignore[misc]
    return map_factor_sums(factor, lambda s: rename_sum(s, mapping))


def rename_term(term: Term, mapping: dict[str, str]) -> Term:
    """``term`` with its indices renamed; the same object where none of them is renamed
    (its cached keys and simplified forms stay with it)."""
    if not mapping or mapping.keys().isdisjoint(term.mentioned):
        return term
    return Term(
        term.coef,
        tuple(rename_factor(f, mapping) for f in term.factors),
        frozenset(mapping.get(i, i) for i in term.summed),
        rename_extents(term.extents, mapping),
    )


def rename_extents(extents: tuple[Extent, ...], mapping: dict[str, str]) -> tuple[Extent, ...]:
    return tuple(e._replace(name=mapping.get(e.name, e.name)) for e in extents)


def rename_sum(expr: Sum, mapping: dict[str, str]) -> Sum:
    if not mapping:
        return expr
    return same_terms(expr, (rename_term(t, mapping) for t in expr.terms))


def fresh_name(base: str, taken: set[str] | frozenset[str]) -> str:
    """``base`` itself if free, else ``base`` followed by the smallest number not taken."""
    if base not in taken:
        return base
    stem = base.rstrip("0123456789") or base
    n = 1
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


def freshen(term: Term, used: set[str] | None = None) -> Term:
    """Rename bound indices (at every depth) that clash with a name used around them.

    Walks top down; ``used`` holds the names already visible or bound and grows as
    the walk goes. Afterwards every bound name in the term is unique and differs
    from every free name, so substitution inside it can never capture.
    """
    used = set() if used is None else used
    mapping: dict[str, str] = {}
    for i in sorted(term.summed):
        if i in used:
            mapping[i] = fresh_name(i, used | term.mentioned | set(mapping.values()))
    term = rename_term(term, mapping)
    used |= set(term.free) | term.summed

    def inner(s: Sum) -> Sum:
        return same_terms(s, (freshen(t, used) for t in s.terms))

    def factor(f: Factor) -> Factor:
        if isinstance(f, Reduce) and f.bound:  # its own bound names, like a term's summed
            clash = {i: "" for i in f.bound if i in used}
            for i in clash:
                clash[i] = fresh_name(i, used | term.mentioned | set(clash.values()))
            renamed = rename_factor(f, clash) if clash else f
            assert isinstance(renamed, Reduce)
            used.update(renamed.bound)
            f = renamed
        return map_factor_sums(f, inner)

    return same_factors(term, (factor(f) for f in term.factors))


def _put_factor(f: Factor, name: str, expr: Subscript) -> Factor:
    if name not in mentioned(f):
        return f
    if isinstance(f, Ref):
        return access(f.name, (put(s, name, expr) for s in f.axes))
    if isinstance(f, (Delta, Shift)):
        left = put(f.i, name, expr)
        right = put(f.j if isinstance(f, Delta) else f.sub, name, expr)
        if not isinstance(left, str) and not isinstance(right, str):
            raise Stuck
        return delta(left, right)
    if isinstance(f, Cond):
        return Cond(f.op, put(f.a, name, expr), put(f.b, name, expr))
    if isinstance(f, Reduce) and (name in f.indices or any(name in c.free for c in f.mask)):
        raise Stuck
    return map_factor_sums(f, lambda s: map_factors(s, lambda g: _put_factor(g, name, expr)))


def substitute(term: Term, name: str, expr: Subscript) -> Term | None:
    """``term`` with the index ``name`` replaced by the subscript ``expr`` everywhere
    (``w[k]`` with k = p-i is ``w[p-i]``); None where some factor cannot take it (an
    index tensor's own index, the axes of a function of whole axes)."""
    try:
        factors = tuple(_put_factor(f, name, expr) for f in term.factors)
    except Stuck:
        return None
    return Term(term.coef, factors, term.summed - {name}, term.extents)


def read_through(term: Term, lhs: tuple[str, ...], axes: tuple[Subscript, ...],
                 used: set[str]) -> Term | None:
    """``term``, a value over ``lhs``, as read at the subscripts ``axes`` (``y[p-k]`` is y's
    value at i = p-k); ``lhs`` may go on past ``axes`` (a tangent's new axes keep their
    names). None where a subscript cannot replace an index (see ``substitute``)."""
    taken = set(used) | set(lhs) | term.mentioned
    temps = []
    for _ in axes:
        temps.append(fresh_name("t", taken))
        taken.add(temps[-1])
    out: Term | None = rename_term(term, dict(zip(lhs, temps)))
    for temp, sub in zip(temps, axes):
        out = substitute(out, temp, sub) if out is not None else None
    return out

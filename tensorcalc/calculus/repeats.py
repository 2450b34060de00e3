"""Statements alike up to the names of their tensors are differentiated once, in
reverse mode and in forward mode.

A deep network repeats one block: ``h2[b,j] = tanh(h1[b,i] W2[i,j])``,
``h3[b,j] = tanh(h2[b,i] W3[i,j])``, ... Each statement's contribution to an adjoint
(its vector-Jacobian product, simplified) is then the same terms under other tensor
names. ``Repeats`` keeps each contribution under a key that names the tensors by their
order of appearance, with everything else written out: the statement, the tensor the
derivative is taken by, the adjoint it is seeded with, the index names around it and
the order of the tensor names (sorting them orders factors and so names summed
indices). A statement with the key of an earlier one takes that one's terms with the
tensors renamed, the same terms a derivation would have made.

>>> from tensorcalc.ir import Ref, Term
>>> t = Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))), frozenset({"j"}))
>>> rename_tensors(t, {"W": "V"}).factors[0]
Ref(name='V', indices=('i', 'j'))
"""

from __future__ import annotations

from collections.abc import Iterator

from ..ir import children, map_factor_sums, same_factors, same_terms
from ..ir.nodes import Factor, Ref, Shift, Statement, Sum, Term, delta
from ..ir.subscripts import Gather, Subscript

Key = tuple[object, ...]


class Repeats:
    """Adjoint contributions already made in one derivation, by key."""

    def __init__(self) -> None:
        self.made: dict[Key, tuple[tuple[str, ...], list[Term]]] = {}

    def key(self, st: Statement, target: str, bar: Sum, lhs: tuple[str, ...],
            context: frozenset[str],
            tangents: tuple[tuple[str, Sum, tuple[str, ...]], ...] = ()
            ) -> tuple[Key, tuple[str, ...]]:
        """The key of the contribution of ``st`` to ``target``'s adjoint (its axes
        ``lhs``) seeded with ``bar``, and the tensor names it abstracts, in order. In
        forward mode, ``target`` is the variable, ``lhs`` the axes its seed adds, and
        ``tangents`` the tangents (with their axes) of the statements ``st`` reads."""
        names = tuple(dict.fromkeys(_tensor_names(st, target, bar, tangents)))
        placeholder = {n: f"@{k}" for k, n in enumerate(names)}
        shape = (repr(rename_tensors_sum(st.rhs, placeholder)),
                 repr(rename_tensors_sum(bar, placeholder)),
                 st.indices, tuple((e.name, placeholder[e.tensor], e.axis, e.given)
                                   for e in st.extents),
                 placeholder[target], lhs, tuple(sorted(context)),
                 tuple((placeholder[n], repr(rename_tensors_sum(value, placeholder)), axes)
                       for n, value, axes in tangents),
                 tuple(sorted(range(len(names)), key=lambda k: names[k])))
        return shape, names

    def get(self, key: Key, names: tuple[str, ...]) -> list[Term] | None:
        found = self.made.get(key)
        if found is None:
            return None
        earlier, terms = found
        mapping = dict(zip(earlier, names))
        return [rename_tensors(t, mapping) for t in terms]

    def put(self, key: Key, names: tuple[str, ...], terms: list[Term]) -> None:
        self.made[key] = (names, terms)


def _tensor_names(st: Statement, target: str, bar: Sum,
                  tangents: tuple[tuple[str, Sum, tuple[str, ...]], ...]) -> Iterator[str]:
    yield st.name
    yield target
    for expr in (st.rhs, bar):
        yield from _names_in(expr)
    for e in st.extents:
        yield e.tensor
    for name, value, _ in tangents:
        yield name
        yield from _names_in(value)


def _names_in(expr: Sum) -> Iterator[str]:
    for t in expr.terms:
        for e in t.extents:
            yield e.tensor
        for f in t.factors:
            if isinstance(f, Ref):
                yield f.name
                yield from (sub.name for sub in f.subs or () if isinstance(sub, Gather))
            elif isinstance(f, Shift) and isinstance(f.sub, Gather):
                yield f.sub.name
            for inner in children(f):
                yield from _names_in(inner)


def rename_tensors(term: Term, mapping: dict[str, str]) -> Term:
    """``term`` with its tensors (and the tensors its extents name) renamed."""
    factors = tuple(_rename_factor(f, mapping) for f in term.factors)
    extents = tuple(e._replace(tensor=mapping.get(e.tensor, e.tensor)) for e in term.extents)
    if extents != term.extents:
        return Term(term.coef, factors, term.summed, extents)
    return same_factors(term, factors)


def rename_tensors_sum(expr: Sum, mapping: dict[str, str]) -> Sum:
    return same_terms(expr, (rename_tensors(t, mapping) for t in expr.terms))


def _rename_factor(f: Factor, mapping: dict[str, str]) -> Factor:
    if isinstance(f, Ref):
        subs = None if f.subs is None else tuple(_rename_sub(s, mapping) for s in f.subs)
        name = mapping.get(f.name, f.name)
        return f if name == f.name and subs == f.subs else Ref(name, f.indices, subs)
    if isinstance(f, Shift):
        sub = _rename_sub(f.sub, mapping)
        return f if sub == f.sub else delta(f.i, sub)
    return map_factor_sums(f, lambda s: rename_tensors_sum(s, mapping))


def _rename_sub(s: Subscript, mapping: dict[str, str]) -> Subscript:
    if isinstance(s, Gather):
        return Gather(mapping.get(s.name, s.name), s.indices)
    return s

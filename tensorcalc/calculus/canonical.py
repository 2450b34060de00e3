"""Canonical form and keys: terms equal up to the names of their bound indices get equal
keys, so that ``simplify.collect`` adds their coefficients and ``reuse`` finds repeats.

* ``canonical_term``: factors sorted, summed indices renamed in a fixed order (k, l, m, ...).
* ``term_key``, ``factor_key``, ``sum_key``: text keys, kept on the nodes.

>>> from tensorcalc.ir import Ref, Term
>>> t = Term(1.0, (Ref("x", ("j",)), Ref("W", ("i", "j"))), frozenset({"j"}))
>>> term_key(canonical_term(t))
'{k}1W[i,k] 1x[k]'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..caching import BASE_KEY, CANONICAL, FACTOR_KEY, SUM_KEY, TERM_KEY
from ..ir import (
    as_sum,
    index_order,
    map_factor_sums,
    mentioned,
    rename_factor,
    rename_term,
    same_factors,
    same_terms,
    unknown_kind,
)
from ..ir.nodes import Call, Cond, Delta, Factor, Power, Reduce, Ref, Shift, Sum, Term
from ..ir.subscripts import Gather, Subscript

_TEMP = "@"


def canonical_term(term: Term, avoid: frozenset[str] = frozenset()) -> Term:
    """Factors sorted, summed indices renamed in order of first use (k, l, m, ...),
    never to a name in ``avoid`` (the free indices of the statement around the term)."""
    term = _to_temporaries(term, [0])
    return _canonical(term, set(term.free) | avoid)


def _to_temporaries(term: Term, counter: list[int]) -> Term:
    """Every bound name (a term's summed, a reduction's own) renamed ``@0``, ``@1``, ..."""
    def temporaries(names: Iterable[str]) -> dict[str, str]:
        mapping = {}
        for i in names:
            mapping[i] = f"{_TEMP}{counter[0]}"
            counter[0] += 1
        return mapping

    if term.mentioned == frozenset(term.free):  # nothing bound inside: nothing to rename
        return term
    term = rename_term(term, temporaries(sorted(term.summed)))

    def factor(f: Factor) -> Factor:
        if isinstance(f, Reduce) and f.bound:
            f = rename_factor(f, temporaries(f.bound))
        return map_factor_sums(f, lambda s: same_terms(s, (_to_temporaries(t, counter)
                                                           for t in s.terms)))

    return same_factors(term, (factor(f) for f in term.factors))


def _bound_here(term: Term) -> frozenset[str]:
    """The names bound at a term's own level: its summed ones and its reductions' own."""
    own = [i for f in term.factors if isinstance(f, Reduce) for i in f.bound]
    return term.summed | frozenset(own) if own else term.summed


_POOL = ("k", "l", "m", "n", "r", "s", "t", "u", "v", "w", "a", "b", "c", "d", "e", "f", "g", "h")


def _canonical(term: Term, used: set[str]) -> Term:
    bound = _bound_here(term)
    if not bound:  # nothing to name here: the factors sorted, the sums inside made canonical
        closed = term.mentioned == frozenset(term.free)  # nothing bound inside either
        known = CANONICAL.get(term) if closed else None
        if known is not None:  # then its canonical form depends on nothing around it
            found: Term = known
            return found
        # the sums inside first: a factor's key is that of its canonical form, so the order
        # is the one a second pass would give (a partial's ``[a > b] + 1/2 [a == b]`` is
        # built in another order than the canonical one)
        inner = _canonical_sum(used)
        out = same_factors(term, (map_factor_sums(f, inner) for f in term.factors))
        out = same_factors(out, sorted(out.factors, key=factor_key))
        if closed:  # a canonical form is its own
            CANONICAL.put(term, out)
            CANONICAL.put(out, out)
        return out
    loose = {i: "?" for i in bound}  # made once per term: a term may have many factors
    # sums inside in an order that does not depend on the bound names either, so that
    # the order of first use below does not (one pass gives the canonical form)
    factors = sorted((_loosely_ordered(f, loose) for f in term.factors),
                     key=lambda f: _loose_key(f, loose))
    first_use: dict[str, None] = {}
    for f in factors:
        for i in index_order(f):
            if i in bound:
                first_use.setdefault(i)
    seen = list(first_use)
    seen += sorted(bound - set(seen))  # summed, yet in no factor: a size
    taken = used | {n for f in factors for n in mentioned(f) if not n.startswith(_TEMP)}
    mapping = {}
    for i in seen:
        name = next((n for n in _POOL if n not in taken), None)
        if name is None:
            k = 1
            while f"k{k}" in taken:
                k += 1
            name = f"k{k}"
        mapping[i] = name
        taken.add(name)
    term = rename_term(same_factors(term, factors), mapping)
    inner = _canonical_sum(used | set(mapping.values()))
    return same_factors(term, (map_factor_sums(f, inner) for f in term.factors))


def _canonical_sum(used: set[str]) -> Callable[[Sum], Sum]:
    """The canonical form of a sum inside a term whose names ``used`` are taken."""
    def inner(s: Sum) -> Sum:
        return same_terms(s, sorted((_canonical(t, used | set(t.free)) for t in s.terms),
                                    key=term_key))

    return inner


def _loosely_ordered(f: Factor, loose: dict[str, str]) -> Factor:
    """``f`` with the terms of every sum inside sorted by their loose keys."""
    if isinstance(f, (Ref, Delta, Shift, Cond)):
        return f

    def order(s: Sum) -> Sum:
        inner = (same_factors(t, (_loosely_ordered(g, loose) for g in t.factors))
                 for t in s.terms)
        return same_terms(s, sorted(inner, key=lambda t: term_key(rename_term(t, loose))))

    return map_factor_sums(f, order)


def _loose_key(f: Factor, loose: dict[str, str]) -> str:
    """A sort key that ignores which summed index is which (``loose`` maps each to '?')."""
    if isinstance(f, (Ref, Delta, Shift, Cond)):  # the key of the renamed factor, not made
        return _leaf_key(f, loose)
    return factor_key(rename_factor(f, loose))


def _leaf_key(f: Ref | Delta | Shift | Cond, names: dict[str, str]) -> str:
    """The key of a tensor, a delta or a condition with its indices renamed by ``names``."""
    if isinstance(f, Ref):
        if f.subs is not None:
            return f"1{f.name}[{','.join(_sub_key(s, names) for s in f.subs)}]"
        return f"1{f.name}[{','.join([names.get(i, i) for i in f.indices])}]"
    if isinstance(f, Shift):
        return f"0delta[{names.get(f.i, f.i)},{_sub_key(f.sub, names)}]"
    if isinstance(f, Cond):
        return f"0[{_sub_key(f.a, names)}{f.op}{_sub_key(f.b, names)}]"
    return f"0delta[{names.get(f.i, f.i)},{names.get(f.j, f.j)}]"


def _sub_key(s: Subscript, names: dict[str, str]) -> str:
    if isinstance(s, str):
        return names.get(s, s)
    if isinstance(s, Gather):
        return f"{s.name}[{','.join(names.get(i, i) for i in s.indices)}]"
    return "+".join(f"{c}*{names.get(n, n)}" for n, c in s.parts) + f"+{s.offset}"


def factor_key(f: Factor) -> str:
    """Equal for equal factors."""
    return FACTOR_KEY.of(f, lambda: _factor_key(f))


def _factor_key(f: Factor) -> str:
    # The leading digit orders the kinds: deltas, tensors, functions, powers, sums, reductions.
    if isinstance(f, (Ref, Delta, Shift, Cond)):
        return _leaf_key(f, {})
    if isinstance(f, Call):
        return f"2{f.fn}({','.join(sum_key(a) for a in f.args)})"
    if isinstance(f, Reduce):
        mask = "".join(_leaf_key(c, {}) for c in f.mask)
        return f"5{f.fn}[{','.join(f.indices)}{mask}]({sum_key(f.arg)})"
    if isinstance(f, Power):
        return f"3({sum_key(f.base)})^({sum_key(f.exponent)})"
    if isinstance(f, Sum):
        return f"4Sum({sum_key(f)})"
    unknown_kind(f)


def sum_key(s: Sum) -> str:
    """Equal for sums of equal terms with equal coefficients, in the same order (a sum's
    key as a factor is another value: ``factor_key``)."""
    return SUM_KEY.of(s, lambda: "+".join(
        term_key(t) + f"*{t.coef!r}" for t in s.terms))


def term_key(t: Term) -> str:
    """Equal for equal terms up to the coefficient."""
    return TERM_KEY.of(t, lambda: "{" + ",".join(sorted(t.summed)) + "}"
                    + " ".join(factor_key(f) for f in t.factors))


def bound_key(f: Factor) -> str:
    """Equal for factors equal up to the names of the indices bound inside them."""
    return base_key(as_sum(f))


def base_key(base: Sum) -> str:
    """Equal for equal bases, whatever names their own summed indices have (``sqrt(x[k]
    x[k])`` and ``sqrt(x[k1] x[k1])`` are one base): the key of the canonical factor."""
    return BASE_KEY.of(base, lambda: term_key(canonical_term(Term(1.0, (base,)))))


def bound_names() -> Iterator[str]:
    """Names for bound indices, in the order canonical forms give them."""
    yield from _POOL
    k = 1
    while True:
        yield f"k{k}"
        k += 1

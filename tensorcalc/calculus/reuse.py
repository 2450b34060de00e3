"""Forward values reused inside derivatives.

A derivative rule copies pieces of the forward expression (``f'(e)`` repeats ``e``;
``sigmoid``'s derivative repeats the sigmoid). ``reuse_forward`` replaces each such
copy by a reference to the statement that already computes it, so forward values
and shared derivative pieces are computed once.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir import (
    all_factors,
    index_order,
    map_factor_sums,
    map_factors,
    mentioned,
    only_contracted,
    reads,
    reductions,
    refs,
    rename_term,
    same_terms,
)
from ..ir.nodes import Call, Delta, Factor, Power, Reduce, Ref, Statement, Sum, Term
from .canonical import canonical_term, factor_key, term_key


def reuse_forward(forward_statements: list[Statement], derived: list[Statement]) -> list[Statement]:
    """Replace each copy of an earlier statement's right-hand side inside a derivative
    statement (``tanh(X[b,d] W[d,h] + c[h])``, ``(1 - H[b,h]^2)``) by a reference to it
    (``H[b,h]``): forward values and derivative pieces are computed once."""
    patterns: dict[str, tuple[Statement, tuple[str, ...]]] = {}
    rough: set[tuple[str, tuple[str, ...]]] = set()  # cheap keys of the patterns
    # The cheap keys of the factors of the derivative: a statement whose own is none of
    # them is never looked for, and its canonical form is not made.
    wanted = {reads(f) for st in derived for f in all_factors(st.rhs)
              if not isinstance(f, (Ref, Delta))}

    def learn(st: Statement) -> None:
        if _rough_pattern(st.rhs) not in wanted:
            return
        pattern = _pattern(st.rhs)
        if pattern is not None:
            key, order = skeleton(pattern)
            if set(st.indices) <= set(order):
                patterns.setdefault(key, (st, order))
                rough.add(reads(pattern))

    def in_factor(f: Factor) -> Factor:
        if isinstance(f, (Ref, Delta)):
            return f
        if reads(f) not in rough:  # no pattern reads these tensors: look inside only
            return map_factor_sums(f, in_sum)
        key, order = skeleton(f)
        hit = patterns.get(key)
        if hit is not None:
            st, pattern_order = hit
            mapping = dict(zip(pattern_order, order))
            return Ref(st.name, tuple(mapping[i] for i in st.indices))
        return map_factor_sums(f, in_sum)

    def in_sum(s: Sum) -> Sum:
        return map_factors(s, in_factor)

    for st in forward_statements:
        learn(st)
    out = []
    for st in derived:
        st = Statement(st.name, st.indices, in_sum(st.rhs), st.extents) if patterns else st
        out.append(st)
        learn(st)
    return out


def refer_to_statement(expr: Sum, st: Statement) -> Sum:
    """``expr`` (a derivative of ``st``'s right-hand side, in ``st``'s own index names) with
    every copy of the function ``st`` computes replaced by ``st`` itself: the ``tanh(...)``
    in ``1 - tanh(...)^2`` becomes ``H[b,h]`` before any renaming or reordering could hide
    that it is the same value (``reuse_forward`` finds the rest afterwards)."""
    if len(st.rhs.terms) != 1:
        return expr
    t = st.rhs.terms[0]
    if t.coef != 1 or t.summed or len(t.factors) != 1 \
            or not isinstance(t.factors[0], (Call, Power, Reduce)) \
            or set(t.factors[0].free) != set(st.indices):
        return expr
    value, ref = t.factors[0], Ref(st.name, st.indices)

    def in_factor(f: Factor) -> Factor:
        return ref if f == value else map_factor_sums(f, in_sum)

    def in_sum(s: Sum) -> Sum:
        return map_factors(s, in_factor)

    return in_sum(expr)


def _rough_pattern(rhs: Sum) -> tuple[str, tuple[str, ...]] | None:
    """``reads`` of the pattern ``_pattern`` would make, without making it."""
    if len(rhs.terms) > 1:
        return reads(rhs)
    if len(rhs.terms) == 1 and len(rhs.terms[0].factors) == 1:
        return reads(rhs.terms[0].factors[0])
    return None


def _pattern(rhs: Sum) -> Factor | None:
    """The factor a statement's right-hand side appears as inside other terms, if any:
    a function call or power (``tanh(...)``), or a sum of several terms (``(1 - H^2)``)."""
    if len(rhs.terms) > 1:
        return Sum(tuple(sorted((canonical_term(t) for t in rhs.terms), key=term_key)))
    if len(rhs.terms) == 1:
        t = rhs.terms[0]
        if t.coef == 1 and not t.summed and len(t.factors) == 1 \
                and isinstance(t.factors[0], (Call, Power, Reduce)):
            return canonical_term(t).factors[0]
    return None


def skeleton(f: Factor) -> tuple[str, tuple[str, ...]]:
    """A key equal for factors equal up to a consistent renaming of all their indices,
    and the index names in order of first use (the renaming lines them up)."""
    order = tuple(dict.fromkeys(index_order(f)))
    renamed = rename_term(Term(1.0, (f,)), {n: f"#{k}" for k, n in enumerate(order)})
    return factor_key(renamed.factors[0]), order


def hoist_repeated(derived: list[Statement], tensor_name: Callable[[str], str]
                   ) -> list[Statement]:
    """A function of whole axes that a derivative uses more than once (the inverse in
    ``-Y[i,p] Y[q,j]``, the maximum in the weights of ``max``'s derivative), under any
    names of its indices, becomes one statement of its own, computed once: ``S_inv[i,j] =
    inv[i,j](S[i,j])``. One used once stays where it is (an inverse there may run as a
    solve). ``tensor_name(base)`` gives a fresh statement name."""
    counts: dict[str, int] = {}
    first: dict[str, tuple[Reduce, tuple[str, ...], int]] = {}
    as_matrix: set[str] = set()  # not only an inverse contracted (that runs as a solve)
    for at, st in enumerate(derived):
        for f, term in reductions(st.rhs):
            key, order = skeleton(f)
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, (f, order, at))
            if not only_contracted(f, term):
                as_matrix.add(key)
    hoisted = [key for key, n in counts.items() if n >= 2 and key in as_matrix]
    if not hoisted:
        return derived
    made: dict[str, tuple[Statement, tuple[str, ...]]] = {}
    for key in hoisted:
        f, order, _ = first[key]
        base = next((r.name for r in refs(f.arg)), "")
        name = tensor_name(f"{base}_{f.fn}" if base else f.fn)
        made[key] = (Statement(name, f.free, Sum((Term(1.0, (f,)),))), order)

    def in_factor(f: Factor) -> Factor:
        if isinstance(f, Reduce):
            key, order = skeleton(f)
            if key in made:
                st, pattern_order = made[key]
                mapping = dict(zip(pattern_order, order))
                return Ref(st.name, tuple(mapping[i] for i in st.indices))
        return map_factor_sums(f, in_sum)

    def in_sum(s: Sum) -> Sum:
        return map_factors(s, in_factor)

    # Each hoisted statement goes just before the first statement that uses it (a hoisted
    # one that holds another counts as a user of it: the inner one goes first).
    depth = {key: sum(1 for _ in reductions(made[key][0].rhs)) for key in hoisted}
    place = {key: first[key][2] for key in hoisted}
    for key in sorted(hoisted, key=lambda k: -depth[k]):
        for inner, _ in reductions(made[key][0].rhs):
            inner_key = skeleton(inner)[0]
            if inner_key in place and inner_key != key:
                place[inner_key] = min(place[inner_key], place[key])
    out: list[Statement] = []
    ordered = sorted(hoisted, key=lambda k: (place[k], depth[k]))
    for at, st in enumerate(derived):
        for key in ordered:
            if place[key] == at:
                h = made[key][0]
                only = h.rhs.terms[0].factors[0]
                assert isinstance(only, Reduce)
                out.append(Statement(h.name, h.indices, as_rhs(map_factor_sums(only, in_sum))))
        out.append(Statement(st.name, st.indices, in_sum(st.rhs), st.extents))
    return out


def as_rhs(f: Factor) -> Sum:
    return Sum((Term(1.0, (f,)),))


Part = tuple[tuple[int, ...], Term]  # the positions of some factors of a term, their product


def share_products(derived: list[Statement], tensor_name: Callable[[str], str],
                   parts: Callable[[Term], list[Part]] | None = None) -> list[Statement]:
    """A contraction of tensors that two terms of a derivative compute (``G2[k,h] X[b,k]``
    in ``H_bar_bar = G2[k,h] X[b,k] (1 - H^2)`` and in ``-2 G2[k,h] X[b,k] H H_bar``), under
    any names of its indices, becomes a statement of its own, computed once: ``G2_X[b,h]
    = G2[k,h] X[b,k]``. Only a closed product is shared: the tensors that hold every index
    the term sums, beside other factors that sum nothing with them. Contracting it first
    is then an order any contraction of the term could take, so nothing gets slower.
    ``parts`` gives other products to share (``elementwise_groups``)."""
    find = parts or _closed_product
    found: dict[str, list[tuple[int, int, tuple[int, ...], tuple[str, ...]]]] = {}
    products: dict[str, Term] = {}
    for at, st in enumerate(derived):
        for n, t in enumerate(st.rhs.terms):
            ranged = {e.name for e in t.extents if e.given}
            for inside, product in find(t):
                if ranged & product.mentioned:
                    continue  # the term gives these indices a range of their own: kept there
                product = canonical_term(product)  # factors in one order, whatever the term's
                key, order = skeleton(Sum((product,)))
                found.setdefault(key, []).append((at, n, inside, order))
                products.setdefault(key, product)
    shared = {key: places for key, places in found.items() if len(places) >= 2}
    if not shared:
        return derived
    first_use: dict[int, list[Statement]] = {}
    replaced: dict[tuple[int, int], list[tuple[tuple[int, ...], Ref]]] = {}
    for key, places in shared.items():
        product = products[key]
        base = "_".join(dict.fromkeys(r.name for r in refs(Sum((product,)))))
        # A contraction laid out as its first user's value is, so that it is read there
        # without a transpose; an elementwise product as its operands are
        lhs = derived[places[0][0]].indices if product.summed else ()
        axes = sorted(product.free, key=lambda i: lhs.index(i) if i in lhs else len(lhs))
        st = Statement(tensor_name(base or "shared"), tuple(axes), Sum((product,)))
        first_use.setdefault(places[0][0], []).append(st)
        for at, n, inside, order in places:
            mapping = dict(zip(places[0][3], order))
            replaced.setdefault((at, n), []).append(
                (inside, Ref(st.name, tuple(mapping[i] for i in st.indices))))
    out: list[Statement] = []
    for at, st in enumerate(derived):
        out += first_use.get(at, [])
        terms = []
        for n, t in enumerate(st.rhs.terms):
            if (at, n) in replaced:
                gone = {k for inside, _ in replaced[(at, n)] for k in inside}
                rest = tuple(f for k, f in enumerate(t.factors) if k not in gone)
                made = tuple(ref for _, ref in replaced[(at, n)])
                still = frozenset(i for i in t.summed if any(i in f.free for f in rest + made))
                t = Term(t.coef, rest + made, still, t.extents)
            terms.append(t)
        out.append(Statement(st.name, st.indices, same_terms(st.rhs, terms), st.extents))
    return out


def elementwise_groups(t: Term) -> list[Part]:
    """The factors of ``t`` over the same indices, two or more (``H_bar[k,q] (1 -
    H[k,q]^2)``), as products of their own: a product every evaluation of the term makes
    first (the merged backward pass of ``to_torch`` shares it between ``W``'s gradient and
    ``c``'s)."""
    groups: dict[frozenset[str], list[int]] = {}
    for k, f in enumerate(t.factors):
        if isinstance(f, (Ref, Call, Power, Sum)) and not (isinstance(f, Ref) and f.subs):
            groups.setdefault(frozenset(f.free), []).append(k)
    out = []
    for axes, inside in groups.items():
        if len(inside) >= 2 and axes and (len(inside) < len(t.factors) or t.summed):
            factors = tuple(t.factors[k] for k in inside)
            out.append((tuple(inside), Term(1.0, factors)))
    return out


def _closed_product(t: Term) -> list[Part]:
    """The tensors of ``t`` that hold its summed indices, as a product of their own (with
    their positions), where they are plain tensors, two or more, and not the whole term."""
    if not t.summed or len(t.factors) < 3 or any(e.name in t.summed for e in t.extents):
        return []
    inside = tuple(k for k, f in enumerate(t.factors) if not t.summed.isdisjoint(mentioned(f)))
    if len(inside) < 2 or len(inside) == len(t.factors):
        return []
    factors = tuple(t.factors[k] for k in inside)
    if not all(isinstance(f, Ref) and f.subs is None for f in factors):
        return []
    return [(inside, Term(1.0, factors, t.summed))]

"""Simplification to a fixed point: deltas out, constants folded, terms collected.

* ``substitute_deltas``: a delta with a summed index is removed by renaming that
  index to its partner everywhere in the term (``delta[i,p] A[p,q]``, ``p`` summed,
  becomes ``A[i,q]``); chains of deltas collapse the same way. A delta between two
  free indices stays: it is structure. ``delta[i,i]`` summed stays as the size of i.
* ``canonical_term``: summed indices renamed in a fixed order and factors sorted, so
  that equal terms have equal keys and ``collect`` can add their coefficients.

>>> from tensorcalc.ir import Delta, Ref, Term
>>> t = Term(1.0, (Delta("i", "p"), Ref("A", ("p", "q"))), frozenset({"p"}))
>>> substitute_deltas(t).factors
(Ref(name='A', indices=('i', 'q')),)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..caching import memo
from ..errors import ProgramError
from ..ir import (
    Affine,
    Call,
    Delta,
    Extent,
    Factor,
    Gather,
    Power,
    Reduce,
    Ref,
    Shift,
    Subscript,
    Sum,
    Term,
    affine,
    all_factors,
    as_sum,
    collapses,
    const_value,
    extents_from,
    freshen,
    index_order,
    map_factor_sums,
    mentioned,
    needed_extents,
    read_inside,
    rename_factor,
    rename_term,
    same_factors,
    same_terms,
    sizes_carried,
    sub_names,
    substitute,
)
from ..ops.functions import FUNCTIONS
from ..render.printing import format_number


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
    that no factor left would keep (SPEC §8: ranges belong to the statement as written)?
    Then the delta stays, run as a rectangular identity: substituted, ``sum_k delta[p,k]``
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
    indices (MATH §7): with ``k`` summed, ``w[k] delta[p, i+k]`` is ``w[p-i]``. The index
    solved for must label an axis of a tensor factor of the term (``w[k]``), so that the
    tensor's zeros past its ends keep the sum where that index ran. A shifted delta that
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
    and the term's other zeros make it nan): padding belongs to the whole term (SPEC §8)."""
    return any(not isinstance(f, (Ref, Delta, Shift)) and name in mentioned(f) for f in factors)


def _with_given(term: Term, expr: Subscript) -> Term:
    """Extents for the indices of a new affine read that a tensor of the term reads plainly:
    their sizes are given, not shrunk to where the read stays inside (SPEC §8)."""
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


# --- the fixed point -----------------------------------------------------------


def simplify_sum(expr: Sum, held: frozenset[str] = frozenset(), top: bool = True) -> Sum:
    """Simplify every term (recursively) and collect equal ones, until nothing changes."""
    done: dict[tuple[frozenset[str], bool], Sum] = expr.__dict__.setdefault("_simplified", {})
    key = (held, top)
    if key not in done:
        done[key] = _simplify_sum(expr, held, top)
    return done[key]


def _simplify_sum(expr: Sum, held: frozenset[str], top: bool) -> Sum:
    if len(expr.terms) == 1 and _atomic(expr.terms[0]):  # ``2``, ``h[b,j]``: nothing to do
        return expr
    held = held | frozenset(expr.free)  # summed indices must never take these names
    for _ in range(20):
        terms: list[Term] = []
        done: dict[int, list[Term]] = {}  # a term repeated as the same object is done once
        for t in expr.terms:
            if id(t) not in done:
                done[id(t)] = simplify_term(freshen(t, set(held)) if top else t)
            terms += done[id(t)]
        new = collect(terms, held)
        if top:
            new = distinct_bound_names(new, held)
        # Settled terms, renamed, are settled still, and the canonical form of a canonical
        # term is itself: another round would give ``new`` back. It is not run.
        if new == expr or all(_settled(t) for t in terms):
            expr = new
            break
        expr = new
    return expr


def _atomic(term: Term) -> bool:
    """A number, or a number times one plain tensor, with nothing summed: its own
    simplified and canonical form."""
    if term.coef == 0 or term.summed or term.extents:
        return False
    if not term.factors:
        return True
    f = term.factors[0]
    return len(term.factors) == 1 and isinstance(f, Ref) and f.subs is None


def _settled(term: Term) -> bool:
    """Would ``simplify_term`` give ``term`` back unchanged? True only where nothing it does
    applies: no sum to inline or fold, no delta to substitute, no shifted delta, no power or
    function of numbers, no powers of one base to merge, and no index bound inside a
    factor (a nested sum's bound names follow the names around it, which a renaming
    changes). False where unsure: the fixed point then runs another round."""
    if term.coef == 0:
        return False
    numeric_powers = False
    for f in term.factors:
        if isinstance(f, Ref):
            continue
        if isinstance(f, Delta):
            if f.i in term.summed or f.j in term.summed or f.i == f.j:
                return False
            continue
        if isinstance(f, Shift) or mentioned(f) != frozenset(f.free):
            return False
        if isinstance(f, Sum):
            if len(f.terms) <= 1 or _distribute(Term(1.0, (f,), term.summed)) is not None:
                return False
        elif isinstance(f, Power):
            e = const_value(f.exponent)
            if e is not None:
                numeric_powers = True
                if e in (0.0, 1.0) or const_value(f.base) is not None or (
                        e == int(e) and len(f.base.terms) == 1):
                    return False
        elif isinstance(f, Call):
            if const_value(f.arg) is not None:
                return False
        else:
            return False  # a function of whole axes: left to the rounds
    if numeric_powers:
        return _merge_powers(list(term.factors), []) == list(term.factors)
    return True


def distinct_bound_names(expr: Sum, held: frozenset[str] = frozenset()) -> Sum:
    """Rename summed indices so that a name never labels axes of two sizes in one statement.

    Canonical names repeat across terms; one name must mean one size throughout a
    statement. A name may be shared by two terms where it labels the same axis of the same
    tensor in both (then the sizes agree); otherwise the later term takes another name.
    """
    free = set(expr.free) | held
    seen: dict[str, set[tuple[str, int]]] = {}
    out = []
    for t in expr.terms:
        axes = _axes_of(t)
        bound = sorted(t.mentioned - set(t.free))
        mapping: dict[str, str] = {}
        for k in bound:
            if k not in free and (k not in seen or seen[k] & axes.get(k, set())):
                continue
            others = (t.mentioned - {k}) | free | set(mapping.values())
            mapping[k] = next(
                n for n in _names()
                if n not in others and (n not in seen or seen[n] & axes.get(k, set()))
            )
        t = rename_term(t, mapping)
        for k in bound:
            seen.setdefault(mapping.get(k, k), set()).update(axes.get(k, set()))
        out.append(t)
    return Sum(tuple(out))


def _axes_of(t: Term) -> dict[str, set[tuple[str, int]]]:
    """Each index of a term with the (tensor, axis) places it labels plainly. An index
    read through arithmetic (``x[k+1]``, ``delta[p,k+2]``) labels none: its range is the
    term's own (SPEC §8), so another term never shares its name."""
    axes: dict[str, set[tuple[str, int]]] = {}
    ranged: set[str] = set()
    for f in all_factors(Sum((t,))):
        if isinstance(f, Ref):
            for pos, i in f.plain_axes():
                axes.setdefault(i, set()).add((f.name, pos))
            if f.subs is not None:
                ranged.update(n for s in f.subs if not isinstance(s, str) for n in s.names)
        elif isinstance(f, Shift):
            ranged.update(f.sub.names)
    for i in ranged:
        axes[i] = set()
    return axes


def _names() -> Iterator[str]:
    yield from _POOL
    k = 1
    while True:
        yield f"k{k}"
        k += 1


def simplify_term(term: Term) -> list[Term]:
    """One term simplified; may split into several when a sum factor must be distributed."""
    term = _inline(term)
    if term.coef == 0:
        return []
    term = substitute_deltas(term)
    if any(isinstance(f, Shift) for f in term.factors):
        term = substitute_deltas(substitute_shifts(term))
    coef = term.coef
    factors: list[Factor] = []
    # Names a nested sum must not give its own summed indices: all of this term's.
    around = term.mentioned
    extents = list(term.extents)
    for original in term.factors:
        f = _simplify_factor(original, around)
        lost = sizes_carried(original) - sizes_carried(f)
        if lost:
            # Terms cancelled inside (``sin(x[j] - x[j] + x[b])``), or ``X^0`` became 1:
            # keep the sizes they gave.
            extents += extents_from(lost, original)
        value = _constant_factor(f)
        if value is not None:
            coef *= value
            continue
        factors.append(f)
    if coef == 0:
        return []
    factors = _merge_powers(factors, extents)
    if coef != term.coef or len(extents) != len(term.extents):
        term = Term(coef, tuple(factors), term.summed, tuple(extents))
    else:
        term = same_factors(term, factors)
    kept = needed_extents(term)
    if kept != term.extents:
        term = Term(coef, term.factors, term.summed, kept)
    spread = _distribute(term)
    if spread is not None:
        out: list[Term] = []
        for t in spread:
            out += simplify_term(t)
        return out
    return [term]


def _merge_powers(factors: list[Factor], extents: list[Extent]) -> list[Factor]:
    """Powers of one base in one term become one power: ``a^m a^n`` is ``a^(m+n)``.

    A bare factor counts as ``a^1`` (a division is ``a^-1``), but only beside a power of
    the same base: ``x[k] x[k]`` stays a product that einsum contracts. Exponents must be
    numbers. A power whose exponents add to 0 is dropped, its sizes kept in ``extents``.
    """
    if len(factors) < 2 or not any(_numeric_power(f) for f in factors):
        return factors
    groups: dict[str, list[int]] = {}
    bases: list[tuple[Sum, float] | None] = []
    for k, f in enumerate(factors):
        split = _as_power(f)
        bases.append(split)
        if split is not None:
            groups.setdefault(_base_key(split[0]), []).append(k)
    out: list[Factor] = []
    merged: set[int] = set()
    for k, f in enumerate(factors):
        if k in merged:
            continue
        split = bases[k]
        group = groups[_base_key(split[0])] if split is not None else [k]
        if split is None or len(group) < 2 or not any(_numeric_power(factors[j]) for j in group):
            out.append(f)
            continue
        merged.update(group)
        total = 0.0
        for j in group:
            other = bases[j]
            total += other[1] if other is not None else 0.0
        if total == 0:
            for j in group:  # a^m a^-m is 1; the sizes its tensors gave stay with the term
                extents += extents_from(sizes_carried(factors[j]), factors[j])
            continue
        out.append(_simplify_factor(Power(split[0], _number(total))))
    return out


def _numeric_power(f: Factor) -> bool:
    return isinstance(f, Power) and const_value(f.exponent) is not None


def _as_power(f: Factor) -> tuple[Sum, float] | None:
    """A factor as (base, numeric exponent); a delta is no base (delta^2 is delta)."""
    if isinstance(f, Power):
        e = const_value(f.exponent)
        return None if e is None else (f.base, e)
    if isinstance(f, Delta):
        return None
    return as_sum(f), 1.0


def bound_key(f: Factor) -> str:
    """Equal for factors equal up to the names of the indices bound inside them."""
    return _base_key(as_sum(f))


def _base_key(base: Sum) -> str:
    """Equal for equal bases, whatever names their own summed indices have (``sqrt(x[k]
    x[k])`` and ``sqrt(x[k1] x[k1])`` are one base): the key of the canonical factor."""
    key: str = memo(base, "_base_key", lambda: term_key(canonical_term(Term(1.0, (base,)))))
    return key


def _inline(term: Term) -> Term:
    if not any(isinstance(f, Sum) and len(f.terms) <= 1 for f in term.factors):
        return term
    coef = term.coef
    factors: list[Factor] = []
    summed = set(term.summed)
    extents = list(term.extents)
    for f in term.factors:
        if isinstance(f, Sum):
            if not f.terms:
                return Term(0.0, (), frozenset())
            if len(f.terms) == 1:
                inner = _inline(f.terms[0])
                coef *= inner.coef
                factors += inner.factors
                summed |= inner.summed
                extents += inner.extents
                continue
        factors.append(f)
    return Term(coef, tuple(factors), frozenset(summed), tuple(extents))


def _simplify_factor(f: Factor, around: frozenset[str] = frozenset()) -> Factor:
    f = map_factor_sums(f, lambda s: simplify_sum(s, around, top=False))
    if isinstance(f, Power):
        e = const_value(f.exponent)
        if e == 1.0:
            return f.base
        if e == 0.0:  # x^0 is 1, as NumPy has it (0^0 included)
            return _number(1.0)
        b = const_value(f.base)
        if b is not None and e is not None:
            with np.errstate(all="ignore"):
                value = float(np.power(b, e))
            if b == 0 and e < 0:  # printed as a division by 0, which the language refuses
                raise ProgramError(f"0^({format_number(e)}) divides by the constant 0")
            if math.isfinite(value):  # (-8)^(1/3) stays as written (nan when run)
                return _number(value)
        # (u^a)^n with integer n is u^(a n); sqrt(u)^n with even n is u^(n/2)
        if e is not None and e == int(e) and len(f.base.terms) == 1:
            only = f.base.terms[0]
            if only.coef == 1 and len(only.factors) == 1 and isinstance(only.factors[0], Power) \
                    and not only.summed:
                inner = only.factors[0]
                a = const_value(inner.exponent)
                if a is not None:
                    return Power(inner.base, _number(a * e))
            if only.coef == 1 and len(only.factors) == 1 and not only.summed and e % 2 == 0 \
                    and isinstance(only.factors[0], Call) and only.factors[0].fn == "sqrt":
                return _simplify_factor(Power(only.factors[0].arg, _number(e / 2)))
    if isinstance(f, Call):
        x = const_value(f.arg)
        if x is not None:
            with np.errstate(all="ignore"):
                value = float(FUNCTIONS[f.fn].kernel(np.float64(x), np))
            if math.isfinite(value):  # log(0), log(-2) stay as written (-inf, nan at run)
                return _number(value)
    return f


def _number(value: float) -> Sum:
    return Sum((Term(value, ()),)) if value != 0 else Sum(())


def _constant_factor(f: Factor) -> float | None:
    if isinstance(f, Sum):
        return const_value(f)
    return None


def _distribute(term: Term) -> list[Term] | None:
    """Expand a multi-term sum factor whose terms hold a delta on an index summed here."""
    for k, f in enumerate(term.factors):
        if isinstance(f, Sum) and len(f.terms) > 1 and any(
            isinstance(g, Delta) and ({g.i, g.j} & term.summed) for t in f.terms for g in t.factors
        ):
            rest = term.factors[:k] + term.factors[k + 1:]
            # Each part keeps the sizes the whole sum gave: in (delta[i,a] + Z[k]) W[i,i],
            # summed over k, the delta part still sums over k.
            lengths = extents_from(sizes_carried(f), f)
            return [
                freshen(Term(term.coef * t.coef, rest + t.factors, term.summed | t.summed,
                             term.extents + t.extents + lengths))
                for t in f.terms
            ]
    return None


# --- canonical form and collection --------------------------------------------


def collect(terms: list[Term], held: frozenset[str] = frozenset()) -> Sum:
    """Add the coefficients of terms that are equal up to the names of summed indices."""
    keyed: dict[str, Term] = {}
    order: list[str] = []
    canonical: dict[int, Term] = {}  # a term repeated as the same object is canonical once
    for t in terms:
        if id(t) not in canonical:
            canonical[id(t)] = canonical_term(t, held)
        t = canonical[id(t)]
        key = term_key(t)
        if key in keyed:
            old = keyed[key]
            keyed[key] = Term(old.coef + t.coef, old.factors, old.summed,
                              tuple(dict.fromkeys(old.extents + t.extents)))
        else:
            keyed[key] = t
            order.append(key)
    # Canonical names may repeat across sibling factors; make bound names unique again.
    return Sum(tuple(freshen(keyed[k]) for k in order if keyed[k].coef != 0))


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
        known = term.__dict__.get("_canonical") if closed else None
        if known is not None:  # then its canonical form depends on nothing around it
            return known  # type: ignore[no-any-return]
        out = same_factors(term, sorted(term.factors, key=factor_key))
        out = same_factors(out, (map_factor_sums(f, _canonical_sum(used)) for f in out.factors))
        if closed:  # a canonical form is its own
            term.__dict__["_canonical"] = out.__dict__["_canonical"] = out
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
    if isinstance(f, (Ref, Delta, Shift)):
        return f

    def order(s: Sum) -> Sum:
        inner = (same_factors(t, (_loosely_ordered(g, loose) for g in t.factors))
                 for t in s.terms)
        return same_terms(s, sorted(inner, key=lambda t: term_key(rename_term(t, loose))))

    return map_factor_sums(f, order)


def _loose_key(f: Factor, loose: dict[str, str]) -> str:
    """A sort key that ignores which summed index is which (``loose`` maps each to '?')."""
    if isinstance(f, (Ref, Delta, Shift)):  # the key of the renamed factor, without making it
        return _leaf_key(f, loose)
    return factor_key(rename_factor(f, loose))


def _leaf_key(f: Ref | Delta | Shift, names: dict[str, str]) -> str:
    """The key of a tensor or a delta with its indices renamed by ``names``."""
    if isinstance(f, Ref):
        if f.subs is not None:
            return f"1{f.name}[{','.join(_sub_key(s, names) for s in f.subs)}]"
        return f"1{f.name}[{','.join([names.get(i, i) for i in f.indices])}]"
    if isinstance(f, Shift):
        return f"0delta[{names.get(f.i, f.i)},{_sub_key(f.sub, names)}]"
    return f"0delta[{names.get(f.i, f.i)},{names.get(f.j, f.j)}]"


def _sub_key(s: Subscript, names: dict[str, str]) -> str:
    if isinstance(s, str):
        return names.get(s, s)
    if isinstance(s, Gather):
        return f"{s.name}[{','.join(names.get(i, i) for i in s.indices)}]"
    return "+".join(f"{c}*{names.get(n, n)}" for n, c in s.parts) + f"+{s.offset}"


def factor_key(f: Factor) -> str:
    return memo(f, "_factor_key", lambda: _factor_key(f))


def _factor_key(f: Factor) -> str:
    kind = type(f).__name__
    if isinstance(f, (Ref, Delta, Shift)):
        return _leaf_key(f, {})
    if isinstance(f, Call):
        return f"2{f.fn}({_sum_key(f.arg)})"
    if isinstance(f, Power):
        return f"3({_sum_key(f.base)})^({_sum_key(f.exponent)})"
    if isinstance(f, Reduce):
        return f"5{f.fn}[{','.join(f.indices)}]({_sum_key(f.arg)})"
    return f"4{kind}({_sum_key(f)})"


def _sum_key(s: Sum) -> str:
    return memo(s, "_sum_key", lambda: "+".join(
        term_key(t) + f"*{t.coef!r}" for t in s.terms))


def term_key(t: Term) -> str:
    """Equal for equal terms up to the coefficient."""
    return memo(t, "_term_key", lambda: "{" + ",".join(sorted(t.summed)) + "}"
                 + " ".join(factor_key(f) for f in t.factors))

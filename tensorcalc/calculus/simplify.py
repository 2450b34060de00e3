"""Simplification to a fixed point: deltas out (``deltas``), constants folded, powers of
one base merged, terms collected (equal up to bound names: ``canonical``).

>>> from tensorcalc.ir import Delta, Ref, Sum, Term
>>> t = Term(2.0, (Delta("i", "p"), Ref("A", ("p",))), frozenset({"p"}))
>>> simplify_sum(Sum((t, t))).terms[0].coef
4.0
"""

from __future__ import annotations

import math

import numpy as np

from ..caching import SIMPLIFIED
from ..errors import ProgramError
from ..ir import (
    all_factors,
    as_sum,
    compared,
    const_value,
    extents_from,
    freshen,
    map_factor_sums,
    mentioned,
    needed_extents,
    rename_term,
    same_factors,
    sizes_carried,
    unknown_kind,
)
from ..ir.nodes import Call, Cond, Delta, Extent, Factor, Power, Reduce, Ref, Shift, Sum, Term
from ..ops.functions import FUNCTIONS
from ..render.printing import format_number
from .canonical import base_key, bound_names, canonical_term, term_key
from .canonical import bound_key as bound_key  # re-exported: backend.plan reads it here
from .deltas import substitute_deltas as substitute_deltas  # re-exported, as bound_key
from .deltas import substitute_shifts
from .deltas import tie_groups as tie_groups  # re-exported, as bound_key


def simplify_sum(expr: Sum, held: frozenset[str] = frozenset(), top: bool = True) -> Sum:
    """Simplify every term (recursively) and collect equal ones, until nothing changes."""
    done: dict[tuple[frozenset[str], bool], Sum] = SIMPLIFIED.of(expr, dict)
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
        if isinstance(f, Cond):
            if compared(f.op, f.a, f.b) is not None or term.factors.count(f) > 1:
                return False
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
            if _chosen(f) is not None or all(const_value(a) is not None for a in f.args):
                return False
        elif isinstance(f, Reduce):
            return False  # a function of whole axes: left to the rounds
        else:
            unknown_kind(f)
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
                n for n in bound_names()
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
    term's own (docs/index-arithmetic.md), so another term never shares its name."""
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
        if isinstance(f, Cond) and f in factors:  # [i != j]^2 is [i != j]
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
            groups.setdefault(base_key(split[0]), []).append(k)
    out: list[Factor] = []
    merged: set[int] = set()
    for k, f in enumerate(factors):
        if k in merged:
            continue
        split = bases[k]
        group = groups[base_key(split[0])] if split is not None else [k]
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
    if isinstance(f, (Delta, Cond)):
        return None
    return as_sum(f), 1.0

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
        chosen = _chosen(f)
        if chosen is not None:
            return chosen
        values = [const_value(a) for a in f.args]
        if all(x is not None for x in values):
            with np.errstate(all="ignore"):
                value = float(FUNCTIONS[f.fn].kernel(*map(np.float64, values), np))
            if math.isfinite(value):  # log(0), log(-2) stay as written (-inf, nan at run)
                return _number(value)
    return f


def _chosen(f: Call) -> Sum | None:
    """What a ``where`` comes to without running it: the branch a constant condition picks,
    or the condition itself where the branches are 1 and 0 (``where(x > 0, 1, 0)``, how a
    comparison used as a factor prints). None for any other call."""
    if not FUNCTIONS[f.fn].condition:
        return None
    cond, a, b = f.args
    picked = const_value(cond)
    if picked is not None:
        return a if picked != 0 else b
    test = cond.terms[0].factors[0] if len(cond.terms) == 1 and cond.terms[0].coef == 1 \
        and len(cond.terms[0].factors) == 1 and not cond.terms[0].summed else None
    if isinstance(test, Call) and FUNCTIONS[test.fn].operator is not None \
            and const_value(a) == 1 and const_value(b) == 0:
        return cond
    return None


def _number(value: float) -> Sum:
    return Sum((Term(value, ()),)) if value != 0 else Sum(())


def _constant_factor(f: Factor) -> float | None:
    if isinstance(f, Sum):
        return const_value(f)
    if isinstance(f, Cond):  # [i <= i] is 1, [i+1 < i] is 0
        holds = compared(f.op, f.a, f.b)
        return None if holds is None else float(holds)
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


# --- collection ------------------------------------------------------------------


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

"""The differentiation rules of one right-hand side, one per node kind.

``differentiate`` walks a sum; ``rule`` says what each tensor reference becomes (the
deltas of ``deltas`` for the variable itself, a tangent for an intermediate, nothing
for a constant). Every other node kind has its rule here, beside its name:

=================  ==============================================================
``Ref``            ``rule(ref)``, or 0 where it does not depend on the variable
``Delta``, ``Cond`` 0 (structure: a delta, a shifted delta, an index condition)
``Call`` f(e)      ``f'(e) de``, ``f'`` from the function's registry entry; for
                   several arguments ``sum_k f_k(args) d arg_k``, the partials
                   ``f_k`` from the entry (``where(c, a, b)``: ``c da + (1 - c) db``)
``Power`` e^n      ``n e^(n-1) de`` (n a number, or any exponent that does not
                   depend on the variable)
``Power`` a^b      ``a^b (b/a da + log(a) db)``
``Sum``            the sum of the derivatives of its terms
``Term``           the product rule: one term per factor
=================  ==============================================================

>>> from tensorcalc.ir import Ref, as_sum
>>> d = differentiate(as_sum(Ref("x", ("i",))), lambda r: deltas(r.indices, ("p",)))
>>> d.terms[0].factors
(Delta(i='i', j='p'),)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..ir import ZERO, const_value, extents_from, fresh_name, power, sizes_carried, unknown_kind
from ..ir.nodes import (
    Call,
    Cond,
    Delta,
    Extent,
    Factor,
    Power,
    Reduce,
    Ref,
    Shift,
    Sum,
    Term,
    delta,
)
from ..ir.subscripts import Subscript
from ..limits import MAX_DERIVATIVE_FACTORS, size_error
from ..ops.functions import FUNCTIONS
from ..ops.reductions import REDUCERS

# d(ref)/d(variable) for one tensor reference, or None where it does not depend on it.
RefRule = Callable[[Ref], Sum | None]


class Budget:
    """What the product rule may still make for the derivative of one statement: at most
    ``MAX_DERIVATIVE_FACTORS`` factors in all the terms it makes (a term without factors
    counts one). Past it the derivative is refused, before anything is simplified."""

    def __init__(self, statement: str):
        self.statement = statement
        self.spent = 0

    def spend(self, factors: int) -> None:
        self.spent += factors
        if self.spent > MAX_DERIVATIVE_FACTORS:
            raise size_error(
                f"the derivative of statement {self.statement}", self.spent,
                "factors in the terms the product rule makes (and more still to make)",
                MAX_DERIVATIVE_FACTORS, "split the statement into smaller ones (a product of "
                "many factors into products of a few), or contract the derivative with vjp "
                "or jvp")


def differentiate(expr: Sum, rule: RefRule, budget: Budget | None = None,
                  around: frozenset[str] = frozenset(),
                  ranges: Mapping[str, Extent] | None = None) -> Sum:
    """The derivative of a sum; ``rule`` gives the derivative of each reference, and
    ``budget`` bounds the terms it makes (one statement's, shared by its parts).
    ``around`` holds the index names of the terms the sum sits in: names a rule makes up
    (the ``k`` of softmax's ``sum_k s[k] de[k]``) avoid them. ``ranges`` gives the given
    range of an index around (a statement's own axes, with index arithmetic): an index a
    rule makes up as a copy of one (softmax's ``k`` of its ``i``) runs over the same."""
    budget = budget if budget is not None else Budget("the expression")
    terms: list[Term] = []
    for t in expr.terms:
        terms += _d_term(t, rule, budget, around, ranges or {})
    return Sum(tuple(terms))


def _d_term(t: Term, rule: RefRule, budget: Budget,
            around: frozenset[str] = frozenset(),
            ranges: Mapping[str, Extent] = MappingProxyType({})) -> list[Term]:
    """Product rule: one term per factor, that factor replaced by its derivative.

    A tensor that repeats (``x[i] x[i] ... x[i]``) yields the same terms at each of its
    places, up to where the one copy left sits among the others: those terms are made once
    and repeated as the same objects, so that a product of n equal factors costs n, not n
    squared. ``simplify`` collects them as before: their canonical forms are equal, since
    no other tensor in them differs from that one only in the names of summed indices.
    """
    out = []
    carriers: dict[str, int] = {}  # how many factors carry each index's size
    for f in t.factors:
        for i in sizes_carried(f):
            carriers[i] = carriers.get(i, 0) + 1
    alike: dict[tuple[str, tuple[str, ...]], set[Ref]] = {}  # tensors equal up to summed names
    for f in t.factors:
        if isinstance(f, Ref):
            alike.setdefault(_loosely(f, t.summed), set()).add(f)
    made: dict[Ref, list[Term]] = {}
    inner = around | t.mentioned
    if any(e.given for e in t.extents):
        ranges = {**ranges, **{e.name: e for e in t.extents if e.given}}
    for k, f in enumerate(t.factors):
        key = f if isinstance(f, Ref) and len(alike[_loosely(f, t.summed)]) == 1 else None
        if key is not None and key in made:
            out += made[key]
            continue
        df = _d_factor(f, rule, budget, inner, ranges)
        others = t.factors[:k] + t.factors[k + 1:]
        start = len(out)
        mine = sizes_carried(f)
        for u in df.terms:
            factors = others + u.factors
            summed = t.summed | u.summed
            extents = t.extents + u.extents
            # Sizes still carried without f: by another factor of t, or by f's derivative.
            lost = {i for i in mine if carriers[i] < 2} \
                - {i for g in u.factors for i in sizes_carried(g)}
            if lost:
                # The derivative no longer carries an axis of the factor it replaces: keep
                # its length beside the term (``simplify`` drops it again wherever another
                # factor carries that axis). Free axes too: a tangent hoisted into a
                # statement of its own leaves them behind, and where it is used they may
                # be summed.
                extents += extents_from(lost, f)
            budget.spend(max(len(factors), 1))
            out.append(Term(t.coef * u.coef, factors, summed, extents))
        if key is not None and not any(isinstance(g, Ref) and g.name == key.name
                                       for u in df.terms for g in u.factors):
            made[key] = out[start:]
    return out


def _loosely(ref: Ref, summed: frozenset[str]) -> tuple[str, tuple[str, ...]]:
    """A tensor with the names of its summed indices left out."""
    return ref.name, tuple("" if i in summed else i for i in ref.indices)


def _d_factor(f: Factor, rule: RefRule, budget: Budget, around: frozenset[str],
              ranges: Mapping[str, Extent]) -> Sum:
    if isinstance(f, Ref):
        return rule(f) or ZERO
    if isinstance(f, (Delta, Shift, Cond)):
        return ZERO
    if isinstance(f, Call):
        return _chain(f, rule, budget, around, ranges)
    if isinstance(f, Power):
        return _d_power(f, rule, budget, around, ranges)
    if isinstance(f, Reduce):
        darg = differentiate(f.arg, rule, budget, around, ranges)
        if not darg.terms:
            return ZERO
        taken = set(around) | {n for u in darg.terms for n in u.mentioned}
        copies: dict[str, Extent] = {}

        def fresh(like: tuple[str, ...]) -> tuple[str, ...]:
            names = []
            for old in like:
                names.append(fresh_name("k", taken))
                taken.add(names[-1])
                if old in ranges:  # a copy of an index with a given range runs over it
                    copies[names[-1]] = ranges[old]._replace(name=names[-1])
            return tuple(names)

        df = REDUCERS[f.fn].derivative(f, darg, fresh)
        if copies:
            df = Sum(tuple(Term(u.coef, u.factors, u.summed, u.extents + tuple(
                e for n, e in copies.items() if n in u.mentioned)) for u in df.terms))
        budget.spend(sum(max(len(u.factors), 1) for u in df.terms))
        return df
    if isinstance(f, Sum):
        return differentiate(f, rule, budget, around, ranges)
    unknown_kind(f)


def _chain(f: Call, rule: RefRule, budget: Budget, around: frozenset[str],
           ranges: Mapping[str, Extent]) -> Sum:
    """``sum_k partial_k(args) d arg_k``; an argument whose partial is 0 (a comparison's, a
    ``where``'s condition) is not differentiated at all."""
    terms: list[Term] = []
    for partial, arg in zip(FUNCTIONS[f.fn].partials_of(f.args), f.args):
        if partial.terms:
            terms += _times(partial, differentiate(arg, rule, budget, around, ranges)).terms
    return Sum(tuple(terms))


def _d_power(f: Power, rule: RefRule, budget: Budget, around: frozenset[str],
             ranges: Mapping[str, Extent]) -> Sum:
    n = const_value(f.exponent)
    dbase = differentiate(f.base, rule, budget, around, ranges)
    if n is not None:  # n b^(n-1) db
        if n == 0 or not dbase.terms:
            return ZERO
        lowered: tuple[Factor, ...] = () if n == 1 else (power(f.base, n - 1),)
        return Sum(tuple(Term(n * u.coef, lowered + u.factors, u.summed, u.extents)
                         for u in dbase.terms))
    dexp = differentiate(f.exponent, rule, budget, around, ranges)
    if not dexp.terms:
        # e^n with n free of the variable: n e^(n-1) de. The general rule below divides
        # by the base and takes its log: nan at a zero base, where x^p is fine.
        lowered_exp = Sum(f.exponent.terms + (Term(-1.0, ()),))
        return Sum(tuple(Term(u.coef, (f.exponent, Power(f.base, lowered_exp)) + u.factors,
                              u.summed, u.extents) for u in dbase.terms))
    # b^e (e/b db + log(b) de)
    terms = [Term(u.coef, (f, f.exponent, power(f.base, -1.0)) + u.factors, u.summed, u.extents)
             for u in dbase.terms]
    if const_value(f.base) != 0:  # 0^e is 0 wherever it has a derivative in e (e > 0): the
        # term 0^e log(0) is 0 there, as in JAX, not 0 * -inf
        terms += [Term(u.coef, (f, Call("log", (f.base,))) + u.factors, u.summed, u.extents)
                  for u in dexp.terms]
    return Sum(tuple(terms))


def _times(outer: Sum, inner: Sum) -> Sum:
    """``outer * inner`` with ``outer`` kept as one factor, ``inner`` distributed."""
    if not outer.terms or not inner.terms:
        return ZERO
    if len(outer.terms) == 1 and not outer.terms[0].summed:
        c, fs = outer.terms[0].coef, outer.terms[0].factors
    else:
        c, fs = 1.0, (outer,)
    return Sum(tuple(Term(c * u.coef, fs + u.factors, u.summed, u.extents)
                     for u in inner.terms))


def deltas(axes: tuple[Subscript, ...], new: tuple[str, ...]) -> Sum:
    """``delta[a,p] delta[b,q] ...``: the derivative of ``X[a,b,...]`` by ``X[p,q,...]``;
    a shifted delta ``delta[p, i+k]`` for an axis read through arithmetic
    (docs/index-arithmetic.md)."""
    return Sum((Term(1.0, tuple(delta(a, p) for a, p in zip(axes, new))),))

"""Walks over the tree, all built on ``nodes.children``: ``walk_factors`` (every factor with its
term, depth first, in order of writing) and ``all_terms`` (every term, the same order) to
read it, ``map_factor_sums`` and ``map_factors`` to rewrite it. A node kind ``children``
does not know raises, so no walk can pass over one.

>>> from tensorcalc.ir.nodes import Call, Ref, as_sum
>>> [r.name for r in refs(as_sum(Call("tanh", (as_sum(Ref("x", ("i",))),))))]
['x']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..caching import ARITHMETIC
from . import nodes
from .nodes import (
    Call,
    Cond,
    Delta,
    Extent,
    Factor,
    Power,
    Reduce,
    Ref,
    Shift,
    Statement,
    Sum,
    Term,
)
from .subscripts import Affine, Gather, sub_names

__all__ = [
    "affine_reads", "all_deltas", "all_factors", "all_terms", "arithmetic", "index_order",
    "index_tensors", "map_factor_sums", "map_factors", "reductions", "refs", "same_factors",
    "same_terms",
    "statement_extents", "statement_refs", "term_extents", "walk_factors",
]

# --- reading ------------------------------------------------------------------

_LEAVES = (Ref, Delta, Shift, Cond)  # the kinds that hold no sum


def walk_factors(expr: Sum) -> Iterator[tuple[Term, Factor]]:
    """Every factor inside, at every depth, with the term it is a factor of: each factor
    before the sums inside it, factors in order of writing."""
    for t in expr.terms:
        for f in t.factors:
            yield t, f
            if not isinstance(f, _LEAVES):  # spares the call where most factors are tensors
                for s in nodes.children(f):
                    yield from walk_factors(s)


def all_terms(expr: Sum) -> Iterator[Term]:
    """Every term inside, at every depth: each term before the terms inside its factors."""
    stack = list(reversed(expr.terms))
    while stack:
        t = stack.pop()
        yield t
        inner = [u for f in t.factors for s in nodes.children(f) for u in s.terms]
        stack += reversed(inner)  # the first inner term comes next


# ``all_factors``, ``refs`` and ``term_extents`` are the walks every pass asks for (sizes,
# dependencies, collection): they walk by hand, so that only what they yield is passed up
# through the nested generators (through ``walk_factors`` the derivation costs ~4% more).


def all_factors(expr: Sum) -> Iterator[Factor]:
    """Every factor inside, at every depth, in the order of ``walk_factors``."""
    for t in expr.terms:
        for f in t.factors:
            yield f
            if not isinstance(f, _LEAVES):
                for s in nodes.children(f):
                    yield from all_factors(s)


def refs(expr: Sum) -> Iterator[Ref]:
    """Every tensor reference inside, depth first."""
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Ref):
                yield f
            elif not isinstance(f, _LEAVES):
                for s in nodes.children(f):
                    yield from refs(s)


def all_deltas(expr: Sum) -> Iterator[Delta]:
    """Every delta inside, depth first."""
    return (f for _, f in walk_factors(expr) if isinstance(f, Delta))


def reductions(expr: Sum) -> Iterator[tuple[Reduce, Term]]:
    """Every function of whole axes inside, outermost first, with the term it is a
    factor of."""
    return ((f, t) for t, f in walk_factors(expr) if isinstance(f, Reduce))


def affine_reads(expr: Sum) -> Iterator[Affine]:
    """Every subscript with index arithmetic inside (``x[i+k]``'s ``i+k``, and a shifted
    delta's ``delta[p, i+1]``), depth first."""
    for f in all_factors(expr):
        if isinstance(f, Ref) and f.subs is not None:
            yield from (s for s in f.subs if isinstance(s, Affine))
        elif isinstance(f, Shift) and isinstance(f.sub, Affine):
            yield f.sub


def index_tensors(expr: Sum) -> Iterator[Gather]:
    """Every integer tensor used as a subscript inside, depth first."""
    for _, f in walk_factors(expr):
        if isinstance(f, Ref) and f.subs is not None:
            yield from (s for s in f.subs if isinstance(s, Gather))
        elif isinstance(f, Shift) and isinstance(f.sub, Gather):
            yield f.sub
        elif isinstance(f, (Cond, Reduce)):
            for c in f.mask if isinstance(f, Reduce) else (f,):
                yield from (s for s in (c.a, c.b) if isinstance(s, Gather))


def term_extents(expr: Sum) -> Iterator[Extent]:
    """The extents of every term inside, depth first."""
    for t in expr.terms:
        yield from t.extents
        for f in t.factors:
            if not isinstance(f, _LEAVES):
                for s in nodes.children(f):
                    yield from term_extents(s)


def statement_refs(st: Statement) -> Iterator[Ref]:
    """Every tensor reference on the right-hand side."""
    return refs(st.rhs)


def statement_extents(st: Statement) -> Iterator[Extent]:
    """Every extent of a statement: of its left-hand indices and of its terms."""
    yield from st.extents
    yield from term_extents(st.rhs)


def index_order(f: Factor) -> list[str]:
    """Every index name inside a factor, in order of use (repeats kept)."""
    if isinstance(f, Ref):
        return list(f.indices) if f.subs is None else [n for s in f.subs for n in sub_names(s)]
    if isinstance(f, Delta):
        return [f.i, f.j]
    if isinstance(f, Shift):
        return [f.i, *f.sub.names]
    if isinstance(f, Cond):
        return list(f.free)
    out: list[str] = [n for c in f.mask for n in c.free] if isinstance(f, Reduce) else []
    for s in nodes.children(f):
        for t in s.terms:
            inner = [n for g in t.factors for n in index_order(g)]
            out += sorted(t.summed - set(t.free) - set(inner))  # summed, in no factor
            out += inner
    return out


def arithmetic(expr: Sum) -> bool:
    """Does the expression use index arithmetic anywhere (an access, or a shifted delta)?
    Kept on every sum asked, so that a sum asked again costs no walk."""
    known: bool | None = expr.__dict__.get(ARITHMETIC.key)  # asked often: read inline
    if known is None:
        known = _arithmetic(expr)
        ARITHMETIC.put(expr, known)
    return known


def _arithmetic(expr: Sum) -> bool:
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Shift) or (isinstance(f, Ref) and f.subs is not None):
                return True
            if any(arithmetic(s) for s in nodes.children(f)):
                return True
    return False


# --- rewriting ------------------------------------------------------------------


def map_factor_sums(factor: Factor, fn: Callable[[Sum], Sum]) -> Factor:
    """Apply ``fn`` to the sums directly inside a factor; the factor itself where ``fn``
    gives every sum back as it was (it keeps what is cached on it)."""
    if isinstance(factor, _LEAVES):
        return factor
    if isinstance(factor, Call):
        args = tuple(fn(a) for a in factor.args)
        if all(new is old for new, old in zip(args, factor.args)):
            return factor
        return Call(factor.fn, args)
    if isinstance(factor, Reduce):
        arg = fn(factor.arg)
        if arg is factor.arg:
            return factor
        return Reduce(factor.fn, factor.indices, arg, factor.keeps, factor.mask)
    if isinstance(factor, Power):
        base, exponent = fn(factor.base), fn(factor.exponent)
        if base is factor.base and exponent is factor.exponent:
            return factor
        return Power(base, exponent)
    if isinstance(factor, Sum):
        return fn(factor)
    nodes.unknown_kind(factor)


def map_factors(expr: Sum, fn: Callable[[Factor], Factor]) -> Sum:
    """``fn`` applied to every factor of every term of ``expr`` (top level only): ``expr``
    itself where it gives every factor back."""
    return same_terms(expr, (same_factors(t, (fn(f) for f in t.factors)) for t in expr.terms))


def replace_factors(expr: Sum, swap: Callable[[Factor], Factor | None]) -> Sum:
    """``expr`` with each factor, at any depth, replaced by what ``swap`` gives for it,
    and looked into where ``swap`` gives None; ``expr`` itself where nothing changed."""

    def factor(f: Factor) -> Factor:
        new = swap(f)
        return new if new is not None else \
            map_factor_sums(f, lambda s: replace_factors(s, swap))

    return map_factors(expr, factor)


def same_terms(expr: Sum, terms: Iterable[Term]) -> Sum:
    """A sum of ``terms``: ``expr`` itself where they are its own terms, the same objects."""
    terms = tuple(terms)
    if len(terms) == len(expr.terms) and all(a is b for a, b in zip(terms, expr.terms)):
        return expr
    return Sum(terms)


def same_factors(term: Term, factors: Iterable[Factor]) -> Term:
    """``term`` with ``factors``: ``term`` itself where they are its own, the same objects."""
    factors = tuple(factors)
    if len(factors) == len(term.factors) and all(a is b for a, b in zip(factors, term.factors)):
        return term
    return Term(term.coef, factors, term.summed, term.extents)

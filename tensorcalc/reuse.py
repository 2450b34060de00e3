"""Forward values reused inside derivatives.

A derivative rule copies pieces of the forward expression (``f'(e)`` repeats ``e``;
``sigmoid``'s derivative repeats the sigmoid). ``reuse_forward`` replaces each such
copy by a reference to the statement that already computes it, so forward values
and shared derivative pieces are computed once.
"""

from __future__ import annotations

from .ir import (
    Call,
    Delta,
    Factor,
    Power,
    Ref,
    Statement,
    Sum,
    Term,
    index_order,
    map_factor_sums,
    rename_term,
)
from .simplify import canonical_term, factor_key, term_key


def reuse_forward(forward_statements: list[Statement], derived: list[Statement]) -> list[Statement]:
    """Replace each copy of an earlier statement's right-hand side inside a derivative
    statement (``tanh(X[b,d] W[d,h] + c[h])``, ``(1 - H[b,h]^2)``) by a reference to it
    (``H[b,h]``): forward values and derivative pieces are computed once."""
    patterns: dict[str, tuple[Statement, tuple[str, ...]]] = {}

    def learn(st: Statement) -> None:
        pattern = _pattern(st.rhs)
        if pattern is not None:
            key, order = skeleton(pattern)
            if set(st.indices) <= set(order):
                patterns.setdefault(key, (st, order))

    def in_factor(f: Factor) -> Factor:
        if isinstance(f, (Ref, Delta)):
            return f
        key, order = skeleton(f)
        hit = patterns.get(key)
        if hit is not None:
            st, pattern_order = hit
            mapping = dict(zip(pattern_order, order))
            return Ref(st.name, tuple(mapping[i] for i in st.indices))
        return map_factor_sums(f, in_sum)

    def in_sum(s: Sum) -> Sum:
        return Sum(tuple(Term(t.coef, tuple(in_factor(f) for f in t.factors), t.summed, t.extents)
                         for t in s.terms))

    for st in forward_statements:
        learn(st)
    out = []
    for st in derived:
        st = Statement(st.name, st.indices, in_sum(st.rhs), st.extents) if patterns else st
        out.append(st)
        learn(st)
    return out


def _pattern(rhs: Sum) -> Factor | None:
    """The factor a statement's right-hand side appears as inside other terms, if any:
    a function call or power (``tanh(...)``), or a sum of several terms (``(1 - H^2)``)."""
    if len(rhs.terms) > 1:
        return Sum(tuple(sorted((canonical_term(t) for t in rhs.terms), key=term_key)))
    if len(rhs.terms) == 1:
        t = rhs.terms[0]
        if t.coef == 1 and not t.summed and len(t.factors) == 1 \
                and isinstance(t.factors[0], (Call, Power)):
            return canonical_term(t).factors[0]
    return None


def skeleton(f: Factor) -> tuple[str, tuple[str, ...]]:
    """A key equal for factors equal up to a consistent renaming of all their indices,
    and the index names in order of first use (the renaming lines them up)."""
    order = tuple(dict.fromkeys(index_order(f)))
    renamed = rename_term(Term(1.0, (f,)), {n: f"#{k}" for k, n in enumerate(order)})
    return factor_key(renamed.factors[0]), order

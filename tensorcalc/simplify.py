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
from typing import Any

from .functions import FUNCTIONS
from .ir import (
    Call, Delta, Factor, Power, Ref, Statement, Sum, Term, ZERO, as_sum, const, const_value,
    fresh_name, freshen, map_factor_sums, rename_term,
)


def substitute_deltas(term: Term) -> Term:
    """Remove every delta of the term that has a summed index (top level only)."""
    while True:
        for k, f in enumerate(term.factors):
            if not isinstance(f, Delta) or f.i == f.j:
                continue
            if f.i in term.summed:
                gone, keep = f.i, f.j
            elif f.j in term.summed:
                gone, keep = f.j, f.i
            else:
                continue
            rest = term.factors[:k] + term.factors[k + 1:]
            renamed = rename_term(Term(term.coef, rest, term.summed - {gone}), {gone: keep})
            term = renamed
            break
        else:
            break
    # delta[i,i] is one where i is free; summed it is the size of i, kept as written.
    factors = tuple(
        f for f in term.factors
        if not (isinstance(f, Delta) and f.i == f.j and f.i not in term.summed)
    )
    return Term(term.coef, factors, term.summed)


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

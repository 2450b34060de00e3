"""Functions of whole axes (SPEC §7): one registry entry each, its value beside its
derivative, as ``functions.py`` has for elementwise functions.

The value is a kernel of ``backend/kernels.py`` run along trailing axes. The derivative
takes the factor ``f = fn[indices](arg)``, the derivative ``darg`` of its argument and a
source of fresh index names, and returns ``df`` as an IR sum, written with the forward
value itself (``Y`` for ``inv``, ``s`` for ``softmax``) so that it is computed once
(MATH.md §6):

==============  ==============================================================
``max``/``min``  ``sum_j w[j] de[j]``, ``w = hardmax[j](e)`` (``hardmin``): 1/count at the
                 positions that attain the extreme, 0 elsewhere
``hardmax``      0 (constant wherever it has a derivative)
``logsumexp``    ``sum_j softmax[j](e) de[j]``
``softmax``      ``s[j] de[j] - s[j] sum_k s[k] de[k]``
``inv``          ``-sum_ab Y[i,a] de[a,b] Y[b,j]``
``logdet``       ``sum_ij Minv[j,i] de[i,j]``
``det``          ``det * sum_ij Minv[j,i] de[i,j]``
==============  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ir import (
    KEEPING,
    MATRIX,
    REDUCTIONS,
    Factor,
    Reduce,
    Sum,
    Term,
    rename_factor,
    rename_term,
)
from . import kernels

Array = Any
Fresh = Callable[[tuple[str, ...]], tuple[str, ...]]  # fresh copies of these indices


@dataclass(frozen=True)
class Reduction:
    """One function of whole axes: its kernel, its derivative, what it is."""

    name: str
    kernel: Callable[[Array, tuple[int, ...], Any], Array]
    derivative: Callable[[Reduce, Sum, Fresh], Sum]
    doc: str

    @property
    def keeps(self) -> bool:
        return self.name in KEEPING

    @property
    def matrix(self) -> bool:
        return self.name in MATRIX


def _weighted(weight: tuple[Factor, ...], darg: Sum, bound: tuple[str, ...],
              coef: float = 1.0) -> Sum:
    """``coef * sum_bound weight * darg``: the indices the function bound are summed now."""
    return Sum(tuple(Term(coef * u.coef, weight + u.factors, u.summed | frozenset(bound),
                          u.extents) for u in darg.terms))


def _renamed(f: Reduce, fresh: Fresh) -> Reduce:
    """``f`` with its own bound indices renamed fresh (to sit where they are free)."""
    new = fresh(f.bound)
    out = rename_factor(f, dict(zip(f.bound, new)))
    assert isinstance(out, Reduce)
    return out


def _minus(a: Sum, b: Sum) -> Sum:
    return Sum(a.terms + tuple(Term(-t.coef, t.factors, t.summed, t.extents) for t in b.terms))


def _extreme(weights: str) -> Callable[[Reduce, Sum, Fresh], Sum]:
    """``max``'s derivative weights each position by ``hardmax`` of the same argument (and
    ``min``'s by ``hardmin``): its kernel compares the argument with its own extreme, so
    some position always attains it. A test of the gap ``m - e[j]`` against zero would
    not: the argument written again may add its terms in another order and miss ``m`` by
    an ulp everywhere, giving 0/0."""
    def derivative(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
        return _weighted((Reduce(weights, f.indices, f.arg, keeps=True),), darg, f.indices)

    return derivative


def _flat(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    """``hardmax`` and ``hardmin`` are constant wherever they have a derivative."""
    return Sum(())


def _logsumexp(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return _weighted((Reduce("softmax", f.indices, f.arg, keeps=True),), darg, f.indices)


def _softmax(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    others = fresh(f.indices)
    mapping = dict(zip(f.indices, others))
    f_k = rename_factor(f, mapping)
    spread = Sum(tuple(rename_term(u, mapping) for u in darg.terms))
    return Sum(_weighted((f,), darg, ()).terms + _weighted((f, f_k), spread, others, -1.0).terms)


def _inv(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    i, j = f.indices
    a, b = fresh((j, i))
    left = rename_factor(f, {j: a})
    right = rename_factor(f, {i: b})
    spread = Sum(tuple(rename_term(u, {i: a, j: b}) for u in darg.terms))
    return _weighted((left, right), spread, (a, b), -1.0)


def _inverse_transposed(f: Reduce) -> Factor:
    """``Minv[j,i]`` over the labels ``i, j`` of ``f``'s matrix."""
    i, j = f.indices
    return rename_factor(Reduce("inv", f.indices, f.arg, keeps=True), {i: j, j: i})


def _logdet(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return _weighted((_inverse_transposed(f),), darg, f.indices)


def _det(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return _weighted((_renamed(f, fresh), _inverse_transposed(f)), darg, f.indices)


_TABLE = [
    Reduction("max", kernels.max_over, _extreme("hardmax"),
              "largest value over the axes; the derivative is shared equally among ties"),
    Reduction("min", kernels.min_over, _extreme("hardmin"),
              "smallest value over the axes; the derivative is shared equally among ties"),
    Reduction("hardmax", kernels.hardmax, _flat,
              "1/count where the argument is largest over the axes, 0 elsewhere (max's "
              "derivative); keeps the axes"),
    Reduction("hardmin", kernels.hardmin, _flat,
              "1/count where the argument is smallest over the axes, 0 elsewhere (min's "
              "derivative); keeps the axes"),
    Reduction("logsumexp", kernels.logsumexp, _logsumexp,
              "log sum exp over the axes, stable at any magnitude; derivative softmax"),
    Reduction("softmax", kernels.softmax, _softmax,
              "exp(e_j) / sum_k exp(e_k) over the axes, stable; keeps the axes"),
    Reduction("inv", kernels.inv, _inv,
              "matrix inverse over two axes of equal size; keeps them; run as a solve "
              "where it is only contracted"),
    Reduction("det", kernels.det, _det, "determinant over two axes of equal size"),
    Reduction("logdet", kernels.logdet, _logdet,
              "log |det| over two axes of equal size, from slogdet"),
]

REDUCERS: dict[str, Reduction] = {r.name: r for r in _TABLE}
assert tuple(REDUCERS) == REDUCTIONS

"""The partial derivatives of the elementwise choices, by each argument, as IR sums: what
the chain rule multiplies the derivative of each argument by (``rules.py``).

=====================  =================================================================
``a > b`` (any of six)  0 by each side: a comparison is constant wherever it has a
                        derivative
``where(c, a, b)``      0 by ``c``, ``c`` by ``a``, ``1 - c`` by ``b``, with ``c`` the
                        comparison's 1/0 value
``maximum(a, b)``       ``[a > b] + 1/2 [a == b]`` by ``a``, ``[a < b] + 1/2 [a == b]`` by
                        ``b``: a tie shares the derivative equally, as JAX does
``minimum(a, b)``       the same with ``<`` and ``>`` exchanged
``clip(x, lo, hi)``     those of ``minimum(maximum(x, lo), hi)``, which is how it is
                        computed (``jnp.clip``'s order): 1 by ``x`` strictly inside, 0
                        outside, 1/2 at a bound (1/4 where ``x == lo == hi``)
=====================  =================================================================

Every partial is a sum of comparisons, whose own derivative is 0: the second derivative of
a choice is the choice of the second derivatives, ``c d2a + (1 - c) d2b``.

>>> from tensorcalc.ir import Ref, as_sum
>>> x = as_sum(Ref("x", ("i",)))
>>> [len(p.terms) for p in maximum_partials((x, x))]
[2, 2]
"""

from __future__ import annotations

from ..ir import ZERO, Call, Sum, Term, as_sum


def _share(holds: str, a: Sum, b: Sum) -> Sum:
    """``[a holds b] + 1/2 [a == b]``: 1 where the comparison ``holds`` picks one side, a half
    at a tie."""
    return Sum((Term(1.0, (Call(holds, (a, b)),)), Term(0.5, (Call("equal", (a, b)),))))


def _product(a: Sum, b: Sum) -> Sum:
    return Sum((Term(1.0, (a, b)),))


def constant_partials(args: tuple[Sum, ...]) -> tuple[Sum, ...]:
    """A comparison: 0 by each argument."""
    return tuple(ZERO for _ in args)


def where_partials(args: tuple[Sum, ...]) -> tuple[Sum, ...]:
    """``where(c, a, b)``: ``c`` by ``a`` and ``1 - c`` by ``b``, however large the derivative
    of the branch not taken (an inf there times 0 is nan, as in JAX)."""
    cond = args[0]
    rest = Sum((Term(1.0, ()),) + tuple(Term(-t.coef, t.factors, t.summed, t.extents)
                                       for t in cond.terms))
    return ZERO, cond, rest


def maximum_partials(args: tuple[Sum, ...]) -> tuple[Sum, ...]:
    a, b = args
    return _share("greater", a, b), _share("less", a, b)


def minimum_partials(args: tuple[Sum, ...]) -> tuple[Sum, ...]:
    a, b = args
    return _share("less", a, b), _share("greater", a, b)


def clip_partials(args: tuple[Sum, ...]) -> tuple[Sum, ...]:
    """``clip(x, lo, hi)`` as ``minimum(m, hi)`` with ``m = maximum(x, lo)``: the chain rule
    through both, so that each bound is shared as those two share a tie."""
    x, lo, hi = args
    m = as_sum(Call("maximum", (x, lo)))
    below_hi = _share("less", m, hi)  # what minimum gives m
    return (_product(below_hi, _share("greater", x, lo)),
            _product(below_hi, _share("less", x, lo)),
            _share("greater", m, hi))

"""Nested functions named before differentiating, so that each is differentiated once.

A function of whole axes differentiates to an expression that holds its argument's
derivative more than once (softmax's ``s[j] (de[j] - s[k] de[k]))``): nested in one
statement, ``softmax[k2](W2[k2,k1] softmax[k1](W1[k1,k0] x[k0]))``, the inner derivative is
copied at every level, and the work doubles with each (0.03 s at depth 2, 150 s at 6).
Written as a chain of statements the same layers cost next to nothing, since the chain
rule across statements refers to each adjoint by name. So before differentiating, a
function nested inside another one's argument whose own argument holds a function again
becomes a statement of its own, ``L_in1[k2] = softmax[k2](...)``, read where it stood:
the same value, the same sizes, the derivative of a chain. Statements with index
arithmetic are left as written (their ranges belong to them, docs/index-arithmetic.md).

>>> from tensorcalc.api import compile
>>> p = compile("L = c[k] softmax[k](W[k,j] tanh(V[j,i] tanh(x[i])))")
>>> [st.name for st in split_nested(p.statements, lambda base: base)]
['L_in', 'L']
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir import all_factors, arithmetic, children, map_factor_sums, map_factors, sizes_carried
from ..ir.nodes import Call, Factor, Reduce, Ref, Statement, Sum, Term
from ..ops.functions import FUNCTIONS


def _has_function(expr: Sum) -> bool:
    return any(isinstance(f, (Call, Reduce)) for f in all_factors(expr))


def _constant(f: Call | Reduce) -> bool:
    """A comparison: its derivative is 0, so nothing is gained by naming it (and ``where``
    keeps its condition written as one)."""
    return isinstance(f, Call) and FUNCTIONS[f.fn].operator is not None


def split_nested(statements: tuple[Statement, ...],
                 fresh: Callable[[str], str]) -> tuple[Statement, ...]:
    """The statements with each function nested in another's argument, whose own argument
    holds a function, computed by a statement of its own before the one it stood in."""
    out: list[Statement] = []
    for st in statements:
        if arithmetic(st.rhs) or not _has_function(st.rhs):
            out.append(st)
            continue
        made: list[Statement] = []
        rhs = _inner(st.rhs, False, _Namer(st.name, fresh, made))
        out += made + ([Statement(st.name, st.indices, rhs, st.extents, st.aliases)]
                       if made else [st])
    return tuple(out)


class _Namer:
    """Statements for the values named inside one statement, in the order made."""

    def __init__(self, of: str, fresh: Callable[[str], str], made: list[Statement]):
        self.of, self.fresh, self.made = of, fresh, made

    def __call__(self, f: Call | Reduce) -> Ref:
        named = Statement(self.fresh(f"{self.of}_in"), f.free, Sum((Term(1.0, (f,)),)))
        self.made.append(named)
        return Ref(named.name, named.indices)


def _inner(expr: Sum, nested: bool, name: _Namer) -> Sum:
    return map_factors(expr, lambda f: _factor(f, nested, name))


def _factor(f: Factor, nested: bool, name: _Namer) -> Factor:
    if not isinstance(f, (Call, Reduce)) or _constant(f):
        return map_factor_sums(f, lambda s: _inner(s, nested, name))
    deep = nested and (isinstance(f, Reduce) or any(_has_function(s) for s in children(f))) \
        and set(f.free) <= sizes_carried(f)
    f = map_factor_sums(f, lambda s: _inner(s, True, name))  # innermost first
    assert isinstance(f, (Call, Reduce))
    return name(f) if deep else f

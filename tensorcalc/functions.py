"""Elementwise functions: one registry entry each, its value beside its derivative.

The value takes an array and the array's namespace (NumPy, or the one
array-api-compat finds for torch, JAX, CuPy, Dask). The derivative takes the
argument as an IR sum and returns ``f'(arg)`` as an IR sum.

Adding a function is one entry in ``FUNCTIONS``.

>>> import numpy as np
>>> float(FUNCTIONS["sigmoid"].value(np.float64(800.0), np))
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ir import ZERO, Call, Sum, Term, as_sum, power

Array = Any


@dataclass(frozen=True)
class Function:
    name: str
    value: Callable[[Array, Any], Array]
    derivative: Callable[[Sum], Sum]
    doc: str


def _call(fn: str, arg: Sum) -> Call:
    return Call(fn, arg)


def _one_plus(coef: float, factor: Any) -> Sum:
    """``1 + coef * factor`` as a sum."""
    return Sum((Term(1.0, ()), Term(coef, (factor,))))


def _sigmoid(x: Array, xp: Any) -> Array:
    # exp of a non-positive number never overflows; pick the form per sign.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: Array, xp: Any) -> Array:
    return xp.where(x > 0, x, 0.0 * x) + xp.log1p(xp.exp(-xp.abs(x)))


def _relu(x: Array, xp: Any) -> Array:
    return xp.where(x > 0, x, 0.0 * x)


def _step(x: Array, xp: Any) -> Array:
    return xp.where(x > 0, 1.0 + 0.0 * x, 0.0 * x)


_TABLE: list[Function] = [
    Function("exp", lambda x, xp: xp.exp(x), lambda a: as_sum(_call("exp", a)), "e^x"),
    Function("log", lambda x, xp: xp.log(x), lambda a: as_sum(power(a, -1.0)), "natural log"),
    Function(
        "sqrt",
        lambda x, xp: xp.sqrt(x),
        lambda a: Sum((Term(0.5, (power(as_sum(_call("sqrt", a)), -1.0),)),)),
        "square root",
    ),
    Function("sin", lambda x, xp: xp.sin(x), lambda a: as_sum(_call("cos", a)), "sine"),
    Function(
        "cos", lambda x, xp: xp.cos(x), lambda a: Sum((Term(-1.0, (_call("sin", a),)),)), "cosine"
    ),
    Function(
        "tan",
        lambda x, xp: xp.tan(x),
        lambda a: _one_plus(1.0, power(as_sum(_call("tan", a)), 2.0)),
        "tangent; tan' = 1 + tan^2",
    ),
    Function(
        "tanh",
        lambda x, xp: xp.tanh(x),
        lambda a: _one_plus(-1.0, power(as_sum(_call("tanh", a)), 2.0)),
        "hyperbolic tangent; tanh' = 1 - tanh^2",
    ),
    Function("sinh", lambda x, xp: xp.sinh(x), lambda a: as_sum(_call("cosh", a)), "sinh"),
    Function("cosh", lambda x, xp: xp.cosh(x), lambda a: as_sum(_call("sinh", a)), "cosh"),
    Function(
        "sigmoid",
        _sigmoid,
        lambda a: Sum((Term(1.0, (_call("sigmoid", a), _one_plus(-1.0, _call("sigmoid", a)))),)),
        "logistic 1/(1+e^-x), stable for any x; sigmoid' = s (1 - s)",
    ),
    Function(
        "softplus",
        _softplus,
        lambda a: as_sum(_call("sigmoid", a)),
        "log(1 + e^x), stable for any x; softplus' = sigmoid",
    ),
    Function("relu", _relu, lambda a: as_sum(_call("step", a)), "max(x, 0); relu' = step (0 at 0)"),
    Function("abs", lambda x, xp: xp.abs(x), lambda a: as_sum(_call("sign", a)),
             "|x|; abs' = sign"),
    Function("step", _step, lambda a: ZERO, "1 where x > 0, else 0; derivative taken as 0"),
    Function("sign", lambda x, xp: xp.sign(x), lambda a: ZERO, "sign of x; derivative taken as 0"),
    Function(
        "log1p",
        lambda x, xp: xp.log1p(x),
        lambda a: as_sum(power(Sum((Term(1.0, ()),) + a.terms), -1.0)),
        "log(1 + x), accurate near 0",
    ),
    Function("expm1", lambda x, xp: xp.expm1(x), lambda a: as_sum(_call("exp", a)), "e^x - 1"),
    Function(
        "square", lambda x, xp: x * x, lambda a: Sum((Term(2.0, (a,)),)), "x^2"
    ),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}

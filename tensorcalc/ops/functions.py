"""Elementwise functions: one registry entry each, its value beside its derivative.

The value takes an array and the array's namespace (NumPy, or the one
array-api-compat finds for torch, JAX, CuPy, Dask). The derivative takes the
argument as an IR sum and returns ``f'(arg)`` as an IR sum.

Adding a function is one entry in ``FUNCTIONS`` (the language, the CLI help, printing and
LaTeX, running and export all read it).

>>> import numpy as np
>>> float(FUNCTIONS["sigmoid"].kernel(np.float64(800.0), np))
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ir import ZERO, Call, Sum, Term, as_sum, power
from . import kernels

Array = Any


@dataclass(frozen=True)
class Function:
    """One elementwise function: its kernel (the value), its derivative, what it is.

    ``kernel(x, xp)`` computes the value on an array of namespace ``xp``; it must be a
    plain ``def`` that uses only its arguments, because exported code copies its source
    (see ``ops/kernels.py``). ``derivative(arg)`` returns ``f'(arg)`` as an IR sum.
    ``latex(arg)`` writes it in LaTeX, ``\\operatorname{name}(arg)`` if not given; ``doc``
    is its one-line help.
    """

    name: str
    kernel: Callable[[Array, Any], Array]
    derivative: Callable[[Sum], Sum]
    doc: str
    latex: Callable[[str], str] | None = None

    @property
    def value(self) -> Callable[[Array, Any], Array]:
        return self.kernel

    def to_latex(self, arg: str) -> str:
        if self.latex is not None:
            return self.latex(arg)
        return f"\\operatorname{{{self.name}}}\\left({arg}\\right)"


def _operator(command: str) -> Callable[[str], str]:
    """LaTeX with a command of its own: ``\\exp\\left(...\\right)``."""
    return lambda arg: f"{command}\\left({arg}\\right)"


def _call(fn: str, arg: Sum) -> Call:
    return Call(fn, arg)


def _one_plus(coef: float, factor: Any) -> Sum:
    """``1 + coef * factor`` as a sum."""
    return Sum((Term(1.0, ()), Term(coef, (factor,))))


def _sqrt_latex(arg: str) -> str:
    return f"\\sqrt{{{arg}}}"


def _abs_latex(arg: str) -> str:
    return f"\\left|{arg}\\right|"


_TABLE: list[Function] = [
    Function("exp", kernels.Native("exp"), lambda a: as_sum(_call("exp", a)), "e^x",
             _operator("\\exp")),
    Function("log", kernels.Native("log"), lambda a: as_sum(power(a, -1.0)), "natural log",
             _operator("\\log")),
    Function("sqrt", kernels.Native("sqrt"),
             lambda a: Sum((Term(0.5, (power(as_sum(_call("sqrt", a)), -1.0),)),)),
             "square root", _sqrt_latex),
    Function("sin", kernels.Native("sin"), lambda a: as_sum(_call("cos", a)), "sine",
             _operator("\\sin")),
    Function("cos", kernels.Native("cos"), lambda a: Sum((Term(-1.0, (_call("sin", a),)),)),
             "cosine", _operator("\\cos")),
    Function("tan", kernels.Native("tan"),
             lambda a: _one_plus(1.0, power(as_sum(_call("tan", a)), 2.0)),
             "tangent; tan' = 1 + tan^2", _operator("\\tan")),
    Function("tanh", kernels.Native("tanh"),
             lambda a: _one_plus(-1.0, power(as_sum(_call("tanh", a)), 2.0)),
             "hyperbolic tangent; tanh' = 1 - tanh^2", _operator("\\tanh")),
    Function("sinh", kernels.Native("sinh"), lambda a: as_sum(_call("cosh", a)), "sinh",
             _operator("\\sinh")),
    Function("cosh", kernels.Native("cosh"), lambda a: as_sum(_call("sinh", a)), "cosh",
             _operator("\\cosh")),
    Function("sigmoid", kernels.sigmoid,
             lambda a: Sum((Term(1.0, (_call("sigmoid", a),
                                       _one_plus(-1.0, _call("sigmoid", a)))),)),
             "logistic 1/(1+e^-x), stable for any x; sigmoid' = s (1 - s)",
             _operator("\\sigma")),
    Function("softplus", kernels.softplus, lambda a: as_sum(_call("sigmoid", a)),
             "log(1 + e^x), stable for any x; softplus' = sigmoid"),
    Function("relu", kernels.relu, lambda a: as_sum(_call("step", a)),
             "max(x, 0); relu' = step (0 at 0)"),
    Function("abs", kernels.Native("abs"), lambda a: as_sum(_call("sign", a)), "|x|; abs' = sign",
             _abs_latex),
    Function("step", kernels.step, lambda a: ZERO, "1 where x > 0, else 0; derivative taken as 0"),
    Function("sign", kernels.sign, lambda a: ZERO, "sign of x; derivative taken as 0"),
    Function("log1p", kernels.Native("log1p"),
             lambda a: as_sum(power(Sum((Term(1.0, ()),) + a.terms), -1.0)),
             "log(1 + x), accurate near 0"),
    Function("expm1", kernels.Native("expm1"), lambda a: as_sum(_call("exp", a)), "e^x - 1"),
    Function("square", kernels.square, lambda a: Sum((Term(2.0, (a,)),)), "x^2"),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}

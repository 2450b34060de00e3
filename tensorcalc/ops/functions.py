"""Elementwise functions: one registry entry each, its value beside its derivative.

The value takes one array per argument and the arrays' namespace (NumPy, or the one
array-api-compat finds for torch, JAX, CuPy, Dask). The derivative of a function of one
argument takes the argument as an IR sum and returns ``f'(arg)`` as an IR sum; a function
of several (``where``, ``maximum``, ``clip``, the comparisons) gives its partial derivative
by each argument instead (``choices.py``), and the chain rule sums them.

Adding a function is one entry in ``FUNCTIONS`` (the language, the CLI help, printing and
LaTeX, running and export all read it).

>>> import numpy as np
>>> float(FUNCTIONS["sigmoid"].kernel(np.float64(800.0), np))
1.0
>>> FUNCTIONS["clip"].usage, FUNCTIONS["greater_equal"].usage
('clip(x, lo, hi)', 'a >= b')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ir import ZERO, Call, Sum, Term, as_sum, power
from . import choices, kernels

Array = Any


@dataclass(frozen=True)
class Function:
    """One elementwise function: its kernel (the value), its derivative, what it is.

    ``kernel(x, xp)`` (``kernel(a, b, xp)`` for two arguments, and so on) computes the
    value on arrays of namespace ``xp``; it must be a plain ``def`` that uses only its
    arguments, because exported code copies its source (see ``ops/kernels.py``).
    ``derivative(arg)`` returns ``f'(arg)`` as an IR sum, for a function of one argument;
    one of ``arity`` > 1 arguments has ``partials(args)`` instead, the partial derivative
    by each argument. ``latex(*args)`` writes it in LaTeX, ``\\operatorname{name}(args)``
    if not given; ``doc`` is its one-line help, ``params`` names its arguments there.

    ``operator`` makes it a comparison, written ``a > b`` and only as the condition of a
    function whose first argument is one (``condition``: ``where``); its value is 1.0 or
    0.0.
    """

    name: str
    kernel: Callable[..., Array]
    derivative: Callable[[Sum], Sum] | None
    doc: str
    latex: Callable[..., str] | None = None
    arity: int = 1
    partials: Callable[[tuple[Sum, ...]], tuple[Sum, ...]] | None = None
    params: tuple[str, ...] = ()
    operator: str | None = None
    condition: bool = False

    def __post_init__(self) -> None:
        if (self.derivative is None) != (self.arity > 1) or (self.arity > 1) != (
                self.partials is not None):
            raise ValueError(f"function {self.name}: one argument takes a derivative, "
                             "several take partials")
        if self.params and len(self.params) != self.arity:
            raise ValueError(f"function {self.name}: {len(self.params)} params for "
                             f"{self.arity} arguments")
        if self.operator is not None and self.arity != 2:
            raise ValueError(f"comparison {self.name} takes two arguments")

    @property
    def value(self) -> Callable[..., Array]:
        return self.kernel

    @property
    def usage(self) -> str:
        """How it is written: ``tanh(e)``, ``where(cond, a, b)``, ``a > b``."""
        if self.operator is not None:
            return f"a {self.operator} b"
        names = self.params or (("e",) if self.arity == 1
                                else tuple(chr(ord("a") + k) for k in range(self.arity)))
        return f"{self.name}({', '.join(names)})"

    def partials_of(self, args: tuple[Sum, ...]) -> tuple[Sum, ...]:
        """The partial derivative by each argument (for one argument, ``f'(arg)``)."""
        if self.partials is not None:
            return self.partials(args)
        assert self.derivative is not None  # __post_init__: one argument has one
        return (self.derivative(args[0]),)

    def to_latex(self, *args: str) -> str:
        if self.latex is not None:
            return self.latex(*args)
        return f"\\operatorname{{{self.name}}}\\left({', '.join(args)}\\right)"


def _operator(command: str) -> Callable[[str], str]:
    """LaTeX with a command of its own: ``\\exp\\left(...\\right)``."""
    return lambda arg: f"{command}\\left({arg}\\right)"


def _call(fn: str, arg: Sum) -> Call:
    return Call(fn, (arg,))


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

# Choices: functions of several arguments, their partials in ``choices.py``.


def _comparison(name: str, op: str, latex: str) -> Function:
    """A value comparison ``a op b``: 1 or 0, derivative 0, written only as a condition."""
    return Function(name, kernels.Comparison(op), None,
                    f"1 where a {op} b, else 0; only as the condition of where",
                    lambda a, b: f"{a} {latex} {b}", 2, choices.constant_partials,
                    operator=op)


def _pair_latex(command: str) -> Callable[[str, str], str]:
    """LaTeX of a function of two arguments with a command of its own: ``\\max(a, b)``."""
    return lambda a, b: f"{command}\\left({a}, {b}\\right)"


_TABLE += [
    Function("where", kernels.where, None,
             "a where cond holds, else b (cond a comparison: x[i] > 0); derivative "
             "cond da + (1 - cond) db", arity=3, partials=choices.where_partials,
             params=("cond", "a", "b"), condition=True),
    Function("maximum", kernels.maximum, None,
             "the larger of a and b, elementwise; at a tie each gets half the derivative",
             _pair_latex("\\max"), 2, choices.maximum_partials),
    Function("minimum", kernels.minimum, None,
             "the smaller of a and b, elementwise; at a tie each gets half the derivative",
             _pair_latex("\\min"), 2, choices.minimum_partials),
    Function("clip", kernels.clip, None,
             "minimum(maximum(x, lo), hi), as jnp.clip; derivative by x 1 inside, 0 outside, "
             "1/2 at a bound", arity=3, partials=choices.clip_partials,
             params=("x", "lo", "hi")),
    _comparison("greater", ">", ">"),
    _comparison("greater_equal", ">=", "\\geq"),
    _comparison("less", "<", "<"),
    _comparison("less_equal", "<=", "\\leq"),
    _comparison("equal", "==", "="),
    _comparison("not_equal", "!=", "\\neq"),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}


def comparison_named(operator: str) -> str | None:
    """The registered comparison written ``operator`` (``>`` is ``greater``), if any."""
    return next((n for n, f in FUNCTIONS.items() if f.operator == operator), None)

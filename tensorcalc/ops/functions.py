"""Elementwise functions: one registry entry each, its value beside its derivative.

The value takes one array per argument and the arrays' namespace (NumPy, or the one
array-api-compat finds for torch, JAX, CuPy, Dask). The derivative of a function of one
argument takes the argument as an IR sum and returns ``f'(arg)`` as an IR sum; a function
of several (``where``, ``maximum``, ``clip``, the comparisons) gives its partial derivative
by each argument instead (``choices.py``), and the chain rule sums them.

Adding a function is one entry in ``FUNCTIONS`` (the language, the CLI help, printing and
LaTeX, running and export all read it). The derivatives of digamma go on for ever:
trigamma, then ``polygamma2``, ``polygamma3``, ... up to ``polygamma100``, the members of
a ``Family`` that the registry makes on demand (``FUNCTIONS["polygamma7"]``); listing the
registry lists the family once, as ``polygammaN``, not a hundred entries.

>>> import numpy as np
>>> float(FUNCTIONS["sigmoid"].kernel(np.float64(800.0), np))
1.0
>>> "polygamma7" in FUNCTIONS, "polygamma7" in list(FUNCTIONS), "polygamma1" in FUNCTIONS
(True, False, False)
>>> FUNCTIONS["clip"].usage, FUNCTIONS["greater_equal"].usage
('clip(x, lo, hi)', 'a >= b')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar, overload

from ..errors import DerivativeError
from ..ir import ZERO, Call, Sum, Term, as_sum, power
from . import choices, kernels, special

Array = Any

_TWO_OVER_SQRT_PI = 1.1283791670955126
_ONE_OVER_SQRT_2PI = 0.3989422804014327
_SQRT_HALF = 0.7071067811865476
_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_TANH_CUBIC = 0.044715  # of the tanh GELU's cubic term


@dataclass(frozen=True)
class Function:
    """One elementwise function: its kernel (the value), its derivative, what it is.

    ``kernel(x, xp)`` (``kernel(a, b, xp)`` for two arguments, and so on) computes the
    value on arrays of namespace ``xp``; it must be a plain ``def`` that uses only its
    arguments (or a ``kernels.Native``, or a plain ``def`` with constants bound by
    ``kernels.WithConstants``), because exported code copies its source (see
    ``ops/kernels.py``). ``derivative(arg)`` returns ``f'(arg)`` as an IR sum, for a
    function of one argument; one of ``arity`` > 1 arguments has ``partials(args)``
    instead, the partial derivative by each argument. ``latex(*args)`` writes it in LaTeX,
    ``\\operatorname{name}(args)`` if not given; ``doc`` is its one-line help, ``params``
    names its arguments there.

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


def _scaled(a: Sum, coef: float) -> Sum:
    """``coef * a``, term by term."""
    return Sum(tuple(replace(t, coef=t.coef * coef) for t in a.terms))


def _gauss(a: Sum, half: float) -> Call:
    """``exp(-half a^2)``."""
    return _call("exp", Sum((Term(-half, (power(a, 2.0),)),)))


def _gelu_tanh_derivative(a: Sum) -> Sum:
    """gelu_tanh = x s with s = sigmoid(2u), u = c (x + k x^3): s + 2c x s (1 - s) (1 + 3k x^2),
    in the sigmoid (stable where 1 + tanh(u) cancels)."""
    c, k = _SQRT_2_OVER_PI, _GELU_TANH_CUBIC
    s = _call("sigmoid", Sum(_scaled(a, 2.0 * c).terms + (Term(2.0 * c * k,
                                                              (power(a, 3.0),)),)))
    rest = _one_plus(-1.0, s)
    return Sum((Term(1.0, (s,)), Term(2.0 * c, (a, s, rest)),
                Term(6.0 * c * k, (power(a, 3.0), s, rest))))


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
    Function("erf", special.ERF,
             lambda a: Sum((Term(_TWO_OVER_SQRT_PI, (_gauss(a, 1.0),)),)),
             "error function, 2/sqrt(pi) times the integral of e^-t^2 from 0 to x; "
             "erf' = 2/sqrt(pi) e^-x^2"),
    Function("erfc", special.ERFC,
             lambda a: Sum((Term(-_TWO_OVER_SQRT_PI, (_gauss(a, 1.0),)),)),
             "1 - erf(x), to full precision where erf is near 1 (erfc(10) = 2.1e-45); "
             "erfc' = -erf'"),
    Function("gelu", special.GELU,
             lambda a: Sum((Term(0.5, (_call("erfc", _scaled(a, -_SQRT_HALF)),)),
                            Term(_ONE_OVER_SQRT_2PI, (a, _gauss(a, 0.5))))),
             "x Phi(x) = 0.5 x erfc(-x/sqrt(2)), the exact GELU; "
             "gelu' = Phi(x) + x e^(-x^2/2) / sqrt(2 pi)"),
    Function("gelu_tanh", kernels.gelu_tanh, _gelu_tanh_derivative,
             "0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), the tanh GELU, "
             "computed as x sigmoid(2u)", lambda arg: f"\\operatorname{{gelu}}_{{\\tanh}}"
                                            f"\\left({arg}\\right)"),
    Function("softsign", kernels.softsign,
             lambda a: as_sum(power(_one_plus(1.0, _call("abs", a)), -2.0)),
             "x / (1 + |x|); softsign' = (1 + |x|)^-2"),
    Function("logsigmoid", kernels.logsigmoid, lambda a: as_sum(_call("sigmoid", _scaled(a, -1.0))),
             "log sigmoid(x) = -softplus(-x), stable for any x; logsigmoid' = sigmoid(-x)",
             _operator("\\log\\sigma")),
    Function("lgamma", special.LGAMMA,
             lambda a: as_sum(_call("digamma", a)), "log |Gamma(x)|; lgamma' = digamma",
             lambda arg: f"\\ln\\left|\\Gamma\\left({arg}\\right)\\right|"),
    Function("digamma", special.DIGAMMA,
             lambda a: as_sum(_call("trigamma", a)),
             "psi(x) = Gamma'(x) / Gamma(x); digamma' = trigamma", _operator("\\psi")),
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


# --- the polygamma family: trigamma, polygamma2, polygamma3, ... --------------------------

#: The highest order of ``polygammaN``: the coefficients of its reflection formula (the
#: derivatives of cot, times π^(N+1)) reach 7e217 at 100, and leave a float's range
#: before 150.
MAX_POLYGAMMA = 100


def _polygamma_name(n: int) -> str:
    return "trigamma" if n == 1 else f"polygamma{n}"


def polygamma(n: int) -> Function:
    """The entry of ψ⁽ⁿ⁾, the nth derivative of digamma (``trigamma`` for n = 1), whose
    derivative is the entry of order n + 1."""

    def derivative(a: Sum) -> Sum:
        if n + 1 > MAX_POLYGAMMA:
            raise DerivativeError(f"the derivative of {_polygamma_name(n)} would be polygamma"
                                  f"{n + 1}, past the highest order, {MAX_POLYGAMMA}")
        return as_sum(_call(_polygamma_name(n + 1), a))

    name = _polygamma_name(n)
    return Function(name, special.polygamma_kernel(n),
                    derivative, f"psi^({n})(x), the derivative of order {n} of digamma; "
                    f"{name}' = polygamma{n + 1}",
                    lambda arg: f"\\psi^{{({n})}}\\left({arg}\\right)")


@dataclass(frozen=True)
class Family:
    """Elementwise functions made on demand, one for each order of a range: ``polygamma2``,
    ``polygamma3``, ... (``prefix`` and the order, in digits with no leading 0)."""

    prefix: str
    orders: range
    make: Callable[[int], Function]  # cached: one entry per order
    doc: str

    @property
    def usage(self) -> str:
        return f"{self.prefix}N(e)"

    def order(self, name: str) -> int | None:
        """The order ``name`` is the member of, or None."""
        digits = name[len(self.prefix):]
        if not name.startswith(self.prefix) or not (digits.isascii() and digits.isdigit()) \
                or digits.startswith("0"):
            return None
        n = int(digits)
        return n if n in self.orders else None


_T = TypeVar("_T")


class Registry(dict[str, Function]):
    """The elementwise functions by name: the entries, and the members of ``families``,
    which a lookup or ``in`` finds and which listing leaves out (an entry of the same name
    comes first)."""

    def __init__(self, entries: Iterable[Function], families: tuple[Family, ...]):
        super().__init__((f.name, f) for f in entries)
        self.families = families

    def member(self, name: str) -> Function | None:
        """The entry of a family that ``name`` names, or None."""
        for family in self.families:
            n = family.order(name)
            if n is not None:
                return family.make(n)
        return None

    def __missing__(self, name: str) -> Function:
        found = self.member(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str)
                                              and self.member(name) is not None)

    @overload
    def get(self, name: str, default: None = None, /) -> Function | None: ...

    @overload
    def get(self, name: str, default: Function, /) -> Function: ...

    @overload
    def get(self, name: str, default: _T, /) -> Function | _T: ...

    def get(self, name: str, default: Any = None, /) -> Any:
        return self[name] if name in self else default


FUNCTIONS = Registry(
    _TABLE + [polygamma(1)],
    (Family("polygamma", range(2, MAX_POLYGAMMA + 1), cache(polygamma),
            f"psi^(N)(x), the derivative of order N (2 to {MAX_POLYGAMMA}) of digamma; "
            "polygammaN' = polygamma(N+1)"),))


def comparison_named(operator: str) -> str | None:
    """The registered comparison written ``operator`` (``>`` is ``greater``), if any."""
    return next((n for n, f in FUNCTIONS.items() if f.operator == operator), None)

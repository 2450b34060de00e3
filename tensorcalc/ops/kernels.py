"""Every piece of numerical work, defined once.

Each kernel is a plain function of arrays and the array namespace ``xp`` (NumPy, or
the one array-api-compat finds for torch, JAX, CuPy, Dask). The runner calls these
functions; the exporter copies their source into the code it writes (renamed with a
leading underscore, called with ``xp=np``), so a program and its exported code run
the same arithmetic. A kernel therefore uses nothing but its arguments and calls no
other kernel except through ``xp``; ``export.kernel_source`` checks that it has a
plain ``def``. Tables of constants a kernel needs are bound to its further parameters by
``WithConstants``, which exported code writes as their defaults.

>>> import numpy as np
>>> align(np.arange(6.0).reshape(2, 3), ("i", "j"), ("j", "i"), (3, 2), np).shape
(3, 2)
>>> float(sigmoid(np.float64(-800.0), np)), float(softplus(np.float64(800.0), np))
(0.0, 800.0)
"""

from __future__ import annotations

import ast
import inspect
import operator
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Array = Any


# --- layout -------------------------------------------------------------------


def align(value: Array, have: tuple[str, ...], want: tuple[str, ...],
          shape: tuple[int, ...], xp: Any) -> Array:
    """Transpose ``value`` (axes ``have``) to the axes ``want``, broadcasting the axes it
    lacks to ``shape``."""
    kept = [i for i in want if i in have]
    order = tuple(have.index(i) for i in kept)
    if order != tuple(range(len(order))):
        value = xp.permute_dims(value, order) if hasattr(xp, "permute_dims") \
            else xp.transpose(value, order)
    if len(kept) != len(want):
        value = xp.reshape(value, tuple(value.shape[kept.index(i)] if i in kept else 1
                                        for i in want))
    if tuple(value.shape) != tuple(shape):
        value = xp.broadcast_to(value, tuple(shape))
    return value


def diagonal_axes(want: tuple[str, ...], ties: dict[str, str]) -> tuple[str, ...]:
    """The axes of the diagonal that ``ties`` picks in an array over ``want``."""
    return tuple(dict.fromkeys(ties.get(i, i) for i in want))


def diagonal_view(out: Array, want: tuple[str, ...], ties: dict[str, str], xp: Any) -> Array:
    """The writable view of NumPy array ``out`` (axes ``want``, at most 52) on the
    diagonal that ``ties`` picks, over ``diagonal_axes(want, ties)``; what
    ``on_diagonal`` writes into (which, exported, cannot call it)."""
    letters = {i: chr(ord("a") + k) if k < 26 else chr(ord("A") + k - 26)
               for k, i in enumerate(want)}
    spec = "".join(letters[ties.get(i, i)] for i in want) + "->" \
        + "".join(letters[i] for i in diagonal_axes(want, ties))
    return xp.einsum(spec, out)


def on_diagonal(core: Array, want: tuple[str, ...], ties: dict[str, str],
                shape: tuple[int, ...], xp: Any, where: dict[str, Any] | None = None) -> Array:
    """A zero array of ``shape`` (axes ``want``) holding ``core`` on the diagonal that
    ``ties`` picks (each tied axis equals the axis it maps to). ``core`` is laid out over
    ``diagonal_axes(want, ties)`` already. ``where`` puts index arrays on the core's
    device (libraries other than NumPy)."""
    diagonal = tuple(dict.fromkeys(ties.get(i, i) for i in want))
    if getattr(xp, "__name__", "") == "numpy" and len(want) <= 52:
        # NumPy: write through a diagonal view of the zero array, no identity matrices.
        out = xp.zeros(shape, dtype=xp.result_type(core, xp.float32))
        letters = {i: chr(ord("a") + k) if k < 26 else chr(ord("A") + k - 26)
                   for k, i in enumerate(want)}
        spec = "".join(letters[ties.get(i, i)] for i in want) + "->" \
            + "".join(letters[i] for i in diagonal)
        xp.einsum(spec, out)[...] = core
        return out
    if hasattr(core, "new_zeros") and not any(j in ties for j in ties.values()):
        # torch: zeros made like the core (batched under vmap too) and the core copied
        # into their diagonal view, one tie at a time (its axis goes last)
        out = core.new_zeros(shape)
        view, axes = out, list(want)
        for i, j in ties.items():
            a, b = axes.index(i), axes.index(j)
            view = view.diagonal(0, a, b)
            axes = [n for k, n in enumerate(axes) if k not in (a, b)] + [j]
        view.copy_(core.permute(tuple(diagonal.index(n) for n in axes)))
        return out
    # No writable diagonal views: lay the core out over ``want`` (size 1 on tied axes) and
    # keep it where each tied axis equals its partner.
    kept = [i for i in want if i not in ties]
    order = tuple(diagonal.index(i) for i in kept)
    if order != tuple(range(len(order))):
        core = xp.permute_dims(core, order) if hasattr(xp, "permute_dims") \
            else xp.transpose(core, order)
    value = xp.reshape(core, tuple(1 if i in ties else n for i, n in zip(want, shape)))
    for i, j in ties.items():
        a, b = want.index(i), want.index(j)
        axis_a = tuple(-1 if k == a else 1 for k in range(len(shape)))
        axis_b = tuple(-1 if k == b else 1 for k in range(len(shape)))
        rows = xp.reshape(xp.arange(shape[a], **(where or {})), axis_a)
        cols = xp.reshape(xp.arange(shape[b], **(where or {})), axis_b)
        value = xp.where(rows == cols, value, xp.zeros_like(value))
    return xp.broadcast_to(value, tuple(shape))


def constant_power(x: Array, n: float, xp: Any) -> Array:
    """``x ** n`` for a constant ``n``, by the cheapest exact route for common ``n``."""
    if n == 1:
        return x
    if n == 2:
        return x * x
    if n == -1:
        return 1.0 / x
    if n == 0.5:
        return xp.sqrt(x)
    if n == -2:
        return 1.0 / (x * x)
    return x ** n


# --- elementwise functions ------------------------------------------------------
# The registry in ``functions.py`` names one of these for each function.


@dataclass(frozen=True)
class Native:
    """A function every array namespace has under the language's name (``xp.tanh``):
    one definition for the dozen that are only that. Exported code writes it as a
    ``def`` (``source``), like the kernels below."""

    name: str

    def __call__(self, x: Array, xp: Any) -> Array:
        return getattr(xp, self.name)(x)

    def source(self, as_name: str) -> str:
        return f"def {as_name}(x, xp):\n    return xp.{self.name}(x)"


@dataclass(frozen=True)
class WithConstants:
    """A kernel ``def fn(x, xp, name, ...)`` with constants of its own (tables of
    coefficients, an order) bound to its further parameters, run with NumPy's
    floating-point warnings off: a pole's ``inf`` is the value, as in scipy, and the
    branches that ``where`` discards may overflow. Exported code writes it as one ``def``
    whose further parameters default to the constants (``source``), so that it still uses
    nothing but its arguments (``ops/special.py`` holds such kernels)."""

    fn: Callable[..., Array]
    constants: tuple[tuple[str, Any], ...]

    def __call__(self, x: Array, xp: Any) -> Array:
        keywords = dict(self.constants)
        if hasattr(xp, "errstate"):
            with xp.errstate(all="ignore"):
                return self.fn(x, xp, **keywords)
        return self.fn(x, xp, **keywords)

    def source(self, as_name: str) -> str:
        text = textwrap.dedent(inspect.getsource(self.fn))
        tree = ast.parse(text).body[0]
        if not isinstance(tree, ast.FunctionDef):
            raise TypeError(f"kernel {self.fn!r} must be a plain def to be exported")
        lines = text.splitlines()
        first = tree.body[0]  # the docstring, kept above the errstate block, or a statement
        start = first.lineno - 1
        end = (first.end_lineno or first.lineno) if ast.get_docstring(tree) else start
        defaults = "".join(f", {name}={_literal(value)}" for name, value in self.constants)
        return "\n".join([f"def {as_name}(x, xp{defaults}):", *lines[start:end],
                          '    with xp.errstate(all="ignore"):',
                          textwrap.indent("\n".join(lines[end:]), "    ")])


def _literal(value: Any) -> str:
    """A constant as Python source: a tuple of numbers wrapped over lines."""
    if isinstance(value, tuple):
        lines = textwrap.wrap(" ".join(f"{v!r}," for v in value), 88,
                              initial_indent=" " * 8, subsequent_indent=" " * 8)
        return "(\n" + "\n".join(lines) + ")"
    return repr(value)


def sign(x: Array, xp: Any) -> Array:
    # as np.sign: 0 stays 0, nan stays nan; no masked assignment (torch's vmap has none)
    one = xp.ones_like(x)
    return xp.where(x > 0, one, xp.where(x < 0, -one, x))


def square(x: Array, xp: Any) -> Array:
    return x * x


def sigmoid(x: Array, xp: Any) -> Array:
    # 1 / (1 + exp(-x)) is accurate for every x: below x = -709 (-88 in float32) exp
    # overflows to inf and the value is 0, which is right, so only NumPy's warning about
    # the overflow is silenced. Four passes, the formula's own, and no where().
    if hasattr(xp, "errstate"):
        with xp.errstate(over="ignore"):
            return 1.0 / (1.0 + xp.exp(-x))
    return 1.0 / (1.0 + xp.exp(-x))


def softplus(x: Array, xp: Any) -> Array:
    # max(x, 0) + log1p(exp(-|x|)): never overflows, 0 at -inf, inf at inf, nan at nan.
    return xp.clip(x, 0.0, None) + xp.log1p(xp.exp(-xp.abs(x)))


def relu(x: Array, xp: Any) -> Array:
    # where, not x * (x > 0): 0 * -inf would be nan.
    return xp.where(x > 0, x, xp.zeros_like(x))


def softsign(x: Array, xp: Any) -> Array:
    # x / (1 + |x|), and its limits +-1 at +-inf (where the formula is inf / inf)
    infinite = xp.isinf(x)
    finite = xp.where(infinite, xp.zeros_like(x), x)
    return xp.where(infinite, xp.sign(x), finite / (1.0 + xp.abs(finite)))


def logsigmoid(x: Array, xp: Any) -> Array:
    # -softplus(-x) = min(x, 0) - log1p(exp(-|x|)): never overflows; 0 at inf, -inf at -inf
    return xp.clip(x, None, 0.0) - xp.log1p(xp.exp(-xp.abs(x)))


def gelu_tanh(x: Array, xp: Any) -> Array:
    # 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the sigmoid
    # keeps its relative accuracy where 1 + tanh(u) cancels (x < -3), and is 0 where exp
    # overflows (x < -24; x itself is then not multiplied: -inf * 0 would be nan). The
    # rounding of u costs about |u| ulp where x < 0 (2e-14 at x = -10), as in any formula.
    if hasattr(xp, "errstate"):
        with xp.errstate(over="ignore"):
            s = 1.0 / (1.0 + xp.exp(-1.5957691216057308 * (x + 0.044715 * (x * x * x))))
    else:
        s = 1.0 / (1.0 + xp.exp(-1.5957691216057308 * (x + 0.044715 * (x * x * x))))
    return xp.where(s > 0, x, xp.zeros_like(x)) * s


def as_float(x: Array, xp: Any) -> Array:
    """An input as floats: integers and bools as float64, as a call binds them."""
    x = xp.asarray(x)
    return x if x.dtype.kind == "f" else xp.astype(x, xp.float64)


def step(x: Array, xp: Any) -> Array:
    return xp.where(x > 0, xp.ones_like(x), xp.zeros_like(x))


# --- choices: functions of several arguments ----------------------------------------
# Every argument arrives computed over the call's axes, so all have one shape and dtype.


@dataclass(frozen=True)
class Comparison:
    """A value comparison ``a > b`` as 1.0 where it holds and 0.0 elsewhere (in the
    arguments' dtype, so that it can be a factor): one definition for the six operators.
    Exported code writes it as a ``def`` (``source``), as it does a ``Native``."""

    operator: str  # one of > >= < <= == !=

    def __call__(self, a: Array, b: Array, xp: Any) -> Array:
        holds = _COMPARE[self.operator](a, b)
        return xp.where(holds, xp.ones_like(a), xp.zeros_like(a))

    def source(self, as_name: str) -> str:
        return (f"def {as_name}(a, b, xp):\n"
                f"    return xp.where(a {self.operator} b, xp.ones_like(a), xp.zeros_like(a))")


_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
            "==": operator.eq, "!=": operator.ne}


def where(cond: Array, a: Array, b: Array, xp: Any) -> Array:
    # ``cond`` is a comparison's 1/0. A select, never cond * a + (1 - cond) * b: an inf or
    # nan in the branch not taken does not reach the value.
    return xp.where(cond != 0, a, b)


def maximum(a: Array, b: Array, xp: Any) -> Array:
    return xp.maximum(a, b)  # nan where either is nan, on every library


def minimum(a: Array, b: Array, xp: Any) -> Array:
    return xp.minimum(a, b)


def clip(x: Array, lo: Array, hi: Array, xp: Any) -> Array:
    # as jnp.clip: the upper bound applied last, so where lo > hi the value is hi
    return xp.minimum(xp.maximum(x, lo), hi)


# --- functions of whole axes (docs/functions.md) ----------------------------------------------
# ``axes`` are the trailing axes of ``x`` the function runs along; matrix functions take
# the last two. The registry in ``reductions.py`` names one of these for each function.


def max_over(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.max(x, axis=axes)


def min_over(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.min(x, axis=axes)


def hardmax(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    # Compared with the largest of these very values, some position always attains it (the
    # weights sum to 1), whatever order the argument's terms were added in
    if any(x.shape[a] == 0 for a in axes):
        return xp.zeros_like(x)
    hit = xp.where(x == xp.max(x, axis=axes, keepdims=True), xp.ones_like(x), xp.zeros_like(x))
    return hit / xp.sum(hit, axis=axes, keepdims=True)


def hardmin(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    if any(x.shape[a] == 0 for a in axes):
        return xp.zeros_like(x)
    hit = xp.where(x == xp.min(x, axis=axes, keepdims=True), xp.ones_like(x), xp.zeros_like(x))
    return hit / xp.sum(hit, axis=axes, keepdims=True)


def logsumexp(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    # Shifted by the largest value, so that exp never overflows; a shift that is not finite
    # (every value -inf, or one +inf) is taken as 0 and the result is what log(sum(exp)) is.
    if any(x.shape[a] == 0 for a in axes):  # the log of an empty sum
        return xp.sum(x, axis=axes) - xp.inf
    m = xp.max(x, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    total = xp.sum(xp.exp(x - m), axis=axes, keepdims=True)
    return xp.squeeze(xp.log(total) + m, axis=axes)


def softmax(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    if any(x.shape[a] == 0 for a in axes):  # nothing to normalise
        return xp.exp(x)
    m = xp.max(x, axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    e = xp.exp(x - m)
    return e / xp.sum(e, axis=axes, keepdims=True)


def softmax_parts(x: Array, axes: tuple[int, ...], xp: Any) -> tuple[Array, Array]:
    """``softmax``'s exponentials (of ``x`` less its largest value along ``axes``, 0 where
    that is not finite) and their sums along ``axes``, before the division: what a fused
    pass divides (backend/fused.py, and exported code)."""
    if any(x.shape[a] == 0 for a in axes):
        e = xp.exp(x)
    else:
        m = xp.max(x, axis=axes, keepdims=True)
        e = xp.exp(x - xp.where(xp.isfinite(m), m, xp.zeros_like(m)))
    return e, xp.sum(e, axis=axes)


def mean_over(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.mean(x, axis=axes)


def masked(x: Array, keep: Array, fill: float, xp: Any) -> Array:
    """``x`` where ``keep`` holds, else ``fill`` (a masked entry of a reduction)."""
    return xp.where(keep, x, xp.asarray(fill, dtype=x.dtype))


def inv(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.linalg.inv(x)


def det(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.linalg.det(x)


def logdet(x: Array, axes: tuple[int, ...], xp: Any) -> Array:
    return xp.linalg.slogdet(x)[1]


def solve(a: Array, b: Array, xp: Any) -> Array:
    """``a⁻¹ b`` for matrices ``a`` (batch..., n, n) and ``b`` (batch..., n, rest...): the
    rest axes of ``b`` are the columns of one solve per matrix."""
    nb = len(a.shape) - 2
    shape = tuple(b.shape)
    count = 1  # the columns, counted (a -1 cannot be told from an empty batch)
    for n in shape[nb + 1:]:
        count *= int(n)
    columns = xp.reshape(b, shape[:nb + 1] + (count,))
    return xp.reshape(xp.linalg.solve(a, columns), shape)

"""Fused elementwise passes: a sum of elementwise work over one set of axes, run as one
loop compiled by numba (one pass over memory, no temporaries) instead of one NumPy pass
per operation (docs/performance.md, "Fused elementwise passes").

What is fused: sums, products and constant powers of terms whose operands are tensors
read as written, or values computed already (reductions, solves, shared operands, and
functions or powers over fewer axes), over the sum's axes or some of them (broadcast);
a softmax's division by its sums; and elementwise functions where numba's are as fast
as NumPy's (``functions``). A contraction, a delta, a tie or anything else leaves the sum
to the binder's own route. NumPy arrays of float32 or float64 only; every constant is a
scalar of the array's dtype, so float32 stays float32.

numba is an optional extra (``pip install tensorcalc[fast]``). Compiling one loop takes
about half a second, so a bound statement runs its first ``NUMPY_RUNS`` times by the
NumPy route and compiles then: a program called once never waits for numba, nor
imports it. Without numba, or for a sum this module does not take, the NumPy route runs.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..ops import kernels
from . import operands
from .binding import StatementBinder

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]

# Below this many elements NumPy's passes cost less than a compiled loop's call.
SMALLEST = 1 << 12
# Fewer operations than this gain nothing: NumPy makes one pass for one operation too.
FEWEST_OPERATIONS = 2
# More operations than this in one loop: not fused (one expression that long is slow to
# compile, and past a few thousand Python's compiler recurses past its limit).
MOST_OPERATIONS = 100
# The runs of a bound statement by the NumPy route before its loop is compiled.
NUMPY_RUNS = 2
# Integer exponents up to this size are multiplied out, as NumPy does for 2 and -1.
MULTIPLIED = 8

# The language's functions as numba computes them on one element (``{x}`` the argument,
# ``{one}`` the constant 1 in the array's dtype). numba calls the C library's
# transcendental functions, several times slower than NumPy's vectorised loops unless it
# has Intel's SVML (docs/performance.md), so these are fused only with SVML.
FUNCTIONS = {
    "exp": "np.exp({x})", "log": "np.log({x})", "sqrt": "np.sqrt({x})",
    "tanh": "np.tanh({x})", "sin": "np.sin({x})", "cos": "np.cos({x})",
    "tan": "np.tan({x})", "sinh": "np.sinh({x})", "cosh": "np.cosh({x})",
    "log1p": "np.log1p({x})", "expm1": "np.expm1({x})",
    "sigmoid": "{one} / ({one} + np.exp(-{x}))",
}
# Functions as fast compiled as NumPy's whatever the build: no transcendental work.
FAST_FUNCTIONS = {"abs": "abs({x})"}

_COMPILING = threading.Lock()  # one compilation at a time, each loop compiled once
_COMPILED: dict[str, Any] = {}


@cache
def available() -> bool:
    """Whether numba is installed (found, not imported: that waits for a compilation)."""
    return importlib.util.find_spec("numba") is not None


@cache
def svml_installed() -> bool:
    """Whether Intel's SVML, which numba then uses, is installed (as numba finds it: the
    ``icc_rt`` or ``intel-cmplr-lib-rt`` distribution), asked without importing numba."""
    for name in ("icc_rt", "intel-cmplr-lib-rt"):
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return True
    return False


def functions() -> dict[str, str]:
    """The function templates fused: the transcendental ones only where numba has SVML."""
    if available() and svml_installed():
        return {**FUNCTIONS, **FAST_FUNCTIONS}
    return dict(FAST_FUNCTIONS)


def compiled(source: str) -> Any:
    """The loop of ``source`` (a ``def fused``) compiled, once per process."""
    with _COMPILING:
        kernel = _COMPILED.get(source)
        if kernel is None:
            numba = importlib.import_module("numba")
            namespace: dict[str, Any] = {"np": np}
            exec(compile(source, "<tensorcalc fused loop>", "exec"), namespace)  # noqa: S102
            # numpy's error model: 1/0 is inf, as in NumPy, not ZeroDivisionError
            kernel = numba.njit(nogil=True, error_model="numpy")(namespace["fused"])
            _COMPILED[source] = kernel
        return kernel


@dataclass(frozen=True)
class SoftmaxPart:
    """``exp(x - max)`` (over the softmax's axes) or its sums (over its batch axes): the
    fused pass divides one by the other, as ``kernels.softmax`` does."""

    op: operands.ReduceOperand
    total: bool


def leaf_indices(leaf: operands.Operand | SoftmaxPart) -> tuple[str, ...]:
    if isinstance(leaf, SoftmaxPart):
        return leaf.op.batch if leaf.total else leaf.op.free
    return operands.operand_indices(leaf)


class Expression:
    """One loop body over ``order`` built from a sum plan: the value of one element as a
    Python expression, the temporaries it needs first, and the leaves (values computed
    before the loop) and constants it reads, each named once."""

    def __init__(self, order: tuple[str, ...], templates: dict[str, str],
                 scale: Callable[[operands.TermPlan], float]):
        self.order = order
        self.templates = templates
        self.scale = scale
        # what each name reads: an operand the binder computes, or a part of a softmax
        self.leaves: dict[operands.Operand | SoftmaxPart, str] = {}
        self.constants: dict[float, str] = {}
        self.temporaries: list[str] = []
        self.operations = 0

    def leaf(self, op: operands.Operand | SoftmaxPart) -> str | None:
        """A value computed before the loop, read at this element: its axes are laid out
        in ``order`` with length 1 on those it lacks (read at 0)."""
        indices = leaf_indices(op)
        if len(set(indices)) != len(indices) or not set(indices) <= set(self.order):
            return None
        if op not in self.leaves:
            self.leaves[op] = f"a{len(self.leaves)}"
        at = ", ".join(f"i{k}" if i in indices else "0" for k, i in enumerate(self.order))
        return f"{self.leaves[op]}[{at}]"

    def constant(self, value: float) -> str:
        if value not in self.constants:
            self.constants[value] = f"c{len(self.constants)}"
        return self.constants[value]

    def temporary(self, text: str) -> str:
        """``text`` computed once per element, for an expression that uses it again."""
        name = f"t{len(self.temporaries)}"
        self.temporaries.append(f"{name} = {text}")
        return name

    def sum(self, plan: operands.SumPlan) -> str | None:
        """The terms added, or subtracted where their coefficient is negative."""
        text = ""
        for term in plan.terms:
            signed = self.term(term)
            if signed is None:
                return None
            negative, product = signed
            if text:
                text += (" - " if negative else " + ") + product
                self.operations += 1
            else:
                text = "-" + product if negative else product
                self.operations += negative
        return "(" + text + ")"

    def term(self, plan: operands.TermPlan) -> tuple[bool, str] | None:
        """Whether the coefficient is negative, and the product times its magnitude."""
        if plan.ties or not set(plan.einsum_out) <= set(self.order):
            return None
        factors = []
        for op in plan.operands:
            if not set(operands.operand_indices(op)) <= set(plan.einsum_out):
                return None  # a contraction
            text = self.operand(op)
            if text is None:
                return None
            factors.append(text)
        coef = self.scale(plan)
        if abs(coef) != 1 or not factors:
            factors.append(self.constant(abs(coef)))
        self.operations += len(factors) - 1
        return coef < 0, "*".join(factors)

    def operand(self, op: operands.Operand) -> str | None:
        """Elementwise work over all of ``order`` fused; anything else a leaf."""
        whole = getattr(op, "shared", 0) is None \
            and set(operands.operand_indices(op)) == set(self.order)
        if whole and isinstance(op, operands.GroupOperand):
            return self.sum(op.body)
        if whole and isinstance(op, operands.CallOperand) and op.fn in self.templates:
            (arg,) = op.args
            inner = self.sum(arg)
            if inner is None:
                return None
            self.operations += 1
            return "(" + self.templates[op.fn].format(x=inner, one=self.constant(1.0)) + ")"
        if whole and isinstance(op, operands.PowerOperand):
            return self.power(op)
        if whole and isinstance(op, operands.ReduceOperand) and op.fn == "softmax" \
                and not op.mask and op.free == op.batch + op.indices:
            # its exponentials and their sums computed first, the division in the loop
            self.operations += 1
            return f"({self.leaf(SoftmaxPart(op, False))} / {self.leaf(SoftmaxPart(op, True))})"
        return self.leaf(op)

    def power(self, op: operands.PowerOperand) -> str | None:
        base = self.sum(op.base)
        if base is None:
            return None
        self.operations += 1
        if isinstance(op.exponent, operands.SumPlan):
            exponent = self.sum(op.exponent)
            return None if exponent is None else f"({base} ** {exponent})"
        n = op.exponent
        if n == 1:
            return base
        if n == 0.5:
            return f"np.sqrt({base})"
        if n != int(n) or abs(n) > MULTIPLIED:
            return f"({base} ** {self.constant(n)})"
        if n == 0:
            return self.constant(1.0)
        t = self.temporary(base)
        product = "*".join([t] * abs(int(n)))
        return f"({product})" if n > 0 else f"({self.constant(1.0)} / ({product}))"

    def source(self, text: str) -> str:
        """The loop: ``def fused(leaves..., constants..., out)``."""
        names = [*self.leaves.values(), *self.constants.values(), "out"]
        lines = [f"def fused({', '.join(names)}):"]
        for k in range(len(self.order)):
            lines.append("    " * (k + 1) + f"for i{k} in range(out.shape[{k}]):")
        inner = "    " * (len(self.order) + 1)
        at = ", ".join(f"i{k}" for k in range(len(self.order)))
        lines += [inner + line for line in self.temporaries]
        lines.append(f"{inner}out[{at}] = {text}")
        return "\n".join(lines) + "\n"


def fused_sum(ctx: StatementBinder, plan: operands.SumPlan, order: tuple[str, ...]) \
        -> Step | None:
    """The sum as one compiled loop (after its first ``NUMPY_RUNS`` runs), or None where
    the binder's own route should run it."""
    if not available() or ctx.xp is not np or not order \
            or np.dtype(ctx.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    if int(np.prod(ctx.shape(order))) < SMALLEST:
        return None
    expression = Expression(order, functions(), ctx.scale)
    text = expression.sum(plan)
    if text is None or not FEWEST_OPERATIONS <= expression.operations <= MOST_OPERATIONS:
        return None
    covered = {i for leaf in expression.leaves for i in leaf_indices(leaf)}
    if covered != set(order):
        return None  # the value would not have every axis
    ctx.fusing = False  # the NumPy route of the same sum, for the first runs
    try:
        numpy_route = ctx.sum(plan, order)
    finally:
        ctx.fusing = True
    parts: dict[operands.ReduceOperand, Step] = {}
    readers = [_laid_out(_leaf_step(ctx, leaf, parts), leaf_indices(leaf), order, ctx)
               for leaf in expression.leaves]
    dtype = np.dtype(ctx.dtype)
    return FusedLoop(expression.source(text), readers,
                     [dtype.type(value) for value in expression.constants],
                     ctx.shape(order), dtype, numpy_route)


class FusedLoop:
    """A bound statement's sum: by the NumPy route for its first ``NUMPY_RUNS`` runs, then
    as its compiled loop (safe from several threads: the loop holds no state)."""

    def __init__(self, source: str, readers: list[Step], constants: list[Any],
                 shape: tuple[int, ...], dtype: np.dtype[Any], numpy_route: Step):
        self.source = source
        self.readers = readers
        self.constants = constants
        self.shape = shape
        self.dtype = dtype
        self.numpy_route = numpy_route
        self.runs = 0
        self.kernel: Any = None

    def __call__(self, env: Env) -> Array:
        kernel = self.kernel
        if kernel is None:
            self.runs += 1  # two threads may both count one run: a run more or less
            if self.runs <= NUMPY_RUNS:
                return self.numpy_route(env)
            kernel = self.kernel = compiled(self.source)
        arrays = [read(env) for read in self.readers]
        out = np.empty(self.shape, dtype=self.dtype)
        kernel(*arrays, *self.constants, out)
        return out


def _leaf_step(ctx: StatementBinder, leaf: operands.Operand | SoftmaxPart,
               parts: dict[operands.ReduceOperand, Step]) -> Step:
    if not isinstance(leaf, SoftmaxPart):
        return ctx.operand(leaf)
    op = leaf.op
    if op not in parts:
        parts[op] = _softmax_parts(ctx, op)
    both, index = parts[op], int(leaf.total)
    return lambda env: both(env)[index]


def _softmax_parts(ctx: StatementBinder, op: operands.ReduceOperand) -> Step:
    """``kernels.softmax_parts`` of the softmax's argument, computed once per run for
    both parts."""
    layout = op.batch + op.indices
    arg = ctx.sum(op.arg, layout)
    axes = tuple(range(len(op.batch), len(layout)))
    token = object()  # where a run keeps them for the other part

    parts = kernels.softmax_parts

    def both(env: Env) -> tuple[Array, Array]:
        value = env.get(token)
        if value is None:
            value = env[token] = parts(arg(env), axes, np)
        return value

    return both


def _laid_out(step: Step, have: tuple[str, ...], order: tuple[str, ...],
              ctx: StatementBinder) -> Step:
    """``step``'s value with its axes in ``order``'s order and size 1 on those it lacks."""
    kept = [i for i in order if i in have]
    perm = tuple(have.index(i) for i in kept)
    shape = tuple(ctx.sizes[i] if i in have else 1 for i in order)
    if perm != tuple(range(len(perm))):
        if len(kept) == len(order):
            return lambda env: np.transpose(step(env), perm)
        return lambda env: np.reshape(np.transpose(step(env), perm), shape)
    if len(kept) == len(order):
        return step
    return lambda env: np.reshape(step(env), shape)

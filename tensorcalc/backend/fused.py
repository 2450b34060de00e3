"""Fused elementwise passes: a sum of elementwise work over one set of axes, run as one
numexpr call (one pass over memory, in blocks that stay in cache) instead of one NumPy
pass per operation (docs/performance.md, "Fused elementwise passes").

What is fused: sums, products and constant powers of terms whose operands are tensors
read as written, or values computed already (reductions, solves, shared operands, and
functions or powers over fewer axes), over the sum's axes or some of them (broadcast);
and elementwise functions of such sums where numexpr computes them as fast as NumPy
(``FAST_FUNCTIONS``). A contraction, a delta, a tie or anything else leaves the sum to
the binder's own route. NumPy arrays of float32 or float64 only; every constant is
passed as a scalar of the array's dtype, so float32 stays float32.

numexpr is an optional extra (``pip install tensorcalc[fast]``), imported when a plan is
first bound, never at ``import tensorcalc``; without it, or for a sum this module does not
take, the binder's NumPy route runs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from . import operands

if TYPE_CHECKING:
    from .binder import StatementBinder

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]

# numexpr's calls share state in C: two at once from two threads can corrupt memory
# (tests/backend/test_fused.py), so one runs at a time (each on numexpr's own threads).
_ONE_AT_A_TIME = threading.Lock()
# Below this many elements NumPy's passes cost less than numexpr's call.
SMALLEST = 1 << 12
# Fewer operations than this gain nothing: NumPy makes one pass for one operation too.
FEWEST_OPERATIONS = 2
# Integer exponents up to this size numexpr multiplies out, as NumPy does for 2 and -1.
MULTIPLIED = 8

# numexpr's spelling of the language's functions, as templates of their one argument
# (written once: numexpr does not merge a repeated sub-expression). Without Intel's VML
# numexpr's transcendental functions call the C library's, several times slower than
# NumPy's vectorised loops (docs/performance.md), so these are fused only with VML.
FUNCTIONS = {
    "exp": "exp({})", "log": "log({})", "sqrt": "sqrt({})", "tanh": "tanh({})",
    "sin": "sin({})", "cos": "cos({})", "tan": "tan({})", "sinh": "sinh({})",
    "cosh": "cosh({})", "log1p": "log1p({})", "expm1": "expm1({})",
    "sigmoid": "1 / (1 + exp(-{}))",
}
# Functions numexpr computes as fast as NumPy whatever its build: no transcendental work.
FAST_FUNCTIONS = {"abs": "abs({})"}


@cache
def _numexpr() -> Any:
    try:
        return importlib.import_module("numexpr")
    except ImportError:
        return None


def library() -> Any:
    """numexpr, or None where it is not installed (the NumPy route runs)."""
    return _numexpr()


def functions(numexpr: Any) -> dict[str, str]:
    """The function templates fused with this numexpr: the transcendental ones only where
    it computes them with VML."""
    if getattr(numexpr, "use_vml", False):
        return {**FUNCTIONS, **FAST_FUNCTIONS}
    return dict(FAST_FUNCTIONS)


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
    """One numexpr expression over ``order`` built from a sum plan: its text, and the
    operands and constants it reads, each named once."""

    def __init__(self, order: tuple[str, ...], templates: dict[str, str]):
        self.order = order
        self.templates = templates
        # what each name reads: an operand the binder computes, or a part of a softmax
        self.leaves: dict[operands.Operand | SoftmaxPart, str] = {}
        self.constants: dict[float, str] = {}
        self.operations = 0

    def leaf(self, op: operands.Operand | SoftmaxPart) -> str | None:
        """A value computed before the pass: its name, if its axes are some of ``order``."""
        indices = leaf_indices(op)
        if len(set(indices)) != len(indices) or not set(indices) <= set(self.order):
            return None
        if op not in self.leaves:
            self.leaves[op] = f"a{len(self.leaves)}"
        return self.leaves[op]

    def constant(self, value: float) -> str:
        if value not in self.constants:
            self.constants[value] = f"c{len(self.constants)}"
        return self.constants[value]

    def sum(self, plan: operands.SumPlan, scale: Callable[[operands.TermPlan], float]) \
            -> str | None:
        """The terms added, or subtracted where their coefficient is negative."""
        text = ""
        for term in plan.terms:
            signed = self.term(term, scale)
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

    def term(self, plan: operands.TermPlan, scale: Callable[[operands.TermPlan], float]) \
            -> tuple[bool, str] | None:
        """Whether the coefficient is negative, and the product times its magnitude."""
        if plan.ties or not set(plan.einsum_out) <= set(self.order):
            return None
        factors = []
        for op in plan.operands:
            if not set(operands.operand_indices(op)) <= set(plan.einsum_out):
                return None  # a contraction
            text = self.operand(op, scale)
            if text is None:
                return None
            factors.append(text)
        coef = scale(plan)
        if abs(coef) != 1 or not factors:
            factors.append(self.constant(abs(coef)))
        self.operations += len(factors) - 1
        return coef < 0, "*".join(factors)

    def operand(self, op: operands.Operand, scale: Callable[[operands.TermPlan], float]) \
            -> str | None:
        """Elementwise work over all of ``order`` fused; anything else a leaf."""
        whole = getattr(op, "shared", 0) is None \
            and set(operands.operand_indices(op)) == set(self.order)
        if whole and isinstance(op, operands.GroupOperand):
            return self.sum(op.body, scale)
        if whole and isinstance(op, operands.CallOperand) and op.fn in self.templates:
            (arg,) = op.args
            inner = self.sum(arg, scale)
            if inner is None:
                return None
            self.operations += 1
            return "(" + self.templates[op.fn].format(inner) + ")"
        if whole and isinstance(op, operands.PowerOperand):
            return self.power(op, scale)
        if whole and isinstance(op, operands.ReduceOperand) and op.fn == "softmax" \
                and not op.mask and op.free == op.batch + op.indices:
            # its exponentials and their sums computed first, the division in the pass
            self.operations += 1
            return f"({self.leaf(SoftmaxPart(op, False))}/{self.leaf(SoftmaxPart(op, True))})"
        return self.leaf(op)

    def power(self, op: operands.PowerOperand, scale: Callable[[operands.TermPlan], float]) \
            -> str | None:
        base = self.sum(op.base, scale)
        if base is None:
            return None
        self.operations += 1
        if isinstance(op.exponent, operands.SumPlan):
            exponent = self.sum(op.exponent, scale)
            return None if exponent is None else f"({base}**{exponent})"
        n = op.exponent
        if n == 1:
            return base
        if n == 0.5:
            return f"sqrt({base})"
        if n == int(n) and abs(n) <= MULTIPLIED:
            return f"({base}**{int(n)})"  # multiplied out by numexpr, the base computed once
        return f"({base}**{self.constant(n)})"


def fused_sum(ctx: StatementBinder, plan: operands.SumPlan, order: tuple[str, ...]) \
        -> Step | None:
    """The sum as one numexpr call, or None where the binder's own route should run it."""
    numexpr = library()
    if numexpr is None or ctx.xp is not np or not order \
            or np.dtype(ctx.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    shape = ctx.shape(order)
    if int(np.prod(shape)) < SMALLEST:
        return None
    expression = Expression(order, functions(numexpr))
    text = expression.sum(plan, ctx.scale)
    if text is None or expression.operations < FEWEST_OPERATIONS:
        return None
    covered = {i for leaf in expression.leaves for i in leaf_indices(leaf)}
    if covered != set(order):
        return None  # the value would not have every axis
    return _bound(ctx, numexpr, expression, text)


def _bound(ctx: StatementBinder, numexpr: Any, expression: Expression, text: str) -> Step:
    """The compiled expression and the steps that compute its leaves, laid out over the
    expression's axes (size 1 where a leaf lacks one: numexpr broadcasts)."""
    dtype = np.dtype(ctx.dtype)
    kind = float if dtype == np.float32 else np.float64  # numexpr's names of the types
    names = list(expression.leaves.values()) + list(expression.constants.values())
    compiled = numexpr.NumExpr(text, signature=[(name, kind) for name in names])
    order = expression.order
    parts: dict[operands.ReduceOperand, Step] = {}
    readers = [_laid_out(_leaf_step(ctx, leaf, parts), leaf_indices(leaf), order, ctx)
               for leaf in expression.leaves]
    constants = [dtype.type(value) for value in expression.constants]

    def run(env: Env) -> Array:
        arrays = [read(env) for read in readers]
        with _ONE_AT_A_TIME:
            return compiled(*arrays, *constants)

    return run


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
    """``kernels.softmax``'s arithmetic before its division: the exponentials of the
    argument less its largest value along the axes (0 where that is not finite), and
    their sums; computed once per run."""
    layout = op.batch + op.indices
    arg = ctx.sum(op.arg, layout)
    axes = tuple(range(len(op.batch), len(layout)))
    token = object()  # where a run keeps them for the other part

    def both(env: Env) -> tuple[Array, Array]:
        value = env.get(token)
        if value is None:
            x = arg(env)
            m = np.max(x, axis=axes, keepdims=True)
            m = np.where(np.isfinite(m), m, np.zeros_like(m))
            e = np.subtract(x, m)
            np.exp(e, out=e)
            value = env[token] = (e, np.sum(e, axis=axes))
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

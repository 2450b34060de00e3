"""Fused elementwise passes in exported code (``Program.to_python()``): a sum that
``fused.Expression`` takes is written as one call of a helper that runs it as numba's
compiled loop where numba is installed, and as the same expression on whole NumPy arrays
(broadcast) where it is not, so the exported function needs only NumPy and opt_einsum
and is as fast as the runner with the ``fast`` extra.

The helper compiles its loop at its first call (about half a second), not when the
module is imported. Transcendental functions are left out of the loop, as the runner
leaves them out without Intel's SVML (docs/performance.md), so the code written does not
depend on the machine it was written on. A term that multiplies by the size of an index
no operand carries (``missing_summed``) is not fused: its size is known only at run time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from ..ops import kernels
from . import operands
from .fused import (
    FAST_FUNCTIONS,
    FEWEST_OPERATIONS,
    MOST_OPERATIONS,
    Expression,
    SoftmaxPart,
    leaf_indices,
)

# Where numba is missing the loop runs as NumPy expressions over whole arrays: a leaf
# read at one element, ``a0[i0, 0]``, is the whole (broadcast) leaf ``a0``.
_ELEMENT = re.compile(r"\b(a\d+)\[[^\]]*\]")

#: The helper every exported fused sum runs through (written once per exported module).
NUMBA_OR_NUMPY = '''def _numba_or_numpy(loop, whole):
    """``loop`` compiled by numba at its first call where numba is installed; else
    ``whole``, the same arithmetic on whole NumPy arrays."""
    try:
        import numba
    except ImportError:
        return whole
    compiled = []

    def run(*args):
        if not compiled:
            compiled.append(numba.njit(nogil=True, error_model="numpy")(loop))
        return compiled[0](*args)

    return run'''


class Writer(Protocol):
    """What this module uses of ``export._Writer``."""

    lines: list[str]
    fused: list[str]

    def temp(self, expr: str) -> str: ...

    def kernel(self, name: str, fn: Callable[..., Any]) -> str: ...

    def operand(self, op: operands.Operand) -> str: ...

    def sum(self, plan: operands.SumPlan, order: tuple[str, ...]) -> str: ...


def fused_sum(writer: Writer, plan: operands.SumPlan, order: tuple[str, ...],
              shape: Callable[[tuple[str, ...]], str]) -> str | None:
    """The sum written as one fused helper's call (its value's name), or None where the
    plain route should write it. ``shape(indices)`` writes a shape from ``n``."""
    if not order or _sized_at_run_time(plan):
        return None
    expression = Expression(order, dict(FAST_FUNCTIONS), lambda t: t.coef)
    text = expression.sum(plan)
    if text is None or not FEWEST_OPERATIONS <= expression.operations <= MOST_OPERATIONS:
        return None
    if {i for leaf in expression.leaves for i in leaf_indices(leaf)} != set(order):
        return None
    parts: dict[operands.ReduceOperand, tuple[str, str]] = {}
    leaves = [_laid_out(_leaf(writer, leaf, parts), leaf_indices(leaf), order)
              for leaf in expression.leaves]
    constants = [f"dtype.type({value!r})" for value in expression.constants]
    name = f"_fused{len(writer.fused) + 1}"
    writer.fused.append(_helper(name, expression, text))
    out = writer.temp(f"np.empty({shape(order)}, dtype=dtype)")
    writer.lines.append(f"    {name}({', '.join(leaves + constants + [out])})")
    return out


def _helper(name: str, expression: Expression, text: str) -> str:
    """The loop, its whole-array twin, and the helper that picks one."""
    loop = expression.source(text).replace("def fused(", f"def {name}_loop(", 1)
    head = loop.splitlines()[0].replace(f"{name}_loop(", f"{name}_whole(", 1)
    body = ["    " + _ELEMENT.sub(r"\1", t) for t in expression.temporaries]
    body.append("    out[...] = " + _ELEMENT.sub(r"\1", text))
    whole = "\n".join([head, *body])
    return f"{loop}\n\n{whole}\n\n\n{name} = _numba_or_numpy({name}_loop, {name}_whole)"


def _leaf(writer: Writer, leaf: operands.Operand | SoftmaxPart,
          parts: dict[operands.ReduceOperand, tuple[str, str]]) -> str:
    """A value the loop reads, computed before it: an operand, or a part of a softmax
    (``kernels.softmax_parts``, copied into the code as every kernel is)."""
    if not isinstance(leaf, SoftmaxPart):
        return writer.operand(leaf)
    op = leaf.op
    if op not in parts:
        layout = op.batch + op.indices
        arg = writer.sum(op.arg, layout)
        axes = tuple(range(len(op.batch), len(layout)))
        both = writer.temp(f"{writer.kernel('softmax_parts', kernels.softmax_parts)}"
                           f"({arg}, {axes!r}, np)")
        parts[op] = (f"{both}[0]", f"{both}[1]")
    return parts[op][int(leaf.total)]


def _laid_out(value: str, have: tuple[str, ...], order: tuple[str, ...]) -> str:
    """``value`` with its axes in ``order``'s order and length 1 on those it lacks."""
    kept = [i for i in order if i in have]
    perm = tuple(have.index(i) for i in kept)
    if perm != tuple(range(len(perm))):
        value = f"np.transpose({value}, {perm!r})"
    if len(kept) == len(order):
        return value
    shape = "".join(f"n[{i!r}], " if i in have else "1, " for i in order)
    return f"np.reshape({value}, ({shape}))"


def _sized_at_run_time(plan: operands.SumPlan) -> bool:
    """Does a term inside multiply by the size of an index no operand carries?"""
    for t in plan.terms:
        if t.missing_summed:
            return True
        for op in t.operands:
            if any(_sized_at_run_time(s) for s in operands.nested_sums(op)):
                return True
    return False


def helpers(fused: list[str]) -> list[str]:
    """The module-level source the fused sums of an export need, in order."""
    return [NUMBA_OR_NUMPY, *fused] if fused else []


"""Walks of the surface syntax tree (``surface.py``), iterative: the text may nest
thousands deep. Every walk asks ``operands`` for a node's children, so a node kind it
does not know stops the walk."""

from __future__ import annotations

from collections.abc import Callable

from ..ir import unknown_kind
from .surface import (
    SBinary,
    SCall,
    SCompare,
    SCond,
    SDelta,
    SExpr,
    SNeg,
    SNumber,
    SPow,
    SReduce,
    SSumOver,
    STensor,
)


def flatten_sum(node: SExpr, sign: float = 1.0) -> list[tuple[float, SExpr]]:
    """The signed top-level operands of ``+`` and ``-`` (iterative: no deep recursion)."""
    out: list[tuple[float, SExpr]] = []
    stack: list[tuple[float, SExpr]] = [(sign, node)]
    while stack:
        s, n = stack.pop()
        if isinstance(n, SBinary) and n.op in "+-":
            stack.append((s if n.op == "+" else -s, n.right))
            stack.append((s, n.left))
        elif isinstance(n, SNeg):
            stack.append((-s, n.operand))
        else:
            out.append((s, n))
    return out


def flatten_product(node: SExpr) -> tuple[float, list[tuple[SExpr, bool]]]:
    """Coefficient sign and the factors of a product; ``True`` marks a divisor.

    A divisor is one factor however it is built: ``a / (b c)`` is ``a (b c)^-1``.
    """
    sign = 1.0
    factors: list[tuple[SExpr, bool]] = []
    stack: list[tuple[SExpr, bool]] = [(node, False)]
    while stack:
        n, inverse = stack.pop()
        if isinstance(n, SBinary) and n.op == "*" and not inverse:
            stack += [(n.right, False), (n.left, False)]
        elif isinstance(n, SBinary) and n.op == "/" and not inverse:
            stack += [(n.right, True), (n.left, False)]
        elif isinstance(n, SNeg):
            sign = -sign
            stack.append((n.operand, inverse))
        else:
            factors.append((n, inverse))
    return sign, factors


def first(node: SExpr, test: Callable[[SExpr], bool]) -> SExpr | None:
    """The first node of ``node``'s tree, in reading order, that passes ``test``."""
    stack = [node]
    while stack:  # iterative: the text may nest deeply
        n = stack.pop()
        if test(n):
            return n
        stack += reversed(operands(n))
    return None


def operands(node: SExpr) -> tuple[SExpr, ...]:
    """The operands of a surface node, in reading order; every walk of the surface tree
    asks this, so a node kind it does not know stops the walk."""
    if isinstance(node, SBinary):
        return (node.left, node.right)
    if isinstance(node, SNeg):
        return (node.operand,)
    if isinstance(node, SPow):
        return (node.base, node.exponent)
    if isinstance(node, SCall):
        return node.args
    if isinstance(node, SCompare):
        return (node.left, node.right)
    if isinstance(node, (SSumOver, SReduce)):
        return (node.body,)
    if isinstance(node, (SNumber, STensor, SDelta, SCond)):
        return ()
    unknown_kind(node)

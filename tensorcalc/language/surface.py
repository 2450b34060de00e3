"""The surface syntax tree: the shape of the text, with the line and column of every node.

``parse`` (``syntax.py``) builds it; ``lower.py`` turns it into the checked IR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from ..errors import ProgramError
from ..ir import Subscript, subscript_text, unknown_kind


@dataclass(frozen=True)
class Pos:
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class SNumber:
    value: float
    pos: Pos


@dataclass(frozen=True)
class STensor:
    name: str
    indices: tuple[Subscript, ...] | None  # None: a bare name (a scalar)
    pos: Pos

    @property
    def names(self) -> tuple[str, ...]:
        """The index names its subscripts use (those of an index tensor too)."""
        return tuple(n for s in self.indices or () for n in
                     ((s,) if isinstance(s, str) else s.names))


def plain_indices(indices: tuple[Subscript, ...] | None, where: str, pos: Pos) -> tuple[str, ...]:
    """The index names of a bracket that takes names only (a left-hand side, ``delta``,
    ``sum[]``, an input declaration, an index tensor's own subscripts)."""
    for s in indices or ():
        if not isinstance(s, str):
            raise ProgramError(f"{where} at {pos} takes index names only; index arithmetic "
                               f"({subscript_text(s)}) is for a tensor's subscripts (SPEC §8)")
    return tuple(indices or ())  # type: ignore[arg-type]


@dataclass(frozen=True)
class SDelta:
    indices: tuple[Subscript, ...]  # delta[p, i+k]: a shifted delta (SPEC §8)
    pos: Pos


@dataclass(frozen=True)
class SCall:
    fn: str
    arg: SExpr
    pos: Pos


@dataclass(frozen=True)
class SSumOver:
    indices: tuple[str, ...]
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SReduce:
    """``fn[indices](body)``: a function of whole axes (SPEC §7)."""

    fn: str
    indices: tuple[str, ...]
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SPow:
    base: SExpr
    exponent: SExpr
    pos: Pos


@dataclass(frozen=True)
class SNeg:
    operand: SExpr
    pos: Pos


@dataclass(frozen=True)
class SBinary:
    op: str  # one of + - * /
    left: SExpr
    right: SExpr
    pos: Pos


SExpr = Union[SNumber, STensor, SDelta, SCall, SSumOver, SReduce, SPow, SNeg, SBinary]  # noqa: UP007


@dataclass(frozen=True)
class SDeclaration:
    """``input X[p,q], c``: inputs named in order, with index names for their axes."""

    inputs: tuple[tuple[str, tuple[str, ...] | None], ...]
    pos: Pos


@dataclass(frozen=True)
class SStatement:
    name: str
    indices: tuple[str, ...]
    rhs: SExpr
    pos: Pos


# --- walks of the tree (iterative: the text may nest thousands deep) -----------------


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
        return (node.arg,)
    if isinstance(node, (SSumOver, SReduce)):
        return (node.body,)
    if isinstance(node, (SNumber, STensor, SDelta)):
        return ()
    unknown_kind(node)

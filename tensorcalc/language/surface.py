"""The surface syntax tree: the shape of the text, with the line and column of every node.

``parse`` (``syntax.py``) builds it; ``lower.py`` turns it into the checked IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..errors import ProgramError
from ..ir import Subscript, subscript_text


@dataclass(frozen=True)
class Pos:
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class SNumber:
    """A number as written."""

    value: float
    pos: Pos


@dataclass(frozen=True)
class STensor:
    """``X[i,j]``, ``x[i+1]``, ``E[t[n],j]`` or a bare name."""

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
                               f"({subscript_text(s)}) is for a tensor's subscripts")
    return tuple(indices or ())  # type: ignore[arg-type]


@dataclass(frozen=True)
class SDelta:
    """``delta[i,j]``, or ``delta[p, i+k]``: a shifted delta (docs/index-arithmetic.md)."""

    indices: tuple[Subscript, ...]
    pos: Pos


@dataclass(frozen=True)
class SCond:
    """``[a op b]``: an index condition (an Iverson bracket), or a condition of a bracket
    (``softmax[j | j <= i]``)."""

    op: str
    a: Subscript
    b: Subscript
    pos: Pos

    @property
    def text(self) -> str:
        return f"[{subscript_text(self.a)} {self.op} {subscript_text(self.b)}]"


@dataclass(frozen=True)
class SCall:
    """``fn(arg, ...)``: an elementwise function of one or more arguments."""

    fn: str
    args: tuple[SExpr, ...]
    pos: Pos


@dataclass(frozen=True)
class SCompare:
    """``left op right``, a value comparison (``x[i] > 0``): a whole argument of a call.
    ``pos`` is the operator's."""

    op: str  # one of < <= > >= == !=
    left: SExpr
    right: SExpr
    pos: Pos


@dataclass(frozen=True)
class SSumOver:
    """``sum[indices](body)``: an explicit sum. ``sum[j | c](e)`` is ``sum[j](c e)``: the
    transformer writes it so, with no mask here."""

    indices: tuple[str, ...]
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SReduce:
    """``fn[indices](body)``: a function of whole axes (docs/functions.md); ``mask`` holds the
    conditions after ``|`` (``softmax[j | j <= i](e)``)."""

    fn: str
    indices: tuple[str, ...]
    body: SExpr
    pos: Pos
    mask: tuple[SCond, ...] = ()


@dataclass(frozen=True)
class SPow:
    """``base^exponent``."""

    base: SExpr
    exponent: SExpr
    pos: Pos


@dataclass(frozen=True)
class SNeg:
    """``-operand``."""

    operand: SExpr
    pos: Pos


@dataclass(frozen=True)
class SBinary:
    """``left op right`` for ``+ - * /`` (juxtaposition is ``*``)."""

    op: str  # one of + - * /
    left: SExpr
    right: SExpr
    pos: Pos


SExpr = Union[SNumber, STensor, SDelta, SCond, SCall, SCompare, SSumOver, SReduce, SPow,  # noqa: UP007
              SNeg, SBinary]


@dataclass(frozen=True)
class SDeclaration:
    """``input X[p,q], c``: inputs named in order, with index names for their axes."""

    inputs: tuple[tuple[str, tuple[str, ...] | None], ...]
    pos: Pos


@dataclass(frozen=True)
class SStatement:
    """``name[indices] = rhs``; with ``start``, the start line of a recurrence,
    ``name[-1, indices] = rhs``: its value before the first step (docs/recurrences.md)."""

    name: str
    indices: tuple[str, ...]
    rhs: SExpr
    pos: Pos
    start: bool = False

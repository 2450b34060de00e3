"""The Lark transformer: parse-tree nodes to the surface tree (``surface.py``), run inside
the LALR parser, so deep nesting costs no Python recursion. Subscripts are checked here:
whole numbers, affine in indices, an index tensor taking no arithmetic.
"""

from __future__ import annotations

import math
import re

from lark import Token, Transformer, v_args

from ..errors import ProgramError
from ..ir import Affine, Gather, Subscript, affine
from .surface import (
    Pos,
    SBinary,
    SCall,
    SCompare,
    SCond,
    SDeclaration,
    SDelta,
    SExpr,
    SNeg,
    SNumber,
    SPow,
    SReduce,
    SStatement,
    SSumOver,
    STensor,
    plain_indices,
)


class _Linear:
    """An affine subscript while it is parsed: coefficients and an offset."""

    def __init__(self, parts: dict[str, int], offset: int):
        self.parts, self.offset = parts, offset

    def scaled(self, by: int) -> _Linear:
        return _Linear({n: by * c for n, c in self.parts.items()}, by * self.offset)

    def plus(self, other: _Linear) -> _Linear:
        parts = dict(self.parts)
        for n, c in other.parts.items():
            parts[n] = parts.get(n, 0) + c
        return _Linear(parts, self.offset + other.offset)


WELL_FORMED_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class MalformedNumber(Exception):
    """Raised inside the parser at a number token the grammar took whole but that is not a
    number (``1.2.3``, ``1e``); ``parse`` turns it into a ``ParseError`` at the token."""

    def __init__(self, token: Token):
        super().__init__(str(token))
        self.token = token


def checked_number(token: Token) -> Token:
    if not WELL_FORMED_NUMBER.fullmatch(str(token)):
        raise MalformedNumber(token)
    return token


#: The largest number a subscript may hold: positions past it are past any array's end (an
#: array of 2**40 float64 values takes 8 TiB), and products of it stay inside int64.
MAX_SUBSCRIPT_NUMBER = 2**40


def _integer(token: Token) -> int:
    value = float(token)
    if not value.is_integer() or not re.fullmatch(r"[0-9]+", str(token)):
        lead = re.match(r"[0-9.]*", str(token)).group()  # type: ignore[union-attr]
        hint = f" (for {lead} times an index e, write {lead}*e)" \
            if "e" in str(token).lower() else ""
        raise ProgramError(f"a subscript takes whole numbers: {token} at {_pos(token)} is not "
                           f"one{hint}")
    if int(token) > MAX_SUBSCRIPT_NUMBER:
        raise ProgramError(f"the subscript number {token} at {_pos(token)} is larger than "
                           f"2**40, past the end of any array")
    return int(token)


def _linear(s: str | _Linear | Gather) -> _Linear:
    if isinstance(s, str):
        return _Linear({s: 1}, 0)
    if isinstance(s, Gather):
        raise ProgramError(f"the index tensor {s.name}[{','.join(s.indices)}] is a subscript of "
                           "its own: it takes no arithmetic (write E[t[n], j], not E[t[n]+1, j])")
    return s


def _pos(token: Token) -> Pos:
    return Pos(token.line or 0, token.column or 0)


def _pos_of(node: SExpr) -> Pos:
    return node.pos


@v_args(inline=True)
class ToSurface(Transformer[Token, list["SStatement | SDeclaration"]]):
    """Run inside the LALR parser, so deep nesting costs no Python recursion."""

    def start(self, *lines: object) -> list[SStatement | SDeclaration]:
        return [s for s in lines if isinstance(s, (SStatement, SDeclaration))]

    def declaration(self, keyword: Token, *declared: tuple[str, tuple[str, ...] | None]
                    ) -> SDeclaration:
        return SDeclaration(tuple(declared), _pos(keyword))

    def declared(self, name: Token, indices: tuple[Subscript, ...] | None = None
                 ) -> tuple[str, tuple[str, ...] | None]:
        if indices is None:
            return str(name), None
        return str(name), plain_indices(indices, f"the declaration of {name}", _pos(name))

    def statement(self, name: Token, *rest: object) -> SStatement:
        indices: tuple[str, ...] = ()
        start = False
        if len(rest) == 2:
            subs: tuple[Subscript, ...] = rest[0]  # type: ignore[assignment]
            # h[-1,j] = h0[j]: a recurrence's start line (docs/recurrences.md)
            start = bool(subs) and subs[0] == Affine((), -1)
            indices = plain_indices(subs[1:] if start else subs,
                                    f"the left-hand side of {name}", _pos(name))
        rhs = rest[-1]
        return SStatement(str(name), indices, rhs, _pos(name), start)  # type: ignore[arg-type]

    def indices(self, *subs: str | _Linear | Gather | None) -> tuple[Subscript, ...]:
        out: list[Subscript] = []
        for s in subs:
            if isinstance(s, _Linear):
                out.append(affine(s.parts.items(), s.offset))
            elif s is not None:
                out.append(s)
        return tuple(out)

    # Subscripts (docs/index-arithmetic.md): affine in indices with integer coefficients, or an
    # index tensor.
    def index_name(self, name: Token) -> str:
        return str(name)  # a plain index, the common case: no arithmetic object

    def index_number(self, number: Token) -> _Linear:
        return _Linear({}, _integer(number))

    def index_scaled(self, number: Token, name: Token) -> _Linear:
        return _Linear({str(name): _integer(number)}, 0)

    def index_scaled_right(self, name: Token, number: Token) -> _Linear:
        return _Linear({str(name): _integer(number)}, 0)

    def index_neg(self, operand: str | _Linear | Gather) -> _Linear:
        return _linear(operand).scaled(-1)

    def index_add(self, left: str | _Linear | Gather, right: str | _Linear | Gather) -> _Linear:
        return _linear(left).plus(_linear(right))

    def index_sub(self, left: str | _Linear | Gather, right: str | _Linear | Gather) -> _Linear:
        return _linear(left).plus(_linear(right).scaled(-1))

    def index_gather(self, name: Token, indices: tuple[Subscript, ...]) -> Gather:
        plain = plain_indices(indices, f"the index tensor {name}", _pos(name))
        if not plain:
            raise ProgramError(f"the index tensor {name} at {_pos(name)} needs indices: "
                               f"{name}[n]")
        return Gather(str(name), plain)

    def number(self, token: Token) -> SNumber:
        value = float(token)  # well formed: checked as it was lexed
        if not math.isfinite(value):
            raise ProgramError(f"number {token} at {_pos(token)} is too large for a float")
        return SNumber(value, _pos(token))

    def tensor(self, name: Token, indices: tuple[Subscript, ...]) -> STensor:
        return STensor(str(name), indices, _pos(name))

    def scalar(self, name: Token) -> STensor:
        return STensor(str(name), None, _pos(name))

    def delta(self, keyword: Token, indices: tuple[Subscript, ...]) -> SDelta:
        return SDelta(indices, _pos(keyword))

    def bracket(self, *items: str | _Linear | Gather | SCond | None
                ) -> tuple[tuple[Subscript, ...], tuple[SCond, ...]]:
        subs = self.indices(*(s for s in items if not isinstance(s, SCond)))
        return subs, tuple(c for c in items if isinstance(c, SCond))

    def condition(self, a: str | _Linear | Gather, op: Token, b: str | _Linear | Gather
                  ) -> SCond:
        left, right = self.indices(a, b)
        return SCond(str(op), left, right, _pos(op))

    def iverson(self, condition: SCond) -> SCond:
        return condition

    def sum_over(self, keyword: Token, bracket: tuple[tuple[Subscript, ...], tuple[SCond, ...]],
                 body: SExpr) -> SSumOver:
        indices, mask = bracket
        for c in reversed(mask):  # sum[j | c](e) is sum[j](c e)
            body = SBinary("*", c, body, c.pos)
        return SSumOver(plain_indices(indices, "sum[]", _pos(keyword)), body, _pos(keyword))

    def reduce_over(self, keyword: Token,
                    bracket: tuple[tuple[Subscript, ...], tuple[SCond, ...]], body: SExpr
                    ) -> SReduce:
        indices, mask = bracket
        return SReduce(str(keyword), plain_indices(indices, f"{keyword}[]", _pos(keyword)), body,
                       _pos(keyword), mask)

    def call(self, fn: Token, *args: SExpr) -> SCall:
        return SCall(str(fn), args, _pos(fn))

    def compare(self, left: SExpr, op: Token, right: SExpr) -> SCompare:
        return SCompare(str(op), left, right, _pos(op))

    def pow(self, base: SExpr, _op: Token, exponent: SExpr) -> SPow:
        return SPow(base, exponent, _pos_of(base))

    def neg(self, operand: SExpr) -> SNeg:
        return SNeg(operand, _pos_of(operand))

    def add(self, left: SExpr, right: SExpr) -> SBinary:
        return SBinary("+", left, right, _pos_of(left))

    def sub(self, left: SExpr, right: SExpr) -> SBinary:
        return SBinary("-", left, right, _pos_of(left))

    def mul(self, left: SExpr, right: SExpr) -> SBinary:
        return SBinary("*", left, right, _pos_of(left))

    def div(self, left: SExpr, right: SExpr) -> SBinary:
        return SBinary("/", left, right, _pos_of(left))

"""Source text to a surface syntax tree, with syntax errors a user can act on.

The grammar is ``grammar/tensorcalc.lark``, shipped in the package as
``tensorcalc.grammar``. The surface tree keeps the shape of the text (and the
line and column of every node); ``lower.py`` turns it into the checked IR.

>>> parse("y[i] = W[i,j] x[j]")[0].name
'y'
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Union

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from ..errors import ParseError, ProgramError
from ..ir import Gather, Subscript, affine, subscript_text
from ..limits import MAX_PROGRAM_CHARS, size_error


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


_WELL_FORMED_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class _MalformedNumber(Exception):
    """Raised inside the parser at a number token the grammar took whole but that is not a
    number (``1.2.3``, ``1e``); ``parse`` turns it into a ``ParseError`` at the token."""

    def __init__(self, token: Token):
        super().__init__(str(token))
        self.token = token


def _checked(token: Token) -> Token:
    if not _WELL_FORMED_NUMBER.fullmatch(str(token)):
        raise _MalformedNumber(token)
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
class _ToSurface(Transformer[Token, list["SStatement | SDeclaration"]]):
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
        if len(rest) == 2:
            indices = plain_indices(rest[0], f"the left-hand side of {name}",  # type: ignore[arg-type]
                                    _pos(name))
        rhs = rest[-1]
        return SStatement(str(name), indices, rhs, _pos(name))  # type: ignore[arg-type]

    def indices(self, *subs: str | _Linear | Gather | None) -> tuple[Subscript, ...]:
        out: list[Subscript] = []
        for s in subs:
            if isinstance(s, _Linear):
                out.append(affine(s.parts.items(), s.offset))
            elif s is not None:
                out.append(s)
        return tuple(out)

    # Subscripts (SPEC §8): affine in indices with integer coefficients, or an index tensor.
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

    def sum_over(self, keyword: Token, indices: tuple[Subscript, ...], body: SExpr) -> SSumOver:
        return SSumOver(plain_indices(indices, "sum[]", _pos(keyword)), body, _pos(keyword))

    def reduce_over(self, keyword: Token, indices: tuple[Subscript, ...], body: SExpr
                    ) -> SReduce:
        return SReduce(str(keyword), plain_indices(indices, f"{keyword}[]", _pos(keyword)), body,
                       _pos(keyword))

    def call(self, fn: Token, arg: SExpr) -> SCall:
        return SCall(str(fn), arg, _pos(fn))

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


def _grammar_text() -> str:
    try:
        return resources.files("tensorcalc.grammar").joinpath("tensorcalc.lark").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        # Running from a source checkout that was never installed.
        path = Path(__file__).resolve().parent.parent / "grammar" / "tensorcalc.lark"
        return path.read_text("utf-8")


# The basic lexer (each terminal by its priority, whatever the parser expects there) lexes
# twice as fast as the contextual one, and no terminal of the grammar needs the context:
# reserved words are reserved everywhere, indices included.
_LEXER = "basic"


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # Building the LALR tables takes about 150 ms; Lark can keep them in a cache file, which
    # it loads with pickle. A pickle runs code when loaded, so the cache lives only where no
    # one else can write: a private per-user directory, checked before every use.
    text = _grammar_text()
    cache = private_cache_file(text)
    # A malformed number is refused as it is lexed, whatever token follows it (1.5.x[i])
    return Lark(text, parser="lalr", lexer=_LEXER, transformer=_ToSurface(),
                maybe_placeholders=True, cache=cache if cache is not None else False,
                lexer_callbacks={"NUMBER": _checked})


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tensorcalc"


def _private(st: os.stat_result, kind: int) -> bool:
    """Owned by this user, of the expected kind (not a link), writable by no one else."""
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid() \
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def private_cache_file(grammar: str) -> str | None:
    """The parser cache's path in a private per-user directory, or None: no cache.

    The directory is made with mode 0700; it, and the file if it exists, must belong to
    this user and be writable by no one else, or nothing is cached or loaded.
    """
    if not hasattr(os, "getuid"):  # no ownership to check (Windows): build the tables
        return None
    folder = _cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.lstat(folder), stat.S_IFDIR) or os.lstat(folder).st_mode & 0o077:
            return None
        key = hashlib.sha256(f"{grammar}{_LEXER}{lark.__version__}{sys.version_info[:2]}".encode())
        path = folder / f"parser-{key.hexdigest()[:16]}.lark"
        try:
            if not _private(os.lstat(path), stat.S_IFREG):
                return None
        except FileNotFoundError:
            pass
        return str(path)
    except OSError:
        return None


_TOKEN_WORDS = {
    "LPAR": '"("', "RPAR": '")"', "LSQB": '"["', "RSQB": '"]"', "COMMA": '","',
    "EQUAL": '"="', "PLUS": '"+"', "MINUS": '"-"', "STAR": '"*"', "SLASH": '"/"',
    "POW": '"^"', "NAME": "a name", "FUNC": "a function", "NUMBER": "a number",
    "DELTA": "delta", "SUM": "sum", "REDUCE": "max, min, ...", "INPUT": "input",
    "_NEWLINE": "end of line", "SEMICOLON": '";"',
    "$END": "end of input",
}


_MEANINGS = {
    "sum": "sum[j](e) sums e over j", "delta": "delta[i,j] is the Kronecker delta",
    "max": "max[j](e) is the largest e over j", "min": "min[j](e) is the smallest e over j",
    "hardmax": "hardmax[j](e) is 1/count where e is largest over j, 0 elsewhere",
    "hardmin": "hardmin[j](e) is 1/count where e is smallest over j, 0 elsewhere",
    "logsumexp": "logsumexp[j](e) is log sum_j exp(e)",
    "softmax": "softmax[j](e) is exp(e_j) / sum_k exp(e_k)",
    "inv": "inv[i,j](e) is the inverse of the matrix e", "det": "det[i,j](e) is its determinant",
    "logdet": "logdet[i,j](e) is log |det|",
    "input": "input x[i], W[i,j] declares inputs",
}
_RESERVED_USE = re.compile(r"\b(" + "|".join(_MEANINGS) + r")\b(\s*\[[^\]]*\])?\s*$")


def _reserved_hint(source_line: str, column: int) -> str:
    """Where the error comes right after a reserved word (``y = max * 2``), or at one
    (``max = x[i]``), say what the word means: the user most likely meant it as a tensor's
    name."""
    m = _RESERVED_USE.search(source_line[: max(column - 1, 0)])
    at = re.match(r"(" + "|".join(_MEANINGS) + r")\b", source_line[max(column - 1, 0):])
    if m is None and at is None:
        return ""
    word = m.group(1) if m is not None else at.group(1)  # type: ignore[union-attr]
    return f"; {word} is a reserved word and cannot name a tensor or an index ({_MEANINGS[word]})"


def _describe_expected(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(e, e) for e in expected})
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "; expected " + ", ".join(words)


def _number_hint(text: str) -> str:
    """What the user most likely meant by a malformed number."""
    tail = text[len(_WELL_FORMED_NUMBER.match(text).group(0)):]  # type: ignore[union-attr]
    if tail[:1] and tail[:1] in "eE":
        return (f"; an exponent needs digits ({text[:len(text) - len(tail)]}e-3); to multiply "
                "by a name starting with e, put a space or * before it")
    if tail[:1] and tail[:1] in "xXbBoO":
        return "; numbers are decimal"
    if tail[:1] == "_":
        return "; write numbers without separators (1000, not 1_000)"
    return "; a number has at most one decimal point"


def _end_of_input(lines: list[str]) -> tuple[int, int]:
    """Just after the last character that is not blank: where more input was expected."""
    for k in range(len(lines) - 1, -1, -1):
        stripped = lines[k].rstrip()
        if stripped:
            return k + 1, len(stripped) + 1
    return 1, 1


def parse(text: str) -> list[SStatement | SDeclaration]:
    """Parse program text into surface statements, or raise ``ParseError``."""
    if not isinstance(text, str):
        raise ProgramError(f"a program is text, not {type(text).__name__}")
    if len(text) > MAX_PROGRAM_CHARS:  # refused before Lark spends seconds and gigabytes on it
        raise size_error("the program", len(text), "characters", MAX_PROGRAM_CHARS,
                         "split it into smaller programs")
    lines = text.split("\n")
    try:
        parsed = _parser().parse(text)
        statements: list[SStatement | SDeclaration] = parsed  # type: ignore[assignment]
    except UnexpectedInput as err:
        line, column = err.line, err.column
        token = getattr(err, "token", None)
        at_end = token is not None and token.type == "$END"
        if isinstance(err, UnexpectedEOF) or at_end or line is None or line < 1:
            line, column = _end_of_input(lines)
        source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        if isinstance(err, UnexpectedCharacters):
            bad = source_line[column - 1 : column] if column >= 1 else ""
            message = f"unexpected character {bad!r}"
        elif isinstance(err, UnexpectedEOF):
            message = "unexpected end of input" + _describe_expected(set(err.expected))
        else:
            token = getattr(err, "token", None)
            shown = "end of input" if token is None or token.type == "$END" else repr(str(token))
            if token is not None and token.type == "_NEWLINE":
                shown = "end of line"
            expected = getattr(err, "expected", None) or getattr(err, "accepts", None) or set()
            message = f"unexpected {shown}" + _describe_expected(set(expected))
        raise ParseError(message + _reserved_hint(source_line, column), line, column,
                         source_line) from None
    except _MalformedNumber as err:
        line, column = err.token.line or 1, err.token.column or 1
        raise ParseError(f"malformed number {str(err.token)!r}" + _number_hint(str(err.token)),
                         line, column, lines[line - 1] if line <= len(lines) else "") from None
    except ProgramError:
        raise
    except LarkError as err:  # anything else Lark may raise: still the user's text
        raise ParseError(str(err).splitlines()[0]) from None
    if not any(isinstance(s, SStatement) for s in statements):
        raise ParseError("the program has no statement", 1, 1, lines[0] if lines else "")
    return statements

"""Syntax errors a user can act on: what was expected, in words, and what a reserved word
or a malformed number most likely meant. The reserved words' meanings come from the
registry (``REDUCERS``), so a registered function is explained as the built-in ones are.
"""

from __future__ import annotations

import re

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from ..errors import ParseError
from ..ops.reductions import REDUCERS
from .transform import WELL_FORMED_NUMBER

_TOKEN_WORDS = {
    "LPAR": '"("', "RPAR": '")"', "LSQB": '"["', "RSQB": '"]"', "COMMA": '","',
    "EQUAL": '"="', "PLUS": '"+"', "MINUS": '"-"', "STAR": '"*"', "SLASH": '"/"',
    "POW": '"^"', "CMP": "a comparison", "NAME": "a name", "FUNC": "a function",
    "NUMBER": "a number",
    "DELTA": "delta", "SUM": "sum", "REDUCE": "max, min, ...", "INPUT": "input",
    "_NEWLINE": "end of line", "SEMICOLON": '";"',
    "$END": "end of input",
}

_KEYWORDS = {
    "sum": "sum[j](e) sums e over j", "delta": "delta[i,j] is the Kronecker delta",
    "input": "input x[i], W[i,j] declares inputs",
}


def meanings() -> dict[str, str]:
    """Every reserved word with what it means: the keywords, then each registered function
    of whole axes with its help text."""
    return {**_KEYWORDS, **{n: f"{r.usage}: {r.doc}" for n, r in REDUCERS.items()}}


def reserved_hint(source_line: str, column: int) -> str:
    """Where the error comes right after a reserved word (``y = max * 2``), or at one
    (``max = x[i]``), say what the word means: the user most likely meant it as a tensor's
    name."""
    known = meanings()
    words = "|".join(re.escape(w) for w in sorted(known, key=len, reverse=True))
    before = re.search(r"\b(" + words + r")\b(\s*\[[^\]]*\])?\s*$",
                       source_line[: max(column - 1, 0)])
    at = re.match(r"(" + words + r")\b", source_line[max(column - 1, 0):])
    if before is None and at is None:
        return ""
    word = before.group(1) if before is not None else at.group(1)  # type: ignore[union-attr]
    return f"; {word} is a reserved word and cannot name a tensor or an index ({known[word]})"


def comparison_hint(token: Token | None) -> str:
    """Where a comparison stands where the grammar takes none (``y[i] = x[i] > 0``,
    ``where((x[i] > 0), a, b)``, ``a < b < c``), say where one may stand."""
    if token is None or token.type != "CMP":
        return ""
    hint = (f"; a comparison ({token}) is written only as the first argument of where, "
            "not in parentheses and not chained: where(x[i] > 0, a, b)")
    return hint + ("; to assign, write one =" if str(token) == "==" else "")


def describe_expected(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(e, e) for e in expected})
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "; expected " + ", ".join(words)


def number_hint(text: str) -> str:
    """What the user most likely meant by a malformed number."""
    tail = text[len(WELL_FORMED_NUMBER.match(text).group(0)):]  # type: ignore[union-attr]
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


def syntax_error(err: UnexpectedInput, lines: list[str]) -> ParseError:
    """Lark's error as the user's: where, what came, what was expected, and a hint."""
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
        message = "unexpected end of input" + describe_expected(set(err.expected))
    else:
        shown = "end of input" if token is None or token.type == "$END" else repr(str(token))
        if token is not None and token.type == "_NEWLINE":
            shown = "end of line"
        expected = getattr(err, "expected", None) or getattr(err, "accepts", None) or set()
        message = f"unexpected {shown}" + describe_expected(set(expected))
    return ParseError(message + comparison_hint(token) + reserved_hint(source_line, column),
                      line, column, source_line)

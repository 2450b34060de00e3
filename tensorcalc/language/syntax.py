"""Source text to a surface syntax tree (``surface.py``), with syntax errors a user can
act on (``hints.py``).

The grammar is ``grammar/tensorcalc.lark``, filled in from the registry and built into a
parser by ``parser.py``; the transformer (``transform.py``) builds the surface tree as it
parses, and ``lower.py`` turns it into the checked IR.

>>> parse("y[i] = W[i,j] x[j]")[0].name
'y'
"""

from __future__ import annotations

from lark.exceptions import LarkError, UnexpectedInput

from ..errors import ParseError, ProgramError
from ..limits import MAX_PROGRAM_CHARS, size_error
from .hints import number_hint, syntax_error
from .parser import parser
from .surface import SDeclaration, SStatement
from .transform import MalformedNumber


def parse(text: str) -> list[SStatement | SDeclaration]:
    """Parse program text into surface statements, or raise ``ParseError``."""
    if not isinstance(text, str):
        raise ProgramError(f"a program is text, not {type(text).__name__}")
    if len(text) > MAX_PROGRAM_CHARS:  # refused before Lark spends seconds and gigabytes on it
        raise size_error("the program", len(text), "characters", MAX_PROGRAM_CHARS,
                         "split it into smaller programs")
    lines = text.split("\n")
    try:
        parsed = parser().parse(text)
        statements: list[SStatement | SDeclaration] = parsed  # type: ignore[assignment]
    except UnexpectedInput as err:
        raise syntax_error(err, lines) from None
    except MalformedNumber as err:
        line, column = err.token.line or 1, err.token.column or 1
        raise ParseError(f"malformed number {str(err.token)!r}" + number_hint(str(err.token)),
                         line, column, lines[line - 1] if line <= len(lines) else "") from None
    except ProgramError:
        raise
    except LarkError as err:  # anything else Lark may raise: still the user's text
        raise ParseError(str(err).splitlines()[0]) from None
    if not any(isinstance(s, SStatement) for s in statements):
        raise ParseError("the program has no statement", 1, 1, lines[0] if lines else "")
    return statements

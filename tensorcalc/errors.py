"""One error hierarchy: every mistake a user can make is a ``TensorCalcError``; what is
likely a mistake but well defined is a ``TensorCalcWarning``."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar


class TensorCalcError(Exception):
    """Base class of every error tensorcalc raises on bad input."""


F = TypeVar("F", bound=Callable[..., Any])


def refuses_deep_nesting(fn: F) -> F:
    """Turn Python's RecursionError, from an expression nested too deeply to walk, into a
    ``ProgramError``: the work on trees is recursive, the parser is not."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            raise ProgramError(
                "the program is nested too deeply for Python's recursion limit here (function "
                "calls, powers or parenthesised sums inside each other); compute inner parts "
                "in statements of their own"
            ) from None

    return guarded  # type: ignore[return-value]


class ParseError(TensorCalcError):
    """The program text does not follow the grammar.

    ``line`` and ``column`` are 1-based; the message shows the line with a caret.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0, source_line: str = ""):
        self.line = line
        self.column = column
        self.source_line = source_line
        where = f"line {line}, column {column}: " if line else ""
        text = f"syntax error at {where}{message}"
        if source_line:
            # The caret sits under the column even where the line has tabs.
            pad = "".join(c if c == "\t" else " " for c in source_line[: max(column - 1, 0)])
            text += f"\n    {source_line}\n    {pad}^"
        super().__init__(text)


class ProgramError(TensorCalcError):
    """The program parses but is not well formed (names, indices, functions)."""


class InputError(TensorCalcError):
    """The arrays given to a program do not fit it (missing, unknown, wrong shape)."""


class ShapeError(InputError):
    """Two axes that one index labels have different sizes."""


class DerivativeError(TensorCalcError):
    """A derivative was asked of something that has none (``wrt`` is not an input, ...)."""


class MemoryLimitError(TensorCalcError):
    """A dense value would be larger than the memory limit (``tc.set_memory_limit``)."""



class TensorCalcWarning(UserWarning):
    """A program that runs, but most likely not as its writer meant: a trap of the
    summation convention (``language/traps.py``). Silence it with the ``warnings``
    filters, or write the sum explicitly; ``tc.compile(..., strict=True)`` refuses it."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str) -> None:
    """Issue a ``TensorCalcWarning`` attributed to the first caller outside tensorcalc
    (the line of the user's code that compiled the program), however deep inside the
    package it is raised."""
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, TensorCalcWarning, stacklevel=level)

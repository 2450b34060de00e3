"""The functions users call: each takes program text or a ``Program``."""

from __future__ import annotations

from typing import Any

from .errors import ProgramError, refuses_deep_nesting
from .program import Program

Source = "str | Program"


@refuses_deep_nesting
def compile(program: str | Program, result: str | None = None) -> Program:  # noqa: A001
    """Parse and check a program once; run it many times.

    >>> compile("Y[i,j] = X[i,k] W[k,j]").inputs
    ('X', 'W')
    """
    if isinstance(program, Program):
        return program if result is None else program.with_result(result)
    if not isinstance(program, str):
        raise ProgramError(f"a program is text or a Program, not {type(program).__name__}")
    return Program.from_source(program, result)


def evaluate(program: str | Program, /, **arrays: Any) -> Any:
    """The value of the program's result for the given arrays."""
    return compile(program)(**arrays)

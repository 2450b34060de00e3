"""The functions users call: each takes program text or a ``Program``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ProgramError, refuses_deep_nesting
from .program import Program

Source = "str | Program"


@refuses_deep_nesting
def compile(program: str | Program, result: str | None = None, *,  # noqa: A001
            sizes: Mapping[str, int] | None = None, strict: bool = False) -> Program:
    """Parse and check a program once; run it many times. ``sizes`` gives the sizes of
    indices that no array gives, for every call (docs/index-arithmetic.md): ``sizes={"i": 100}``.

    Text that the summation convention most likely reads otherwise than meant (an index
    summed inside a function and, apart, outside it; a parenthesised sum multiplied by
    the size of an index some of its terms lack) gives a ``TensorCalcWarning`` per
    place; ``strict=True`` refuses it with a ``ProgramError`` (a ``Program`` given
    here is checked again only then: it warned when it was compiled).

    >>> compile("Y[i,j] = X[i,k] W[k,j]").inputs
    ('X', 'W')
    """
    if isinstance(program, Program):
        p = program if result is None else program.with_result(result)
        if strict:
            p.checked(strict=True)
        return p.with_sizes(sizes)
    if not isinstance(program, str):
        raise ProgramError(f"a program is text or a Program, not {type(program).__name__}")
    return Program.from_source(program, result, strict=strict).with_sizes(sizes)


def evaluate(program: str | Program, /, **arrays: Any) -> Any:
    """The value of the program's result for the given arrays."""
    return compile(program)(**arrays)

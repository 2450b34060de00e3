"""A node kind the code does not know stops every walk with tensorcalc's internal
TypeError naming it, instead of being printed or drawn as something else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tensorcalc.ir import Ref, Statement, Sum, Term
from tensorcalc.render.diagram import diagram
from tensorcalc.render.printing import format_latex, format_statement


@dataclass(frozen=True)
class Mystery:
    """A made-up factor kind, complete enough to be asked its free indices."""

    i: str = "i"

    @property
    def free(self) -> tuple[str, ...]:
        return (self.i,)


def _statement() -> Statement:
    term = Term(1.0, (Ref("x", ("i",)), Mystery()))  # type: ignore[arg-type]
    return Statement("y", ("i",), Sum((term,)))


WALKS: dict[str, Callable[[Statement], Any]] = {
    "text": format_statement,
    "explicit sums": lambda st: format_statement(st, explicit_sums=True),
    "latex": format_latex,
    "diagram": diagram,
}


@pytest.mark.parametrize("walk", sorted(WALKS))
def test_an_unknown_factor_kind_raises_naming_it(walk: str) -> None:
    with pytest.raises(TypeError, match="internal error: no case for the IR node kind Mystery"):
        WALKS[walk](_statement())


def test_an_unknown_kind_inside_a_sum_raises_too() -> None:
    inner = Sum((Term(1.0, (Mystery(),)), Term(2.0, (Ref("x", ("i",)),))))  # type: ignore[arg-type]
    st = Statement("y", ("i",), Sum((Term(1.0, (inner,)),)))
    with pytest.raises(TypeError, match="Mystery"):
        format_statement(st)

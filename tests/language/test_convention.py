"""Lowering meets only the node kinds it knows: a made-up IR factor or surface node stops
it with tensorcalc's internal TypeError naming the kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tensorcalc.ir import Ref, Sum, Term
from tensorcalc.language.convention import Lowering, inline_single_terms
from tensorcalc.language.surface import Pos, SBinary, STensor
from tensorcalc.language.surface_walks import operands


@dataclass(frozen=True)
class Mystery:
    """A made-up node kind, IR factor or surface node."""

    pos: Pos = Pos(1, 1)

    @property
    def free(self) -> tuple[str, ...]:
        return ("i",)


def test_inlining_an_unknown_factor_kind_raises() -> None:
    term = Term(1.0, (Sum((Term(1.0, (Ref("x", ("i",)), Mystery())),)),))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no case for the IR node kind Mystery"):
        inline_single_terms(term)


def test_walking_an_unknown_surface_node_raises() -> None:
    tree = SBinary("*", STensor("x", ("i",), Pos(1, 1)), Mystery(), Pos(1, 1))  # type: ignore[arg-type]
    assert len(operands(tree)) == 2
    with pytest.raises(TypeError, match="Mystery"):
        operands(Mystery())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Mystery"):
        Lowering().occurs(tree)
    with pytest.raises(TypeError, match="Mystery"):
        Lowering().factor(Mystery(), frozenset())  # type: ignore[arg-type]

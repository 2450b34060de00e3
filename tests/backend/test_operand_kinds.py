"""The plan meets only node kinds it knows: any other is a TypeError naming the kind."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tensorcalc.backend.operands import nested_sums
from tensorcalc.backend.plan import plan_sum
from tensorcalc.ir import Ref, Sum, Term


@dataclass(frozen=True)
class Stranger:
    """An operand kind the plan's walks do not know."""

    free: tuple[str, ...] = ()


def test_an_unknown_factor_kind_is_named_not_skipped() -> None:
    odd = Term(1.0, (Stranger(("i",)), Ref("x", ("i",))), frozenset())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="IR node kind Stranger"):
        plan_sum(Sum((odd,)))


def test_an_unknown_operand_kind_is_named_by_nested_sums() -> None:
    with pytest.raises(TypeError, match="Stranger"):
        list(nested_sums(Stranger()))  # type: ignore[arg-type]

"""Every walk over the IR, and every pass that dispatches on node kinds, refuses a factor
kind it does not know with a TypeError naming it, instead of passing over it (a walk that
skipped a kind would give a wrong derivative or number silently)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tensorcalc.calculus.canonical import canonical_term, factor_key
from tensorcalc.calculus.rules import deltas, differentiate
from tensorcalc.calculus.simplify import simplify_sum, simplify_term
from tensorcalc.ir import (
    Call,
    Delta,
    Power,
    Reduce,
    Ref,
    Sum,
    Term,
    all_deltas,
    all_factors,
    all_terms,
    arithmetic,
    as_sum,
    children,
    const,
    extents_from,
    freshen,
    index_order,
    index_tensors,
    map_factor_sums,
    mentioned,
    reads,
    reductions,
    refs,
    rename_factor,
    sizes_carried,
    substitute,
    walk_factors,
)


@dataclass(frozen=True)
class Mystery:
    """A factor kind that no part of tensorcalc knows."""

    free: tuple[str, ...] = ("i",)


def _alone() -> Mystery:
    return Mystery()


def _nested() -> Call:
    """The unknown kind deep inside a function's argument."""
    return Call("tanh", (Sum((Term(1.0, (Ref("x", ("i",)), Mystery())),)),))  # type: ignore[arg-type]


def _sum_of(f: object) -> Sum:
    return Sum((Term(1.0, (Ref("y", ("i",)), f)),))  # type: ignore[arg-type]


WALKS: dict[str, Callable[[object], object]] = {
    "children": lambda f: children(f),  # type: ignore[arg-type]
    "mentioned": lambda f: mentioned(f),  # type: ignore[arg-type]
    "map_factor_sums": lambda f: map_factor_sums(f, lambda s: s),  # type: ignore[arg-type]
    "index_order": lambda f: index_order(f),  # type: ignore[arg-type]
    "sizes_carried": lambda f: sizes_carried(f),  # type: ignore[arg-type]
    "reads": lambda f: reads(f),  # type: ignore[arg-type]
    "extents_from": lambda f: extents_from(["i"], f),  # type: ignore[arg-type]
    "rename_factor": lambda f: rename_factor(f, {"i": "j"}),  # type: ignore[arg-type]
    "factor_key": lambda f: factor_key(f),  # type: ignore[arg-type]
    "walk_factors": lambda f: list(walk_factors(_sum_of(f))),
    "all_terms": lambda f: list(all_terms(_sum_of(f))),
    "all_factors": lambda f: list(all_factors(_sum_of(f))),
    "refs": lambda f: list(refs(_sum_of(f))),
    "all_deltas": lambda f: list(all_deltas(_sum_of(f))),
    "reductions": lambda f: list(reductions(_sum_of(f))),
    "index_tensors": lambda f: list(index_tensors(_sum_of(f))),
    "arithmetic": lambda f: arithmetic(_sum_of(f)),
    "term.mentioned": lambda f: _sum_of(f).terms[0].mentioned,
    "freshen": lambda f: freshen(_sum_of(f).terms[0], {"k"}),
    "substitute": lambda f: substitute(_sum_of(f).terms[0], "i", "j"),
    "canonical_term": lambda f: canonical_term(_sum_of(f).terms[0]),
    "simplify_term": lambda f: simplify_term(_sum_of(f).terms[0]),
    "simplify_sum": lambda f: simplify_sum(_sum_of(f)),
    "differentiate": lambda f: differentiate(
        _sum_of(f), lambda r: deltas(r.indices, ("p",)) if r.name == "y" else None),
}

# Walks that look only at the factor itself do not reach a kind nested in a function.
SHALLOW = {"children", "map_factor_sums"}


@pytest.mark.parametrize("name", sorted(WALKS))
def test_an_unknown_factor_kind_is_refused_by_name(name: str) -> None:
    with pytest.raises(TypeError, match="no case for the IR node kind Mystery"):
        WALKS[name](_alone())


@pytest.mark.parametrize("name", sorted(set(WALKS) - SHALLOW))
def test_an_unknown_kind_nested_in_a_function_is_refused_too(name: str) -> None:
    with pytest.raises(TypeError, match="Mystery"):
        WALKS[name](_nested())


def _example() -> Sum:
    """``A[i,j] tanh(x[j] delta[j,k]) + max[k](B[i,k]^2)`` with everything nested once."""
    inner = Sum((Term(1.0, (Ref("x", ("j",)), Delta("j", "k"))),))
    first = Term(1.0, (Ref("A", ("i", "j")), Call("tanh", (inner,))), frozenset({"j"}))
    square = Power(as_sum(Ref("B", ("i", "k"))), const(2.0))
    second = Term(1.0, (Reduce("max", ("k",), as_sum(square)),))
    return Sum((first, second))


def test_the_walk_visits_each_factor_before_the_sums_inside_it_in_order_of_writing() -> None:
    names = [type(f).__name__ + (f"({f.name})" if isinstance(f, Ref) else "")
             for f in all_factors(_example())]
    assert names == ["Ref(A)", "Call", "Ref(x)", "Delta", "Reduce", "Power", "Ref(B)"]
    assert [f for _, f in walk_factors(_example())] == list(all_factors(_example()))
    assert [r.name for r in refs(_example())] == ["A", "x", "B"]
    assert [d for d in all_deltas(_example())] == [Delta("j", "k")]
    assert [f.fn for f, _ in reductions(_example())] == ["max"]


def test_every_term_is_visited_once_each_before_the_terms_inside_it() -> None:
    expr = _example()
    first, second = expr.terms
    tanh, top_max = first.factors[1], second.factors[0]
    assert isinstance(tanh, Call) and isinstance(top_max, Reduce)
    square = top_max.arg.terms[0].factors[0]
    assert isinstance(square, Power)
    expected = [first, tanh.arg.terms[0], second, top_max.arg.terms[0],
                square.base.terms[0], square.exponent.terms[0]]
    assert [id(t) for t in all_terms(expr)] == [id(t) for t in expected]

"""The caches kept on IR nodes: one ``Memo`` per cache, under a key no other cache and
no attribute can take."""

from __future__ import annotations

import pytest

from tensorcalc.caching import Memo
from tensorcalc.calculus.canonical import factor_key, sum_key
from tensorcalc.ir import Ref, Sum, Term


def test_a_second_cache_of_the_same_name_is_refused() -> None:
    Memo("a cache only this test declares")
    with pytest.raises(ValueError, match="declared already"):
        Memo("a cache only this test declares")


def test_a_cache_named_like_an_attribute_does_not_touch_it() -> None:
    free = Memo("free")  # ``free`` is a cached property of every node kind
    s = Sum((Term(1.0, (Ref("x", ("i",)),)),))
    assert free.of(s, lambda: ("other",)) == ("other",)
    assert s.free == ("i",)
    assert free.of(s, lambda: ("not asked",)) == ("other",)


def test_a_value_is_made_once_per_node() -> None:
    calls = []
    once = Memo("counted")
    s = Sum(())
    for _ in range(3):
        once.of(s, lambda: calls.append(1) or len(calls))
    assert calls == [1]
    assert once.get(Sum(())) is None


def test_a_sums_key_as_a_factor_and_as_a_sum_are_kept_apart() -> None:
    """Asked in either order, each key is its own (they once shared one slot)."""
    def fresh() -> Sum:
        return Sum((Term(1.0, (Ref("x", ("i",)),)),))

    a, b = fresh(), fresh()
    sum_key(a)
    factor_key(b)
    assert factor_key(a) == factor_key(b) != sum_key(a) == sum_key(b)

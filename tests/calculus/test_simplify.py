"""The fixed point of ``simplify_sum`` stops a round early when every term is settled
(``simplify._settled``): the claim is that ``simplify_term`` would give a settled term back
unchanged. Here that claim is checked on every term it is made for while deriving a corpus
of programs (the fuzz's valid programs, the reductions, powers, index arithmetic and the
benchmark chain), to first, second and mixed order: a settled term that simplifies to
anything else fails the test, naming the term."""

from __future__ import annotations

import pytest
from corpus import derivation_cases
from support import derivatives_of

import tensorcalc as tc
from tensorcalc.calculus import canonical, simplify


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``_settled`` made to check its own answer; the list counts the settled terms."""
    original = simplify._settled
    count = [0]

    def settled(term: simplify.Term) -> bool:
        answer = original(term)
        if answer:
            count[0] += 1
            again = simplify.simplify_term(term)
            assert again == [term], f"settled, yet simplifies further: {term} -> {again}"
        return answer

    monkeypatch.setattr(simplify, "_settled", settled)
    return count


def test_settled_terms_simplify_to_themselves(checked: list[int]) -> None:
    derived = sum(bool(derivatives_of(*case)) for case in derivation_cases())
    assert derived > 100, f"only {derived} programs derived: the corpus is broken"
    assert checked[0] > 500, f"only {checked[0]} terms were settled early"


def test_stopping_early_prints_what_the_full_fixed_point_prints(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The round not run would have given the same sum back: every derivative of the
    corpus prints the same with the early stop as with the fixed point run to the end."""
    corpus = derivation_cases()
    early = [[str(d) for d in derivatives_of(*case)] for case in corpus]
    monkeypatch.setattr(simplify, "_settled", lambda term: False)
    full = [[str(d) for d in derivatives_of(*case)] for case in corpus]
    differ = [(case, a, b) for case, a, b in zip(corpus, early, full) if a != b]
    assert not differ, f"{len(differ)} derivatives differ; the first: {differ[0]}"
    assert sum(map(len, early)) > 300


def test_a_sums_key_as_a_factor_does_not_depend_on_what_was_asked_first() -> None:
    """A sum is a factor (``(1 - h^2)``) and has terms: its key as a factor and its key as
    a sum are two values, kept apart on it (they once shared one slot, so that whichever
    was asked first answered both, and equal powers failed to merge)."""
    from tensorcalc.ir import Ref, Sum, Term

    def fresh() -> Sum:
        return Sum((Term(1.0, (Ref("x", ("i",)),)),))

    first = fresh()
    canonical.sum_key(first)  # asked as a sum first
    second = fresh()
    assert canonical.factor_key(first) == canonical.factor_key(second)
    assert canonical.sum_key(first) == canonical.sum_key(second) != canonical.factor_key(first)
    assert str(tc.derive("y[i] = sqrt(x[i])^4 * x[i]^-1", "x")).splitlines()[-1] == \
        "dy_dx[i,p] = delta[i,p]"

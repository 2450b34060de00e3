"""The grammar is filled in from the registry when the parser is built: the filled text is
a conflict-free LALR grammar, the parser (and its cache file) is kept per final text, and
a name that is not a word is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lark import Lark

import tensorcalc as tc
from tensorcalc.language.parser import (
    PLACEHOLDER,
    grammar,
    grammar_file,
    parser,
    private_cache_file,
)
from tensorcalc.ops.reductions import Reduction


@pytest.fixture
def extra_word() -> Iterator[str]:
    entry = tc.REDUCERS["max"]
    tc.REDUCERS["maxabs"] = Reduction("maxabs", entry.kernel, entry.derivative, "a test entry")
    try:
        yield "maxabs"
    finally:
        del tc.REDUCERS["maxabs"]


def test_the_filled_grammar_is_lalr_without_conflicts() -> None:
    pytest.importorskip("interegular")
    assert PLACEHOLDER in grammar_file() and PLACEHOLDER not in grammar()
    Lark(grammar(), parser="lalr", strict=True)


def test_a_word_that_extends_another_is_read_whole(extra_word: str) -> None:
    pytest.importorskip("interegular")
    Lark(grammar(), parser="lalr", strict=True)
    # maxabs is not max followed by the name abs
    assert tc.compile("m[i] = maxabs[j](X[i,j])").statements[-1].rhs.terms[0].factors[0].fn \
        == "maxabs"


def test_the_parser_and_its_cache_follow_the_registry(extra_word: str) -> None:
    with_word = parser()
    text = grammar()
    del tc.REDUCERS[extra_word]
    try:
        assert parser() is not with_word and grammar() != text
        assert private_cache_file(grammar()) != private_cache_file(text) or \
            private_cache_file(text) is None
    finally:
        tc.REDUCERS[extra_word] = Reduction(extra_word, tc.REDUCERS["max"].kernel,
                                            tc.REDUCERS["max"].derivative, "a test entry")
    assert parser() is with_word  # kept per grammar text


def test_a_name_that_is_not_a_word_is_refused() -> None:
    entry = tc.REDUCERS["max"]
    tc.REDUCERS["max|x"] = Reduction("max|x", entry.kernel, entry.derivative, "bad")
    try:
        with pytest.raises(ValueError, match="named like an index"):
            tc.compile("y = x[i]")
    finally:
        del tc.REDUCERS["max|x"]

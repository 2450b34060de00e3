"""The ``>>>`` examples of the documentation pages print what the pages say.

The site shows what each example prints when it is built (markdown-exec runs them), so
the rendered page is never stale; this keeps the Markdown source, which GitHub shows and
tests quote, equal to it. Each page's examples run in order in one namespace, as doctests."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
from support import ROOT

import tensorcalc as tc

PAGES = sorted((ROOT / "docs").glob("*.md"))
CONSOLE = re.compile(r'```pycon exec="on"[^\n]*\n(.*?)```', re.S)


def examples(page: Path) -> str:
    return "\n".join(CONSOLE.findall(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_a_pages_console_examples_print_what_it_says(page: Path) -> None:
    test = doctest.DocTestParser().get_doctest(examples(page), {"tc": tc}, page.name,
                                               str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test)
    assert result.attempted > 0 and result.failed == 0, f"{page.name}: see the output above"

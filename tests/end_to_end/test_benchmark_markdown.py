"""``python -m benchmarks --markdown PATH``: the table the Performance page includes, with
the date, the time (UTC) and the machine it was measured on."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from support import ROOT

if str(ROOT) not in sys.path:  # the benchmarks package lives at the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.cli import echoed, parse_args, write_markdown  # noqa: E402

MACHINE = "## Machine\n\n- CPU: AMD EPYC; 2 logical cores\n- NumPy: 2.4.6\n"
TABLE = "| workload | tensorcalc |\n|---|---|\n| 1. logistic | 11.63 ms |\n"


def test_the_option_names_a_path() -> None:
    assert parse_args(["--markdown", "docs/performance-table.md"]).markdown == \
        "docs/performance-table.md"
    assert parse_args([]).markdown is None


def test_the_page_holds_when_where_and_the_table(tmp_path: Path) -> None:
    out = tmp_path / "performance-table.md"
    started = datetime.datetime(2026, 12, 7, 13, 27, tzinfo=datetime.timezone.utc)
    write_markdown(out, started, MACHINE, TABLE, "\nSUMMARY: 30 of 34 goals met (missed: 3)\n",
                   "the whole run took 76 s")
    text = out.read_text(encoding="utf-8")
    assert "Measured on 2026-12-07 at 13:27 UTC (the whole run took 76 s)" in text
    assert "- CPU: AMD EPYC; 2 logical cores\n- NumPy: 2.4.6\n" in text
    assert "## Machine" not in text  # the page has its own headings
    assert TABLE.strip() in text and "**30 of 34 goals met (missed: 3).**" in text


def test_what_is_kept_is_also_printed(capsys) -> None:
    kept = echoed(print, "a line")
    assert kept == "a line\n" and capsys.readouterr().out == "a line\n"

"""The front door: README.md is short, every example in it runs as written and prints what
it says, and no file of the repository cites working notes that are not in it."""

from __future__ import annotations

import re

import pytest
from support import ROOT, cli

import tensorcalc as tc

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_at_most_250_lines() -> None:
    assert len(README.splitlines()) <= 250


def test_the_readme_python_examples_run_in_order() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(block, namespace)  # noqa: S102 - the README's own examples
    printed = re.search(r"print\(g\)\s+# (.*)", README)
    assert printed is not None and printed.group(1) == str(namespace["g"])
    adjoint = re.search(r"gW = tc.grad\(rnn, \"W\"\)\s+# (.*) \.\.\.", README)
    assert adjoint is not None and adjoint.group(1) in str(namespace["gW"]).splitlines()


def test_the_readme_shows_what_the_command_prints() -> None:
    shown = README.split("```\n$ tensorcalc derive ", 1)[1].split("```", 1)[0]
    command, _, output = shown.partition("\n")
    program, wrt = re.fullmatch(r'"(.*)" --wrt (\w+)', command).groups()
    result = cli("derive", program, "--wrt", wrt)
    assert result.returncode == 0 and result.stdout == output
    assert output.rstrip("\n") == str(tc.derive(program, wrt))


def test_the_readme_quick_start_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = 'pip install ".[test]" && python -m pytest'
    assert command in README and ci.rstrip().endswith(command)


def test_no_file_cites_the_working_notes_outside_the_repository() -> None:
    """Code and tests cite the docs pages (docs/derivatives.md, 'Shifted deltas'), which a
    reader has, never the section of a document the repository does not hold."""
    notes = ("SP" + "EC", "MA" + "TH")  # spelled apart, so that this file cites nothing
    cited = re.compile(f"({'|'.join(notes)})" + r"(\.md| §)")
    found = []
    for top in ("tensorcalc", "tests", "examples", "benchmarks", "grammar", "docs"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in {".py", ".md", ".lark", ".yml", ".js"} and path.is_file():
                text = path.read_text(encoding="utf-8")
                found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in cited.finditer(text)]
    found += [f"README.md: {m.group(0)}" for m in cited.finditer(README)]
    assert not found, found


def test_the_readme_performance_rows_are_those_of_the_docs_table() -> None:
    """The README's headline rows, date and goal count are copied from the table that
    ``python -m benchmarks --markdown docs/performance-table.md`` writes: after a new run,
    copy them again (this fails until then, so the front door never shows an older run)."""
    table = (ROOT / "docs" / "performance-table.md").read_text(encoding="utf-8")
    section = README.split("## Performance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) >= 5 and all(row in table for row in rows)
    measured = re.search(r"Measured on (\d{4}-\d\d-\d\d at \d\d:\d\d UTC)", table)
    assert measured is not None and measured.group(0) in section
    goals = re.search(r"\*\*\d+ of \d+ goals met[^*]*\*\*", table)
    assert goals is not None and goals.group(0) in section

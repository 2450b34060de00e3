"""The grammar itself: conflict-free under Lark's strict mode, and shipped in the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lark import Lark
from support import ROOT

from tensorcalc.language.parser import grammar_file as _grammar_text


def test_grammar_is_lalr_without_conflicts_in_strict_mode() -> None:
    pytest.importorskip("interegular")
    parser = Lark(_grammar_text(), parser="lalr", strict=True)
    tree = parser.parse("Y[i,j]=X[i,k]W[k,j]; s = -x[i]^2 + sum[j](exp(Z[n,j])) delta[i,j]\n"
                        "y[i] = where(x[i] + 1 >= -y[j] z, maximum(x[i], 0), clip(a, b, c))")
    assert tree.data == "start"


def test_packaged_grammar_is_the_top_level_file() -> None:
    assert _grammar_text() == (ROOT / "grammar" / "tensorcalc.lark").read_text("utf-8")


@pytest.mark.skipif(os.environ.get("TENSORCALC_SKIP_WHEEL") == "1", reason="asked to skip")
def test_installed_wheel_parses_without_the_source_tree(tmp_path: Path) -> None:
    """Build a wheel, unpack it elsewhere, and parse from a directory with no sources."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(ROOT)],
        capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("tensorcalc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "tensorcalc/grammar/tensorcalc.lark" in z.namelist()
        z.extractall(tmp_path / "site")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import tensorcalc, numpy as np;"
        "assert 'site' in tensorcalc.__file__, tensorcalc.__file__;"
        "print(tensorcalc.derive('Y[i,j] = X[i,k] W[k,j]', 'X'))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    ran = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "dY_dX[i,j,p,q] = delta[i,p] W[q,j]"

"""The parser cache is never loaded from a place another user can write.

Lark keeps its LALR tables in a pickle; loading a pickle runs code. tensorcalc keeps it
in a private per-user directory (mode 0700, owned by the user) and nowhere else.
"""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tensorcalc.language.parser import private_cache_file

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership checks")

GRAMMAR = "start: 'x'\n"


class Planted:
    """Unpickling this creates a marker file: proof that a planted pickle was run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def run_cli(env_home: Path, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(env_home), TMPDIR=str(tmpdir), XDG_CACHE_HOME="")
    env.pop("XDG_CACHE_HOME")
    return subprocess.run(
        [sys.executable, "-m", "tensorcalc", "derive", "Y[i,j] = X[i,k] W[k,j]", "--wrt", "X"],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_nothing_is_written_to_or_read_from_the_temp_directory(tmp_path: Path) -> None:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    marker = tmp_path / "executed"
    # Plant a pickle under every name a temp-dir cache could have: none may be loaded.
    for k in range(3):
        (tmp / f".lark_cache_{k}.tmp").write_bytes(pickle.dumps(Planted(marker)))
    done = run_cli(home, tmp)
    assert done.returncode == 0, done.stderr
    assert "delta[i,p] W[q,j]" in done.stdout
    assert sorted(p.name for p in tmp.iterdir()) == [f".lark_cache_{k}.tmp" for k in range(3)]
    assert not marker.exists()
    cache = home / ".cache" / "tensorcalc"
    assert cache.is_dir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    # A second process finds and uses the private cache.
    assert run_cli(home, tmp).returncode == 0


def test_a_cache_directory_others_can_write_is_not_used(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "tensorcalc"
    folder.mkdir(mode=0o700)
    assert private_cache_file(GRAMMAR) is not None
    os.chmod(folder, 0o777)
    assert private_cache_file(GRAMMAR) is None
    os.chmod(folder, 0o750)
    assert private_cache_file(GRAMMAR) is None


def test_a_cache_file_others_can_write_is_not_used(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = private_cache_file(GRAMMAR)
    assert path is not None
    Path(path).write_bytes(b"x")
    os.chmod(path, 0o600)
    assert private_cache_file(GRAMMAR) == path
    os.chmod(path, 0o666)
    assert private_cache_file(GRAMMAR) is None


def test_a_symlinked_cache_directory_or_file_is_not_used(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "base").mkdir()
    os.symlink(elsewhere, tmp_path / "base" / "tensorcalc")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "base"))
    assert private_cache_file(GRAMMAR) is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ok"))
    path = private_cache_file(GRAMMAR)
    assert path is not None
    os.symlink(elsewhere / "target", path)
    assert private_cache_file(GRAMMAR) is None


def test_a_directory_that_cannot_be_made_means_no_cache(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert private_cache_file(GRAMMAR) is None

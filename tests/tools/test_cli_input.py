"""The command line under hostile or broken input.

Every failure to read an input is one line naming the file and exit status 2; only
regular files are read (a FIFO never blocks); ``-o`` writes exactly the path given;
random inputs respect the memory limit; sizes given by loaded arrays count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

MATMUL = "Y[i,j] = X[i,k] W[k,j]"


def cli(*args, env=None, timeout=60):
    full = dict(os.environ)
    full.pop("TENSORCALC_MEMORY_LIMIT", None)
    extra = full.get("PYTHONPATH")
    full["PYTHONPATH"] = str(ROOT) + (os.pathsep + extra if extra else "")
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tensorcalc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
        timeout=timeout,
    )


def assert_one_line_failure(res, *mentions):
    """Exit 2, no traceback, exactly one line on stderr that names each of ``mentions``."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("tensorcalc: error: "), res.stderr
    for m in mentions:
        assert str(m) in lines[0], (m, res.stderr)


def valid_npy(path, shape=(3, 4), seed=0):
    np.save(path, np.random.default_rng(seed).standard_normal(shape))
    return path


def valid_npz(path, seed=0, compressed=False):
    g = np.random.default_rng(seed)
    (np.savez_compressed if compressed else np.savez)(
        path, X=g.standard_normal((3, 4)), W=g.standard_normal((4, 2)))
    return path


# --- 6: the memory limit applies to random inputs and to loaded files -------------------

def test_random_input_refused_over_memory_limit():
    # 2000 x 200 float64 is 3.2 MB, over a 1 MB limit: refused before it is drawn
    res = cli("eval", "s = X[i,j]", "--size", "i=2000,j=200",
              env={"TENSORCALC_MEMORY_LIMIT": "1000000"})
    assert_one_line_failure(res, "X", "TENSORCALC_MEMORY_LIMIT")


def test_random_input_under_memory_limit_still_drawn():
    res = cli("eval", "s = X[i,j]", "--size", "i=20,j=20",
              env={"TENSORCALC_MEMORY_LIMIT": "1000000"})
    assert res.returncode == 0, res.stderr


def test_loaded_npy_refused_over_memory_limit(tmp_path):
    big = valid_npy(tmp_path / "big.npy", shape=(1000, 200))  # 1.6 MB
    res = cli("eval", "s = X[i,j]", "-i", f"X={big}", env={"TENSORCALC_MEMORY_LIMIT": "1000000"})
    assert_one_line_failure(res, "big.npy", "limit")


def test_loaded_npz_member_refused_over_memory_limit(tmp_path):
    np.savez_compressed(tmp_path / "big.npz", X=np.zeros((1000, 200)))  # tiny on disk
    res = cli("eval", "s = X[i,j]", "-i", tmp_path / "big.npz",
              env={"TENSORCALC_MEMORY_LIMIT": "1000000"})
    assert_one_line_failure(res, "big.npz", "limit")


def test_npy_header_claiming_huge_shape_refused(tmp_path):
    # a 200-byte file whose header claims 8 TB: refused from the header, nothing allocated
    bad = tmp_path / "liar.npy"
    with open(bad, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 64)
    res = cli("eval", "s = X[i,j]", "-i", f"X={bad}")
    assert_one_line_failure(res, "liar.npy")


# --- 16: a broken input file is one line naming it, exit 2 ------------------------------

def test_zip_bytes_given_as_npy(tmp_path):
    bad = tmp_path / "zip.npy"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={bad}")
    assert_one_line_failure(res, "zip.npy")


def test_npz_given_with_a_name_is_refused(tmp_path):
    npz = valid_npz(tmp_path / "in.npz")
    res = cli("eval", "s = X[i,j]", "-i", f"X={npz}")
    assert_one_line_failure(res, "in.npz")


def test_npz_with_bad_crc(tmp_path):
    npz = valid_npz(tmp_path / "crc.npz")  # stored, not compressed: flip a data byte
    data = bytearray(npz.read_bytes())
    data[200] ^= 0xFF
    npz.write_bytes(bytes(data))
    res = cli("eval", MATMUL, "-i", npz)
    assert_one_line_failure(res, "crc.npz")


def test_empty_npy(tmp_path):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={empty}")
    assert_one_line_failure(res, "empty.npy")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_dev_null_input():
    res = cli("eval", "y[i] = 2 x[i]", "-i", "x=/dev/null")
    assert_one_line_failure(res, "/dev/null")


def test_truncated_npy_header(tmp_path):
    good = valid_npy(tmp_path / "good.npy").read_bytes()
    bad = tmp_path / "cut.npy"
    bad.write_bytes(good[:40])
    res = cli("eval", "s = x[i,j]", "-i", f"x={bad}")
    assert_one_line_failure(res, "cut.npy")


def test_non_numpy_file(tmp_path):
    bad = tmp_path / "text.npy"
    bad.write_text("hello\n")
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={bad}")
    assert_one_line_failure(res, "text.npy")


def _cuts(n):
    cuts = {1, 5, 6, 8, 9, 10, 20, 50, 100, n // 3, n // 2, n - 40, n - 1}
    return sorted(cuts & set(range(1, n)))


def test_fuzz_truncated_npy(tmp_path):
    good = valid_npy(tmp_path / "good.npy", shape=(3, 4)).read_bytes()
    for cut in _cuts(len(good)):
        bad = tmp_path / f"cut{cut}.npy"
        bad.write_bytes(good[:cut])
        res = cli("eval", "s = X[i,j]", "-i", f"X={bad}")
        assert_one_line_failure(res, bad.name)


@pytest.mark.parametrize("compressed", [False, True])
def test_fuzz_truncated_npz(tmp_path, compressed):
    good = valid_npz(tmp_path / "good.npz", compressed=compressed).read_bytes()
    for cut in _cuts(len(good)):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(good[:cut])
        res = cli("eval", MATMUL, "-i", bad)
        assert_one_line_failure(res, bad.name)


@pytest.mark.parametrize("kind", ["npy", "npz", "npz_compressed"])
def test_fuzz_flipped_bytes(tmp_path, kind):
    path = tmp_path / f"good.{kind[:3]}"
    if kind == "npy":
        good = valid_npy(path).read_bytes()
        args = ("s = X[i,j]", "-i", f"X={path}")
    else:
        good = valid_npz(path, compressed=kind == "npz_compressed").read_bytes()
        args = (MATMUL, "-i", path)
    g = np.random.default_rng(15)
    # the magic, the header and its length, and spots across the rest
    spots = sorted({0, 3, 6, 8, 9, 12, 30, 60, *g.integers(0, len(good), 6).tolist()})
    for spot in spots:
        data = bytearray(good)
        data[spot] ^= 0xFF
        path.write_bytes(bytes(data))
        res = cli("eval", *args)
        # a flip inside the numbers of an .npy file still loads; every other outcome is
        # a clean one-line refusal naming the file
        if res.returncode == 0:
            continue
        assert_one_line_failure(res, path.name)


# --- 17: regular files only; -o writes exactly the path given ---------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("how", ["named", "npz", "program"])
def test_fifo_refused_without_blocking(tmp_path, how):
    fifo = tmp_path / "fifo.npy"
    os.mkfifo(fifo)
    if how == "named":
        args = ("eval", "y[i] = 2 x[i]", "-i", f"x={fifo}")
    elif how == "npz":
        args = ("eval", "y[i] = 2 x[i]", "-i", fifo)
    else:
        args = ("eval", "-f", fifo, "--size", "i=3")
    res = cli(*args, timeout=20)  # a regression raises TimeoutExpired rather than hanging
    assert_one_line_failure(res, "fifo.npy", "regular file")


def test_directory_as_input_refused(tmp_path):
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={tmp_path}")
    assert_one_line_failure(res, str(tmp_path), "regular file")


def test_output_written_to_exact_path(tmp_path):
    out = tmp_path / "result.bin"
    res = cli("eval", "y[i] = 2 x[i]", "--size", "i=3", "-o", out)
    assert res.returncode == 0, res.stderr
    assert out.is_file()
    assert not (tmp_path / "result.bin.npy").exists()
    assert np.load(out, allow_pickle=False).shape == (3,)


def test_output_to_directory_refused(tmp_path):
    d = tmp_path / "outdir"
    d.mkdir()
    res = cli("eval", "y[i] = 2 x[i]", "--size", "i=3", "-o", d)
    assert_one_line_failure(res, "outdir", "directory")
    assert not (tmp_path / "outdir.npy").exists()
    assert list(d.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_write_error_reported():
    stray = Path("/dev/full.npy")
    existed = stray.exists()
    try:
        res = cli("eval", "y[i] = 2 x[i]", "--size", "i=3", "-o", "/dev/full")
        assert_one_line_failure(res, "/dev/full")
        assert not stray.exists() or existed
    finally:
        if stray.exists() and not existed:  # left by a regression: clean it up
            stray.unlink()


def test_help_mentions_files_output_and_limit():
    res = cli("eval", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    for words in ("regular file", "TENSORCALC_MEMORY_LIMIT", "exactly", "ignored"):
        assert words in text, (words, res.stdout)


# --- 14: sizes from loaded arrays; extra .npz keys ---------------------------------------

def test_size_of_index_taken_from_loaded_array(tmp_path):
    X = np.random.default_rng(1).standard_normal((3, 5))
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "y.npy"
    res = cli("eval", MATMUL, "-i", f"X={tmp_path / 'X.npy'}", "--size", "i=3,j=2", "-o", out)
    assert res.returncode == 0, res.stderr
    assert np.load(out).shape == (3, 2)


def test_sizes_taken_by_the_indices_an_array_is_written_with(tmp_path):
    # X is written X[k,i]: its first axis sizes k, its second i; W is random
    np.save(tmp_path / "X.npy", np.ones((5, 3)))
    out = tmp_path / "y.npy"
    res = cli("eval", "Y[i,j] = X[k,i] W[k,j]", "-i", f"X={tmp_path / 'X.npy'}",
              "--size", "j=2", "-o", out)
    assert res.returncode == 0, res.stderr
    assert np.load(out).shape == (3, 2)


def test_npz_extra_keys_ignored(tmp_path):
    g = np.random.default_rng(2)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 2))
    np.savez(tmp_path / "in.npz", X=X, W=W, Z=np.ones(7), notes=np.array([1, 2]))
    out = tmp_path / "y.npy"
    res = cli("eval", MATMUL, "-i", tmp_path / "in.npz", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), X @ W, rtol=1e-12)


def test_explicit_unknown_input_still_refused(tmp_path):
    g = np.random.default_rng(3)
    np.savez(tmp_path / "in.npz", X=g.standard_normal((3, 4)), W=g.standard_normal((4, 2)))
    np.save(tmp_path / "z.npy", np.ones(3))
    res = cli("eval", MATMUL, "-i", tmp_path / "in.npz", "-i", f"Z={tmp_path / 'z.npy'}")
    assert_one_line_failure(res, "Z")

"""The command line (docs/cli.md): ``python -m tensorcalc eval ...``."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import cli


def assert_clean_failure(res):
    assert res.returncode != 0, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    assert "Traceback" not in res.stdout, res.stdout
    assert res.stderr.strip(), "a failure says why on stderr"


MATMUL = "Y[i,j] = X[i,k] W[k,j]"


@pytest.fixture
def matmul_files(tmp_path):
    g = np.random.default_rng(200)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 2))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "w.npy", W)
    return X, W, tmp_path


def test_eval_npy_inputs_to_npy_output(matmul_files):
    X, W, tmp = matmul_files
    out = tmp / "out.npy"
    res = cli("eval", MATMUL, "-i", f"X={tmp / 'x.npy'}", "-i", f"W={tmp / 'w.npy'}", "-o", out)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    Y = np.load(out, allow_pickle=False)
    np.testing.assert_allclose(Y, X @ W, rtol=1e-12)


def test_eval_npz_input(tmp_path):
    g = np.random.default_rng(201)
    X, W, b = g.standard_normal((3, 4)), g.standard_normal((4, 2)), g.standard_normal(2)
    np.savez(tmp_path / "in.npz", X=X, W=W, b=b)
    out = tmp_path / "y.npy"
    res = cli("eval", "Y[i,j] = tanh(X[i,k] W[k,j] + b[j])", "-i", tmp_path / "in.npz", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), np.tanh(X @ W + b), rtol=1e-12)


def test_eval_npz_and_npy_mixed(tmp_path):
    g = np.random.default_rng(202)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 2))
    np.savez(tmp_path / "in.npz", X=X)
    np.save(tmp_path / "w.npy", W)
    out = tmp_path / "y.npy"
    res = cli("eval", MATMUL, "-i", tmp_path / "in.npz", "-i", f"W={tmp_path / 'w.npy'}", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), X @ W, rtol=1e-12)


def test_eval_size_random_inputs(tmp_path):
    out = tmp_path / "y.npy"
    res = cli("eval", MATMUL, "--size", "i=3,k=4,j=2", "-o", out)
    assert res.returncode == 0, res.stderr
    Y = np.load(out)
    assert Y.shape == (3, 2)
    assert np.all(np.isfinite(Y))


def test_eval_size_fills_only_missing_inputs(matmul_files):
    X, W, tmp = matmul_files
    out = tmp / "y.npy"
    # W is given from a file; --size is there too and must not override it
    res = cli("eval", "s[j] = W[k,j]", "-i", f"W={tmp / 'w.npy'}", "--size", "k=4,j=2", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), W.sum(axis=0), rtol=1e-12)


def test_eval_scalar_result_to_npy(matmul_files):
    X, W, tmp = matmul_files
    out = tmp / "s.npy"
    res = cli("eval", "s = X[i,k]^2", "-i", f"X={tmp / 'x.npy'}", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), np.sum(X**2), rtol=1e-12)


def test_eval_prints_result(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.5, 2.25, -4.0]))
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={tmp_path / 'x.npy'}")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    numbers = [float(t) for t in re.findall(r"-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", res.stdout)]
    for v in (3.0, 4.5, -8.0):
        assert any(abs(n - v) < 1e-6 for n in numbers), (v, res.stdout)


def test_eval_prints_scalar(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, 2.0, 3.0]))
    res = cli("eval", "s = x[i] x[i]", "-i", f"x={tmp_path / 'x.npy'}")
    assert res.returncode == 0, res.stderr
    assert re.search(r"\b14(\.0*)?\b", res.stdout), res.stdout


def test_eval_program_from_file(matmul_files):
    X, W, tmp = matmul_files
    prog = tmp / "net.tc"
    prog.write_text("# matmul then relu\nM[i,j] = X[i,k] W[k,j]\nY[i,j] = relu(M[i,j])\n")
    out = tmp / "y.npy"
    res = cli("eval", "-f", prog, "-i", f"X={tmp / 'x.npy'}", "-i", f"W={tmp / 'w.npy'}", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), np.maximum(X @ W, 0), rtol=1e-12)


def test_syntax_error_shows_caret_no_traceback():
    res = cli("eval", "y[i] = = x[i]", "--size", "i=3")
    assert_clean_failure(res)
    lines = res.stderr.splitlines()
    assert any("y[i] = = x[i]" in line for line in lines), res.stderr
    assert any(line.strip() == "^" for line in lines), res.stderr


def test_syntax_error_in_file_shows_caret(tmp_path):
    prog = tmp_path / "bad.tc"
    prog.write_text("a[i] = x[i]\nb[i] = a[i] @ 2\n")
    res = cli("eval", "-f", prog, "--size", "i=3")
    assert_clean_failure(res)
    assert "b[i] = a[i] @ 2" in res.stderr
    caret_lines = [line for line in res.stderr.splitlines() if line.strip() == "^"]
    assert caret_lines, res.stderr


def test_missing_input_without_size(matmul_files):
    X, W, tmp = matmul_files
    res = cli("eval", MATMUL, "-i", f"X={tmp / 'x.npy'}")
    assert_clean_failure(res)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "W" in res.stderr


def test_shape_mismatch_clean(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 4)))
    np.save(tmp_path / "w.npy", np.ones((5, 2)))
    res = cli("eval", MATMUL, "-i", f"X={tmp_path / 'x.npy'}", "-i", f"W={tmp_path / 'w.npy'}")
    assert_clean_failure(res)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "k" in res.stderr


def test_object_array_refused(tmp_path):
    bad = tmp_path / "obj.npy"
    np.save(bad, np.array([{}], dtype=object), allow_pickle=True)
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={bad}")
    assert_clean_failure(res)


def test_missing_file_clean(tmp_path):
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={tmp_path / 'does_not_exist.npy'}")
    assert_clean_failure(res)


def test_object_array_in_npz_refused(tmp_path):
    bad = tmp_path / "obj.npz"
    np.savez(bad, x=np.array([{}], dtype=object))
    res = cli("eval", "y[i] = 2 x[i]", "-i", bad)
    assert_clean_failure(res)


def test_corrupt_npy_refused(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"this is not an npy file")
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={bad}")
    assert_clean_failure(res)


def test_unknown_function_clean():
    res = cli("eval", "y[i] = foo(x[i])", "--size", "i=3")
    assert_clean_failure(res)
    assert "foo" in res.stderr


def test_impossible_size_clean():
    # far too large to allocate: a clean one-line error, not a MemoryError traceback
    res = cli("eval", "y[i] = 2 x[i]", "--size", f"i={10**15}")
    assert_clean_failure(res)
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_output_to_missing_directory_clean(tmp_path):
    np.save(tmp_path / "x.npy", np.ones(3))
    out = tmp_path / "no" / "such" / "y.npy"
    res = cli("eval", "y[i] = 2 x[i]", "-i", f"x={tmp_path / 'x.npy'}", "-o", out)
    assert_clean_failure(res)

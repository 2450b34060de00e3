"""Seeing and trusting a derivative (issue 14): explicit sums (``explain``), labelled
einsum strings, ``derive -o``, the note on unused ``.npz`` keys, and tensor-network
diagrams."""

from __future__ import annotations

import numpy as np
import pytest
from test_cli import cli

import tensorcalc as tc
from tensorcalc.cli import labelled_einsums
from tensorcalc.ir import statement_refs

# --- explain ----------------------------------------------------------------------

EXPLAINED = [
    "n = sqrt(x[i]^2)",
    "r = (x[i]-y[i])^2/(x[j]^2)",
    "Y[i,j] = X[i,k] W[k,j] + b[k]",
    "y[i] = exp(A[i,j] x[j] + c[j])",
    "s = x[i] tanh(A[i,j] y[j])",
    "l[n] = log(sum[j](exp(Z[n,j])))",
    "L = sum[i](softplus(-y[i] z[i]))",
    "L = softplus(-y[i] z[i])",
    "t = A[i,i]",
    "y[i] = (A[i,j] x[j] + b[i]) c[i]",
    "H[b,h] = tanh(X[b,d] W[d,h] + c[h])\nP[b,o] = H[b,h] V[h,o]\nL = (P[b,o] - T[b,o])^2",
    "input x[p]\ng[p] = 1",
]

SIZES = {"i": 3, "j": 3, "k": 4, "n": 2, "b": 2, "h": 3, "d": 4, "o": 2, "p": 3}


def _arrays(p: tc.Program, source: str) -> dict[str, np.ndarray]:
    g = np.random.default_rng(7)
    shapes: dict[str, tuple[int, ...]] = {}
    for st in p.statements:
        for r in statement_refs(st):
            shapes.setdefault(r.name, tuple(SIZES[i.rstrip("0123456789")] for i in r.indices))
    for name in p.accepts:  # declared inputs: the declaration gives the indices
        if name not in shapes:
            decl = source.split("\n")[0]
            axes = decl.split(name + "[")[1].split("]")[0].split(",")
            shapes[name] = tuple(SIZES[a] for a in axes)
    return {n: g.uniform(0.5, 1.5, shapes[n]) for n in p.accepts}


@pytest.mark.parametrize("source", EXPLAINED)
def test_explained_program_compiles_to_the_same_numbers(source):
    p = tc.compile(source)
    text = tc.explain(source)
    q = tc.compile(text)
    assert q.inputs == p.inputs
    arrays = _arrays(p, source)
    np.testing.assert_allclose(q(**arrays), p(**arrays), rtol=1e-12)


@pytest.mark.parametrize("source", EXPLAINED)
def test_every_sum_is_written_out(source):
    # every summed index of every term appears in a sum[...]: none is left implied
    text = tc.explain(source)
    p = tc.compile(source)
    for st in p.statements:
        for t in st.rhs.terms:
            for i in t.summed:
                assert f"sum[{i}" in text or f",{i}]" in text, (i, text)


def test_explain_sqrt_trap():
    text = tc.explain("n = sqrt(x[i]^2)")
    lines = text.splitlines()
    assert lines[0] == "n = sum[i](sqrt(x[i]^2))"
    assert lines[1].startswith("# i: summed outside sqrt(...)")
    assert "sqrt(sum[i](...))" in lines[1]


def test_explain_double_sum():
    text = tc.explain("r = (x[i]-y[i])^2/(x[j]^2)")
    assert text.splitlines()[0] == "r = sum[i,j]((x[i] - y[i])^2 / x[j]^2)"
    assert "double sum" in text


def test_explain_index_summed_separately_in_a_term():
    text = tc.explain("Y[i,j] = X[i,k] W[k,j] + b[k]")
    assert text.splitlines()[0] == "Y[i,j] = sum[k](X[i,k] W[k,j]) + sum[k](b[k])"
    assert "k in the 2nd term" in text and "1st term" in text


def test_explain_no_note_where_nothing_surprises():
    assert tc.explain("Y[i,j] = X[i,k] W[k,j]") == "Y[i,j] = sum[k](X[i,k] W[k,j])"
    assert tc.explain("L = sum[i](softplus(-y[i] z[i]))") == "L = sum[i](softplus(-y[i] z[i]))"
    assert tc.explain("s = x[i] tanh(A[i,j] y[j])") == \
        "s = sum[i](x[i] tanh(sum[j](A[i,j] y[j])))"


def test_explain_renames_an_inner_index_that_an_outer_sum_holds():
    text = tc.explain("y[i] = exp(A[i,j] x[j] + c[j])")
    first = text.splitlines()[0]
    assert first.startswith("y[i] = sum[j](exp(sum[j1](")
    assert "exp(sum[j](...))" in text


def test_explain_cli_and_help():
    res = cli("explain", "n = sqrt(x[i]^2)")
    assert res.returncode == 0, res.stderr
    assert res.stdout == tc.explain("n = sqrt(x[i]^2)") + "\n"
    top = cli("--help")
    assert "explain" in top.stdout


# --- CLI: labelled einsum, derive -o, .npz notes --------------------------------------


def test_einsum_format_labels_each_operand():
    res = cli("derive", "y[p] = W[k,p] x[k]", "--wrt", "x", "--format", "einsum")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "qp->qp    # dy_dx: W[q,p]\n"
    res = cli("derive", "y[p] = W[k,p] x[k]", "--wrt", "W", "--format", "einsum")
    # a delta is no operand: its tie is written onto the diagonal after the contraction
    assert res.stdout == "q->q    # dy_dW: x[q]\n"


def test_einsum_labels_name_nested_operands_in_order():
    p = tc.compile("H[b,h] = tanh(X[b,d] W[d,h] + c[h])")
    text = labelled_einsums(p)
    assert text.splitlines() == [
        "bh->bh       # H: tanh(...)[b,h]",
        "bd,dh->bh    # H, in tanh: X[b,d], W[d,h]",
        "h->h         # H, in tanh: c[h]",
    ]
    # one label a contraction, the specs in the order Program.einsum gives
    assert [line.split("    #")[0].strip() for line in text.splitlines()] == p.einsum


@pytest.mark.parametrize("fmt", ["index", "latex", "einsum", "python"])
def test_derive_output_file_holds_the_chosen_format(tmp_path, fmt):
    out = tmp_path / "d.out"  # exactly this path: no extension added
    res = cli("derive", "Y[i,j] = X[i,k] W[k,j]", "--wrt", "X", "--format", fmt, "-o", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    printed = cli("derive", "Y[i,j] = X[i,k] W[k,j]", "--wrt", "X", "--format", fmt)
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.out"]


def test_derive_output_to_a_directory_is_refused(tmp_path):
    res = cli("derive", "Y[i,j] = X[i,k] W[k,j]", "--wrt", "X", "-o", tmp_path)
    assert res.returncode == 2
    assert "directory" in res.stderr and "Traceback" not in res.stderr


def test_npz_keys_the_program_does_not_use_are_named_on_stderr(tmp_path):
    g = np.random.default_rng(3)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 2))
    np.savez(tmp_path / "in.npz", X=X, W=W, Z=np.zeros(2), extra=np.ones(1))
    out = tmp_path / "y.npy"
    res = cli("eval", "Y[i,j] = X[i,k] W[k,j]", "-i", tmp_path / "in.npz", "-o", out)
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(np.load(out), X @ W)
    notes = res.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("tensorcalc: note: ")
    assert "Z" in notes[0] and "extra" in notes[0] and "in.npz" in notes[0]


def test_npz_with_only_used_keys_prints_no_note(tmp_path):
    np.savez(tmp_path / "in.npz", X=np.ones((2, 2)), W=np.ones((2, 2)))
    res = cli("eval", "Y[i,j] = X[i,k] W[k,j]", "-i", tmp_path / "in.npz")
    assert res.returncode == 0 and res.stderr == ""

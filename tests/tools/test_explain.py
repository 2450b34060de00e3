"""Seeing and trusting a derivative: explicit sums (``explain``), labelled
einsum strings, ``derive -o``, the note on unused ``.npz`` keys, and tensor-network
diagrams."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from support import ROOT, cli

import tensorcalc as tc
from tensorcalc.ir import Call, Delta, Ref, Statement, statement_refs
from tensorcalc.tools.cli import labelled_einsums

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

#: The programs above that are a trap of the convention: compiling them warns.
TRAPPED = {"y[i] = exp(A[i,j] x[j] + c[j])"}

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


def _compiled(source: str) -> tc.Program:
    """``source`` compiled: with the warning it gives where it is a trap; strictly (no
    trap) otherwise."""
    if source not in TRAPPED:
        return tc.compile(source, strict=True)
    with pytest.warns(tc.TensorCalcWarning, match="summed inside"):
        return tc.compile(source)


@pytest.mark.parametrize("source", EXPLAINED)
def test_explained_program_compiles_to_the_same_numbers(source):
    p = _compiled(source)
    text = tc.explain(source)
    q = tc.compile(text, strict=True)  # every sum is explicit: no trap
    assert q.inputs == p.inputs
    arrays = _arrays(p, source)
    np.testing.assert_allclose(q(**arrays), p(**arrays), rtol=1e-12)


@pytest.mark.parametrize("source", EXPLAINED)
def test_every_sum_is_written_out(source):
    # every summed index of every term appears in a sum[...]: none is left implied
    text = tc.explain(source)
    p = _compiled(source)
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


# --- diagrams -------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _by_class(element, cls, tag="g"):
    return [e for e in element.iter(SVG + tag) if e.get("class") == cls]


def _node_label(f):
    if isinstance(f, Ref):
        return f.name
    return None  # an expression, checked in tests/render/test_diagram.py


def check_diagram(svg: str, st: Statement) -> list[ET.Element]:
    """The picture of each term of ``st`` against the term: one node a factor that is not
    a delta, one line end on a node for each use of a summed index by that node, an open
    end labelled with each free index, a wire joining the two ends of each delta."""
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    panels = _by_class(root, "term")
    assert len(panels) == len(st.rhs.terms)
    for panel, t in zip(panels, st.rhs.terms):
        factors = [f for f in t.factors if not isinstance(f, Delta)]
        nodes = _by_class(panel, "node")
        assert len(nodes) == len(factors)
        for e, f in zip(nodes, factors):
            if _node_label(f) is not None:
                assert e.get("data-name") == _node_label(f)
            if isinstance(f, Call):
                assert e.get("data-name").startswith(f.fn + "(")
            expected = f.indices if isinstance(f, Ref) else f.free
            assert e.get("data-indices") == ",".join(expected)
        paths = [e for e in panel if e.tag == SVG + "path"]
        deltas = [f for f in t.factors if isinstance(f, Delta)]
        tied = {i for d in deltas for i in (d.i, d.j)}

        def node_ends(index, paths=paths):
            return sorted(x for p in paths if p.get("data-index") == index
                          for x in (p.get("data-from"), p.get("data-to")) if x[0] == "n")

        def node_uses(index, nodes=nodes):
            return sorted(e.get("data-id") for e in nodes
                          for i in e.get("data-indices").split(",") if i == index)

        for k in t.summed - tied:  # contractions: edges, one end per use
            assert node_ends(k) == node_uses(k), (k, svg)
            assert {p.get("class") for p in paths if p.get("data-index") == k} <= {"edge"}
        for i in set(t.free) - tied:  # free indices: legs from each use to the open end
            assert node_ends(i) == node_uses(i), (i, svg)
            assert any(f"o:{i}" in (p.get("data-from"), p.get("data-to")) for p in paths) or \
                not node_uses(i)
        opens = [e.get("data-index") for e in _by_class(panel, "open")]
        assert sorted(opens) == sorted(t.free)
        for d in deltas:
            wires = [p for p in paths if p.get("class") == "wire"
                     and set(p.get("data-index").split(",")) >= {d.i, d.j}]
            assert wires, (d, svg)
            if d.i in t.free and d.j in t.free:
                assert {(w.get("data-from"), w.get("data-to")) for w in wires} & \
                    {(f"o:{d.i}", f"o:{d.j}"), (f"o:{d.j}", f"o:{d.i}")}
    return panels


def test_diagram_of_matrix_product_wrt_X_has_a_delta_wire():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X")
    svg = d.diagram()
    (panel,) = check_diagram(svg, d.statement(d.result))
    (node,) = _by_class(panel, "node")
    assert node.get("data-name") == "W"
    (wire,) = [p for p in panel if p.get("class") == "wire"]
    assert {wire.get("data-from"), wire.get("data-to")} == {"o:i", "o:p"}
    legs = [p for p in panel if p.get("class") == "leg"]
    assert sorted(p.get("data-index") for p in legs) == ["j", "q"]
    assert sorted(e.get("data-index") for e in _by_class(panel, "open")) == ["i", "j", "p", "q"]
    assert d._repr_svg_() == svg


def test_diagram_of_an_mlp_gradient():
    src = ("H[b,h] = tanh(X[b,d] W[d,h] + c[h])\nP[b,o] = H[b,h] V[h,o]\n"
           "L = (P[b,o] - T[b,o])^2")
    d = tc.derive(src, "W")
    (panel,) = check_diagram(d.diagram(), d.statement(d.result))
    # dL_dW[p,q] = H_bar[k,q] X[k,p] (1 - H[k,q]^2): k meets three nodes at a junction
    names = [e.get("data-name") for e in _by_class(panel, "node")]
    assert "H_bar" in names and "X" in names and len(names) == 3
    assert _by_class(panel, "junction", tag="circle")
    every = d.diagram(every_statement=True)
    for panel, st in zip(_by_statement(every), d.statements):
        check_diagram(panel, st)


def _by_statement(svg):
    """One SVG text a statement, cut from a diagram of every statement."""
    root = ET.fromstring(svg)
    out: dict[str, list[ET.Element]] = {}
    for g in _by_class(root, "term"):
        out.setdefault(g.get("data-statement"), []).append(g)
    for panels in out.values():
        wrapper = ET.Element(SVG + "svg")
        wrapper.extend(panels)
        yield ET.tostring(wrapper, encoding="unicode")


def test_diagram_of_a_sigmoid_jacobian():
    d = tc.derive("y[i] = sigmoid(W[i,j] x[j])", "x")
    (panel,) = check_diagram(d.diagram(), d.statement(d.result))
    # dy_dx[i,p] = W[i,p] y[i] (1 - y[i]): i is shared by three nodes and left open
    i_lines = [p for p in panel if p.tag == SVG + "path" and p.get("data-index") == "i"]
    assert len(i_lines) == 4 and {p.get("data-from") for p in i_lines} == {"j:i"}


@pytest.mark.parametrize("src", [
    "t = A[i,i]",
    "d[i] = A[i,i]",
    "s[i] = X[i,j]",
    "s = A[i,j] B[i,j] + A[i,i] - 2 x[i] y[i] z[i]",
    "y[i] = W[i,j] x[j] + b[i]",
    "l[n] = log(sum[j](exp(Z[n,j])))",
    "r = (x[i]-y[i])^2/(x[j]^2)",
    "c = 3",
])
def test_diagram_matches_every_term(src):
    p = tc.compile(src)
    check_diagram(p.diagram(), p.statement(p.result))


@pytest.mark.parametrize("src,wrt", [
    ("s = A[i,j] B[i,j] + A[i,i]", "A"),
    ("y[i] = x[i] + sum[j](x[j])", "x"),
    ("L = (X[n,d] w[d] - y[n])^2", "w"),
])
def test_diagram_of_derivatives_matches_every_term(src, wrt):
    d = tc.derive(src, wrt)
    check_diagram(d.diagram(), d.statement(d.result))


def test_diagram_is_deterministic():
    a = tc.derive("Y[i,j] = X[i,k] W[k,j]", "W").diagram()
    b = tc.derive("Y[i,j] = X[i,k] W[k,j]", "W").diagram()
    assert a == b


def test_derive_svg_to_a_file(tmp_path):
    out = tmp_path / "d.svg"
    res = cli("derive", "Y[i,j] = X[i,k] W[k,j]", "--wrt", "X", "--format", "svg", "-o", out)
    assert res.returncode == 0, res.stderr
    text = out.read_text(encoding="utf-8")
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X")
    assert text == d.diagram()
    check_diagram(text, d.statement(d.result))


def test_committed_docs_picture_is_what_the_code_draws():
    # docs/matrix_product_wrt_X.svg is written by docs/make_diagrams.py
    committed = (ROOT / "docs" / "matrix_product_wrt_X.svg").read_text(encoding="utf-8")
    assert committed == tc.derive("Y[i,j] = X[i,k] W[k,j]", "X").diagram()


def test_the_docs_explain_examples_are_the_real_output():
    page = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    block = page.split("## Explicit sums", 1)[1].split("```\n", 2)[1]
    shown = block.split("$ tensorcalc explain ")[1:]
    assert len(shown) == 3
    for chunk in shown:
        command, _, output = chunk.partition("\n")
        assert tc.explain(command.strip().strip('"')) == output.strip("\n")

"""Seeing a derivative: LaTeX for notebooks, the names derivatives get, and messages."""

from __future__ import annotations

import pytest
from support import ROOT

import tensorcalc as tc

# --- names ---------------------------------------------------------------------------


def result_lhs(p: tc.Program) -> str:
    return str(p).splitlines()[-1].split(" = ")[0]


def test_third_derivative_counts_its_order():
    d3 = tc.derive(tc.derive(tc.grad("f = exp(x[i])", "x"), "x"), "x")
    assert d3.result == "d3f_dx3"
    assert (d3.of, d3.wrt) == ("f", ("x", "x", "x"))


def test_hessian_of_a_name_ending_in_a_digit_lists_each_derivation():
    h = tc.hessian("L = (X[n,d] W1[d] - y[n])^2", "W1")
    assert h.result == "d2L_dW1_dW1"
    assert tc.hessian("L = (X[n,d] w[d] - y[n])^2", "w").result == "d2L_dw2"


def test_mixed_second_derivative_names_both_inputs_in_order():
    g = tc.grad("L = (X[n,d] W[d] - y[n])^2 V[d]", "W")
    assert tc.derive(g, "V").result == "d2L_dW_dV"


def test_a_derivative_of_another_statement_starts_a_new_name():
    g = tc.grad("s = x[i]^2; L = s^2", "x")
    assert tc.derive(g, "x", of="s").result == "ds_dx"  # not d2...: of is not the gradient


def test_hoisted_tangents_are_named_after_their_variable():
    d = tc.derive("H[b,h] = tanh(X[b,d] W[d,h]); P[b,o] = H[b,h] V[h,o]; "
                  "Q[b,o] = exp(P[b,o]) + P[b,o]^2", "W")
    lhs = [line.split("[")[0] for line in str(d).splitlines()]
    assert "P_dot" in lhs and not any(n.startswith("dP_") for n in lhs)
    assert d.result == "dQ_dW"


def test_adjoints_keep_bar():
    g = tc.grad("H[b,h] = tanh(X[b,d] W[d,h]); L = (H[b,h] V[h] - T[b])^2", "W")
    assert any(line.startswith("H_bar") or "_bar[" in line for line in str(g).splitlines())


def test_with_result_keeps_lineage_only_for_the_same_result():
    g = tc.grad("s = x[i]^2; L = s^2", "x")
    assert g.with_result(g.result).of == "L"
    other = next(st.name for st in g.statements if st.name != g.result)
    assert g.with_result(other).of is None and g.with_result(other).wrt == ()


# --- messages ------------------------------------------------------------------------


def test_left_index_summed_inside_says_so():
    with pytest.raises(tc.ProgramError) as err:
        tc.compile("y[i] = sum[i](x[i])")
    message = str(err.value)
    assert "summed by sum[i]" in message and "cannot also label the result" in message
    assert "never appears" not in message


def test_left_index_missing_still_says_it_never_appears():
    with pytest.raises(tc.ProgramError, match="never appears on the right-hand side"):
        tc.compile("y[i] = x[j]")


def test_hessian_of_an_indexed_result_says_it_needs_a_scalar():
    with pytest.raises(tc.DerivativeError, match="hessian needs a scalar result"):
        tc.hessian("y[i] = x[i]^2", "x")


# --- LaTeX ---------------------------------------------------------------------------

MLP = """
H[b,h] = tanh(X[b,d] W[d,h] + c[h])
P[b,o] = H[b,h] V[h,o]
L      = (P[b,o] - T[b,o])^2
"""
SQRT = "y[batch,feat] = sqrt(x[batch,feat]^2 + 1e-5) / x[batch,k]"


def derivatives() -> dict[str, tc.Program]:
    return {
        "mlp gradient": tc.grad(MLP, "W"),
        "sigmoid jacobian": tc.derive("y[i] = sigmoid(x[i])", "x"),
        "hessian": tc.hessian("L = (X[n,d] W1[d] - y[n])^2", "W1"),
        "scalar hessian": tc.hessian("L = exp(c) * c + log1p(c)", "c"),
        "softplus loss": tc.grad("L = sum[i](softplus(-y[i] z[i]))", "z"),
        "sqrt and delta": tc.derive(SQRT, "x"),
        "mlp hessian": tc.hessian("H[b,h] = tanh(X[b,d] W[d,h]); L = sigmoid(H[b,h] v[h])^2",
                                  "W"),
        "third": tc.derive(tc.derive(tc.grad("f = x[i]^4 / sum[j](abs(x[j]))", "x"), "x"), "x"),
        "vjp": tc.vjp("Y[i,j] = relu(X[i,k] W[k,j])", "X"),
        "jvp": tc.jvp("Y[i,j] = expm1(X[i,k]) W[k,j]", "X"),
        "choices hessian": tc.hessian(
            "r[i] = where(x[i] > 0, maximum(x[i], y[i]), clip(x[i], -1, 1)); "
            "L = where(abs(r[i]) <= 1, 0.5 r[i]^2, abs(r[i]) - 0.5)", "x"),
    }


def render(latex: str) -> None:
    """Parse and draw one line with matplotlib's mathtext (raises on what it cannot)."""
    from io import BytesIO

    from matplotlib import mathtext

    out = BytesIO()
    mathtext.math_to_image(f"${latex}$", out, format="png")
    assert out.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", list(derivatives()))
def test_every_line_renders_with_mathtext(name):
    pytest.importorskip("matplotlib")
    d = derivatives()[name]
    lines = d.latex().split(" \\\\\n")
    assert len(lines) == len(d.statements)
    for line in lines:
        render(line)


def test_render_refuses_broken_latex():
    """The rendering check is a real parser: it refuses what LaTeX would."""
    pytest.importorskip("matplotlib")
    for bad in ["\\frac{a}", "x_{a", "\\nosuchcommand{x}"]:
        with pytest.raises(ValueError):
            render(bad)


def test_compact_renders():
    pytest.importorskip("matplotlib")
    import numpy as np

    c = tc.derive("y[i] = sigmoid(x[i])", "x").evaluate(compact=True, x=np.ones(3))
    assert c.latex().startswith("\\mathrm{dense}_{ip} = \\delta_{ip} \\mathrm{core}_{i}")
    render(c.latex())
    assert c._repr_latex_() == f"$${c.latex()}$$"
    assert "core shape (3,)" in c._repr_markdown_()
    dense = tc.derive("y[i] = x[i] + sum[j](x[j])", "x").evaluate(compact=True, x=np.ones(3))
    assert "\\delta" not in dense.latex() and "\\mathrm{core}_{ip}" in dense.latex()
    render(dense.latex())


def latex_lines(p: tc.Program) -> list[str]:
    return p.latex().split(" \\\\\n")


def test_a_gradient_reads_as_a_paper_writes_it():
    lines = latex_lines(tc.grad(MLP, "W"))
    assert lines[-1] == ("\\frac{\\partial L}{\\partial W_{pq}} = "
                         "\\bar{H}_{kq} X_{kp} \\left(1 - {H_{kq}}^{2}\\right)")
    assert lines[0] == "H_{bh} = \\tanh\\left(X_{bd} W_{dh} + c_{h}\\right)"
    assert "\\bar{P}_{bo} = 2 \\left(P_{bo} - T_{bo}\\right)" in lines
    assert "mathrm{dL" not in "".join(lines)


def test_jacobian_and_hessian_fractions():
    jac = latex_lines(tc.derive("Y[i,j] = X[i,k] W[k,j]", "X"))
    assert jac == ["\\frac{\\partial Y_{ij}}{\\partial X_{pq}} = \\delta_{ip} W_{qj}"]
    hess = latex_lines(tc.hessian("L = (X[n,d] W1[d] - y[n])^2", "W1"))[-1]
    assert hess.startswith("\\frac{\\partial^{2} L}{\\partial W1_{p} \\partial W1_{q}} = ")
    scalar = latex_lines(tc.hessian("L = exp(c) * c", "c"))[-1]
    assert scalar.startswith("\\frac{\\partial^{2} L}{\\partial c^{2}} = ")
    third = latex_lines(tc.derive(tc.derive(tc.grad("f = x[i]^4", "x"), "x"), "x"))[-1]
    assert third.startswith("\\frac{\\partial^{3} f}{\\partial x_{p} \\partial x_{q} "
                            "\\partial x_{r}} = ")


def test_functions_and_indices():
    sig = tc.derive("y[i] = sigmoid(x[i])", "x").latex()
    assert "\\sigma\\left(x_{i}\\right)" in sig and "\\delta_{ip}" in sig
    text = tc.derive(SQRT, "x").latex()
    assert "\\sqrt{10^{-5} + {x_{batch,feat}}^{2}}" in text
    assert "\\delta_{batch,p} \\delta_{feat,q}" in text
    assert "\\frac{\\partial y_{batch,feat}}{\\partial x_{pq}}" in text
    assert "operatorname{sqrt}" not in text
    soft = tc.compile("L = sum[i](softplus(-y[i] z[i]))").latex()
    assert soft == "L = \\sum_{i} \\operatorname{softplus}\\left(-y_{i} z_{i}\\right)"
    assert "\\left|x_{i}\\right|" in tc.compile("a = abs(x[i])").latex()


def test_sums_are_written_where_einstein_would_not_sum():
    # a repeated index in a product is summed silently; rule 2 and sum[] are written
    assert tc.compile("Y[i,j] = X[i,k] W[k,j]").latex() == "Y_{ij} = X_{ik} W_{kj}"
    assert tc.compile("s[i] = X[i,j]").latex() == "s_{i} = \\sum_{j} X_{ij}"
    assert tc.compile("L = (X[i,j] - Y[i,j])^2").latex() == \
        "L = \\sum_{i,j} {\\left(X_{ij} - Y_{ij}\\right)}^{2}"


def test_names_with_underscores_and_digits():
    v = tc.vjp("Y[i,j] = X[i,k] W[k,j]", "X").latex()
    assert "\\mathrm{vjp\\_X}_{pq}" in v
    d = tc.derive("H[b,h] = tanh(X[b,d] W[d,h]); P[b,o] = H[b,h] V[h,o]; "
                  "Q[b,o] = exp(P[b,o]) + P[b,o]^2", "W").latex()
    assert "\\dot{P}_{bopq}" in d
    assert tc.compile("y[i] = W1[i,j] x[j] + bias[i]").latex() == \
        "y_{i} = W1_{ij} x_{j} + \\mathrm{bias}_{i}"


def test_notebook_reprs():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X")
    assert str(d).startswith("input X[p,r], W[q,j]\n")
    assert "input" not in d.latex()  # the declaration is left out of the LaTeX
    assert d._repr_latex_() == ("$$\\begin{aligned}\n\\frac{\\partial Y_{ij}}{\\partial X_{pq}} "
                                "&= \\delta_{ip} W_{qj}\n\\end{aligned}$$")
    assert d._repr_markdown_() == "`input X[p,r], W[q,j]`\n\n" + d._repr_latex_()
    g = tc.grad(MLP, "W")
    assert g._repr_markdown_() == g._repr_latex_()
    assert g._repr_latex_().count("&=") == len(g.statements)


def test_index_notation_is_unchanged():
    assert str(tc.grad(MLP, "W")) == (
        "H[b,h] = tanh(X[b,d] W[d,h] + c[h])\n"
        "P[b,o] = H[b,h] V[h,o]\n"
        "P_bar[b,o] = 2 (P[b,o] - T[b,o])\n"
        "H_bar[b,h] = P_bar[b,k] V[h,k]\n"
        "dL_dW[p,q] = H_bar[k,q] X[k,p] (1 - H[k,q]^2)")
    assert str(tc.compile("y = x[i]^0.5 + 1e-5")) == "y = x[i]^0.5 + 1e-05"


def test_the_docs_show_the_real_output():
    page = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    section = page.split("## In a notebook", 1)[1]
    block = section.split("```\n", 2)[1]
    assert block.rstrip("\n") == tc.grad(MLP, "W")._repr_latex_()


def test_a_compact_value_kept_dense_is_refused_without_advising_compact():
    import numpy as np

    d = tc.derive("y[i] = x[i] + sum[j](x[j])", "x")
    old = tc.set_memory_limit(10**6)
    try:
        with pytest.raises(tc.MemoryLimitError) as err:
            d.evaluate(compact=True, x=np.ones(1000))
    finally:
        tc.set_memory_limit(old)
    message = str(err.value)
    assert "compact=True keeps it dense" in message and "vjp or jvp" in message
    assert "evaluate it with compact=True" not in message

"""Seeing a derivative: LaTeX for notebooks, the names derivatives get, and messages."""

from __future__ import annotations

import pytest

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

"""Two defects of the calculus fixed: ``x^p`` at ``x = 0`` and the Hessian of a
non-scalar.
Values are checked against central finite differences (tests/fd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.ir import Call, Power, Statement, const_value, needed_statements, refs

POWER_SUM = "s = sum[i](x[i]^p)"


# --- x^p with an exponent free of the variable --------------------------------


def test_grad_of_power_is_finite_at_zero():
    g = tc.grad(POWER_SUM, "x")
    value = g(x=np.array([0.0, 1.0, -2.0]), p=2.0)
    np.testing.assert_array_equal(value, [0.0, 2.0, -4.0])


def _factors(st: Statement):
    stack = [st.rhs]
    while stack:
        s = stack.pop()
        for t in s.terms:
            for f in t.factors:
                yield f
                if isinstance(f, Call):
                    stack.append(f.arg)
                elif isinstance(f, Power):
                    stack += [f.base, f.exponent]


def test_power_rule_neither_divides_nor_takes_a_log():
    g = tc.grad(POWER_SUM, "x")
    result = g.statement(g.result)
    factors = list(_factors(result))
    assert not any(isinstance(f, Call) and f.fn == "log" for f in factors), str(g)
    # no division by the base: no x^-1, only x^(p - 1)
    assert not any(isinstance(f, Power) and const_value(f.exponent) is not None
                   and const_value(f.exponent) < 0 for f in factors), str(g)
    lowered = [f for f in factors if isinstance(f, Power) and any(
        r.name == "p" for r in refs(f.exponent))]
    assert lowered, str(g)
    text = str(g)
    assert "log" not in text and "/" not in text, text
    assert "x[p]^(" in text, text


@pytest.mark.parametrize("p", [2.0, 3.0])
@pytest.mark.parametrize("x", [
    np.array([0.7, -1.3, 2.1]),   # away from 0
    np.array([0.0, 0.0, 0.0]),    # exactly at 0
    np.array([0.0, 1.0, -2.0]),
])
def test_power_derivatives_against_finite_differences(p, x):
    arrays = {"x": x, "p": np.float64(p)}
    g = np.asarray(tc.grad(POWER_SUM, "x")(**arrays))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, numeric_jacobian(POWER_SUM, "x", arrays), atol=1e-8)
    np.testing.assert_allclose(g, p * x ** (p - 1), atol=1e-12)
    h = np.asarray(tc.hessian(POWER_SUM, "x")(**arrays))
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h, np.diag(p * (p - 1) * x ** (p - 2)), atol=1e-12)
    np.testing.assert_allclose(h, numeric_jacobian(tc.grad(POWER_SUM, "x"), "x", arrays),
                               atol=1e-6)


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_power_jacobian_jvp_vjp_at_zero(p):
    src = "y[i] = x[i]^p"
    x = np.array([0.0, 0.5, -1.5])
    arrays = {"x": x, "p": np.float64(p)}
    want = np.diag(p * x ** (p - 1))
    np.testing.assert_allclose(tc.derive(src, "x")(**arrays), want, atol=1e-12)
    v = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(tc.jvp(src, "x")(**arrays, V=v), want @ v, atol=1e-12)
    np.testing.assert_allclose(tc.vjp(src, "x")(**arrays, G=v), v @ want, atol=1e-12)


def test_power_with_exponent_depending_on_the_variable_keeps_the_general_rule():
    src = "s = sum[i](x[i]^(p x[i]))"
    arrays = {"x": np.array([0.4, 1.2, 2.0]), "p": np.float64(1.5)}
    g = tc.grad(src, "x")
    assert "log" in str(g)
    np.testing.assert_allclose(g(**arrays), numeric_jacobian(src, "x", arrays), rtol=1e-6)


def test_derivative_with_respect_to_the_exponent():
    src = "s = sum[i](x[i]^p)"
    arrays = {"x": np.array([0.4, 1.2, 2.0]), "p": np.float64(2.5)}
    np.testing.assert_allclose(tc.grad(src, "p")(**arrays),
                               numeric_jacobian(src, "p", arrays), rtol=1e-6)


# --- hessian of a non-scalar --------------------------------------------------------


def test_hessian_of_non_scalar_names_hessian():
    with pytest.raises(tc.DerivativeError) as err:
        tc.hessian("y[i] = x[i]^2", "x")
    message = str(err.value)
    assert message.startswith("hessian needs a scalar result"), message
    assert "grad" not in message
    assert "derive" in message and "y" in message


def test_grad_of_non_scalar_still_names_grad():
    with pytest.raises(tc.DerivativeError, match="^grad needs a scalar result"):
        tc.grad("y[i] = x[i]^2", "x")


def test_needed_statements_matches_program_needed():
    p = tc.compile("a[i] = x[i]^2; b[i] = y[i] + 1; c = a[i] x[i]; d = b[i]")
    assert needed_statements(p.statements, "c") == p.with_result("c").needed
    assert [st.name for st in needed_statements(p.statements, "c")] == ["a", "c"]
    assert [st.name for st in needed_statements(p.statements, "d")] == ["b", "d"]


def test_jvp_with_named_axes_adds_none():
    src = "y[i] = W[i,j] x[j]"
    rng = np.random.default_rng(3)
    arrays = {"W": rng.normal(size=(3, 4)), "x": rng.normal(size=4)}
    v = rng.normal(size=4)
    for wrt in ("x", "x[j]", "x[p]"):
        q = tc.jvp(src, wrt)
        assert len(q.statement(q.result).indices) == 1, (wrt, str(q))
        np.testing.assert_allclose(q(**arrays, V=v), arrays["W"] @ v, rtol=1e-12)


def test_reserved_names_are_checked():
    with pytest.raises(tc.DerivativeError, match="already a name"):
        tc.vjp("y[i] = W[i,j] x[j]", "x", cotangent="W")
    with pytest.raises(tc.DerivativeError, match="already a name"):
        tc.jvp("y[i] = W[i,j] x[j]", "x", tangent="y")

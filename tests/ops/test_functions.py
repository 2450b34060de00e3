"""Elementwise functions (docs/functions.md): values against NumPy, and stable sigmoid/softplus."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tensorcalc as tc


def _sigmoid(x):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _softplus(x):
    return np.logaddexp(0.0, x)


G = np.random.default_rng(100)
WIDE = G.uniform(-3.0, 3.0, 7)
POSITIVE = G.uniform(0.1, 5.0, 7)
SMALL = G.uniform(-1.2, 1.2, 7)  # inside (-pi/2, pi/2) for tan
ABOVE_M1 = G.uniform(-0.9, 3.0, 7)
# relu, abs and sign at points away from 0 (plus 0 exactly for relu/abs, whose value is 0 there)
NONZERO = np.concatenate([G.uniform(0.2, 3.0, 4), -G.uniform(0.2, 3.0, 4)])

REQUIRED = [
    ("exp", np.exp, WIDE),
    ("log", np.log, POSITIVE),
    ("sqrt", np.sqrt, POSITIVE),
    ("sin", np.sin, WIDE),
    ("cos", np.cos, WIDE),
    ("tan", np.tan, SMALL),
    ("tanh", np.tanh, WIDE),
    ("sigmoid", _sigmoid, WIDE),
    ("softplus", _softplus, WIDE),
    ("relu", lambda x: np.maximum(x, 0.0), np.append(NONZERO, 0.0)),
    ("abs", np.abs, np.append(NONZERO, 0.0)),
]

OPTIONAL = [
    ("log1p", np.log1p, ABOVE_M1),
    ("expm1", np.expm1, WIDE),
    ("square", np.square, WIDE),
    ("sign", np.sign, NONZERO),
    ("cosh", np.cosh, WIDE),
    ("sinh", np.sinh, WIDE),
    ("step", lambda x: (x > 0).astype(float), NONZERO),
    ("erf", np.vectorize(math.erf), WIDE),
    ("erfc", np.vectorize(math.erfc), WIDE),
    ("gelu", np.vectorize(lambda v: 0.5 * v * math.erfc(-v / math.sqrt(2.0))), WIDE),
    ("softsign", lambda x: x / (1 + np.abs(x)), WIDE),
    ("logsigmoid", lambda x: -np.logaddexp(0.0, -x), WIDE),
    ("lgamma", np.vectorize(math.lgamma), POSITIVE),
]


def _function_table():
    try:
        from tensorcalc.ops.functions import FUNCTIONS
    except Exception:  # pragma: no cover - module missing while being written
        return {}
    return FUNCTIONS


@pytest.mark.parametrize("name,ref,x", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_required_function(name, ref, x):
    out = tc.evaluate(f"y[i] = {name}(x[i])", x=x)
    np.testing.assert_allclose(np.asarray(out), ref(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,ref,x", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_required_function_compiled_2d(name, ref, x):
    X = np.stack([x, x[::-1], x * 0.5 if name not in ("log", "sqrt") else x * 1.5])
    out = tc.compile(f"Y[i,j] = {name}(X[i,j])")(X=X)
    np.testing.assert_allclose(np.asarray(out), ref(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,ref,x", OPTIONAL, ids=[r[0] for r in OPTIONAL])
def test_optional_function(name, ref, x):
    if name not in _function_table():
        pytest.skip(f"{name} is not in tensorcalc.ops.functions.FUNCTIONS")
    out = tc.evaluate(f"y[i] = {name}(x[i])", x=x)
    np.testing.assert_allclose(np.asarray(out), ref(x), rtol=1e-12, atol=1e-14)


def test_required_functions_are_in_table():
    table = _function_table()
    for name, _, _ in REQUIRED:
        assert name in table, name


def test_function_of_expression():
    g = np.random.default_rng(101)
    A, x, b = g.standard_normal((3, 4)), g.standard_normal(4), g.standard_normal(3)
    out = tc.evaluate("y[i] = sigmoid(A[i,j] x[j] + b[i])", A=A, x=x, b=b)
    np.testing.assert_allclose(np.asarray(out), _sigmoid(A @ x + b), rtol=1e-12)


def test_nested_functions():
    x = np.random.default_rng(102).uniform(0.1, 2.0, 5)
    out = tc.evaluate("y[i] = log(exp(sqrt(x[i])) + sin(x[i])^2)", x=x)
    expected = np.log(np.exp(np.sqrt(x)) + np.sin(x) ** 2)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12)


def test_function_with_space_before_paren():
    x = np.random.default_rng(103).standard_normal(4)
    out = tc.evaluate("y[i] = tanh (x[i])", x=x)
    np.testing.assert_allclose(np.asarray(out), np.tanh(x), rtol=1e-12)


# --- numerical stability -----------------------------------------------------------

EXTREME = np.array([800.0, -800.0, 30.0, -30.0, 0.0, 700.0, -700.0, 1e5, -1e5])


def _strict(fn):
    """Run ``fn`` with every NumPy overflow/invalid/divide and every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return fn()


def test_sigmoid_extremes():
    out = np.asarray(_strict(lambda: tc.evaluate("y[i] = sigmoid(x[i])", x=EXTREME)))
    assert np.all(np.isfinite(out))
    assert out[0] == 1.0  # sigmoid(800)
    assert 0.0 <= out[1] < 1e-300  # sigmoid(-800)
    np.testing.assert_allclose(out[2], 1.0 / (1.0 + np.exp(-30.0)), rtol=1e-15)
    np.testing.assert_allclose(out[3], 9.357622968840175e-14, rtol=1e-12)
    assert out[4] == 0.5
    assert out[7] == 1.0
    assert 0.0 <= out[8] < 1e-300
    np.testing.assert_allclose(out[5], 1.0, rtol=1e-15)
    np.testing.assert_allclose(out[6], np.exp(-700.0), rtol=1e-10)


def test_softplus_extremes():
    out = np.asarray(_strict(lambda: tc.evaluate("y[i] = softplus(x[i])", x=EXTREME)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], 800.0, rtol=1e-15)  # softplus(800)
    assert 0.0 <= out[1] < 1e-300  # softplus(-800)
    np.testing.assert_allclose(out[2], 30.0 + np.log1p(np.exp(-30.0)), rtol=1e-15)
    np.testing.assert_allclose(out[3], np.log1p(np.exp(-30.0)), rtol=1e-12)
    np.testing.assert_allclose(out[4], np.log(2.0), rtol=1e-15)
    np.testing.assert_allclose(out[5], 700.0, rtol=1e-15)
    np.testing.assert_allclose(out[6], np.exp(-700.0), rtol=1e-10)
    np.testing.assert_allclose(out[7], 1e5, rtol=1e-15)
    assert 0.0 <= out[8] < 1e-300


@pytest.mark.parametrize(
    "x,expected", [(800.0, 1.0), (-800.0, 0.0), (-30.0, 9.357622968840175e-14)]
)
def test_sigmoid_scalar_statement(x, expected):
    out = _strict(lambda: tc.evaluate("s = sigmoid(a)", a=np.asarray(x)))
    assert np.isfinite(out)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    "x,expected", [(800.0, 800.0), (-800.0, 0.0), (30.0, 30.0 + np.log1p(np.exp(-30.0)))]
)
def test_softplus_scalar_statement(x, expected):
    out = _strict(lambda: tc.evaluate("s = softplus(a)", a=np.asarray(x)))
    assert np.isfinite(out)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12, atol=1e-300)


def test_logistic_loss_large_margins_finite():
    y = np.array([1.0, -1.0, 1.0, -1.0])
    z = np.array([900.0, 900.0, -900.0, -900.0])
    out = _strict(lambda: tc.evaluate("L = sum[i](softplus(-y[i] z[i]))", y=y, z=z))
    np.testing.assert_allclose(np.asarray(out), 1800.0, rtol=1e-12)


def test_sigmoid_float32_extremes():
    x = np.array([100.0, -100.0, 0.0], dtype=np.float32)
    out = np.asarray(_strict(lambda: tc.evaluate("y[i] = sigmoid(x[i])", x=x)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [1.0, 0.0, 0.5], atol=1e-30)

"""Derivatives (the language contract, sections 2-3): every rule, symbolic forms, Matrix Cookbook
identities, vjp/jvp, compact Jacobians and round trips, all checked numerically
against central finite differences (tests/fd.py) in float64.
"""

from __future__ import annotations

import math
import re
import tracemalloc
import zlib

import numpy as np
import pytest
from fd import numeric_jacobian, random_arrays

import tensorcalc as tc

RTOL = 1e-6
ATOL = 1e-6

# distinct axis lengths so that a transposed layout can never pass by accident
SIZES = {
    "i": 3, "j": 4, "k": 2, "l": 5, "n": 5, "d": 3, "c": 4, "b": 4, "h": 3, "o": 2,
    "p": 2, "q": 5,
}


# --------------------------------------------------------------------------- helpers

def _wrt_name(wrt: str) -> str:
    return wrt.split("[")[0].strip()


def _close(a, b, rtol=RTOL, atol=ATOL):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _accepted(q: tc.Program, arrays: dict) -> dict:
    return {k: v for k, v in arrays.items() if k in q.accepts}


STR_ROUND_TRIPS: list[str] = []  # derivatives whose str() was re-parsed and checked


def roundtrip(d: tc.Program, arrays: dict, expected=None) -> None:
    """docs/api.md: ``d.source()`` re-parses to equal values; ``str(d)`` too where it can run."""
    if expected is None:
        expected = d(**arrays)
    q = tc.compile(d.source())
    _close(q(**_accepted(q, arrays)), expected, rtol=1e-12, atol=1e-12)

    text = str(d)
    try:
        r = tc.compile(text)
    except tc.ProgramError as err:
        # str() may leave out the size anchor of an axis; that is what source() is for
        assert "never appears on the right" in str(err), err
        return
    if not set(r.needed_inputs) <= set(arrays):
        return
    try:
        value = r(**_accepted(r, arrays))
    except tc.InputError as err:
        assert "size" in str(err), err
        return
    _close(value, expected, rtol=1e-12, atol=1e-12)
    STR_ROUND_TRIPS.append(text)


def check(src, wrt, sizes=None, positive=(), arrays=None, seed=0, rtol=RTOL, atol=ATOL,
          of=None):
    """derive(src, wrt) against central finite differences, plus the round trip."""
    sizes = {**SIZES, **(sizes or {})}
    if arrays is None:
        arrays = random_arrays(src, sizes, seed=seed, positive=positive)
    d = tc.derive(src, wrt, of=of) if of is not None else tc.derive(src, wrt)
    J = np.asarray(d(**arrays))
    prog = tc.compile(src) if of is None else tc.compile(src, result=of)
    N = numeric_jacobian(prog, _wrt_name(wrt), arrays)
    assert J.shape == N.shape
    _close(J, N, rtol=rtol, atol=atol)
    roundtrip(d, arrays, J)
    return d, arrays, J


def rhs(d: tc.Program) -> str:
    """Right-hand side of the last printed statement."""
    return str(d).strip().splitlines()[-1].split("=", 1)[1].strip()


def lhs(d: tc.Program) -> str:
    return str(d).strip().splitlines()[-1].split("=", 1)[0].strip()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _away_from_zero(rng, shape, lo=0.3, hi=1.2):
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


# --------------------------------------------------------------------------- 1. rules

@pytest.mark.parametrize("src, wrt", [
    ("Y[i,j] = X[i,k] W[k,j]", "X"),
    ("Y[i,j] = X[i,k] W[k,j]", "W"),
    ("y[i] = W[i,j] x[j]", "W"),
    ("y[i] = W[i,j] x[j]", "x"),
    ("y[i] = a[i] b[i]", "a"),               # elementwise product over a free index
    ("s = x[i] x[i]", "x"),                   # same tensor twice
    ("s = a[i] X[i,j] b[j]", "X"),
    ("T[i,j,l] = A[i,k] B[k,j] C[j,l]", "B"),
    ("Y[i,j] = X[i,k] X[k,j]", "X"),          # X twice: product rule
    ("Y[j,i] = X[i,j] 3", "X"),               # transpose with a constant factor
    ("s = 2 x[i] A[i,j] x[j]", "A"),
])
def test_product_and_contraction(src, wrt):
    square = ("X[k,j]" in src and "X[i,k]" in src) or "x[i] A[i,j] x[j]" in src
    check(src, wrt, sizes={"i": 3, "k": 3, "j": 3} if square else None)


@pytest.mark.parametrize("src, wrt", [
    ("Y[i,j] = X[i,j] + b[j]", "b"),
    ("Y[i,j] = X[i,j] + b[j]", "X"),
    ("y[i] = W[i,j] x[j] + b[i]", "b"),
    ("y[i] = W[i,j] x[j] + b[i]", "x"),
    ("Y[i,j] = a[i] - b[j] + 2", "a"),
    ("Y[i,j] = a[i] - b[j] + 2", "b"),
    ("s[i] = X[i,j]", "X"),                   # rule 2: row sums
    ("y[i] = (A[i,j] x[j] + b[i]) c[i]", "c"),
    ("y[i] = (A[i,j] x[j] + b[i]) c[i]", "A"),
    ("y[i] = -x[i] + c", "x"),
])
def test_broadcasting_sum(src, wrt):
    check(src, wrt)


@pytest.mark.parametrize("src, wrt, sizes", [
    ("y[i] = x[i]^0", "x", {}),
    ("y[i] = x[i]^1", "x", {}),
    ("y[i] = -x[i]^2", "x", {}),
    ("y[i] = (-x[i])^2", "x", {}),
    ("y[i] = 1 / x[i]", "x", {}),
    ("y[i] = (x[i] + 1)^-2", "x", {}),
    ("s = sum[i](x[i]^2)^0.5", "x", {}),
    ("y[i] = x[i] / (x[j] x[j])", "x", {}),
    ("y[i] = x[i]^(2 a)", "a", {}),           # scalar exponent input
    ("y = a^b", "a", {}),                    # scalars only
    ("y = a^b", "b", {}),
    ("y[i] = a^x[i]", "x", {}),
    ("s = exp(a) x[i]", "a", {}),            # derivative w.r.t. a scalar input
    ("y[i] = exp(a) x[i]", "a", {}),
    ("c = 2; y[i] = c x[i]", "x", {}),
    ("Y[i,j] = X[j,i]", "X", {}),
    ("Y[i,j] = x[i] x[j]", "x", {"i": 3, "j": 3}),
    ("y[i,k] = A[i,j] B[j,k] A[i,j]", "A", {}),
    ("s = relu(x[i]) abs(x[i])", "x", {}),
])
def test_more_rules(src, wrt, sizes):
    check(src, wrt, sizes=sizes, positive=("x", "a"))


def test_trace_derivative_is_identity():
    d, arrays, J = check("t = A[i,i]", "A", sizes={"i": 4})
    _close(J, np.eye(4))


def test_diagonal_derivative():
    d, arrays, J = check("d[i] = A[i,i]", "A", sizes={"i": 3})
    expected = np.zeros((3, 3, 3))
    for a in range(3):
        expected[a, a, a] = 1.0
    _close(J, expected)


@pytest.mark.parametrize("src, wrt", [
    ("y[i] = A[i,i] x[i]", "A"),
    ("y[i] = A[i,i] x[i]", "x"),
    ("s = A[i,i] A[j,j]", "A"),
    ("s = X[i,j] X[j,i]", "X"),               # tr(X X)
])
def test_diagonal_in_products(src, wrt):
    check(src, wrt, sizes={"i": 4, "j": 4})


@pytest.mark.parametrize("src, wrt", [
    ("y[i] = delta[i,j] x[j]", "x"),
    ("Y[i,j] = delta[i,j] x[i]", "x"),        # diag(x)
    ("s = delta[i,j] A[i,j]", "A"),           # trace written with a delta
    ("y[i] = δ[i,j] W[j,k] x[k]", "W"),
    ("Y[i,j] = A[i,j] + delta[i,j] c", "A"),
    ("Y[i,j] = A[i,j] + delta[i,j] c", "c"),
])
def test_user_written_delta(src, wrt):
    check(src, wrt, sizes={"i": 4, "j": 4, "k": 3})


@pytest.mark.parametrize("src, wrt, positive", [
    ("l[n] = log(sum[j](exp(Z[n,j])))", "Z", ()),
    ("L = sum[i](softplus(-y[i] z[i]))", "z", ()),
    ("L = sum[i](softplus(-y[i] z[i]))", "y", ()),
    ("L = softplus(-y[i] z[i])", "z", ()),
    ("s[i] = sum[j](X[i,j] X[i,j])", "X", ()),
    ("s = sum[i,l](A[i,l] x[l] x[i])", "x", ()),
    ("y[i] = sum[j](sqrt(X[i,j]))", "X", ("X",)),
])
def test_explicit_sum(src, wrt, positive):
    check(src, wrt, positive=positive, sizes={"l": 3})


ELEMENTWISE = {
    # name: (domain sampler, numpy value)
    "exp": ("any", np.exp),
    "log": ("pos", np.log),
    "sqrt": ("pos", np.sqrt),
    "sin": ("any", np.sin),
    "cos": ("any", np.cos),
    "tan": ("small", np.tan),
    "tanh": ("any", np.tanh),
    "sigmoid": ("any", _sigmoid),
    "softplus": ("any", lambda x: np.logaddexp(0.0, x)),
    "relu": ("nonzero", lambda x: np.maximum(x, 0.0)),
    "abs": ("nonzero", np.abs),
    "log1p": ("pos", np.log1p),
    "expm1": ("any", np.expm1),
    "square": ("any", np.square),
    "sinh": ("any", np.sinh),
    "cosh": ("any", np.cosh),
    "erf": ("any", np.vectorize(math.erf)),
    "erfc": ("any", np.vectorize(math.erfc)),
    "gelu": ("any", np.vectorize(lambda v: 0.5 * v * math.erfc(-v / math.sqrt(2.0)))),
    "gelu_tanh": ("any", lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                         * (x + 0.044715 * x**3)))),
    "softsign": ("any", lambda x: x / (1 + np.abs(x))),
    "logsigmoid": ("any", lambda x: -np.logaddexp(0.0, -x)),
    "lgamma": ("pos", lambda x: _scipy_special().gammaln(x)),
    "digamma": ("pos", lambda x: _scipy_special().digamma(x)),
    "trigamma": ("pos", lambda x: _scipy_special().polygamma(1, x)),
}


def _scipy_special():
    """The reference for lgamma, digamma and trigamma (skips where scipy is missing)."""
    return pytest.importorskip("scipy.special")
REQUIRED = ["exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "softplus", "relu", "abs"]
OPTIONAL = ["log1p", "expm1", "square", "sinh", "cosh", "erf", "erfc", "gelu", "gelu_tanh",
            "softsign", "logsigmoid", "lgamma", "digamma", "trigamma"]


def _sample(kind, rng, shape):
    if kind == "pos":
        return rng.uniform(0.3, 2.0, shape)
    if kind == "small":
        return rng.uniform(-1.2, 1.2, shape)
    if kind == "nonzero":
        return _away_from_zero(rng, shape)
    return rng.uniform(-1.5, 1.5, shape)


def test_required_functions_present():
    for name in REQUIRED:
        assert name in tc.FUNCTIONS


@pytest.mark.parametrize("fn", REQUIRED + [f for f in OPTIONAL if f in tc.FUNCTIONS])
def test_elementwise_function_jacobian(fn):
    kind, ref = ELEMENTWISE[fn]
    rng = np.random.default_rng(zlib.crc32(fn.encode()))
    x = _sample(kind, rng, (5,))
    d, arrays, J = check(f"y[i] = {fn}(x[i])", "x", arrays={"x": x})
    # exactly diagonal, and the diagonal is f'(x) (checked by FD above)
    assert np.count_nonzero(J - np.diag(np.diag(J))) == 0
    # the value program is right too
    _close(tc.evaluate(f"y[i] = {fn}(x[i])", x=x), ref(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", REQUIRED + [f for f in OPTIONAL if f in tc.FUNCTIONS])
def test_elementwise_function_inside_contraction(fn):
    """f applied to a contraction, then contracted again: the chain rule through f."""
    kind, _ = ELEMENTWISE[fn]
    rng = np.random.default_rng(7 + zlib.crc32(fn.encode()))
    # choose u = A x inside the domain: A >= 0 with positive x, scaled small
    x = np.abs(rng.uniform(0.2, 1.0, 4))
    A = rng.uniform(0.1, 0.5, (3, 4))
    if kind in ("any", "small"):
        A = A * rng.choice([-1.0, 1.0], A.shape) * 0.5
    if kind == "nonzero":
        A = A * np.array([[1.0], [-1.0], [1.0]])   # rows all of one sign: |u| >= 0.08
    v = rng.normal(size=3)
    src = f"s = v[i] {fn}(A[i,j] x[j])"
    arrays = {"x": x, "A": A, "v": v}
    check(src, "x", arrays=arrays)
    check(src, "A", arrays=arrays)


def test_division_by_tensor():
    rng = np.random.default_rng(3)
    arrays = {"a": rng.normal(size=4), "b": rng.uniform(0.5, 2.0, 4) * np.array([1, -1, 1, -1])}
    check("y[i] = a[i] / b[i]", "a", arrays=arrays)
    check("y[i] = a[i] / b[i]", "b", arrays=arrays)
    A = rng.normal(size=(3, 4))
    arrays2 = {"A": A, "b": arrays["b"]}
    d, _, J = check("y[i] = A[i,j] / b[j]", "b", arrays=arrays2)
    _close(J, -A / arrays["b"] ** 2)
    check("y[i] = A[i,j] / b[j]", "A", arrays=arrays2)
    check("y = 1 / (a[i] a[i])", "a", arrays={"a": arrays["a"]})


@pytest.mark.parametrize("exponent", ["2", "3", "-1", "0.5", "-2", "1.5"])
def test_power_constant_exponent(exponent):
    rng = np.random.default_rng(11)
    x = rng.uniform(0.4, 2.0, 5)
    d, arrays, J = check(f"y[i] = x[i]^{exponent}", "x", arrays={"x": x})
    e = float(exponent)
    _close(J, np.diag(e * x ** (e - 1)))
    # and the contracted form: s = sum_i x_i^e
    check(f"s = x[i]^{exponent}", "x", arrays={"x": x})
    # `**` is the same operator
    check(f"y[i] = (2 x[i] + 1)**{exponent}", "x", arrays={"x": x})


def test_power_tensor_exponent():
    rng = np.random.default_rng(12)
    arrays = {"a": rng.uniform(0.5, 2.0, 4), "b": rng.normal(size=4)}
    d, _, Ja = check("y[i] = a[i]^b[i]", "a", arrays=arrays)
    _close(Ja, np.diag(arrays["b"] * arrays["a"] ** (arrays["b"] - 1)))
    d, _, Jb = check("y[i] = a[i]^b[i]", "b", arrays=arrays)
    _close(Jb, np.diag(np.log(arrays["a"]) * arrays["a"] ** arrays["b"]))
    # exponent a whole expression, with a contraction in it
    arrays2 = {"a": arrays["a"], "W": rng.normal(size=(4, 3)) * 0.3, "x": rng.normal(size=3)}
    check("y[i] = a[i]^(W[i,j] x[j])", "x", arrays=arrays2)
    check("y[i] = a[i]^(W[i,j] x[j])", "a", arrays=arrays2)
    check("y[i] = a[i]^(W[i,j] x[j])", "W", arrays=arrays2)


def test_constant_base():
    x = np.random.default_rng(13).normal(size=4)
    d, _, J = check("y[i] = 2^x[i]", "x", arrays={"x": x})
    _close(J, np.diag(np.log(2.0) * 2.0 ** x))
    check("s = 3^(x[i] x[i])", "x", arrays={"x": x * 0.5})


@pytest.mark.parametrize("src, wrt", [
    ("y[i] = tanh(sin(x[i]) exp(x[i]))", "x"),
    ("y[i] = sqrt(1 + exp(A[i,j] x[j])^2)", "x"),
    ("s = sigmoid(v[i] tanh(A[i,j] x[j]))", "x"),
    ("s = sigmoid(v[i] tanh(A[i,j] x[j]))", "A"),
    ("y[i] = log(1 + sigmoid(cos(x[i]))^2)", "x"),
    ("y[i] = exp(-x[i]^2) / (1 + x[i]^2)", "x"),
    ("y[i] = softplus(tanh(x[i]) A[i,j] x[j])", "x"),
])
def test_nested_functions(src, wrt):
    check(src, wrt, sizes={"i": 4, "j": 4})


@pytest.mark.parametrize("src, wrt", [
    ("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "x"),
    ("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "W"),
    ("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "V"),
    ("h[i] = tanh(W[i,j] x[j]); s = v[i] h[i]", "W"),
    ("h[i] = tanh(W[i,j] x[j]); s = v[i] h[i]", "x"),
    ("a[i] = x[i]^2\nb[i] = sin(a[i]) + x[i]\nc[i] = a[i] b[i]\ny[j] = M[j,i] c[i]", "x"),
    ("u[i] = exp(x[i]); v[i] = u[i] / (1 + u[i]); w = v[i] v[i]", "x"),
    ("Z[i,l] = X[i,k] X[l,k]; y[i] = Z[i,i] + Z[i,l] c[l]", "X"),   # Gram matrix, diagonal
    ("h[i] = sigmoid(x[i]); y[i] = h[i] x[i]; z = y[i] y[i]", "x"),  # fan-out
])
def test_multi_statement_chain(src, wrt):
    check(src, wrt, sizes={"l": 3})


# --------------------------------------------------------------------------- 2. symbolic forms

def test_symbolic_matrix_product_wrt_X():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X")
    # X no longer appears in the formula: the declaration sizes p (and, through the
    # delta, i) by X's first axis and keeps X an input of the printed program.
    assert str(d) == "input X[p,r], W[q,j]\ndY_dX[i,j,p,q] = delta[i,p] W[q,j]"
    check("Y[i,j] = X[i,k] W[k,j]", "X")


def test_symbolic_matrix_product_wrt_W():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "W")
    text = rhs(d)
    assert text.count("delta[") == 1
    assert text.count("X[") == 1
    assert "W[" not in text
    # one statement, after the declaration that sizes q (and j) by W's second axis
    lines = str(d).strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("input X[") and ", W[" in lines[0]
    # delta ties j with the second wrt axis, X carries i and the first wrt axis
    head = re.match(r"\w+\[(\w+),(\w+),(\w+),(\w+)\]", lhs(d))
    assert head
    i, j, p, q = head.groups()
    assert re.search(rf"delta\[({j},{q}|{q},{j})\]", text), text
    assert f"X[{i},{p}]" in text, text
    check("Y[i,j] = X[i,k] W[k,j]", "W")


def test_symbolic_hessian_quadratic_form():
    h = tc.hessian("s = x[i] A[i,j] x[j]", "x")
    head = re.match(r"\w+\[(\w+),(\w+)\]$", lhs(h))
    assert head
    p, q = head.groups()
    assert rhs(h) in (f"A[{p},{q}] + A[{q},{p}]", f"A[{q},{p}] + A[{p},{q}]"), str(h)
    arrays = random_arrays("s = x[i] A[i,j] x[j]", {"i": 4, "j": 4})
    _close(h(**arrays), arrays["A"] + arrays["A"].T)
    g = tc.grad("s = x[i] A[i,j] x[j]", "x")
    _close(h(**arrays), numeric_jacobian(g, "x", arrays))
    roundtrip(h, arrays)


def test_symbolic_gradient_of_square_norm():
    g = tc.grad("s = x[i] x[i]", "x")
    head = re.match(r"\w+\[(\w+)\]$", lhs(g))
    assert head
    assert rhs(g) == f"2 x[{head.group(1)}]"
    check("s = x[i] x[i]", "x")


def test_symbolic_matrix_vector_wrt_W():
    d = tc.derive("y[i] = W[i,j] x[j]", "W")
    assert rhs(d) == "delta[i,p] x[q]", str(d)
    assert lhs(d) == "dy_dW[i,p,q]"
    check("y[i] = W[i,j] x[j]", "W")


def test_symbolic_chain_rule():
    src = "m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]"
    d = tc.derive(src, "x")
    head = re.match(r"\w+\[(\w+),(\w+)\]$", lhs(d))
    assert head
    i, p = head.groups()
    assert i == "i"
    m = re.fullmatch(rf"V\[i,(\w+)\] W\[(\w+),{p}\]", rhs(d))
    assert m and m.group(1) == m.group(2) and m.group(1) not in (i, p), str(d)
    assert "delta" not in str(d)
    check(src, "x")


# --------------------------------------------------------------------------- 3. cookbook

def _rng(seed):
    return np.random.default_rng(seed)


def test_cookbook_bilinear_form():
    rng = _rng(20)
    a, X, b = rng.normal(size=3), rng.normal(size=(3, 4)), rng.normal(size=4)
    d, _, J = check("s = a[i] X[i,j] b[j]", "X", arrays={"a": a, "X": X, "b": b})
    _close(J, np.outer(a, b))


def test_cookbook_trace_AXB():
    rng = _rng(21)
    A, X, B = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    d, _, J = check("s = A[i,j] X[j,k] B[k,i]", "X", arrays={"A": A, "X": X, "B": B})
    _close(J, A.T @ B.T)


def test_cookbook_quadratic_form_gradient():
    rng = _rng(22)
    x, B = rng.normal(size=4), rng.normal(size=(4, 4))
    d, _, J = check("s = x[i] B[i,j] x[j]", "x", arrays={"x": x, "B": B})
    _close(J, (B + B.T) @ x)


def test_cookbook_trace_XtX():
    rng = _rng(23)
    X = rng.normal(size=(3, 5))
    d, _, J = check("s = X[i,j] X[i,j]", "X", arrays={"X": X})
    _close(J, 2 * X)


LSQ = "L = (X[n,d] w[d] - y[n])^2"


def test_cookbook_least_squares():
    rng = _rng(24)
    arrays = {"X": rng.normal(size=(5, 3)), "w": rng.normal(size=3), "y": rng.normal(size=5)}
    X, w, y = arrays["X"], arrays["w"], arrays["y"]
    _close(tc.evaluate(LSQ, **arrays), np.sum((X @ w - y) ** 2), rtol=1e-12)
    g = tc.grad(LSQ, "w")
    _close(g(**arrays), 2 * X.T @ (X @ w - y))
    _close(g(**arrays), numeric_jacobian(LSQ, "w", arrays))
    roundtrip(g, arrays)
    H = tc.hessian(LSQ, "w")
    _close(H(**arrays), 2 * X.T @ X)
    _close(H(**arrays), numeric_jacobian(g, "w", arrays))
    roundtrip(H, arrays)


MLSQ = "L = (X[i,j] W[j,k] - Y[i,k])^2"


def test_cookbook_matrix_least_squares_hessian():
    rng = _rng(25)
    arrays = {"X": rng.normal(size=(5, 3)), "W": rng.normal(size=(3, 2)),
              "Y": rng.normal(size=(5, 2))}
    X, W, Y = arrays["X"], arrays["W"], arrays["Y"]
    g = tc.grad(MLSQ, "W")
    _close(g(**arrays), 2 * X.T @ (X @ W - Y))
    _close(g(**arrays), numeric_jacobian(MLSQ, "W", arrays))
    H = tc.hessian(MLSQ, "W")
    Hv = H(**arrays)
    assert Hv.shape == (3, 2, 3, 2)
    _close(Hv, numeric_jacobian(g, "W", arrays))
    _close(Hv, np.einsum("ip,ir,qs->pqrs", X, X, 2 * np.eye(2)))
    roundtrip(g, arrays)
    roundtrip(H, arrays)


SOFTMAX_CE = "L = -sum[n](Y[n,c] (Z[n,c] - log(sum[j](exp(Z[n,j])))))"


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_cookbook_softmax_cross_entropy():
    rng = _rng(26)
    Z = rng.normal(size=(5, 4))
    Y = np.eye(4)[rng.integers(0, 4, 5)]
    arrays = {"Y": Y, "Z": Z}
    expected_L = -np.sum(Y * (Z - np.log(np.exp(Z).sum(1, keepdims=True))))
    _close(tc.evaluate(SOFTMAX_CE, **arrays), expected_L, rtol=1e-12)
    g, _, J = check(SOFTMAX_CE, "Z", arrays=arrays)
    _close(J, _softmax(Z) - Y)
    # soft labels: softmax(Z) * rowsum(Y) - Y
    Ys = rng.uniform(0.0, 1.0, (5, 4))
    g, _, J = check(SOFTMAX_CE, "Z", arrays={"Y": Ys, "Z": Z})
    _close(J, _softmax(Z) * Ys.sum(1, keepdims=True) - Ys)
    # with respect to the labels: -(Z - logsumexp)
    g, _, J = check(SOFTMAX_CE, "Y", arrays=arrays)
    _close(J, -(Z - np.log(np.exp(Z).sum(1, keepdims=True))))


LOGREG = "z[n] = X[n,d] w[d]; L = sum[n](softplus(z[n]) - y[n] z[n])"


def test_cookbook_logistic_regression():
    rng = _rng(27)
    arrays = {"X": rng.normal(size=(5, 3)), "w": rng.normal(size=3),
              "y": rng.integers(0, 2, 5).astype(float)}
    X, w, y = arrays["X"], arrays["w"], arrays["y"]
    s = _sigmoid(X @ w)
    g, _, J = check(LOGREG, "w", arrays=arrays)
    _close(J, X.T @ (s - y))
    H = tc.hessian(LOGREG, "w")
    Hv = H(**arrays)
    _close(Hv, X.T @ np.diag(s * (1 - s)) @ X)
    _close(Hv, numeric_jacobian(tc.grad(LOGREG, "w"), "w", arrays))
    roundtrip(H, arrays)


MLP = """
H[b,h] = tanh(X[b,d] W[d,h] + c[h])
P[b,o] = H[b,h] V[h,o]
L      = (P[b,o] - T[b,o])^2
"""


def _mlp_arrays(seed=28):
    rng = _rng(seed)
    return {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 5)) * 0.5,
            "c": rng.normal(size=5) * 0.5, "V": rng.normal(size=(5, 2)),
            "T": rng.normal(size=(4, 2))}


def _mlp_backprop(X, W, c, V, T):
    H = np.tanh(X @ W + c)
    P = H @ V
    dP = 2 * (P - T)
    dV = H.T @ dP
    dH = dP @ V.T
    dA = dH * (1 - H ** 2)
    return {"W": X.T @ dA, "c": dA.sum(0), "V": dV, "X": dA @ W.T}


@pytest.mark.parametrize("wrt", ["W", "c", "V", "X"])
def test_cookbook_two_layer_network(wrt):
    arrays = _mlp_arrays()
    g = tc.grad(MLP, wrt)
    G = g(**arrays)
    _close(G, _mlp_backprop(**arrays)[wrt])
    _close(G, numeric_jacobian(MLP, wrt, arrays))
    roundtrip(g, arrays)
    d, _, J = check(MLP, wrt, arrays=arrays)   # derive == grad for a scalar result
    _close(J, G, rtol=1e-12, atol=1e-12)


def test_cookbook_two_layer_network_hessian_wrt_W_named_axes():
    arrays = _mlp_arrays(37)
    H = tc.hessian(MLP, "W[r,s]")
    assert lhs(H).startswith("d2L_dW2[r,s,")
    Hv = H(**arrays)
    assert Hv.shape == (3, 5, 3, 5)
    _close(Hv, numeric_jacobian(tc.grad(MLP, "W"), "W", arrays))
    _close(Hv, Hv.transpose(2, 3, 0, 1), rtol=1e-10, atol=1e-12)
    roundtrip(H, arrays)


def test_cookbook_two_layer_network_hessian_wrt_c():
    arrays = _mlp_arrays(29)
    H = tc.hessian(MLP, "c")
    Hv = H(**arrays)
    _close(Hv, numeric_jacobian(tc.grad(MLP, "c"), "c", arrays))
    _close(Hv, Hv.T, rtol=1e-12, atol=1e-12)
    roundtrip(H, arrays)


def test_hessian_vector_products_and_mixed_partials():
    arrays = _mlp_arrays(38)
    v = _rng(39).normal(size=5)
    gc = tc.grad(MLP, "c")
    H = tc.hessian(MLP, "c")(**arrays)
    hv = tc.jvp(gc, "c", tangent="dc")
    _close(hv(**arrays, dc=v), H @ v)
    vh = tc.vjp(gc, "c", cotangent="gc")
    _close(vh(**arrays, gc=v), v @ H)
    gW = tc.grad(MLP, "W")
    for other in ["c", "V", "X", "T"]:
        m = tc.derive(gW, other)
        value = m(**arrays)
        assert np.shape(value) == (3, 5) + arrays[other].shape
        _close(value, numeric_jacobian(gW, other, arrays))
        roundtrip(m, arrays, value)


CUBIC = "s = x[i]^3 + x[i] x[j] A[i,j] x[k] b[k]"


def test_third_derivative():
    rng = _rng(30)
    arrays = {"x": rng.normal(size=4), "A": rng.normal(size=(4, 4)), "b": rng.normal(size=4)}
    x, A, b = arrays["x"], arrays["A"], arrays["b"]
    _close(tc.evaluate(CUBIC, **arrays), np.sum(x ** 3) + (x @ A @ x) * (b @ x), rtol=1e-12)
    H = tc.hessian(CUBIC, "x")
    Hv = H(**arrays)
    _close(Hv, numeric_jacobian(tc.grad(CUBIC, "x"), "x", arrays))
    T = tc.derive(H, "x")
    Tv = T(**arrays)
    assert Tv.shape == (4, 4, 4)
    _close(Tv, numeric_jacobian(H, "x", arrays))
    # closed form: 6 delta_pqr + sum over the 6 permutations of (A + A')_{..} b_.
    S = A + A.T
    closed = np.zeros((4, 4, 4))
    closed[np.arange(4), np.arange(4), np.arange(4)] = 6.0
    closed += (np.einsum("pq,r->pqr", S, b) + np.einsum("pr,q->pqr", S, b)
               + np.einsum("qr,p->pqr", S, b))
    _close(Tv, closed)
    roundtrip(H, arrays)
    roundtrip(T, arrays)


def test_fourth_derivative_of_cubic_is_zero():
    rng = _rng(30)
    arrays = {"x": rng.normal(size=4), "A": rng.normal(size=(4, 4)), "b": rng.normal(size=4)}
    T = tc.derive(tc.hessian(CUBIC, "x"), "x")
    F = tc.derive(T, "x")
    Fv = np.asarray(F(**arrays))
    assert Fv.shape == (4, 4, 4, 4)
    _close(Fv, np.zeros((4, 4, 4, 4)), atol=1e-12)


# --------------------------------------------------------------------------- 4. vjp / jvp

VJP_CASES = [
    ("Y[i,j] = X[i,k] W[k,j]", "X", {}),
    ("Y[i,j] = X[i,k] W[k,j]", "W", {}),
    ("h[i] = tanh(x[i]); y[i] = exp(h[i]) x[i]", "x", {}),
    ("u[i] = sigmoid(A[i,j] x[j]); y[i] = u[i]^2 + sin(x[i] u[i])", "x", {"i": 4, "j": 4}),
    ("H[b,h] = tanh(X[b,d] W[d,h] + c[h])", "W", {}),
    ("H[b,h] = tanh(X[b,d] W[d,h] + c[h])", "c", {}),
    ("H[b,h] = tanh(X[b,d] W[d,h] + c[h])", "X", {}),
]


@pytest.mark.parametrize("src, wrt, sizes", VJP_CASES)
def test_vjp_matches_dense_jacobian(src, wrt, sizes):
    arrays = random_arrays(src, {**SIZES, **sizes}, seed=31)
    J = np.asarray(tc.derive(src, wrt)(**arrays))
    _close(J, numeric_jacobian(src, wrt, arrays))
    out_shape = np.shape(tc.evaluate(src, **arrays))
    G = _rng(32).normal(size=out_shape)
    v = tc.vjp(src, wrt, cotangent="G")
    assert "delta" not in str(v), str(v)
    with_g = {**arrays, "G": G}
    value = v(**with_g)
    assert np.shape(value) == arrays[wrt].shape
    expected = np.tensordot(G, J, axes=len(out_shape))
    _close(value, expected)
    roundtrip(v, with_g, value)


@pytest.mark.parametrize("src, wrt, sizes", VJP_CASES)
def test_jvp_matches_dense_jacobian(src, wrt, sizes):
    arrays = random_arrays(src, {**SIZES, **sizes}, seed=33)
    J = np.asarray(tc.derive(src, wrt)(**arrays))
    Vt = _rng(34).normal(size=arrays[wrt].shape)
    u = tc.jvp(src, wrt, tangent="V_t")
    assert "delta" not in str(u), str(u)
    with_v = {**arrays, "V_t": Vt}
    value = u(**with_v)
    out_shape = np.shape(tc.evaluate(src, **arrays))
    assert np.shape(value) == out_shape
    expected = np.tensordot(J, Vt, axes=Vt.ndim)
    _close(value, expected)
    roundtrip(u, with_v, value)


def test_vjp_default_names_and_scalar_result():
    arrays = _mlp_arrays(35)
    v = tc.vjp(MLP, "W")          # default cotangent name G; scalar result: G is a scalar
    value = v(**arrays, G=np.float64(2.5))
    _close(value, 2.5 * _mlp_backprop(**arrays)["W"])
    # the default tangent name V is already an input of MLP: a clear error, never a
    # silently wrong value
    with pytest.raises(tc.TensorCalcError):
        tc.jvp(MLP, "c")
    with pytest.raises(tc.TensorCalcError):
        tc.vjp(MLP, "W", cotangent="T")
    Vt = _rng(36).normal(size=5)
    u = tc.jvp(MLP, "c", tangent="dc")
    _close(u(**arrays, dc=Vt), _mlp_backprop(**arrays)["c"] @ Vt)


# --------------------------------------------------------------------------- 5. compact

@pytest.mark.parametrize("src, wrt", [
    ("y[i] = sigmoid(x[i])", "x"),
    ("y[i] = W[i,j] x[j]", "W"),
    ("Y[i,j] = X[i,k] W[k,j]", "X"),
    ("Y[i,j] = X[i,k] W[k,j]", "W"),
    ("d[i] = A[i,i]", "A"),
    ("t = A[i,i]", "A"),
    ("Y[i,j] = X[i,j] + b[j]", "b"),
    ("y[i] = a[i]^b[i]", "b"),
    ("h[i] = tanh(x[i]); y[i] = exp(h[i]) x[i]", "x"),
    ("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "x"),
    ("Y[i,j] = delta[i,j] x[i]", "x"),
])
def test_compact_equals_dense(src, wrt):
    sizes = {**SIZES, "i": 3, "j": 3} if "A[i,i]" in src or "delta" in src else SIZES
    arrays = random_arrays(src, sizes, seed=40, positive=("a",))
    d = tc.derive(src, wrt)
    dense = np.asarray(d(**arrays))
    c = d.evaluate(compact=True, **arrays)
    assert isinstance(c, tc.Compact)
    assert tuple(c.shape) == dense.shape
    assert len(c.indices) == dense.ndim
    _close(c.toarray(), dense, rtol=1e-12, atol=1e-12)
    _close(dense, numeric_jacobian(src, wrt, arrays))
    # every tie maps an index to another index of the value
    for a, b in c.ties.items():
        assert a in c.indices and b in c.indices and a != b
    assert np.ndim(c.core) == len(c.core_indices)
    assert np.size(c.core) <= dense.size


def test_compact_two_ties():
    X = _rng(43).normal(size=(3, 4))
    d = tc.derive("Y[i,j] = sigmoid(X[i,j])", "X")
    c = d.evaluate(compact=True, X=X)
    assert isinstance(c, tc.Compact)
    assert np.shape(c.core) == (3, 4)
    assert len(c.ties) == 2
    s = _sigmoid(X)
    _close(c.core, s * (1 - s), rtol=1e-12, atol=1e-14)
    dense = np.asarray(d(X=X))
    _close(c.toarray(), dense, rtol=0, atol=0)
    _close(dense, numeric_jacobian("Y[i,j] = sigmoid(X[i,j])", "X", {"X": X}))


@pytest.mark.parametrize("src, wrt", [
    ("y[i] = x[i] + W[i,j] x[j]", "x"),      # terms with different tie patterns
    ("Y[i,j] = x[i] x[j]", "x"),
])
def test_compact_mixed_patterns_values(src, wrt):
    arrays = random_arrays(src, {"i": 3, "j": 3}, seed=44)
    d = tc.derive(src, wrt)
    c = d.evaluate(compact=True, **arrays)
    value = c.toarray() if isinstance(c, tc.Compact) else np.asarray(c)
    _close(value, d(**arrays), rtol=0, atol=0)
    _close(value, numeric_jacobian(src, wrt, arrays))


def test_compact_mixed_patterns_is_a_compact():
    arrays = random_arrays("y[i] = x[i] + W[i,j] x[j]", {"i": 3, "j": 3}, seed=45)
    c = tc.derive("y[i] = x[i] + W[i,j] x[j]", "x").evaluate(compact=True, **arrays)
    assert isinstance(c, tc.Compact)
    assert c.ties == {}


def test_compact_sigmoid_core():
    x = _rng(41).normal(size=5)
    d = tc.derive("y[i] = sigmoid(x[i])", "x")
    c = d.evaluate(compact=True, x=x)
    assert np.shape(c.core) == (5,)
    s = _sigmoid(x)
    _close(c.core, s * (1 - s), rtol=1e-12, atol=1e-14)
    assert tuple(c.shape) == (5, 5)
    i, p = c.indices
    assert c.ties in ({p: i}, {i: p})
    assert c.core_indices in ((i,), (p,))
    _close(c.toarray(), np.diag(s * (1 - s)), rtol=1e-12, atol=1e-14)


def test_compact_matrix_vector_wrt_W_core_is_x():
    rng = _rng(42)
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    d = tc.derive("y[i] = W[i,j] x[j]", "W")
    c = d.evaluate(compact=True, W=W, x=x)
    assert np.shape(c.core) == (4,)
    _close(c.core, x, rtol=0, atol=0)
    assert tuple(c.shape) == (3, 3, 4)
    i, p, q = c.indices
    assert c.ties in ({p: i}, {i: p})
    assert c.core_indices == (q,)
    expected = np.einsum("ip,q->ipq", np.eye(3), x)
    _close(c.toarray(), expected, rtol=0, atol=0)


def test_compact_large_sigmoid_never_dense():
    n = 10 ** 6
    x = np.linspace(-5.0, 5.0, n)
    d = tc.derive("y[i] = sigmoid(x[i])", "x")
    tracemalloc.start()
    try:
        c = d.evaluate(compact=True, x=x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.shape(c.core) == (n,)
    assert tuple(c.shape) == (n, n)
    assert peak < 200 * 2 ** 20, f"peak {peak / 2**20:.0f} MiB"
    s = _sigmoid(x)
    _close(c.core, s * (1 - s), rtol=1e-12, atol=1e-15)
    assert len(c.ties) == 1


# --------------------------------------------------------------------------- 6. round trips

ROUNDTRIP_CASES = [
    ("Y[i,j] = X[i,k] W[k,j]", "X"),
    ("y[i] = sigmoid(x[i])", "x"),
    ("t = A[i,i]", "A"),
    ("Y[i,j] = X[i,j] + b[j]", "b"),
    (SOFTMAX_CE, "Z"),
    (MLP, "W"),
    (LOGREG, "w"),
]


@pytest.mark.parametrize("src, wrt", ROUNDTRIP_CASES)
def test_roundtrip_source_and_str(src, wrt):
    sizes = {**SIZES, "i": 3} if "A[i,i]" in src else SIZES
    arrays = random_arrays(src, sizes, seed=50)
    d = tc.derive(src, wrt)
    expected = d(**arrays)
    q = tc.compile(d.source())
    assert set(q.accepts) <= set(tc.compile(src).accepts)
    _close(q(**_accepted(q, arrays)), expected, rtol=1e-12, atol=1e-12)
    roundtrip(d, arrays, expected)


def test_str_roundtrip_actually_exercised():
    """str(d) re-parses to the same values for the derivatives that need no size anchor."""
    for src, wrt in [("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "x"),
                     ("y[i] = sigmoid(x[i])", "x"), (MLP, "W"), (LOGREG, "w"),
                     ("s = x[i] A[i,j] x[j]", "x")]:
        arrays = random_arrays(src, {**SIZES, "j": 3}, seed=51)
        d = tc.derive(src, wrt) if "x[i] A" not in src else tc.hessian(src, wrt)
        r = tc.compile(str(d))
        _close(r(**_accepted(r, arrays)), d(**arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("src, wrt, sizes", [
    ("s = x[i] A[i,j] x[j]", "x", {"i": 4, "j": 4}),
    (LSQ, "w", {}),
    (LOGREG, "w", {}),
    (MLP, "c", {}),
    (CUBIC, "x", {"i": 4, "j": 4, "k": 4}),
])
def test_derive_reparsed_gradient_gives_same_hessian(src, wrt, sizes):
    arrays = random_arrays(src, {**SIZES, **sizes}, seed=52)
    g = tc.grad(src, wrt)
    H = tc.hessian(src, wrt)(**arrays)
    H_src = tc.derive(tc.compile(g.source()), wrt)
    _close(H_src(**_accepted(H_src, arrays)), H, rtol=1e-10, atol=1e-10)
    H_str = tc.derive(str(g), wrt)
    _close(H_str(**_accepted(H_str, arrays)), H, rtol=1e-10, atol=1e-10)
    # derive(grad) is the Hessian too
    H2 = tc.derive(g, wrt)
    _close(H2(**arrays), H, rtol=1e-10, atol=1e-10)
    _close(H, numeric_jacobian(g, wrt, arrays))


# --------------------------------------------------------------------------- 7. wrt and errors

def test_wrt_names_the_axes():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X[a,b]")
    assert str(d).splitlines()[-1] == "dY_dX[i,j,a,b] = delta[i,a] W[b,j]"
    check("Y[i,j] = X[i,k] W[k,j]", "X[a,b]")
    g = tc.grad("s = x[i] x[i]", "x[r]")
    assert str(g) == "ds_dx[r] = 2 x[r]"
    h = tc.hessian("s = x[i] A[i,j] x[j]", "x[u]")
    assert "[u," in lhs(h) or ",u]" in lhs(h)


@pytest.mark.parametrize("axes", ["X[k,i]", "X[j,k]", "X[i,j]"])
def test_wrt_axes_that_clash_with_program_indices(axes):
    """New axes named like the program's own indices: the program's are renamed."""
    src = "Y[i,j] = X[i,k] W[k,j]"
    d, _, J = check(src, axes)
    a, b = axes[2:-1].split(",")
    assert lhs(d).endswith(f",{a},{b}]")


def test_wrt_must_be_an_input():
    src = "m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]"
    with pytest.raises(tc.DerivativeError, match="m"):
        tc.derive(src, "m")           # an intermediate statement
    with pytest.raises(tc.DerivativeError, match="zz"):
        tc.derive(src, "zz")          # unknown
    with pytest.raises(tc.DerivativeError):
        tc.derive(src, "y")           # the result itself
    with pytest.raises(tc.DerivativeError):
        tc.grad("s = x[i] x[i]", "nope")
    with pytest.raises(tc.DerivativeError):
        tc.vjp(src, "m")
    with pytest.raises(tc.DerivativeError):
        tc.jvp(src, "zz")
    assert issubclass(tc.DerivativeError, tc.TensorCalcError)


def test_grad_of_non_scalar_is_an_error():
    with pytest.raises(tc.DerivativeError):
        tc.grad("y[i] = W[i,j] x[j]", "x")
    with pytest.raises(tc.DerivativeError):
        tc.hessian("Y[i,j] = X[i,k] W[k,j]", "X")


def test_independent_input_scalar_result_is_zero():
    src = "u[i] = z[i]^2; s = w[j] x[j]"
    arrays = random_arrays(src, SIZES, seed=60)
    g = tc.grad(src, "z")
    value = np.asarray(g(**arrays))
    assert value.shape == (3,)
    assert np.all(value == 0)
    roundtrip(g, arrays, value)


def test_independent_input_vjp_is_zero():
    src = "u[i] = z[i]^2; y[j] = W[j,k] x[k]"
    arrays = random_arrays(src, SIZES, seed=61)
    v = tc.vjp(src, "z", cotangent="G")
    value = np.asarray(v(**arrays, G=np.ones(4)))
    assert value.shape == (3,)
    assert np.all(value == 0)


def test_independent_input_jacobian_is_zero():
    src = "u[i] = z[i]^2; y[j] = W[j,k] x[k]"
    arrays = random_arrays(src, SIZES, seed=62)
    d = tc.derive(src, "z")
    value = np.asarray(d(**arrays))
    assert value.shape == (4, 3)
    assert np.all(value == 0)
    roundtrip(d, arrays, value)


def test_independent_input_jvp_is_zero():
    src = "u[i] = z[i]^2; y[j] = W[j,k] x[k]"
    arrays = random_arrays(src, SIZES, seed=63)
    u = tc.jvp(src, "z", tangent="T")
    value = np.asarray(u(**arrays, T=np.ones(3)))
    assert value.shape == (4,)
    assert np.all(value == 0)
    roundtrip(u, {**arrays, "T": np.ones(3)}, value)


def test_independent_input_of_intermediate_is_zero():
    src = "u[i] = z[i]^2; y[j] = W[j,k] x[k]"
    arrays = random_arrays(src, SIZES, seed=64)
    d = tc.derive(src, "x", of="u")
    value = np.asarray(d(**arrays))
    assert value.shape == (3, 2)
    assert np.all(value == 0)
    roundtrip(d, arrays, value)


@pytest.mark.parametrize("src", [
    "r[n] = X[n,d] w[d] - y[n]; L = r[n]^2",
    "e[n] = (X[n,d] w[d] - y[n])^2; L = 0.5 e[n] e[n]",
])
def test_scalar_loss_of_an_intermediate(src):
    arrays = random_arrays(src, SIZES, seed=66)
    g = tc.grad(src, "w")
    value = g(**arrays)
    _close(value, numeric_jacobian(src, "w", arrays))
    roundtrip(g, arrays, value)


SUMMED_INTERMEDIATE = [
    "e[n] = (X[n,d] w[d] - y[n])^2; L = sum[n](e[n])",
    "e[n] = (X[n,d] w[d] - y[n])^2; L = e[n]",
    "e[n] = (X[n,d] w[d] - y[n])^2; L = 3 e[n]",
]


@pytest.mark.parametrize("src", SUMMED_INTERMEDIATE)
def test_gradient_of_a_summed_intermediate(src):
    arrays = random_arrays(src, SIZES, seed=67)
    g = tc.grad(src, "w")
    value = g(**arrays)
    _close(value, numeric_jacobian(src, "w", arrays))
    X, w, y = arrays["X"], arrays["w"], arrays["y"]
    scale = 3.0 if "3 e" in src else 1.0
    _close(value, scale * 2 * X.T @ (X @ w - y))
    roundtrip(g, arrays, value)


def test_vjp_of_a_summed_intermediate():
    src = SUMMED_INTERMEDIATE[0]
    arrays = random_arrays(src, SIZES, seed=68)
    v = tc.vjp(src, "w", cotangent="G")
    value = v(**arrays, G=np.float64(2.0))
    _close(value, 2.0 * numeric_jacobian(src, "w", arrays))


def test_jvp_of_a_summed_intermediate():
    src = SUMMED_INTERMEDIATE[0]
    arrays = random_arrays(src, SIZES, seed=69)
    Vt = _rng(70).normal(size=3)
    u = tc.jvp(src, "w", tangent="dw")
    _close(u(**arrays, dw=Vt), numeric_jacobian(src, "w", arrays) @ Vt)


def test_sizeless_delta_is_a_clear_error():
    with pytest.raises(tc.TensorCalcError):
        tc.evaluate("s = delta[i,i] x[j] x[j]", x=np.ones(3))
    d = tc.grad("s = delta[i,i] x[j] x[j]", "x")
    with pytest.raises(tc.TensorCalcError):
        d(x=np.ones(3))


def test_derivative_of_an_intermediate_statement():
    src = "m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]"
    d, arrays, J = check(src, "x", of="m")
    _close(J, arrays["W"])


def test_derivative_accepts_all_original_inputs():
    src = "Y[i,j] = X[i,k] W[k,j] + B[i,j]"
    arrays = random_arrays(src, SIZES, seed=65)
    d = tc.derive(src, "X")
    assert set(tc.compile(src).accepts) <= set(d.accepts)
    _close(d(**arrays), numeric_jacobian(src, "X", arrays))
    with pytest.raises(tc.InputError):
        d(**arrays, Q=np.ones(2))


# --------------------------------------------------------------------------- 8. latex, einsum

def test_latex_of_derivative():
    text = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X").latex()
    assert "\\delta_{" in text
    assert "W_{" in text


def test_einsum_of_derivative():
    d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "W")
    assert isinstance(d.einsum, list)
    assert all(isinstance(s, str) and "->" in s for s in d.einsum)
    v = tc.vjp("Y[i,j] = X[i,k] W[k,j]", "X")
    assert len(v.einsum) >= 1
    # G W' : two operands contracted over one index
    assert any(s.count(",") == 1 for s in v.einsum)

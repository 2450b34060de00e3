"""Index arithmetic (docs/index-arithmetic.md, docs/derivatives.md): shifts, strides, padding and
gathers.

Every value is checked against an oracle that does not share code with tensorcalc:
NumPy (np.correlate, np.convolve, np.diff, np.take, np.add.at, explicit loops) and JAX in
float64 (jnp.correlate, jax.lax.conv_general_dilated, jnp.take, fancy indexing) for the
forward values, jax.grad / jax.hessian / jax.jacfwd and central finite differences
(tests/fd.py) for the derivatives. Every derivative program is also printed, compiled
again from its text and run on the same arrays. The errors of §8 are checked for their
class and for naming the offending index, tensor or value.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from corpus import ARITHMETIC_CASES, jax_conv2d, repeated_labels, seeded_rng
from fd import numeric_jacobian

import tensorcalc as tc

EXACT = dict(rtol=1e-10, atol=1e-12)  # against NumPy / JAX in float64
FD = dict(rtol=1e-5, atol=1e-6)  # against central differences (eps 1e-6)


# --------------------------------------------------------------------------- helpers


def close(actual, expected, tol=EXACT):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, **tol)


def _value(program, arrays, sizes=None):
    program = tc.compile(program)
    if sizes:
        return np.asarray(program.evaluate(arrays, sizes=sizes))
    return np.asarray(program(**arrays))


def _round_trip(program, arrays, sizes=None):
    """The program's text compiles to a program with the same values on the same arrays.

    ``sizes`` are the ones the caller gave the program it came from; the text itself must
    declare whatever else its padded reads need (docs/index-arithmetic.md)."""
    program = tc.compile(program)
    text = str(program)
    again = tc.compile(text, sizes=sizes)
    value = _value(program, arrays, sizes)
    printed = np.asarray(again(**arrays))
    np.testing.assert_allclose(printed, value, rtol=1e-9, atol=1e-12,
                               err_msg=f"printed program:\n{text}")


def _fd_grad(program, wrt, arrays):
    return numeric_jacobian(program, wrt, arrays)


def _jnp(jax, arrays):
    return {k: (jax.numpy.asarray(v)) for k, v in arrays.items()}


def _jax_grad(jax, fn, arrays, wrt):
    """jax.grad of fn(**arrays) with respect to one float array."""
    fixed = _jnp(jax, arrays)

    def f(v):
        return fn(**{**fixed, wrt: v})

    return np.asarray(jax.jit(jax.grad(f))(fixed[wrt]))  # jit: one compile, not one per op


def _jax_hessian(jax, fn, arrays, wrt):
    fixed = _jnp(jax, arrays)

    def f(v):
        return fn(**{**fixed, wrt: v})

    return np.asarray(jax.jit(jax.hessian(f))(fixed[wrt]))



GRAD_CASES = [(name, wrt) for name, make in ARITHMETIC_CASES.items() for wrt in make()["wrt"]]


def _program(case):
    return tc.compile(case["src"], sizes=case["sizes"])


# --------------------------------------------------------------------------- forward values


def test_valid_correlation_matches_numpy():
    r = seeded_rng(20)
    for n, k in [(10, 3), (7, 7), (5, 1), (16, 4)]:
        x, w = r.normal(size=n), r.normal(size=k)
        y = tc.evaluate("y[i] = x[i+k] w[k]", x=x, w=w)
        close(y, np.correlate(x, w, "valid"))


def test_valid_correlation_kernel_first_and_commuted_subscript():
    r = seeded_rng(21)
    x, w = r.normal(size=11), r.normal(size=4)
    expected = np.correlate(x, w, "valid")
    close(tc.evaluate("y[i] = w[k] x[k+i]", x=x, w=w), expected)
    close(tc.evaluate("y[i] = sum[k](x[i+k] w[k])", x=x, w=w), expected)


def test_strided_correlation_matches_explicit_numpy():
    r = seeded_rng(22)
    for n, k in [(13, 3), (12, 3), (10, 4), (5, 5)]:
        x, w = r.normal(size=n), r.normal(size=k)
        m = (n - k) // 2 + 1
        expected = np.array([sum(x[2 * i + q] * w[q] for q in range(k)) for i in range(m)])
        for src in ("y[i] = x[2*i+k] w[k]", "y[i] = x[2i+k] w[k]"):
            close(tc.evaluate(src, x=x, w=w), expected)


def test_stride_three_with_offset():
    r = seeded_rng(23)
    x, w = r.normal(size=20), r.normal(size=2)
    # x[3*i+k+1]: i from 0 while 3*i + 1 + 1 <= 19, i.e. i <= 5
    expected = np.array([x[3 * i + 1] * w[0] + x[3 * i + 2] * w[1] for i in range(6)])
    close(tc.evaluate("y[i] = x[3*i+k+1] w[k]", x=x, w=w), expected)


def test_same_correlation_with_sizes_matches_numpy():
    r = seeded_rng(24)
    x, w = r.normal(size=10), r.normal(size=3)
    expected = np.correlate(x, w, "same")
    src = "y[i] = x[i+k-1] w[k]"
    close(tc.compile(src, sizes={"i": 10})(x=x, w=w), expected)
    close(tc.compile(src).evaluate({"x": x, "w": w}, sizes={"i": 10}), expected)
    x5, w5 = r.normal(size=9), r.normal(size=5)
    close(tc.compile("y[i] = x[i+k-2] w[k]", sizes={"i": 9})(x=x5, w=w5),
           np.correlate(x5, w5, "same"))


def test_full_convolution_with_sizes_matches_numpy():
    r = seeded_rng(25)
    x, w = r.normal(size=8), r.normal(size=3)
    close(tc.compile("y[i] = x[i-k] w[k]", sizes={"i": 10})(x=x, w=w), np.convolve(x, w))
    # the adjoint form of docs/index-arithmetic.md: x_bar[p] = y_bar[i] w[p-i], with y_bar of the
    # valid size
    ybar = r.normal(size=6)
    close(tc.compile("xb[p] = yb[i] w[p-i]", sizes={"p": 8})(yb=ybar, w=w),
           np.convolve(ybar, w, "full"))


def test_given_size_pads_beyond_a_too_long_kernel():
    r = seeded_rng(26)
    x, w = r.normal(size=100), r.normal(size=101)
    y = tc.compile("y[i] = x[i+k] w[k]", sizes={"i": 5})(x=x, w=w)
    expected = np.array([x[i:] @ w[: 100 - i] for i in range(5)])
    close(y, expected)
    # a given size longer than the valid range reads zeros past the end of x
    x, w = r.normal(size=10), r.normal(size=3)
    y = tc.compile("y[i] = x[i+k] w[k]", sizes={"i": 12})(x=x, w=w)
    close(y, np.correlate(np.concatenate([x, np.zeros(4)]), w, "valid")[:12])


def test_conv2d_matches_jax(jax64):
    r = seeded_rng(27)
    x, W = r.normal(size=(2, 3, 7, 6)), r.normal(size=(4, 3, 3, 2))
    y = tc.evaluate("y[b,o,i,j] = x[b,c,i+a,j+b2] W[o,c,a,b2]", x=x, W=W)
    close(y, np.asarray(jax_conv2d(jax64, x, W)))
    assert y.shape == (2, 4, 5, 5)


def test_conv2d_strided_and_same_match_jax(jax64):
    r = seeded_rng(28)
    x, W = r.normal(size=(2, 2, 7, 6)), r.normal(size=(3, 2, 3, 2))
    y = tc.evaluate("y[b,o,i,j] = x[b,c,2*i+a,2*j+b2] W[o,c,a,b2]", x=x, W=W)
    close(y, np.asarray(jax_conv2d(jax64, x, W, stride=2)))
    W3 = r.normal(size=(3, 2, 3, 3))
    same = tc.compile("y[b,o,i,j] = x[b,c,i+a-1,j+b2-1] W[o,c,a,b2]",
                      sizes={"i": 7, "j": 6})(x=x, W=W3)
    close(same, np.asarray(jax_conv2d(jax64, x, W3, padding=((1, 1), (1, 1)))))


def test_conv2d_with_bias_and_relu_matches_numpy():
    r = seeded_rng(29)
    x, W, c = r.normal(size=(2, 3, 5, 5)), r.normal(size=(2, 3, 2, 2)), r.normal(size=2)
    y = tc.evaluate("y[b,o,i,j] = relu(x[b,c,i+a,j+b2] W[o,c,a,b2] + bias[o])",
                    x=x, W=W, bias=c)
    windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(2, 3))
    expected = np.maximum(np.einsum("ncijpq,ocpq->noij", windows, W) + c[None, :, None, None],
                          0)
    close(y, expected)


def test_stencils_match_numpy_diff():
    r = seeded_rng(30)
    x = r.normal(size=11)
    close(tc.evaluate("d[i] = x[i+1] - x[i]", x=x), np.diff(x))
    close(tc.evaluate("l[i] = x[i+2] - 2*x[i+1] + x[i]", x=x), np.diff(x, n=2))
    # centred second difference written around i+1
    close(tc.evaluate("l[i] = x[i] - 2 x[i+1] + x[i+2]", x=x), np.diff(x, n=2))
    A = r.normal(size=(6, 5))
    close(tc.evaluate("g[i,j] = A[i+1,j] - A[i,j]", A=A), np.diff(A, axis=0))
    close(tc.evaluate("g[i,j] = A[i,j+1] - A[i,j]", A=A), np.diff(A, axis=1))


def test_shifted_delta_is_a_shift():
    r = seeded_rng(31)
    x = r.normal(size=6)
    y = tc.compile("y[p] = delta[p, i+1] x[i]", sizes={"p": 7})(x=x)
    close(y, np.concatenate([[0.0], x]))


def test_gathers_match_take(jax64):
    jnp = jax64.numpy
    r = seeded_rng(32)
    E, t = r.normal(size=(6, 4)), np.array([5, 0, 0, 3, 1], dtype=np.int64)
    expected = np.take(E, t, axis=0)
    close(tc.evaluate("e[n,j] = E[t[n], j]", E=E, t=t), expected)
    close(np.asarray(jnp.take(jnp.asarray(E), jnp.asarray(t), axis=0)), expected)
    # other integer dtypes
    for dtype in (np.int32, np.int16, np.uint8, np.uint64):
        close(tc.evaluate("e[n,j] = E[t[n], j]", E=E, t=t.astype(dtype)), expected)
    # a gather on the second axis, and picking one entry per row
    Z = r.normal(size=(5, 6))
    close(tc.evaluate("p[n] = Z[n, t[n]]", Z=Z, t=t),
           np.take_along_axis(Z, t[:, None], axis=1)[:, 0])
    close(tc.evaluate("L = Z[n, t[n]]", Z=Z, t=t), Z[np.arange(5), t].sum())
    close(tc.evaluate("e[j,n] = E[t[n], j]", E=E, t=t), expected.T)


def test_cross_entropy_with_integer_labels():
    r = seeded_rng(33)
    Z, t = r.normal(size=(7, 5)), np.array([0, 4, 2, 2, 1, 3, 0])
    z = Z - Z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1)) + Z.max(axis=1)
    expected = np.sum(lse - Z[np.arange(7), t])
    close(tc.evaluate("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", Z=Z, t=t), expected)
    # stable at logits of +-1000
    big = Z * 1000.0
    zb = big - big.max(axis=1, keepdims=True)
    lse = np.log(np.exp(zb).sum(axis=1)) + big.max(axis=1)
    value = tc.evaluate("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", Z=big, t=t)
    assert np.isfinite(value)
    close(value, np.sum(lse - big[np.arange(7), t]), dict(rtol=1e-12, atol=1e-9))


def test_embedding_then_linear():
    r = seeded_rng(34)
    E, W = r.normal(size=(6, 4)), r.normal(size=(4, 3))
    t = np.array([1, 5, 5, 0])
    h = tc.evaluate("h[n,o] = E[t[n],j] W[j,o]", E=E, t=t, W=W)
    close(h, E[t] @ W)
    two = tc.evaluate("e[n,j] = E[t[n], j]\nh[n,o] = tanh(e[n,j] W[j,o])", E=E, t=t, W=W)
    close(two, np.tanh(E[t] @ W))


def test_valid_sizes_of_shrunk_indices():
    r = seeded_rng(35)
    assert tc.evaluate("y[i] = x[i+k] w[k]", x=r.normal(size=9), w=r.normal(size=4)).shape == (6,)
    assert tc.evaluate("y[i] = x[2*i+k] w[k]", x=r.normal(size=10),
                       w=r.normal(size=3)).shape == (4,)
    assert tc.evaluate("d[i] = x[i+1] - x[i]", x=r.normal(size=9)).shape == (8,)
    # the window of a plain occurrence is as long as the whole input: one value
    close(tc.evaluate("y[i] = x[i+k] w[k]", x=np.arange(4.0), w=np.ones(4)), [6.0])


@pytest.mark.parametrize("name", sorted(ARITHMETIC_CASES))
def test_forward_losses_match_jax(jax64, name):
    case = ARITHMETIC_CASES[name]()
    fn = case["jax"](jax64.numpy, jax64)
    arrays = _jnp(jax64, case["arrays"])
    expected = float(jax64.jit(lambda: fn(**arrays))())
    close(_program(case)(**case["arrays"]), expected)


@pytest.mark.parametrize("src,sizes,piece", [
    ("y[i] = x[i+k] w[k]", None, "x[i+k]"),
    ("y[i] = x[2*i+k-1] w[k]", {"i": 6}, "x[2*i+k-1]"),
    ("y[i] = x[2i+k] w[k]", None, "x[2*i+k]"),
    ("y[i] = x[i-k] w[k]", {"i": 14}, "x[i-k]"),
    ("d[i] = x[i+1] - x[i]", None, "x[i+1]"),
    ("l[i] = x[i+2] - 2*x[i+1] + x[i]", None, "x[i+2]"),
])
def test_forward_round_trip_through_str_vectors(src, sizes, piece):
    r = seeded_rng(36)
    p = tc.compile(src, sizes=sizes)
    arrays = {k: v for k, v in {"x": r.normal(size=12), "w": r.normal(size=3)}.items()
              if k in p.inputs}
    assert piece in str(p), str(p)
    _round_trip(p, arrays, sizes)


def test_forward_round_trip_through_str_gathers_and_convs():
    r = seeded_rng(37)
    t = np.array([2, 0, 2])
    # (the printer may rename an index that each term sums on its own: Z[n1,t[n1]])
    cases = [
        ("e[n,j] = E[t[n], j]", dict(E=r.normal(size=(4, 3)), t=t), r"E\[t\[n\],j\]"),
        ("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", dict(Z=r.normal(size=(3, 4)), t=t),
         r"Z\[(\w+),t\[\1\]\]"),
        ("h[n,o] = E[t[n],j] W[j,o]", dict(E=r.normal(size=(4, 3)), t=t,
                                            W=r.normal(size=(3, 2))), r"E\[t\[n\],j\]"),
        ("y[b,o,i,j] = x[b,c,i+a,j+b2] W[o,c,a,b2]",
         dict(x=r.normal(size=(1, 2, 5, 4)), W=r.normal(size=(2, 2, 2, 2))),
         r"x\[b,c,i\+a,j\+b2\]"),
    ]
    for src, arrays, piece in cases:
        p = tc.compile(src)
        assert re.search(piece, str(p)), str(p)
        _round_trip(p, arrays)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name,wrt", GRAD_CASES)
def test_gradient_matches_jax(jax64, name, wrt):
    case = ARITHMETIC_CASES[name]()
    g = tc.grad(_program(case), wrt)
    got = g(**case["arrays"])
    fn = case["jax"](jax64.numpy, jax64)
    expected = _jax_grad(jax64, fn, case["arrays"], wrt)
    close(got, expected)


@pytest.mark.parametrize("name,wrt", GRAD_CASES)
def test_gradient_matches_finite_differences(name, wrt):
    case = ARITHMETIC_CASES[name]()
    p = _program(case)
    g = tc.grad(p, wrt)
    close(g(**case["arrays"]), _fd_grad(p, wrt, case["arrays"]), FD)


@pytest.mark.parametrize("name,wrt", GRAD_CASES)
def test_gradient_round_trip_through_str(name, wrt):
    case = ARITHMETIC_CASES[name]()
    g = tc.grad(_program(case), wrt)
    # the max-pool's too: max's weights, hardmax[k](x[2*i+k]), keep the window's index k,
    # whose size is given by name
    _round_trip(g, case["arrays"], case["sizes"])


def _exported(program):
    """The function that ``program.to_python()`` defines (NumPy and opt_einsum only)."""
    namespace: dict = {}
    exec(program.to_python(), namespace)  # our own generated code, not user text
    return namespace[program.result]


@pytest.mark.parametrize("name,wrt", [c for c in GRAD_CASES
                                      if ARITHMETIC_CASES[c[0]]()["sizes"] is None])
def test_gradient_exported_by_to_python(name, wrt):
    case = ARITHMETIC_CASES[name]()
    g = tc.grad(_program(case), wrt)
    close(_exported(g)(**case["arrays"]), g(**case["arrays"]))


def test_gradient_exported_by_to_python_keeps_the_programs_sizes():
    """A program compiled with sizes= fixes them for every call (docs/index-arithmetic.md); the
    function its to_python() exports is the same function of the same arrays. One test for every
    sized case, listing each that differs."""
    wrong = []
    for name, wrt in GRAD_CASES:
        case = ARITHMETIC_CASES[name]()
        if not case["sizes"]:
            continue
        g = tc.grad(_program(case), wrt)
        try:
            close(_exported(g)(**case["arrays"]), g(**case["arrays"]))
        except Exception as err:  # reported below, case by case
            wrong.append(f"{name} wrt {wrt}: {type(err).__name__}: {str(err)[:200]}")
    assert not wrong, "\n".join(wrong)


def test_gradient_of_valid_correlation_is_a_full_convolution():
    """docs/index-arithmetic.md: through y[i] = x[i+k] w[k] and L = y_bar[i] y[i], x_bar = y_bar (*)
    w in full, and w_bar = correlate(x, y_bar, valid)."""
    r = seeded_rng(40)
    x, w, ybar = r.normal(size=10), r.normal(size=3), r.normal(size=8)
    src = "y[i] = x[i+k] w[k]\nL = ybar[i] y[i]"
    gx = tc.grad(src, "x")
    gw = tc.grad(src, "w")
    close(gx(x=x, w=w, ybar=ybar), np.convolve(ybar, w, "full"))
    close(gw(x=x, w=w, ybar=ybar), np.correlate(x, ybar, "valid"))
    # an x element that no window reads has a zero gradient (stride 2, N-K odd)
    g2 = tc.grad("y[i] = x[2*i+k] w[k]\nL = y[i]", "x")(x=r.normal(size=12), w=w)
    assert g2[-1] == 0.0
    expected = np.zeros(12)
    for i in range(5):
        expected[2 * i: 2 * i + 3] += w
    close(g2, expected)


def test_gradient_of_gather_is_a_scatter_add():
    r = seeded_rng(41)
    E, t = r.normal(size=(5, 3)), repeated_labels()
    C = r.normal(size=(t.size, 3))
    g = tc.grad("e[n,j] = E[t[n], j]\nL = e[n,j] C[n,j]", "E")(E=E, t=t, C=C)
    expected = np.zeros_like(E)
    np.add.at(expected, t, C)
    close(g, expected)
    assert np.all(g[3] == 0.0)  # a row no label points at


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    r = seeded_rng(42)
    Z, t = r.normal(size=(6, 4)), np.array([3, 0, 0, 1, 2, 3])
    g = tc.grad("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", "Z")(Z=Z, t=t)
    s = np.exp(Z - Z.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    close(g, s - np.eye(4)[t])


def test_embedding_linear_gradients_closed_form():
    r = seeded_rng(43)
    E, W, t = r.normal(size=(5, 4)), r.normal(size=(4, 3)), repeated_labels()
    src = "h[n,o] = E[t[n],j] W[j,o]\nL = h[n,o]^2"
    H = E[t] @ W
    gE = np.zeros_like(E)
    np.add.at(gE, t, 2 * H @ W.T)
    close(tc.grad(src, "E")(E=E, t=t, W=W), gE)
    close(tc.grad(src, "W")(E=E, t=t, W=W), 2 * E[t].T @ H)


def test_gradient_of_same_correlation_with_sizes_at_compile():
    r = seeded_rng(44)
    x, w = r.normal(size=11), r.normal(size=3)
    ybar = r.normal(size=11)
    src = "y[i] = x[i+k-1] w[k]\nL = ybar[i] y[i]"
    gx = tc.grad(tc.compile(src, sizes={"i": 11}), "x")
    # x_bar[p] = sum_i ybar[i] w[p-i+1]: np.convolve(ybar, w, "same") for odd K
    close(gx(x=x, w=w, ybar=ybar), np.convolve(ybar, w, "same"))
    gw = tc.grad(tc.compile(src, sizes={"i": 11}), "w")
    xp = np.concatenate([[0.0], x, [0.0]])
    close(gw(x=x, w=w, ybar=ybar), np.correlate(xp, ybar, "valid"))


def test_gradient_of_same_correlation_with_sizes_at_evaluate():
    """Sizes given when the derivative is called (docs/index-arithmetic.md), not when it is
    built."""
    r = seeded_rng(45)
    x, w = r.normal(size=9), r.normal(size=3)
    g = tc.grad("y[i] = x[i+k-1] w[k]\nL = y[i]^2", "x")
    y = np.correlate(x, w, "same")
    close(g.evaluate({"x": x, "w": w}, sizes={"i": 9}), np.convolve(2 * y, w, "same"))
    _round_trip(g, {"x": x, "w": w}, {"i": 9})


def test_gradient_wrt_index_array_is_refused():
    srcs = ["e[n,j] = E[t[n], j]\nL = e[n,j]^2",
            "L = logsumexp[j](Z[n,j]) - Z[n, t[n]]",
            "h[n,o] = E[t[n],j] W[j,o]\nL = h[n,o]^2"]
    for src in srcs:
        with pytest.raises(tc.TensorCalcError, match=r"\bt\b"):
            tc.grad(src, "t")
        with pytest.raises(tc.TensorCalcError, match=r"\bt\b"):
            tc.derive(src, "t")
        with pytest.raises(tc.TensorCalcError, match=r"\bt\b"):
            tc.hessian(src, "t")
        with pytest.raises(tc.TensorCalcError, match=r"\bt\b"):
            tc.vjp(src, "t", cotangent="G")
        with pytest.raises(tc.TensorCalcError, match=r"\bt\b"):
            tc.jvp(src, "t", tangent="V")
    with pytest.raises((tc.DerivativeError, tc.ProgramError)):
        tc.grad(srcs[0], "t")


def test_gather_with_a_two_axis_index_array():
    r = seeded_rng(46)
    E, t = r.normal(size=(5, 3)), np.array([[0, 4], [2, 2], [1, 0]])
    C = r.normal(size=(3, 2, 3))
    close(tc.evaluate("e[n,m,j] = E[t[n,m], j]", E=E, t=t), E[t])
    src = "e[n,m,j] = E[t[n,m], j]\nL = e[n,m,j] C[n,m,j]"
    g = tc.grad(src, "E")
    expected = np.zeros_like(E)
    np.add.at(expected, t.ravel(), C.reshape(-1, 3))
    close(g(E=E, t=t, C=C), expected)
    _round_trip(g, dict(E=E, t=t, C=C))


def test_two_gathers_and_a_shifted_gather_match_jax(jax64):
    jnp = jax64.numpy
    r = seeded_rng(47)
    E, F = r.normal(size=(5, 3)), r.normal(size=(4, 3))
    v, u = np.array([4, 0, 4, 2]), np.array([3, 3, 0, 1])
    src = "s[n] = E[v[n],j] F[u[n],j]\nL = s[n]^2"
    arrays = dict(E=E, F=F, v=v, u=u)
    close(tc.evaluate(src, **arrays), np.sum(np.sum(E[v] * F[u], axis=1) ** 2))

    def f(E, F, v, u):
        return jnp.sum(jnp.sum(E[v] * F[u], axis=1) ** 2)

    for wrt in ("E", "F"):
        g = tc.grad(src, wrt)
        close(g(**arrays), _jax_grad(jax64, f, arrays, wrt))
        close(g(**arrays), _fd_grad(src, wrt, arrays), FD)
        _round_trip(g, arrays)
    # an affine row and a gathered column in one read
    Z, t = r.normal(size=(5, 6)), np.array([0, 5, 2, 2])
    src = "p[n] = Z[n+1, t[n]]\nL = sin(p[n])"
    close(tc.evaluate("p[n] = Z[n+1, t[n]]", Z=Z, t=t), Z[np.arange(1, 5), t])

    def h(Z, t):
        return jnp.sum(jnp.sin(Z[jnp.arange(1, 5), t]))

    g = tc.grad(src, "Z")
    close(g(Z=Z, t=t), _jax_grad(jax64, h, dict(Z=Z, t=t), "Z"))
    _round_trip(g, dict(Z=Z, t=t))


def test_compact_jacobians_equal_dense():
    r = seeded_rng(48)
    x, w = r.normal(size=9), r.normal(size=3)
    E, t = r.normal(size=(5, 3)), repeated_labels()
    for src, wrt, arrays in [("y[i] = x[i+k] w[k]", "x", dict(x=x, w=w)),
                             ("y[i] = x[i+k] w[k]", "w", dict(x=x, w=w)),
                             ("d[i] = x[i+1] - x[i]", "x", dict(x=x)),
                             ("e[n,j] = E[t[n], j]", "E", dict(E=E, t=t))]:
        d = tc.derive(src, wrt)
        dense = d(**arrays)
        compact = d.evaluate(arrays, compact=True)
        close(compact.toarray(), dense)
        close(dense, numeric_jacobian(src, wrt, arrays), FD)


def test_to_jax_gradient_through_a_correlation(jax64):
    jnp = jax64.numpy
    r = seeded_rng(49)
    x, w = r.normal(size=10), r.normal(size=3)
    f = tc.to_jax("y[i] = x[i+k] w[k]\nL = y[i]^2")
    got = jax64.grad(lambda a, b: f(x=a, w=b), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    y = np.correlate(x, w, "valid")
    close(np.asarray(got[0]), np.convolve(2 * y, w, "full"))
    close(np.asarray(got[1]), np.correlate(x, 2 * y, "valid"))


# --------------------------------------------------------------------------- vjp / jvp


def test_vjp_and_jvp_of_valid_correlation():
    r = seeded_rng(50)
    x, w = r.normal(size=10), r.normal(size=4)
    G, V, U = r.normal(size=7), r.normal(size=10), r.normal(size=4)
    src = "y[i] = x[i+k] w[k]"
    arrays = dict(x=x, w=w, G=G, V=V, U=U)
    vx = tc.vjp(src, "x", cotangent="G")
    vw = tc.vjp(src, "w", cotangent="G")
    jx = tc.jvp(src, "x", tangent="V")
    jw = tc.jvp(src, "w", tangent="U")
    close(vx(x=x, w=w, G=G), np.convolve(G, w, "full"))
    close(vw(x=x, w=w, G=G), np.correlate(x, G, "valid"))
    close(jx(x=x, w=w, V=V), np.correlate(V, w, "valid"))
    close(jw(x=x, w=w, U=U), np.correlate(x, U, "valid"))
    for d in (vx, vw, jx, jw):
        _round_trip(d, {k: v for k, v in arrays.items() if k in d.inputs})


def test_vjp_and_jvp_of_strided_conv2d_match_jax(jax64):
    jax, jnp = jax64, jax64.numpy
    r = seeded_rng(51)
    x, W = r.normal(size=(2, 2, 7, 6)), r.normal(size=(3, 2, 3, 2))
    src = "y[b,o,i,j] = x[b,c,2*i+a,2*j+b2] W[o,c,a,b2]"
    y, pullback = jax.vjp(lambda x_, W_: jax_conv2d(jax, x_, W_, stride=2), jnp.asarray(x),
                          jnp.asarray(W))
    G = r.normal(size=y.shape)
    gx, gW = pullback(jnp.asarray(G))
    vx = tc.vjp(src, "x", cotangent="G")
    vW = tc.vjp(src, "W", cotangent="G")
    close(vx(x=x, W=W, G=G), np.asarray(gx))
    close(vW(x=x, W=W, G=G), np.asarray(gW))
    V = r.normal(size=x.shape)
    _, tangent = jax.jvp(lambda x_: jax_conv2d(jax, x_, jnp.asarray(W), stride=2),
                         (jnp.asarray(x),), (jnp.asarray(V),))
    jx = tc.jvp(src, "x", tangent="V")
    close(jx(x=x, W=W, V=V), np.asarray(tangent))
    _round_trip(vx, dict(x=x, W=W, G=G))
    _round_trip(vW, dict(x=x, W=W, G=G))
    _round_trip(jx, dict(x=x, W=W, V=V))


def test_vjp_and_jvp_of_gather():
    r = seeded_rng(52)
    E, t = r.normal(size=(5, 3)), repeated_labels()
    G, V = r.normal(size=(t.size, 3)), r.normal(size=(5, 3))
    src = "e[n,j] = E[t[n], j]"
    v = tc.vjp(src, "E", cotangent="G")
    expected = np.zeros_like(E)
    np.add.at(expected, t, G)
    close(v(E=E, t=t, G=G), expected)
    j = tc.jvp(src, "E", tangent="V")
    close(j(E=E, t=t, V=V), V[t])
    _round_trip(v, dict(E=E, t=t, G=G))
    _round_trip(j, dict(E=E, t=t, V=V))


def test_vjp_of_same_correlation_with_sizes():
    r = seeded_rng(53)
    x, w, G = r.normal(size=9), r.normal(size=3), r.normal(size=9)
    p = tc.compile("y[i] = x[i+k-1] w[k]", sizes={"i": 9})
    v = tc.vjp(p, "x", cotangent="G")
    close(v(x=x, w=w, G=G), np.convolve(G, w, "same"))
    _round_trip(v, dict(x=x, w=w, G=G), {"i": 9})
    V = r.normal(size=9)
    j = tc.jvp(p, "x", tangent="V")
    close(j(x=x, w=w, V=V), np.correlate(V, w, "same"))
    _round_trip(j, dict(x=x, w=w, V=V), {"i": 9})
    vw = tc.vjp(p, "w", cotangent="G")
    close(vw(x=x, w=w, G=G), np.correlate(np.concatenate([[0.0], x, [0.0]]), G, "valid"))
    _round_trip(vw, dict(x=x, w=w, G=G), {"i": 9})


# --------------------------------------------------------------------------- Jacobians


def test_jacobian_of_forward_difference_is_the_difference_matrix():
    n = 7
    x = seeded_rng(60).normal(size=n)
    d = tc.derive("d[i] = x[i+1] - x[i]", "x")
    J = d(x=x)
    expected = np.diff(np.eye(n), axis=0)  # (n-1, n): row i is e[i+1] - e[i]
    close(J, expected)
    close(J, numeric_jacobian("d[i] = x[i+1] - x[i]", "x", {"x": x}), FD)
    _round_trip(d, {"x": x})


def test_jacobian_of_second_difference_and_valid_correlation():
    r = seeded_rng(61)
    x, w = r.normal(size=8), r.normal(size=3)
    d2 = tc.derive("l[i] = x[i+2] - 2*x[i+1] + x[i]", "x")
    close(d2(x=x), np.diff(np.eye(8), n=2, axis=0))
    _round_trip(d2, {"x": x})
    dc = tc.derive("y[i] = x[i+k] w[k]", "x")
    expected = np.zeros((6, 8))
    for i in range(6):
        expected[i, i: i + 3] = w
    close(dc(x=x, w=w), expected)
    _round_trip(dc, {"x": x, "w": w})
    dw = tc.derive("y[i] = x[i+k] w[k]", "w")
    close(dw(x=x, w=w), np.lib.stride_tricks.sliding_window_view(x, 3))
    _round_trip(dw, {"x": x, "w": w})


def test_jacobian_of_strided_correlation():
    r = seeded_rng(62)
    x, w = r.normal(size=11), r.normal(size=3)
    src = "y[i] = x[2*i+k] w[k]"
    d = tc.derive(src, "x")
    expected = np.zeros((5, 11))
    for i in range(5):
        expected[i, 2 * i: 2 * i + 3] = w
    close(d(x=x, w=w), expected)
    close(d(x=x, w=w), numeric_jacobian(src, "x", {"x": x, "w": w}), FD)
    _round_trip(d, {"x": x, "w": w})


def test_jacobian_of_gather():
    r = seeded_rng(63)
    E, t = r.normal(size=(5, 3)), repeated_labels()
    d = tc.derive("e[n,j] = E[t[n], j]", "E")
    J = d(E=E, t=t)
    expected = np.einsum("nv,jk->njvk", np.eye(5)[t], np.eye(3))
    close(J, expected)
    close(J, numeric_jacobian("e[n,j] = E[t[n], j]", "E", {"E": E, "t": t}), FD)
    _round_trip(d, {"E": E, "t": t})


def test_jacobian_of_same_correlation_with_sizes():
    r = seeded_rng(64)
    x, w = r.normal(size=6), r.normal(size=3)
    p = tc.compile("y[i] = x[i+k-1] w[k]", sizes={"i": 6})
    d = tc.derive(p, "x")
    expected = np.zeros((6, 6))
    for i in range(6):
        for k in range(3):
            if 0 <= i + k - 1 < 6:
                expected[i, i + k - 1] += w[k]
    close(d(x=x, w=w), expected)
    close(d(x=x, w=w), numeric_jacobian(p, "x", {"x": x, "w": w}), FD)
    _round_trip(d, {"x": x, "w": w}, {"i": 6})


# --------------------------------------------------------------------------- second derivatives


HESSIAN_CASES = [("valid", "x"), ("valid", "w"), ("strided", "x"), ("strided", "w"),
                 ("same", "x"), ("same", "w"), ("diff", "x"), ("laplace", "x"),
                 ("shift_product", "x"), ("gather", "E"),
                 ("conv2d_same", "W")]


@pytest.mark.parametrize("name,wrt", HESSIAN_CASES)
def test_hessian_matches_jax(jax64, name, wrt):
    case = ARITHMETIC_CASES[name]()
    h = tc.hessian(_program(case), wrt)
    got = h(**case["arrays"])
    fn = case["jax"](jax64.numpy, jax64)
    close(got, _jax_hessian(jax64, fn, case["arrays"], wrt), dict(rtol=1e-9, atol=1e-10))


@pytest.mark.parametrize("name,wrt", HESSIAN_CASES)
def test_hessian_round_trip_through_str(name, wrt):
    case = ARITHMETIC_CASES[name]()
    h = tc.hessian(_program(case), wrt)
    _round_trip(h, case["arrays"], case["sizes"])


def test_hessians_of_cross_entropy_and_embedding_linear_closed_form():
    r = seeded_rng(69)
    t = repeated_labels()
    Z = r.normal(size=(t.size, 5))
    h = tc.hessian("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", "Z")
    s = np.exp(Z - Z.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    block = np.einsum("nj,jk->njk", s, np.eye(5)) - np.einsum("nj,nk->njk", s, s)
    expected = np.einsum("njk,nm->njmk", block, np.eye(t.size))
    close(h(Z=Z, t=t), expected)
    _round_trip(h, dict(Z=Z, t=t))
    E, W = r.normal(size=(5, 4)), r.normal(size=(4, 3))
    src = "h[n,o] = E[t[n],j] W[j,o]\nL = h[n,o]^2"
    hw = tc.hessian(src, "W")
    close(hw(E=E, t=t, W=W), 2 * np.einsum("jk,op->jokp", E[t].T @ E[t], np.eye(3)))
    _round_trip(hw, dict(E=E, t=t, W=W))
    he = tc.hessian(src, "E")
    counts = np.bincount(t, minlength=5)
    close(he(E=E, t=t, W=W), 2 * np.einsum("v,vu,jk->vjuk", counts, np.eye(5), W @ W.T))
    _round_trip(he, dict(E=E, t=t, W=W))


def test_hessian_of_valid_correlation_closed_form():
    r = seeded_rng(70)
    x, w = r.normal(size=9), r.normal(size=3)
    src = "y[i] = x[i+k] w[k]\nL = y[i]^2"
    X = np.lib.stride_tricks.sliding_window_view(x, 3)  # (7, 3): y = X w
    close(tc.hessian(src, "w")(x=x, w=w), 2 * X.T @ X)
    A = np.zeros((7, 9))
    for i in range(7):
        A[i, i: i + 3] = w  # y = A x
    close(tc.hessian(src, "x")(x=x, w=w), 2 * A.T @ A)


def test_mixed_second_derivative_matches_jax(jax64):
    jax, jnp = jax64, jax64.numpy
    r = seeded_rng(71)
    x, w = r.normal(size=10), r.normal(size=3)
    src = "y[i] = x[i+k] w[k]\nL = y[i]^2"

    def f(x_, w_):
        return jnp.sum(jnp.correlate(x_, w_, "valid") ** 2)

    xj, wj = jnp.asarray(x), jnp.asarray(w)
    d_xw = tc.derive(tc.grad(src, "x"), "w")  # d/dw_q (dL/dx_p): shape (10, 3)
    d_wx = tc.derive(tc.grad(src, "w"), "x")  # (3, 10)
    expected_xw = np.asarray(jax.jit(jax.jacfwd(jax.grad(f, argnums=0), argnums=1))(xj, wj))
    close(d_xw(x=x, w=w), expected_xw, dict(rtol=1e-9, atol=1e-10))
    close(d_wx(x=x, w=w), expected_xw.T, dict(rtol=1e-9, atol=1e-10))
    _round_trip(d_xw, {"x": x, "w": w})
    _round_trip(d_wx, {"x": x, "w": w})
    # the gradient is itself a program one can take the gradient of, once contracted
    gx = tc.grad(src, "x")
    again = tc.grad(tc.compile(str(gx) + "\nM = v[p] " + gx.result + "[p]"), "w")
    v = r.normal(size=10)
    close(again(x=x, w=w, v=v), expected_xw.T @ v, dict(rtol=1e-9, atol=1e-10))


def test_mixed_second_derivative_of_embedding_linear(jax64):
    jax, jnp = jax64, jax64.numpy
    r = seeded_rng(72)
    E, W, t = r.normal(size=(5, 4)), r.normal(size=(4, 3)), repeated_labels()
    src = "h[n,o] = E[t[n],j] W[j,o]\nL = h[n,o]^2"
    d = tc.derive(tc.grad(src, "E"), "W")

    def f(E_, W_):
        return jnp.sum((E_[jnp.asarray(t)] @ W_) ** 2)

    expected = jax.jit(jax.jacfwd(jax.grad(f, argnums=0), argnums=1))(jnp.asarray(E),
                                                                     jnp.asarray(W))
    close(d(E=E, t=t, W=W), np.asarray(expected), dict(rtol=1e-9, atol=1e-10))
    _round_trip(d, {"E": E, "t": t, "W": W})


# --------------------------------------------------------------------------- errors


def test_empty_valid_range_is_a_shape_error_naming_the_index():
    r = seeded_rng(80)
    x, w = r.normal(size=100), r.normal(size=101)
    with pytest.raises(tc.ShapeError, match=r"\bi\b"):
        tc.evaluate("y[i] = x[i+k] w[k]", x=x, w=w)
    with pytest.raises(tc.ShapeError, match=r"\bi\b"):
        tc.evaluate("y[i] = x[2*i+k] w[k]", x=r.normal(size=3), w=r.normal(size=5))
    with pytest.raises(tc.ShapeError, match=r"\bi\b"):
        tc.evaluate("d[i] = x[i+1] - x[i]", x=r.normal(size=1))
    with pytest.raises(tc.ShapeError, match=r"\bj\b"):
        tc.evaluate("y[b,o,i,j] = x[b,c,i+a,j+b2] W[o,c,a,b2]",
                    x=r.normal(size=(1, 1, 5, 2)), W=r.normal(size=(1, 1, 2, 3)))
    assert issubclass(tc.ShapeError, tc.TensorCalcError)


def test_negative_shift_without_sizes_is_not_a_wrong_number():
    """x[i-k] with w[k] sized by w: at i = 0 the read x[-k] is outside x for every k > 0,
    so the valid range from 0 is empty (the valid rule, docs/index-arithmetic.md): an error naming
    i, never a value computed with a kernel cut short."""
    r = seeded_rng(81)
    x, w = r.normal(size=10), r.normal(size=3)
    with pytest.raises(tc.ShapeError, match=r"\bi\b"):
        tc.evaluate("y[i] = x[i-k] w[k]", x=x, w=w)
    with pytest.raises(tc.ShapeError, match=r"\bi\b"):
        tc.evaluate("d[i] = x[i] - x[i-1]", x=x)


def test_index_nothing_sizes_is_an_input_error_naming_it():
    x = np.arange(5.0)
    with pytest.raises(tc.InputError, match=r"\b[ik]\b"):
        tc.evaluate("y[i] = x[i+k]", x=x)
    with pytest.raises(tc.InputError, match=r"\bp\b"):
        tc.evaluate("y[p] = delta[p, i+1] x[i]", x=x)


def test_index_array_of_float_dtype_is_an_input_error():
    E = np.ones((5, 3))
    with pytest.raises(tc.InputError, match=r"(?s)\bt\b.*float"):
        tc.evaluate("e[n,j] = E[t[n], j]", E=E, t=np.array([0.0, 1.0]))
    with pytest.raises(tc.InputError, match=r"\bt\b"):
        tc.evaluate("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", Z=np.ones((2, 3)),
                    t=np.array([0.0, 2.0]))


@pytest.mark.parametrize("bad,shown", [(7, "7"), (5, "5"), (-1, "-1"), (-6, "-6")])
def test_index_array_out_of_range_is_an_input_error_naming_tensor_and_value(bad, shown):
    E = np.ones((5, 3))
    t = np.array([0, bad, 1])
    with pytest.raises(tc.InputError, match=rf"(?s)\bt\b.*(?<![\d-]){re.escape(shown)}(?!\d)"):
        tc.evaluate("e[n,j] = E[t[n], j]", E=E, t=t)


def test_label_out_of_range_in_cross_entropy():
    with pytest.raises(tc.InputError, match=r"(?s)\bt\b.*\b4\b"):
        tc.evaluate("L = logsumexp[j](Z[n,j]) - Z[n, t[n]]", Z=np.ones((3, 4)),
                    t=np.array([0, 4, 1]))


def test_bad_index_arrays_in_a_derivative_are_input_errors():
    g = tc.grad("e[n,j] = E[t[n], j]\nL = e[n,j]^2", "E")
    with pytest.raises(tc.InputError, match=r"(?s)\bt\b.*\b9\b"):
        g(E=np.ones((5, 3)), t=np.array([1, 9]))
    with pytest.raises(tc.InputError, match=r"(?s)\bt\b.*-2"):
        g(E=np.ones((5, 3)), t=np.array([1, -2]))
    with pytest.raises(tc.InputError, match=r"(?s)\bt\b.*float"):
        g(E=np.ones((5, 3)), t=np.array([1.0, 2.0]))


@pytest.mark.parametrize("src,shown", [
    ("y[i+1] = x[i]", "i+1"),
    ("y[2*i] = x[i]", "2*i"),
    ("s = sum[i+1](x[i])", "i+1"),
    ("input x[p+1]\ny[p] = x[p]", "p+1"),
    ("e[n,j] = E[t[n]+1, j]", "t"),
    ("y[i] = x[i+1.5]", "1.5"),
    ("y[n] = x[t[n]] + t[n]", "t"),
])
def test_program_errors(src, shown):
    with pytest.raises(tc.ProgramError, match=re.escape(shown)):
        tc.compile(src)


def test_given_sizes_are_checked():
    r = seeded_rng(82)
    x, w = r.normal(size=10), r.normal(size=3)
    with pytest.raises(tc.ShapeError, match=r"(?s)\bk\b.*(5.*3|3.*5)"):
        tc.compile("y[i] = x[i+k] w[k]", sizes={"k": 5})(x=x, w=w)
    for bad in (0, -3, 2.5):
        with pytest.raises(tc.InputError, match=r"\bi\b"):
            tc.compile("y[i] = x[i+k] w[k]", sizes={"i": bad})(x=x, w=w)


def test_all_errors_are_tensorcalc_errors():
    for cls in (tc.ShapeError, tc.InputError, tc.ProgramError, tc.DerivativeError):
        assert issubclass(cls, tc.TensorCalcError)

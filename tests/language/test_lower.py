"""The language of docs/language.md: summation convention, syntax, precedence, programs.

Every value is checked against a hand-written NumPy formula on random arrays with
distinct axis sizes, so a transposed or mis-summed axis shows up.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc

RTOL = 1e-10
ATOL = 1e-12


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def run_evaluate(src, **arrays):
    return tc.evaluate(src, **arrays)


def run_compile(src, **arrays):
    return tc.compile(src)(**arrays)


RUNNERS = [run_evaluate, run_compile]


@pytest.fixture(params=RUNNERS, ids=["evaluate", "compile"])
def run(request):
    return request.param


def close(actual, expected, rtol=RTOL, atol=ATOL):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.all(np.isfinite(expected)), "a reference value is not finite: the test is vacuous"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --- the summation-convention table (docs/language.md) -----------------------------------


def _softplus(x):
    return np.logaddexp(0.0, x)


def _table_cases():
    g = rng(1)
    X34 = g.standard_normal((3, 4))
    W45 = g.standard_normal((4, 5))
    W34 = g.standard_normal((3, 4))
    x4 = g.standard_normal(4)
    b3 = g.standard_normal(3)
    c3 = g.standard_normal(3)
    Y34 = g.standard_normal((3, 4))
    A44 = g.standard_normal((4, 4))
    A34 = g.standard_normal((3, 4))
    y4 = g.standard_normal(4)
    x3 = g.standard_normal(3)
    z5 = g.standard_normal(5)
    yy5 = g.standard_normal(5)
    Z35 = g.standard_normal((3, 5))
    Xb = g.standard_normal((5, 3))  # b=5, d=3
    Wdh = g.standard_normal((3, 4))  # d=3, h=4
    ch = g.standard_normal(4)
    return [
        ("matmul", "Y[i,j] = X[i,k] W[k,j]", dict(X=X34, W=W45), X34 @ W45),
        ("affine", "y[i] = W[i,j] x[j] + b[i]", dict(W=W34, x=x4, b=b3), W34 @ x4 + b3),
        (
            "tanh-layer",
            "H[b,h] = tanh(X[b,d] W[d,h] + c[h])",
            dict(X=Xb, W=Wdh, c=ch),
            np.tanh(Xb @ Wdh + ch),
        ),
        (
            "affine-times",
            "y[i] = (A[i,j] x[j] + b[i]) c[i]",
            dict(A=A34, x=x4, b=b3, c=c3),
            (A34 @ x4 + b3) * c3,
        ),
        ("row-sums", "s[i] = X[i,j]", dict(X=X34), X34.sum(axis=1)),
        ("row-sum-exp", "s[i] = exp(X[i,j])", dict(X=X34), np.exp(X34).sum(axis=1)),
        (
            "frobenius",
            "L = (X[i,j] - Y[i,j])^2",
            dict(X=X34, Y=Y34),
            np.sum((X34 - Y34) ** 2),
        ),
        ("trace", "t = A[i,i]", dict(A=A44), np.trace(A44)),
        ("diagonal", "d[i] = A[i,i]", dict(A=A44), np.diag(A44).copy()),
        (
            "outer-contracts",
            "s = x[i] tanh(A[i,j] y[j])",
            dict(x=x3, A=A34, y=y4),
            x3 @ np.tanh(A34 @ y4),
        ),
        (
            "logistic-loss",
            "L = sum[i](softplus(-y[i] z[i]))",
            dict(y=yy5, z=z5),
            np.sum(_softplus(-yy5 * z5)),
        ),
        (
            "softplus-of-dot",
            "L = softplus(-y[i] z[i])",
            dict(y=yy5, z=z5),
            _softplus(-(yy5 @ z5)),
        ),
        (
            "logsumexp",
            "l[n] = log(sum[j](exp(Z[n,j])))",
            dict(Z=Z35),
            np.log(np.exp(Z35).sum(axis=1)),
        ),
        ("elementwise-lhs", "y[i] = a[i] b[i]", dict(a=x3, b=b3), x3 * b3),
    ]


TABLE = _table_cases()


@pytest.mark.parametrize("name,src,arrays,expected", TABLE, ids=[c[0] for c in TABLE])
def test_summation_table(run, name, src, arrays, expected):
    close(run(src, **arrays), expected)


# --- further summation-convention consequences ----------------------------------


def _more_rule_cases():
    g = rng(2)
    x = g.standard_normal(4)
    y = g.uniform(0.5, 2.0, 4)
    X = g.standard_normal((3, 4))
    b = g.standard_normal(3)
    c = g.standard_normal(3)
    w = g.standard_normal(4)
    M = g.standard_normal((4, 4))
    T = g.standard_normal((3, 3, 3))
    return [
        # a division counts as a factor b^-1 of its product: i is contracted
        ("division-contracts", "s = x[i] / y[i]", dict(x=x, y=y), np.sum(x / y)),
        # a power forms no product with its surroundings, but is a factor of the outer one
        ("power-factor", "s = x[i] y[i]^2", dict(x=x, y=y), np.sum(x * y**2)),
        ("power-rule2", "s = x[i]^2", dict(x=x), np.sum(x**2)),
        # rule 2 per top-level term
        ("rule2-per-term", "s[i] = X[i,j] + b[i]", dict(X=X, b=b), X.sum(axis=1) + b),
        ("rule2-two-terms", "s = x[i] + y[j]", dict(x=x, y=y), x.sum() + y.sum()),
        # the outermost product wins over an inner one
        ("dot", "s = x[i] y[i]", dict(x=x, y=y), x @ y),
        ("matvec-transposed", "z[j] = X[i,j] b[i]", dict(X=X, b=b), X.T @ b),
        ("outer", "O[i,j] = b[i] x[j]", dict(b=b, x=x), np.outer(b, x)),
        ("transpose", "T[j,i] = X[i,j]", dict(X=X), X.T),
        # rule 2 sums over the whole top-level term, not just the innermost sum holding k
        # (x[j] is multiplied by size(k): a trap, which warns; TRAPS below)
        (
            "rule2-whole-term",
            "y[i] = M[i,j] (x[j] + z[k])",
            dict(M=M, x=x, z=b),
            3 * (M @ x) + M.sum(axis=1) * b.sum(),
        ),
        # a divisor is a factor b^-1 of the product: k is summed outside it (not softmax)
        (
            "rule2-divisor",
            "S[i,j] = exp(X[i,j]) / exp(X[i,k])",
            dict(X=X),
            np.exp(X) * np.exp(-X).sum(axis=1, keepdims=True),
        ),
        (
            "softmax",
            "S[i,j] = exp(X[i,j]) / sum[k](exp(X[i,k]))",
            dict(X=X),
            np.exp(X) / np.exp(X).sum(axis=1, keepdims=True),
        ),
        # the base of a power forms no product with its surroundings
        ("power-base-contracts", "s = (x[i] y[i])^2", dict(x=x, y=y), (x @ y) ** 2),
        (
            "power-outer-contracts",
            "s = (x[i] y[i])^2 w[i]",
            dict(x=x, y=y, w=w),
            np.sum((x * y) ** 2 * w),
        ),
        (
            "exponent-contracts",
            "v[i] = y[i]^(b[j] c[j])",
            dict(y=y, b=b, c=c),
            y ** (b @ c),
        ),
        (
            "function-held-by-outer",
            "s = x[i] tanh(y[i] w[i])",
            dict(x=x, y=y, w=w),
            x @ np.tanh(y * w),
        ),
        (
            "function-contracts-inside",
            "s = tanh(y[i] w[i]) + x[i]",
            dict(x=x, y=y, w=w),
            np.tanh(y @ w) + x.sum(),
        ),
        ("quadratic-form", "q = -x[i] M[i,j] x[j]", dict(x=x, M=M), -(x @ M @ x)),
        ("three-factor-index", "s = x[i] y[i] w[i]", dict(x=x, y=y, w=w), np.sum(x * y * w)),
        (
            "nested-sums",
            "s = sum[i](x[i] sum[j](A[i,j] b[j]))",
            dict(x=x, A=M[:, :3], b=b),
            x @ M[:, :3] @ b,
        ),
        ("delta-both", "s = delta[i,j] x[i] y[j]", dict(x=x, y=y), x @ y),
        ("delta-chain", "v[i] = delta[i,j] delta[j,k] x[k]", dict(x=x), x),
        ("triple-diagonal", "d[i] = T[i,i,i]", dict(T=T), np.einsum("iii->i", T)),
    ]


MORE = _more_rule_cases()
#: The cases above that are a trap of the convention (tensorcalc/language/traps.py): they
#: run as the convention says, and warn.
TRAPS = {"rule2-whole-term"}


@pytest.mark.parametrize("name,src,arrays,expected", MORE, ids=[c[0] for c in MORE])
def test_summation_rules_more(run, name, src, arrays, expected):
    if name in TRAPS:
        with pytest.warns(tc.TensorCalcWarning, match="does not occur in x"):
            value = run(src, **arrays)
    else:
        value = run(src, **arrays)
    close(value, expected)


# --- syntax -----------------------------------------------------------------------


def test_juxtaposition_equals_star(run):
    g = rng(3)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 5))
    a = run("Y[i,j] = X[i,k] W[k,j]", X=X, W=W)
    b = run("Y[i,j] = X[i,k] * W[k,j]", X=X, W=W)
    close(a, X @ W)
    close(b, X @ W)
    close(a, b, rtol=0, atol=0)


def test_juxtaposition_equals_star_three_factors(run):
    g = rng(4)
    A, B, C = g.standard_normal((3, 4)), g.standard_normal((4, 5)), g.standard_normal((5, 2))
    a = run("Y[i,l] = A[i,j] B[j,k] C[k,l]", A=A, B=B, C=C)
    b = run("Y[i,l] = A[i,j] * B[j,k] * C[k,l]", A=A, B=B, C=C)
    close(a, A @ B @ C)
    close(b, A @ B @ C)


def test_no_spaces(run):
    g = rng(5)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 5))
    close(run("Y[i,j]=X[i,k]W[k,j]", X=X, W=W), X @ W)


def test_extra_whitespace(run):
    g = rng(6)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 5))
    close(run("  Y [ i , j ]   =   X[ i, k ]   W[k ,j]  ", X=X, W=W), X @ W)


def test_multi_letter_indices(run):
    g = rng(7)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 5))
    close(run("Y[batch, out] = X[batch, feat] W[feat, out]", X=X, W=W), X @ W)


def test_identifier_names(run):
    g = rng(8)
    x, w = g.standard_normal(4), g.standard_normal(4)
    close(run("out_1[i_0] = x_in[i_0] W2[i_0] + _b", x_in=x, W2=w, _b=np.asarray(1.5)), x * w + 1.5)


def test_semicolon_separator(run):
    x = rng(9).standard_normal(4)
    close(run("a[i] = x[i] + 1; b[i] = a[i] * 2", x=x), (x + 1) * 2)


def test_newline_separator_and_comments(run):
    x = rng(10).standard_normal(4)
    src = """
# leading comment
a[i] = x[i] + 1   # trailing comment

# a blank line above and a comment here
b[i] = a[i] * 2
# final comment
"""
    close(run(src, x=x), (x + 1) * 2)


def test_mixed_separators(run):
    x = rng(11).standard_normal(3)
    close(run("a[i] = 2 x[i];\nb[i] = a[i] + x[i];; c[i] = b[i]^2\n", x=x), (3 * x) ** 2)


def test_comment_with_operators_is_ignored(run):
    x = rng(12).standard_normal(3)
    close(run("y[i] = x[i] # + 100 * z[i] ; w = ( [", x=x), x)


@pytest.mark.parametrize("lhs", ["s", "s[]"])
def test_scalar_statement(run, lhs):
    g = rng(13)
    x, y = g.standard_normal(5), g.standard_normal(5)
    out = run(f"{lhs} = x[i] y[i]", x=x, y=y)
    assert np.shape(out) == ()
    np.testing.assert_allclose(float(np.asarray(out)), x @ y, rtol=RTOL)


def test_scalar_lhs_forms_agree(run):
    A = rng(14).standard_normal((3, 4))
    a = run("s = A[i,j]^2", A=A)
    b = run("s[] = A[i,j]^2", A=A)
    np.testing.assert_allclose(np.asarray(a), np.sum(A**2), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL)


def test_bare_scalar_input(run):
    x = rng(15).standard_normal(4)
    close(run("y[i] = a x[i] + c", a=np.asarray(2.5), x=x, c=np.asarray(-1.0)), 2.5 * x - 1.0)


def test_bare_scalar_input_python_float(run):
    x = rng(16).standard_normal(4)
    close(run("y[i] = a x[i]", a=2.5, x=x), 2.5 * x)


def test_scalar_used_in_later_statement(run):
    x = rng(17).standard_normal(4)
    close(run("n = x[i] x[i]\ny[i] = x[i] / sqrt(n)", x=x), x / np.linalg.norm(x))


# --- diagonal, trace, delta --------------------------------------------------------


def test_diagonal_and_trace(run):
    A = rng(18).standard_normal((4, 4))
    close(run("d[i] = A[i,i]", A=A), np.diag(A))
    close(run("t = A[i,i]", A=A), np.trace(A))


def test_diagonal_of_3d(run):
    T = rng(19).standard_normal((3, 4, 3))
    close(run("d[i,j] = T[i,j,i]", T=T), np.einsum("iji->ij", T))


def test_diagonal_times_vector(run):
    g = rng(20)
    A, x = g.standard_normal((4, 4)), g.standard_normal(4)
    close(run("y[i] = A[i,i] x[i]", A=A, x=x), np.diag(A) * x)


@pytest.mark.parametrize("delta", ["delta", "δ"])
def test_delta_contracts_to_identity(run, delta):
    x = rng(21).standard_normal(4)
    close(run(f"y[i] = {delta}[i,j] x[j]", x=x), x)


@pytest.mark.parametrize("delta", ["delta", "δ"])
def test_delta_elementwise_is_diag(run, delta):
    x = rng(22).standard_normal(4)
    close(run(f"D[i,j] = {delta}[i,j] x[j]", x=x), np.diag(x))


def test_delta_with_matrix(run):
    A = rng(23).standard_normal((3, 4))
    close(run("B[i,q] = delta[i,p] A[p,q]", A=A), A)
    close(run("E[i,j,p] = delta[i,p] A[p,j]", A=A), np.einsum("ip,pj->ijp", np.eye(3), A))


def test_delta_plus_matrix(run):
    A = rng(24).standard_normal((4, 4))
    close(run("B[i,j] = A[i,j] + 2 delta[i,j]", A=A), A + 2 * np.eye(4))


def test_delta_contracted_with_matrix_is_trace(run):
    A = rng(25).standard_normal((4, 4))
    close(run("t = delta[i,j] A[i,j]", A=A), np.trace(A))
    close(run("t = δ[i,j] A[j,i]", A=A), np.trace(A))


def test_delta_same_index_is_one(run):
    x = rng(251).standard_normal(4)
    close(run("y[i] = delta[i,i] x[i]", x=x), x)


# --- explicit sums ---------------------------------------------------------------


def test_sum_one_index(run):
    X = rng(26).standard_normal((3, 4))
    close(run("s[i] = sum[j](X[i,j])", X=X), X.sum(axis=1))


def test_sum_two_indices(run):
    A = rng(27).standard_normal((3, 4))
    close(run("s = sum[j,k](A[j,k])", A=A), A.sum())


def test_sum_two_indices_of_3d(run):
    T = rng(28).standard_normal((3, 4, 5))
    close(run("s[k] = sum[i,j](T[i,j,k]^2)", T=T), (T**2).sum(axis=(0, 1)))


def test_sum_holds_index_elementwise(run):
    g = rng(29)
    x, y = g.standard_normal(5), g.standard_normal(5)
    # inside sum[i], i is held: tanh is elementwise, then summed
    close(run("s = sum[i](tanh(x[i] y[i]))", x=x, y=y), np.sum(np.tanh(x * y)))
    # without sum, the product inside tanh contracts i
    close(run("s = tanh(x[i] y[i])", x=x, y=y), np.tanh(x @ y))


def test_sum_inside_product(run):
    g = rng(30)
    X, c = g.standard_normal((3, 4)), g.standard_normal(3)
    close(run("y[i] = c[i] sum[j](X[i,j]^2)", X=X, c=c), c * (X**2).sum(axis=1))


# --- numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("1e-3", 1e-3),
        (".5", 0.5),
        ("2.", 2.0),
        ("1.5E2", 150.0),
        ("3e+1", 30.0),
    ],
)
def test_number_literals(run, text, value):
    x = rng(31).standard_normal(4)
    close(run(f"y[i] = {text} x[i]", x=x), value * x)
    close(run(f"y[i] = x[i] * {text}", x=x), value * x)
    close(run(f"y[i] = x[i] + {text}", x=x), x + value)


# --- precedence -----------------------------------------------------------------


def test_neg_power_precedence(run):
    x = rng(32).standard_normal(4)
    close(run("y[i] = -x[i]^2", x=x), -(x**2))


def test_neg_power_precedence_scalar(run):
    x = rng(33).standard_normal(4)
    # -3^2 is -(3^2) = -9
    close(run("y[i] = x[i] * -3^2", x=x), -9 * x)


def test_power_right_associative(run):
    x = rng(34).standard_normal(4)
    close(run("y[i] = x[i] * 2^3^2", x=x), 512 * x)
    close(run("y[i] = x[i] * (2^3)^2", x=x), 64 * x)


def test_power_right_associative_constant_program(run):
    out = run("s = 2^3^2")
    np.testing.assert_allclose(np.asarray(out), 512.0)


def test_star_star_is_power(run):
    x = rng(35).standard_normal(4)
    a = run("y[i] = x[i]**2", x=x)
    b = run("y[i] = x[i]^2", x=x)
    close(a, x**2)
    close(a, b)
    close(run("y[i] = x[i] * 2**3**2", x=x), 512 * x)


def test_power_with_expression_exponent(run):
    g = rng(36)
    x, p = g.uniform(0.5, 2.0, 4), g.uniform(-1, 1, 4)
    close(run("y[i] = x[i]^(p[i] + 1)", x=x, p=p), x ** (p + 1))
    close(run("y[i] = x[i]^-1", x=x), 1 / x)
    close(run("y[i] = x[i]^0.5", x=x), np.sqrt(x))


def test_power_binds_tighter_than_product(run):
    g = rng(37)
    x, y = g.standard_normal(4), g.standard_normal(4)
    close(run("z[i] = x[i] y[i]^2", x=x, y=y), x * y**2)
    close(run("z[i] = 3 x[i]^2", x=x), 3 * x**2)


def test_division_left_associative(run):
    g = rng(38)
    a, b, c = g.uniform(1, 2, 4), g.uniform(1, 2, 4), g.uniform(1, 2, 4)
    close(run("y[i] = a[i] / b[i] / c[i]", a=a, b=b, c=c), a / b / c)
    close(run("y[i] = a[i] / (b[i] / c[i])", a=a, b=b, c=c), a / (b / c))
    np.testing.assert_allclose(np.asarray(run("s = 8 / 4 / 2")), 1.0)


def test_mixed_product_division_left_associative(run):
    g = rng(39)
    a, b, c = g.uniform(1, 2, 4), g.uniform(1, 2, 4), g.uniform(1, 2, 4)
    close(run("y[i] = a[i] / b[i] * c[i]", a=a, b=b, c=c), a / b * c)


def test_division_elementwise(run):
    g = rng(40)
    A, B = g.standard_normal(5), g.uniform(0.5, 2, 5)
    close(run("y[i] = A[i] / B[i]", A=A, B=B), A / B)


def test_division_broadcast(run):
    g = rng(41)
    X, n = g.standard_normal((3, 4)), g.uniform(0.5, 2, 3)
    close(run("Y[i,j] = X[i,j] / n[i]", X=X, n=n), X / n[:, None])


def test_subtraction_and_negation(run):
    g = rng(42)
    a, b = g.standard_normal(4), g.standard_normal(4)
    close(run("y[i] = a[i] - b[i] - 1", a=a, b=b), a - b - 1)
    close(run("y[i] = -a[i] + b[i]", a=a, b=b), -a + b)
    close(run("y[i] = a[i] - -b[i]", a=a, b=b), a + b)
    close(run("y[i] = a[i] -b[i]", a=a, b=b), a - b)


def test_sum_precedence(run):
    g = rng(43)
    a, b, c = g.standard_normal(4), g.standard_normal(4), g.standard_normal(4)
    close(run("y[i] = a[i] + b[i] c[i]", a=a, b=b, c=c), a + b * c)
    close(run("y[i] = (a[i] + b[i]) c[i]", a=a, b=b, c=c), (a + b) * c)


# --- broadcasting ---------------------------------------------------------------


def test_broadcast_add(run):
    g = rng(44)
    X, b = g.standard_normal((3, 4)), g.standard_normal(4)
    close(run("Z[i,j] = X[i,j] + b[j]", X=X, b=b), X + b)


def test_broadcast_add_row(run):
    g = rng(45)
    X, a = g.standard_normal((3, 4)), g.standard_normal(3)
    close(run("Z[i,j] = X[i,j] + a[i]", X=X, a=a), X + a[:, None])


def test_broadcast_outer_sum(run):
    g = rng(46)
    a, b = g.standard_normal(3), g.standard_normal(4)
    close(run("Z[i,j] = a[i] + b[j]", a=a, b=b), a[:, None] + b[None, :])


def test_broadcast_constant(run):
    X = rng(47).standard_normal((3, 4))
    close(run("Z[i,j] = X[i,j] + 1", X=X), X + 1)


def test_zero_coefficient_keeps_shape(run):
    # a well-formed statement whose right-hand side is identically zero still has
    # the shape its left-hand indices name (the sizes come from the arrays)
    x = rng(471).standard_normal(4)
    close(run("y[i] = 0 x[i]", x=x), np.zeros(4))
    close(run("y[i] = 0 * x[i]", x=x), np.zeros(4))


def test_zero_coefficient_term_keeps_broadcast_shape(run):
    g = rng(472)
    a, b = g.standard_normal(3), g.standard_normal(5)
    close(run("Z[i,j] = a[i] + 0 b[j]", a=a, b=b), np.repeat(a[:, None], 5, axis=1))


def test_cancelling_terms_keep_shape(run):
    g = rng(473)
    a, b = g.standard_normal(3), g.standard_normal(5)
    close(run("y[i] = a[i] - a[i]", a=a), np.zeros(3))
    close(run("Z[i,j] = a[i] - a[i] + b[j]", a=a, b=b), np.zeros((3, 1)) + b)


# --- multi-statement programs ----------------------------------------------------

NETWORK = """
# a two-layer network and its loss
H[b,h] = tanh(X[b,d] W[d,h] + c[h])
P[b,o] = H[b,h] V[h,o]
L      = (P[b,o] - T[b,o])^2
"""


def _network_arrays(seed=48):
    g = rng(seed)
    return dict(
        X=g.standard_normal((5, 3)),
        W=g.standard_normal((3, 4)),
        c=g.standard_normal(4),
        V=g.standard_normal((4, 2)),
        T=g.standard_normal((5, 2)),
    )


def _network_numpy(X, W, c, V, T):
    H = np.tanh(X @ W + c)
    P = H @ V
    return np.sum((P - T) ** 2)


def test_two_layer_network(run):
    arrays = _network_arrays()
    out = run(NETWORK, **arrays)
    assert np.shape(out) == ()
    np.testing.assert_allclose(np.asarray(out), _network_numpy(**arrays), rtol=RTOL)


def test_network_without_loss_is_last_statement(run):
    arrays = _network_arrays(49)
    del arrays["T"]
    src = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]"
    X, W, c, V = arrays["X"], arrays["W"], arrays["c"], arrays["V"]
    close(run(src, **arrays), np.tanh(X @ W + c) @ V)


def test_result_is_last_statement(run):
    x = rng(50).standard_normal(4)
    close(run("a[i] = x[i] + 1\nb[i] = 2 a[i]\nc[i] = b[i] - x[i]", x=x), 2 * (x + 1) - x)
    close(run("c[i] = x[i] - 1\nb[i] = 2 x[i]", x=x), 2 * x)


def test_intermediate_reused(run):
    g = rng(51)
    A, x = g.standard_normal((3, 4)), g.standard_normal(4)
    src = "m[i] = A[i,j] x[j]\nn = m[i] m[i]\ny[i] = m[i] / n"
    m = A @ x
    close(run(src, A=A, x=x), m / (m @ m))


def test_chain_of_matmuls(run):
    g = rng(52)
    W, V, x = g.standard_normal((4, 5)), g.standard_normal((3, 4)), g.standard_normal(5)
    close(run("m[k] = W[k,j] x[j]\ny[i] = V[i,k] m[k]", W=W, V=V, x=x), V @ (W @ x))


# --- Program objects -------------------------------------------------------------


def test_inputs_order_of_first_use():
    p = tc.compile("H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]")
    assert list(p.inputs) == ["X", "W", "c", "V"]


def test_inputs_order_more():
    assert list(tc.compile("y[i] = b[i] + W[i,j] x[j]").inputs) == ["b", "W", "x"]
    assert list(tc.compile(NETWORK).inputs) == ["X", "W", "c", "V", "T"]
    # a name used twice is listed once; assigned names are not inputs
    assert list(tc.compile("a[i] = x[i] x[i]; b[i] = a[i] + x[i] + z[i]").inputs) == ["x", "z"]


def test_program_is_callable_repeatedly_with_different_shapes():
    p = tc.compile("Y[i,j] = X[i,k] W[k,j]")
    g = rng(53)
    for shape in [(3, 4, 5), (2, 6, 1), (3, 4, 5), (1, 1, 1)]:
        n, k, m = shape
        X, W = g.standard_normal((n, k)), g.standard_normal((k, m))
        close(p(X=X, W=W), X @ W)


def test_evaluate_accepts_program():
    g = rng(54)
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 5))
    p = tc.compile("Y[i,j] = X[i,k] W[k,j]")
    close(tc.evaluate(p, X=X, W=W), X @ W)
    close(tc.compile(p)(X=X, W=W), X @ W)


ROUNDTRIP = [
    (
        "Y[i,j] = X[i,k] W[k,j]",
        lambda g: dict(X=g.standard_normal((3, 4)), W=g.standard_normal((4, 5))),
    ),
    (
        "y[i] = W[i,j] x[j] + b[i]",
        lambda g: dict(
            W=g.standard_normal((3, 4)), x=g.standard_normal(4), b=g.standard_normal(3)
        ),
    ),
    (NETWORK, lambda g: _network_arrays(55)),
    ("l[n] = log(sum[j](exp(Z[n,j])))", lambda g: dict(Z=g.standard_normal((3, 5)))),
    (
        "L = sum[i](softplus(-y[i] z[i]))",
        lambda g: dict(y=g.standard_normal(5), z=g.standard_normal(5)),
    ),
    ("L = softplus(-y[i] z[i])", lambda g: dict(y=g.standard_normal(5), z=g.standard_normal(5))),
    (
        "y[i] = -x[i]^2 + x[i]^2^0.5 / 3 / w[i]",
        lambda g: dict(x=g.uniform(0.5, 2, 4), w=g.uniform(0.5, 2, 4)),
    ),
    (
        "D[i,j] = delta[i,j] x[j] + A[i,i]",
        lambda g: dict(x=g.standard_normal(4), A=g.standard_normal((4, 4))),
    ),
    (
        "s = x[i] tanh(A[i,j] y[j])",
        lambda g: dict(
            x=g.standard_normal(3), A=g.standard_normal((3, 4)), y=g.standard_normal(4)
        ),
    ),
    (
        "s = (X[i,j] - Y[i,j])^2; t = 2 s - 1e-3",
        lambda g: dict(X=g.standard_normal((3, 4)), Y=g.standard_normal((3, 4))),
    ),
    (
        "s[i] = X[i,j] + b[i]",
        lambda g: dict(X=g.standard_normal((3, 4)), b=g.standard_normal(3)),
    ),
    (
        "y[i] = where(x[i] - 1 >= -b[i], maximum(x[i] b[i], 0), clip(X[i,j], -0.5, b[i]))",
        lambda g: dict(x=g.standard_normal(3), b=g.standard_normal(3),
                       X=g.standard_normal((3, 4))),
    ),
]


@pytest.mark.parametrize("src,make", ROUNDTRIP, ids=[f"p{k}" for k in range(len(ROUNDTRIP))])
def test_str_reparses_to_equal_program(src, make):
    arrays = make(rng(56))
    p = tc.compile(src)
    text = str(p)
    assert isinstance(text, str) and text.strip()
    q = tc.compile(text)
    close(q(**arrays), p(**arrays))
    # and printing is stable in value once more
    r = tc.compile(str(q))
    close(r(**arrays), p(**arrays))


def test_einsum_strings():
    p = tc.compile("Y[i,j] = X[i,k] W[k,j]")
    e = p.einsum
    assert isinstance(e, list) and len(e) > 0
    assert all(isinstance(s, str) and s for s in e)


def test_einsum_strings_network():
    p = tc.compile(NETWORK)
    e = p.einsum
    assert isinstance(e, list) and len(e) > 0
    assert all(isinstance(s, str) for s in e)


# --- dtypes ------------------------------------------------------------------------


def test_float32_in_float32_out(run):
    g = rng(57)
    X = g.standard_normal((3, 4)).astype(np.float32)
    W = g.standard_normal((4, 5)).astype(np.float32)
    out = np.asarray(run("Y[i,j] = X[i,k] W[k,j]", X=X, W=W))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, X @ W, rtol=1e-5, atol=1e-6)


def test_float32_with_constants_and_functions(run):
    g = rng(58)
    x = g.standard_normal(4).astype(np.float32)
    out = np.asarray(run("y[i] = 2 tanh(x[i]) + 0.5 x[i]^2", x=x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 2 * np.tanh(x) + 0.5 * x**2, rtol=1e-5, atol=1e-6)


def test_float32_network(run):
    arrays = {k: v.astype(np.float32) for k, v in _network_arrays(59).items()}
    out = np.asarray(run(NETWORK, **arrays))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _network_numpy(**arrays), rtol=1e-4)


def test_integer_inputs_give_correct_values(run):
    X = np.arange(12).reshape(3, 4)
    W = np.arange(20).reshape(4, 5)
    np.testing.assert_allclose(np.asarray(run("Y[i,j] = X[i,k] W[k,j]", X=X, W=W)), X @ W)


def test_inputs_not_modified(run):
    g = rng(60)
    X, b = g.standard_normal((3, 4)), g.standard_normal(4)
    X0, b0 = X.copy(), b.copy()
    run("Z[i,j] = tanh(X[i,j] + b[j])^2", X=X, b=b)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(b, b0)

"""Program-size limits (``tensorcalc/limits.py``, docs/limitations.md).

At each limit a program just inside it is accepted and gives the right numbers, and one
just past it is refused with a ``ProgramError`` that names the limit, before the work
that would take too long. Large programs at and past the limits are here too: a 2-million-term
sum, the derivative of a product of equal factors, a 32,000-factor product, the Hessian
of a product of 60 matrices, nested ``sum[]``.

Nothing here asserts on timing; each test takes a second or two on a 2-core machine, and
a generous alarm only keeps a runaway case from hanging the suite.
"""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.limits import (
    MAX_DERIVATIVE_FACTORS,
    MAX_FACTORS,
    MAX_NESTING,
    MAX_PROGRAM_CHARS,
    MAX_TERMS,
)

TEST_TIMEOUT_S = 60  # a runaway case fails instead of hanging; no assertion is about speed


pytestmark = pytest.mark.usefixtures("runaway_alarm")  # conftest: TEST_TIMEOUT_S


def refused(program: str, *words: str) -> str:
    """The message of the ProgramError that compiling ``program`` raises; it must name
    the limit and contain ``words``."""
    with pytest.raises(tc.ProgramError) as info:
        tc.compile(program)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# --- program text --------------------------------------------------------------------


def test_the_longest_program_text_is_accepted_and_one_character_more_is_refused() -> None:
    code = "y[i] = 2 x[i]  # "
    at_limit = code + "c" * (MAX_PROGRAM_CHARS - len(code))
    assert len(at_limit) == MAX_PROGRAM_CHARS
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(tc.evaluate(at_limit, x=x), 2 * x)
    refused(at_limit + "c", f"{MAX_PROGRAM_CHARS + 1:,} characters",
            f"up to {MAX_PROGRAM_CHARS:,}")


def test_a_ten_megabyte_sum_of_two_million_terms_is_refused_before_parsing() -> None:
    """Once: 300 s and 3.5 GB without an answer. Now refused by its length alone."""
    program = "y[i]=" + "+".join(["x[i]"] * 2_000_000)
    assert len(program) == 10_000_004
    refused(program, "10,000,004 characters", f"up to {MAX_PROGRAM_CHARS:,}")
    with pytest.raises(tc.ProgramError):
        tc.derive(program, "x")


# --- terms per statement ---------------------------------------------------------------


def test_a_sum_of_the_most_terms_evaluates_and_its_gradient_too() -> None:
    n = MAX_TERMS
    x = np.array([0.5, -1.0, 2.0])
    src = "y[i] = " + " + ".join(f"{k} x[i]" for k in range(1, n + 1))
    total = n * (n + 1) / 2
    np.testing.assert_allclose(tc.evaluate(src, x=x), total * x, rtol=1e-12)
    loss = "s = " + " + ".join(f"{k} x[i] x[i]" for k in range(1, n + 1))
    np.testing.assert_allclose(tc.grad(loss, "x")(x=x), 2 * total * x, rtol=1e-12)


def test_one_term_more_is_refused() -> None:
    refused("y[i] = " + " + ".join(["x[i]"] * (MAX_TERMS + 1)),
            f"{MAX_TERMS + 1:,} terms", f"up to {MAX_TERMS:,}", "statement y")


def test_terms_are_counted_at_every_depth() -> None:
    inner = " - ".join(["x[i]"] * (MAX_TERMS // 2 - 1))  # two of them, and the two calls
    assert tc.compile(f"y[i] = tanh({inner}) + exp({inner})").inputs == ("x",)
    refused(f"y[i] = tanh({inner}) + exp({inner}) + 1", f"{MAX_TERMS + 1:,} terms")


# --- factors per product -------------------------------------------------------------


def test_a_product_of_the_most_equal_factors_evaluates_and_derives() -> None:
    """Deriving 1000 equal factors once took 13.6 s (2000: 64 s): the product rule made
    n terms of n factors. Equal factors now make their terms once."""
    n = MAX_FACTORS
    src = "y[i] = " + " ".join(["x[i]"] * n)
    x = np.array([1.0001, 0.9999, -1.0])
    np.testing.assert_allclose(tc.evaluate(src, x=x), x**n, rtol=1e-9)
    J = tc.derive(src, "x")(x=x)
    np.testing.assert_allclose(J, np.diag(n * x ** (n - 1)), rtol=1e-9)
    s = tc.grad("s = " + " * ".join(["a"] * n), "a")(a=1.0001)
    np.testing.assert_allclose(s, n * 1.0001 ** (n - 1), rtol=1e-9)


def test_one_factor_more_is_refused() -> None:
    refused("y[i] = " + " ".join(["x[i]"] * (MAX_FACTORS + 1)),
            f"{MAX_FACTORS + 1:,} factors", f"up to {MAX_FACTORS:,}", "x[i]^3")
    # Once: 21 s for its first evaluation.
    refused("y[i] = " + " ".join(["x[i]"] * 32_000), "32,000 factors")
    # Numbers fold into the coefficient: they are not factors.
    assert tc.evaluate("y = " + " * ".join(["1"] * (MAX_FACTORS + 1)) + " * a", a=3.0) == 3.0


# --- nesting ---------------------------------------------------------------------------


def nested(kind: str, depth: int) -> str:
    if kind == "calls":
        return "y[i] = " + "tanh(" * depth + "x[i]" + ")" * depth
    if kind == "powers":
        return "y[i] = " + "(" * depth + "x[i]" + " + 1)^0.5" * depth
    if kind == "divisors":
        return "y[i] = " + "1 / (1 + " * depth + "x[i]" + ")" * depth
    if kind == "groups":
        return "y[i] = " + "(" * depth + "x[i]" + " + 1) x[i]" * depth
    if kind == "sums":
        idx = [f"i{k}" for k in range(depth)]
        return "s = " + "".join(f"sum[{i}](x[{i}] * " for i in idx) + "1" + ")" * depth
    raise AssertionError(kind)


def nested_value(kind: str, depth: int, x: np.ndarray) -> np.ndarray | float:
    value = x
    for _ in range(depth):
        if kind == "calls":
            value = np.tanh(value)
        elif kind == "powers":
            value = (value + 1) ** 0.5
        elif kind == "divisors":
            value = 1 / (1 + value)
        elif kind == "groups":
            value = (value + 1) * x
    if kind == "sums":
        return float(x.sum()) ** depth
    return value


KINDS = ["calls", "powers", "divisors", "groups", "sums"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_deepest_nesting_evaluates_prints_and_exports(kind: str) -> None:
    src = nested(kind, MAX_NESTING)
    x = np.array([0.25, 0.5, 0.75]) if kind != "sums" else np.array([0.5, 0.3, 0.25])
    p = tc.compile(src)
    np.testing.assert_allclose(p(x=x), nested_value(kind, MAX_NESTING, x), rtol=1e-10)
    again = tc.compile(str(p))
    np.testing.assert_allclose(again(x=x), nested_value(kind, MAX_NESTING, x), rtol=1e-10)
    assert p.latex() and p.to_python() and p.einsum


@pytest.mark.parametrize("kind", KINDS)
def test_one_level_deeper_is_refused(kind: str) -> None:
    """Nested sum[] was once refused from depth 50 on, with a message about recursion,
    while function calls went to about 100; every kind now stops at the same depth."""
    refused(nested(kind, MAX_NESTING + 1), f"{MAX_NESTING + 1:,} levels",
            f"up to {MAX_NESTING:,}", "in statements of their own")


def test_derivatives_at_the_deepest_nesting() -> None:
    """No RecursionError, and the right numbers. Nested calls are named as statements
    before they are differentiated (``tensorcalc.calculus.split``), so the derivative of calls
    nested to the limit prints as a chain and compiles again."""
    x = np.array([0.5, 0.3, 0.25])
    g = tc.grad(nested("sums", MAX_NESTING), "x")(x=x)
    np.testing.assert_allclose(g, MAX_NESTING * x.sum() ** (MAX_NESTING - 1) * np.ones(3),
                               rtol=1e-10)
    d = tc.derive(nested("calls", MAX_NESTING), "x")
    assert d.to_python() and d.latex()
    J = d(x=x)
    np.testing.assert_allclose(tc.compile(str(d))(x=x), J)
    a, slope = x.copy(), np.ones_like(x)
    for _ in range(MAX_NESTING):
        a = np.tanh(a)
        slope = slope * (1 - a * a)
    np.testing.assert_allclose(J, np.diag(slope), rtol=1e-10, atol=1e-300)


def test_grouping_parentheses_do_not_nest() -> None:
    deep = 5 * MAX_NESTING
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(tc.evaluate("y[i] = " + "(" * deep + "x[i]" + ")" * deep, x=x), x)
    np.testing.assert_allclose(
        tc.evaluate("y[i] = " + "(" * deep + "x[i]" + " + 1)" * deep, x=x), x + deep)


# --- derivatives -----------------------------------------------------------------------


def distinct_product(n: int) -> str:
    """``s = x[k0] x[k1] ...``: its gradient has n terms of n factors before they collect."""
    return "s = " + " ".join(f"x[k{k}]" for k in range(n))


def test_the_largest_derivative_expansion_is_accepted() -> None:
    n = int(MAX_DERIVATIVE_FACTORS**0.5)  # n terms of n factors: n * n
    assert n * n <= MAX_DERIVATIVE_FACTORS < (n + 1) * (n + 1)
    x = np.array([0.25, 0.5, 0.2501])
    g = tc.grad(distinct_product(n), "x")(x=x)
    np.testing.assert_allclose(g, n * x.sum() ** (n - 1) * np.ones(3), rtol=1e-9)


def test_one_more_factor_in_the_product_is_refused() -> None:
    n = int(MAX_DERIVATIVE_FACTORS**0.5) + 1
    program = tc.compile(distinct_product(n))  # the program itself is fine
    with pytest.raises(tc.ProgramError) as info:
        tc.grad(program, "x")
    message = str(info.value)
    assert "derivative of statement s" in message, message
    assert f"up to {MAX_DERIVATIVE_FACTORS:,}" in message, message
    assert "vjp" in message


def matrix_product(n: int) -> str:
    idx = [f"i{k}" for k in range(n + 1)]
    return "L = " + " ".join(f"W[{idx[k]},{idx[k + 1]}]" for k in range(n))


def test_hessian_of_a_product_of_60_matrices_is_refused_and_of_12_computed() -> None:
    """Once: 109 s. Its second derivative has 60 * 59 terms of 58 factors."""
    with pytest.raises(tc.ProgramError) as info:
        tc.hessian(matrix_product(60), "W")
    assert f"up to {MAX_DERIVATIVE_FACTORS:,}" in str(info.value)
    W = np.array([[0.5, 0.25], [-0.25, 0.5]])
    H = tc.hessian(matrix_product(12), "W")(W=W)
    step = 1e-5
    grad = tc.grad(matrix_product(12), "W")
    for p, q in [(0, 0), (0, 1), (1, 0)]:
        E = np.zeros_like(W)
        E[p, q] = step
        column = (grad(W=W + E) - grad(W=W - E)) / (2 * step)
        np.testing.assert_allclose(H[:, :, p, q], column, rtol=1e-6, atol=1e-9)

"""Derivatives print as programs: ``tc.compile(str(d))`` has ``d``'s inputs and numbers.

Every derivative that any test evaluates is also checked this way (``conftest.py``);
here are the cases the printed form is most likely to get wrong, and the ``input``
declaration of the language itself.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import PRINTED_CHECKS

import tensorcalc as tc

RNG = np.random.default_rng(7)
#: A case written as a trap of the summation convention on purpose: compiling it warns
#: (tests/language/test_traps.py checks the warnings).
TRAP = pytest.mark.filterwarnings("ignore::tensorcalc.TensorCalcWarning")


def same_numbers(d: tc.Program, **arrays: np.ndarray) -> np.ndarray:
    text = str(d)
    assert not re.search(r"\^0(?![\d.])", text), text  # no X^0 anchors
    assert d.source() == text
    again = tc.compile(text, strict=True)  # tensorcalc's text is never a trap
    value = d(**arrays)
    np.testing.assert_allclose(again(**arrays), value, rtol=1e-12, atol=1e-14, err_msg=text)
    return np.asarray(value)


@pytest.mark.parametrize("src, make, shapes", [
    ("s = x[i] c", lambda s: tc.hessian(s, "x"), {"x": (3,), "c": ()}),  # zero, shaped 3x3
    ("s = x[i] c", lambda s: tc.grad(s, "x"), {"x": (3,), "c": ()}),
    ("s = c + 2", lambda s: tc.grad(s, "c"), {"c": ()}),
    ("y = a[i] b[i] + c", lambda s: tc.derive(s, "c"), {"a": (3,), "b": (3,), "c": ()}),
    ("Y[i,j] = X[i,k] W[k,j]", lambda s: tc.derive(s, "X"), {"X": (2, 3), "W": (3, 4)}),
    ("Y[i,j] = X[i,k] W[k,j]", lambda s: tc.derive(s, "W"), {"X": (2, 3), "W": (3, 4)}),
    ("y[i] = x[i] + sum[j](x[j])", lambda s: tc.derive(s, "x"), {"x": (4,)}),
    ("S = W[a] delta[k,k] + U[k,b]", lambda s: tc.grad(s, "W"), {"W": (2,), "U": (3, 4)}),
    ("Y[i,k] = x[i] + Z[k]; s = Y[i,k]", lambda s: tc.grad(s, "x"), {"x": (2,), "Z": (5,)}),
    ("Y[i,k] = x[i] + Z[k]; s = Y[i,k] x[i]", lambda s: tc.hessian(s, "x"),
     {"x": (2,), "Z": (5,)}),
    # a sum factor distributed over a delta keeps the sizes it gave (k, in the delta part;
    # a trap of the convention on purpose, which warns: size(k) multiplies the delta term)
    pytest.param("R2 = (delta[i,a] + Z[k]) W[i,i]", lambda s: tc.grad(s, "W"),
                 {"Z": (4,), "W": (3, 3)}, marks=TRAP),
    pytest.param("R1[a] = X[i] (delta[i,a] Y[a,b] + exp(Z[k])) W[i,i]; R2 = R1[i]",
                 lambda s: tc.grad(s, "W"), {"X": (2,), "Y": (2, 3), "Z": (4,), "W": (2, 2)},
                 marks=TRAP),
    ("y[i] = sigmoid(W[i,j] x[j])", lambda s: tc.vjp(s, "W"), {"W": (2, 3), "x": (3,),
                                                               "G": (2,)}),
    ("y[i] = sigmoid(W[i,j] x[j])", lambda s: tc.jvp(s, "x"), {"W": (2, 3), "x": (3,),
                                                               "V": (3,)}),
])
def test_printed_derivative_compiles_to_the_same_numbers(src, make, shapes) -> None:
    arrays = {k: RNG.normal(size=s) for k, s in shapes.items()}
    same_numbers(make(src), **arrays)


def test_zero_hessian_prints_as_a_program_with_its_shape() -> None:
    h = tc.hessian("s = x[i] c", "x")
    text = str(h)
    assert text.splitlines()[0].startswith("input x[")
    assert text.splitlines()[-1].endswith("= 0")
    value = same_numbers(h, x=np.ones(3), c=np.float64(2.0))
    assert value.shape == (3, 3) and not value.any()


def test_constant_adjoints_are_folded_away() -> None:
    g = tc.grad("m[n] = x[n] + c; L = m[n]", "x")
    assert "_bar" not in str(g), str(g)
    np.testing.assert_allclose(same_numbers(g, x=np.ones(4), c=np.float64(1.0)), np.ones(4))


def test_the_conftest_hook_checks_evaluated_derivatives() -> None:
    before = PRINTED_CHECKS["count"]
    tc.grad("s = x[i] x[i]", "x")(x=np.ones(2))
    assert PRINTED_CHECKS["count"] == before + 1


# --------------------------------------------------------------------------- the language


def test_a_declaration_sizes_an_index_nothing_else_sizes() -> None:
    p = tc.compile("input x[p], W[q,j]\ng[p] = 1")
    assert p.inputs == ("x", "W")
    np.testing.assert_array_equal(p(x=np.zeros(3)), np.ones(3))
    s = tc.compile("input X[a,k]\nt = sum[k](2)")
    assert float(s(X=np.zeros((2, 5)))) == 10.0


def test_a_declaration_is_not_used_where_a_tensor_sizes_the_index() -> None:
    p = tc.compile("input X[p,q]\ny[p] = W[p,k] v[k]")
    W, v = RNG.normal(size=(4, 2)), RNG.normal(size=2)
    np.testing.assert_allclose(p(W=W, v=v, X=np.zeros((9, 9))), W @ v)


def test_declared_inputs_are_accepted_even_when_unused() -> None:
    p = tc.compile("input a[i], c\ny = c * 2")
    assert set(p.accepts) == {"a", "c"}
    assert float(p(a=np.ones(3), c=1.5)) == 3.0
    assert float(p(c=1.5)) == 3.0


@pytest.mark.parametrize("text, words", [
    ("y = x; input y[i]", "computed by the program"),
    ("input X[i,i]\ny = X[j,j]", "declares index i twice"),
    ("input X[i]\ny = X[j,k]", "but with 1 elsewhere"),
    ("input[i] = x[i]", "syntax error"),
    ("y = input[i]", "reserved word"),
    ("input sum[i]\ny = 1", "reserved word"),
    ("input x[p]", "no statement"),
    ("y[p] = 1", "never appears on the right-hand side"),
    ("y = sum[k](1)", "no input declaration sizes"),
])
def test_declaration_errors(text: str, words: str) -> None:
    with pytest.raises(tc.TensorCalcError, match=words):
        tc.compile(text)

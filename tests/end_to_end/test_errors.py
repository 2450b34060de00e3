"""Errors (docs/errors.md): the right type, the right words, and nothing else escapes."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc import (
    DerivativeError,
    InputError,
    ParseError,
    ProgramError,
    ShapeError,
    TensorCalcError,
)


def rng(seed=0):
    return np.random.default_rng(seed)


# --- the hierarchy -------------------------------------------------------------------


def test_hierarchy():
    for cls in (ParseError, ProgramError, InputError, ShapeError, DerivativeError):
        assert issubclass(cls, TensorCalcError), cls
    assert issubclass(ShapeError, InputError)
    assert issubclass(TensorCalcError, Exception)
    assert tc.TensorCalcError is TensorCalcError


# --- syntax errors ---------------------------------------------------------------------

SYNTAX = [
    "Y[i,j] = X[i,k] W[k,",
    "y[i] = = x[i]",
    "y[i] = x[i] +",
    "y[i] = (x[i] + 1",
    "y[i] = x[i] + 1)",
    "y[i] = tanh(x[i]",
    "y[i] = x[i] @ z[i]",
    "y[i] x[i]",
    "y[i = x[i]",
    "= x[i]",
    "y[i] = x[i,]",
    "y[i] = x[i] * * z[i]",
]


@pytest.mark.parametrize("src", SYNTAX)
def test_syntax_error_type_and_caret(src):
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    err = info.value
    assert isinstance(err, TensorCalcError)
    msg = str(err)
    assert "^" in msg
    assert src in msg  # the offending (only) line is shown
    assert err.line == 1
    assert isinstance(err.column, int) and 1 <= err.column <= len(src) + 1


@pytest.mark.parametrize("src", SYNTAX[:4])
def test_syntax_error_through_evaluate(src):
    with pytest.raises(ParseError):
        tc.evaluate(src, x=np.ones(3))


def _caret_column(msg: str, source_line: str) -> int:
    """1-based column of the caret on the line right after ``source_line``."""
    lines = msg.splitlines()
    for k, line in enumerate(lines[:-1]):
        if line.endswith(source_line) and "^" in lines[k + 1]:
            indent = len(line) - len(source_line)
            return lines[k + 1].index("^") - indent + 1
    raise AssertionError(f"no caret under {source_line!r} in:\n{msg}")


@pytest.mark.parametrize(
    "bad,column",
    [
        ("y[i] = = x[i]", 8),
        ("y[i] = x[i] @ z[i]", 13),
        ("y[i] = x[i] + 1)", 16),
        ("y[i] = x[i] $", 13),
    ],
)
def test_syntax_error_line_and_column_multiline(bad, column):
    src = "# a comment\na[i] = x[i] + 1\n\n" + bad + "\nb[i] = a[i]\n"
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    err = info.value
    assert err.line == 4
    assert err.column == column
    msg = str(err)
    assert bad in msg
    assert "^" in msg
    assert _caret_column(msg, bad) == column
    # the message gives the position in words too
    assert "4" in msg


def test_syntax_error_on_first_line_of_many():
    src = "y[i] = x[i] @\nz[i] = y[i]"
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    assert info.value.line == 1
    assert info.value.column == 13


def test_syntax_error_after_semicolon_column():
    src = "a[i] = x[i]; b[i] = = a[i]"
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    assert info.value.line == 1
    assert info.value.column == 21


def test_unexpected_end_multiline():
    src = "a[i] = x[i]\ny[i] = a[i] +"
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    err = info.value
    assert err.line == 2
    assert err.column >= 13
    assert "y[i] = a[i] +" in str(err)
    assert "^" in str(err)


def test_unbalanced_paren_multiline_reports_a_later_line_not_line_1():
    src = "a[i] = x[i]\ny[i] = (a[i] + 1\nz[i] = y[i]"
    with pytest.raises(ParseError) as info:
        tc.compile(src)
    assert info.value.line >= 2
    assert "^" in str(info.value)


@pytest.mark.parametrize("src", ["", "   ", "\n\n", "# only a comment", ";", " ; \n # c\n"])
def test_empty_program(src):
    with pytest.raises(TensorCalcError) as info:
        tc.compile(src)
    assert isinstance(info.value, (ParseError, ProgramError))


# --- program well-formedness -----------------------------------------------------------


def _program_error(src) -> str:
    with pytest.raises(ProgramError) as info:
        tc.compile(src)
    assert isinstance(info.value, TensorCalcError)
    return str(info.value)


def test_unknown_function():
    msg = _program_error("y[i] = foo(x[i])")
    assert "foo" in msg


def test_unknown_function_nested():
    msg = _program_error("y[i] = tanh(frobnicate(x[i]) + 1)")
    assert "frobnicate" in msg


def test_unknown_function_at_evaluate():
    with pytest.raises(ProgramError) as info:
        tc.evaluate("y[i] = foo(x[i])", x=np.ones(3))
    assert "foo" in str(info.value)


def test_name_assigned_twice():
    msg = _program_error("twice[i] = x[i]\ntwice[i] = 2 x[i]")
    assert "twice" in msg


def test_name_assigned_twice_scalar():
    msg = _program_error("total = x[i]; total = 2")
    assert "total" in msg


def test_name_with_different_index_counts():
    msg = _program_error("y[i] = vec[i] + vec[i,j]")
    assert "vec" in msg


def test_name_with_different_index_counts_x():
    msg = _program_error("y[i] = x[i] + x[i,j]")
    assert "x" in msg


def test_assigned_name_used_with_other_index_count():
    msg = _program_error("hid[i,j] = X[i,j]\ny[i] = hid[i]")
    assert "hid" in msg


def test_lhs_index_missing_on_right():
    msg = _program_error("y[i,col] = x[i]")
    assert "col" in msg


def test_lhs_index_missing_on_right_j():
    msg = _program_error("y[i,j] = x[i]")
    assert "j" in msg


def test_lhs_index_repeated():
    msg = _program_error("y[i,i] = x[i]")
    assert "i" in msg


def test_lhs_index_repeated_named():
    msg = _program_error("y[row,row] = x[row]")
    assert "row" in msg


@pytest.mark.parametrize(
    "src", ["y[i] = delta[i] x[i]", "y[i] = δ[i] x[i]", "y[i] = delta[i,j,k] x[i]"]
)
def test_delta_wrong_number_of_indices(src):
    msg = _program_error(src)
    assert "delta" in msg.lower() or "δ" in msg


def test_sum_over_index_missing_from_body():
    msg = _program_error("s[j] = sum[k](x[j])")
    assert "k" in msg


def test_sum_over_index_missing_from_body_named():
    msg = _program_error("s[j] = sum[kk](x[j])")
    assert "kk" in msg


# --- evaluation: inputs -------------------------------------------------------------------


MATMUL = "Y[i,j] = X[i,k] W[k,j]"


def test_missing_input():
    X = rng().standard_normal((3, 4))
    with pytest.raises(InputError) as info:
        tc.evaluate(MATMUL, X=X)
    assert "W" in str(info.value)
    with pytest.raises(InputError) as info:
        tc.compile(MATMUL)(X=X)
    assert "W" in str(info.value)


def test_missing_input_named():
    with pytest.raises(InputError) as info:
        tc.evaluate("y[i] = weights[i] x[i]", x=np.ones(3))
    assert "weights" in str(info.value)


def test_unknown_input_name():
    g = rng()
    X, W = g.standard_normal((3, 4)), g.standard_normal((4, 2))
    with pytest.raises(InputError) as info:
        tc.evaluate(MATMUL, X=X, W=W, bogus_name=np.ones(3))
    assert "bogus_name" in str(info.value)
    with pytest.raises(InputError) as info:
        tc.compile(MATMUL)(X=X, W=W, bogus_name=np.ones(3))
    assert "bogus_name" in str(info.value)


@pytest.mark.parametrize("shape", [(3,), (3, 4, 1), ()])
def test_wrong_number_of_axes(shape):
    W = rng().standard_normal((4, 2))
    X = np.ones(shape)
    with pytest.raises(InputError) as info:
        tc.evaluate(MATMUL, X=X, W=W)
    assert "X" in str(info.value)


def test_wrong_number_of_axes_for_scalar():
    with pytest.raises(InputError):
        tc.evaluate("y[i] = a x[i]", a=np.ones(3), x=np.ones(3))


def test_shape_mismatch():
    g = rng()
    X, W = g.standard_normal((3, 4)), g.standard_normal((5, 2))
    with pytest.raises(ShapeError) as info:
        tc.evaluate(MATMUL, X=X, W=W)
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, TensorCalcError)
    msg = str(err)
    for word in ("k", "X", "W", "4", "5"):
        assert word in msg, (word, msg)


def test_shape_mismatch_compiled_after_good_call():
    g = rng()
    p = tc.compile(MATMUL)
    good = p(X=g.standard_normal((3, 4)), W=g.standard_normal((4, 2)))
    np.testing.assert_equal(np.shape(good), (3, 2))
    with pytest.raises(ShapeError) as info:
        p(X=g.standard_normal((3, 4)), W=g.standard_normal((5, 2)))
    assert "k" in str(info.value)


def test_shape_mismatch_named_index_across_terms():
    g = rng()
    with pytest.raises(ShapeError) as info:
        tc.evaluate(
            "Z[row,col] = A[row,col] + bias[col]",
            A=g.standard_normal((3, 4)),
            bias=g.standard_normal(6),
        )
    msg = str(info.value)
    for word in ("col", "A", "bias", "4", "6"):
        assert word in msg, (word, msg)


def test_shape_mismatch_diagonal():
    with pytest.raises(ShapeError) as info:
        tc.evaluate("t = Mat[i,i]", Mat=np.ones((3, 7)))
    msg = str(info.value)
    assert "3" in msg and "7" in msg and "Mat" in msg


def test_shape_mismatch_same_name_twice():
    with pytest.raises(ShapeError):
        tc.evaluate("s = x[i] y[i]", x=np.ones(3), y=np.ones(4))


def test_shape_mismatch_across_statements():
    # j of the second statement is bound to H's axis size
    g = rng()
    with pytest.raises(ShapeError):
        tc.evaluate(
            "H[i,j] = X[i,j]; y[i] = H[i,j] v[j]",
            X=g.standard_normal((3, 4)),
            v=g.standard_normal(5),
        )


def test_index_has_one_size_throughout_a_statement():
    # j is summed separately in each term, but it still stands for one size
    g = rng()
    with pytest.raises(ShapeError) as info:
        tc.evaluate(
            "y[i] = A[i,j] x[j] + B[i,j] z[j]",
            A=g.standard_normal((3, 4)), x=g.standard_normal(4),
            B=g.standard_normal((3, 5)), z=g.standard_normal(5),
        )
    msg = str(info.value)
    assert "j" in msg and "4" in msg and "5" in msg
    # the two j are two sums that share a name: the message says to rename one
    assert "A and B are in different terms, which each sum their own j: rename j in one " \
        "of the terms" in msg, msg
    renamed = tc.evaluate("y[i] = A[i,j] x[j] + B[i,k] z[k]",
                          A=np.ones((3, 4)), x=np.ones(4), B=np.ones((3, 5)), z=np.ones(5))
    np.testing.assert_array_equal(renamed, [9.0, 9.0, 9.0])


@pytest.mark.parametrize("src,arrays", [
    ("y[i] = x[i] + z[i]", dict(x=np.ones(3), z=np.ones(4))),  # a left-hand index
    ("s = x[i] y[i] + z[i]", dict(x=np.ones(3), y=np.ones(4), z=np.ones(4))),  # one term
])
def test_no_rename_hint_where_renaming_would_not_help(src, arrays):
    with pytest.raises(ShapeError) as info:
        tc.evaluate(src, **arrays)
    assert "has size 3 in x but size 4" in str(info.value)
    assert "rename" not in str(info.value)


# --- derivative errors (only the error type; values are another suite's) ------------------


def test_derive_wrt_not_an_input():
    with pytest.raises(DerivativeError) as info:
        tc.derive("y[i] = W[i,j] x[j]", "nothere")
    assert "nothere" in str(info.value)


# --- nothing else escapes ------------------------------------------------------------------

GARBAGE = [
    "",
    "=",
    "[[",
    "x[",
    "y = x[i",
    "\x00",
    "y[i] = x[i] 1e999999",
    "y[i] = 1e999999 x[i]",
    "]]]",
    "y[i] = x[i]]",
    "y[] = []",
    "1 = 2",
    "y[i] = x[[i]]",
    "y[1] = x[1]",
    "y[i] = sum[](x[i])",
    "y[i] = sum(x[i])",
    "y[i] = delta(x[i])",
    "y[i] = x[i]^",
    "y[i] = ^x[i]",
    "y[i] = x[i] ** ** 2",
    "y[i] = ((((((x[i]",
    "y[i] = " + "(" * 200 + "x[i]" + ")" * 200,
    "y[i] = x[i]\ny[i] = x[i]",
    "ÿ[i] = x[i]",
    "y[i] = x[i] +\t\t\r\n",
    "y[i]\n= x[i]",
    "sum[i] = x[i]",
    "delta[i,j] = x[i] y[j]",
    "y[i] = 'x'",
    '__import__("os")',
    "exp[i] = x[i]",
]


@pytest.mark.parametrize("src", GARBAGE, ids=[repr(g)[:30] for g in GARBAGE])
def test_garbage_raises_only_tensorcalc_errors(src):
    try:
        p = tc.compile(src)
    except TensorCalcError:
        return
    # it compiled: then evaluating it on junk must also fail cleanly or succeed
    try:
        p(**{name: np.ones((2,) * 1) for name in p.inputs})
    except TensorCalcError:
        pass


@pytest.mark.parametrize("src", ["", "=", "[[", "x[", "y = x[i", "\x00", "y[i] = x[i] 1e999999"])
def test_listed_garbage_is_rejected(src):
    with pytest.raises(TensorCalcError):
        tc.compile(src)


def test_non_string_program():
    with pytest.raises(TensorCalcError):
        tc.compile(42)
    with pytest.raises(TensorCalcError):
        tc.compile(None)


@pytest.mark.parametrize(
    "value",
    [
        np.array([{}], dtype=object),
        np.array(["a", "b", "c"]),
        "not an array",
    ],
    ids=["object", "strings", "str"],
)
def test_bad_array_values_are_input_errors(value):
    with pytest.raises(TensorCalcError):
        tc.evaluate("y[i] = 2 x[i]", x=value)


@pytest.mark.parametrize(("name", "why"), [("delta", "reserved word"), ("δ", "a name")])
def test_statement_named_delta_is_refused(name, why):
    # `delta` is the Kronecker delta in expressions: a statement that assigned a tensor of
    # that name and then read it as the delta would give a wrong number. It is refused at
    # the name, with the reason (`δ` is no name at all).
    x, y, w = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([1.0, 1.0])
    src = f"{name}[i,j] = x[i] y[j]; z[i] = {name}[i,j] w[j]"
    with pytest.raises(tc.ParseError, match=f"line 1, column 1: unexpected '{name}'.*{why}"):
        tc.evaluate(src, x=x, y=y, w=w)

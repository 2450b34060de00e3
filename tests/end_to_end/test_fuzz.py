"""Front-end fuzzing (docs/errors.md): whatever text comes in, ``compile``, evaluation and
``derive`` raise only ``TensorCalcError`` (never another exception type), and a
``ParseError`` points at a line and a column (both >= 1).

Texts come from hypothesis ``text()`` strategies, from mutations of valid programs
(deleted, inserted and swapped characters, unbalanced brackets, stray operators, unicode,
NUL bytes, enormous numbers, very long names) and from deep nesting.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from corpus import VALID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tensorcalc as tc
from tensorcalc.ir import Call, Power, children

SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


ODD_CHARACTERS = [
    "\x00", "\n", "\r", "\t", "\x0b", "\x0c", "\u2028", "\ufeff", "\u00a0", "δ", "λ", "ℝ",
    "😀", "\ud7ff", "\U0010ffff", "[", "]", "(", ")", ",", ";", "=", "+", "-", "*", "/",
    "^", "**", "#", ".", "e", "_", "0", "9", "1e999999", "1e-999999", "9" * 400,
    "0." + "0" * 400 + "1", "delta", "sum", "sum[", "delta[", "exp(", "x" * 5000, "[]", "()",
    "@", "$", "'", '"', "\\", "`", "{", "}", "<", ">", "!", "?", "~", "&", "|", "%",
]

ALPHABET = "XWYZxyzijkabcdnpq[](),;=+-*/^.# \n\t0123456789eE_δsumdeltaexptanhlog"


# --------------------------------------------------------------------------- the harness


def _nesting(p: tc.Program) -> int:
    """Deepest chain of function calls and powers (iteratively: the fuzz texts are deep).
    Derivatives of long chains grow quickly, so the fuzzers derive only shallow ones."""
    best = 0
    stack = [(st_.rhs, 0) for st_ in p.statements]
    while stack:
        s, depth = stack.pop()
        best = max(best, depth)
        for t in s.terms:
            for f in t.factors:
                step = 1 if isinstance(f, (Call, Power)) else 0
                stack.extend((c, depth + step) for c in children(f))
    return best


def small(rank: int) -> np.ndarray:
    """A small array of that rank: axes of 2, or of 1 where 2 would be too many numbers."""
    return np.full((2 if rank <= 10 else 1,) * rank, 0.5)


def _check_parse_error(err: tc.ParseError) -> None:
    assert isinstance(err.line, int) and err.line >= 1, (err.line, str(err))
    assert isinstance(err.column, int) and err.column >= 1, (err.column, str(err))
    str(err)  # the message itself must not fail


def exercise(text: str, derive: bool = True) -> str:
    """Compile, evaluate and derive; any exception that is not a TensorCalcError fails.

    Returns how far it got (for the statistics in the deterministic tests).
    """
    try:
        p = tc.compile(text)
    except tc.ParseError as err:
        _check_parse_error(err)
        return "parse error"
    except tc.TensorCalcError as err:
        assert str(err)
        return "program error"
    # A program that compiled prints as text that compiles again.
    str(p)
    tc.compile(p.source())
    arrays = {name: small(rank) for name, rank in p.accepts.items()}
    with np.errstate(all="ignore"):
        try:
            p(**arrays)
        except tc.TensorCalcError as err:
            assert str(err)
            return "evaluation error"
        if not derive or not p.inputs or _nesting(p) > 6:
            return "evaluated"
        try:
            d = tc.derive(p, p.inputs[0])
            d(**{k: v for k, v in arrays.items() if k in d.accepts})
        except tc.TensorCalcError as err:
            assert str(err)
            return "derivative error"
    return "derived"


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "special",
                                     "bracket", "operator", "truncate", "replace_name"]))
        n = len(text)
        pos = draw(st.integers(0, n))
        if kind == "delete" and n:
            end = min(n, pos + draw(st.integers(1, 3)))
            text = text[:pos] + text[end:]
        elif kind == "insert":
            text = text[:pos] + draw(st.text(min_size=1, max_size=3)) + text[pos:]
        elif kind == "swap" and n >= 2:
            k = min(pos, n - 2)
            text = text[:k] + text[k + 1] + text[k] + text[k + 2:]
        elif kind == "duplicate" and n:
            end = min(n, pos + draw(st.integers(1, 12)))
            text = text[:end] + text[pos:end] + text[end:]
        elif kind == "special":
            text = text[:pos] + draw(st.sampled_from(ODD_CHARACTERS)) + text[pos:]
        elif kind == "bracket":
            text = text[:pos] + draw(st.sampled_from(list("[]()") + ["((", "))", "[[", "]]"])) \
                + text[pos:]
        elif kind == "operator":
            text = text[:pos] + draw(st.sampled_from(["+", "-", "*", "/", "^", "**", "=", ";",
                                                      ",", "* *", "^-", "--"])) + text[pos:]
        elif kind == "truncate":
            text = text[:pos]
        elif kind == "replace_name":
            name = draw(st.sampled_from(["x", "W", "i", "j", "tanh", "delta", "sum"]))
            new = draw(st.sampled_from(["foo", "delta", "sum", "exp", "W", "y", "k", "_",
                                        "A" * 300, "δ", "x1", "sum_", "1x"]))
            text = text.replace(name, new, draw(st.integers(1, 3)))
    return text


@st.composite
def nested(draw):
    n = draw(st.integers(1, 400))
    kind = draw(st.sampled_from(["paren", "paren", "neg", "plus", "bracket_only",
                                 "unbalanced", "function_refused"]))
    if kind == "paren":
        return "y[i] = " + "(" * n + "x[i]" + ")" * n
    if kind == "neg":
        return "y[i] = " + "-" * n + "x[i]"
    if kind == "plus":
        return "y = " + " + ".join(["x[i]"] * n)
    if kind == "bracket_only":
        return "y[i] = x" + "[" * n + "i" + "]" * n
    if kind == "unbalanced":
        return "y[i] = " + "(" * n + "x[i]" + ")" * draw(st.integers(0, n))
    # functions nested deeper than the parser accepts are refused before derive sees them
    return "y[i] = " + "tanh(" * (n + 100) + "x[i]" + ")" * (n + 100)


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(st.text(alphabet=ALPHABET, max_size=80))
def test_grammar_alphabet_text(text):
    exercise(text)


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_unicode_text(text):
    exercise(text)


@SETTINGS
@given(st.binary(max_size=60))
def test_decoded_bytes(data):
    exercise(data.decode("utf-8", errors="surrogateescape"))


@SETTINGS
@given(mutated())
def test_mutated_programs(text):
    exercise(text)


@SETTINGS
@given(nested())
def test_deep_nesting(text):
    exercise(text)


@SETTINGS
@given(st.sampled_from(VALID), st.text(max_size=20))
def test_fuzzed_wrt_and_of(src, wrt):
    """``derive``, ``grad``, ``vjp``, ``jvp`` with nonsense ``wrt``/``of`` arguments."""
    for call in (lambda: tc.derive(src, wrt), lambda: tc.derive(src, "x", of=wrt),
                 lambda: tc.vjp(src, wrt, cotangent=wrt or "G"),
                 lambda: tc.jvp(src, wrt, tangent=wrt or "V"), lambda: tc.grad(src, wrt)):
        try:
            call()
        except tc.TensorCalcError as err:
            assert str(err)


@SETTINGS
@given(st.sampled_from(VALID), st.data())
def test_fuzzed_arrays(src, data):
    """Wrong shapes, ranks, dtypes and names of the arrays: only TensorCalcError."""
    p = tc.compile(src)
    arrays = {}
    for name, rank in p.accepts.items():
        kind = data.draw(st.sampled_from(["ok", "ok", "shape", "rank", "int", "str", "object",
                                          "none", "list", "scalar", "bool", "complex",
                                          "missing", "empty"]), label=name)
        shape = (2,) * rank
        if kind == "ok":
            arrays[name] = np.full(shape, 0.5)
        elif kind == "shape":
            arrays[name] = np.full(tuple(data.draw(st.integers(0, 3)) for _ in range(rank)),
                                   0.5)
        elif kind == "rank":
            arrays[name] = np.full((2,) * data.draw(st.integers(0, 4)), 0.5)
        elif kind == "int":
            arrays[name] = np.ones(shape, dtype=np.int64)
        elif kind == "str":
            arrays[name] = np.full(shape, "a")
        elif kind == "object":
            arrays[name] = np.full(shape, None, dtype=object)
        elif kind == "none":
            arrays[name] = None
        elif kind == "list":
            arrays[name] = np.full(shape, 0.5).tolist()
        elif kind == "scalar":
            arrays[name] = 0.5
        elif kind == "bool":
            arrays[name] = np.ones(shape, dtype=bool)
        elif kind == "complex":
            arrays[name] = np.full(shape, 0.5 + 1j)
        elif kind == "empty":
            arrays[name] = np.zeros((0,) * rank)
    if data.draw(st.booleans(), label="unknown name"):
        arrays[data.draw(st.sampled_from(["zz", "delta", "sum", "L"]))] = np.ones(2)
    with np.errstate(all="ignore"):
        for q in (p, tc.derive(p, p.inputs[0])):
            try:
                q(**arrays)
            except tc.TensorCalcError as err:
                assert str(err)


# --------------------------------------------------------------------------- regressions

REGRESSIONS = [
    "",
    " ",
    "\n\n",
    ";",
    ";;;\n;",
    "#",
    "# only a comment",
    "\x00",
    "y = x\x00",
    "y[i] = x[i]\x00 + 1",
    "\ufeffy = x",
    "y = 1e999999",
    "y = 1e999999 x",
    "y = -1e999999",
    "y = 1e-999999",
    "y[i] = x[i]^1e999",
    "y = " + "9" * 400,
    "y = 0.0" + "0" * 400 + "1",
    "y = 0/0",
    "y = 1/0 x",
    "y = x^-1e308",
    "y = " + "x" * 10000,
    "y" * 10000 + " = x",
    "y[" + "i" * 5000 + "] = x[" + "i" * 5000 + "]",
    "y[" + ",".join(f"i{n}" for n in range(40)) + "] = x[" + ",".join(
        f"i{n}" for n in range(40)) + "]",
    "y = " + "(" * 300 + "x" + ")" * 300,
    "y = " + "(" * 300 + "x" + ")" * 299,
    "y = " + "(" * 299 + "x" + ")" * 300,
    "y = " + "tanh(" * 300 + "x" + ")" * 300,
    "y = " + "-" * 500 + "x",
    "y = " + "x^" * 300 + "x",
    "y = " + "+" * 200 + "x",
    "y[i] = x[i" + "]" * 50,
    "y[i] = " + "x[" * 50 + "i",
    "y = x[i] ** ** 2",
    "y = x[i] ^",
    "y = * x",
    "= x",
    "y =",
    "y[] = ",
    "y[] = x[]",
    "y = x[]",
    "y = x; y = x",
    "y = x[i]; z = x[i,j]",
    "y[i,i] = x[i]",
    "y[i] = x[j]",
    "y[i] = sum[i](x[i])",
    "y = sum[](x)",
    "y = sum[i,i](x[i])",
    "y = sum[i](x[j])",
    "y = sum(x)",
    "y = sum[i]x[i]",
    "y = delta[i](x)",
    "y = delta[i,j,k] x[i] x[j] x[k]",
    "y = delta[i,j]",
    "y = delta",
    "y = δ",
    "y = sum",
    "delta = x",
    "sum[i] = x[i]",
    "exp = x",
    "y = exp",
    "y = exp()",
    "y = exp(x, x)",
    "y = foo(x)",
    "y = tanh (x)",
    "y = x (1)",
    "y[i] = x[i] @ z[i]",
    "y = 'x'",
    'y = "x"',
    "y = __import__('os')",
    "y = x.real",
    "y = x[0]",
    "y = x[-1]",
    "y = x[i:j]",
    "y = x[1e5]",
    "y = 1.2.3",
    "y = 1e",
    "y = .e1",
    "y = 1__0",
    "ÿ = x",
    "y = ẋ",
    "y = x\u2028z",
    "y = x\r\nz = y",
    "y = x\rz = y",
    "y = x\\\nz",
    "Y[b,h] = tanh(X[b,d] W[d,h] + c[h]",
    "Y[b,h] = tanh(X[b,d] W[d,h] + c[h]))",
    "y[i] = x[i] +\n",
    "\n\n\n   y[i] = = x[i]",
    "y[i] = x[i]\n\tz[i] = = 2",
    "y[i] = x[i]; \u00a0z = 1",
]


@pytest.mark.parametrize("text", REGRESSIONS, ids=[f"r{n}" for n in range(len(REGRESSIONS))])
def test_regressions(text):
    exercise(text)


@pytest.mark.parametrize("value", [None, 42, 3.5, b"y = x", ["y = x"], {"y": "x"}, object()])
def test_not_text(value):
    with pytest.raises(tc.TensorCalcError):
        tc.compile(value)


@pytest.mark.parametrize("text,line,columns", [
    ("y[i] = = x[i]", 1, {8}),
    ("y = x\nz = = 1", 2, {5}),
    ("y = x\x00", 1, {6}),
    ("y = x)", 1, {6}),
    ("y = x @ z", 1, {7}),
    # at the end of the input: the last character, or just after it
    ("\n\n\ny = x +", 4, {7, 8}),
    ("y = (x", 1, {6, 7}),
])
def test_parse_error_position(text, line, columns):
    with pytest.raises(tc.ParseError) as info:
        tc.compile(text)
    _check_parse_error(info.value)
    assert info.value.line == line and info.value.column in columns, str(info.value)


@pytest.mark.parametrize(("text", "outcome"), [("y = x\x00", "parse error")])
def test_mutations_that_used_to_escape(text, outcome):
    """Texts found by the fuzzers above; each raised something else than a TensorCalcError
    once."""
    assert exercise(text) == outcome


@example("y = x")
@SETTINGS
@given(st.sampled_from(VALID))
def test_valid_programs_compile_and_derive(text):
    assert exercise(text) in ("derived", "evaluated")


def test_nested_functions_derive_quickly():
    """derive was exponential in the depth of nested function calls (tanh nested 24 deep
    took minutes for a ~2 kB derivative); run in a subprocess so a regression cannot hang.
    The Jacobian is diagonal, the product of 1 - tanh² down the nesting."""
    src = "y[i] = " + "tanh(" * 24 + "x[i]" + ")" * 24
    x = np.array([0.3, -1.2])
    code = ("import tensorcalc as tc, numpy as np; "
            f"d = tc.derive({src!r}, 'x'); print(d(x=np.array({x.tolist()!r})).tolist())")
    try:
        done = subprocess.run([sys.executable, "-c", code], timeout=20, check=True,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise AssertionError("derive of 24 nested tanh took more than 20 s") from None
    a, slope = x.copy(), np.ones_like(x)
    for _ in range(24):
        a = np.tanh(a)
        slope *= 1 - a * a
    np.testing.assert_allclose(np.array(json.loads(done.stdout)), np.diag(slope), rtol=1e-12)


SELF_REFERENCE = ["x = x", "y = y + 1", "y[i] = W[i,j] y[j] + b[i]", "y[i] = x[i]; z = z y[i]"]


@pytest.mark.parametrize("text", SELF_REFERENCE)
def test_self_reference_is_refused(text):
    """Found by test_mutated_programs: ``y = y + 1`` once compiled (y both an input and
    assigned) and evaluating it raised a bare KeyError. docs/language.md: an error."""
    with pytest.raises(tc.ProgramError):
        tc.compile(text)


@pytest.mark.parametrize("text", ["y[i] = 0 W[i,k] x[k]", "Y[i,j] = X[i,k] W[k,j]0"])
def test_zero_product_source_parses(text):
    """Found by test_mutated_programs: a product with a zero coefficient and a
    contraction printed as "y[i] = 0", without the size anchors "y[i] = 0 x[i]" gets, so
    the source() of a compiled program did not parse."""
    p = tc.compile(text)
    tc.compile(p.source())

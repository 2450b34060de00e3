"""The summation convention's two silent traps (tensorcalc/language/traps.py): a warning
when a program is compiled, a ProgramError with strict=True, '#' notes in explain; never
from a derivative, nor from the text tensorcalc prints; the numbers stay the convention's."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from fd import numeric_jacobian
from support import cli

import tensorcalc as tc
from tensorcalc.errors import warn

INNER = "L = (tanh(gam[d] xh[b,d] + bet[d]) - T[b,d])^2"
PENALTY = "R = lam * (A[i,r]^2 + B[j,r]^2 + C[k,r]^2)"


def _inner_arrays() -> dict[str, np.ndarray]:
    g = np.random.default_rng(1)
    return dict(gam=g.normal(size=3), xh=g.normal(size=(2, 3)), bet=g.normal(size=3),
                T=g.normal(size=(2, 3)))


def _penalty_arrays() -> dict[str, np.ndarray]:
    g = np.random.default_rng(2)
    return dict(lam=np.float64(0.7), A=g.normal(size=(2, 3)), B=g.normal(size=(4, 3)),
                C=g.normal(size=(5, 3)))


def _caught(action):
    """What ``action()`` returns, and the TensorCalcWarnings it issued (every one)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = action()
    return value, [w for w in seen if issubclass(w.category, tc.TensorCalcWarning)]


# --- trap 1: one name, two sums --------------------------------------------------


def test_a_name_summed_inside_a_function_and_outside_warns():
    p, seen = _caught(lambda: tc.compile(INNER))
    assert len(seen) == 1
    message = str(seen[0].message)
    assert message.startswith("statement L at line 1, column 6: d is summed inside tanh(...) "
                              "by the product gam[d] xh[b,d]"), message
    assert "write sum[d](...) where you mean the sum, or use another name" in message
    assert seen[0].filename == __file__  # the user's line, not tensorcalc's
    assert [t.index for t in p.traps] == ["d"]


def test_the_trap_computes_what_the_convention_says():
    a = _inner_arrays()
    p, _ = _caught(lambda: tc.compile(INNER))
    inner = a["xh"] @ a["gam"]  # d summed inside tanh, per b
    want = np.sum((np.tanh(inner[:, None] + a["bet"][None, :]) - a["T"]) ** 2)
    np.testing.assert_allclose(p(**a), want, rtol=1e-12)


def test_writing_the_sum_explicitly_removes_the_warning():
    a = _inner_arrays()
    elementwise = tc.compile("L = sum[b,d]((tanh(gam[d] xh[b,d] + bet[d]) - T[b,d])^2)",
                             strict=True)
    want = np.sum((np.tanh(a["gam"] * a["xh"] + a["bet"]) - a["T"]) ** 2)
    np.testing.assert_allclose(elementwise(**a), want, rtol=1e-12)
    inner = tc.compile("L = (tanh(sum[d](gam[d] xh[b,d]) + bet[d]) - T[b,d])^2", strict=True)
    other_name = tc.compile("L = (tanh(gam[e] xh[b,e] + bet[d]) - T[b,d])^2", strict=True)
    p, _ = _caught(lambda: tc.compile(INNER))
    np.testing.assert_allclose(inner(**a), p(**a), rtol=1e-12)
    np.testing.assert_allclose(other_name(**a), p(**a), rtol=1e-12)


@pytest.mark.parametrize("source,where", [
    ("y[i] = exp(A[i,j] x[j] + c[j])", "exp(...)"),
    ("s = (a[j] b[j] + c[j])^2", "(...)^2"),
    ("s = lam * (a[j] b[j] + c[j])", "(...)"),
    ("s = max[n](X[n,j] w[j] + c[j])", "max[n](...)"),
    ("s = u[j] / (a[j] b[j] + c[i])", None),  # j held by the outer product: no trap
])
def test_where_the_inner_sum_is_named(source, where):
    p, seen = _caught(lambda: tc.compile(source))
    if where is None:
        assert not seen
        return
    assert [str(w.message).split(" by the product")[0].split(": ")[1] for w in seen] == \
        [f"j is summed inside {where}"]


# --- trap 2: a sum that broadcasts -----------------------------------------------


def test_a_term_lacking_a_summed_index_warns_once_per_term():
    _, seen = _caught(lambda: tc.compile(PENALTY))
    messages = [str(w.message) for w in seen]
    assert messages == [
        "statement R at line 1, column 5: j, k do not occur in A[i,r]^2, which is multiplied "
        "by size(j) size(k) (rule 2 sums the whole term); write sum[i,r](A[i,r]^2) + ... to "
        "sum each term on its own",
        "statement R at line 1, column 5: i, k do not occur in B[j,r]^2, which is multiplied "
        "by size(i) size(k) (rule 2 sums the whole term); write sum[j,r](B[j,r]^2) + ... to "
        "sum each term on its own",
        "statement R at line 1, column 5: i, j do not occur in C[k,r]^2, which is multiplied "
        "by size(i) size(j) (rule 2 sums the whole term); write sum[k,r](C[k,r]^2) + ... to "
        "sum each term on its own",
    ]


def test_the_broadcast_and_its_fix_give_the_numbers_they_say():
    a = _penalty_arrays()
    sq = {n: float(np.sum(a[n] ** 2)) for n in "ABC"}
    p, _ = _caught(lambda: tc.compile(PENALTY))
    np.testing.assert_allclose(p(**a), 0.7 * (5 * 4 * sq["A"] + 2 * 5 * sq["B"]
                                              + 2 * 4 * sq["C"]), rtol=1e-12)
    fixed = tc.compile("R = lam * (sum[i,r](A[i,r]^2) + sum[j,r](B[j,r]^2) + "
                       "sum[k,r](C[k,r]^2))", strict=True)
    np.testing.assert_allclose(fixed(**a), 0.7 * sum(sq.values()), rtol=1e-12)


def test_a_constant_term_is_named_with_a_fix_around_the_others():
    _, seen = _caught(lambda: tc.compile("L = 2 * (x[i] + 1)"))
    assert [str(w.message).split(": ", 1)[1] for w in seen] == [
        "i does not occur in 1, which is multiplied by size(i) (rule 2 sums the whole term); "
        "write sum[i](...) around the terms that hold i, so that 1 is added once"]


NOT_TRAPS = [
    "y[i] = W[i,j] (x[j] + 1)",  # j summed by the product: W (x + 1), as written
    "L = (x[i] - c)^2",  # a power's base broadcasts c to each x[i]
    "y[i] = tanh(W[i,j] x[j] + V[i,j] z[j])",  # two inner sums, no outer j
    "L = softplus(X[n,d] w[d]) - y[n] z[n] + 0.1 w[d]^2",  # another top-level term's d
    "s = tanh(y[i] w[i]) + x[i]",
    "s = tanh(a[j] b[j]) tanh(c[j] e[j])",  # j held by the outer product
    "R = A[i,r]^2 + B[j,r]^2",  # each top-level term sums its own
    "L = 3 (x[i+1] - x[i])",
    "H[b,h] = tanh(X[b,d] W[d,h] + c[h])\nP[b,o] = H[b,h] V[h,o]\nL = (P[b,o] - T[b,o])^2",
    "L = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]",
    "o[q,e] = softmax[k](Q[q,d] K[k,d]) V[k,e]",
    "L = sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])",
]


@pytest.mark.parametrize("source", NOT_TRAPS)
def test_programs_that_mean_what_they_say_do_not_warn(source):
    p, seen = _caught(lambda: tc.compile(source))
    assert not seen and p.traps == ()


# --- strict, silencing -----------------------------------------------------------


@pytest.mark.parametrize("source,index", [(INNER, "d is summed inside tanh"),
                                          (PENALTY, "j, k do not occur in A[i,r]^2")])
def test_strict_refuses_naming_the_index_and_the_fix(source, index):
    with pytest.raises(tc.ProgramError, match="refused \\(strict\\)") as err:
        tc.compile(source, strict=True)
    assert index in str(err.value)
    assert "write sum[" in str(err.value)
    p, _ = _caught(lambda: tc.compile(source))
    with pytest.raises(tc.ProgramError, match=re.escape(index)):
        tc.compile(p, strict=True)  # a Program compiled earlier is checked again


def test_the_standard_filters_silence_it():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=tc.TensorCalcWarning)
        tc.compile(INNER)
    assert not seen
    assert issubclass(tc.TensorCalcWarning, UserWarning)


def test_a_warning_points_at_the_first_caller_outside_tensorcalc():
    _, seen = _caught(lambda: warn("here"))
    assert seen[0].filename == __file__


# --- derivatives never warn ------------------------------------------------------


def test_derivatives_of_a_trap_do_not_warn_again():
    p, seen = _caught(lambda: tc.compile(INNER))
    assert len(seen) == 1
    derived, seen = _caught(lambda: [tc.grad(p, "gam"), tc.hessian(p, "bet"),
                                     tc.vjp(p, "xh"), tc.jvp(p, "T"), tc.derive(p, "gam")])
    assert not seen
    assert all(d.traps == () for d in derived)
    _, seen = _caught(lambda: tc.grad(INNER, "gam"))  # the text is compiled: one warning
    assert len(seen) == 1


def test_derivatives_of_traps_match_finite_differences():
    a = _inner_arrays()
    p, _ = _caught(lambda: tc.compile(INNER))
    for wrt in ("gam", "bet", "xh"):
        np.testing.assert_allclose(tc.grad(p, wrt)(**a), numeric_jacobian(p, wrt, a),
                                   rtol=1e-6, atol=1e-8)
    hessian = tc.hessian(p, "gam")(**a)
    numeric = numeric_jacobian(tc.grad(p, "gam"), "gam", a)
    np.testing.assert_allclose(hessian, numeric, rtol=1e-6, atol=1e-7)
    b = _penalty_arrays()
    q, _ = _caught(lambda: tc.compile(PENALTY))
    np.testing.assert_allclose(tc.grad(q, "A")(**b), numeric_jacobian(q, "A", b),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tc.grad(q, "lam")(**b), numeric_jacobian(q, "lam", b),
                               rtol=1e-6, atol=1e-8)


def test_derivatives_of_traps_match_jax(jax64):
    jnp = jax64.numpy
    a = _inner_arrays()

    def inner(gam, xh, bet, T):
        return jnp.sum((jnp.tanh((xh @ gam)[:, None] + bet[None, :]) - T) ** 2)

    p, _ = _caught(lambda: tc.compile(INNER))
    args = [a[n] for n in ("gam", "xh", "bet", "T")]
    for k, wrt in enumerate(("gam", "xh", "bet")):
        np.testing.assert_allclose(tc.grad(p, wrt)(**a),
                                   jax64.grad(inner, argnums=k)(*args), rtol=1e-10)
        np.testing.assert_allclose(tc.hessian(p, wrt)(**a),
                                   jax64.hessian(inner, argnums=k)(*args), rtol=1e-9,
                                   atol=1e-12)
    b = _penalty_arrays()

    def penalty(lam, A, B, C):
        return lam * (20 * jnp.sum(A**2) + 10 * jnp.sum(B**2) + 8 * jnp.sum(C**2))

    q, _ = _caught(lambda: tc.compile(PENALTY))
    args = [b[n] for n in ("lam", "A", "B", "C")]
    np.testing.assert_allclose(tc.grad(q, "A")(**b), jax64.grad(penalty, argnums=1)(*args),
                               rtol=1e-12)
    np.testing.assert_allclose(tc.hessian(q, "A")(**b),
                               jax64.hessian(penalty, argnums=1)(*args), rtol=1e-12,
                               atol=1e-14)


def test_a_printed_derivative_writes_a_broadcast_sum_out():
    # the gradient's term 2 (x[p] + y[k]) adds x[p] size(k) times: printed bare it would
    # read as the trap, so its sum is explicit and the text compiles strictly
    d = tc.grad("L = (x[i] + y[j])^2", "x")
    assert str(d) == "dL_dx[p] = sum[k](2 (x[p] + y[k]))"
    again = tc.compile(str(d), strict=True)
    g = np.random.default_rng(3)
    a = dict(x=g.normal(size=3), y=g.normal(size=4))
    np.testing.assert_allclose(d(**a), numeric_jacobian("L = (x[i] + y[j])^2", "x", a),
                               rtol=1e-7)
    np.testing.assert_allclose(again(**a), d(**a), rtol=1e-12)


# --- explain and the command line ------------------------------------------------


def test_explain_notes_both_traps_and_does_not_warn():
    text, seen = _caught(lambda: tc.explain(INNER + "\n" + PENALTY))
    assert not seen
    lines = text.splitlines()
    assert lines[0] == "L = sum[b,d]((tanh(sum[d1](gam[d1] xh[b,d1]) + bet[d]) - T[b,d])^2)"
    assert any(line.startswith("# d is summed inside tanh(...) by the product gam[d] xh[b,d]")
               for line in lines)
    assert "# j, k do not occur in A[i,r]^2, which is multiplied by size(j) size(k) (rule 2 " \
           "sums the whole term); write sum[i,r](A[i,r]^2) + ... to sum each term on its own" \
           in lines
    tc.compile(text, strict=True)  # the explained text sums explicitly: no trap


def test_cli_prints_the_warning_on_stderr_and_strict_refuses():
    res = cli("eval", PENALTY, "--size", "i=2,j=2,k=2,r=2")
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if line.startswith("tensorcalc: warning:")]
    assert len(warned) == 3 and "j, k do not occur in A[i,r]^2" in warned[0], res.stderr
    res = cli("derive", INNER, "--wrt", "gam", "--strict")
    assert res.returncode == 2 and "refused (strict)" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    res = cli("explain", INNER)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "# d is summed inside tanh(...)" in res.stdout
    for command in ("eval", "derive", "check"):
        assert "--strict" in cli(command, "--help").stdout
    assert "warnings:" in cli("--help").stdout

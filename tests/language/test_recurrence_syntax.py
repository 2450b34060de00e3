"""The recurrence language (docs/recurrences.md): start lines, reads of the step before
and after, what lowering writes for them, and the errors for every read that is not a
step of a recurrence."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import ELMAN

import tensorcalc as tc
from tensorcalc.ir.recurrences import recurrence_groups


def elman_loop(h0, W, U, x, b):
    h, out = h0, []
    for xt in x:
        h = np.tanh(W @ h + U @ xt + b)
        out.append(h)
    return np.array(out)


def arrays(seed=0, T=5):
    rng = np.random.default_rng(seed)
    return dict(h0=rng.normal(size=3), W=rng.normal(size=(3, 3)), U=rng.normal(size=(3, 2)),
                x=rng.normal(size=(T, 2)), b=rng.normal(size=3), y=rng.normal(size=(T, 3)))


def test_a_start_line_becomes_the_state_before_each_step():
    p = tc.compile(ELMAN)
    assert str(p).splitlines()[0] == "h_prev[t,j] = delta[t,0] h0[j] + h[t-1,j]"
    assert "W[j,k] h_prev[t,k]" in str(p)
    assert p.inputs == ("h0", "W", "U", "x", "b", "y")
    groups = recurrence_groups(p.statements)
    assert [(g.members, g.direction) for g in groups] == [(("h_prev", "h"), 1)]
    a = arrays()
    h = tc.compile(ELMAN, result="h")(**{k: v for k, v in a.items() if k != "y"})
    np.testing.assert_allclose(h, elman_loop(a["h0"], a["W"], a["U"], a["x"], a["b"]),
                               rtol=1e-14)


def test_the_printed_program_parses_to_the_same_program():
    p = tc.compile(ELMAN)
    again = tc.compile(str(p))
    assert str(again) == str(p)
    a = arrays(1)
    assert again(**a) == pytest.approx(p(**a), rel=1e-14)


def test_without_a_start_line_the_state_before_is_zero():
    # a running sum: s[t] = s[t-1] + x[t], read as a factor: no state statement needed
    p = tc.compile("s[t,j] = s[t-1,j] + x[t,j]")
    assert str(p) == "s[t,j] = s[t-1,j] + x[t,j]"
    x = np.random.default_rng(2).normal(size=(6, 2))
    np.testing.assert_allclose(p(x=x), np.cumsum(x, axis=0), rtol=1e-14)
    # inside a function the previous state is a value, zero before the first step
    q = tc.compile("h[t,j] = tanh(h[t-1,j] + x[t,j])")
    assert "h_prev" in str(q)
    h, out = np.zeros(2), []
    for xt in x:
        h = np.tanh(h + xt)
        out.append(h)
    np.testing.assert_allclose(q(x=x), np.array(out), rtol=1e-14)


def test_a_recurrence_may_run_backwards_from_zero_past_the_end():
    x = np.random.default_rng(3).normal(size=(5, 2))
    p = tc.compile("a[t,j] = a[t+1,j] + x[t,j]")
    assert recurrence_groups(p.statements)[0].direction == -1
    np.testing.assert_allclose(p(x=x), np.cumsum(x[::-1], axis=0)[::-1], rtol=1e-14)
    q = tc.compile("a[t,j] = sin(a[t+1,j]) + x[t,j]")
    a, out = np.zeros(2), []
    for xt in x[::-1]:
        a = np.sin(a) + xt
        out.append(a)
    np.testing.assert_allclose(q(x=x), np.array(out[::-1]), rtol=1e-14)


def test_statements_recur_together_and_a_later_one_is_read_at_the_step_before():
    src = """
    c[-1,j] = c0[j]
    h[-1,j] = h0[j]
    f[t,j] = sigmoid(W[j,k] h[t-1,k] + x[t,j])
    c[t,j] = f[t,j] c[t-1,j] + (1 - f[t,j]) x[t,j]
    h[t,j] = tanh(c[t,j])
    """
    rng = np.random.default_rng(4)
    a = dict(c0=rng.normal(size=3), h0=rng.normal(size=3), W=rng.normal(size=(3, 3)),
             x=rng.normal(size=(6, 3)))
    c, h, out = a["c0"], a["h0"], []
    for xt in a["x"]:
        f = 1 / (1 + np.exp(-(a["W"] @ h + xt)))
        c = f * c + (1 - f) * xt
        h = np.tanh(c)
        out.append(h)
    np.testing.assert_allclose(tc.compile(src)(**a), np.array(out), rtol=1e-14)


def test_a_start_may_be_any_expression_over_the_other_indices():
    src = """
    v[-1,j] = 1
    u[n,i] = a[i] / (K[i,j] v[n-1,j])
    v[n,j] = b[j] / (K[i,j] u[n,i])
    """
    rng = np.random.default_rng(5)
    a, b, K = rng.random(3) + 0.5, rng.random(4) + 0.5, rng.random((3, 4)) + 0.1
    v = np.ones(4)
    vs = []
    for _ in range(4):
        u = a / (K @ v)
        v = b / (K.T @ u)
        vs.append(v)
    got = tc.compile(src, sizes={"n": 4})(a=a, b=b, K=K)
    np.testing.assert_allclose(got, np.array(vs), rtol=1e-13)


def test_a_later_statement_reads_the_start_at_the_first_step():
    src = ELMAN.replace("L = sum[t,j](h[t,j] y[t,j])", "d[t,j] = h[t,j] - h[t-1,j]")
    a = arrays(6)
    del a["y"]
    h = elman_loop(a["h0"], a["W"], a["U"], a["x"], a["b"])
    np.testing.assert_allclose(tc.compile(src)(**a),
                               h - np.vstack([a["h0"][None], h[:-1]]), rtol=1e-14)


@pytest.mark.parametrize("src, message", [
    ("h[t,j] = h[t,j] + x[t,j]", "reads itself as h[t,j]"),
    ("h[t,j] = h[t-2,j] + x[t,j]", "only at the previous step of its first index"),
    ("h[t,j] = h[j,t-1] + x[t,j]", "reads itself as h[j,t-1]"),
    ("a[t,j] = b[t,j] + x[t,j]\nb[t,j] = a[t,j]", "b, assigned later"),
    ("h[t,j] = h[t-1,j+1] + x[t,j]", "the other subscripts plain indices"),
])
def test_a_read_that_is_not_a_step_is_an_error_naming_it(src, message):
    with pytest.raises(tc.ProgramError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tc.compile(src)


@pytest.mark.parametrize("src, message", [
    ("h[-1,j] = h0[j]\nh[-1,j] = h1[j]\nh[t,j] = h[t-1,j]", "two start lines"),
    ("g[-1,j] = h0[j]\nh[t,j] = h[t-1,j] + x[t,j]", "no statement assigns g"),
    ("h[-1,j,k] = h0[j]\nh[t,j] = h[t-1,j] + x[t,j]", "has 3 indices but h has 2"),
    ("h[t,j] = h[t-1,j] + x[t,j]\nh[-1,j] = h0[j]", "comes after h is assigned"),
])
def test_a_bad_start_line_is_an_error(src, message):
    with pytest.raises(tc.ProgramError, match=message):
        tc.compile(src)


def test_a_recurrence_runs_one_way():
    with pytest.raises(tc.ProgramError, match="runs one way"):
        tc.compile("a[t,j] = b[t+1,j] + x[t,j]\nb[t,j] = a[t-1,j] + x[t,j]")


def test_the_number_of_steps_must_be_known():
    p = tc.compile("y[-1,j] = y0[j]\ny[n,j] = y[n-1,j] + dt tanh(A[j,k] y[n-1,k])")
    a = dict(y0=np.ones(2), A=np.eye(2), dt=np.asarray(0.1))
    with pytest.raises(tc.InputError, match=r"how many steps.*sizes=\{'n'"):
        p(**a)
    assert p.evaluate(a, sizes={"n": 3}).shape == (3, 2)


def test_the_recurrence_index_used_otherwise_is_an_error_naming_it():
    p = tc.compile("h[t,j] = h[t-1,j] + x[2t,j]", sizes={"t": 3})
    with pytest.raises(tc.ProgramError, match="reads x with t in a subscript otherwise"):
        p(x=np.ones((6, 2)))

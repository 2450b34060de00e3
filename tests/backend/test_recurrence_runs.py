"""How a recurrence's derivative is run on NumPy (docs/recurrences.md, "How it runs"):
the functions of the forward step are kept for the adjoint (``backend/shared_calls.py``),
only the members read after a recurrence are kept whole, rows are written into one array
as they are made, and an adjoint's packed gates (``delta[g,0] a + delta[g,1] b + ...``)
are written slice by slice (``backend/sparse_sums.py``). Each is checked against the
same program run without it, and against a hand-written NumPy LSTM."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from corpus import ELMAN, LSTM

import tensorcalc as tc
from tensorcalc.backend import plan as plan_module
from tensorcalc.backend import sparse_sums
from tensorcalc.backend.plan import plan_program
from tensorcalc.backend.run import Runner
from tensorcalc.ir import Call, all_factors, refs

RNG = np.random.default_rng(41)
T, B, H, M = 6, 3, 4, 2


def _lstm_arrays() -> dict[str, np.ndarray]:
    return {"Wh": RNG.normal(size=(4, H, H)) / 2, "Wx": RNG.normal(size=(4, H, M)) / 2,
            "bias": 0.1 * RNG.normal(size=(4, H)), "x": RNG.normal(size=(T, B, M)),
            "h0": 0.1 * RNG.normal(size=(B, H)), "c0": 0.1 * RNG.normal(size=(B, H)),
            "y": RNG.normal(size=(T, B, H))}


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def _lstm_bptt(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
               h0: np.ndarray, c0: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """dL/dWh, dL/dWx, dL/dh0 of the corpus LSTM, by hand: the forward loop keeps the
    activations, the backward loop the gate gradients."""
    h, c, kept = h0, c0, []
    for t in range(len(x)):
        z = np.einsum("gjk,bk->bgj", Wh, h) + np.einsum("gjm,bm->bgj", Wx, x[t]) + bias
        i, f, g, o = _sigmoid(z[:, 0]), _sigmoid(z[:, 1]), np.tanh(z[:, 2]), _sigmoid(z[:, 3])
        kept.append((h, c, i, f, g, o))
        c = f * c + i * g
        h = o * np.tanh(c)
        kept[-1] += (np.tanh(c),)
    dh, dc = np.zeros_like(h0), np.zeros_like(c0)
    dWh, dWx = np.zeros_like(Wh), np.zeros_like(Wx)
    for t in range(len(x) - 1, -1, -1):
        h_prev, c_prev, i, f, g, o, tc_ = kept[t]
        dh = dh + y[t]
        dc = dc + dh * o * (1 - tc_ ** 2)
        dz = np.stack([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                       dh * tc_ * o * (1 - o)], axis=1)
        dWh += np.einsum("bgj,bk->gjk", dz, h_prev)
        dWx += np.einsum("bgj,bm->gjm", dz, x[t])
        dc = dc * f
        dh = np.einsum("bgj,gjk->bk", dz, Wh)
    return {"Wh": dWh, "Wx": dWx, "h0": dh}


@pytest.mark.parametrize("wrt", ["Wh", "Wx", "h0"])
def test_an_lstm_gradient_agrees_with_hand_written_bptt(wrt: str) -> None:
    a = _lstm_arrays()
    np.testing.assert_allclose(tc.grad(LSTM, wrt)(**a), _lstm_bptt(**a)[wrt], rtol=1e-11,
                               atol=1e-13)


def test_the_forward_steps_functions_are_kept_for_the_adjoint() -> None:
    g = tc.grad(LSTM, "Wh")
    plan = plan_program(g.needed, g.needed_inputs, g.result)
    forward = next(loop for loop in plan.loops if "z" in loop.names)
    kept = [n for n in forward.names if "@fn" in n]
    # sigmoid of gates 0, 1, 3, tanh of gate 2, and tanh(c): each computed once, in the step
    assert len(kept) == 5
    members = {n for loop in plan.loops for n in loop.names}
    before = [st for st in plan.hoisted if st.name not in members]  # computed over every t
    assert len(before) >= 5
    for st in before:
        calls = [f for f in all_factors(st.rhs) if isinstance(f, Call)]
        assert not calls, f"{st.name} computes {calls[0].fn} again"
    assert all(any(r.name in kept for r in refs(st.rhs)) for st in before
               if st.name.startswith("z_bar"))


def test_a_function_the_recurrence_alone_reads_is_not_kept() -> None:
    # no derivative: nothing outside the step reads sigmoid(z[t,b,1,j])
    p = tc.compile(LSTM)
    assert not any("@fn" in st.name for st in p.plan.statements)
    # Elman's tanh has a sum for its argument (W h + U x + b): not a function of one read
    g = tc.grad(ELMAN, "W")
    assert not any("@fn" in st.name for st in g.plan.statements)


@pytest.mark.parametrize("wrt", ["Wh", "h0"])
def test_keeping_the_functions_changes_no_number(monkeypatch: pytest.MonkeyPatch,
                                                 wrt: str) -> None:
    a = _lstm_arrays()
    kept = tc.grad(LSTM, wrt)(**a)
    monkeypatch.setattr(plan_module, "share_calls", lambda statements, groups: statements)
    again = tc.grad(LSTM, wrt)
    assert not any("@fn" in st.name for st in again.plan.statements)
    np.testing.assert_allclose(kept, again(**a), rtol=1e-13, atol=1e-15)


def test_a_second_derivative_through_kept_functions_agrees_with_jax() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    a = _lstm_arrays()
    v = RNG.normal(size=a["Wh"].shape)

    def loss(Wh: Any) -> Any:
        hs, cs = jnp.asarray(a["h0"]), jnp.asarray(a["c0"])
        total = 0.0
        for t in range(T):
            z = jnp.einsum("gjk,bk->bgj", Wh, hs) + jnp.einsum("gjm,bm->bgj", a["Wx"],
                                                               a["x"][t]) + a["bias"]
            s = jax.nn.sigmoid(z)
            cs = s[:, 1] * cs + s[:, 0] * jnp.tanh(z[:, 2])
            hs = s[:, 3] * jnp.tanh(cs)
            total = total + jnp.sum(hs * a["y"][t])
        return total

    want = jax.jvp(jax.grad(loss), (jnp.asarray(a["Wh"]),), (jnp.asarray(v),))[1]
    hv = tc.jvp(tc.grad(LSTM, "Wh"), "Wh")
    np.testing.assert_allclose(hv(**a, V=v), np.asarray(want), rtol=1e-9, atol=1e-11)
    hessian = tc.hessian(LSTM, "Wh")
    got = np.einsum("pqrstu,stu->pqr", hessian(**a), v)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-11)


def test_a_run_of_the_result_keeps_only_what_is_read_after_a_recurrence() -> None:
    g = tc.grad(LSTM, "Wh")
    a = _lstm_arrays()
    env = g.bind(a)
    runner = Runner(g.plan, dict(env))
    result = runner.dense(env)
    members = {n for loop in g.plan.loops for n in loop.names}
    read_after = {"h_prev", "z_bar", "c_prev"}  # by dL_dWh and the hoisted products
    assert read_after <= set(env) and not {"h_bar", "c_bar", "z"} & set(env)
    every = g.statement_values(a)
    assert members <= set(every) and "@every" not in every
    np.testing.assert_array_equal(result, every[g.result])
    np.testing.assert_array_equal(env["z_bar"], every["z_bar"])
    values = runner(g.bind(a))  # the runner's own call (a shared backward's) keeps all
    assert members <= set(values) and "@every" not in values


GATES = "input w[g]\nz[b,g,j] = delta[g,0] a[b,j] + delta[g,1] 2 c[b,j] + delta[g,2] a[b,j] c[b,j]"


@pytest.fixture
def tiled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each bound sum was written slice by slice."""
    seen: list[bool] = []
    tiles = sparse_sums._tiles

    def spy(*args: Any) -> Any:
        made = tiles(*args)
        seen.append(made is not None)
        return made

    monkeypatch.setattr(sparse_sums, "_tiles", spy)
    return seen


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packed_gates_are_written_slice_by_slice(tiled: list[bool], dtype: Any) -> None:
    a, c = RNG.normal(size=(3, 5)).astype(dtype), RNG.normal(size=(3, 5)).astype(dtype)
    got = tc.compile(GATES)(a=a, c=c, w=np.zeros(3, dtype))
    assert tiled == [True] and got.dtype == dtype
    np.testing.assert_allclose(got, np.stack([a, 2 * c, a * c], axis=1), rtol=1e-6)


def test_gates_that_leave_a_position_empty_add_into_zeros(tiled: list[bool]) -> None:
    a, c = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    got = tc.compile(GATES)(a=a, c=c, w=np.zeros(4))  # nothing at g = 3
    assert tiled == [False]
    np.testing.assert_allclose(got, np.stack([a, 2 * c, a * c, 0 * a], axis=1), rtol=1e-14)


def test_a_constant_scatter_beside_a_dense_term_is_added_as_a_slice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    places: list[tuple[int, ...]] = []
    adder = sparse_sums._slice_adder

    def spy(*args: Any) -> Any:
        places.append(args[-1].places)  # the _Slice it adds
        return adder(*args)

    monkeypatch.setattr(sparse_sums, "_slice_adder", spy)
    p = tc.compile("Y[i,g] = 2 X[i,g] + delta[g,1] v[i] - 3 delta[g,2] v[i] + delta[g,5] v[i]")
    X, v = RNG.normal(size=(4, 3)), RNG.normal(size=4)
    want = 2 * X
    want[:, 1] += v
    want[:, 2] -= 3 * v  # delta[g,5] is outside g's range: nothing
    kept = X.copy()
    np.testing.assert_allclose(p(X=X, v=v), want, rtol=1e-14)
    assert sorted(places) == [(1,), (2,), (5,)]
    np.testing.assert_array_equal(X, kept)

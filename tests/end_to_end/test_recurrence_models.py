"""Recurrences (issue 28) in the models they are written for: an Elman RNN, an LSTM with
packed gates, a GRU, Sinkhorn's iterations and an explicit-Euler rollout. Each is checked
against its own reference in JAX float64, written independently with ``jax.lax.scan``
(and itself checked against its central differences, so that the oracle is right): the
value; the gradient with respect to every weight and start; central differences of
tensorcalc's own program; a Hessian-vector product and a Hessian; the printed and the
exported derivatives; calls with torch tensors and JAX arrays; and second derivatives
through ``tc.to_torch`` and ``tc.to_jax``. Failures name the model and the check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
from corpus import ELMAN, EULER, GRU, LSTM, SINKHORN
from fd import numeric_jacobian

import tensorcalc as tc

jax = pytest.importorskip("jax")
jnp = jax.numpy
lax = jax.lax

pytestmark = pytest.mark.usefixtures("jax64", "runaway_alarm")
TEST_TIMEOUT_S = 180  # the autouse runaway alarm: T=10,000 steps run in Python

RTOL, ATOL = 1e-9, 1e-11  # against JAX in float64
FD_RTOL, FD_ATOL = 1e-6, 1e-7  # against central differences (tests/fd.py's step 1e-6)


@dataclass(frozen=True)
class Model:
    """A program with a scalar result ``L``; its reference in ``jax.numpy`` (keyword
    arrays, same names); how to make its inputs; the inputs to differentiate by (every
    weight and start); the one checked against central differences and the one whose
    Hessian-vector product is checked; and the sizes given by name, if any."""

    name: str
    source: str
    reference: Callable[..., Any]
    arrays: Callable[[np.random.Generator], dict[str, np.ndarray]]
    weights: tuple[str, ...]
    fd_wrt: str
    hvp_wrt: str
    sizes: dict[str, int] | None = None


def _normal(rng: np.random.Generator, scale: float, *shape: int) -> np.ndarray:
    return scale * rng.standard_normal(shape)


# --- Elman RNN: T=50, hidden 4, input 3 -------------------------------------------------


def elman(h0: Any, W: Any, U: Any, b: Any, x: Any, y: Any) -> Any:
    def step(h: Any, xt: Any) -> tuple[Any, Any]:
        h = jnp.tanh(W @ h + U @ xt + b)
        return h, h

    _, hs = lax.scan(step, h0, x)
    return jnp.sum(hs * y)


def elman_arrays(rng: np.random.Generator, T: int = 50, hidden: int = 4,
                 inputs: int = 3) -> dict[str, np.ndarray]:
    return {"h0": _normal(rng, 0.5, hidden), "W": _normal(rng, 0.5, hidden, hidden),
            "U": _normal(rng, 0.5, hidden, inputs), "b": _normal(rng, 0.1, hidden),
            "x": _normal(rng, 1.0, T, inputs), "y": _normal(rng, 1.0, T, hidden)}


# --- LSTM: T=50, batch 2, hidden 3, input 2; gates packed (input, forget, cell, output) --


def lstm(h0: Any, c0: Any, Wh: Any, Wx: Any, bias: Any, x: Any, y: Any) -> Any:
    def step(carry: tuple[Any, Any], xt: Any) -> tuple[tuple[Any, Any], Any]:
        h, c = carry
        z = jnp.einsum("gjk,bk->bgj", Wh, h) + jnp.einsum("gjm,bm->bgj", Wx, xt) + bias
        gate_in, forget, cell, gate_out = (z[:, q] for q in range(4))
        c = jax.nn.sigmoid(forget) * c + jax.nn.sigmoid(gate_in) * jnp.tanh(cell)
        h = jax.nn.sigmoid(gate_out) * jnp.tanh(c)
        return (h, c), h

    _, hs = lax.scan(step, (h0, c0), x)
    return jnp.sum(hs * y)


def lstm_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    T, batch, hidden, inputs = 50, 2, 3, 2
    return {"h0": _normal(rng, 0.5, batch, hidden), "c0": _normal(rng, 0.5, batch, hidden),
            "Wh": _normal(rng, 0.5, 4, hidden, hidden), "Wx": _normal(rng, 0.5, 4, hidden, inputs),
            "bias": _normal(rng, 0.1, 4, hidden), "x": _normal(rng, 1.0, T, batch, inputs),
            "y": _normal(rng, 1.0, T, batch, hidden)}


# --- GRU: T=50, hidden 3, input 2 (reset applied before the recurrent matrix) -----------


GRU_WEIGHTS = ("Wz", "Uz", "bz", "Wr", "Ur", "br", "Wn", "Un", "bn")


def gru(h0: Any, Wz: Any, Uz: Any, bz: Any, Wr: Any, Ur: Any, br: Any, Wn: Any, Un: Any,
        bn: Any, x: Any, y: Any) -> Any:
    def step(h: Any, xt: Any) -> tuple[Any, Any]:
        update = jax.nn.sigmoid(Wz @ h + Uz @ xt + bz)
        reset = jax.nn.sigmoid(Wr @ h + Ur @ xt + br)
        new = jnp.tanh(Wn @ (reset * h) + Un @ xt + bn)
        h = (1 - update) * new + update * h
        return h, h

    _, hs = lax.scan(step, h0, x)
    return jnp.sum(hs * y)


def gru_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    T, hidden, inputs = 50, 3, 2
    out = {"h0": _normal(rng, 0.5, hidden)}
    for gate in "zrn":
        out[f"W{gate}"] = _normal(rng, 0.5, hidden, hidden)
        out[f"U{gate}"] = _normal(rng, 0.5, hidden, inputs)
        out[f"b{gate}"] = _normal(rng, 0.1, hidden)
    return {**out, "x": _normal(rng, 1.0, T, inputs), "y": _normal(rng, 1.0, T, hidden)}


# --- Sinkhorn: 3 iterations, K = exp(-C/0.5), 4x5 ---------------------------------------


def sinkhorn(a: Any, b: Any, K: Any, C: Any) -> Any:
    def step(v: Any, _: Any) -> tuple[Any, Any]:
        u = a / (K @ v)
        return b / (K.T @ u), u

    v, us = lax.scan(step, jnp.ones(K.shape[1]), None, length=3)
    return jnp.sum(us[-1][:, None] * K * v[None, :] * C)


def sinkhorn_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    C = rng.random((4, 5))
    return {"a": rng.random(4) + 0.5, "b": rng.random(5) + 0.5, "K": np.exp(-C / 0.5), "C": C}


# --- explicit Euler: N=20 steps of dy/dt = tanh(A y + c) ---------------------------------


def euler(y0: Any, dt: Any, A: Any, c: Any, w: Any) -> Any:
    def step(y: Any, wn: Any) -> tuple[Any, Any]:
        y = y + dt * jnp.tanh(A @ y + c)
        return y, jnp.sum(y * wn)

    _, terms = lax.scan(step, y0, w)
    return jnp.sum(terms)


def euler_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"y0": _normal(rng, 1.0, 3), "dt": np.array(0.1), "A": _normal(rng, 0.7, 3, 3),
            "c": _normal(rng, 0.3, 3), "w": _normal(rng, 1.0, 20, 3)}


MODELS = {m.name: m for m in (
    Model("elman", ELMAN, elman, elman_arrays, ("h0", "W", "U", "b"), "U", "W"),
    Model("lstm", LSTM, lstm, lstm_arrays, ("h0", "c0", "Wh", "Wx", "bias"), "c0", "Wh"),
    Model("gru", GRU, gru, gru_arrays, ("h0", *GRU_WEIGHTS), "Wr", "Wn"),
    Model("sinkhorn", SINKHORN, sinkhorn, sinkhorn_arrays, ("a", "b", "K", "C"), "b", "a",
          {"n": 3}),
    Model("euler", EULER, euler, euler_arrays, ("y0", "dt", "A", "c"), "dt", "A", {"n": 20}),
)}

NAMES = list(MODELS)
BY_WEIGHT = [pytest.param(m.name, w, id=f"{m.name}-{w}") for m in MODELS.values()
             for w in m.weights]
# Every derivative checked printed and exported: each gradient, the Hessian-vector
# product, and the program itself.
DERIVATIVES = [pytest.param(m.name, "value", "", id=f"{m.name}-value") for m in MODELS.values()]
DERIVATIVES += [pytest.param(n, "grad", w, id=f"{n}-grad-{w}") for n, w in
                ((m.name, w) for m in MODELS.values() for w in m.weights)]
DERIVATIVES += [pytest.param(m.name, "hvp", m.hvp_wrt, id=f"{m.name}-hvp-{m.hvp_wrt}")
                for m in MODELS.values()]


# --- helpers -----------------------------------------------------------------------------


def arrays_of(name: str) -> dict[str, np.ndarray]:
    """The model's inputs, and a tangent ``V`` shaped like its Hessian-vector weight."""
    model = MODELS[name]
    rng = np.random.default_rng(28)
    arrays = model.arrays(rng)
    return {**arrays, "V": rng.standard_normal(arrays[model.hvp_wrt].shape)}


@cache
def program(name: str) -> tc.Program:
    model = MODELS[name]
    return tc.compile(model.source, sizes=model.sizes)


@cache
def gradient(name: str, wrt: str) -> tc.Program:
    return tc.grad(program(name), wrt)


@cache
def hessian_vector(name: str) -> tc.Program:
    """``sum_J d2L / dw[I] dw[J] V[J]``: forward mode over the reverse-mode gradient."""
    wrt = MODELS[name].hvp_wrt
    return tc.jvp(gradient(name, wrt), wrt)


def derivative(name: str, kind: str, wrt: str) -> tc.Program:
    if kind == "value":
        return program(name)
    return gradient(name, wrt) if kind == "grad" else hessian_vector(name)


def run(p: tc.Program, arrays: dict[str, Any]) -> Any:
    """The program on the inputs it accepts (the tangent ``V`` only where it is one)."""
    return p(**{k: v for k, v in arrays.items() if k in p.inputs})


def reference_inputs(name: str, arrays: dict[str, Any]) -> dict[str, Any]:
    return {k: jnp.asarray(v) for k, v in arrays.items() if k != "V"}


def reference_gradient(name: str, wrt: str, arrays: dict[str, Any]) -> Any:
    given = reference_inputs(name, arrays)
    f = MODELS[name].reference
    return jax.grad(lambda x: f(**{**given, wrt: x}))(given[wrt])


def reference_hessian_vector(name: str, arrays: dict[str, Any]) -> Any:
    wrt = MODELS[name].hvp_wrt
    given = reference_inputs(name, arrays)
    f = MODELS[name].reference
    grad = jax.grad(lambda x: f(**{**given, wrt: x}))
    return jax.jvp(grad, (given[wrt],), (jnp.asarray(arrays["V"]),))[1]


def reference_of(name: str, kind: str, wrt: str, arrays: dict[str, Any]) -> Any:
    if kind == "value":
        return MODELS[name].reference(**reference_inputs(name, arrays))
    if kind == "grad":
        return reference_gradient(name, wrt, arrays)
    return reference_hessian_vector(name, arrays)


def close(got: Any, want: Any, rtol: float = RTOL, atol: float = ATOL) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def central_differences(f: Callable[..., Any], arrays: dict[str, np.ndarray], wrt: str,
                        eps: float = 1e-6) -> np.ndarray:
    """d f / d wrt of a scalar function by central differences, step eps * max(1, |x|)."""
    x = np.array(arrays[wrt], dtype=np.float64)
    out = np.zeros(x.size)
    for k in range(x.size):
        step = eps * max(1.0, abs(float(x.flat[k])))
        values = []
        for sign in (1.0, -1.0):
            moved = x.copy()
            moved.flat[k] += sign * step
            values.append(float(f(**{**arrays, wrt: jnp.asarray(moved)})))
        out[k] = (values[0] - values[1]) / (2 * step)
    return out.reshape(x.shape)


# --- the oracles themselves --------------------------------------------------------------


@pytest.mark.parametrize("name, wrt", BY_WEIGHT)
def test_reference_gradient_matches_its_own_central_differences(name: str, wrt: str) -> None:
    arrays = arrays_of(name)
    f = jax.jit(MODELS[name].reference)
    fd = central_differences(f, reference_inputs(name, arrays), wrt)
    close(reference_gradient(name, wrt, arrays), fd, FD_RTOL, FD_ATOL)


@pytest.mark.parametrize("name", NAMES)
def test_reference_hessian_vector_product_matches_central_differences(name: str) -> None:
    # d/de grad(w + e V) at e = 0, by central differences of JAX's gradient
    model, arrays = MODELS[name], arrays_of(name)
    w, V, eps = arrays[model.hvp_wrt], arrays["V"], 1e-6
    moved = [reference_gradient(name, model.hvp_wrt, {**arrays, model.hvp_wrt: w + s * eps * V})
             for s in (1.0, -1.0)]
    fd = (np.asarray(moved[0]) - np.asarray(moved[1])) / (2 * eps)
    close(reference_hessian_vector(name, arrays), fd, FD_RTOL, FD_ATOL)


# --- (a) value, (b) gradients ------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_jax(name: str) -> None:
    arrays = arrays_of(name)
    close(run(program(name), arrays), reference_of(name, "value", "", arrays))


@pytest.mark.parametrize("name, wrt", BY_WEIGHT)
def test_gradient_matches_jax(name: str, wrt: str) -> None:
    arrays = arrays_of(name)
    close(run(gradient(name, wrt), arrays), reference_gradient(name, wrt, arrays))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name: str) -> None:
    wrt = MODELS[name].fd_wrt
    arrays = {k: v for k, v in arrays_of(name).items() if k != "V"}
    close(run(gradient(name, wrt), arrays), numeric_jacobian(program(name), wrt, arrays),
          FD_RTOL, FD_ATOL)


# --- (c) second derivatives --------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_hessian_vector_product_matches_jax(name: str) -> None:
    arrays = arrays_of(name)
    close(run(hessian_vector(name), arrays), reference_hessian_vector(name, arrays))


MIXED = [pytest.param(m.name, other, id=f"{m.name}-{m.hvp_wrt}-{other}")
         for m in MODELS.values() for other in m.arrays(np.random.default_rng(0))
         if other != m.hvp_wrt]


@pytest.mark.parametrize("name, other", MIXED)
def test_mixed_second_derivative_matches_jax(name: str, other: str) -> None:
    # d/d other of the gradient by the Hessian-vector weight, along a tangent V shaped
    # like ``other``: every other input, data included (the loss's own inputs too)
    wrt, f = MODELS[name].hvp_wrt, MODELS[name].reference
    arrays = arrays_of(name)
    arrays["V"] = np.random.default_rng(3).standard_normal(np.shape(arrays[other]))
    given = reference_inputs(name, arrays)

    def gradient_at(o: Any) -> Any:
        return jax.grad(lambda w: f(**{**given, wrt: w, other: o}))(given[wrt])

    want = jax.jvp(gradient_at, (given[other],), (jnp.asarray(arrays["V"]),))[1]
    close(run(tc.jvp(gradient(name, wrt), other), arrays), want)


def test_hessian_of_a_tiny_elman_matches_jax() -> None:
    arrays = elman_arrays(np.random.default_rng(5), T=4, hidden=2, inputs=2)
    given = {k: jnp.asarray(v) for k, v in arrays.items()}
    want = jax.hessian(lambda W: elman(**{**given, "W": W}))(given["W"])
    close(run(tc.hessian(ELMAN, "W"), arrays), want)


# --- (d) printed, (e) exported ------------------------------------------------------------


@pytest.mark.parametrize("name, kind, wrt", DERIVATIVES)
def test_printed_program_compiles_to_the_same_numbers(name: str, kind: str, wrt: str) -> None:
    d, arrays = derivative(name, kind, wrt), arrays_of(name)
    again = tc.compile(str(d), sizes=MODELS[name].sizes)
    want = reference_of(name, kind, wrt, arrays)
    close(run(d, arrays), want)
    close(run(again, arrays), want)


@pytest.mark.parametrize("name, kind, wrt", DERIVATIVES)
def test_exported_function_gives_the_same_numbers(name: str, kind: str, wrt: str) -> None:
    d, arrays = derivative(name, kind, wrt), arrays_of(name)
    namespace: dict[str, Any] = {}
    exec(compile(d.to_python("exported"), "<exported>", "exec"), namespace)  # our own code
    got = namespace["exported"](**{k: arrays[k] for k in d.needed_inputs})
    close(got, reference_of(name, kind, wrt, arrays))


# --- (f) torch tensors and JAX arrays in, (g) the bridges to second order ---------------


@pytest.mark.parametrize("name", NAMES)
def test_program_and_gradient_take_torch_tensors(name: str) -> None:
    torch = pytest.importorskip("torch")
    arrays, wrt = arrays_of(name), MODELS[name].fd_wrt
    tensors = {k: torch.tensor(v) for k, v in arrays.items()}
    value, grad = run(program(name), tensors), run(gradient(name, wrt), tensors)
    assert isinstance(value, torch.Tensor) and isinstance(grad, torch.Tensor)
    close(value.numpy(), reference_of(name, "value", "", arrays))
    close(grad.numpy(), reference_gradient(name, wrt, arrays))


@pytest.mark.parametrize("name", NAMES)
def test_program_and_gradient_take_jax_arrays(name: str) -> None:
    arrays, wrt = arrays_of(name), MODELS[name].fd_wrt
    given = {k: jnp.asarray(v) for k, v in arrays.items()}
    value, grad = run(program(name), given), run(gradient(name, wrt), given)
    assert isinstance(value, jax.Array) and isinstance(grad, jax.Array)
    close(value, reference_of(name, "value", "", arrays))
    close(grad, reference_gradient(name, wrt, arrays))


@pytest.mark.parametrize("name", NAMES)
def test_to_torch_double_backward(name: str) -> None:
    torch = pytest.importorskip("torch")
    model, arrays = MODELS[name], arrays_of(name)
    f, wrt = tc.to_torch(program(name)), model.hvp_wrt
    tensors = {k: torch.tensor(v) for k, v in arrays.items() if k != "V"}
    V = torch.tensor(arrays["V"])

    def loss(w: Any) -> Any:
        return f(**{**tensors, wrt: w})

    w = tensors[wrt].clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(w), w, create_graph=True)
    (hv,) = torch.autograd.grad((g * V).sum(), w)
    want = reference_hessian_vector(name, arrays)
    close(g.detach().numpy(), reference_gradient(name, wrt, arrays))
    close(hv.numpy(), want)
    close(torch.func.jvp(torch.func.grad(loss), (tensors[wrt],), (V,))[1].numpy(), want)


@pytest.mark.parametrize("name", NAMES)
def test_to_jax_second_derivative(name: str) -> None:
    model, arrays = MODELS[name], arrays_of(name)
    f, wrt = tc.to_jax(program(name)), model.hvp_wrt
    given = reference_inputs(name, arrays)

    def loss(w: Any) -> Any:
        return f(**{**given, wrt: w})

    close(jax.grad(loss)(given[wrt]), reference_gradient(name, wrt, arrays))
    hv = jax.jvp(jax.grad(loss), (given[wrt],), (jnp.asarray(arrays["V"]),))[1]
    close(hv, reference_hessian_vector(name, arrays))


def test_to_jax_reverse_over_reverse_on_the_elman() -> None:
    # the Elman only: eager JAX runs each step's operations one by one (about 40 s for
    # the LSTM on two cores); forward over reverse is checked above for every model
    arrays = arrays_of("elman")
    f, given = tc.to_jax(program("elman")), reference_inputs("elman", arrays)

    def loss(W: Any) -> Any:
        return f(**{**given, "W": W})

    seed = jnp.asarray(arrays["V"])
    close(jax.grad(lambda W: jnp.vdot(jax.grad(loss)(W), seed))(given["W"]),
          reference_hessian_vector("elman", arrays))


# --- (h) the derivation does not see the length of the sequence ---------------------------


def test_elman_gradient_is_derived_once_for_every_length() -> None:
    short = tc.grad(tc.compile(ELMAN, sizes={"t": 10}), "W")
    long = tc.grad(tc.compile(ELMAN, sizes={"t": 10_000}), "W")
    assert str(short) == str(long)
    for T, derived in ((10, short), (10_000, long)):
        arrays = elman_arrays(np.random.default_rng(T), T=T)
        given = {k: jnp.asarray(v) for k, v in arrays.items()}
        want = jax.grad(lambda W, g=given: elman(**{**g, "W": W}))(given["W"])
        close(run(derived, arrays), want)

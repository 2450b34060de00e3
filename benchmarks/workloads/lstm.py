"""Rows 23 and 23x: an LSTM's gradient through time (a recurrence, issue 28), batch 64,
hidden 256, input 64, T=100, float64, with respect to the recurrent weights ``Wh`` (row
23, and 23j against ``jax.jit``) and the input weights ``Wx`` (row 23x).

The gates are packed along ``g`` (0 input, 1 forget, 2 cell, 3 output), as cuDNN and
``torch.nn.LSTM`` pack them, so each step is one product ``h Whᵀ`` of all four gates.
The NumPy formula is backpropagation through time as it is written by hand: the input
products of all steps as one product before the loop, the forward loop storing the
gates and states, the backward loop storing each step's gate gradients ``dZ``, and then
one product over all steps for the weight's gradient (``dZᵀ h`` with T·B rows: 0.1 s on
the 2-core development machine, where 100 products of 1024×64 by 64×256, accumulated,
took 0.3 s). jax runs ``lax.scan`` under ``jax.jit(jax.grad)``; torch a Python loop
under ``torch.func.grad``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative, sigmoid
from benchmarks.workloads.gaussian_nll import jax_goal, measure_with_jax

SOURCE = """
h[-1,b,j] = h0[b,j]
c[-1,b,j] = c0[b,j]
z[t,b,g,j] = Wh[g,j,k] h[t-1,b,k] + Wx[g,j,m] x[t,b,m] + bias[g,j]
c[t,b,j] = sigmoid(z[t,b,1,j]) c[t-1,b,j] + sigmoid(z[t,b,0,j]) tanh(z[t,b,2,j])
h[t,b,j] = sigmoid(z[t,b,3,j]) tanh(c[t,b,j])
L = sum[t,b,j](h[t,b,j] y[t,b,j])
"""

#: The rows whose tensorcalc side needs recurrences in the language.
KEYS = ("23", "23x")

GATES = 4


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Weights scaled by one over the square root of their fan-in (the states neither
    vanish nor saturate over T steps), small biases and start states, and a random
    cotangent ``y`` for the hidden states."""
    t, b, h, m = size["t"], size["b"], size["h"], size["m"]
    return {"Wh": rng.standard_normal((GATES, h, h)) / np.sqrt(h),
            "Wx": rng.standard_normal((GATES, h, m)) / np.sqrt(m),
            "bias": 0.1 * rng.standard_normal((GATES, h)),
            "x": rng.standard_normal((t, b, m)),
            "h0": 0.1 * rng.standard_normal((b, h)),
            "c0": 0.1 * rng.standard_normal((b, h)),
            "y": rng.standard_normal((t, b, h))}


def forward(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
            h0: np.ndarray, c0: np.ndarray) -> tuple[np.ndarray, ...]:
    """The gates after their activations ``A[t,b,g,j]``, the hidden states ``hs`` and
    the cells ``cs`` (both ``[T+1,B,H]``, the start at position 0), and ``tanh(c)`` of
    every step (``[T,B,H]``, for the backward pass)."""
    steps, batch, inputs = x.shape
    gates, hidden, _ = Wh.shape
    whT = Wh.reshape(gates * hidden, hidden).T
    A = (x.reshape(steps * batch, inputs) @ Wx.reshape(gates * hidden, inputs).T
         ).reshape(steps, batch, gates, hidden)
    A += bias
    hs = np.empty((steps + 1, batch, hidden))
    cs = np.empty((steps + 1, batch, hidden))
    tanh_cs = np.empty((steps, batch, hidden))
    hs[0], cs[0] = h0, c0
    for t in range(steps):
        a = A[t]
        a += (hs[t] @ whT).reshape(batch, gates, hidden)
        a[:, :2] = sigmoid(a[:, :2])
        a[:, 2] = np.tanh(a[:, 2])
        a[:, 3] = sigmoid(a[:, 3])
        np.multiply(a[:, 1], cs[t], out=cs[t + 1])
        cs[t + 1] += a[:, 0] * a[:, 2]
        np.tanh(cs[t + 1], out=tanh_cs[t])
        np.multiply(a[:, 3], tanh_cs[t], out=hs[t + 1])
    return A, hs, cs, tanh_cs


def loss(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
         h0: np.ndarray, c0: np.ndarray, y: np.ndarray) -> float:
    """``L = Σ h[t,b,j] y[t,b,j]``, the program's value (for the finite differences)."""
    hs = forward(Wh, Wx, bias, x, h0, c0)[1]
    return float(np.sum(hs[1:] * y))


def backward(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
             h0: np.ndarray, c0: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of ``L`` with respect to every step's gate inputs, ``dZ[t,b,(g,j)]``,
    and the hidden states ``hs``. Every weight's gradient is one product of ``dZ``
    with what the weight multiplied."""
    A, hs, cs, tanh_cs = forward(Wh, Wx, bias, x, h0, c0)
    steps, batch, gates, hidden = A.shape
    wh = Wh.reshape(gates * hidden, hidden)
    dZ = np.empty_like(A)
    dh = np.zeros((batch, hidden))
    dc = np.zeros((batch, hidden))
    for t in range(steps - 1, -1, -1):
        a, dz = A[t], dZ[t]
        i, f, g, o = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
        tanh_c = tanh_cs[t]
        dh += y[t]
        dc += dh * o * (1 - tanh_c * tanh_c)
        dz[:, 0] = dc * g * i * (1 - i)
        dz[:, 1] = dc * cs[t] * f * (1 - f)
        dz[:, 2] = dc * i * (1 - g * g)
        dz[:, 3] = dh * tanh_c * o * (1 - o)
        dc *= f
        dh = dz.reshape(batch, gates * hidden) @ wh
    return dZ.reshape(steps * batch, gates * hidden), hs


def reference(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
              h0: np.ndarray, c0: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dL/dWh[g,j,k] = Σ_{t,b} dZ[t,b,g,j] h[t-1,b,k]``: one product over all steps."""
    dZ, hs = backward(Wh, Wx, bias, x, h0, c0, y)
    hidden = Wh.shape[1]
    return (dZ.T @ hs[:-1].reshape(-1, hidden)).reshape(Wh.shape)


def reference_wx(Wh: np.ndarray, Wx: np.ndarray, bias: np.ndarray, x: np.ndarray,
                 h0: np.ndarray, c0: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dL/dWx[g,j,m] = Σ_{t,b} dZ[t,b,g,j] x[t,b,m]``."""
    dZ, _ = backward(Wh, Wx, bias, x, h0, c0, y)
    return (dZ.T @ x.reshape(-1, x.shape[2])).reshape(Wx.shape)


def _step(xp: Any, sigmoid_: Any, unstack: Any) -> Any:
    """One LSTM step on a library's arrays (jax.numpy or torch): the new ``(h, c)``.
    ``unstack`` takes the gates apart along axis 1 (torch: ``unbind``, whose backward
    writes the four gradients into one array, where four selections would each fill
    a zero array of all the gates)."""

    def step(Wh: Any, h: Any, c: Any, xz: Any) -> tuple[Any, Any]:
        gates, hidden, _ = Wh.shape
        z = xz + (h @ Wh.reshape(gates * hidden, hidden).T).reshape(-1, gates, hidden)
        i, f, g, o = unstack(z)
        c = sigmoid_(f) * c + sigmoid_(i) * xp.tanh(g)
        return sigmoid_(o) * xp.tanh(c), c

    return step


def _input_products(xp: Any, Wx: Any, bias: Any, x: Any) -> Any:
    """``Wx x + bias`` of every step, ``[T,B,G,H]``, one product."""
    return xp.einsum("tbm,gjm->tbgj", x, Wx) + bias


def jax_loss(Wh: Any, Wx: Any, bias: Any, x: Any, h0: Any, c0: Any, y: Any) -> Any:
    jax = peers.jax()
    jnp = jax.numpy
    step = _step(jnp, jax.nn.sigmoid, lambda z: jnp.unstack(z, axis=1))

    def scanned(carry: tuple[Any, Any], inputs: tuple[Any, Any]) -> tuple[Any, Any]:
        xz, y_t = inputs
        h, c = step(Wh, *carry, xz)
        return (h, c), jnp.sum(h * y_t)

    _, parts = jax.lax.scan(scanned, (h0, c0), (_input_products(jnp, Wx, bias, x), y))
    return jnp.sum(parts)


def torch_loss(Wh: Any, Wx: Any, bias: Any, x: Any, h0: Any, c0: Any, y: Any) -> Any:
    torch = peers.torch()
    step = _step(torch, torch.sigmoid, lambda z: z.unbind(1))
    h, c = h0, c0
    total = 0.0
    # unbind, not xz[t]: the backward of T selections would fill T zero arrays of all
    # the steps (18 s instead of 0.3 s for the gradient w.r.t. Wx)
    for xz, y_t in zip(_input_products(torch, Wx, bias, x).unbind(0), y.unbind(0)):
        h, c = step(Wh, h, c, xz)
        total = total + torch.sum(h * y_t)
    return total


ORDER = ("Wh", "Wx", "bias", "x", "h0", "c0", "y")


def jax_gradient(wrt: int) -> Any:
    """The jax peer for the gradient w.r.t. argument ``wrt`` of :data:`ORDER`."""

    def build(arrays: Arrays) -> Call:
        jax = peers.jax()
        gradient = jax.jit(jax.grad(jax_loss, argnums=wrt))
        a = peers.to_jax(arrays)
        args = [a[name] for name in ORDER]
        return lambda: gradient(*args).block_until_ready()

    return build


def torch_gradient(wrt: int) -> Any:
    """The torch peer for the gradient w.r.t. argument ``wrt`` of :data:`ORDER`."""

    def build(arrays: Arrays) -> Call:
        gradient = peers.torch().func.grad(torch_loss, argnums=wrt)
        t = peers.to_torch(arrays)
        args = [t[name] for name in ORDER]
        return lambda: gradient(*args)

    return build


SIZE = {"t": 100, "b": 64, "h": 256, "m": 64}
TINY = {"t": 4, "b": 2, "h": 3, "m": 2}
TITLE = "LSTM gradient wrt {wrt} through T={t} steps, batch {b}, hidden {h}, input {m}"

WORKLOADS = (
    Workload(
        key="23",
        title=TITLE.replace("{wrt}", "Wh"),
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.grad, SOURCE, "Wh"),
        reference=reference,
        peers={"jax": jax_gradient(0), "torch": torch_gradient(0)},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.2), jax_goal(limit=1.2)),
        measure=measure_with_jax,
    ),
    Workload(
        key="23x",
        title=TITLE.replace("{wrt}", "Wx"),
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.grad, SOURCE, "Wx"),
        reference=reference_wx,
        peers={"jax": jax_gradient(1), "torch": torch_gradient(1)},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.2),),
    ),
)

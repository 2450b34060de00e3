"""Row 24: a small Elman RNN's gradient through a long sequence (hidden 4, input 3,
T=10,000, float64, with respect to the recurrent weights ``W``), where each step's
arithmetic is tiny and a recurrence's cost per position shows (docs/recurrences.md).

The NumPy formula is backpropagation through time as written by hand: the input
products of all steps as one product, a forward loop keeping the states, a backward
loop accumulating ``dW``. jax runs ``lax.scan`` under ``jax.jit(jax.grad)``, one
compiled loop with no Python per step. The goals are shown for information: the issue
that asked for recurrences set its goals on the LSTM rows (23, 23x).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative
from benchmarks.workloads.gaussian_nll import jax_goal, measure_with_jax

SOURCE = """
h[-1,j] = h0[j]
h[t,j] = tanh(W[j,k] h[t-1,k] + U[j,m] x[t,m] + b[j])
L = sum[t,j](h[t,j] y[t,j])
"""


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    t, h, m = size["t"], size["h"], size["m"]
    return {"h0": 0.5 * rng.standard_normal(h), "W": 0.5 * rng.standard_normal((h, h)),
            "U": 0.5 * rng.standard_normal((h, m)), "b": 0.1 * rng.standard_normal(h),
            "x": rng.standard_normal((t, m)), "y": rng.standard_normal((t, h))}


def loss(h0: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray, x: np.ndarray,
         y: np.ndarray) -> float:
    """``L``, the program's value, by the forward loop alone (for central differences)."""
    h, total = h0, 0.0
    for t in range(len(x)):
        h = np.tanh(W @ h + U @ x[t] + b)
        total += float(h @ y[t])
    return total


def reference(h0: np.ndarray, W: np.ndarray, U: np.ndarray, b: np.ndarray, x: np.ndarray,
              y: np.ndarray) -> np.ndarray:
    """``dL/dW`` by backpropagation through time, written by hand."""
    steps, hidden = len(x), len(h0)
    inputs = x @ U.T + b
    hs = np.empty((steps + 1, hidden))
    hs[0] = h0
    for t in range(steps):
        hs[t + 1] = np.tanh(W @ hs[t] + inputs[t])
    dh = np.zeros(hidden)
    dW = np.zeros_like(W)
    for t in range(steps - 1, -1, -1):
        dz = (dh + y[t]) * (1 - hs[t + 1] ** 2)
        dW += np.outer(dz, hs[t])
        dh = W.T @ dz
    return dW


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(W: Any, h0: Any, U: Any, b: Any, x: Any, y: Any) -> Any:
        def step(h: Any, xy: tuple[Any, Any]) -> tuple[Any, Any]:
            h = jnp.tanh(W @ h + U @ xy[0] + b)
            return h, jnp.dot(h, xy[1])

        return jnp.sum(jax.lax.scan(step, h0, (x, y))[1])

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    args = [a[k] for k in ("W", "h0", "U", "b", "x", "y")]
    return lambda: gradient(*args).block_until_ready()


WORKLOADS = (
    Workload(
        key="24",
        title="Elman RNN gradient wrt W through T={t} steps, hidden {h}, input {m} "
              "(tiny steps: the cost per position)",
        size={"t": 10_000, "h": 4, "m": 3},
        tiny={"t": 5, "h": 3, "m": 2},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "W"),
        reference=reference,
        peers={"jax": jax_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.2, counted=False),
               jax_goal(counted=False, limit=1.2)),
        measure=measure_with_jax,
    ),
)

"""Rows 10 and 10j: the gradient of the row-wise softmax cross-entropy
``sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])`` w.r.t. the logits ``z`` (docs/functions.md),
timed against the stable NumPy softmax minus ``y`` and, in row 10j (information only:
XLA fuses the whole gradient into one pass, which beats the NumPy formula itself), against
``jax.jit(jax.grad(...))``."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative
from benchmarks.workloads.gaussian_nll import jax_goal, measure_with_jax

SOURCE = "L = sum[n](logsumexp[j](z[n,j]) - y[n,j] z[n,j])"


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Logits of scale 3 and one-hot labels."""
    n, k = size["n"], size["k"]
    y = np.zeros((n, k))
    y[np.arange(n), rng.integers(0, k, n)] = 1.0
    return {"z": 3.0 * rng.standard_normal((n, k)), "y": y}


def reference(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The stable softmax of each row, minus ``y``."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) - y


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(z: Any, y: Any) -> Any:
        return jnp.sum(jax.nn.logsumexp(z, axis=1) - jnp.sum(y * z, axis=1))

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["z"], a["y"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(z: Any, y: Any) -> Any:
        return torch.sum(torch.logsumexp(z, dim=1) - torch.sum(y * z, dim=1))

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["z"], t["y"])


WORKLOADS = (
    Workload(
        key="10",
        title="softmax cross-entropy gradient wrt z (logsumexp), {n}×{k}",
        size={"n": 4096, "k": 1000},
        tiny={"n": 5, "k": 7},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "z"),
        reference=reference,
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.3), jax_goal()),
        measure=measure_with_jax,
    ),
)

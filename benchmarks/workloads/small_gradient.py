"""Row 5: a tiny gradient, ``(W[i,j] x[j])^2`` w.r.t. a 3×3 ``W``: the per-call overhead."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative

SOURCE = "s = (W[i,j] x[j])^2"


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    n = size["n"]
    return {"W": rng.standard_normal((n, n)), "x": rng.standard_normal(n)}


def reference(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 2 * np.outer(W @ x, x)


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(W: Any, x: Any) -> Any:
        return jnp.sum((W @ x) ** 2)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["W"], a["x"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(W: Any, x: Any) -> Any:
        return torch.sum((W @ x) ** 2)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["W"], t["x"])


WORKLOADS = (
    Workload(
        key="5",
        title="gradient of (W[i,j] x[j])^2 wrt W, {n}×{n}, per call",
        size={"n": 3},
        tiny={"n": 3},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "W"),
        reference=reference,
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time, per call", 1.5),),
        target=0.05,  # µs calls: batches of about 50 ms
    ),
)

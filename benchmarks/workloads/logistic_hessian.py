"""Row 1: the Hessian of the logistic-regression loss w.r.t. the weights ``w``."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative, sigmoid

SOURCE = "z[n] = X[n,d] w[d]; L = sum[n](softplus(z[n]) - y[n] z[n])"


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    m, d = size["m"], size["d"]
    return {"X": rng.standard_normal((m, d)), "w": 0.01 * rng.standard_normal(d),
            "y": (rng.random(m) < 0.5).astype(np.float64)}


def reference(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> np.ndarray:
    s = sigmoid(X @ w)
    return X.T @ (X * (s * (1 - s))[:, None])


def jax_hessian(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(w: Any, X: Any, y: Any) -> Any:
        z = X @ w
        return jnp.sum(jax.nn.softplus(z) - y * z)

    hessian = jax.jit(jax.hessian(loss))
    a = peers.to_jax(arrays)
    return lambda: hessian(a["w"], a["X"], a["y"]).block_until_ready()


def torch_hessian(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(w: Any, X: Any, y: Any) -> Any:
        z = X @ w
        return torch.sum(torch.nn.functional.softplus(z) - y * z)

    hessian = torch.func.hessian(loss)
    t = peers.to_torch(arrays)
    return lambda: hessian(t["w"], t["X"], t["y"])


WORKLOADS = (
    Workload(
        key="1",
        title="logistic regression Hessian wrt w (X {m}×{d})",
        size={"m": 2000, "d": 500},
        tiny={"m": 12, "d": 4},
        setup=setup,
        program=derivative(tc.hessian, SOURCE, "w"),
        reference=reference,
        peers={"jax": jax_hessian, "torch": torch_hessian},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.05),),
    ),
)

"""Row 3: the gradient of a 2-layer tanh MLP's squared error w.r.t. the first layer ``W``.
Row 6 (``first_call``) reuses its arrays, formula and peers."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative

SOURCE = ("H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; "
          "L = (P[b,o] - T[b,o])^2")

SIZE = {"b": 512, "d": 784, "h": 256, "o": 10}
TINY = {"b": 6, "d": 5, "h": 4, "o": 3}


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    b, d, h, o = size["b"], size["d"], size["h"], size["o"]
    return {
        "X": rng.standard_normal((b, d)),
        "W": rng.standard_normal((d, h)) / np.sqrt(d),
        "c": 0.1 * rng.standard_normal(h),
        "V": rng.standard_normal((h, o)) / np.sqrt(h),
        "T": rng.standard_normal((b, o)),
    }


def reference(X: np.ndarray, W: np.ndarray, c: np.ndarray, V: np.ndarray,
              T: np.ndarray) -> np.ndarray:
    """Hand backprop: ``Xᵀ ((2 (H V - T) Vᵀ) ∘ (1 - H²))`` with ``H = tanh(X W + c)``."""
    H = np.tanh(X @ W + c)
    P = H @ V
    Pb = 2 * (P - T)
    Hb = Pb @ V.T
    return X.T @ (Hb * (1 - H * H))


def jax_gradient(arrays: Arrays) -> Call:
    """``jax.jit(jax.grad(loss))`` of a loss defined afresh: each build traces and
    compiles again on its first call (row 6 times exactly that)."""
    jax = peers.jax()
    jnp = jax.numpy

    def loss(W: Any, X: Any, c: Any, V: Any, T: Any) -> Any:
        return jnp.sum((jnp.tanh(X @ W + c) @ V - T) ** 2)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["W"], a["X"], a["c"], a["V"], a["T"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(W: Any, X: Any, c: Any, V: Any, T: Any) -> Any:
        return torch.sum((torch.tanh(X @ W + c) @ V - T) ** 2)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["W"], t["X"], t["c"], t["V"], t["T"])


PEERS = {"jax": jax_gradient, "torch": torch_gradient}

WORKLOADS = (
    Workload(
        key="3",
        title="tanh MLP gradient wrt W (batch {b}, {d}→{h}→{o})",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.grad, SOURCE, "W"),
        reference=reference,
        peers=PEERS,
        goals=(Goal("tensorcalc time / NumPy formula time", 1.10),),
    ),
)

"""Row 22: a Gaussian process's negative log marginal likelihood, differentiated with
respect to its log length-scale ``ll``, as a GP practitioner writes it: a squared
exponential kernel with noise, ``0.5 yᵀK⁻¹y + 0.5 log det K``.

The derivative needs the kernel matrix without its noise again (``dK/dll = Kf · s D``);
tensorcalc computes it once, in the forward pass, as a statement of its own
(calculus/subexpressions.py). The NumPy formula is the textbook one:
``dL/dll = 0.5 Σ (K⁻¹ - α αᵀ) ∘ dK/dll`` with ``α = K⁻¹ y``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative
from benchmarks.workloads.gaussian_nll import jax_goal, measure_with_jax

NOISE = 0.1

SOURCE = """
K[i,j] = exp(-0.5 exp(-2 ll) sum[n]((X[i,n] - X[j,n])^2)) + 0.1 delta[i,j]
L = 0.5 y[i] inv[i,j](K[i,j]) y[j] + 0.5 logdet[i,j](K[i,j])
"""


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """``N`` points in ``D`` dimensions, targets, and a log length-scale of 0.3."""
    n, d = size["n"], size["d"]
    return {"X": rng.standard_normal((n, d)), "y": rng.standard_normal(n),
            "ll": np.asarray(0.3)}


def reference(X: np.ndarray, y: np.ndarray, ll: np.ndarray) -> np.ndarray:
    """Squared distances by broadcasting, the kernel, ``K⁻¹`` and ``α = K⁻¹ y``, then
    ``0.5 Σ (K⁻¹ - α αᵀ) ∘ dK`` with ``dK = Kf · exp(-2 ll) D``."""
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1)
    sD = np.exp(-2 * ll) * D
    Kf = np.exp(-0.5 * sD)
    Kinv = np.linalg.inv(Kf + NOISE * np.eye(len(y)))
    a = Kinv @ y
    return 0.5 * np.sum((Kinv - np.outer(a, a)) * (Kf * sD))


def _loss(xp: Any, inv: Any, slogdet: Any) -> Any:
    def loss(ll: Any, X: Any, y: Any) -> Any:
        D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        K = xp.exp(-0.5 * xp.exp(-2 * ll) * D) + NOISE * xp.eye(y.shape[0], dtype=X.dtype)
        return 0.5 * y @ inv(K) @ y + 0.5 * slogdet(K)[1]

    return loss


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy
    gradient = jax.jit(jax.grad(_loss(jnp, jnp.linalg.inv, jnp.linalg.slogdet)))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["ll"], a["X"], a["y"]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()
    gradient = torch.func.grad(_loss(torch, torch.linalg.inv, torch.linalg.slogdet))
    t = peers.to_torch(arrays)
    return lambda: gradient(t["ll"].reshape(()), t["X"], t["y"])


WORKLOADS = (
    Workload(
        key="22",
        title="GP marginal likelihood gradient wrt the log length-scale, N={n}, D={d}",
        size={"n": 300, "d": 3},
        tiny={"n": 5, "d": 2},
        setup=setup,
        program=derivative(tc.grad, SOURCE, "ll"),
        reference=reference,
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.1), jax_goal(counted=False)),
        measure=measure_with_jax,
    ),
)

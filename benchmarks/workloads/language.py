"""Rows 10i, 20 and 21: gradients written with the newer language features, as people
write them.

* Row 10i (and 10ij): softmax cross-entropy with *integer* labels,
  ``sum[n](logsumexp[c](Z[n,c]) - Z[n,t[n]])``, gradient w.r.t. ``Z``: an index array
  inside a subscript (docs/index-arithmetic.md), against the stable NumPy softmax with 1
  subtracted at ``(n, t[n])`` in place. Its goal is counted and is expected to miss today (the
  derivative's ``delta[q,t[p]]`` is not yet run as a scatter into the softmax).
* Row 20 (and 20j): LayerNorm's gradient w.r.t. ``x``, with ``mean[d](...)``, against the
  standard hand-written LayerNorm backward.
* Row 21 (and 21j): masked causal self-attention's gradient w.r.t. ``Q``, with
  ``size(d)`` and the masked reduction ``softmax[j | j <= i](...)``, against the
  hand-written backward of the masked softmax.

The ``j`` rows compare the same timings with ``jax.jit(jax.grad)`` (information only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Size
from benchmarks.spec import Arrays, Call, Workload, derivative
from benchmarks.workloads.gaussian_nll import jax_goal, measure_with_jax

EPS = 1e-5

# --------------------------------------------------------------------------------------
# row 10i: softmax cross-entropy with integer labels

XENT_SOURCE = "L = sum[n](logsumexp[c](Z[n,c]) - Z[n,t[n]])"


def xent_setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Logits of scale 3 and int64 labels."""
    n, k = size["n"], size["k"]
    return {"Z": 3.0 * rng.standard_normal((n, k)), "t": rng.integers(0, k, n)}


def xent_reference(Z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The stable softmax of each row, then 1 subtracted at ``(n, t[n])`` in place."""
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(t)), t] -= 1.0
    return p


def xent_jax(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(Z: Any, t: Any) -> Any:
        picked = jnp.take_along_axis(Z, t[:, None], axis=1)[:, 0]
        return jnp.sum(jax.nn.logsumexp(Z, axis=1) - picked)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["Z"], a["t"]).block_until_ready()


def xent_torch(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(Z: Any, t: Any) -> Any:
        picked = torch.gather(Z, 1, t[:, None])[:, 0]
        return torch.sum(torch.logsumexp(Z, dim=1) - picked)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["Z"], t["t"])


# --------------------------------------------------------------------------------------
# row 20: LayerNorm

LAYERNORM_SOURCE = """
mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
y[b,d] = (x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d]
L = y[b,d] Gy[b,d]
"""


def layernorm_setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Activations ``x`` (batch × features), gain ``g`` around 1, bias ``be``, and the
    cotangent ``Gy``."""
    b, d = size["b"], size["d"]
    return {"x": rng.standard_normal((b, d)), "g": 1.0 + 0.1 * rng.standard_normal(d),
            "be": 0.1 * rng.standard_normal(d), "Gy": rng.standard_normal((b, d))}


def layernorm_reference(x: np.ndarray, g: np.ndarray, be: np.ndarray,
                        Gy: np.ndarray) -> np.ndarray:
    """The standard LayerNorm backward: ``r = 1/sqrt(v + eps)``, ``xh = (x - mu) r``,
    ``dxh = Gy g``, ``dx = r (dxh - mean(dxh) - xh mean(dxh xh))``."""
    mu = x.mean(axis=1, keepdims=True)
    xc = x - mu
    r = 1.0 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + EPS)
    xh = xc * r
    dxh = Gy * g
    return r * (dxh - dxh.mean(axis=1, keepdims=True)
                - xh * (dxh * xh).mean(axis=1, keepdims=True))


def layernorm_jax(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(x: Any, g: Any, be: Any, Gy: Any) -> Any:
        mu = jnp.mean(x, axis=1, keepdims=True)
        v = jnp.mean((x - mu) ** 2, axis=1, keepdims=True)
        y = (x - mu) / jnp.sqrt(v + EPS) * g + be
        return jnp.sum(y * Gy)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["x"], a["g"], a["be"], a["Gy"]).block_until_ready()


def layernorm_torch(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(x: Any, g: Any, be: Any, Gy: Any) -> Any:
        mu = torch.mean(x, dim=1, keepdim=True)
        v = torch.mean((x - mu) ** 2, dim=1, keepdim=True)
        y = (x - mu) / torch.sqrt(v + EPS) * g + be
        return torch.sum(y * Gy)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["x"], t["g"], t["be"], t["Gy"])


# --------------------------------------------------------------------------------------
# row 21: masked causal self-attention

ATTENTION_SOURCE = """
S[h,i,j] = Q[h,i,d] K[h,j,d] / sqrt(size(d))
A[h,i,j] = softmax[j | j <= i](S[h,i,j])
O[h,i,e] = A[h,i,j] V[h,j,e]
L = O[h,i,e] G[h,i,e]
"""


def attention_setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Queries, keys, values (heads × T × d) and the output's cotangent ``G``."""
    h, t, d = size["h"], size["t"], size["d"]
    return {name: rng.standard_normal((h, t, d)) for name in ("Q", "K", "V", "G")}


def attention_reference(Q: np.ndarray, K: np.ndarray, V: np.ndarray,
                        G: np.ndarray) -> np.ndarray:
    """Scores, -inf above the diagonal, the stable softmax ``A``; ``dA = G Vᵀ``,
    ``dS = A (dA - sum_j(dA A))``, ``dQ = dS K / sqrt(d)``."""
    scale = 1.0 / np.sqrt(Q.shape[-1])
    S = Q @ K.swapaxes(1, 2) * scale
    T = S.shape[-1]
    S[:, np.triu(np.ones((T, T), dtype=bool), k=1)] = -np.inf
    A = np.exp(S - S.max(axis=-1, keepdims=True))
    A /= A.sum(axis=-1, keepdims=True)
    dA = G @ V.swapaxes(1, 2)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    return dS @ K * scale


def attention_jax(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(Q: Any, K: Any, V: Any, G: Any) -> Any:
        S = Q @ jnp.swapaxes(K, 1, 2) / jnp.sqrt(Q.shape[-1])
        T = S.shape[-1]
        S = jnp.where(jnp.tril(jnp.ones((T, T), dtype=bool)), S, -jnp.inf)
        A = jax.nn.softmax(S, axis=-1)
        return jnp.sum((A @ V) * G)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    return lambda: gradient(a["Q"], a["K"], a["V"], a["G"]).block_until_ready()


def attention_torch(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(Q: Any, K: Any, V: Any, G: Any) -> Any:
        S = Q @ K.transpose(1, 2) / Q.shape[-1] ** 0.5
        T = S.shape[-1]
        tril = torch.tril(torch.ones((T, T), dtype=torch.bool))
        S = torch.where(tril, S, -torch.inf)
        A = torch.softmax(S, dim=-1)
        return torch.sum((A @ V) * G)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    return lambda: gradient(t["Q"], t["K"], t["V"], t["G"])


# --------------------------------------------------------------------------------------

INTEGER_LABELS = (
    Workload(
        key="10i",
        title="softmax cross-entropy gradient wrt Z, integer labels Z[n,t[n]], {n}×{k}",
        size={"n": 4096, "k": 1000},
        tiny={"n": 5, "k": 7},
        setup=xent_setup,
        program=derivative(tc.grad, XENT_SOURCE, "Z"),
        reference=xent_reference,
        peers={"jax": xent_jax, "torch": xent_torch},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.1), jax_goal(counted=False)),
        measure=measure_with_jax,
    ),
)

TRANSFORMER = (
    Workload(
        key="20",
        title="LayerNorm gradient wrt x (mean[d]), batch {b}×{d}",
        size={"b": 512, "d": 512},
        tiny={"b": 4, "d": 5},
        setup=layernorm_setup,
        program=derivative(tc.grad, LAYERNORM_SOURCE, "x"),
        reference=layernorm_reference,
        peers={"jax": layernorm_jax, "torch": layernorm_torch},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.1), jax_goal()),
        measure=measure_with_jax,
    ),
    Workload(
        key="21",
        title="causal self-attention gradient wrt Q (masked softmax, j <= i), "
              "{h} heads, T={t}, d={d}",
        size={"h": 8, "t": 256, "d": 64},
        tiny={"h": 2, "t": 5, "d": 3},
        setup=attention_setup,
        program=derivative(tc.grad, ATTENTION_SOURCE, "Q"),
        reference=attention_reference,
        peers={"jax": attention_jax, "torch": attention_torch},
        goals=(Goal("tensorcalc time / NumPy formula time", 1.2), jax_goal(counted=False)),
        measure=measure_with_jax,
    ),
)

WORKLOADS = (*INTEGER_LABELS, *TRANSFORMER)

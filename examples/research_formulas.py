"""Research formulas written as they appear in papers, with no workaround: means and
sizes, index conditions and masks, elementwise choices and special functions.

For each formula: its gradient, printed; then the gradient and the Hessian checked against
central differences of the loss and of the gradient.

Run: python examples/research_formulas.py
"""

from __future__ import annotations

import numpy as np

import tensorcalc as tc

# name: (program, the input to differentiate by, sizes given by name)
FORMULAS: dict[str, tuple[str, str, dict[str, int]]] = {
    "LayerNorm": ("""
mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
y[b,d] = (x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d]
L = sum[b,d]((y[b,d] - T[b,d])^2)""", "x", {}),
    "RMSNorm": ("""
r[b] = sqrt(mean[d](x[b,d]^2) + 0.000001)
L = sum[b,d]((x[b,d] / r[b] g[d] - T[b,d])^2)""", "x", {}),
    "BatchNorm": ("""
mu[d] = mean[b](x[b,d])
v[d] = mean[b]((x[b,d] - mu[d])^2)
L = sum[b,d](((x[b,d] - mu[d]) / sqrt(v[d] + 0.00001) g[d] + be[d] - T[b,d])^2)""", "x", {}),
    "label-smoothed cross entropy": ("""
L = sum[n](logsumexp[c](Z[n,c]) - 0.9 Z[n,t[n]] - 0.1 mean[c](Z[n,c]))""", "Z", {}),
    "exact-GELU MLP": ("""
H[b,h] = gelu(X[b,i] W1[i,h] + b1[h])
L = sum[b,o]((H[b,h] W2[h,o] - T[b,o])^2)""", "W1", {}),
    "causal self-attention": ("""
S[i,j] = Q[i,d] K[j,d] / sqrt(size(d))
A[i,j] = softmax[j | j <= i](S[i,j])
L = sum[i,e]((A[i,j] V[j,e] - T[i,e])^2)""", "K", {}),
    "multiclass hinge": ("""
L = sum[n,c]([c != t[n]] relu(1 + Z[n,c] - Z[n,t[n]]))""", "Z", {}),
    "Huber regression": ("""
r[n] = X[n,d] w[d] - y[n]
L = sum[n](where(abs(r[n]) <= 1, 0.5 r[n]^2, abs(r[n]) - 0.5))""", "w", {}),
    "Poisson log-likelihood": ("""
eta[n] = X[n,d] w[d]
L = sum[n](y[n] eta[n] - exp(eta[n]) - lgamma(y[n] + 1))""", "w", {}),
    "Dirichlet log-likelihood": ("""
a[k] = exp(la[k])
L = sum[n](lgamma(sum[k](a[k])) - sum[k](lgamma(a[k])) + sum[k]((a[k] - 1) log(p[n,k])))""",
                                 "la", {}),
    "2x2 average pooling": ("""
P[i,j] = mean[a,b](X[2*i+a, 2*j+b])
L = sum[i,j](P[i,j]^2 W[i,j])""", "X", {"a": 2, "b": 2}),
    "2x2 max pooling": ("""
P[i,j] = max[a,b](X[2*i+a, 2*j+b])
L = sum[i,j](P[i,j]^2 W[i,j])""", "X", {"a": 2, "b": 2}),
}


def inputs(name: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for one formula (labels are integers; probabilities sum to 1)."""
    rng = np.random.default_rng(seed)
    n = rng.normal
    if name in ("LayerNorm", "BatchNorm"):
        return {"x": n(size=(4, 5)), "g": n(size=5), "be": n(size=5), "T": n(size=(4, 5))}
    if name == "RMSNorm":
        return {"x": n(size=(4, 5)), "g": n(size=5), "T": n(size=(4, 5))}
    if name in ("label-smoothed cross entropy", "multiclass hinge"):
        return {"Z": n(size=(5, 4)), "t": rng.integers(0, 4, 5)}
    if name == "exact-GELU MLP":
        return {"X": n(size=(4, 3)), "W1": n(size=(3, 5)), "b1": n(size=5),
                "W2": n(size=(5, 2)), "T": n(size=(4, 2))}
    if name == "causal self-attention":
        return {"Q": n(size=(5, 3)), "K": n(size=(5, 3)), "V": n(size=(5, 2)),
                "T": n(size=(5, 2))}
    if name in ("Huber regression", "Poisson log-likelihood"):
        X = n(size=(8, 3))
        y = rng.poisson(2.0, 8).astype(float) if name.startswith("Poisson") else 3 * n(size=8)
        return {"X": 0.5 * X, "w": n(size=3), "y": y}
    if name == "Dirichlet log-likelihood":
        p = rng.random((6, 3)) + 0.1
        return {"la": n(size=3), "p": p / p.sum(axis=1, keepdims=True)}
    return {"X": n(size=(6, 6)), "W": n(size=(3, 3))}  # pooling


def central_differences(p: tc.Program, wrt: str, arrays: dict[str, np.ndarray],
                        eps: float = 1e-6) -> np.ndarray:
    """d p / d wrt, laid out as the value's axes then wrt's."""
    base = np.asarray(p(**arrays))
    out = np.zeros(base.shape + arrays[wrt].shape)
    for k in np.ndindex(arrays[wrt].shape):
        up, down = dict(arrays), dict(arrays)
        up[wrt], down[wrt] = arrays[wrt].copy(), arrays[wrt].copy()
        up[wrt][k] += eps
        down[wrt][k] -= eps
        out[(...,) + k] = (np.asarray(p(**up)) - np.asarray(p(**down))) / (2 * eps)
    return out


def main() -> None:
    for name, (source, wrt, sizes) in FORMULAS.items():
        arrays = inputs(name)
        loss = tc.compile(source, sizes=sizes)
        grad = tc.grad(loss, wrt)
        hess = tc.derive(grad, wrt)
        g, h = grad(**arrays), hess(**arrays)
        g_err = np.abs(g - central_differences(loss, wrt, arrays)).max()
        h_err = np.abs(h - central_differences(grad, wrt, arrays)).max()
        print(f"--- {name}: gradient wrt {wrt}\n{str(grad).splitlines()[-1]}")
        print(f"    gradient off by {g_err:.1e}, Hessian off by {h_err:.1e} "
              "(central differences)")
        assert g_err < 1e-5 * (1 + np.abs(g).max()) and h_err < 1e-4 * (1 + np.abs(h).max())


if __name__ == "__main__":
    main()

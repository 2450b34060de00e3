"""Training a small two-layer network with gradients from tc.grad.

Run: python examples/train_mlp.py
"""

import numpy as np

import tensorcalc as tc

MODEL = """
H[b,h] = tanh(X[b,d] W[d,h] + c[h])
P[b,o] = H[b,h] V[h,o]
L = (P[b,o] - T[b,o])^2 / 256
"""

rng = np.random.default_rng(0)
X = rng.normal(size=(256, 3))
T = np.sin(X @ rng.normal(size=(3, 2)))
params = {
    "W": rng.normal(size=(3, 16)) * 0.5,
    "c": np.zeros(16),
    "V": rng.normal(size=(16, 2)) * 0.5,
}

loss = tc.compile(MODEL)
grads = {name: tc.grad(MODEL, name) for name in params}  # derived once, run every step
print(f"dL/dW:\n{grads['W']}\n")

first = loss(X=X, T=T, **params)
for step in range(300):
    for name, g in grads.items():
        params[name] = params[name] - 0.1 * g(X=X, T=T, **params)
    if step % 100 == 0:
        print(f"step {step}: loss {loss(X=X, T=T, **params):.5f}")
last = loss(X=X, T=T, **params)
print(f"loss {first:.4f} -> {last:.4f}")
assert last < 0.5 * first

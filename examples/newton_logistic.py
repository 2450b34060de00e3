"""Newton's method for logistic regression with tc.grad and tc.hessian.

Run: python examples/newton_logistic.py
"""

import numpy as np

import tensorcalc as tc

LOSS = """
z[n] = X[n,d] w[d]
L = sum[n](softplus(z[n]) - y[n] z[n]) + 0.5 lam w[d] w[d]
"""

rng = np.random.default_rng(0)
X = rng.normal(size=(500, 5))
w_true = rng.normal(size=5)
y = (rng.random(500) < 1 / (1 + np.exp(-X @ w_true))).astype(float)
lam = 1e-2

loss = tc.compile(LOSS)
grad = tc.grad(LOSS, "w")
hess = tc.hessian(LOSS, "w")
print(f"gradient:\n{grad}\n\nHessian:\n{hess}\n")

w = np.zeros(5)
for step in range(8):
    g = grad(X=X, y=y, w=w, lam=lam)
    H = hess(X=X, y=y, w=w, lam=lam)
    w = w - np.linalg.solve(H, g)
    value = loss(X=X, y=y, w=w, lam=lam)
    print(f"step {step}: loss {value:.10f}  |grad| {np.linalg.norm(g):.2e}")

final = np.linalg.norm(grad(X=X, y=y, w=w, lam=lam))
assert final < 1e-9, final
s = 1 / (1 + np.exp(-X @ w))  # the Hessian in closed form, for comparison
H_closed = X.T @ (X * (s * (1 - s))[:, None]) + lam * np.eye(5)
assert np.allclose(hess(X=X, y=y, w=w, lam=lam), H_closed)
print(f"converged: w = {np.round(w, 3)} (true {np.round(w_true, 3)})")

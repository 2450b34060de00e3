"""Fitting a Gaussian process's hyperparameters by gradient descent on the negative log
marginal likelihood, with gradients from tc.grad through inv and logdet.

The RBF kernel is written in index notation with three scalar hyperparameters, all on a
log scale: a (log signal standard deviation), b (log length scale), c (log noise
standard deviation). Each derivative is checked against central finite differences
before fitting.

Run: python examples/gaussian_process.py
"""

import numpy as np

import tensorcalc as tc

NLL = """
K[i,j] = exp(2 a) exp(-0.5 sum[d]((X[i,d] - X[j,d])^2) exp(-2 b)) + exp(2 c) delta[i,j]
L = 0.5 y[i] inv[i,j](K[i,j]) y[j] + 0.5 logdet[i,j](K[i,j])
"""
NAMES = ("a", "b", "c")

rng = np.random.default_rng(0)
n = 30
X = rng.uniform(-2.0, 2.0, size=(n, 2))
y = np.sin(1.5 * X[:, 0]) * np.cos(X[:, 1]) + 0.1 * rng.normal(size=n)

loss = tc.compile(NLL)
grads = {name: tc.grad(NLL, name) for name in NAMES}  # derived once, run every step
for name, g in grads.items():
    print(f"dL/d{name}:\n{g}\n")


def nll_numpy(a: float, b: float, c: float) -> float:
    """The same likelihood written by hand, to check tensorcalc's value."""
    sq = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    K = np.exp(2 * a) * np.exp(-0.5 * sq * np.exp(-2 * b)) + np.exp(2 * c) * np.eye(n)
    return 0.5 * y @ np.linalg.solve(K, y) + 0.5 * np.linalg.slogdet(K)[1]


theta = {"a": 0.0, "b": 0.5, "c": -1.0}
assert np.isclose(loss(X=X, y=y, **theta), nll_numpy(**theta), rtol=1e-12)

# Central finite differences at the starting point.
h = 1e-5
print(f"{'param':>5} | {'tc.grad':>16} | {'central FD':>16} | rel. error")
for name, g in grads.items():
    exact = float(g(X=X, y=y, **theta))
    up = loss(X=X, y=y, **{**theta, name: theta[name] + h})
    down = loss(X=X, y=y, **{**theta, name: theta[name] - h})
    fd = (up - down) / (2 * h)
    err = abs(exact - fd) / max(abs(fd), 1e-12)
    print(f"{name:>5} | {exact:16.10f} | {fd:16.10f} | {err:.1e}")
    assert err < 1e-6, (name, exact, fd)
print()

# Gradient descent on (a, b, c).
lr = 0.02
first = loss(X=X, y=y, **theta)
previous = first
print(f"start   : NLL {first:10.5f}")
for step in range(61):
    g = {name: float(grads[name](X=X, y=y, **theta)) for name in NAMES}
    theta = {name: theta[name] - lr * g[name] for name in NAMES}
    value = loss(X=X, y=y, **theta)
    assert value <= previous + 1e-9, (step, value, previous)  # never goes up
    previous = value
    if step % 10 == 0:
        norm = np.sqrt(sum(v * v for v in g.values()))
        print(f"step {step:3d}: NLL {value:10.5f}  |grad| {norm:.2e}  "
              f"signal sd {np.exp(theta['a']):.3f}  length {np.exp(theta['b']):.3f}  "
              f"noise sd {np.exp(theta['c']):.3f}")
last = loss(X=X, y=y, **theta)
print(f"NLL {first:.4f} -> {last:.4f} (data made with noise sd 0.1)")
assert last < first - 1.0
assert max(abs(float(grads[name](X=X, y=y, **theta))) for name in NAMES) < 1e-3
assert np.isclose(last, nll_numpy(**theta), rtol=1e-12)

"""A small convolutional classifier trained with gradients from tc.grad.

The model is written in index notation with index arithmetic (docs/index-arithmetic.md): a 2-D
convolution `x[n,m,i+a,j+e] K[o,m,a,e]` ("valid": i runs over 8-3+1 = 6 positions),
a tanh, a linear readout, and softmax cross-entropy with integer labels, where
`Z[n,t[n]]` picks each image's logit of its own class (a gather; its derivative is a
scatter-add). The data are 8×8 images of a horizontal bar, a vertical bar or a
diagonal, in noise. The gradients with respect to the kernel K, the bias and the
readout V are derived once and called every step; one of them is checked against central
finite differences first (the script fails if they disagree), then a few dozen steps of
plain gradient descent drive the loss down.

Run: python examples/conv_net.py
"""

import numpy as np

import tensorcalc as tc

MODEL = """
H[n,o,i,j] = tanh(x[n,m,i+a,j+e] K[o,m,a,e] + bias[o])
Z[n,k] = H[n,o,i,j] V[o,i,j,k]
L = (logsumexp[k](Z[n,k]) - Z[n,t[n]]) / 96
"""

N, S, CLASSES, CHANNELS = 96, 8, 3, 4
rng = np.random.default_rng(0)


def images(labels: np.ndarray) -> np.ndarray:
    """One 8×8 channel per image: a bar (row, column or diagonal) at a random place."""
    x = 0.3 * rng.normal(size=(len(labels), 1, S, S))
    for n, label in enumerate(labels):
        p = int(rng.integers(1, S - 1))
        if label == 0:
            x[n, 0, p, :] += 1.0
        elif label == 1:
            x[n, 0, :, p] += 1.0
        else:
            x[n, 0] += np.eye(S, k=p - S // 2)
    return x


t = rng.integers(0, CLASSES, N)  # integer labels, used as an index array
x = images(t)
params = {
    "K": rng.normal(size=(CHANNELS, 1, 3, 3)) * 0.5,
    "bias": np.zeros(CHANNELS),
    "V": rng.normal(size=(CHANNELS, S - 2, S - 2, CLASSES)) * 0.1,
}

loss = tc.compile(MODEL)
grads = {name: tc.grad(MODEL, name) for name in params}  # derived once, run every step
print(f"dL/dK:\n{grads['K']}\n")

# The gradient with respect to the kernel against central finite differences.
g = grads["K"](x=x, t=t, **params)
eps = 1e-6
fd = np.zeros_like(g)
for idx in np.ndindex(*g.shape):
    bumped = {k: v.copy() for k, v in params.items()}
    bumped["K"][idx] += eps
    up = loss(x=x, t=t, **bumped)
    bumped["K"][idx] -= 2 * eps
    down = loss(x=x, t=t, **bumped)
    fd[idx] = (up - down) / (2 * eps)
error = np.max(np.abs(g - fd)) / np.max(np.abs(fd))
print(f"dL/dK against central differences: max relative error {error:.2e}")
assert error < 1e-6, error


def accuracy() -> float:
    h = np.tanh(np.einsum("ncijae,ocae->noij",
                          np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3)),
                          params["K"]) + params["bias"][:, None, None])
    return float(np.mean(np.argmax(np.einsum("noij,oijk->nk", h, params["V"]), 1) == t))


first, acc0 = loss(x=x, t=t, **params), accuracy()
for step in range(40):
    step_grads = {name: grad(x=x, t=t, **params) for name, grad in grads.items()}
    for name, gradient in step_grads.items():
        params[name] = params[name] - 0.5 * gradient
    if step % 10 == 0:
        print(f"step {step}: loss {loss(x=x, t=t, **params):.4f}")
last, acc = loss(x=x, t=t, **params), accuracy()
print(f"loss {first:.4f} -> {last:.4f}; training accuracy {acc0:.0%} -> {acc:.0%}")
assert last < 0.5 * first

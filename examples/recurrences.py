"""Recurrences: an Elman RNN trained by gradient descent with tc.grad, and an LSTM's
gradient checked against JAX.

A statement that reads itself at ``t-1`` runs step by step along ``t``; ``h[-1,j]`` is the
state before the first step. Its gradient is again a program with a recurrence (the
adjoint reads ``t+1``, running backwards), derived once whatever the sequence's length.

Run: python examples/recurrences.py
"""

import numpy as np

import tensorcalc as tc

try:
    import jax
except ImportError:  # the LSTM check below needs JAX; the rest runs without it
    jax = None

RNN = """
h[-1,j] = h0[j]
h[t,j] = tanh(W[j,k] h[t-1,k] + U[j,m] x[t,m] + b[j])
L = sum[t]((V[j] h[t,j] - y[t])^2) / 40
"""

# A toy sequence: from sin(0.3 t), predict sin(0.3 (t+1)).
T, hidden = 40, 8
steps = np.arange(T)
x, y = np.sin(0.3 * steps)[:, None], np.sin(0.3 * (steps + 1))
rng = np.random.default_rng(0)
params = {"W": rng.normal(size=(hidden, hidden)) * 0.3, "U": rng.normal(size=(hidden, 1)) * 0.5,
          "b": np.zeros(hidden), "V": rng.normal(size=hidden) * 0.3}
data = {"x": x, "y": y, "h0": np.zeros(hidden)}

loss = tc.compile(RNN)
grads = {name: tc.grad(RNN, name) for name in params}  # derived once, run every step
print(f"dL/dW:\n{grads['W']}\n")

# Each gradient against central differences (one entry of each), before it is trusted.
for name, g in grads.items():
    exact, flat, eps = g(**data, **params).reshape(-1)[0], params[name].reshape(-1), 1e-6
    moved = [{**params, name: (flat + s * eps * np.eye(flat.size)[0]).reshape(params[name].shape)}
             for s in (1.0, -1.0)]
    fd = (loss(**data, **moved[0]) - loss(**data, **moved[1])) / (2 * eps)
    print(f"dL/d{name}, first entry: tc.grad {exact:.10f}, central FD {fd:.10f}")
    assert abs(exact - fd) < 1e-6 * max(1.0, abs(fd)), (name, exact, fd)

first = loss(**data, **params)
for step in range(60):
    update = {name: g(**data, **params) for name, g in grads.items()}
    params = {name: value - 0.2 * update[name] for name, value in params.items()}
    if step % 20 == 0:
        print(f"step {step}: loss {loss(**data, **params):.5f}")
last = loss(**data, **params)
print(f"loss {first:.4f} -> {last:.4f}")
assert last < 0.1 * first

LSTM = """
h[-1,b,j] = h0[b,j]
c[-1,b,j] = c0[b,j]
z[t,b,g,j] = Wh[g,j,k] h[t-1,b,k] + Wx[g,j,m] x[t,b,m] + bias[g,j]
c[t,b,j] = sigmoid(z[t,b,1,j]) c[t-1,b,j] + sigmoid(z[t,b,0,j]) tanh(z[t,b,2,j])
h[t,b,j] = sigmoid(z[t,b,3,j]) tanh(c[t,b,j])
L = sum[t,b,j](h[t,b,j] y[t,b,j])
"""


def lstm_loss(h0, c0, Wh, Wx, bias, x, y):
    """The same LSTM in jax.numpy, one step per lax.scan iteration (gates: input,
    forget, cell, output)."""
    sigmoid, jnp = jax.nn.sigmoid, jax.numpy

    def step(carry, xt):
        h, c = carry
        z = jnp.einsum("gjk,bk->bgj", Wh, h) + jnp.einsum("gjm,bm->bgj", Wx, xt) + bias
        c = sigmoid(z[:, 1]) * c + sigmoid(z[:, 0]) * jnp.tanh(z[:, 2])
        h = sigmoid(z[:, 3]) * jnp.tanh(c)
        return (h, c), h

    _, hs = jax.lax.scan(step, (h0, c0), x)
    return jnp.sum(hs * y)


T, batch, hidden, inputs = 30, 2, 3, 2
lstm = {"h0": rng.normal(size=(batch, hidden)), "c0": rng.normal(size=(batch, hidden)),
        "Wh": rng.normal(size=(4, hidden, hidden)) * 0.5,
        "Wx": rng.normal(size=(4, hidden, inputs)) * 0.5, "bias": rng.normal(size=(4, hidden)),
        "x": rng.normal(size=(T, batch, inputs)), "y": rng.normal(size=(T, batch, hidden))}
ours = tc.grad(LSTM, "Wh")(**lstm)
if jax is None:
    print("JAX is not installed: the LSTM gradient is not checked against it")
else:
    jax.config.update("jax_enable_x64", True)
    arrays = {k: jax.numpy.asarray(v) for k, v in lstm.items()}
    theirs = jax.grad(lambda Wh: lstm_loss(**{**arrays, "Wh": Wh}))(arrays["Wh"])
    assert np.allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    print(f"LSTM dL/dWh matches jax.grad: largest difference "
          f"{np.max(np.abs(ours - np.asarray(theirs))):.1e}")

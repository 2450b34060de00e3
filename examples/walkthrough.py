"""The worked example tensorcalc started from, each step printed and checked.

Run: python examples/walkthrough.py
"""

import numpy as np

import tensorcalc as tc

rng = np.random.default_rng(0)
W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
V = rng.normal(size=(2, 3))
X = rng.normal(size=(5, 3))


def show(title: str, program: tc.Program) -> None:
    print(f"# {title}\n{program}\n")


# 1. y = W x: the Jacobian with respect to x is W itself.
d = tc.derive("y[i] = W[i,j] x[j]", "x")
show("y = Wx, dy/dx", d)
assert np.allclose(d(W=W, x=x), W)

# 2. With respect to W: dy_i/dW_pq = delta_ip x_q. Dense it is mostly zeros;
#    compact it is just x (the seed's "compress it to two dimensions").
d = tc.derive("y[i] = W[i,j] x[j]", "W")
show("y = Wx, dy/dW", d)
dense = d(W=W, x=x)
assert dense.shape == (3, 3, 4)
assert np.allclose(dense, np.einsum("ip,q->ipq", np.eye(3), x))
compact = d.evaluate(compact=True, W=W, x=x)
print(f"compact core {compact.core_indices} = {np.round(compact.core, 3)}, ties {compact.ties}\n")
assert np.allclose(compact.core, x) and np.allclose(compact.toarray(), dense)

# 3. Y = X W: dY_ij/dX_pq = delta_ip W_qj.
d = tc.derive("Y[i,j] = X[i,k] W[k,j]", "X")
show("Y = XW, dY/dX", d)
assert np.allclose(d(X=X, W=W), np.einsum("ip,qj->ijpq", np.eye(5), W))

# 4. The chain rule is a sum over the shared index: y = V (W x) gives dy/dx = V W.
d = tc.derive("m[k] = W[k,j] x[j]; y[i] = V[i,k] m[k]", "x")
show("y = V W x, dy/dx", d)
assert np.allclose(d(V=V, W=W, x=x), V @ W)

# 5. And a second derivative: the Hessian of x'Ax is A + A'.
A = rng.normal(size=(4, 4))
h = tc.hessian("s = x[i] A[i,j] x[j]", "x")
show("s = x'Ax, Hessian", h)
assert np.allclose(h(x=x, A=A), A + A.T)
print("all checks passed")

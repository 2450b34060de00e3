"""The backward pass of softmax attention with tc.vjp, checked against hand-written NumPy.

Run: python examples/attention_vjp.py
"""

import numpy as np

import tensorcalc as tc

ATTENTION = """
S[i,j] = 0.25 Q[i,d] K[j,d]
A[i,j] = exp(S[i,j]) / sum[k](exp(S[i,k]))
O[i,e] = A[i,j] V[j,e]
"""

rng = np.random.default_rng(0)
n, d = 6, 16
Q, K, V = (rng.normal(size=(n, d)) for _ in range(3))
G = rng.normal(size=(n, d))  # the gradient arriving from the layers above

back_Q = tc.vjp(ATTENTION, "Q", cotangent="G")
back_V = tc.vjp(ATTENTION, "V", cotangent="G")
print(f"vjp with respect to Q:\n{back_Q}\n")

# The same by hand.
S = 0.25 * Q @ K.T
A = np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)
dA = G @ V.T
dS = A * (dA - (dA * A).sum(axis=1, keepdims=True))
assert np.allclose(back_Q(Q=Q, K=K, V=V, G=G), 0.25 * dS @ K)
assert np.allclose(back_V(Q=Q, K=K, V=V, G=G), A.T @ G)
print("vjp of attention matches the hand-written backward pass")

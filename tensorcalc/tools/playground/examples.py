"""The playground's built-in examples: each a program, what to derive it by, the kind of
derivative, and the sizes its check draws random inputs with (small, so it runs in
well under a second)."""

from __future__ import annotations

EXAMPLES: dict[str, dict[str, str]] = {
    "y = Wx": {
        "program": "y[i] = W[i,j] x[j]",
        "wrt": "W", "kind": "derivative", "sizes": "i=3,j=4",
    },
    "MLP": {
        "program": "H[b,h] = tanh(X[b,d] W[d,h] + c[h])\n"
                   "P[b,o] = H[b,h] V[h,o]\n"
                   "L = (P[b,o] - T[b,o])^2 / 256",
        "wrt": "W", "kind": "gradient", "sizes": "b=4,d=3,h=5,o=2",
    },
    "logistic Hessian": {
        "program": "z[n] = X[n,d] w[d]\n"
                   "L = sum[n](softplus(z[n]) - y[n] z[n]) + 0.5 lam w[d] w[d]",
        "wrt": "w", "kind": "hessian", "sizes": "n=6,d=3",
    },
    "softmax cross-entropy": {
        "program": "L = logsumexp[k](Z[n,k]) - Z[n,t[n]]",
        "wrt": "Z", "kind": "gradient", "sizes": "n=4,k=3",
    },
    "convolution": {
        "program": "y[b,o,i,j] = X[b,c,i+a,j+e] K[o,c,a,e]",
        "wrt": "K", "kind": "derivative", "sizes": "b=2,c=2,o=2,i=3,j=3,a=2,e=2",
    },
    "Gaussian process": {
        "program": "K[i,j] = exp(2 a) exp(-0.5 sum[d]((X[i,d] - X[j,d])^2) exp(-2 b))"
                   " + exp(2 c) delta[i,j]\n"
                   "L = 0.5 y[i] inv[i,j](K[i,j]) y[j] + 0.5 logdet[i,j](K[i,j])",
        "wrt": "b", "kind": "gradient", "sizes": "i=5,d=2",
    },
    "RNN (a recurrence)": {
        "program": "h[-1,j] = h0[j]\n"
                   "h[t,j] = tanh(W[j,k] h[t-1,k] + U[j,m] x[t,m] + b[j])\n"
                   "L = sum[t,j](h[t,j] y[t,j])",
        "wrt": "W", "kind": "gradient", "sizes": "t=6,j=3,k=3,m=2",
    },
}

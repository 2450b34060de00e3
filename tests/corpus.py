"""Programs and cases that several test files share: data, and the small functions that
build it (seeded arrays, the same function written for JAX or NumPy). Helpers that check or
run things are in ``support.py``."""

from __future__ import annotations

import numpy as np

import tensorcalc as tc

# ---------------------------------------- valid programs
# Programs that parse, compile and differentiate: the fuzzer mutates them and the
# simplifier's fixed point is checked on their derivatives.

VALID = [
    "Y[i,j] = X[i,k] W[k,j]",
    "y[i] = W[i,j] x[j] + b[i]",
    "H[b,h] = tanh(X[b,d] W[d,h] + c[h])\nP[b,o] = H[b,h] V[h,o]\nL = (P[b,o] - T[b,o])^2",
    "y[i] = (A[i,j] x[j] + b[i]) c[i]",
    "s[i] = exp(X[i,j])",
    "t = A[i,i]",
    "s = x[i] tanh(A[i,j] y[j])",
    "L = sum[i](softplus(-y[i] z[i]))",
    "l[n] = log(sum[j](exp(Z[n,j])))",
    "y[i] = x[i]**2 / (x[i]^2 + 1); z = y[i] delta[i,j] y[j]",
    "# comment\nm[k] = W[k,j] x[j]  # trailing\ny[i] = V[i,k] m[k]\n",
    "y[i,p] = δ[i,p] sigmoid(x[i])",
    "L = -x[i]^2 + 3 * sqrt(x[i]^2 + 0.5) - relu(x[i]) + abs(x[i]) sign(x[i]) step(x[i])",
    "y[] = 2.5e-3 a + b^c",
    "z[i] = (x[i]^2 + 1)^w[i] log1p(x[i]^2) expm1(x[i]) square(x[i]) sin(x[i]) cos(x[i])",
    "L = where(x[i] > y[i], maximum(x[i], 0), clip(y[i], -1, 1)) + minimum(x[i], y[i]^2)",
    "q = tan(0.5 x[i]) sinh(x[i]) cosh(x[j]) x[j]",
]


# ---------------------------------------- index arithmetic
# Shifts, strides, padding and gathers, each a scalar loss.


def jax_conv1d(jax, x, w, stride=1, padding="VALID"):
    """Cross-correlation of vectors by XLA's convolution."""
    out = jax.lax.conv_general_dilated(x[None, None, :], w[None, None, :],
                                       window_strides=(stride,), padding=padding,
                                       dimension_numbers=("NCH", "OIH", "NCH"))
    return out[0, 0]


def jax_conv2d(jax, x, W, stride=1, padding="VALID"):
    return jax.lax.conv_general_dilated(x, W, window_strides=(stride, stride), padding=padding,
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


# Each case: program text (a scalar loss), arrays (seeded), the sizes the caller gives
# (or None), the same loss in JAX, and the inputs to differentiate.


def seeded_rng(seed):
    return np.random.default_rng(seed)


def _case_valid():
    r = seeded_rng(1)
    return dict(src="y[i] = x[i+k] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=12), w=r.normal(size=4)), sizes=None,
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(jnp.correlate(x, w, "valid") ** 2)),
                wrt=("x", "w"))


def _case_valid_bilinear():
    r = seeded_rng(2)
    return dict(src="y[i] = x[i+k] w[k]\nL = ybar[i] y[i]",
                arrays=dict(x=r.normal(size=10), w=r.normal(size=3), ybar=r.normal(size=8)),
                sizes=None,
                jax=lambda jnp, jax: (
                    lambda x, w, ybar: jnp.sum(ybar * jnp.correlate(x, w, "valid"))),
                wrt=("x", "w"))


def _case_strided():
    r = seeded_rng(3)
    return dict(src="y[i] = x[2*i+k] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=13), w=r.normal(size=3)), sizes=None,
                jax=lambda jnp, jax: (
                    lambda x, w: jnp.sum(jax_conv1d(jax, x, w, stride=2) ** 2)),
                wrt=("x", "w"))


def _case_strided_even():
    # (N - K) odd: the last element of x is never read
    r = seeded_rng(4)
    return dict(src="y[i] = x[2i+k] w[k]\nL = sin(y[i])",
                arrays=dict(x=r.normal(size=12), w=r.normal(size=3)), sizes=None,
                jax=lambda jnp, jax: (
                    lambda x, w: jnp.sum(jnp.sin(jax_conv1d(jax, x, w, stride=2)))),
                wrt=("x", "w"))


def _case_strided_padded():
    # stride 2 and one zero on each side: floor((9 + 2 - 3) / 2) + 1 = 5 outputs
    r = seeded_rng(23)
    return dict(src="y[i] = x[2*i+k-1] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=9), w=r.normal(size=3)), sizes={"i": 5},
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(
                    jax_conv1d(jax, x, w, stride=2, padding=((1, 1),)) ** 2)),
                wrt=("x", "w"))


def _case_same():
    r = seeded_rng(5)
    return dict(src="y[i] = x[i+k-1] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=11), w=r.normal(size=3)), sizes={"i": 11},
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(jnp.correlate(x, w, "same") ** 2)),
                wrt=("x", "w"))


def _case_same5():
    r = seeded_rng(6)
    return dict(src="y[i] = x[i+k-2] w[k]\nL = tanh(y[i])",
                arrays=dict(x=r.normal(size=9), w=r.normal(size=5)), sizes={"i": 9},
                jax=lambda jnp, jax: (
                    lambda x, w: jnp.sum(jnp.tanh(jnp.correlate(x, w, "same")))),
                wrt=("x", "w"))


def _case_full():
    # y[i] = x[i-k] w[k] over i < N+K-1 with zeros read past the ends: np.convolve "full"
    r = seeded_rng(7)
    return dict(src="y[i] = x[i-k] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=8), w=r.normal(size=3)), sizes={"i": 10},
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(jnp.convolve(x, w, "full") ** 2)),
                wrt=("x", "w"))


def _case_conv2d():
    r = seeded_rng(8)
    return dict(src="y[b,o,i,j] = x[b,c,i+a,j+b2] W[o,c,a,b2]\nL = y[b,o,i,j]^2",
                arrays=dict(x=r.normal(size=(2, 3, 6, 5)), W=r.normal(size=(4, 3, 3, 2))),
                sizes=None,
                jax=lambda jnp, jax: (lambda x, W: jnp.sum(jax_conv2d(jax, x, W) ** 2)),
                wrt=("x", "W"))


def _case_conv2d_strided():
    r = seeded_rng(9)
    return dict(src="y[b,o,i,j] = x[b,c,2*i+a,2*j+b2] W[o,c,a,b2]\nL = y[b,o,i,j]^2",
                arrays=dict(x=r.normal(size=(2, 2, 7, 6)), W=r.normal(size=(3, 2, 3, 2))),
                sizes=None,
                jax=lambda jnp, jax: (lambda x, W: jnp.sum(jax_conv2d(jax, x, W, stride=2) ** 2)),
                wrt=("x", "W"))


def _case_conv2d_same():
    r = seeded_rng(10)
    return dict(src="y[b,o,i,j] = x[b,c,i+a-1,j+b2-1] W[o,c,a,b2]\nL = y[b,o,i,j]^2",
                arrays=dict(x=r.normal(size=(1, 2, 5, 4)), W=r.normal(size=(2, 2, 3, 3))),
                sizes={"i": 5, "j": 4},
                jax=lambda jnp, jax: (
                    lambda x, W: jnp.sum(jax_conv2d(jax, x, W, padding=((1, 1), (1, 1))) ** 2)),
                wrt=("x", "W"))


def _case_diff():
    r = seeded_rng(11)
    return dict(src="d[i] = x[i+1] - x[i]\nL = sin(d[i])",
                arrays=dict(x=r.normal(size=9)), sizes=None,
                jax=lambda jnp, jax: (lambda x: jnp.sum(jnp.sin(jnp.diff(x)))),
                wrt=("x",))


def _case_laplace():
    r = seeded_rng(12)
    return dict(src="l[i] = x[i+2] - 2*x[i+1] + x[i]\nL = l[i]^2",
                arrays=dict(x=r.normal(size=9)), sizes=None,
                jax=lambda jnp, jax: (lambda x: jnp.sum(jnp.diff(x, n=2) ** 2)),
                wrt=("x",))


def _case_shift_product():
    # x read at two shifts in one product: the derivative has two shifted-delta terms
    r = seeded_rng(17)
    return dict(src="y[i] = x[i+1] x[i]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=8)), sizes=None,
                jax=lambda jnp, jax: (lambda x: jnp.sum((x[1:] * x[:-1]) ** 2)),
                wrt=("x",))


def _case_dilated():
    r = seeded_rng(18)
    return dict(src="y[i] = x[i+2*k] w[k]\nL = y[i]^2",
                arrays=dict(x=r.normal(size=12), w=r.normal(size=3)), sizes=None,
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(jax.lax.conv_general_dilated(
                    x[None, None, :], w[None, None, :], window_strides=(1,), padding="VALID",
                    rhs_dilation=(2,), dimension_numbers=("NCH", "OIH", "NCH")) ** 2)),
                wrt=("x", "w"))


def _case_maxpool():
    # a max-pool of width 2 and stride 2: no tensor has an axis k, so both sizes are given
    r = seeded_rng(19)
    return dict(src="m[i] = max[k](x[2*i+k])\nL = m[i] c[i]",
                arrays=dict(x=r.normal(size=10), c=r.normal(size=5)), sizes={"i": 5, "k": 2},
                jax=lambda jnp, jax: (lambda x, c: jnp.sum(x.reshape(5, 2).max(axis=1) * c)),
                wrt=("x",))


def _case_lse_window():
    r = seeded_rng(20)
    return dict(src="m[i] = logsumexp[k](x[i+k] + w[k])\nL = m[i]^2",
                arrays=dict(x=r.normal(size=9), w=r.normal(size=3)), sizes=None,
                jax=lambda jnp, jax: (lambda x, w: jnp.sum(jax.scipy.special.logsumexp(
                    jnp.stack([x[i: i + 3] + w for i in range(7)]), axis=1) ** 2)),
                wrt=("x", "w"))


def _case_superdiagonal():
    r = seeded_rng(21)
    return dict(src="s[i] = A[i, i+1]\nL = sin(s[i])",
                arrays=dict(A=r.normal(size=(5, 5))), sizes=None,
                jax=lambda jnp, jax: (lambda A: jnp.sum(jnp.sin(jnp.diagonal(A, 1)))),
                wrt=("A",))


def _case_conv2d_strided_padded():
    r = seeded_rng(22)
    return dict(src="y[b,o,i,j] = x[b,c,2*i+a-1,2*j+b2-1] W[o,c,a,b2]\nL = y[b,o,i,j]^2",
                arrays=dict(x=r.normal(size=(1, 2, 7, 6)), W=r.normal(size=(2, 2, 3, 3))),
                sizes={"i": 4, "j": 3},
                jax=lambda jnp, jax: (lambda x, W: jnp.sum(
                    jax_conv2d(jax, x, W, stride=2, padding=((1, 1), (1, 1))) ** 2)),
                wrt=("x", "W"))


def repeated_labels():
    # repeated rows (0 three times, 2 twice) and a row never picked (3): the scatter-add
    # must accumulate, and leave zeros where no label points
    return np.array([0, 2, 2, 4, 0, 1, 0], dtype=np.int64)


def _case_gather():
    r = seeded_rng(13)
    t = repeated_labels()
    return dict(src="e[n,j] = E[t[n], j]\nL = tanh(e[n,j]) C[n,j]",
                arrays=dict(E=r.normal(size=(5, 3)), t=t, C=r.normal(size=(t.size, 3))),
                sizes=None,
                jax=lambda jnp, jax: (
                    lambda E, t, C: jnp.sum(jnp.tanh(jnp.take(E, t, axis=0)) * C)),
                wrt=("E", "C"))


def _case_xent():
    r = seeded_rng(14)
    t = repeated_labels()
    return dict(src="L = logsumexp[j](Z[n,j]) - Z[n, t[n]]",
                arrays=dict(Z=r.normal(size=(t.size, 5)), t=t), sizes=None,
                jax=lambda jnp, jax: (lambda Z, t: jnp.sum(
                    jax.scipy.special.logsumexp(Z, axis=1) - Z[jnp.arange(Z.shape[0]), t])),
                wrt=("Z",))


def _case_pick():
    r = seeded_rng(15)
    t = repeated_labels()
    return dict(src="p[n] = Z[n, t[n]]\nL = p[n]^2",
                arrays=dict(Z=r.normal(size=(t.size, 5)), t=t), sizes=None,
                jax=lambda jnp, jax: (
                    lambda Z, t: jnp.sum(jnp.take_along_axis(Z, t[:, None], axis=1) ** 2)),
                wrt=("Z",))


def _case_embed_linear():
    r = seeded_rng(16)
    t = repeated_labels()
    return dict(src="h[n,o] = E[t[n],j] W[j,o]\nL = h[n,o]^2",
                arrays=dict(E=r.normal(size=(5, 4)), t=t, W=r.normal(size=(4, 3))),
                sizes=None,
                jax=lambda jnp, jax: (lambda E, t, W: jnp.sum((E[t] @ W) ** 2)),
                wrt=("E", "W"))


ARITHMETIC_CASES = {
    "valid": _case_valid,
    "valid_bilinear": _case_valid_bilinear,
    "strided": _case_strided,
    "strided_even": _case_strided_even,
    "strided_padded": _case_strided_padded,
    "same": _case_same,
    "same5": _case_same5,
    "full": _case_full,
    "conv2d": _case_conv2d,
    "conv2d_strided": _case_conv2d_strided,
    "conv2d_same": _case_conv2d_same,
    "diff": _case_diff,
    "laplace": _case_laplace,
    "shift_product": _case_shift_product,
    "dilated": _case_dilated,
    "maxpool": _case_maxpool,
    "lse_window": _case_lse_window,
    "superdiagonal": _case_superdiagonal,
    "conv2d_strided_padded": _case_conv2d_strided_padded,
    "gather": _case_gather,
    "xent": _case_xent,
    "pick": _case_pick,
    "embed_linear": _case_embed_linear,
}


# ---------------------------------------- powers

POWER_CASES = [
    # (program, wrt, printed right-hand side after simplification)
    ("y[i] = x[i]/sqrt(sum[j](x[j]*x[j]))", "x",
     "delta[i,p] / sqrt(x[k] x[k]) - x[i] x[p] / (x[k] x[k]) / sqrt(x[k1] x[k1])"),
    ("y[i] = x[i]^3 / x[i]", "x", "2 delta[i,p] x[i]"),
    ("y[i] = sqrt(x[i])^4 * x[i]^-1", "x", "delta[i,p]"),
    # x^2 / x^2 cancels, yet the sum over i keeps its length
    ("y[p] = sum[i](x[i]^2 / x[i]^2) * x[p]", "x", "size(k) delta[p,q]"),
]


# ---------------------------------------- functions of whole axes


def spd(rng, n, batch=()):
    """A well-conditioned symmetric positive definite matrix (or a batch of them)."""
    a = rng.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def general(rng, n, batch=(), negative_det=False):
    """A well-conditioned non-symmetric matrix; with negative_det its determinant is < 0."""
    m = rng.normal(size=batch + (n, n)) + n * np.eye(n)
    if negative_det:
        m = m[..., [1, 0] + list(range(2, n)), :]
    return m


def xp_logsumexp(jnp, x, axis=None):
    m = jnp.max(x, axis=axis, keepdims=True)
    out = jnp.log(jnp.sum(jnp.exp(x - m), axis=axis, keepdims=True)) + m
    return jnp.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def xp_softmax(jnp, x, axis):
    e = jnp.exp(x - jnp.max(x, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def xp_logabsdet(jnp, a):
    return jnp.linalg.slogdet(a)[1]


# (id, program, wrt, arrays from a generator, the same function written for JAX/NumPy:
#  fn(xp, **arrays) with xp being jax.numpy or numpy)

REDUCTION_CASES = [
    ("max", "y = max[j](x[j])", "x",
     lambda r: {"x": r.normal(size=5)},
     lambda xp, x: xp.max(x)),
    ("min", "y = min[j](x[j])", "x",
     lambda r: {"x": r.normal(size=5)},
     lambda xp, x: xp.min(x)),
    ("max-rows", "y[i] = max[j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp.max(X, axis=1)),
    ("min-two-indices", "y = min[i,j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp.min(X)),
    ("max-of-product", "y = max[j](W[j,k] x[k])", "W",
     lambda r: {"W": r.normal(size=(4, 3)), "x": r.normal(size=3)},
     lambda xp, W, x: xp.max(W @ x)),
    ("max-of-product-x", "y = max[j](W[j,k] x[k])", "x",
     lambda r: {"W": r.normal(size=(4, 3)), "x": r.normal(size=3)},
     lambda xp, W, x: xp.max(W @ x)),
    ("logsumexp", "y = logsumexp[j](x[j])", "x",
     lambda r: {"x": r.normal(size=5)},
     lambda xp, x: xp_logsumexp(xp, x)),
    ("logsumexp-rows", "y[i] = logsumexp[j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp_logsumexp(xp, X, axis=1)),
    ("logsumexp-two-indices", "y = logsumexp[i,j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp_logsumexp(xp, X)),
    ("softmax", "y[j] = softmax[j](x[j])", "x",
     lambda r: {"x": r.normal(size=5)},
     lambda xp, x: xp_softmax(xp, x, 0)),
    ("softmax-rows", "Y[i,j] = softmax[j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp_softmax(xp, X, 1)),
    ("softmax-columns", "Y[i,j] = softmax[i](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp_softmax(xp, X, 0)),
    ("softmax-two-indices", "Y[i,j] = softmax[i,j](X[i,j])", "X",
     lambda r: {"X": r.normal(size=(3, 4))},
     lambda xp, X: xp_softmax(xp, X.reshape(-1), 0).reshape(3, 4)),
    ("softmax-weighted", "s = c[j] softmax[j](x[j])", "x",
     lambda r: {"x": r.normal(size=5), "c": r.normal(size=5)},
     lambda xp, x, c: c @ xp_softmax(xp, x, 0)),
    ("inv", "B[i,j] = inv[i,j](A[i,j])", "A",
     lambda r: {"A": general(r, 4)},
     lambda xp, A: xp.linalg.inv(A)),
    ("inv-transposed-argument", "B[i,j] = inv[i,j](A[j,i])", "A",
     lambda r: {"A": general(r, 3)},
     lambda xp, A: xp.linalg.inv(A.T)),
    ("inv-transposed-axes", "B[i,j] = inv[j,i](A[i,j])", "A",
     lambda r: {"A": general(r, 3)},
     lambda xp, A: xp.linalg.inv(A)),
    ("det", "y = det[i,j](A[i,j])", "A",
     lambda r: {"A": general(r, 4)},
     lambda xp, A: xp.linalg.det(A)),
    ("det-negative", "y = det[i,j](A[i,j])", "A",
     lambda r: {"A": general(r, 3, negative_det=True)},
     lambda xp, A: xp.linalg.det(A)),
    ("logdet", "y = logdet[i,j](A[i,j])", "A",
     lambda r: {"A": spd(r, 4)},
     lambda xp, A: xp_logabsdet(xp, A)),
    ("logdet-negative-det", "y = logdet[i,j](A[i,j])", "A",
     lambda r: {"A": general(r, 3, negative_det=True)},
     lambda xp, A: xp_logabsdet(xp, A)),
    ("inv-batched", "B[b,i,j] = inv[i,j](S[b,i,j])", "S",
     lambda r: {"S": spd(r, 3, (2,))},
     lambda xp, S: xp.linalg.inv(S)),
    ("det-batched", "y[b] = det[i,j](S[b,i,j])", "S",
     lambda r: {"S": general(r, 3, (2,))},
     lambda xp, S: xp.linalg.det(S)),
    ("logdet-batched", "y[b] = logdet[i,j](S[b,i,j])", "S",
     lambda r: {"S": spd(r, 3, (2,))},
     lambda xp, S: xp_logabsdet(xp, S)),
    ("solve-A", "x[i] = inv[i,j](A[i,j]) b[j]", "A",
     lambda r: {"A": general(r, 4), "b": r.normal(size=4)},
     lambda xp, A, b: xp.linalg.inv(A) @ b),
    ("solve-b", "x[i] = inv[i,j](A[i,j]) b[j]", "b",
     lambda r: {"A": general(r, 4), "b": r.normal(size=4)},
     lambda xp, A, b: xp.linalg.inv(A) @ b),
    ("solve-left", "y[j] = b[i] inv[i,j](A[i,j])", "A",
     lambda r: {"A": general(r, 4), "b": r.normal(size=4)},
     lambda xp, A, b: b @ xp.linalg.inv(A)),
    ("trace-A", "t = inv[i,j](A[i,j]) B[j,i]", "A",
     lambda r: {"A": general(r, 3), "B": r.normal(size=(3, 3))},
     lambda xp, A, B: xp.trace(xp.linalg.inv(A) @ B)),
    ("trace-B", "t = inv[i,j](A[i,j]) B[j,i]", "B",
     lambda r: {"A": general(r, 3), "B": r.normal(size=(3, 3))},
     lambda xp, A, B: xp.trace(xp.linalg.inv(A) @ B)),
    ("solve-batched-S", "x[b,i,k] = inv[i,j](S[b,i,j]) v[b,j,k]", "S",
     lambda r: {"S": spd(r, 3, (2,)), "v": r.normal(size=(2, 3, 2))},
     lambda xp, S, v: xp.linalg.inv(S) @ v),
    ("solve-batched-v", "x[b,i,k] = inv[i,j](S[b,i,j]) v[b,j,k]", "v",
     lambda r: {"S": spd(r, 3, (2,)), "v": r.normal(size=(2, 3, 2))},
     lambda xp, S, v: xp.linalg.inv(S) @ v),
    ("quadratic-form", "s = b[i] inv[i,j](A[i,j]) b[j]", "A",
     lambda r: {"A": general(r, 4), "b": r.normal(size=4)},
     lambda xp, A, b: b @ xp.linalg.inv(A) @ b),
    ("log-det-inv", "L = log(det[i,j](inv[i,j](X[i,j])))", "X",
     lambda r: {"X": spd(r, 4)},
     lambda xp, X: xp.log(xp.linalg.det(xp.linalg.inv(X)))),
]


# The Gaussian negative log-likelihood: a log-determinant and a solve.

GAUSS = "r[i] = x[i] - mu[i]\nL = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]"


def gauss_jax(xp, x, mu, S):
    r = x - mu
    return 0.5 * xp_logabsdet(xp, S) + 0.5 * r @ xp.linalg.solve(S, r)


def gauss_arrays(seed, symmetric=True):
    rng = np.random.default_rng(seed)
    S = spd(rng, 4) if symmetric else general(rng, 4)
    return {"x": rng.normal(size=4), "mu": rng.normal(size=4), "S": S}


# ---------------------------------------- choices: where, maximum, minimum, clip
# Drawn away from ties and boundaries (no argument within 0.1 of the value it is compared
# with), where the derivative is the same from both sides; tests/ops/test_choices.py checks
# the ties themselves. (id, program, wrt, arrays from a generator, fn(xp, **arrays)).


def away(r, shape, gap=0.2, spread=2.0):
    """Values in ±[gap, spread]: at least ``gap`` from 0."""
    return r.uniform(gap, spread, shape) * r.choice([-1.0, 1.0], shape)


def _relu_arrays(r):
    """W, x with every (W x)[i] at least 0.1 from 0, of both signs."""
    while True:
        W, x = r.normal(size=(4, 3)), r.normal(size=3)
        z = W @ x
        if np.abs(z).min() > 0.1 and (z > 0).any() and (z < 0).any():
            return {"W": W, "x": x}


def _huber_arrays(r):
    """A, w, t with every residual at least 0.1 from 0, 1 and -1, inside and outside."""
    while True:
        A, w, t = r.normal(size=(6, 3)), r.normal(size=3), r.normal(size=6)
        res = A @ w - t
        if np.abs(np.abs(res) - 1).min() > 0.1 and np.abs(res).min() > 0.1 \
                and (np.abs(res) < 1).any() and (np.abs(res) > 1).any():
            return {"A": A, "w": w, "t": t}


def _pair_arrays(r, n=5):
    """x, y with x - y at least 0.2 from 0."""
    y = r.normal(size=n)
    return {"x": y + away(r, n), "y": y}


def _crossed_arrays(r):
    """x[i], y[j] with every x[i] - y[j] at least 0.1 from 0."""
    while True:
        x, y = r.normal(size=3), r.normal(size=4)
        if np.abs(x[:, None] - y[None, :]).min() > 0.1:
            return {"x": x, "y": y, "A": r.normal(size=(3, 4))}


def _clip_arrays(r):
    """x against lo < hi (and against -0.5, 0.5) at least 0.1 from every bound."""
    while True:
        x, lo = r.normal(size=6), r.normal(size=6) - 0.5
        hi = lo + r.uniform(0.3, 1.5, 6)
        bounds = np.stack([lo, hi, np.full(6, -0.5), np.full(6, 0.5)])
        if np.abs(x - bounds).min() > 0.1 and ((x > lo) & (x < hi)).any():
            return {"x": x, "lo": lo, "hi": hi}


def _huber(xp, A, w, t):
    r = A @ w - t
    return xp.sum(xp.where(xp.abs(r) <= 1, 0.5 * r ** 2, xp.abs(r) - 0.5))


def _compared(xp, x, y):
    return xp.sum(xp.where(x >= y, x * y, 0.0) + xp.where(x < y, x ** 2, 0.0)
                  + xp.where(x != y, y ** 2, 1.0) + xp.where(x == y, 5 * x, xp.sin(x)))


CHOICE_CASES = [
    ("where", "y[i] = where(x[i] > 0, x[i]^3, sin(x[i]))", "x",
     lambda r: {"x": away(r, 5)},
     lambda xp, x: xp.where(x > 0, x ** 3, xp.sin(x))),
    ("where-broadcast", "Y[i,j] = where(x[i] <= y[j], A[i,j] x[i], exp(y[j]))", "x",
     _crossed_arrays,
     lambda xp, x, y, A: xp.where(x[:, None] <= y[None, :], A * x[:, None],
                                  xp.exp(y)[None, :])),
    ("where-broadcast-y", "Y[i,j] = where(x[i] <= y[j], A[i,j] x[i], exp(y[j]))", "y",
     _crossed_arrays,
     lambda xp, x, y, A: xp.where(x[:, None] <= y[None, :], A * x[:, None],
                                  xp.exp(y)[None, :])),
    ("relu", "y[i] = maximum(W[i,j] x[j], 0)", "W", _relu_arrays,
     lambda xp, W, x: xp.maximum(W @ x, 0.0)),
    ("relu-loss", "L = maximum(W[i,j] x[j], 0)^2", "x", _relu_arrays,
     lambda xp, W, x: xp.sum(xp.maximum(W @ x, 0.0) ** 2)),
    ("huber", "r[i] = A[i,j] w[j] - t[i]\nL = where(abs(r[i]) <= 1, 0.5 r[i]^2, abs(r[i]) - 0.5)",
     "w", _huber_arrays, _huber),
    ("minimum", "L = minimum(x[i], y[i]) exp(x[i])", "x", _pair_arrays,
     lambda xp, x, y: xp.sum(xp.minimum(x, y) * xp.exp(x))),
    ("minimum-y", "L = minimum(x[i], y[i]) exp(x[i])", "y", _pair_arrays,
     lambda xp, x, y: xp.sum(xp.minimum(x, y) * xp.exp(x))),
    ("maximum-two-indices", "L = maximum(x[i], y[j])^2 A[i,j]", "y", _crossed_arrays,
     lambda xp, x, y, A: xp.sum(xp.maximum(x[:, None], y[None, :]) ** 2 * A)),
    ("clip", "L = clip(x[i], lo[i], hi[i])^2 + x[i] clip(x[i], -0.5, 0.5)", "x", _clip_arrays,
     lambda xp, x, lo, hi: xp.sum(xp.clip(x, lo, hi) ** 2 + x * xp.clip(x, -0.5, 0.5))),
    ("clip-lo", "L = clip(x[i], lo[i], hi[i])^2 + x[i] clip(x[i], -0.5, 0.5)", "lo",
     _clip_arrays,
     lambda xp, x, lo, hi: xp.sum(xp.clip(x, lo, hi) ** 2 + x * xp.clip(x, -0.5, 0.5))),
    ("clip-hi", "L = clip(x[i], lo[i], hi[i])^2 + x[i] clip(x[i], -0.5, 0.5)", "hi",
     _clip_arrays,
     lambda xp, x, lo, hi: xp.sum(xp.clip(x, lo, hi) ** 2 + x * xp.clip(x, -0.5, 0.5))),
    # i held on the left: x[i] y[i] inside an argument is then no dot product (docs/language.md)
    ("comparisons", "z[i] = where(x[i] >= y[i], x[i] y[i], 0) + where(x[i] < y[i], x[i]^2, 0) "
     "+ where(x[i] != y[i], y[i]^2, 1) + where(x[i] == y[i], 5 x[i], sin(x[i]))\nL = z[i]",
     "x", _pair_arrays, _compared),
]


# ---------------------------------------- a corpus to derive

CHAIN = "\n".join([f"h{k}[b,j] = tanh(h{k - 1}[b,i] W{k}[i,j])" for k in range(1, 6)]
                  + ["L = h5[b,j]^2"])
MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"



def derivation_cases() -> list[tuple[str, str, dict[str, int] | None]]:
    """(program, wrt, sizes) for the valid programs, a tanh chain, an MLP, the reductions,
    powers and index arithmetic: the corpus whose derivatives the simplifier and the
    repeats cache are checked on."""
    out: list[tuple[str, str, dict[str, int] | None]] = []
    for src in VALID + [CHAIN, MLP]:
        p = tc.compile(src)
        out += [(src, x, None) for x in p.inputs]
    out += [(src, wrt, None) for _, src, wrt, *_ in REDUCTION_CASES + CHOICE_CASES]
    out += [(src, wrt, None) for src, wrt, _ in POWER_CASES]
    for make in ARITHMETIC_CASES.values():
        case = make()
        out += [(case["src"], wrt, case["sizes"]) for wrt in case["wrt"]]
    return out


# ---------------------------------------- window products
# The window products that torch and JAX run: those that are a convolution the library runs
# itself, and those that are not.


def window_arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in shapes.items()}


# (program, shapes, sizes, which of torch's kernels runs it; JAX runs every one as
# lax.conv_general_dilated)
NATIVE_CONVOLUTIONS = {
    "1-D valid": ("y[i] = x[i+a] w[a]", {"x": (9,), "w": (3,)}, None, "conv1d"),
    "1-D batch, channels": ("y[b,o,i] = x[b,c,i+a] W[o,c,a]",
                            {"x": (2, 3, 8), "W": (4, 3, 3)}, None, "conv1d"),
    "2-D valid": ("y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]",
                  {"x": (2, 3, 7, 6), "W": (4, 3, 3, 2)}, None, "conv2d"),
    "2-D same": ("y[b,o,i,j] = x[b,c,i+a-1,j+e-1] W[o,c,a,e]",
                 {"x": (2, 3, 6, 5), "W": (4, 3, 3, 3)}, {"i": 6, "j": 5}, "conv2d"),
    "2-D stride 2": ("y[b,o,i,j] = x[b,c,2*i+a,2*j+e] W[o,c,a,e]",
                     {"x": (2, 3, 9, 8), "W": (4, 3, 3, 3)}, None, "conv2d"),
    "2-D dilation 2": ("y[b,o,i,j] = x[b,c,i+2*a,j+2*e] W[o,c,a,e]",
                       {"x": (2, 3, 9, 8), "W": (4, 3, 3, 2)}, None, "conv2d"),
    "2-D stride, padding, commuted": ("y[o,i,j] = x[c,a+2*i-1,e+2*j-1] W[o,c,a,e]",
                                      {"x": (3, 8, 7), "W": (2, 3, 3, 3)},
                                      {"i": 4, "j": 4}, "conv2d"),
    # read backwards at stride 1, as many zeros before as after: an input gradient
    "1-D full (kernel flipped)": ("y[i] = x[i-a] w[a]", {"x": (6,), "w": (3,)}, {"i": 8},
                                  "convolution_backward"),
    "2-D flipped with a dilation": ("y[b,q,r,s] = G[b,k,r-2*l,s-m] W[k,q,l,m]",
                                    {"G": (2, 4, 5, 5), "W": (4, 3, 2, 3)},
                                    {"r": 7, "s": 7}, "convolution_backward"),
    "flipped, fewer zeros than the kernel's reach": (
        "y[b,q,r] = G[b,k,r-l+1] W[k,q,l]", {"G": (2, 4, 6), "W": (4, 3, 3)}, {"r": 6},
        "convolution_backward"),
    # read backwards otherwise: the kernel flipped, then conv1d
    "flipped, more zeros after than before": ("y[i] = x[i-a+1] w[a]",
                                              {"x": (6,), "w": (3,)}, {"i": 7}, "conv1d"),
    "flipped at stride 2": ("y[i] = x[2*i-a+2] w[a]", {"x": (9,), "w": (3,)}, {"i": 4},
                            "conv1d"),
    "reads past the end": ("y[i] = x[i+a+2] w[a]", {"x": (7,), "w": (3,)}, {"i": 6},
                           "conv1d"),
    "3-D": ("y[b,o,i,j,k] = x[b,c,i+a,j+e,k+f] W[o,c,a,e,f]",
            {"x": (2, 2, 5, 4, 6), "W": (3, 2, 2, 3, 2)}, None, "conv3d"),
    "axes in any order": ("y[i,o,b] = x[i+a,c,b] W[a,o,c]",
                          {"x": (8, 3, 2), "W": (3, 4, 3)}, None, "conv1d"),
    "two batch and two channel indices": ("y[b,d,o,i] = x[b,c,d,g,i+a] W[o,g,c,a]",
                                          {"x": (2, 3, 2, 2, 7), "W": (4, 2, 3, 3)}, None,
                                          "conv1d"),
    # a window larger than the result: torch's weight gradient of a convolution
    # a channel every factor keeps: a grouped (here depthwise) convolution
    "depthwise": ("y[c,i] = x[c,i+a] w[c,a]", {"x": (3, 8), "w": (3, 3)}, None, "conv1d"),
    "grouped, with batch, channels and outputs": (
        "y[b,g,o,i,j] = x[b,g,c,i+a,j+e] W[g,o,c,a,e]",
        {"x": (2, 3, 2, 6, 5), "W": (3, 4, 2, 3, 2)}, None, "conv2d"),
    "a depthwise weight gradient": ("g[c,a] = G[b,c,i] x[b,c,i+a]",
                                    {"G": (2, 3, 6), "x": (2, 3, 8)}, None,
                                    "convolution_backward"),
    "a grouped input gradient": ("y[b,g,q,r] = G[b,g,k,r-l] W[g,k,q,l]",
                                 {"G": (2, 3, 4, 6), "W": (3, 4, 2, 3)}, {"r": 8},
                                 "convolution_backward"),
    "a weight gradient's form": ("g[p,q,r,s] = G[k,p,l,m] x[k,q,l+r,m+s]",
                                 {"G": (2, 4, 5, 4), "x": (2, 3, 7, 6)}, None,
                                 "convolution_backward"),
    "a strided, padded convolution's weight gradient": (
        "g[p,q,r,s] = G[k,p,l,m] x[k,q,2*l+r-1,m+2*s-1]",
        {"G": (2, 4, 4, 5), "x": (2, 3, 7, 6)}, {"r": 3, "s": 2}, "convolution_backward"),
    "a 1-D weight gradient, axes in any order": (
        "g[r,p] = x[l+r,k] G[p,l,k]", {"G": (4, 6, 2), "x": (8, 2)}, None,
        "convolution_backward"),
    "a window larger than the result, read backwards": (
        "y[i] = x[i-a+5] w[a]", {"x": (8,), "w": (6,)}, {"i": 3}, "convolution_backward"),
}


# (program, shapes, sizes): terms that are not a convolution (the general product runs)
GENERAL_WINDOW_PRODUCTS = {
    "a window index kept with a channel (an unfold)": (
        "y[c,i,a] = x[c,i+a] w[c,a]", {"x": (3, 8), "w": (3, 3)}, None),
    "the spatial index summed": ("L = x[i+a] w[a]", {"x": (8,), "w": (3,)}, {"i": 6}),
    "a shift without a kernel": ("y[i] = x[i+1] w[i]", {"x": (8,), "w": (7,)}, None),
    "a window index kept": ("y[i,a] = x[i+a] w[a]", {"x": (8,), "w": (3,)}, None),
    "a negative stride": ("y[i] = x[4-i+a] w[a]", {"x": (8,), "w": (3,)}, {"i": 5}),
    "a channel summed within the window": ("y[i] = x[c,i+a] w[a]",
                                           {"x": (2, 8), "w": (3,)}, None),
}


# --- recurrences (docs/recurrences.md): the five models the recurrence tests run --------

ELMAN = """
h[-1,j] = h0[j]
h[t,j] = tanh(W[j,k] h[t-1,k] + U[j,m] x[t,m] + b[j])
L = sum[t,j](h[t,j] y[t,j])
"""

LSTM = """
h[-1,b,j] = h0[b,j]
c[-1,b,j] = c0[b,j]
z[t,b,g,j] = Wh[g,j,k] h[t-1,b,k] + Wx[g,j,m] x[t,b,m] + bias[g,j]
c[t,b,j] = sigmoid(z[t,b,1,j]) c[t-1,b,j] + sigmoid(z[t,b,0,j]) tanh(z[t,b,2,j])
h[t,b,j] = sigmoid(z[t,b,3,j]) tanh(c[t,b,j])
L = sum[t,b,j](h[t,b,j] y[t,b,j])
"""

GRU = """
h[-1,j] = h0[j]
zg[t,j] = sigmoid(Wz[j,k] h[t-1,k] + Uz[j,m] x[t,m] + bz[j])
rg[t,j] = sigmoid(Wr[j,k] h[t-1,k] + Ur[j,m] x[t,m] + br[j])
ng[t,j] = tanh(Wn[j,k] (rg[t,k] h[t-1,k]) + Un[j,m] x[t,m] + bn[j])
h[t,j] = (1 - zg[t,j]) ng[t,j] + zg[t,j] h[t-1,j]
L = sum[t,j](h[t,j] y[t,j])
"""

SINKHORN = """
v[-1,j] = 1
u[n,i] = a[i] / (K[i,j] v[n-1,j])
v[n,j] = b[j] / (K[i,j] u[n,i])
L = u[2,i] K[i,j] v[2,j] C[i,j]
"""

EULER = """
y[-1,j] = y0[j]
y[n,j] = y[n-1,j] + dt tanh(A[j,k] y[n-1,k] + c[j])
L = sum[n,j](y[n,j] w[n,j])
"""

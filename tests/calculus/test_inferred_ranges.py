"""Ranges the valid rule infers (docs/index-arithmetic.md) where sizes were needed by hand: a
pooling window's output sized from the window's given size (Tullio's floor((N - A)/s) + 1), and
an index read alone through arithmetic whose plain reads differ in length, run over the
shortest (``L = r[t] (V[t+1] - V[t])``), or cut by a given size. Values, gradients and
Hessians against NumPy, central differences, JAX and torch's own pooling."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numeric_jacobian

import tensorcalc as tc

MAX_POOL = "P[i,j] = max[a,b](X[2*i+a, 2*j+b])"
AVG_POOL = "P[i,j] = sum[a,b](X[2*i+a, 2*j+b]) / 4"
WINDOW = {"a": 2, "b": 2}
DIFF = "L = r[t] (V[t+1] - V[t])"


def _pool(X: np.ndarray, size: int, stride: int, reduce) -> np.ndarray:
    """Pooling by hand: windows of ``size`` every ``stride``, the remainder dropped."""
    rows = (X.shape[0] - size) // stride + 1
    cols = (X.shape[1] - size) // stride + 1
    return np.array([[reduce(X[stride * i:stride * i + size, stride * j:stride * j + size])
                      for j in range(cols)] for i in range(rows)])


@pytest.mark.parametrize("shape", [(4, 4), (5, 7), (6, 3), (2, 9)])
def test_pooling_sizes_its_output_from_the_window_alone(shape):
    X = np.random.default_rng(0).normal(size=shape)
    m = tc.compile(MAX_POOL, sizes=WINDOW)(X=X)
    assert m.shape == ((shape[0] - 2) // 2 + 1, (shape[1] - 2) // 2 + 1)
    np.testing.assert_allclose(m, _pool(X, 2, 2, np.max), rtol=0)
    np.testing.assert_allclose(tc.compile(AVG_POOL, sizes=WINDOW)(X=X),
                               _pool(X, 2, 2, np.mean), rtol=1e-12)


@pytest.mark.parametrize("n, window, stride", [(9, 2, 2), (10, 3, 2), (11, 3, 3), (7, 7, 1)])
def test_a_strided_window_takes_tullios_count(n, window, stride):
    x = np.random.default_rng(1).normal(size=n)
    p = tc.compile(f"P[i] = max[a](x[{stride}*i+a])", sizes={"a": window})
    value = p(x=x)
    assert value.shape == ((n - window) // stride + 1,)
    want = [x[stride * i:stride * i + window].max() for i in range(value.shape[0])]
    np.testing.assert_allclose(value, want, rtol=0)
    exported: dict = {}
    exec(p.to_python("f"), exported)  # noqa: S102 - tensorcalc's own generated code
    np.testing.assert_allclose(exported["f"](x=x), value, rtol=0)


@pytest.mark.parametrize("src", [
    MAX_POOL + "; L = (P[i,j] - T[i,j])^2",
    AVG_POOL + "; L = tanh(P[i,j]) T[i,j]",
    "P[i,j] = max[a,b](X[3*i+a, 2*j+b]); L = exp(P[i,j]) T[i,j]",
])
def test_pooling_gradients_and_hessians_match_finite_differences(src):
    g = np.random.default_rng(2)
    X = g.permutation(35).reshape(5, 7) / 7.0  # distinct: max is differentiable there
    p = tc.compile(src, sizes={"a": 2, "b": 2})
    T = g.normal(size=tc.compile(src.split(";")[0], sizes={"a": 2, "b": 2})(X=X).shape)
    arrays = {"X": X, "T": T}
    grad = tc.grad(p, "X")
    np.testing.assert_allclose(grad(**arrays), numeric_jacobian(p, "X", arrays),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tc.hessian(p, "X")(**arrays),
                               numeric_jacobian(grad, "X", arrays), rtol=1e-6, atol=1e-7)


def test_pooling_against_jax(jax64):
    jnp = jax64.numpy
    X = np.random.default_rng(3).permutation(42).reshape(6, 7) / 5.0
    T = np.random.default_rng(4).normal(size=(3, 3))

    def loss(X):
        windows = X[:6, :6].reshape(3, 2, 3, 2)
        return jnp.sum(jnp.sin(windows.max(axis=(1, 3))) * T) + \
            jnp.sum(windows.mean(axis=(1, 3)) ** 3)

    p = tc.compile("M[i,j] = max[a,b](X[2*i+a, 2*j+b])\n"
                   "A[i,j] = sum[a,b](X[2*i+a, 2*j+b]) / 4\n"
                   "L = sin(M[i,j]) T[i,j] + A[i,j]^3", sizes=WINDOW)
    np.testing.assert_allclose(p(X=X, T=T), loss(X), rtol=1e-12)
    np.testing.assert_allclose(tc.grad(p, "X")(X=X, T=T), jax64.grad(loss)(X), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(tc.hessian(p, "X")(X=X, T=T), jax64.hessian(loss)(X),
                               rtol=1e-9, atol=1e-12)


def test_pooling_against_torch():
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(5).normal(size=(5, 7))
    t = torch.tensor(X, requires_grad=True)
    pooled = torch.nn.functional.max_pool2d(t[None, None], 2) + \
        torch.nn.functional.avg_pool2d(t[None, None], 2)
    (pooled ** 2).sum().backward()
    p = tc.compile("M[i,j] = max[a,b](X[2*i+a, 2*j+b])\n"
                   "A[i,j] = sum[a,b](X[2*i+a, 2*j+b]) / 4\n"
                   "L = (M[i,j] + A[i,j])^2", sizes=WINDOW)
    np.testing.assert_allclose(p(X=X), float((pooled ** 2).sum().detach()), rtol=1e-12)
    np.testing.assert_allclose(tc.grad(p, "X")(X=X), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("src, sizes, words", [
    # a window larger than the array: no output position reads inside it
    ("P[i] = max[a](x[2*i+a])", {"a": 9}, "cannot tell the size of index i"),
    # a window that starts before the array reads zeros wherever i runs: no range to infer
    ("P[i] = sum[a](x[2*i+a-1])", {"a": 3}, "cannot tell the size of index i"),
    # an index summed inside is never sized from a window (docs/index-arithmetic.md, 'Sizes')
    ("L = sum[i](max[a](x[2*i+a]))", {"a": 3}, "cannot tell the size of index i"),
])
def test_what_the_window_does_not_size_asks_for_a_size(src, sizes, words):
    with pytest.raises(tc.InputError, match=words):
        tc.compile(src, sizes=sizes)(x=np.arange(7.0))
    given = tc.compile(src, sizes={**sizes, "i": 2})(x=np.arange(7.0))  # zeros past the ends
    assert np.all(np.isfinite(given)) and np.ndim(given) == (0 if src.startswith("L") else 1)


# --- plain reads of different lengths, with a shifted read ---------------------------


@pytest.mark.parametrize("r_length", [4, 5, 3, 6])
def test_an_index_read_alone_through_arithmetic_runs_over_the_shortest_read(r_length):
    g = np.random.default_rng(6)
    arrays = {"r": g.normal(size=r_length), "V": g.normal(size=5)}
    t = min(r_length, 4)  # r's length, and V's 5 less the shift by 1
    want = np.sum(arrays["r"][:t] * (arrays["V"][1:t + 1] - arrays["V"][:t]))
    p = tc.compile(DIFF)
    np.testing.assert_allclose(p(**arrays), want, rtol=1e-12)
    exported: dict = {}
    exec(tc.compile("L = (V[t+1] - V[t]) exp(r[t])").to_python("f"), exported)  # noqa: S102
    np.testing.assert_allclose(
        exported["f"](**arrays),
        np.sum((arrays["V"][1:t + 1] - arrays["V"][:t]) * np.exp(arrays["r"][:t])),
        rtol=1e-12)
    for wrt in ("r", "V"):
        grad = tc.grad(p, wrt)
        np.testing.assert_allclose(grad(**arrays), numeric_jacobian(p, wrt, arrays),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(tc.hessian(p, wrt)(**arrays),
                                   numeric_jacobian(grad, wrt, arrays), atol=1e-7)
    y = tc.compile("y[t] = r[t] (V[t+1] - V[t])")(**arrays)
    np.testing.assert_allclose(y, arrays["r"][:t] * np.diff(arrays["V"])[:t], rtol=1e-12)


def test_the_shortest_read_against_jax(jax64):
    jnp = jax64.numpy
    g = np.random.default_rng(7)
    r, V = g.normal(size=3), g.normal(size=5)
    p = tc.compile("L = sum[t](tanh(r[t] (V[t+1] - V[t]))^2)")  # t held: elementwise

    def loss(r, V):
        return jnp.sum(jnp.tanh(r * (V[1:4] - V[:3])) ** 2)

    for k, wrt in enumerate(("r", "V")):
        np.testing.assert_allclose(tc.grad(p, wrt)(r=r, V=V),
                                   jax64.grad(loss, argnums=k)(r, V), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(tc.hessian(p, wrt)(r=r, V=V),
                                   jax64.hessian(loss, argnums=k)(r, V), rtol=1e-9,
                                   atol=1e-12)


def test_a_given_size_cuts_plain_reads_but_never_pads_them():
    g = np.random.default_rng(8)
    arrays = {"r": g.normal(size=5), "V": g.normal(size=5)}
    want = np.sum(arrays["r"][:2] * (arrays["V"][1:3] - arrays["V"][:2]))
    p = tc.compile(DIFF, sizes={"t": 2})
    np.testing.assert_allclose(p(**arrays), want, rtol=1e-12)
    np.testing.assert_allclose(tc.compile(DIFF).evaluate(arrays, sizes={"t": 2}), want,
                               rtol=1e-12)
    grad = tc.grad(p, "V")
    np.testing.assert_allclose(grad(**arrays), numeric_jacobian(p, "V", arrays),
                               rtol=1e-6, atol=1e-8)
    with pytest.raises(tc.ShapeError, match="given size 9 .by sizes=. but has size 5 in r "
                                            ".statement L.; a given size may cut"):
        tc.compile(DIFF, sizes={"t": 9})(**arrays)


@pytest.mark.parametrize("src, arrays", [
    ("L = r[t] V[t]", {"r": np.ones(4), "V": np.ones(5)}),  # no arithmetic
    ("L = r[t] V[t] + x[k+1]", {"r": np.ones(4), "V": np.ones(5), "x": np.ones(3)}),
    ("L = x[t+k] w[k] r[t] V[t]", {"x": np.ones(9), "w": np.ones(2), "r": np.ones(4),
                                   "V": np.ones(5)}),  # t+k is no read of t alone
])
def test_plain_reads_still_agree_where_no_read_of_the_index_alone_shrinks_it(src, arrays):
    with pytest.raises(tc.ShapeError, match="index t has size 4 in r but size 5 in V"):
        tc.compile(src)(**arrays)

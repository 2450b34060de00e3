"""On JAX arrays, a window read times a kernel runs as ``lax.conv_general_dilated``
(``backend/convolution.py``), eagerly and inside ``jax.jit``: values, the forms that take
it and those that do not, and JAX's own transformations of ``to_jax`` through it.

The oracles are the NumPy path of the same program (a strided view and one matrix
product, checked against ``np.correlate`` and loops in ``calculus/test_index_arithmetic.py``) and
JAX's own autodiff of the convolution written with ``lax.conv_general_dilated``, in
float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from corpus import GENERAL_WINDOW_PRODUCTS, NATIVE_CONVOLUTIONS, window_arrays

import tensorcalc as tc

EXACT = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture
def jax(jax64):
    """JAX in float64 (conftest's ``jax64``), under a short name."""
    return jax64


@pytest.fixture
def convolutions(jax, monkeypatch):
    """Counts the calls of ``lax.conv_general_dilated`` (a trace under ``jax.jit``)."""
    calls = []
    original = jax.lax.conv_general_dilated

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(jax.lax, "conv_general_dilated", counted)
    return calls


def _jnp(jax, a):
    return {k: jax.numpy.asarray(v) for k, v in a.items()}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(NATIVE_CONVOLUTIONS))
def test_a_correlation_on_jax_runs_as_xlas_convolution(name, jit, jax, convolutions):
    src, shapes, sizes, _ = NATIVE_CONVOLUTIONS[name]
    a = window_arrays(shapes)
    program = tc.compile(src, sizes=sizes)

    def call(**k):
        return program(**k)

    got = (jax.jit(call) if jit else call)(**_jnp(jax, a))
    assert isinstance(got, jax.Array)
    np.testing.assert_allclose(np.asarray(got), np.asarray(tc.compile(src, sizes=sizes)(**a)),
                               **EXACT)
    assert len(convolutions) == 1


@pytest.mark.parametrize("name", sorted(GENERAL_WINDOW_PRODUCTS))
def test_other_window_products_keep_the_general_product_on_jax(name, jax, convolutions):
    src, shapes, sizes = GENERAL_WINDOW_PRODUCTS[name]
    a = window_arrays(shapes)
    got = tc.compile(src).evaluate(_jnp(jax, a), sizes=sizes)
    np.testing.assert_allclose(np.asarray(got), np.asarray(tc.compile(src).evaluate(
        a, sizes=sizes)), **EXACT)
    assert not convolutions


def test_four_read_axes(jax, convolutions):
    """XLA's convolution takes any number of spatial axes (torch's three at most)."""
    src = "y[o,i,j,k,l] = x[c,i+a,j+e,k+f,l+g] W[o,c,a,e,f,g]"
    a = window_arrays({"x": (2, 4, 3, 4, 3), "W": (2, 2, 2, 2, 2, 2)})
    got = tc.compile(src)(**_jnp(jax, a))
    np.testing.assert_allclose(np.asarray(got), tc.compile(src)(**a), **EXACT)
    assert len(convolutions) == 1


LOSS = ("y[b,o,i,j] = x[b,c,2*i+a-1,j+e-1] W[o,c,a,e]; "
        "L = (y[b,o,i,j] - T[b,o,i,j])^2")
SHAPES = {"x": (2, 3, 7, 6), "W": (4, 3, 3, 3), "T": (2, 4, 4, 6)}
SIZES = {"i": 4, "j": 6}  # stride 2 with padding 1; "same" along j


def _loss(jax, x, W, T):
    y = jax.lax.conv_general_dilated(x, W, (2, 1), ((1, 1), (1, 1)))
    return ((y - T) ** 2).sum()


@pytest.mark.parametrize("wrt", ["x", "W"])
def test_gradients_of_a_strided_padded_convolution_on_jax(wrt, jax, convolutions):
    a = window_arrays(SHAPES, seed=3)
    j = _jnp(jax, a)
    grad = tc.grad(tc.compile(LOSS, sizes=SIZES), wrt)
    got = jax.jit(lambda **k: grad(**k))(**j)
    assert convolutions  # the gradient's window product too
    np.testing.assert_allclose(np.asarray(got), grad(**a), **EXACT)
    expected = jax.grad(lambda x, W, T: _loss(jax, x, W, T),
                        argnums=("x", "W", "T").index(wrt))(j["x"], j["W"], j["T"])
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), **EXACT)


def test_to_jax_through_a_convolution_to_second_order(jax):
    """``jax.hessian``, ``jax.jacfwd∘jax.grad`` and ``vmap`` of ``to_jax`` of a
    convolution loss, against the same loss written with ``lax.conv_general_dilated``."""
    a = _jnp(jax, window_arrays({**SHAPES, "W": (2, 3, 3, 3)}, seed=4))
    f = tc.to_jax(tc.compile(LOSS, sizes=SIZES))
    x, W, T = a["x"], a["W"], a["T"][:, :2]

    def ours(W):
        return f(x=x, W=W, T=T)

    def theirs(W):
        return _loss(jax, x, W, T)

    np.testing.assert_allclose(jax.grad(ours)(W), jax.grad(theirs)(W), **EXACT)
    np.testing.assert_allclose(jax.jit(jax.hessian(ours))(W), jax.hessian(theirs)(W),
                               **EXACT)
    np.testing.assert_allclose(jax.jacfwd(jax.grad(ours))(W), jax.hessian(theirs)(W),
                               **EXACT)
    Ws = jax.numpy.stack([W, 2 * W, -W])
    np.testing.assert_allclose(jax.vmap(ours)(Ws), jax.vmap(theirs)(Ws), **EXACT)

"""Sparse terms added in place (backend/sparse_sums.py): a scatter term or a term on a
diagonal is added into the value of the sum's dense terms at its positions only, never
through a dense array of its own; and nothing anyone else holds is written into."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.backend import sparse_sums
from tensorcalc.ops import kernels

XENT = "L = sum[n](logsumexp[c](Z[n,c]) - Z[n,t[n]])"
RNG = np.random.default_rng(5)


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The routes taken, by name: 'into' (a scatter added in place), 'diagonal' (a core
    added onto a diagonal view), 'dense' (a scatter made as an array of its own); conftest
    runs each printed derivative again, so a route may be taken twice."""
    taken: list[str] = []
    into, view = sparse_sums.scatter_into, kernels.diagonal_view
    from tensorcalc.backend import windows

    dense = windows.scatter_add

    def spy_into(*args: Any) -> Any:
        taken.append("into")
        return into(*args)

    def spy_view(*args: Any) -> Any:
        taken.append("diagonal")
        return view(*args)

    def spy_dense(*args: Any) -> Any:
        taken.append("dense")
        return dense(*args)

    monkeypatch.setattr(sparse_sums, "scatter_into", spy_into)
    monkeypatch.setattr(kernels, "diagonal_view", spy_view)
    monkeypatch.setattr(windows, "scatter_add", spy_dense)
    return taken


def _softmax(Z: np.ndarray) -> np.ndarray:
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _xent_gradient(Z: np.ndarray, t: np.ndarray) -> np.ndarray:
    expected = _softmax(Z)
    np.subtract.at(expected, (np.arange(len(t)), t), 1.0)
    return expected


def test_integer_label_cross_entropy_subtracts_in_place(routes: list[str]) -> None:
    g = tc.grad(XENT, "Z")
    Z, t = RNG.standard_normal((7, 5)), np.array([0, 4, 4, 1, 2, 0, 3])
    kept = Z.copy()
    got = g(Z=Z, t=t)
    assert set(routes) == {"into"}
    np.testing.assert_allclose(got, _xent_gradient(Z, t), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(Z, kept)  # the input is never written into


def test_float32_stays_float32_and_exact(routes: list[str]) -> None:
    g = tc.grad(XENT, "Z")
    Z, t = RNG.standard_normal((6, 4)).astype(np.float32), np.array([1, 1, 0, 3, 2, 1])
    got = g(Z=Z, t=t)
    assert got.dtype == np.float32 and set(routes) == {"into"}
    np.testing.assert_allclose(got, _xent_gradient(Z.astype(np.float64), t), rtol=1e-5,
                               atol=1e-6)


def test_repeated_targets_add_up(routes: list[str]) -> None:
    """An embedding's gradient beside a dense term: rows picked several times get the
    sum of their values (np.add.at's rule), into 2 E."""
    g = tc.grad("L = sum[n,j](E[t[n],j] W[n,j]) + sum[p,j](E[p,j]^2)", "E")
    E, W = RNG.standard_normal((4, 3)), RNG.standard_normal((6, 3))
    t = np.array([0, 3, 3, 1, 3, 0])
    expected = 2 * E
    np.add.at(expected, t, W)
    np.testing.assert_allclose(g(E=E, W=W, t=t), expected, rtol=1e-13)
    assert set(routes) == {"into"}


def test_a_statement_value_read_as_it_is_is_never_written_into(routes: list[str]) -> None:
    """G's dense term is S itself, which L reads again: the scatter goes the dense way."""
    p = tc.compile("S[p,q] = softmax[q](Z[p,q])\nG[p,q] = S[p,q] - delta[q,t[p]]\n"
                   "L = sum[p,q](S[p,q] G[p,q])")
    Z, t = RNG.standard_normal((5, 4)), np.array([0, 1, 3, 3, 2])
    S = _softmax(Z)
    G = S.copy()
    G[np.arange(5), t] -= 1
    np.testing.assert_allclose(p(Z=Z, t=t), np.sum(S * G), rtol=1e-13)
    assert "into" not in routes and "dense" in routes


def test_a_diagonal_term_is_added_onto_the_diagonal(routes: list[str]) -> None:
    h = tc.hessian("L = sum[i](x[i]^3) + x[i] A[i,j] x[j]", "x")
    x, A = RNG.standard_normal(5), RNG.standard_normal((5, 5))
    np.testing.assert_allclose(h(x=x, A=A), 6 * np.diag(x) + A + A.T, rtol=1e-13)
    assert set(routes) == {"diagonal"}


def test_a_diagonal_beside_a_read_makes_its_own_array(routes: list[str]) -> None:
    """``A[p,q] + delta[p,q] x[p]``: the dense term is the input A, never written into."""
    p = tc.compile("y[p,q] = A[p,q] + delta[p,q] x[p]")
    x, A = RNG.standard_normal(4), RNG.standard_normal((4, 4))
    kept = A.copy()
    np.testing.assert_allclose(p(x=x, A=A), A + np.diag(x), rtol=1e-14)
    np.testing.assert_array_equal(A, kept)
    assert routes == []


def test_integer_dense_part_widens_to_the_scattered_values() -> None:
    p = tc.compile("y[p,q] = a[p,k] b[k,q] - delta[q,t[p]] w[p]")
    a, b = RNG.integers(0, 5, (3, 2)), RNG.integers(0, 5, (2, 4))
    w, t = RNG.standard_normal(3), np.array([3, 0, 3])
    expected = (a @ b).astype(float)
    expected[np.arange(3), t] -= w
    np.testing.assert_allclose(p(a=a, b=b, w=w, t=t), expected, rtol=1e-14)


def test_shifted_targets_outside_the_range_are_dropped(routes: list[str]) -> None:
    """The second derivative of a finite difference: shifted deltas, some landing past the
    end, added into the diagonal term in place; against central differences."""
    src = "y[i] = x[i+1] - x[i]\nL = sum[i](y[i]^2) + sum[i](x[i]^3)"
    x = RNG.standard_normal(7)
    d = np.diff(np.eye(7), axis=0)
    np.testing.assert_allclose(tc.hessian(src, "x")(x=x), 2 * d.T @ d + np.diag(6 * x),
                               rtol=1e-12, atol=1e-12)
    assert "into" in routes and "dense" not in routes


def test_torch_adds_with_index_put_also_under_vmap(routes: list[str]) -> None:
    torch = pytest.importorskip("torch")
    g = tc.grad(XENT, "Z")
    Z, t = RNG.standard_normal((4, 6, 5)), RNG.integers(0, 5, 6)
    Zt, tt = torch.tensor(Z, requires_grad=True), torch.tensor(t)
    batched = torch.func.vmap(lambda z: g(Z=z, t=tt))(Zt)
    for k in range(4):
        np.testing.assert_allclose(batched[k].detach().numpy(), _xent_gradient(Z[k], t),
                                   rtol=1e-12)
    # and its own derivative, through the in-place route, against torch's second order
    loss = torch.nn.functional.cross_entropy(Zt[0], tt, reduction="sum")
    (first,) = torch.autograd.grad(loss, Zt, create_graph=True)
    v = torch.tensor(RNG.standard_normal((4, 6, 5)))
    (hv,) = torch.autograd.grad((first * v).sum(), Zt)
    mine = g(Z=Zt[0], t=tt)
    (mine_hv,) = torch.autograd.grad((mine * v[0]).sum(), Zt)
    np.testing.assert_allclose(mine_hv.numpy(), hv.numpy(), rtol=1e-10, atol=1e-12)
    assert set(routes) == {"into"}


def test_jax_adds_with_at_add_also_jitted(routes: list[str]) -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    g = tc.grad("y[i] = x[i+1] - x[i]\nL = sum[i](y[i]^2) + sum[i](x[i]^3)", "x")
    x, Z, t = RNG.standard_normal(6), RNG.standard_normal((3, 4)), np.array([0, 3, 3])

    def reference(x: Any) -> Any:
        return jnp.sum(jnp.diff(x) ** 2) + jnp.sum(x ** 3)

    np.testing.assert_allclose(jax.jit(lambda x: g(x=x))(jnp.asarray(x)),
                               jax.grad(reference)(jnp.asarray(x)), rtol=1e-12)
    gz = tc.grad(XENT, "Z")
    np.testing.assert_allclose(jax.jit(lambda z: gz(Z=z, t=jnp.asarray(t)))(jnp.asarray(Z)),
                               _xent_gradient(Z, t), rtol=1e-12)
    assert set(routes) == {"into"}


def test_exported_code_matches() -> None:
    g = tc.grad(XENT, "Z")
    namespace: dict[str, Any] = {}
    exec(g.to_python("f"), namespace)  # noqa: S102 - our own generated code
    Z, t = RNG.standard_normal((5, 3)), np.array([2, 2, 0, 1, 2])
    np.testing.assert_allclose(namespace["f"](Z=Z, t=t), _xent_gradient(Z, t), rtol=1e-13)


def test_repeated_calls_keep_adding_in_place(routes: list[str]) -> None:
    """A statement called again and again (where the fused loop of backend/fused.py takes
    over from its third run, numba installed) still adds its scatter in place, never
    through a dense array read by the loop."""
    g = tc.grad(XENT, "Z")
    Z, t = RNG.standard_normal((64, 80)), RNG.integers(0, 80, 64)
    for _ in range(4):
        np.testing.assert_allclose(g(Z=Z, t=t), _xent_gradient(Z, t), rtol=1e-13,
                                   atol=1e-15)
    assert routes.count("into") >= 4 and "dense" not in routes

"""``tc.to_jax`` to any order: first, second and third derivatives, forward and reverse
mode, ``vmap`` and ``jit``, each against JAX's own autodiff of the same function
written in ``jax.numpy``; and a tensorcalc derivative called inside ``jax.jit`` traced
into one XLA computation (no Python callback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tensorcalc as tc

jax = pytest.importorskip("jax")
jnp = jax.numpy

RTOL = 1e-9
ATOL = 1e-11


@pytest.fixture(autouse=True)
def jax64() -> Iterator[Any]:
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


def close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL)


@dataclass(frozen=True)
class Case:
    """A program, the same function in jnp (keyword arrays), the arrays (as NumPy, made
    JAX arrays in the test) and the input the derivatives are taken with respect to."""

    source: str
    theirs: Callable[..., Any]
    arrays: Callable[[np.random.Generator], dict[str, np.ndarray]]
    wrt: str


MLP = ("H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; "
       "L = (P[b,o] - T[b,o])^2")


def mlp(X: Any, W: Any, c: Any, V: Any, T: Any) -> Any:
    return jnp.sum((jnp.tanh(X @ W + c) @ V - T) ** 2)


def mlp_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"X": rng.standard_normal((5, 4)), "W": rng.standard_normal((4, 3)) / 2,
            "c": 0.1 * rng.standard_normal(3), "V": rng.standard_normal((3, 2)),
            "T": rng.standard_normal((5, 2))}


LOGISTIC = "z[n] = X[n,d] w[d]; L = sum[n](softplus(z[n]) - y[n] z[n])"


def logistic(X: Any, w: Any, y: Any) -> Any:
    z = X @ w
    return jnp.sum(jax.nn.softplus(z) - y * z)


def logistic_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"X": rng.standard_normal((7, 4)), "w": 0.5 * rng.standard_normal(4),
            "y": (rng.random(7) < 0.5).astype(np.float64)}


TANH_POWER = "u[i] = tanh(A[i,j] x[j]); L = u[i]^3 + (x[k] x[k])^1.5"


def tanh_power(A: Any, x: Any) -> Any:
    return jnp.sum(jnp.tanh(A @ x) ** 3) + (x @ x) ** 1.5


def tanh_power_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"A": rng.standard_normal((4, 3)), "x": rng.standard_normal(3)}


SOFTMAX = ("Z[n,j] = X[n,d] W[d,j]; P[n,j] = softmax[j](Z[n,j]); "
           "L = sum[n](logsumexp[j](Z[n,j])) - Y[n,j] Z[n,j] + 0.5 P[n,j] P[n,j]")


def softmax(X: Any, W: Any, Y: Any) -> Any:
    Z = X @ W
    P = jax.nn.softmax(Z, axis=1)
    return (jnp.sum(jax.scipy.special.logsumexp(Z, axis=1)) - jnp.sum(Y * Z)
            + 0.5 * jnp.sum(P * P))


def softmax_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 3)),
            "Y": np.eye(3)[rng.integers(0, 3, 4)]}


GAUSS = ("r[i] = x[i] - mu[i]; "
         "L = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]")


def gauss(S: Any, x: Any, mu: Any) -> Any:
    r = x - mu
    return 0.5 * jnp.linalg.slogdet(S)[1] + 0.5 * r @ jnp.linalg.solve(S, r)


def gauss_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    A = rng.standard_normal((3, 3))
    return {"S": A @ A.T / 3 + np.eye(3), "x": rng.standard_normal(3),
            "mu": rng.standard_normal(3)}


CASES = {
    "mlp": Case(MLP, mlp, mlp_arrays, "W"),
    "logistic": Case(LOGISTIC, logistic, logistic_arrays, "w"),
    "tanh_power": Case(TANH_POWER, tanh_power, tanh_power_arrays, "x"),
    "softmax": Case(SOFTMAX, softmax, softmax_arrays, "W"),
    "gauss_mu": Case(GAUSS, gauss, gauss_arrays, "mu"),
}


def functions(case: Case) -> tuple[Callable[[Any], Any], Callable[[Any], Any], Any, dict]:
    """Ours and theirs as functions of the ``wrt`` array alone, the point, all arrays."""
    arrays = {k: jnp.asarray(v) for k, v in case.arrays(np.random.default_rng(0)).items()}
    f = tc.to_jax(case.source)

    def ours(x: Any) -> Any:
        return f(**{**arrays, case.wrt: x})

    def theirs(x: Any) -> Any:
        return case.theirs(**{**arrays, case.wrt: x})

    return ours, theirs, arrays[case.wrt], arrays


def all_orders(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """First, second and third derivatives of ``f`` in several modes, in one jit."""
    return jax.jit(lambda x: (f(x), jax.grad(f)(x), jax.hessian(f)(x),
                              jax.jacfwd(jax.jacrev(f))(x), jax.jacrev(jax.jacfwd(f))(x),
                              jax.jacfwd(jax.hessian(f))(x)))


@pytest.mark.parametrize("name", CASES)
def test_first_second_and_third_order(name: str) -> None:
    ours, theirs, x, _ = functions(CASES[name])
    for got, want in zip(all_orders(ours)(x), all_orders(theirs)(x), strict=True):
        close(got, want)


def test_eager_without_jit() -> None:
    ours, theirs, x, _ = functions(CASES["logistic"])
    close(ours(x), theirs(x))
    close(jax.grad(ours)(x), jax.jit(jax.grad(theirs))(x))
    close(jax.hessian(ours)(x), jax.jit(jax.hessian(theirs))(x))


def modes(f: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    """jvp, vjp, vmap (of the value, the gradient and a Hessian-vector product), in
    one jit."""

    def run(x: Any, v: Any) -> Any:
        batch = jnp.stack([x, x + 0.1 * v, x - 0.2 * v])
        value, pullback = jax.vjp(f, x)
        return (*jax.jvp(f, (x,), (v,)), value, pullback(jnp.asarray(1.5))[0],
                jax.vmap(f)(batch), jax.vmap(jax.grad(f))(batch),
                jax.vmap(lambda b: jax.jvp(jax.grad(f), (b,), (v,))[1])(batch))

    return jax.jit(run)


@pytest.mark.parametrize("name", CASES)
def test_jvp_vjp_and_vmap(name: str) -> None:
    ours, theirs, x, _ = functions(CASES[name])
    v = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape))
    for got, want in zip(modes(ours)(x, v), modes(theirs)(x, v), strict=True):
        close(got, want)


def test_third_derivative_of_a_scalar_function_of_a_vector() -> None:
    ours, theirs, x, _ = functions(CASES["tanh_power"])
    third = jax.jit(jax.jacfwd(jax.jacfwd(jax.grad(ours))))(x)
    assert third.shape == (3, 3, 3)
    close(third, jax.jit(jax.jacfwd(jax.jacfwd(jax.grad(theirs))))(x))
    close(jax.jit(jax.jacrev(jax.hessian(ours)))(x), jax.jit(jax.jacrev(jax.hessian(theirs)))(x))


def test_derivatives_in_several_inputs_at_once() -> None:
    arrays = {k: jnp.asarray(v) for k, v in mlp_arrays(np.random.default_rng(2)).items()}
    f = tc.to_jax(MLP)

    def ours(W: Any, c: Any, X: Any) -> Any:
        return f(**{**arrays, "W": W, "c": c, "X": X})

    def theirs(W: Any, c: Any, X: Any) -> Any:
        return mlp(**{**arrays, "W": W, "c": c, "X": X})

    args = (arrays["W"], arrays["c"], arrays["X"])
    got = jax.jit(jax.hessian(ours, argnums=(0, 1, 2)))(*args)
    want = jax.jit(jax.hessian(theirs, argnums=(0, 1, 2)))(*args)
    for g_row, w_row in zip(got, want):
        for g, w in zip(g_row, w_row):
            close(g, w)


def test_a_result_with_axes_in_both_modes() -> None:
    layer = tc.to_jax("H[b,h] = tanh(X[b,d] W[d,h] + c[h])")
    rng = np.random.default_rng(3)
    X, W, c = (jnp.asarray(rng.standard_normal(s)) for s in ((5, 4), (4, 3), (3,)))

    def ours(W: Any, c: Any) -> Any:
        return layer(X=X, W=W, c=c)

    def theirs(W: Any, c: Any) -> Any:
        return jnp.tanh(X @ W + c)

    def jacobians(f: Callable[[Any, Any], Any]) -> Any:
        return jax.jit(lambda W, c: (*jax.jacfwd(f, argnums=(0, 1))(W, c),
                                     *jax.jacrev(f, argnums=(0, 1))(W, c),
                                     jax.jacfwd(jax.jacrev(f))(W, c)))

    for got, want in zip(jacobians(ours)(W, c), jacobians(theirs)(W, c), strict=True):
        close(got, want)


def test_the_derivative_programs_are_derived_once() -> None:
    """The gradient (scalar result) or JVP program of each input is derived on first
    use and kept: a derivative traced afresh derives nothing it derived before."""
    from tensorcalc.bridges import to_jax as frameworks_jax

    calls: list[tuple[str, str]] = []
    originals = frameworks_jax.grad, frameworks_jax.jvp

    def counting(kind: str, derive: Any) -> Any:
        def run(program: Any, wrt: str, **kw: Any) -> Any:
            calls.append((kind, wrt))
            return derive(program, wrt, **kw)
        return run

    frameworks_jax.grad = counting("grad", originals[0])
    frameworks_jax.jvp = counting("jvp", originals[1])
    try:
        ours, _, x, _ = functions(CASES["logistic"])
        jax.make_jaxpr(jax.jacfwd(jax.jacfwd(ours)))(x)
        # the gradient w.r.t. w, then its JVP w.r.t. w (the Hessian-vector product)
        assert calls == [("grad", "w"), ("jvp", "w")]
        jax.make_jaxpr(jax.jacfwd(jax.jacfwd(ours)))(x + 1)
        jax.make_jaxpr(jax.hessian(ours))(x)
        jax.make_jaxpr(jax.grad(ours))(x)
        assert len(calls) == 2
        jax.make_jaxpr(jax.jacfwd(jax.jacfwd(jax.jacfwd(ours))))(x)
        assert calls[2:] == [("jvp", "w")]  # only the third order is new
    finally:
        frameworks_jax.grad, frameworks_jax.jvp = originals


def test_the_keyword_interface_is_kept() -> None:
    f = tc.to_jax("y[i] = W[i,j] x[j]")
    with pytest.raises(tc.InputError, match="takes W, x; unknown: z"):
        f(W=jnp.ones((2, 2)), x=jnp.ones(2), z=1)
    with pytest.raises(tc.InputError, match="missing: x"):
        f(W=jnp.ones((2, 2)))
    assert "tensorcalc program (JAX)" in (f.__doc__ or "")


def test_integer_inputs_are_not_differentiated() -> None:
    f = tc.to_jax("L = (X[n,d] w[d] - y[n])^2")
    X = jnp.asarray(np.arange(6.0).reshape(3, 2))
    y = jnp.asarray([1, 0, 2])
    w = jnp.asarray([0.5, -0.25])
    got = jax.hessian(lambda w: f(X=X, w=w, y=y))(w)
    close(got, 2 * X.T @ X)
    close(jax.grad(lambda w: f(X=X, w=w, y=y))(w), 2 * X.T @ (X @ w - y))


# --- inside jax.jit: one XLA computation ----------------------------------------------


@pytest.mark.parametrize("make", [tc.grad, tc.hessian], ids=["grad", "hessian"])
def test_a_derivative_called_inside_jit_is_one_computation(make: Any) -> None:
    arrays = {k: jnp.asarray(v) for k, v in mlp_arrays(np.random.default_rng(4)).items()}
    derivative = make(MLP, "W")
    jitted = jax.jit(lambda **a: derivative(**a))
    if make is tc.grad:  # the same numbers as eager
        close(jitted(**arrays), derivative(**arrays))
    want = (jax.grad if make is tc.grad else jax.hessian)(
        lambda W: mlp(**{**arrays, "W": W}))(arrays["W"])
    close(jitted(**arrays), want)
    jaxpr = str(jax.make_jaxpr(lambda **a: derivative(**a))(**arrays))
    assert "callback" not in jaxpr
    text = jitted.lower(**arrays).as_text()
    assert "callback" not in text and text.count("func.func public @main") == 1


def test_to_jax_under_jit_has_no_callback() -> None:
    ours, _, x, _ = functions(CASES["mlp"])
    for transform in (jax.grad, jax.hessian):
        text = jax.jit(transform(ours)).lower(x).as_text()
        assert "callback" not in text
        assert "callback" not in str(jax.make_jaxpr(transform(ours))(x))

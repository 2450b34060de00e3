"""The special elementwise functions (erf, erfc, gelu, gelu_tanh, softsign, logsigmoid,
lgamma, digamma, trigamma and polygammaN) and log1p and expm1 again: values against mpmath
at 40 digits, math and scipy, on NumPy, torch, JAX and Dask; first and second derivatives
(third for lgamma and digamma) against JAX in float64 and central differences; float32;
exported code with only NumPy; printed derivatives; LaTeX; the polygamma family."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.ops import special
from tensorcalc.ops.functions import FUNCTIONS, MAX_POLYGAMMA
from tensorcalc.tools.cli import main

NEW = ["erf", "erfc", "gelu", "gelu_tanh", "softsign", "logsigmoid", "lgamma", "digamma",
       "trigamma", "polygamma2"]
GAMMAS = {"lgamma", "digamma", "trigamma", "polygamma2"}  # poles at 0, -1, -2, ...
RNG = np.random.default_rng(2027)
# Points where every function is smooth: the gamma family's away from its poles.
ANY_X = np.array([-2.2, -0.9, -0.3, 0.05, 0.4, 1.3, 2.6])
GAMMA_X = np.array([-2.7, -1.4, -0.6, 0.3, 0.9, 1.4616, 2.5, 5.2])


def points(fn: str) -> np.ndarray:
    return GAMMA_X if fn in GAMMAS else ANY_X


@pytest.fixture(scope="module")
def mp() -> Any:
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    return mpmath


def values(fn: str, x: np.ndarray) -> np.ndarray:
    return np.asarray(tc.compile(f"y[i] = {fn}(x[i])")(x=x))


def reference(mp: Any, f: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    return np.array([float(f(mp.mpf(float(v)))) for v in x])


def ulps(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.spacing(np.abs(want))))


# --- the tables, computed again --------------------------------------------------------


def test_the_zeta_table_is_zeta_minus_one(mp: Any) -> None:
    assert special.ZETA_MINUS_ONE == tuple(float(mp.zeta(k) - 1) for k in range(2, 42))


def test_the_bernoulli_numbers(mp: Any) -> None:
    assert [float(b) for b in special.BERNOULLI] == \
        [float(mp.bernoulli(2 * k)) for k in range(1, 11)]


def test_the_chebyshev_series_of_erfcx_is_computed_again(mp: Any) -> None:
    """(1 + 2a) e^(a²) erfc(a) at 80 Chebyshev nodes of u = (a - 4)/(a + 3) in [-1, 1]."""
    nodes = 80
    u = [mp.cos(mp.pi * (j + mp.mpf(0.5)) / nodes) for j in range(nodes)]
    a = [(4 + 3 * v) / (1 - v) for v in u]
    f = [(1 + 2 * z) * mp.exp(z * z) * mp.erfc(z) for z in a]
    c = [2 * sum(f[j] * mp.cos(mp.pi * k * (j + mp.mpf(0.5)) / nodes) for j in range(nodes))
         / nodes for k in range(len(special.ERFCX_CHEBYSHEV) + 1)]
    c[0] /= 2
    np.testing.assert_allclose(special.ERFCX_CHEBYSHEV, [float(v) for v in c[:-1]],
                               rtol=1e-15, atol=1e-20)
    assert abs(float(c[-1])) < 2e-18  # the first left out


# --- values ----------------------------------------------------------------------------

WIDE = RNG.uniform(-6.0, 6.0, 300)
TINY = 10.0 ** RNG.uniform(-300, 0, 60) * RNG.choice([-1.0, 1.0], 60)
POSITIVE = np.concatenate([RNG.uniform(0.0, 12.0, 300), 1 + RNG.uniform(-1e-3, 1e-3, 40),
                           2 + RNG.uniform(-1e-3, 1e-3, 40), 10.0 ** RNG.uniform(-300, 300, 60)])
NEGATIVE = np.concatenate([RNG.uniform(-30.0, 0.0, 300), -(10.0 ** RNG.uniform(-300, 14, 40))])
NEGATIVE = NEGATIVE[NEGATIVE != np.round(NEGATIVE)]
ROOT = 1.4616321449683622  # of digamma
NEAR_ROOT = np.concatenate([ROOT + RNG.uniform(-1e-3, 1e-3, 40), [np.nextafter(ROOT, 0.0), ROOT]])


@pytest.mark.parametrize("fn, x, most", [
    ("erf", np.concatenate([WIDE, TINY]), 3),
    ("erfc", RNG.uniform(-6.0, 26.5, 400), 6),  # erfc(26.5) = 1e-307: the results are normal
    ("gelu", RNG.uniform(-37.0, 10.0, 400), 6),
    # about |u| ulp (u = sqrt(2/pi) (x + 0.044715 x^3), rounded): 2e-14 at x = -10
    ("gelu_tanh", RNG.uniform(-6.0, 10.0, 400), 40),
    ("lgamma", POSITIVE, 6),  # the zeros at 1 and 2 included
    # and its root; 16 ulp (2e-15) where ψ(y + 1) - 1/y subtracts, y a little below 1.3
    ("digamma", np.concatenate([POSITIVE, NEAR_ROOT]), 16),
    ("trigamma", POSITIVE, 6),
    ("polygamma2", POSITIVE, 8),
], ids=lambda v: v if isinstance(v, str) else "")
def test_within_a_few_ulp_of_mpmath(mp: Any, fn: str, x: np.ndarray, most: float) -> None:
    exact: dict[str, Callable[[Any], Any]] = {
        "erf": mp.erf, "erfc": mp.erfc, "gelu": lambda v: v * mp.ncdf(v),
        "gelu_tanh": lambda v: v / (1 + mp.exp(-2 * mp.sqrt(2 / mp.pi) * (v + 0.044715 * v**3))),
        "lgamma": lambda v: mp.loggamma(v).real, "digamma": mp.digamma,
        "trigamma": lambda v: mp.polygamma(1, v), "polygamma2": lambda v: mp.polygamma(2, v)}
    got, want = values(fn, x), reference(mp, exact[fn], x)
    finite = np.isfinite(want)  # trigamma(1e-300) overflows
    np.testing.assert_array_equal(got[~finite], want[~finite])
    keep = finite & (np.abs(want) > 1e-300)  # lgamma(1) = 0; near the end of floats' range
    assert ulps(got[keep], want[keep]) <= most


@pytest.mark.parametrize("fn, order", [("lgamma", 0), ("digamma", 0), ("trigamma", 1),
                                       ("polygamma2", 2), ("polygamma5", 5),
                                       ("polygamma10", 10)])
def test_negative_arguments_by_reflection(mp: Any, fn: str, order: int) -> None:
    """Within 1e-15 of max(1, |value|), and of log|x| (digamma's reflection subtracts
    values of that size): the reflection loses digits near the negative zeros only."""
    x = NEGATIVE[:120]
    exact = (lambda v: mp.log(abs(mp.gamma(v)))) if fn == "lgamma" else \
        (lambda v: mp.polygamma(order, v))
    got, want = values(fn, x), reference(mp, exact, x)
    scale = np.maximum(np.maximum(1.0, np.abs(want)), np.log(np.abs(x)))
    assert np.max(np.abs(got - want) / scale) < 5e-15


@pytest.mark.parametrize("n", [3, 7, 25, MAX_POLYGAMMA])
def test_polygamma_of_high_order(mp: Any, n: int) -> None:
    """No overflow on the way where the value does not overflow: n! / x^(n+1) is computed
    as scale (c / x)^(n+1)."""
    x = np.array([0.7, 3.2, 40.0, 1e3, 1e6]) if n < 50 else np.array([80.0, 1e3, 1e6])
    got, want = values(f"polygamma{n}", x), reference(mp, lambda v: mp.polygamma(n, v), x)
    finite = np.isfinite(want) & (np.abs(want) > 1e-300)
    np.testing.assert_allclose(got[finite], want[finite], rtol=(n + 4) * 1e-15)
    assert finite.sum() >= 2


def test_agrees_with_math_and_scipy() -> None:
    scipy_special = pytest.importorskip("scipy.special")
    x = WIDE
    np.testing.assert_allclose(values("erf", x), [math.erf(v) for v in x], rtol=1e-15)
    np.testing.assert_allclose(values("erfc", x), [math.erfc(v) for v in x], rtol=1e-15)
    # math.lgamma is 12 ulp off at 1.1 (glibc): scipy is the closer reference there
    np.testing.assert_allclose(values("lgamma", POSITIVE), [math.lgamma(v) for v in POSITIVE],
                               rtol=2e-14, atol=4e-15)
    y = POSITIVE[POSITIVE < 1e100]  # scipy's are 1e-13 off near negative zeros and poles
    np.testing.assert_allclose(values("lgamma", y), scipy_special.gammaln(y), rtol=1e-14,
                               atol=1e-15)
    np.testing.assert_allclose(values("digamma", y), scipy_special.digamma(y), rtol=1e-14)
    np.testing.assert_allclose(values("trigamma", y), scipy_special.polygamma(1, y), rtol=1e-14)
    np.testing.assert_allclose(values("polygamma3", y), scipy_special.polygamma(3, y),
                               rtol=1e-14)


def test_the_elementary_new_ones_against_their_formulas() -> None:
    x = np.concatenate([WIDE, [-30.0, 30.0]])
    c, right = math.sqrt(2 / math.pi), x > -1  # the formula cancels for x < -1
    np.testing.assert_allclose(values("gelu_tanh", x[right]),
                               0.5 * x[right] * (1 + np.tanh(c * (x + 0.044715 * x**3)[right])),
                               rtol=1e-14)
    np.testing.assert_allclose(values("softsign", x), x / (1 + np.abs(x)), rtol=1e-15)
    np.testing.assert_allclose(values("logsigmoid", x), [-math.log1p(math.exp(-v)) for v in x],
                               rtol=1e-15)


@pytest.mark.parametrize("fn, x, want", [
    ("erf", [-np.inf, 0.0, np.inf, np.nan], [-1.0, 0.0, 1.0, np.nan]),
    ("erfc", [-np.inf, 10.0, 26.0, 28.0, np.inf, np.nan],
     [2.0, 2.0884875837625447e-45, 5.663192408856143e-296, 0.0, 0.0, np.nan]),
    ("gelu", [-np.inf, -40.0, 0.0, np.inf, np.nan], [0.0, 0.0, 0.0, np.inf, np.nan]),
    ("gelu_tanh", [-np.inf, -40.0, 0.0, np.inf, np.nan], [0.0, 0.0, 0.0, np.inf, np.nan]),
    ("softsign", [-np.inf, 0.0, np.inf, np.nan], [-1.0, 0.0, 1.0, np.nan]),
    ("logsigmoid", [-np.inf, -800.0, 800.0, np.inf, np.nan], [-np.inf, -800.0, 0.0, 0.0, np.nan]),
    ("lgamma", [-np.inf, -2.0, 0.0, 0.5, 1.0, 2.0, np.inf, np.nan],
     [np.inf, np.inf, np.inf, math.log(math.sqrt(math.pi)), 0.0, 0.0, np.inf, np.nan]),
    ("digamma", [-np.inf, -3.0, 0.0, 1.0, np.inf, np.nan],
     [np.nan, np.nan, -np.inf, -0.5772156649015329, np.inf, np.nan]),
    ("trigamma", [-np.inf, -3.0, 0.0, 1.0, np.inf, np.nan],
     [np.nan, np.inf, np.inf, math.pi**2 / 6, 0.0, np.nan]),
    ("polygamma2", [-3.0, 0.0, 1.0, np.inf], [np.nan, -np.inf, -2.4041138063191885, 0.0]),
], ids=lambda v: v if isinstance(v, str) else "")
def test_limits_poles_and_nan_without_a_warning(fn: str, x: list[float],
                                                 want: list[float]) -> None:
    """As scipy: a pole whose sides agree is inf, one whose sides differ (digamma's, an even
    order's) nan; nan stays nan; the limits at +-inf are exact. No floating-point
    warning from NumPy (but underflows), even where NumPy raises on one."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = values(fn, np.array(x))
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0, equal_nan=True)


# --- other array libraries, float32 -----------------------------------------------------


@pytest.mark.parametrize("fn", NEW + ["log1p", "expm1"])
def test_torch_and_jax_arrays_evaluate_to_the_same_numbers(fn: str, jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    p = tc.compile(f"y[i] = {fn}(x[i])")
    x = np.abs(points(fn)) if fn == "log1p" else points(fn)
    want = p(x=x)
    on_torch = p.evaluate(x=torch.tensor(x))
    on_jax = p.evaluate(x=jax64.numpy.asarray(x))
    assert isinstance(on_torch, torch.Tensor) and isinstance(on_jax, jax64.Array)
    np.testing.assert_allclose(on_torch.numpy(), want, rtol=4e-15)
    np.testing.assert_allclose(np.asarray(on_jax), want, rtol=4e-15)


def test_torch_and_jax_use_their_own_routines_where_as_accurate(jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    x = np.linspace(-5.0, 5.0, 101)
    for fn, own in [("erf", torch.special.erf), ("erfc", torch.special.erfc),
                    ("lgamma", torch.special.gammaln)]:
        assert torch.equal(values_on(fn, torch.tensor(x)), own(torch.tensor(x)))
    erf = jax64.scipy.special.erf
    np.testing.assert_array_equal(np.asarray(values_on("erf", jax64.numpy.asarray(x))),
                                  np.asarray(erf(jax64.numpy.asarray(x))))


def values_on(fn: str, x: Any) -> Any:
    return tc.compile(f"y[i] = {fn}(x[i])").evaluate(x=x)


def test_log1p_on_jax_within_2_ulp(jax64: Any) -> None:
    """JAX's own log1p is 120 ulp off in float64 on [-0.5, -0.1]; the back end runs Kahan's
    formula there instead."""
    x = np.concatenate([RNG.uniform(-0.5, -0.1, 200), RNG.uniform(-1e-3, 1e-3, 50),
                        [-1.0, 0.0, np.inf]])
    got = np.asarray(values_on("log1p", jax64.numpy.asarray(x)))
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf
        want = np.log1p(x)
    finite = np.isfinite(want)
    assert ulps(got[finite], want[finite]) <= 2
    np.testing.assert_array_equal(got[~finite], want[~finite])


def test_gelu_on_torch_keeps_its_digits_for_negative_x() -> None:
    """torch's own gelu, x (1 + erf(x/√2)) / 2, is 0 from x = -8 on; ours is x Φ(x)."""
    torch = pytest.importorskip("torch")
    x = np.array([-12.0, -9.0, -3.0, 0.5])
    np.testing.assert_allclose(values_on("gelu", torch.tensor(x)).numpy(), values("gelu", x),
                               rtol=1e-14)
    assert values("gelu", x)[0] == pytest.approx(-12.0 * 0.5 * math.erfc(12 / math.sqrt(2)))


@pytest.mark.parametrize("fn", NEW + ["log1p", "expm1"])
def test_float32_stays_float32(fn: str, jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    x = np.abs(points(fn)) if fn == "log1p" else points(fn)
    want = values(fn, x)
    x32 = x.astype(np.float32)
    for got in (values(fn, x32), values_on(fn, torch.tensor(x32)).numpy(),
                np.asarray(values_on(fn, jax64.numpy.asarray(x32)))):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_dask_arrays() -> None:
    da = pytest.importorskip("dask.array")
    x = np.concatenate([GAMMA_X, ANY_X])
    p = tc.compile("y[i] = erfc(x[i]) + gelu(x[i]) + lgamma(x[i]) + digamma(x[i]) "
                   "+ trigamma(x[i]) + softsign(x[i]) + logsigmoid(x[i])")
    got = p.evaluate(x=da.from_array(x, chunks=5))
    np.testing.assert_allclose(np.asarray(got.compute()), p(x=x), rtol=1e-15)


# --- derivatives against JAX and central differences --------------------------------------


def jax_function(jax: Any, fn: str) -> Callable[[Any], Any]:
    jnp, sp = jax.numpy, jax.scipy.special
    return {"erf": sp.erf, "erfc": sp.erfc, "gelu": lambda v: jax.nn.gelu(v, approximate=False),
            "gelu_tanh": lambda v: jax.nn.gelu(v, approximate=True),
            "softsign": jax.nn.soft_sign, "logsigmoid": jax.nn.log_sigmoid,
            "lgamma": sp.gammaln, "digamma": sp.digamma,
            "trigamma": lambda v: sp.polygamma(1, v), "polygamma2": lambda v: sp.polygamma(2, v),
            "log1p": jnp.log1p, "expm1": jnp.expm1}[fn]


def jax_derivatives(jax: Any, fn: str, x: np.ndarray, order: int) -> np.ndarray:
    f = jax_function(jax, fn)
    for _ in range(order):
        f = jax.grad(f)
    return np.asarray(jax.vmap(f)(jax.numpy.asarray(x)))


def diagonal(a: np.ndarray) -> np.ndarray:
    return np.einsum("i" * a.ndim + "->i", a)


@pytest.mark.parametrize("fn", NEW + ["log1p", "expm1"])
def test_first_and_second_derivatives(fn: str, jax64: Any) -> None:
    """The gradient and the Hessian against JAX's (where JAX's functions are right: x > 0
    for the gamma family) and against central differences of the value and the gradient
    (everywhere)."""
    x = np.abs(points(fn)) if fn == "log1p" else points(fn)
    program = f"s = {fn}(x[i])"
    gradient = tc.grad(program, "x")
    hessian = tc.derive(gradient, "x")
    g, h = gradient(x=x), hessian(x=x)
    assert np.count_nonzero(h - np.diag(diagonal(h))) == 0
    trusted = x > 0 if fn in GAMMAS else np.ones_like(x, dtype=bool)
    np.testing.assert_allclose(g[trusted], jax_derivatives(jax64, fn, x[trusted], 1),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(diagonal(h)[trusted], jax_derivatives(jax64, fn, x[trusted], 2),
                               rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(g, numeric_jacobian(program, "x", {"x": x}), rtol=1e-7,
                               atol=1e-8)
    np.testing.assert_allclose(h, numeric_jacobian(gradient, "x", {"x": x}), rtol=1e-6,
                               atol=1e-7)
    assert np.abs(diagonal(h)).max() > 0.05  # a second derivative that does not vanish


@pytest.mark.parametrize("fn", ["lgamma", "digamma"])
def test_third_derivative(fn: str, jax64: Any) -> None:
    x = GAMMA_X
    hessian = tc.derive(tc.grad(f"s = {fn}(x[i])", "x"), "x")
    third = tc.derive(hessian, "x")
    t = third(x=x)
    positive = x > 0
    np.testing.assert_allclose(diagonal(t)[positive], jax_derivatives(jax64, fn, x[positive], 3),
                               rtol=1e-11)
    np.testing.assert_allclose(t, numeric_jacobian(hessian, "x", {"x": x}), rtol=1e-6,
                               atol=1e-6)
    assert ("polygamma3" if fn == "digamma" else "polygamma2") in str(third)


def test_inside_a_contraction_against_jax(jax64: Any) -> None:
    """The chain rule through each function of a matrix-vector product, gradient and
    Hessian, against JAX's."""
    jnp = jax64.numpy
    text = ("u[i] = A[i,j] x[j]\nw[i] = 1.5 + u[i] u[i]\n"
            "s = v[i] (erf(u[i]) + gelu(u[i]) + gelu_tanh(u[i]) + softsign(u[i]) "
            "+ logsigmoid(u[i]) + lgamma(w[i]) + digamma(w[i]) + trigamma(w[i]))")
    A, x, v = RNG.normal(size=(3, 4)), RNG.normal(size=4), RNG.normal(size=3)
    sp = jax64.scipy.special

    def f(x: Any) -> Any:
        u = jnp.asarray(A) @ x
        w = 1.5 + u * u
        return jnp.asarray(v) @ (sp.erf(u) + jax64.nn.gelu(u, approximate=False)
                                 + jax64.nn.gelu(u, approximate=True) + jax64.nn.soft_sign(u)
                                 + jax64.nn.log_sigmoid(u) + sp.gammaln(w) + sp.digamma(w)
                                 + sp.polygamma(1, w))

    gradient = tc.grad(text, "x")
    np.testing.assert_allclose(gradient(A=A, x=x, v=v), jax64.grad(f)(jnp.asarray(x)),
                               rtol=1e-12)
    np.testing.assert_allclose(tc.derive(gradient, "x")(A=A, x=x, v=v),
                               jax64.hessian(f)(jnp.asarray(x)), rtol=1e-11, atol=1e-12)


def test_second_derivatives_through_the_torch_bridge(jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    f = tc.to_torch("s = gelu(x[i]) + lgamma(x[i]) + erfc(x[i])")
    x = np.array([0.4, 1.7, 3.1])
    h = torch.func.hessian(lambda t: f(x=t))(torch.tensor(x)).numpy()
    sp = jax64.scipy.special
    want = jax64.hessian(lambda t: (jax64.nn.gelu(t, approximate=False) + sp.gammaln(t)
                                    + sp.erfc(t)).sum())(jax64.numpy.asarray(x))
    np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-14)


# --- printing, export, LaTeX --------------------------------------------------------------


@pytest.mark.parametrize("fn", NEW)
def test_printed_derivatives_parse_to_the_same_numbers(fn: str) -> None:
    x = points(fn)
    first = tc.derive(f"y[i] = {fn}(x[i])", "x")
    second = tc.derive(first, "x")
    for d in (first, second):
        again = tc.compile(str(d))
        np.testing.assert_allclose(again(x=x), d(x=x), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("fn", NEW)
def test_exported_code_agrees(fn: str) -> None:
    x = points(fn)
    for program in (tc.compile(f"y[i] = {fn}(x[i])"), tc.grad(f"s = {fn}(x[i])", "x"),
                    tc.derive(tc.grad(f"s = {fn}(x[i])", "x"), "x")):
        space: dict[str, Any] = {}
        exec(compile(program.to_python("exported"), "<exported>", "exec"), space)
        np.testing.assert_allclose(space["exported"](x=x), program(x=x), rtol=1e-14)


def test_exported_code_runs_with_only_numpy() -> None:
    """scipy, torch, JAX and tensorcalc blocked: the copied kernels need none of them."""
    program = tc.compile("y[i] = erf(x[i]) + erfc(x[i]) + gelu(x[i]) + gelu_tanh(x[i]) "
                         "+ softsign(x[i]) + logsigmoid(x[i]) + lgamma(x[i]) + digamma(x[i]) "
                         "+ trigamma(x[i]) + polygamma4(x[i])")
    x = GAMMA_X
    code = program.to_python("exported")
    assert "def _polygamma4(x, xp, n=4, c=" in code and "def _erfc(x, xp, kind=1," in code
    future = "from __future__ import annotations\n"
    script = (f"{future}import sys\n"
              "for name in ('scipy', 'torch', 'jax', 'tensorcalc', 'mpmath'):\n"
              "    sys.modules[name] = None\n"
              f"{code.replace(future, '')}\n"
              f"print(repr(exported(x=np.array({x.tolist()!r})).tolist()))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(eval(run.stdout), program(x=x), rtol=1e-14)


@pytest.mark.parametrize("fn, latex", [
    ("erf", "\\operatorname{erf}\\left(x_{i}\\right)"),
    ("erfc", "\\operatorname{erfc}\\left(x_{i}\\right)"),
    ("gelu", "\\operatorname{gelu}\\left(x_{i}\\right)"),
    ("gelu_tanh", "\\operatorname{gelu}_{\\tanh}\\left(x_{i}\\right)"),
    ("softsign", "\\operatorname{softsign}\\left(x_{i}\\right)"),
    ("logsigmoid", "\\log\\sigma\\left(x_{i}\\right)"),
    ("lgamma", "\\ln\\left|\\Gamma\\left(x_{i}\\right)\\right|"),
    ("digamma", "\\psi\\left(x_{i}\\right)"),
    ("trigamma", "\\psi^{(1)}\\left(x_{i}\\right)"),
    ("polygamma12", "\\psi^{(12)}\\left(x_{i}\\right)"),
])
def test_latex(fn: str, latex: str) -> None:
    assert latex in tc.compile(f"y[i] = {fn}(x[i])").latex()


# --- the polygamma family -----------------------------------------------------------------


def test_the_family_is_found_but_not_listed() -> None:
    assert "polygamma7" in FUNCTIONS and FUNCTIONS["polygamma7"] is FUNCTIONS["polygamma7"]
    assert FUNCTIONS.get("polygamma7") is FUNCTIONS["polygamma7"]
    assert FUNCTIONS["polygamma7"].name == "polygamma7"
    assert not any(name.startswith("polygamma") for name in FUNCTIONS)
    for name in ("polygamma1", "polygamma0", "polygamma07", f"polygamma{MAX_POLYGAMMA + 1}",
                 "polygamma٣"):
        assert name not in FUNCTIONS and FUNCTIONS.get(name) is None
        with pytest.raises(KeyError):
            FUNCTIONS[name]


@pytest.mark.parametrize("name", ["polygamma1", "polygamma07", f"polygamma{MAX_POLYGAMMA + 1}"])
def test_a_name_outside_the_family_is_an_unknown_function(name: str) -> None:
    with pytest.raises(tc.ProgramError, match=f"unknown function {name}.*trigamma, .*"
                                              f"polygammaN \\(N from 2 to {MAX_POLYGAMMA}\\)"):
        tc.compile(f"y[i] = {name}(x[i])")


def test_the_derivative_past_the_highest_order_is_refused() -> None:
    assert "polygamma100" in str(tc.derive("y[i] = polygamma99(x[i])", "x"))
    with pytest.raises(tc.DerivativeError, match="polygamma101, past the highest order, 100"):
        tc.derive(f"y[i] = polygamma{MAX_POLYGAMMA}(x[i])", "x")


def test_the_cli_help_lists_the_family(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"polygammaN(e) {' '.join(FUNCTIONS.families[0].doc.split())}" in text
    for fn in NEW[:-1]:  # polygamma2 is the family's
        assert f"{fn}(e) " in text

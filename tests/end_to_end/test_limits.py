"""Limits, memory and numerics (docs/errors.md; docs/arrays.md, "Execution", "Numerics").

* Deeply nested and very long programs are either evaluated correctly or refused with a
  ``TensorCalcError``: never a ``RecursionError``, never a crash of the interpreter (each
  deep case also runs in a fresh subprocess, so a segfault shows up as a failed test).
* A dense value larger than the memory limit is refused before it is allocated, with a
  message that points at ``compact=True`` and ``vjp``; ``tc.set_memory_limit`` moves the
  limit (every test that changes it restores it).
* Numerics behave like NumPy: ``sigmoid``/``softplus`` never overflow, singular points give
  ``inf``/``nan`` instead of exceptions, float32 stays float32.

Nothing here asserts on timing; a generous per-test alarm only keeps a runaway case from
hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
from support import ROOT

import tensorcalc as tc

TEST_TIMEOUT_S = 120  # generous: every test here takes a few seconds at most


pytestmark = pytest.mark.usefixtures("runaway_alarm")  # conftest: TEST_TIMEOUT_S


@pytest.fixture
def memory_limit():
    """Yields ``tc.set_memory_limit``; the limit in force before the test is put back."""
    old = tc.set_memory_limit(4 * 2**30)
    tc.set_memory_limit(old)
    try:
        yield tc.set_memory_limit
    finally:
        tc.set_memory_limit(old)


def _python(code: str, timeout: float = 90, env_extra: dict[str, str] | None = None):
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


# --- deep nesting --------------------------------------------------------------------

DEPTH = 5000
X_DEEP = [0.25, -0.5, 1.5]


def _deep_source(kind: str) -> str:
    if kind == "parens":
        return "y[i] = " + "(" * DEPTH + "x[i]" + ")" * DEPTH
    if kind == "chain":
        return "y[i] = " + "(" * DEPTH + "x[i]" + " + 1)" * DEPTH
    if kind == "calls":
        return "y[i] = " + "exp(" * DEPTH + "x[i]" + ")" * DEPTH
    raise AssertionError(kind)


def _deep_expected(kind: str) -> np.ndarray:
    x = np.array(X_DEEP)
    if kind == "parens":
        return x
    if kind == "chain":
        return x + DEPTH
    with np.errstate(all="ignore"):
        for _ in range(DEPTH):
            x = np.exp(x)
    return x  # inf: exp overflows after a few levels


DEEP_KINDS = ["parens", "chain", "calls"]

_DEEP_CHILD = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import tensorcalc as tc
    src = {src!r}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = tc.evaluate(src, x=np.array({x!r}))
    except tc.TensorCalcError as err:
        print("TensorCalcError:", type(err).__name__, str(err).splitlines()[0][:200])
    else:
        print("VALUE " + json.dumps(np.asarray(value, dtype=float).tolist()))
""")


@pytest.mark.parametrize("kind", DEEP_KINDS)
def test_deep_nesting_in_a_subprocess_never_crashes(kind: str) -> None:
    """A hard crash (segfault, abort) of the interpreter would show as a non-zero exit."""
    ran = _python(_DEEP_CHILD.format(src=_deep_source(kind), x=X_DEEP))
    assert ran.returncode == 0, (ran.returncode, ran.stderr[-2000:])
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    out = ran.stdout.strip()
    assert out.startswith(("VALUE ", "TensorCalcError")), (out[-500:], ran.stderr[-2000:])
    if out.startswith("VALUE "):
        np.testing.assert_allclose(np.array(json.loads(out[6:])), _deep_expected(kind),
                                   rtol=1e-12)


@pytest.mark.parametrize("kind", DEEP_KINDS)
def test_deep_nesting_in_process_evaluates_or_refuses(kind: str) -> None:
    src = _deep_source(kind)
    x = np.array(X_DEEP)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = tc.evaluate(src, x=x)
    except tc.TensorCalcError:
        return  # refused cleanly: allowed
    except RecursionError as err:  # pragma: no cover - the failure this test is about
        pytest.fail(f"RecursionError escaped instead of a TensorCalcError: {err}")
    np.testing.assert_allclose(value, _deep_expected(kind), rtol=1e-12)


@pytest.mark.parametrize("kind", ["parens", "chain"])
def test_deep_program_derives_and_prints_or_refuses(kind: str) -> None:
    """What compiles at depth 5000 can also be derived and printed (or is refused cleanly)."""
    src = _deep_source(kind)
    x = np.array(X_DEEP)
    try:
        p = tc.compile(src)
        text = str(p)
        J = tc.derive(p, "x")(x=x)
        g = tc.grad("s = " + src.split("=", 1)[1].replace("y[i]", "y"), "x")(x=x)
    except tc.TensorCalcError:
        return
    except RecursionError as err:  # pragma: no cover
        pytest.fail(f"RecursionError escaped instead of a TensorCalcError: {err}")
    np.testing.assert_allclose(J, np.eye(3))
    np.testing.assert_allclose(g, np.ones(3))
    # What it prints is a program again, with the same value.
    np.testing.assert_allclose(tc.evaluate(text, x=x), _deep_expected(kind), rtol=1e-12)


def test_derivative_of_moderately_nested_calls_finishes() -> None:
    """tanh(tanh(...(x))) 30 deep: the derivative is a product of 30 factors (its printed
    form is a few KB); deriving it should take well under a second, the timeout is 10 s.
    (Regression: derive.reuse_forward once took time exponential in the depth.)"""
    depth = 30
    code = textwrap.dedent(f"""
        import numpy as np, tensorcalc as tc
        src = "y[i] = " + "tanh(" * {depth} + "x[i]" + ")" * {depth}
        x = np.array([0.3, -0.7, 1.1])
        J = tc.derive(src, "x")(x=x)
        a, d = x.copy(), np.ones_like(x)
        for _ in range({depth}):
            a = np.tanh(a)
            d = d * (1 - a * a)
        np.testing.assert_allclose(J, np.diag(d), rtol=1e-10, atol=1e-300)
        print("ok")
    """)
    try:
        ran = _python(code, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("deriving tanh nested 30 deep did not finish within 10 s")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == "ok"


# --- long programs -------------------------------------------------------------------

N_TERMS = 3000
CHAIN = 400


def test_sum_of_3000_terms_evaluates_correctly() -> None:
    src = "y[i] = " + " + ".join(f"{k} x[i]" for k in range(1, N_TERMS + 1))
    x = np.linspace(-1.0, 2.0, 7)
    np.testing.assert_allclose(tc.evaluate(src, x=x), x * (N_TERMS * (N_TERMS + 1) / 2),
                               rtol=1e-12)


def test_gradient_of_a_3000_term_sum() -> None:
    src = "s = " + " + ".join(f"x[i] x[i] * {k}" for k in range(1, N_TERMS + 1))
    x = np.linspace(-1.0, 2.0, 7)
    total = N_TERMS * (N_TERMS + 1) / 2
    np.testing.assert_allclose(tc.evaluate(src, x=x), total * np.dot(x, x), rtol=1e-12)
    np.testing.assert_allclose(tc.grad(src, "x")(x=x), 2 * total * x, rtol=1e-12)


def _tanh_chain_source() -> str:
    lines = ["a1[i] = tanh(x[i])"]
    lines += [f"a{k}[i] = tanh(a{k - 1}[i])" for k in range(2, CHAIN + 1)]
    lines.append(f"s = a{CHAIN}[i]")
    return "\n".join(lines)


def _tanh_chain_reference(x: np.ndarray) -> tuple[float, np.ndarray]:
    a, d = x.copy(), np.ones_like(x)
    for _ in range(CHAIN):
        a = np.tanh(a)
        d = d * (1.0 - a * a)  # chain rule, one link at a time
    return float(a.sum()), d


def test_400_statement_chain_and_its_gradient() -> None:
    src = _tanh_chain_source()
    x = np.array([-1.0, 0.05, 0.4, 2.0, 3.0])
    value, grad = _tanh_chain_reference(x)
    # 400 statements are well inside the limits (no RecursionError, no refusal)
    got = tc.evaluate(src, x=x)
    g = tc.grad(src, "x")(x=x)
    np.testing.assert_allclose(got, value, rtol=1e-12)
    np.testing.assert_allclose(g, grad, rtol=1e-10)


# --- the memory limit ----------------------------------------------------------------

SIGMOID = "y[i] = sigmoid(x[i])"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def test_dense_jacobian_over_the_limit_is_refused_before_allocation(memory_limit) -> None:
    n = 200_000  # the dense Jacobian is n*n*8 bytes = 298 GiB
    x = np.random.default_rng(1).standard_normal(n)
    d = tc.derive(SIGMOID, "x")
    tracemalloc.start()
    try:
        with pytest.raises(tc.MemoryLimitError) as info:
            d(x=x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB while refusing"
    message = str(info.value)
    assert "compact=True" in message
    assert "vjp" in message
    assert isinstance(info.value, tc.TensorCalcError)


def test_the_same_jacobian_compactly_and_by_vjp(memory_limit) -> None:
    n = 200_000
    x = np.random.default_rng(2).standard_normal(n)
    s = _sigmoid(x)
    c = tc.derive(SIGMOID, "x").evaluate(compact=True, x=x)
    assert c.shape == (n, n)
    assert c.core.shape == (n,)
    np.testing.assert_allclose(c.core, s * (1 - s), rtol=1e-12)
    G = np.random.default_rng(3).standard_normal(n)
    v = tc.vjp(SIGMOID, "x", cotangent="G")(x=x, G=G)
    np.testing.assert_allclose(v, G * s * (1 - s), rtol=1e-12)


def test_raising_the_limit_lets_a_dense_value_through(memory_limit) -> None:
    n = 1000  # 8 MB dense
    x = np.linspace(-3.0, 3.0, n)
    d = tc.derive(SIGMOID, "x")
    memory_limit(1 * 2**20)
    with pytest.raises(tc.MemoryLimitError):
        d(x=x)
    old = memory_limit(16 * 2**20)
    assert old == 1 * 2**20
    J = d(x=x)
    s = _sigmoid(x)
    np.testing.assert_allclose(J, np.diag(s * (1 - s)), rtol=1e-12, atol=0)


def test_lowering_the_limit_refuses_a_small_value(memory_limit) -> None:
    x = np.linspace(-1.0, 1.0, 20)  # dense Jacobian 3200 bytes
    d = tc.derive(SIGMOID, "x")
    assert d(x=x).shape == (20, 20)
    memory_limit(1000)
    with pytest.raises(tc.MemoryLimitError):
        d(x=x)
    # the compact value (20 numbers) is still fine
    s = _sigmoid(x)
    np.testing.assert_allclose(d.evaluate(compact=True, x=x).core, s * (1 - s), rtol=1e-12)


def test_set_memory_limit_returns_the_previous_limit(memory_limit) -> None:
    first = memory_limit(12345)
    assert memory_limit(67890) == 12345
    assert memory_limit(first) == 67890


def test_the_limit_comes_from_the_environment() -> None:
    code = textwrap.dedent("""
        import numpy as np, tensorcalc as tc
        assert tc.set_memory_limit(1000) == 1000
        try:
            tc.derive("y[i] = sigmoid(x[i])", "x")(x=np.ones(20))
        except tc.MemoryLimitError:
            print("refused")
    """)
    ran = _python(code, env_extra={"TENSORCALC_MEMORY_LIMIT": "1000"})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == "refused"


def test_default_limit_is_4_gib_without_the_environment_variable() -> None:
    code = "import tensorcalc as tc; print(tc.set_memory_limit(1))"
    env = {k: v for k, v in os.environ.items() if k != "TENSORCALC_MEMORY_LIMIT"}
    env["PYTHONPATH"] = str(ROOT)
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert int(ran.stdout.strip()) == 4 * 2**30


LSQ = "L = (X[n,d] W[d,o] - T[n,o])^2"


def test_dense_hessian_over_the_limit_is_refused(memory_limit) -> None:
    rng = np.random.default_rng(4)
    d, o = 300, 300  # the dense Hessian is (300,300,300,300) float64 = 60 GiB
    X, W, T = rng.normal(size=(10, d)), rng.normal(size=(d, o)), rng.normal(size=(10, o))
    H = tc.hessian(LSQ, "W")
    tracemalloc.start()
    try:
        with pytest.raises(tc.MemoryLimitError) as info:
            H(X=X, W=W, T=T)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20
    assert "compact=True" in str(info.value)
    c = H.evaluate(compact=True, X=X, W=W, T=T)
    assert c.shape == (d, o, d, o)
    assert c.core.size <= d * d  # 2 X^T X, with the delta over the o axes kept as structure
    np.testing.assert_allclose(np.reshape(c.core, (d, d)), 2 * X.T @ X, rtol=1e-10)


def test_small_dense_hessian_refused_under_a_low_limit(memory_limit) -> None:
    rng = np.random.default_rng(5)
    X, W, T = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    H = tc.hessian(LSQ, "W")
    expected = 2 * np.einsum("kp,kr,qs->pqrs", X, X, np.eye(5))
    np.testing.assert_allclose(H(X=X, W=W, T=T), expected, rtol=1e-12)
    memory_limit(1000)  # the Hessian is 4*5*4*5*8 = 3200 bytes
    with pytest.raises(tc.MemoryLimitError):
        H(X=X, W=W, T=T)


def test_an_intermediate_statement_over_the_limit_is_refused(memory_limit) -> None:
    x = np.ones(20)
    memory_limit(1000)
    with pytest.raises(tc.MemoryLimitError):
        tc.evaluate("P[i,j] = x[i] x[j]; s = P[i,j]", x=x)  # P is 3200 bytes


def test_a_dense_temporary_inside_a_statement_is_refused(memory_limit) -> None:
    """`s = exp(x[i] x[j])` sums exp over an n-by-n temporary; under a limit smaller than
    that temporary it should be refused like any other dense value. (Regression: only
    whole statements were once checked.)"""
    x = np.ones(20)
    memory_limit(1000)  # the n*n temporary is 3200 bytes
    with pytest.raises(tc.MemoryLimitError):
        tc.evaluate("s = exp(x[i] x[j])", x=x)


# --- numerics ------------------------------------------------------------------------

BIG = np.array([-1e5, -800.0, -30.0, 0.0, 30.0, 800.0, 1e5])


def _sigmoid_ref(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def _softplus_ref(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_and_softplus_do_not_overflow(dtype) -> None:
    x = BIG.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # docs/functions.md: stable for any x, so no warning
        s = tc.evaluate("y[i] = sigmoid(x[i])", x=x)
        sp = tc.evaluate("y[i] = softplus(x[i])", x=x)
        ds = tc.derive("y[i] = sigmoid(x[i])", "x").evaluate(compact=True, x=x).core
        dsp = tc.grad("L = sum[i](softplus(x[i]))", "x")(x=x)
        hsp = tc.hessian("L = sum[i](softplus(x[i]))", "x")(x=x)
    for v in (s, sp, ds, dsp, hsp):
        assert np.all(np.isfinite(v))
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    # s (1 - s) in the tails is below the dtype's resolution next to 1: absolute tolerance
    atol = float(np.finfo(dtype).eps)
    ref_s = _sigmoid_ref(BIG)
    np.testing.assert_allclose(s, ref_s, rtol=rtol, atol=0)
    np.testing.assert_allclose(sp, _softplus_ref(BIG), rtol=rtol, atol=0)
    np.testing.assert_allclose(ds, ref_s * (1 - ref_s), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dsp, ref_s, rtol=rtol, atol=0)
    np.testing.assert_allclose(np.diag(hsp), ref_s * (1 - ref_s), rtol=rtol, atol=atol)
    assert s[0] == 0 and s[-1] == 1 and s[3] == 0.5
    assert sp[0] == 0 and sp[-1] == 1e5 and sp[-2] == 800


SINGULAR = np.array([0.0, -1.0, 4.0])
# program, its elementwise derivative as NumPy would compute it by the textbook formula
SINGULAR_CASES = [
    ("y[i] = log(x[i])", np.log, lambda x: 1 / x),
    ("y[i] = sqrt(x[i])", np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    ("y[i] = 1 / x[i]", lambda x: 1 / x, lambda x: -1 / x**2),
    ("y[i] = x[i]^-1", lambda x: 1 / x, lambda x: -1 / x**2),
    ("y[i] = x[i]^0.5", np.sqrt, lambda x: 0.5 / np.sqrt(x)),
]


@pytest.mark.parametrize("src, value, slope", SINGULAR_CASES,
                         ids=[c[0] for c in SINGULAR_CASES])
def test_singular_points_give_inf_or_nan_like_numpy(src, value, slope) -> None:
    """At 0 (and for log/sqrt, at -1) the values and derivatives are what NumPy's
    formulas give: inf or nan, never an exception. RuntimeWarnings are allowed."""
    x = SINGULAR
    with np.errstate(all="ignore"):
        want_value, want_slope = value(x), slope(x)
    assert not np.all(np.isfinite(want_slope))  # the case is really singular
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # allowed (like NumPy); see report
        got_value = tc.evaluate(src, x=x)
        J = tc.derive(src, "x")(x=x)
        compact = tc.derive(src, "x").evaluate(compact=True, x=x).core
        g = tc.grad("s = sum[i](" + src.split("=", 1)[1] + ")", "x")(x=x)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    np.testing.assert_allclose(np.diag(J), want_slope, rtol=1e-12)
    np.testing.assert_array_equal(J[~np.eye(3, dtype=bool)], 0)
    np.testing.assert_allclose(compact, want_slope, rtol=1e-12)
    np.testing.assert_allclose(g, want_slope, rtol=1e-12)


def test_log_of_a_negative_is_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = tc.evaluate("y[i] = log(x[i])", x=np.array([-1.0, -1e-300, 1.0]))
        s = tc.evaluate("s = log(x[i] x[i] - 5)", x=np.array([1.0, 1.0]))
    assert np.isnan(y[0]) and np.isnan(y[1]) and y[2] == 0
    assert np.isnan(s)


def test_nan_and_inf_propagate() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = tc.evaluate("y[i] = 2 x[i] + 1", x=x)
        s = tc.evaluate("s = x[i] x[i]", x=x)
        g = tc.grad("s = sum[i](exp(x[i]))", "x")(x=x)
    np.testing.assert_array_equal(y, [np.nan, np.inf, -np.inf, 3.0])
    assert np.isnan(s)
    np.testing.assert_array_equal(g, [np.nan, np.inf, 0.0, np.e])


# --- dtypes --------------------------------------------------------------------------

NET = "y[i] = sigmoid(W[i,j] x[j] + b[i])"
LOSS = "L = sum[i](softplus(W[i,j] x[j] + b[i]) * c) + x[j] x[j]"


def _net_inputs(dtype):
    rng = np.random.default_rng(6)
    return {"W": rng.normal(size=(3, 4)).astype(dtype), "x": rng.normal(size=4).astype(dtype),
            "b": rng.normal(size=3).astype(dtype)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_evaluate_and_derivatives(dtype) -> None:
    a = _net_inputs(dtype)
    la = dict(a, c=dtype(2.0))
    values = {
        "evaluate": tc.evaluate(NET, **a),
        "call": tc.compile(NET)(**a),
        "derive x": tc.derive(NET, "x")(**a),
        "derive W": tc.derive(NET, "W")(**a),
        "compact core": tc.derive(NET, "W").evaluate(compact=True, **a).core,
        "compact dense": tc.derive(NET, "W").evaluate(compact=True, **a).toarray(),
        "compact jac diag": tc.derive("y[i] = sigmoid(x[i])", "x")
        .evaluate(compact=True, x=a["x"]).toarray(),
        "grad": tc.grad(LOSS, "W")(**la),
        "hessian": tc.hessian(LOSS, "x")(**la),
        "vjp": tc.vjp(NET, "x", cotangent="G")(**a, G=np.ones(3, dtype)),
        "jvp": tc.jvp(NET, "W", tangent="V")(**a, V=np.ones((3, 4), dtype)),
        "loss": tc.evaluate(LOSS, **la),
    }
    for what, v in values.items():
        assert np.asarray(v).dtype == dtype, (what, np.asarray(v).dtype)


def test_python_float_scalar_keeps_float32() -> None:
    a = _net_inputs(np.float32)
    assert tc.evaluate(LOSS, **a, c=2.0).dtype == np.float32
    assert tc.grad(LOSS, "W")(**a, c=2.0).dtype == np.float32
    assert tc.hessian(LOSS, "x")(**a, c=2.0).dtype == np.float32
    assert tc.evaluate("y[i] = x[i]^p", x=a["x"], p=3.0).dtype == np.float32
    assert tc.evaluate("y[i] = x[i] + 1e-3", x=a["x"]).dtype == np.float32


def test_float32_values_agree_with_float64() -> None:
    a32 = _net_inputs(np.float32)
    a64 = {k: v.astype(np.float32).astype(np.float64) for k, v in a32.items()}
    np.testing.assert_allclose(tc.grad(LOSS, "W")(**a32, c=2.0),
                               tc.grad(LOSS, "W")(**a64, c=2.0), rtol=1e-5, atol=1e-6)

"""One plan, two emitters: every function runs, differentiates and exports alike.

The exported code is executed here with ``exec`` of source tensorcalc generated itself
(never user text), in a fresh namespace that holds no tensorcalc name.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.ir import Sum, Term
from tensorcalc.ops.functions import FUNCTIONS, Function

# A point inside every function's domain (log, sqrt need x > 0; tan away from pi/2).
X = np.array([0.3, 0.7, 1.1, 0.05])


def run_exported(program: tc.Program, **arrays: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(program.to_python("exported"), "<exported>", "exec"), namespace)
    assert not [k for k in namespace if "tensorcalc" in k]
    return namespace["exported"](**arrays)


#: Each function written with NumPy or the math module directly, apart from its kernel.
REFERENCE: dict[str, Any] = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
    "sigmoid": lambda x: np.array([1 / (1 + math.exp(-v)) for v in x]),
    "softplus": lambda x: np.array([math.log(1 + math.exp(v)) for v in x]),
    "relu": lambda x: np.where(x > 0, x, 0.0), "abs": np.abs,
    "step": lambda x: (x > 0).astype(float), "sign": np.sign,
    "log1p": lambda x: np.array([math.log1p(v) for v in x]),
    "expm1": lambda x: np.array([math.expm1(v) for v in x]), "square": lambda x: x * x,
    "erf": lambda x: np.array([math.erf(v) for v in x]),
    "erfc": lambda x: np.array([math.erfc(v) for v in x]),
    "gelu": lambda x: np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x]),
    "gelu_tanh": lambda x: np.array(
        [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in x]),
    "softsign": lambda x: np.array([v / (1 + abs(v)) for v in x]),
    "logsigmoid": lambda x: np.array([-math.log1p(math.exp(-v)) for v in x]),
    "lgamma": lambda x: scipy_special().gammaln(x),  # math.lgamma(1.1) is 12 ulp off
    "digamma": lambda x: scipy_special().digamma(x),
    "trigamma": lambda x: scipy_special().polygamma(1, x),
}


def scipy_special() -> Any:
    """scipy.special, the reference for lgamma, digamma and trigamma (skips where not
    installed)."""
    return pytest.importorskip("scipy.special")


#: Each function of several arguments, applied to x (0.5 away from every bound and
#: compared value, so that central differences do not straddle one) and written with NumPy.
SEVERAL: dict[str, tuple[str, Any]] = {
    "where": ("where(x[i] > 0.5, x[i]^2, sin(x[i]))", lambda x: np.where(x > 0.5, x**2, np.sin(x))),
    "maximum": ("maximum(x[i], 0.5)", lambda x: np.maximum(x, 0.5)),
    "minimum": ("minimum(0.5, x[i]^2)", lambda x: np.minimum(0.5, x**2)),
    "clip": ("clip(x[i], 0.2, 0.9)", lambda x: np.clip(x, 0.2, 0.9)),
    **{name: (f"where(x[i] {op} 0.5, x[i], -x[i]^2)",
              lambda x, test=test: np.where(test(x, 0.5), x, -x**2))
       for name, op, test in [("greater", ">", np.greater), ("less", "<", np.less),
                              ("greater_equal", ">=", np.greater_equal),
                              ("less_equal", "<=", np.less_equal), ("equal", "==", np.equal),
                              ("not_equal", "!=", np.not_equal)]},
}
ONE_ARGUMENT = sorted(n for n, f in FUNCTIONS.items() if f.arity == 1)


def test_every_function_has_a_reference() -> None:
    assert sorted(REFERENCE) == ONE_ARGUMENT
    assert sorted(SEVERAL) == sorted(n for n, f in FUNCTIONS.items() if f.arity > 1)


@pytest.mark.parametrize("fn", sorted(SEVERAL))
def test_every_function_of_several_arguments_runs_differentiates_and_exports(fn: str) -> None:
    text, reference = SEVERAL[fn]
    p = tc.compile(f"y[i] = {text}")
    value = p(x=X)
    np.testing.assert_allclose(value, reference(X), rtol=1e-14)
    np.testing.assert_allclose(run_exported(p, x=X), value, rtol=1e-14)
    d = tc.derive(p, "x")
    J = d(x=X)
    np.testing.assert_allclose(J, numeric_jacobian(p, "x", {"x": X}), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(run_exported(d, x=X), J, rtol=1e-14)


@pytest.mark.parametrize("fn", ONE_ARGUMENT)
def test_every_function_runs_differentiates_and_exports(fn: str) -> None:
    p = tc.compile(f"y[i] = {fn}(x[i])")
    value = p(x=X)
    np.testing.assert_allclose(value, REFERENCE[fn](X), rtol=1e-14)
    np.testing.assert_allclose(run_exported(p, x=X), value, rtol=1e-14)
    d = tc.derive(p, "x")
    J = d(x=X)
    np.testing.assert_allclose(J, numeric_jacobian(p, "x", {"x": X}), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(run_exported(d, x=X), J, rtol=1e-14)
    g = tc.grad(f"s = {fn}(x[i]) {fn}(x[i])", "x")
    np.testing.assert_allclose(run_exported(g, x=X), g(x=X), rtol=1e-14)


def cube(x: Any, xp: Any) -> Any:
    return x * x * x


@pytest.fixture
def with_cube() -> Iterator[None]:
    """A function added by a user: its kernel, its derivative (3 x^2), one entry."""
    FUNCTIONS["cube"] = Function(
        "cube", cube, lambda a: Sum((Term(3.0, (tc_power(a, 2.0),)),)), "x^3")
    try:
        yield
    finally:
        del FUNCTIONS["cube"]


def tc_power(a: Sum, n: float) -> Any:
    from tensorcalc.ir import power

    return power(a, n)


def test_a_new_function_evaluates_differentiates_and_exports(with_cube: None) -> None:
    p = tc.compile("s = cube(x[i] w[i])")
    x, w = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    t = float(x @ w)
    assert math.isclose(float(p(x=x, w=w)), t**3)
    g = tc.grad(p, "x")
    np.testing.assert_allclose(g(x=x, w=w), 3 * t**2 * w)
    np.testing.assert_allclose(run_exported(g, x=x, w=w), 3 * t**2 * w)
    assert "def _cube(" in p.to_python()  # the user's kernel, copied into the export
    np.testing.assert_allclose(run_exported(p, x=x, w=w), t**3)


def test_a_lambda_kernel_is_refused_at_export_with_a_clear_error() -> None:
    FUNCTIONS["twice"] = Function("twice", lambda x, xp: 2 * x, lambda a: Sum(()), "2x")
    try:
        p = tc.compile("y[i] = twice(x[i])")
        np.testing.assert_allclose(p(x=X), 2 * X)
        with pytest.raises(TypeError, match="plain def"):
            p.to_python()
    finally:
        del FUNCTIONS["twice"]


@pytest.mark.parametrize("fn, expected", [
    ("relu", [0.0, 0.0, 2.0, np.inf]),
    ("step", [0.0, 0.0, 1.0, 1.0]),
    ("softplus", [0.0, np.log(2.0), 2.0 + np.log1p(np.exp(-2.0)), np.inf]),
    ("sigmoid", [0.0, 0.5, 1 / (1 + np.exp(-2.0)), 1.0]),
])
def test_functions_at_infinity(fn: str, expected: list[float]) -> None:
    """relu(-inf) is 0, not nan; step(+-inf) is 0 and 1; softplus(-inf) is 0."""
    x = np.array([-np.inf, 0.0, 2.0, np.inf])
    p = tc.compile(f"y[i] = {fn}(x[i])")
    np.testing.assert_allclose(p(x=x), expected)
    np.testing.assert_allclose(run_exported(p, x=x), expected)


def test_relu_gradient_at_infinity_is_finite() -> None:
    x = np.array([-np.inf, -1.0, 1.0, np.inf])
    g = tc.grad("s = relu(x[i])", "x")
    np.testing.assert_array_equal(g(x=x), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(run_exported(g, x=x), [0.0, 0.0, 1.0, 1.0])


def test_an_internal_failure_surfaces_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only checks about the caller's input raise InputError; our own bugs stay bugs."""

    def broken(x: Any, xp: Any) -> Any:
        raise ValueError("a bug inside a kernel")

    monkeypatch.setitem(FUNCTIONS, "exp", Function("exp", broken, FUNCTIONS["exp"].derivative,
                                                    "broken"))
    with pytest.raises(ValueError, match="a bug inside a kernel"):
        tc.evaluate("y[i] = exp(x[i])", x=X)


def test_results_never_share_memory_with_inputs() -> None:
    X2 = np.arange(6.0).reshape(2, 3)
    for src in ("Y[k,i] = X[i,k]", "Y[i,k] = X[i,k]", "Y[i] = X[i,i]"):
        x = X2[:, :2] if "i,i" in src else X2
        before = x.copy()
        Y = tc.evaluate(src, X=x)
        assert not np.may_share_memory(Y, x), src
        Y[...] = 999
        np.testing.assert_array_equal(x, before)
        p = tc.compile(src)
        Z = run_exported(p, X=x)
        assert not np.may_share_memory(Z, x), src


def test_exported_code_with_builtin_names_and_no_inputs() -> None:
    for src in ("dict[i] = list[i] + enumerate[i]; any = dict[i]", "s = 3", "s = 0 * x[i]"):
        p = tc.compile(src)
        arrays = {n: np.arange(3.0) for n in p.inputs}
        np.testing.assert_allclose(run_exported(p, **arrays), p(**arrays))


def test_exported_derivative_accepts_every_input_the_derivative_accepts() -> None:
    d = tc.derive("y[i] = x * z[i]", "x")
    z = np.array([1.0, 2.0])
    np.testing.assert_allclose(run_exported(d, x=3.0, z=z), d(x=3.0, z=z))


def test_many_indices_run_and_export() -> None:
    """More distinct indices than einsum has letters (52)."""
    n = 60
    idx = [f"i{k}" for k in range(n)]
    src = "s = " + " ".join(f"x{k}[{idx[k]}] y{k}[{idx[k]}]" for k in range(n))
    p = tc.compile(src)
    arrays = {f"{v}{k}": np.full(1, 1.0 + k % 3) for k in range(n) for v in "xy"}
    expected = math.prod((1.0 + k % 3) ** 2 for k in range(n))
    assert math.isclose(float(p(**arrays)), expected)
    assert math.isclose(float(run_exported(p, **arrays)), expected)


def test_compact_value_over_the_memory_limit_is_refused() -> None:
    old = tc.set_memory_limit(10**6)
    try:
        a = np.ones(2000)
        with pytest.raises(tc.MemoryLimitError):
            tc.compile("Y[i,j] = a[i] b[j]").evaluate(compact=True, a=a, b=a)
        with pytest.raises(tc.MemoryLimitError):  # mixed ties: the dense value, refused
            tc.derive("y[i] = x[i] + sum[j](x[j])", "x").evaluate(compact=True, x=a)
        c = tc.derive("y[i] = sigmoid(x[i])", "x").evaluate(compact=True, x=a)
        assert c.core.shape == (2000,)
        with pytest.raises(tc.MemoryLimitError):
            c.toarray()
    finally:
        tc.set_memory_limit(old)


def test_exported_code_runs_in_a_process_without_tensorcalc(tmp_path: Any) -> None:
    code = tc.grad("s = softplus(x[i] w[i])", "w").to_python("g")
    (tmp_path / "g.py").write_text(code)
    script = ("import sys; sys.modules['tensorcalc'] = None; import numpy as np, g; "
              "print(g.g(x=np.array([1.0, 2.0]), w=np.array([0.5, 0.25])).tolist())")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    s = 1 / (1 + np.exp(-1.0))
    got = [float(v) for v in done.stdout.strip().strip("[]").split(",")]
    np.testing.assert_allclose(got, [s * 1.0, s * 2.0])

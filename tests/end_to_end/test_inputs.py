"""The caller's arrays at the door: complex values, huge Python ints, mixed dtypes and
second derivatives through torch.

Complex inputs are refused instead of silently losing their imaginary part; a Python
int too large for a float64 is an ``InputError``; a Python number and arrays of mixed
dtypes beside torch / JAX / Dask arrays follow the library's own type promotion; a
``to_torch`` function differentiated twice gives the true second derivative, never zeros.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from support import ROOT

import tensorcalc as tc
from tensorcalc.tools.check import finite_differences

MATMUL = "Y[i,j] = X[i,k] W[k,j]"
LSQ = "L = (X[n,d] w[d] - y[n])^2"


@pytest.fixture()
def jax64():
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


def cli(*args):
    env = dict(os.environ)
    env.pop("TENSORCALC_MEMORY_LIMIT", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    return subprocess.run([sys.executable, "-m", "tensorcalc", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


# --- 9: complex inputs ------------------------------------------------------------

COMPLEX_NUMPY = [
    pytest.param(1 + 1j, id="python complex"),
    pytest.param(np.complex128(1 + 1j), id="numpy complex scalar"),
    pytest.param(np.array(1 + 1j), id="0-d complex array"),
    pytest.param(np.array(1 + 0j, dtype=np.complex64), id="complex64, zero imaginary"),
]


@pytest.mark.parametrize("x", COMPLEX_NUMPY)
def test_complex_scalar_is_refused(x) -> None:
    # before: sigmoid(1+1j) came back as the real 0.8044 (sigmoid of |x|)
    with pytest.raises(tc.InputError, match="input x.*complex inputs are not supported"):
        tc.evaluate("y = sigmoid(x)", x=x)


@pytest.mark.parametrize("x", [
    pytest.param(np.array([1 + 1j, 2.0]), id="complex128 array"),
    pytest.param([1.0, 2 + 0j], id="list with a complex number"),
])
def test_complex_array_is_refused_by_programs_and_derivatives(x) -> None:
    for p in (tc.compile("y[i] = sigmoid(x[i]) z[i]"),
              tc.derive("y[i] = sigmoid(x[i]) z[i]", "x")):
        with pytest.raises(tc.InputError, match="input x.*complex inputs are not supported"):
            p(x=x, z=np.ones(2))
        with pytest.raises(tc.InputError, match="input x.*complex inputs are not supported"):
            p.evaluate(compact=True, x=x, z=np.ones(2))


def test_complex_torch_and_jax_arrays_are_refused() -> None:
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    for x in (torch.tensor([1 + 1j, 2.0]), jnp.asarray([1 + 1j, 2.0])):
        with pytest.raises(tc.InputError, match="input x.*complex inputs are not supported"):
            tc.evaluate("y[i] = sigmoid(x[i])", x=x)


def test_finite_differences_refuses_complex_inputs() -> None:
    p = tc.compile("s = x[i] x[i] z")
    # before: the imaginary part was dropped and the check "agreed"
    with pytest.raises(tc.InputError, match="input x.*complex inputs are not supported"):
        finite_differences(p, "x", {"x": np.array([1 + 1j, 2.0]), "z": 1.0})
    with pytest.raises(tc.InputError, match="input z.*complex inputs are not supported"):
        finite_differences(p, "x", {"x": np.array([1.0, 2.0]), "z": 1j})
    np.testing.assert_allclose(
        finite_differences(p, "x", {"x": np.array([1.0, 2.0]), "z": 1.0}), [2, 4], rtol=1e-6)


def test_cli_check_and_eval_refuse_a_complex_file(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.array([1 + 1j, 2.0]))
    for cmd in (["check", "y[i] = sigmoid(x[i])", "--wrt", "x"],
                ["eval", "y[i] = sigmoid(x[i])"]):
        res = cli(*cmd, "-i", f"x={tmp_path / 'x.npy'}")
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert "complex inputs are not supported" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


# --- 11: to_torch's second derivative is never zeros -------------------------------


def test_to_torch_second_derivative_is_the_true_one_not_zeros() -> None:
    torch = pytest.importorskip("torch")
    f = tc.to_torch("s = sigmoid(x[i]) x[i]")
    x0 = torch.linspace(-1, 1, 4, dtype=torch.float64)

    def run(x):
        return f(x=x)

    # before: an all-zero Hessian; then a DerivativeError; now the symbolic one
    s = torch.sigmoid(x0)
    expected = torch.diag(s * (1 - s) * (2 + x0 * (1 - 2 * s)))
    torch.testing.assert_close(torch.autograd.functional.hessian(run, x0), expected)
    x = x0.clone().requires_grad_()
    (g,) = torch.autograd.grad(run(x), x, create_graph=True)
    torch.testing.assert_close(g.detach(), s * (1 - s) * x0 + s)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(h, expected.sum(0))


def test_to_torch_first_order_backward_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, w, y = (torch.tensor(rng.normal(size=s)) for s in ((5, 3), (3,), (5,)))
    ours = w.clone().requires_grad_()
    tc.to_torch(LSQ)(X=X, w=ours, y=y).backward()
    theirs = w.clone().requires_grad_()
    ((X @ theirs - y) ** 2).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


# --- 13: Python ints too large for a float64 -------------------------------------------


@pytest.mark.parametrize("x", [10**400, -(10**400), [10**400], [[1, 10**400]], [1.0, -(10**309)]],
                         ids=["int", "negative int", "list", "nested list", "list of mixed"])
def test_huge_int_is_an_input_error(x) -> None:
    src = "y = x * 2" if isinstance(x, int) else ("y[i] = x[i] * 2" if np.ndim(x[0]) == 0
                                                   else "y[i,j] = x[i,j] * 2")
    with pytest.raises(tc.InputError, match="input x.*too large for a float64"):
        tc.evaluate(src, x=x)


def test_large_int_that_fits_still_works() -> None:
    assert tc.evaluate("y = x * 2", x=10**300) == 2e300
    np.testing.assert_array_equal(tc.evaluate("y[i] = x[i] * 2", x=[10**300, 1]), [2e300, 2])


def test_huge_int_beside_torch_is_an_input_error() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(tc.InputError, match="input c.*too large for a float64"):
        tc.evaluate("y[i] = x[i] * c", x=torch.ones(3), c=10**400)


# --- 14: numbers and mixed dtypes beside torch / JAX / Dask arrays --------------------------


@pytest.mark.parametrize("c", [2.0, 2], ids=["float", "int"])
def test_python_number_beside_torch_takes_the_tensors_float_type(c) -> None:
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.float64):
        y = tc.evaluate("y[i] = x[i] * c", x=torch.ones(3, dtype=dtype), c=c)
        assert isinstance(y, torch.Tensor) and y.dtype == dtype
        torch.testing.assert_close(y, torch.full((3,), 2.0, dtype=dtype))
    g = tc.grad("L = c * (x[i] - 1)^2", "x")(x=torch.zeros(2), c=c)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, torch.full((2,), -4.0))


def test_python_number_beside_jax_takes_the_arrays_float_type(jax64) -> None:
    jnp = jax64.numpy
    y = tc.evaluate("y[i] = x[i] * c", x=jnp.ones(3, dtype=jnp.float32), c=2.0)
    assert isinstance(y, jax64.Array) and y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y), [2, 2, 2])


def test_python_number_beside_dask_takes_the_arrays_float_type() -> None:
    da = pytest.importorskip("dask.array")
    x = da.ones(4, chunks=2, dtype=np.float32)
    y = tc.evaluate("y[i] = x[i] * c", x=x, c=2.0)
    assert isinstance(y, da.Array) and y.dtype == np.float32  # before: float64
    np.testing.assert_array_equal(y.compute(), [2, 2, 2, 2])


def _mixed(torch, first, second):
    rng = np.random.default_rng(1)
    X, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    return X, W, torch.tensor(X, dtype=first), torch.tensor(W, dtype=second)


@pytest.mark.parametrize("order", ["32,64", "64,32"])
def test_torch_float32_beside_float64_promotes_to_float64(order) -> None:
    torch = pytest.importorskip("torch")
    first, second = ((torch.float32, torch.float64) if order == "32,64"
                     else (torch.float64, torch.float32))
    X, W, Xt, Wt = _mixed(torch, first, second)
    # before: RuntimeError "both inputs should have same dtype" from torch
    Y = tc.evaluate(MATMUL, X=Xt, W=Wt)
    assert Y.dtype == torch.float64
    np.testing.assert_allclose(Y.numpy(), np.float32(X) @ W if order == "32,64"
                               else X @ np.float32(W), rtol=1e-10)
    J = tc.derive(MATMUL, "X")(X=Xt, W=Wt)
    assert J.dtype == torch.float64
    g = tc.grad("L = (X[i,k] W[k,j])^2", "W")(X=Xt, W=Wt)
    assert g.dtype == torch.float64 and tuple(g.shape) == (4, 5)


def test_jax_float32_beside_float64_promotes_to_float64(jax64) -> None:
    jnp = jax64.numpy
    X, W = np.ones((2, 3)), np.ones((3, 2))
    Y = tc.evaluate(MATMUL, X=jnp.asarray(X, dtype=jnp.float32), W=jnp.asarray(W))
    assert Y.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(Y), X @ W)


@pytest.mark.parametrize("kind", ["int64", "int32", "bool"])
def test_torch_integer_and_bool_tensors_act_like_numpy_ones(kind) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 4))
    M = rng.integers(0, 2, size=(4, 5)).astype(kind)
    expected = tc.evaluate(MATMUL, X=X, W=M)  # NumPy: ints and bools count as numbers
    np.testing.assert_allclose(expected, X @ M.astype(float))
    Xt = torch.tensor(X, dtype=torch.float32)
    # before: RuntimeError "both inputs should have same dtype" from torch
    Y = tc.evaluate(MATMUL, X=Xt, W=torch.tensor(M))
    assert Y.dtype == torch.float32  # torch's own promotion of float32 with an integer
    np.testing.assert_allclose(Y.numpy(), expected, rtol=1e-6)
    # an integer or bool tensor with no float beside it becomes torch's default float
    s = tc.evaluate("y[i,j] = sigmoid(W[i,j])", W=torch.tensor(M))
    assert s.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(s.numpy(), 1 / (1 + np.exp(-M.astype(float))), rtol=1e-6)
    J = tc.derive(MATMUL, "X")(X=Xt, W=torch.tensor(M))
    assert J.dtype == torch.float32


def test_mixed_torch_inputs_never_leak_a_raw_error() -> None:
    torch = pytest.importorskip("torch")
    kinds = [torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64),
             torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.int64), 3.0, 3]
    for a in kinds:
        for b in kinds:
            for p in (tc.compile(MATMUL), tc.grad("L = (X[i,k] W[k,j])^2", "W")):
                try:
                    value = p(X=a, W=b)
                except tc.InputError:
                    assert isinstance(a, (int, float)) or isinstance(b, (int, float))
                else:
                    assert isinstance(value, torch.Tensor) and value.is_floating_point()


def test_large_ints_in_an_object_array_are_numbers() -> None:
    x = np.array([1, 10**30], dtype=object)  # NumPy keeps ints beyond int64 as objects
    np.testing.assert_array_equal(tc.evaluate("y[i] = x[i] * 2", x=x), [2, 2e30])
    with pytest.raises(tc.InputError, match="input x has dtype object; give numbers"):
        tc.evaluate("y[i] = x[i] * 2", x=np.array([1, None], dtype=object))


def test_arrays_of_two_libraries_are_an_input_error() -> None:
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(tc.InputError, match="input.*x, c.*one library"):
        tc.evaluate("y[i] = x[i] * c[i]", x=torch.ones(2), c=jnp.ones(2))


def test_numpy_array_and_list_beside_torch_take_the_tensors_type() -> None:
    torch = pytest.importorskip("torch")
    for c in (np.array([1.0, 2.0, 3.0]), [1, 2, 3], np.arange(1, 4)):
        # before: TypeError "expected Tensor as element 0 in argument 1"
        y = tc.evaluate("y[i] = x[i] * c[i]", x=torch.ones(3), c=c)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
        torch.testing.assert_close(y, torch.tensor([1.0, 2.0, 3.0]))
        y = tc.evaluate("y[i] = c[i] * x[i]", c=c, x=torch.ones(3, dtype=torch.float64))
        assert isinstance(y, torch.Tensor) and y.dtype == torch.float64


# --- a mapping of data for several programs; keywords stay strict -------------------


def test_a_mapping_may_hold_arrays_the_program_does_not_take():
    g = np.random.default_rng(5)
    data = dict(X=g.normal(size=(4, 3)), w=g.normal(size=3), y=g.normal(size=4),
                T=g.normal(size=(2, 2)), labels=np.arange(4))
    loss = tc.compile(LSQ)
    want = np.sum((data["X"] @ data["w"] - data["y"]) ** 2)
    np.testing.assert_allclose(loss.evaluate(data), want, rtol=1e-12)
    grad = tc.grad(LSQ, "w")  # one dict for the program and its gradient
    np.testing.assert_allclose(grad.evaluate(data),
                               2 * data["X"].T @ (data["X"] @ data["w"] - data["y"]),
                               rtol=1e-12)
    predict = tc.compile("p[n] = X[n,d] w[d]")
    np.testing.assert_allclose(predict.evaluate(data), data["X"] @ data["w"], rtol=1e-12)


def test_keywords_stay_strict_and_a_computed_name_is_refused():
    p = tc.compile(LSQ)
    X, w, y = np.ones((2, 3)), np.ones(3), np.ones(2)
    with pytest.raises(tc.InputError, match="unknown input labels; the program's inputs"):
        p(X=X, w=w, y=y, labels=np.ones(2))
    with pytest.raises(tc.InputError, match="unknown input labels"):
        p.evaluate(X=X, w=w, y=y, labels=np.ones(2))
    with pytest.raises(tc.InputError, match="unknown input labels"):
        p.evaluate({"X": X, "w": w}, y=y, labels=np.ones(2))  # a keyword beside a mapping
    with pytest.raises(tc.InputError, match="L is computed by the program"):
        p.evaluate({"X": X, "w": w, "y": y, "L": 1.0})
    with pytest.raises(tc.InputError, match="missing input array y"):
        p.evaluate({"X": X, "w": w, "labels": np.ones(2)})  # left out, not counted as y

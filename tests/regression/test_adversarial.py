"""Defects an adversarial pass found (2026-11-29), each pinned by the input that found it
and checked against an oracle that shares no code with tensorcalc: NumPy loops, central
differences (tests/fd.py), JAX's and torch's own autodiff."""

from __future__ import annotations

import numpy as np
import pytest
from fd import numeric_jacobian

import tensorcalc as tc

# --- numbers: a malformed one is refused, never read as a product ------------------------


@pytest.mark.parametrize("src,column,words", [
    ("y = 1.2.3", 5, "at most one decimal point"),
    ("y = 1..2", 5, "at most one decimal point"),
    ("y = 0x10", 5, "decimal"),
    ("y = 1_000", 5, "without separators"),
    ("y = 1e", 5, "exponent needs digits"),
    ("y[i] = 1e x[i]", 8, "exponent needs digits"),
    ("y[i] = 2.5E+ x[i]", 8, "exponent needs digits"),
    ("y[i] = x[1.2.3]", 10, "at most one decimal point"),
])
def test_malformed_numbers_are_refused_at_their_column(src, column, words):
    with pytest.raises(tc.ParseError, match=words) as err:
        tc.compile(src)
    assert err.value.column == column
    assert "malformed number" in str(err.value)


@pytest.mark.parametrize("src,value", [
    ("y = 2e[i] x[i]", 2 * 3 * 5),            # a tensor named e, juxtaposed
    ("y = 2exp(x[i])", 2 * 3 * np.exp(5)),    # a function, juxtaposed
    ("y = 1e-3 x[i] + 2.5E+2", 3 * 5e-3 + 250),
    ("y = 2. x[i]", 30),
])
def test_numbers_that_are_well_formed_still_parse(src, value):
    arrays = {"x": np.full(3, 5.0)}
    if "e[" in src:
        arrays["e"] = np.ones(3)
    assert tc.evaluate(src, **arrays) == pytest.approx(value)


# --- powers of constants -----------------------------------------------------------------


def test_derivative_of_zero_to_a_power_is_zero_and_prints():
    d = tc.derive("z = 0^a", "a")
    assert str(d).splitlines()[-1] == "dz_da = 0"
    # jax's convention, and the limit where 0^a has a derivative (a > 0)
    jax = pytest.importorskip("jax")
    assert float(jax.grad(lambda a: 0.0 ** a)(1.5)) == d(a=np.float64(1.5)) == 0


def test_log_of_a_negative_constant_stays_written_and_reparses():
    d = tc.derive("z = (-2)^a", "a")
    text = str(d)
    assert "log(-2)" in text
    assert str(tc.compile(text)) == text
    with np.errstate(invalid="ignore"):
        assert np.isnan(d(a=np.float64(1.5)))  # (-2)^1.5 is not real: nan, as NumPy has it


@pytest.mark.parametrize("src", ["z = 0^(-1) a", "z = a 0^(-0.5)", "z = (1-1)^(-2) a"])
def test_zero_to_a_negative_power_is_a_division_by_zero(src):
    with pytest.raises(tc.ProgramError, match="divides by the constant 0"):
        tc.compile(src)


def test_constants_past_a_floats_range_are_named_when_printed():
    with pytest.raises(tc.ProgramError, match="beyond the range of a float"):
        str(tc.derive("z = 1e200 * 1e200 * a", "a"))


# --- a shifted read and an index array on one index --------------------------------------


def _gather_shift_arrays():
    rng = np.random.default_rng(3)
    return dict(E=rng.normal(size=(5, 2)), x=rng.normal(size=5), t=np.array([4, 1, 1, 0, 2]))


def test_a_shift_shrinks_the_index_array_as_it_shrinks_a_tensor():
    # the valid rule, docs/index-arithmetic.md: i is sized 5 by t[i], then shrunk to 4 by x[i+1]
    x = np.arange(5.0) + 1
    t = np.array([0, 1, 2, 3, 9])  # t[4] is out of range, but i never reaches it
    expected = [x[i + 1] * x[t[i]] for i in range(4)]
    np.testing.assert_allclose(tc.evaluate("z[i] = x[i+1] x[t[i]]", x=x, t=t), expected)


@pytest.mark.parametrize("wrt", ["E", "x"])
def test_its_gradient_agrees_with_differences_and_its_export(wrt):
    p = tc.compile("L = (E[t[i],j] x[i+1])^2")
    a = _gather_shift_arrays()
    g = tc.grad(p, wrt)
    value = g(**a)
    np.testing.assert_allclose(value, numeric_jacobian(p, wrt, a), rtol=1e-6, atol=1e-6)
    namespace: dict = {}
    exec(g.to_python(), namespace)  # our own generated code, not user text
    np.testing.assert_allclose(namespace[g.result](**a), value, rtol=1e-12)


def test_its_gradient_on_torch_and_jax():
    torch = pytest.importorskip("torch")
    p = tc.compile("L = (E[t[i],j] x[i+1])^2")
    a = _gather_shift_arrays()
    expected = tc.grad(p, "E")(**a)
    on_torch = tc.grad(p, "E")(**{k: torch.tensor(v) for k, v in a.items()})
    np.testing.assert_allclose(on_torch.numpy(), expected, rtol=1e-12)
    jnp = pytest.importorskip("jax.numpy")
    on_jax = tc.grad(p, "E")(**{k: jnp.asarray(v) for k, v in a.items()})
    np.testing.assert_allclose(np.asarray(on_jax), expected, rtol=1e-6)


# --- subscripts with huge numbers ----------------------------------------------------------


@pytest.mark.parametrize("src", ["y[i] = x[99999999999999999999999*i]",
                                 "y[i] = x[i+1099511627777]"])
def test_subscript_numbers_past_any_array_are_refused(src):
    with pytest.raises(tc.ProgramError, match="larger than 2\\*\\*40"):
        tc.compile(src)


def test_a_large_stride_over_one_position_reads_the_first():
    x = np.arange(3.0) + 7
    assert tc.evaluate("y[i] = x[1099511627776*i]", x=x).tolist() == [7.0]
    g = tc.grad("L = x[1099511627776*i]^2", "x")
    assert g(x=x).tolist() == [14.0, 0.0, 0.0]


def test_zeros_past_the_ends_count_against_the_memory_limit():
    p = tc.compile("y[i] = x[1000000000*i]", sizes={"i": 2})
    with pytest.raises(tc.MemoryLimitError, match="zeros its reads in y need past its ends"):
        p(x=np.ones(3))


# --- max and min: their weights never 0/0 --------------------------------------------------


def test_max_gradient_where_rounding_misses_the_maximum():
    # z + y + x and x + y + z differ by an ulp here: a gap test finds no maximum (0/0)
    x, y, z = np.array([0.1]), np.array([0.1]), np.array([1.1])
    g = tc.grad("L = max[j](z[j] + y[j] + x[j])", "x")
    assert g(x=x, y=y, z=z).tolist() == [1.0]
    assert "hardmax" in str(g)


def test_min_hessian_agrees_with_jax_on_random_inputs(jax64):
    jnp = jax64.numpy
    h = tc.hessian("L = min[j](A[i,j] + x[j])^2", "x")
    rng = np.random.default_rng(0)
    oracle = jax64.hessian(lambda x, A: jnp.sum(jnp.min(A + x[None, :], axis=1) ** 2))
    for _ in range(60):  # about half of these were all nan before
        A, x = rng.normal(size=(3, 3)), rng.normal(size=3)
        np.testing.assert_allclose(h(A=A, x=x), oracle(x, A), rtol=1e-12, atol=1e-12)


def test_hardmax_and_hardmin_values_and_derivative():
    x = np.array([1.0, 3.0, 3.0, -2.0])
    np.testing.assert_allclose(tc.evaluate("w[j] = hardmax[j](x[j])", x=x), [0, .5, .5, 0])
    np.testing.assert_allclose(tc.evaluate("w[j] = hardmin[j](x[j])", x=x), [0, 0, 0, 1])
    assert tc.derive("s[j] = hardmax[j](x[j])", "x")(x=x).tolist() == np.zeros((4, 4)).tolist()
    with pytest.raises(tc.ParseError, match="hardmax is a reserved word"):
        tc.compile("hardmax[i] = x[i]")


def test_hardmax_runs_on_torch_and_in_exported_code():
    torch = pytest.importorskip("torch")
    src = "w[n,j] = hardmax[j](X[n,j])"
    X = np.array([[1.0, 2.0, 2.0], [0.0, -1.0, 5.0]])
    expected = tc.evaluate(src, X=X)
    np.testing.assert_allclose(tc.evaluate(src, X=torch.tensor(X)).numpy(), expected)
    p = tc.compile(src)
    namespace: dict = {}
    exec(p.to_python(), namespace)  # our own generated code
    np.testing.assert_allclose(namespace["w"](X=X), expected)


# --- torch and JAX arrays -------------------------------------------------------------------


def test_an_index_array_passed_first_does_not_set_the_result_type():
    torch = pytest.importorskip("torch")
    p = tc.compile("y[n,j] = E[t[n],j] + 2.5 + F[n,j]")
    out = p(t=torch.tensor([0, 1]), E=torch.zeros(2, 2), F=torch.zeros(2, 2))
    assert out.dtype == torch.float32 and out[0, 0].item() == 2.5
    out = p(E=np.zeros((2, 2), np.float32), F=np.zeros((2, 2), np.float32), t=np.array([0, 1]))
    assert out.dtype == np.float32 and out[0, 0] == 2.5


def test_a_plan_is_bound_per_device():
    torch = pytest.importorskip("torch")
    p = tc.compile("L = x[i]^2 + 2.5 + y[j]")
    p(x=torch.empty(3, device="meta"), y=torch.empty(2, device="meta"))
    out = p(x=torch.ones(3), y=torch.ones(2))
    assert out.device.type == "cpu" and out.item() == pytest.approx(3 + 2.5 + 2)


def test_results_never_alias_inputs_nor_repeat_elements():
    torch = pytest.importorskip("torch")
    X = np.zeros((2, 3))
    assert tc.evaluate("Y[i,j] = X[i,j]", X=X) is not X
    Xt = torch.zeros(2, 3)
    Y = tc.evaluate("Y[i,j] = X[i,j]", X=Xt)
    Y[0, 0] = 7
    assert Xt[0, 0] == 0
    r = tc.grad("L = 3 x[i]", "x")(x=torch.randn(4))
    r += 1  # an expanded view would refuse this
    assert r.tolist() == [4.0] * 4


def test_to_torch_backward_with_mixed_dtypes_and_plain_numbers():
    torch = pytest.importorskip("torch")
    f = tc.to_torch("y[n] = X[n,d] w[d]; L = y[n]^2")
    w = torch.randn(4, dtype=torch.float64, requires_grad=True)
    for X in (torch.randn(3, 4), torch.randint(0, 3, (3, 4))):
        (g,) = torch.autograd.grad(f(X=X, w=w), w)
        Xd = X.double()
        torch.testing.assert_close(g, 2 * Xd.T @ (Xd @ w))
    h = tc.to_torch("L = a x[i]^2")
    x = torch.randn(3, requires_grad=True)
    for a in (2.0, np.float64(2.0), np.array(2.0)):
        torch.testing.assert_close(torch.autograd.grad(h(a=a, x=x), x)[0], 4 * x)
        torch.testing.assert_close(torch.func.grad(lambda x, a=a: h(a=a, x=x))(x.detach()),
                                   4 * x.detach())


def test_to_torch_under_vmap_sums_and_sign():
    torch = pytest.importorskip("torch")
    f = tc.to_torch("Y[i,j] = A[i,j] + B[i,j] + x[j]")
    A, B, xs = torch.randn(3, 3), torch.randn(3, 3), torch.randn(2, 3)
    torch.testing.assert_close(torch.func.vmap(lambda x: f(A=A, B=B, x=x))(xs),
                               A + B + xs[:, None, :])
    s = tc.to_torch("y[i] = sign(x[i])")
    torch.testing.assert_close(torch.func.vmap(lambda x: s(x=x))(xs), torch.sign(xs))
    a = tc.to_torch("L = abs(x[i])")
    torch.testing.assert_close(torch.func.vmap(torch.func.grad(lambda x: a(x=x)))(xs),
                               torch.sign(xs))


def test_torch_hessian_of_a_linear_scalar_is_zero():
    torch = pytest.importorskip("torch")
    f = tc.to_torch("L = 3 x[i]")
    torch.testing.assert_close(torch.func.hessian(lambda x: f(x=x))(torch.randn(4)),
                               torch.zeros(4, 4))


def test_framework_functions_of_a_derivative_take_its_accepted_inputs():
    torch = pytest.importorskip("torch")
    d = tc.grad("L = a x[i]^2 + b", "x")
    got = tc.to_torch(d)(a=torch.tensor(2.0), x=torch.arange(3.0), b=torch.tensor(5.0))
    torch.testing.assert_close(got, torch.tensor([0.0, 4.0, 8.0]))
    jnp = pytest.importorskip("jax.numpy")
    got = tc.to_jax(d)(a=jnp.asarray(2.0), x=jnp.arange(3.0), b=jnp.asarray(5.0))
    np.testing.assert_allclose(np.asarray(got), [0.0, 4.0, 8.0])


def test_to_jax_gradient_with_a_list_index_array():
    jax = pytest.importorskip("jax")
    h = tc.to_jax("L = E[t[n], j]^2")
    got = jax.grad(lambda E: h(E=E, t=[0, 4, 1]))(jax.numpy.ones((5, 3)))
    expected = np.zeros((5, 3))
    expected[[0, 4, 1]] = 2.0
    np.testing.assert_allclose(np.asarray(got), expected)


# --- a delta inside a reduction's argument, to third order -------------------------------


def _delta_in_reduction_cases(jax):
    jnp = jax.numpy
    rng = np.random.default_rng(0)
    A, C, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    softmax_loss = lambda x: jnp.sum(jax.nn.softmax(A + jnp.diag(x), axis=1) * C)  # noqa: E731
    lse = lambda x: jax.scipy.special.logsumexp(A + jnp.diag(x))  # noqa: E731
    det = lambda x: jnp.linalg.det(A + jnp.diag(x))  # noqa: E731
    soft = lambda x: jax.nn.softmax(A + jnp.diag(x), axis=1)  # noqa: E731
    arrays = dict(A=A, x=x, C=C)
    return [
        ("hessian", tc.hessian("L = softmax[j](A[i,j] + delta[i,j] x[i]) C[i,j]", "x"),
         arrays, jax.hessian(softmax_loss)(x)),
        ("third", tc.derive(tc.hessian("L = logsumexp[i,j](A[i,j] + delta[i,j] x[i])", "x"),
                            "x"), arrays, jax.jacfwd(jax.hessian(lse))(x)),
        ("third", tc.derive(tc.hessian("L = det[i,j](A[i,j] + delta[i,j] x[i])", "x"), "x"),
         arrays, jax.jacfwd(jax.hessian(det))(x)),
        ("jacobian", tc.derive(tc.derive("s[i,j] = softmax[j](A[i,j] + delta[i,j] x[i])", "x"),
                               "x"), arrays, jax.jacfwd(jax.jacrev(soft))(x)),
    ]


def test_a_delta_inside_a_reduction_to_third_order(jax64):
    # a hoisted tangent kept the index its delta tied summed inside, the delta outside
    for kind, program, arrays, expected in _delta_in_reduction_cases(jax64):
        needed = {n: arrays[n] for n in program.needed_inputs}
        for value in (program(**needed), program.evaluate(needed, compact=True).toarray(),
                      tc.compile(str(program))(**needed)):
            np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-10, err_msg=kind)


def test_jax_hessian_through_to_jax_with_a_delta_inside_softmax(jax64):
    jnp = jax64.numpy
    src = "L = softmax[j](A[i,j] + delta[i,j] x[i]) C[i,j]"
    rng = np.random.default_rng(1)
    A, C, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    f = tc.to_jax(src)
    ours = jax64.hessian(lambda x: f(A=A, x=x, C=C))(x)
    theirs = jax64.hessian(lambda x: jnp.sum(jax64.nn.softmax(A + jnp.diag(x), axis=1) * C))(x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    V = rng.normal(size=3)
    hvp = tc.jvp(tc.grad(src, "x"), "x", tangent="V")
    np.testing.assert_allclose(hvp(A=A, x=x, C=C, V=V), theirs @ V, rtol=1e-9, atol=1e-12)


# --- names the API makes up are names of the language ------------------------------------


@pytest.mark.parametrize("call", [
    lambda: tc.derive("Y[i,j] = X[i,k] W[k,j]", "X[delta,q]"),
    lambda: tc.derive("d = det[i,j](A[i,j])", "A[inv,q]"),
    lambda: tc.derive("Y[i,j] = X[i,k] W[k,j]", "X[hardmax,q]"),
])
def test_a_reserved_word_cannot_name_a_wrt_index(call):
    with pytest.raises(tc.DerivativeError, match="reserved word and cannot name an index"):
        call()


@pytest.mark.parametrize("call", [
    lambda: tc.vjp("Y[i,j] = inv[i,j](A[i,j])", "A", cotangent="max"),
    lambda: tc.jvp("Y[i,j] = inv[i,j](A[i,j])", "A", tangent="input"),
])
def test_a_reserved_word_cannot_name_a_seed(call):
    with pytest.raises(tc.ProgramError, match="reserved word and cannot name a tensor"):
        call()


# --- matrix functions --------------------------------------------------------------------


@pytest.mark.parametrize("src", ["L = logdet[i,j](A[i,j])", "L = det[i,j](A[i,j])",
                                 "L = inv[i,j](A[i,j]) A[j,i]", "Y[i,j] = inv[i,j](A[i,j])"])
def test_half_precision_matrices_run_in_single_precision(src):
    A = np.array([[2.0, 0.5], [0.25, 3.0]])
    expected = tc.evaluate(src, A=A)
    half = tc.evaluate(src, A=A.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float64), expected, rtol=2e-3)


def test_a_kept_axis_its_argument_lacks_is_named():
    with pytest.raises(tc.ProgramError, match=r"inv\[i,j\] at line 1, column 10 runs along "
                                              "index j, which its argument does not have"):
        tc.compile("Y[i,j] = inv[i,j](A[i,k])")


# --- the command line ---------------------------------------------------------------------


def _run_cli(capsys, *argv):
    from tensorcalc.tools import cli

    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_allows_for_the_rounding_of_large_values(capsys):
    code, out, _ = _run_cli(capsys, "check", "L = x[i]^2 + 100000000", "--wrt", "x",
                            "--size", "i=3")
    assert code == 0 and "for the differences' rounding: agree" in out


def test_check_samples_a_large_input(capsys):
    code, out, _ = _run_cli(capsys, "check", "L = x[i]^2", "--wrt", "x", "--size", "i=5000")
    assert code == 0 and "1,000 of the 5,000 entries of x, chosen at random" in out


def test_check_still_finds_a_wrong_derivative(capsys, monkeypatch):
    from tensorcalc.tools import check, cli

    wrong = tc.derive("L = x[i]^3", "x")  # 3 x^2, where the program's is 2 x
    monkeypatch.setattr(check, "derive", lambda program, wrt, of: wrong)
    code, out, _ = _run_cli(capsys, "check", "L = x[i]^2", "--wrt", "x", "--size", "i=3")
    assert code == cli.EXIT_DISAGREE and "DISAGREE" in out


@pytest.mark.parametrize("argv,words", [
    (["--size", "i=²"], "N a whole number"),
    (["--size", "i=3,q=4"], "q is not an index of the program"),
    (["--size", "=3"], "index=N pairs"),
    (["--size", "i=3,i=4"], "gives i twice"),
    (["--seed", "-5"], "a seed is a whole number"),
])
def test_cli_size_and_seed_errors_name_the_option(capsys, argv, words):
    code, _, err = _run_cli(capsys, "eval", "y[i] = x[i]", *argv)
    assert code == 2 and words in err and "Traceback" not in err


def test_cli_refuses_contradictions_between_inputs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.arange(3.0))
    np.savez("more.npz", x=np.ones(3))
    code, _, err = _run_cli(capsys, "eval", "y[i] = x[i]", "-i", "x=x.npy", "--size", "i=5")
    assert code == 2 and "--size i=5 contradicts the arrays given" in err
    code, _, err = _run_cli(capsys, "eval", "y[i] = x[i]", "-i", "more.npz", "-i", "x=x.npy")
    assert code == 2 and "input x is given twice" in err
    # an index that arithmetic uses pads instead: "same" reads
    code, out, _ = _run_cli(capsys, "eval", "y[i] = x[i+k-1] w[k]", "-i", "x=x.npy",
                            "--size", "i=3,k=3")
    assert code == 0


@pytest.mark.parametrize("tol", ["nan", "-1", "inf"])
def test_cli_tolerance_is_a_number_at_least_zero(capsys, tol):
    code, _, err = _run_cli(capsys, "check", "L = x[i]^2", "--wrt", "x", "--size", "i=2",
                            "--tol", tol)
    assert code == 2 and "a tolerance is a number >= 0" in err


def test_cli_program_file_with_a_byte_order_mark(capsys, tmp_path):
    path = tmp_path / "model.tc"
    path.write_bytes("\ufeffy[i] = 2 x[i]\n".encode())
    code, out, _ = _run_cli(capsys, "eval", "-f", str(path), "--size", "i=2")
    assert code == 0 and out.strip().startswith("[")


def test_derivative_of_a_program_without_inputs_says_so():
    with pytest.raises(tc.DerivativeError, match="it has no inputs"):
        tc.derive("y = 3", "x")


def test_dask_inverse_and_solve_with_chunks_that_are_not_square():
    da = pytest.importorskip("dask.array")
    A = np.eye(6) * 2 + 0.1
    b = np.arange(6.0)
    chunked = dict(A=da.from_array(A, chunks=(3, 2)), b=da.from_array(b, chunks=4))
    for src in ("Y[i,j] = inv[i,j](A[i,j])", "x[i] = inv[i,j](A[i,j]) b[j]",
                "y[j] = b[i] inv[i,j](A[i,j])"):
        p = tc.compile(src)
        needed = {n: chunked[n] for n in p.needed_inputs}
        expected = p(**{n: np.asarray(v) for n, v in needed.items()})
        np.testing.assert_allclose(p(**needed).compute(), expected, rtol=1e-12)


def test_cli_random_inputs_fit_in_the_memory_limit_together(capsys):
    from tensorcalc import limits

    previous = limits.memory_limit()
    limits.set_memory_limit(4_000_000)
    try:
        code, _, err = _run_cli(capsys, "eval", "y[i] = a[i] + b[i] + c[i]", "--size",
                                "i=200000", "-o", "/dev/null")  # 1.6 MB each, 4.8 MB in all
    finally:
        limits.set_memory_limit(previous)
    assert code == 2 and "the random inputs together would take" in err


# --- index arithmetic: sizes and views --------------------------------------------------


def test_torch_shifted_reads_of_a_slice_start_at_the_slice():
    torch = pytest.importorskip("torch")
    x = torch.arange(20.0, dtype=torch.float64)[5:10]
    assert tc.evaluate("d[i] = x[i+1] - x[i]", x=x).tolist() == [1.0] * 4
    assert tc.evaluate("r[i] = x[4-i]", x=x).tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]
    src = "y[i] = x[i+2]\nz[i] = y[i+1] - y[i]"  # y is itself a view with an offset
    squares = np.arange(10.0) ** 2
    np.testing.assert_allclose(tc.evaluate(src, x=torch.tensor(squares)).numpy(),
                               tc.evaluate(src, x=squares))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16", "int32"])
def test_torch_index_arrays_of_any_integer_type(dtype):
    torch = pytest.importorskip("torch")
    x = torch.tensor([10.0, 11, 12, 13], dtype=torch.float64)
    t = torch.tensor([1, 1, 3, 0], dtype=getattr(torch, dtype))  # uint8 is no mask here
    assert tc.evaluate("y[n] = x[t[n]]", x=x, t=t).tolist() == [11.0, 11.0, 13.0, 10.0]


def test_a_given_size_is_kept_where_a_tensor_has_the_index_plainly_too():
    x, v = np.array([1.0, 2, 3, 4]), np.array([10.0, 20, 30, 40])
    p = tc.compile("L = (x[i+1] - v[i])^2", sizes={"i": 4})  # x[4] reads 0
    g = tc.grad(p, "v")
    np.testing.assert_allclose(g(x=x, v=v), [16, 34, 52, 80])
    np.testing.assert_allclose(g(x=x, v=v), numeric_jacobian(p, "v", dict(x=x, v=v)), atol=1e-5)
    q = tc.compile("L = (x[i+1] - x[i])^2", sizes={"i": 4})
    np.testing.assert_allclose(tc.grad(q, "x")(x=x), [-2, 0, 0, 10])


@pytest.mark.parametrize("src,sizes,shapes,wrts", [
    ("L = (x[b,c,i+a-1] w[o,c,a] - T[b,o,i])^2", {"i": 5},
     dict(x=(2, 3, 5), w=(4, 3, 3), T=(2, 4, 5)), ("x", "w")),  # a "same" convolution's loss
    ("L = (x[i+k] w[k] - T[i])^2", {"i": 6}, dict(x=(6,), w=(3,), T=(6,)), ("x", "w")),
    ("L = sum[i]((x[i+1] - 2*x[i] + x[i-1])^2)", {"i": 6}, dict(x=(6,)), ("x",)),
])
def test_gradients_of_padded_losses_agree_with_differences(src, sizes, shapes, wrts):
    rng = np.random.default_rng(5)
    arrays = {n: rng.normal(size=s) for n, s in shapes.items()}
    p = tc.compile(src, sizes=sizes)
    for wrt in wrts:
        g = tc.grad(p, wrt)  # these were refused, naming an index the derivative made up
        np.testing.assert_allclose(g(**arrays), numeric_jacobian(p, wrt, arrays), atol=1e-5)
        np.testing.assert_allclose(tc.compile(str(g), sizes=sizes)(**arrays), g(**arrays))


def test_a_size_given_by_name_must_agree_with_the_declaration_and_the_tensors():
    x = np.arange(10.0)
    with pytest.raises(tc.ShapeError, match="given size 4 .sizes=. but size 10 .by the "
                                            "declaration of x."):
        tc.compile("input x[p]\ny[p] = x[p+1]", sizes={"p": 4})(x=x)
    with pytest.raises(tc.ShapeError, match="given size 10 .by sizes=. but has size 3 in v"):
        tc.compile("y[i] = x[i+1] + v[i]", sizes={"i": 10})(x=x, v=np.ones(3))


@pytest.mark.parametrize("program,wrong", [
    ("L = x[i]^2", "L = x[i]^2 + x[i]^2"),               # doubled, float32 input below
    ("L = 1e-7 x[i]^2", "L = -1e-7 x[i]^2"),             # a derivative far below 1
])
def test_check_finds_wrong_derivatives_of_float32_and_small_values(capsys, monkeypatch,
                                                                   tmp_path, program, wrong):
    from tensorcalc.tools import check, cli

    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).uniform(0.5, 1.5, 5).astype(np.float32))
    code, out, _ = _run_cli(capsys, "check", program, "--wrt", "x", "-i", f"x={path}")
    assert code == 0 and "agree" in out
    monkeypatch.setattr(check, "derive", lambda p, wrt, of: tc.derive(wrong, "x"))
    code, out, _ = _run_cli(capsys, "check", program, "--wrt", "x", "-i", f"x={path}")
    assert code == cli.EXIT_DISAGREE and "DISAGREE" in out


def test_check_says_when_the_differences_decide_nothing(capsys):
    code, out, _ = _run_cli(capsys, "check", "L = x[i]^2 + 1e16", "--wrt", "x", "--size", "i=3")
    assert code == 1 and "UNDECIDED" in out


@pytest.mark.parametrize("src,words", [
    ("y = 0b1", "numbers are decimal"), ("y[i] = 0o17 x[i]", "numbers are decimal"),
    ("y[i] = 1.5.x[i]", "malformed number '1.5.x'"), ("y = ２ x", "unexpected character"),
])
def test_more_malformed_numbers(src, words):
    with pytest.raises(tc.ParseError, match=words):
        tc.compile(src)


def test_a_scaled_index_named_e_is_explained():
    with pytest.raises(tc.ProgramError, match=r"write 2\*e"):
        tc.compile("y[e] = x[2e+1]")


# --- exported code, deltas of given sizes, LaTeX ------------------------------------------


def _exported_function(program):
    namespace: dict = {}
    exec(program.to_python(), namespace)  # our own generated code, not user text
    return namespace[program.result]


@pytest.mark.parametrize("src,x", [
    ("y[i] = x[i] + x[i]", np.array([100, 1], dtype=np.int8)),    # wrapped around in int8
    ("y = x[i] x[i]", np.array([100, 1], dtype=np.int8)),
    ("y[i] = sigmoid(x[i])", np.array([True, False])),            # numpy refuses -bool
    ("y[j] = softmax[j](x[j])", np.array([200, 1], dtype=np.uint8)),
])
def test_exported_code_takes_integers_and_bools_as_a_call_does(src, x):
    p = tc.compile(src)
    np.testing.assert_allclose(_exported_function(p)(x=x), p(x=x), rtol=1e-12)


def test_exported_derivatives_keep_float32():
    x = np.array([0.5, 1.0], np.float32)
    for d in (tc.derive("y[i] = 2 x[i]", "x"), tc.derive("y[i] = sigmoid(x[i]) + 1", "x")):
        assert d(x=x).dtype == _exported_function(d)(x=x).dtype == np.float32


def test_to_python_checks_its_name():
    with pytest.raises(tc.ProgramError, match="Python identifier"):
        tc.compile("y = x").to_python("a b")


@pytest.mark.parametrize("call", [
    lambda: tc.compile("y[i,j] = delta[i,j]", sizes={"i": 3, "j": 4})(),
    lambda: tc.compile("y[i,j] = delta[i,j] x[i]", sizes={"j": 4})(x=np.ones(3)),
    lambda: tc.compile("input x[p], w[q]\ny[p,q] = delta[p,q]")(x=np.ones(3), w=np.ones(4)),
    lambda: tc.compile("input x[p], w[q]\ny[p,q] = delta[p,q]").evaluate(
        dict(x=np.ones(3), w=np.ones(4)), compact=True),
])
def test_a_delta_between_given_sizes_that_differ(call):
    with pytest.raises(tc.ShapeError, match="ties index . of size 3 to index . of size 4"):
        call()


def test_latex_escapes_underscores_in_index_names():
    text = tc.compile("out[batch_idx] = a[batch_idx, feat_dim] w[feat_dim]").latex()
    assert text == r"\mathrm{out}_{batch\_idx} = a_{batch\_idx,feat\_dim} w_{feat\_dim}"
    assert tc.compile("y[i] = x[i+k_1] w[k_1]").latex() == r"y_{i} = x_{i+k\_1} w_{k\_1}"
    assert r"\mathrm{t\_x}_{n}" in tc.compile("e[n,j] = E[t_x[n],j]").latex()


def test_exported_code_of_a_long_sum_compiles():
    # one line of 3,000 additions made Python's compiler recurse past its limit
    p = tc.compile("R[i] = " + " + ".join(f"x[i]^{k}" for k in range(1, 3001)))
    x = np.array([0.5, 0.9])
    np.testing.assert_allclose(_exported_function(p)(x=x), p(x=x), rtol=1e-12)


# --- ranges of their own ------------------------------------------------------------------


@pytest.mark.parametrize("src", [
    "d[i] = x[i+1] - x[i]; L = d[q]",            # L = x[3] - x[0]: [-1, 0, 0, 1]
    "d[i] = x[i+2] - x[i]; L = d[q]",
    "d[i] = x[i+1] + x[i]; L = d[q]",
    "d[i] = x[i] - x[i+1]; L = 2 d[q] + 1",
    "d[i] = square(x[i+1] - x[i]); L = d[q]",
])
def test_a_sum_over_a_shrunk_range_is_not_the_whole_range(src):
    # sum_k delta[p,k] over k in d's range (one shorter than x's) was simplified to 1
    x = np.array([0.3, -1.2, 0.7, 2.0])
    p = tc.compile(src)
    g = tc.grad(p, "x")
    np.testing.assert_allclose(g(x=x), numeric_jacobian(p, "x", {"x": x}), atol=1e-6)
    np.testing.assert_allclose(tc.compile(str(g))(x=x), g(x=x))
    h = tc.hessian(p, "x")
    np.testing.assert_allclose(h(x=x), numeric_jacobian(g, "x", {"x": x}), atol=1e-5)


def test_the_printer_leaves_names_of_given_sizes_alone():
    # b's axis was printed as i1, a name sizes= gives another size
    src = "a[i1] = x[i1+1]; b[i] = tanh(y[i+k] w[k])"
    d = tc.derive(tc.compile(src, sizes={"i1": 2}), "y")
    rng = np.random.default_rng(0)
    y, w = rng.normal(size=5), rng.normal(size=3)
    np.testing.assert_allclose(tc.compile(str(d), sizes={"i1": 2})(y=y, w=w), d(y=y, w=w))

"""Index arithmetic (docs/index-arithmetic.md) beyond its values: how it is planned and run (views,
scatters, no one-hot), exported, printed, sized, called, and used from the command line
and the frameworks. Values and derivatives against JAX are in calculus/test_index_arithmetic.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.backend import products, windows
from tensorcalc.backend.operands import RefOperand, ScatterOperand, nested_sums

RNG = np.random.default_rng(11)
CONV = "y[i] = x[i+k] w[k]\nL = y[i]^2"
EMBED = "h[n,o] = E[t[n],j] W[j,o]\nL = tanh(h[n,o])^2"


def _operands(p: tc.Program) -> list[object]:
    found: list[object] = []
    stack = [t for st in p.plan.statements for t in st.rhs.terms]
    while stack:
        term = stack.pop()
        for op in term.operands:
            found.append(op)
            for s in nested_sums(op):
                stack += list(s.terms)
    return found


def _export(p: tc.Program, **arrays: object) -> object:
    namespace: dict[str, object] = {}
    exec(p.to_python("f"), namespace)  # noqa: S102 - our own generated code
    return namespace["f"](**arrays)  # type: ignore[operator]


def test_gather_gradient_is_a_scatter_never_a_one_hot(monkeypatch: pytest.MonkeyPatch) -> None:
    g = tc.grad(EMBED, "E")
    ops = _operands(g)
    assert any(isinstance(op, ScatterOperand) for op in ops)
    assert not any(isinstance(op, RefOperand) and op.name == "t" for op in ops)
    E, W = RNG.standard_normal((50, 4)), RNG.standard_normal((4, 3))
    t = RNG.integers(0, 50, size=200)
    calls = []
    original = windows.scatter_add

    def spy(xp, values, target, rows, how):  # type: ignore[no-untyped-def]
        calls.append((values.shape, rows))
        return original(xp, values, target, rows, how)

    monkeypatch.setattr(windows, "scatter_add", spy)
    value = g(E=E, W=W, t=t)
    # one row per lookup, scattered into the 50 rows (conftest runs the printed program too)
    assert calls and set(calls) == {((200, 4), 50)}
    h = E[t] @ W
    expected = np.zeros_like(E)
    np.add.at(expected, t, (2 * np.tanh(h) * (1 - np.tanh(h) ** 2)) @ W.T)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)


def test_scatter_add_on_cupy_arrays_is_cupyx_scatter_add(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """CuPy's arrays (here NumPy arrays of a class named as CuPy's, no GPU needed) are
    scattered by ``cupyx.scatter_add`` (a stand-in with its documented rule, NumPy's
    ``add.at``), targets outside the rows dropped; the result is the first rows."""
    import types

    cupy_array = type("ndarray", (np.ndarray,), {"__module__": "cupy"})
    calls = []

    def scatter_add(a, slices, value):  # type: ignore[no-untyped-def]
        calls.append(len(slices))
        np.add.at(a, slices, value)

    monkeypatch.setitem(sys.modules, "cupyx", types.SimpleNamespace(scatter_add=scatter_add))
    xp = types.SimpleNamespace(
        where=np.where, zeros=lambda shape, dtype: np.zeros(shape, dtype).view(cupy_array))
    values = RNG.standard_normal((5, 3))
    target = np.array([2, 0, 2, 7, -1])  # a repeated row; two outside 0..3
    got = windows.scatter_add(xp, values.view(cupy_array), target, 4, "cupyx")
    expected = np.zeros((4, 3))
    np.add.at(expected, target[:3], values[:3])
    np.testing.assert_array_equal(np.asarray(got), expected)
    assert calls == [5]


def test_convolution_runs_as_one_matmul_on_a_strided_view(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    made = []
    original = products.window_product

    def spy(*args):  # type: ignore[no-untyped-def]
        step = original(*args)
        made.append(step is not None)
        return step

    monkeypatch.setattr("tensorcalc.backend.binder.window_product", spy)
    X = RNG.standard_normal((2, 3, 20, 19))
    K = RNG.standard_normal((4, 3, 3, 2))
    y = tc.evaluate("y[b,o,i,j] = X[b,c,i+a,j+e] K[o,c,a,e]", X=X, K=K)
    assert made == [True]
    windows_ = np.lib.stride_tricks.sliding_window_view(X, (3, 2), axis=(2, 3))
    np.testing.assert_allclose(y, np.einsum("bcijae,ocae->boij", windows_, K), rtol=1e-12)


def test_reader_is_a_view_without_copy_when_nothing_is_padded() -> None:
    x = np.arange(10.0)
    subs = tuple(windows.encode(s) for s in tc.compile("y[i] = x[i+k] w[k]").statements[0]
                 .rhs.terms[0].factors[0].subs)
    n = {"i": 8, "k": 3}
    view = windows.read_window(x, subs, ("i", "k"), n, {},
                               windows.window_layout(subs, ("i", "k"), n, (10,)), np, np.pad,
                               windows.subscript_at, windows.strided_view, {})
    assert np.shares_memory(view, x)
    np.testing.assert_array_equal(view, np.stack([x[i:i + 3] for i in range(8)]))


@pytest.mark.parametrize("src, wrt, sizes", [
    (CONV, "x", None), (CONV, "w", None), ("y[i] = x[2*i+k] w[k]\nL = y[i]^2", "x", None),
    ("y[i] = x[i+k-1] w[k]\nL = y[i]^2", "x", {"i": 9}),
    ("d[i] = x[i+1] - x[i]\nL = d[i]^2", "x", None), (EMBED, "E", None), (EMBED, "W", None),
    ("L = logsumexp[j](Z[n,j]) - Z[n,t[n]]", "Z", None),
])
def test_exported_derivatives_compute_what_the_program_computes(src: str, wrt: str,
                                                                sizes: dict | None) -> None:
    arrays = {"x": RNG.standard_normal(9), "w": RNG.standard_normal(3),
              "E": RNG.standard_normal((5, 4)), "W": RNG.standard_normal((4, 3)),
              "t": np.array([4, 0, 4, 2]), "Z": RNG.standard_normal((4, 5))}
    g = tc.grad(tc.compile(src, sizes=sizes), wrt)
    wanted = {k: v for k, v in arrays.items() if k in g.inputs}
    extra = {"index_sizes": sizes} if sizes else {}
    np.testing.assert_allclose(_export(g, **wanted, **extra), g(**wanted), rtol=1e-12,
                               atol=1e-12)
    # and the printed program runs as printed, to the same numbers
    again = tc.compile(str(g), sizes=sizes)
    np.testing.assert_allclose(again(**wanted), g(**wanted), rtol=1e-12, atol=1e-12)


def test_exported_size_rule_raises_like_the_program() -> None:
    p = tc.compile("y[i] = x[i+k] w[k]")
    with pytest.raises(ValueError, match="index i has no values"):
        _export(p, x=np.ones(3), w=np.ones(5))
    with pytest.raises(tc.ShapeError, match="index i of statement y has no values|index i"):
        p(x=np.ones(3), w=np.ones(5))


def test_printed_jacobian_sizes_its_rows_by_the_shrunk_statement() -> None:
    d = tc.derive("d[i] = x[i+1] + x[i+3]", "x")
    assert "\ninput d[i1]\n" in str(d)  # rows: d's N-3 positions, which no input has
    x = RNG.standard_normal(9)
    dense = np.zeros((6, 9))
    for i in range(6):
        dense[i, i + 1] += 1
        dense[i, i + 3] += 1
    np.testing.assert_array_equal(d(x=x), dense)
    np.testing.assert_array_equal(tc.compile(str(d))(x=x), dense)


def test_summed_index_runs_over_its_own_terms_range() -> None:
    x, y = RNG.standard_normal(6), RNG.standard_normal(6)
    p = tc.compile("L = x[i+1] + y[i]")
    assert str(p) == "L = x[i+1] + y[i1]"
    assert p(x=x, y=y) == pytest.approx(x[1:].sum() + y.sum())
    np.testing.assert_array_equal(tc.grad(p, "y")(x=x, y=y), np.ones(6))


def test_delta_is_not_substituted_for_an_index_read_inside_a_function() -> None:
    x = RNG.standard_normal(7)
    g = tc.grad("L = (x[i+1] - x[i])^2", "x")
    d = np.diff(x)
    expected = np.zeros(7)
    expected[1:] += 2 * d
    expected[:-1] -= 2 * d
    np.testing.assert_allclose(g(x=x), expected, rtol=1e-12)


def test_sizes_api() -> None:
    x, w = RNG.standard_normal(8), RNG.standard_normal(3)
    same = np.correlate(x, w, "same")
    p = tc.compile("y[i] = x[i+k-1] w[k]", sizes={"i": 8})
    np.testing.assert_allclose(p(x=x, w=w), same, rtol=1e-12)
    q = tc.compile("y[i] = x[i+k-1] w[k]")
    np.testing.assert_allclose(q.evaluate({"x": x, "w": w}, sizes={"i": 8}), same, rtol=1e-12)
    with pytest.raises(tc.ShapeError, match="reads position -1"):
        q(x=x, w=w)
    # inputs named like evaluate's keywords go in the mapping
    r = tc.compile("y[i] = compact[i] + sizes[i]")
    np.testing.assert_allclose(r.evaluate({"compact": x, "sizes": x}), 2 * x)
    for bad in ({"i": 0}, {"i": 2.5}, {"i": True}, {"1i": 3}, [("i", 3)]):
        with pytest.raises(tc.InputError, match="size"):
            q.evaluate({"x": x, "w": w}, sizes=bad)  # type: ignore[arg-type]
    with pytest.raises(tc.ShapeError, match="given size 5"):
        tc.compile("y[i] = x[i] w[i]").evaluate({"x": x, "w": x}, sizes={"i": 5})
    # a derivative keeps the program's sizes
    g = tc.grad(tc.compile("y[i] = x[i+k-1] w[k]\nL = y[i]^2", sizes={"i": 8}), "w")
    assert g.sizes == {"i": 8}


@pytest.mark.parametrize("library", ["torch", "jax"])
def test_index_arrays_out_of_range_on_torch_and_jax(library: str) -> None:
    """Checked on every library called eagerly, in the gather and in its gradient's
    scatter-add (one transfer of the least and greatest value)."""
    mod = pytest.importorskip(library)
    convert = mod.tensor if library == "torch" else mod.numpy.asarray
    E, G = RNG.standard_normal((5, 3)), RNG.standard_normal((2, 3))
    gather = tc.compile("e[n,j] = E[t[n],j]")
    grad = tc.grad("L = sum[n,j](tanh(E[t[n],j]) G[n,j])", "E")
    for bad, shown in (([0, 5], "t holds 5, outside axis 1 of E"), ([0, -1], "t holds -1")):
        with pytest.raises(tc.InputError, match=shown):
            gather(E=convert(E), t=convert(bad))
        with pytest.raises(tc.InputError, match=shown):
            grad(E=convert(E), G=convert(G), t=convert(bad))


def test_index_array_errors() -> None:
    E = RNG.standard_normal((5, 3))
    p = tc.compile("e[n,j] = E[t[n],j]")
    with pytest.raises(tc.InputError, match="index array t has dtype float64"):
        p(E=E, t=np.array([0.0, 1.0]))
    with pytest.raises(tc.InputError, match="t holds 5, outside axis 1 of E"):
        p(E=E, t=np.array([0, 5]))
    with pytest.raises(tc.InputError, match="t holds -1.*do not wrap"):
        p(E=E, t=np.array([0, -1]))
    with pytest.raises(tc.DerivativeError, match="t is an index array"):
        tc.grad("e[n,j] = E[t[n],j]\nL = e[n,j]", "t")
    with pytest.raises(tc.ProgramError, match="index arrays are inputs"):
        tc.compile("u[n] = t[n]\ne[n,j] = E[u[n],j]")
    with pytest.raises(tc.ProgramError, match="as an index array and as a tensor"):
        tc.compile("e[n,j] = E[t[n],j] t[n]")


@pytest.mark.parametrize("src, message", [
    ("y[i+1] = x[i]", "left-hand side of y"),
    ("y = sum[i+1](x[i])", "sum"),
    ("y[i] = delta[i+1, j+1] x[j]", "one of its subscripts must be an index name"),
    ("e[n,j] = E[t[n]+1, j]", "takes no arithmetic"),
    ("y[i] = x[i+1.5]", "whole numbers"),
    ("input x[i+1]\ny[i] = x[i]", "declaration"),
])
def test_arithmetic_outside_a_subscript_is_refused(src: str, message: str) -> None:
    with pytest.raises(tc.ProgramError, match=message):
        tc.compile(src)


def test_frameworks_run_index_arithmetic() -> None:
    torch = pytest.importorskip("torch")
    E, G = RNG.standard_normal((5, 4)), RNG.standard_normal((6, 4))
    t = np.array([1, 4, 1, 0, 2, 1])
    src = "e[n,j] = E[t[n],j]\nL = G[n,j] e[n,j]"
    expected = tc.grad(src, "E")(E=E, t=t, G=G)
    f = tc.to_torch(src)
    Et = torch.tensor(E, requires_grad=True)
    f(E=Et, t=torch.tensor(t), G=torch.tensor(G)).backward()
    np.testing.assert_allclose(Et.grad.numpy(), expected, rtol=1e-12)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    fj = tc.to_jax(CONV)
    x, w = RNG.standard_normal(9), RNG.standard_normal(3)
    grad = jax.jit(jax.grad(lambda x: fj(x=x, w=jnp.asarray(w))))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(grad), tc.grad(CONV, "x")(x=x, w=w), rtol=1e-12)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tensorcalc", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_sizes_and_random_inputs_through_arithmetic() -> None:
    ran = _cli("check", "y[b,o,i,j] = X[b,c,i+a,j+e] K[o,c,a,e]", "--wrt", "K",
               "--size", "b=2,c=2,o=3,i=4,j=4,a=3,e=2")
    assert ran.returncode == 0, ran.stderr
    assert "agree" in ran.stdout
    ran = _cli("eval", "y[i] = x[i+k] w[k]", "--size", "i=8,k=3")
    assert ran.returncode == 0, ran.stderr
    assert len(ran.stdout.split()) == 8  # x drawn with 10 values: 8 valid positions
    ran = _cli("check", "L = logsumexp[j](Z[n,j]) - Z[n,t[n]]", "--wrt", "Z", "--size", "n=4,j=3")
    assert ran.returncode == 0, ran.stderr
    ran = _cli("eval", "y[i] = x[i+k] w[k]", "--size", "k=3")
    assert ran.returncode == 2 and "size of i" in ran.stderr
    ran = _cli("derive", "y[i] = x[i+k] w[k]; L = y[i]^2", "--wrt", "x", "--format", "einsum")
    assert ran.returncode == 0 and "x[i+k]" in ran.stdout


def test_dask_arrays_are_refused_with_a_clear_error() -> None:
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.arange(9.0), chunks=4)
    with pytest.raises(tc.InputError, match=r"x\[i\+1\].*not available for Dask"):
        tc.evaluate("d[i] = x[i+1] - x[i]", x=x)


def test_a_statement_declared_after_it_sizes_later_indices() -> None:
    x = RNG.standard_normal(9)
    # k takes y's length (7: shrunk by x[i+2]), which no input has
    p = tc.compile("y[i] = x[i+2] - x[i]\ninput y[k]\nz[k] = 1")
    assert p(x=x).shape == (7,)
    with pytest.raises(tc.ProgramError, match="with 1 indices but declared with 2"):
        tc.compile("y[i] = x[i+2]\ninput y[k,l]\nz[k] = 1")


def _central(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        out.append((np.asarray(f(up)) - np.asarray(f(down))) / (2 * eps))
    return np.moveaxis(np.array(out).reshape(x.shape + np.shape(out[0])), 0, -1) \
        if np.ndim(out[0]) else np.array(out).reshape(x.shape)


# Found by a fuzz of derivatives of index arithmetic against central differences: terms
# that shared summed index names across different ranges, tangents inlined out of their
# ranges, a declared name applied to a statement that used it for another axis.
FUZZED = [
    ("L = exp(x[i+1] - x[i]) + x[i+2] w[k] x[i+k]", "x", None),
    ("y[i] = x[i+k] w[k]\nz[i] = y[i+1] - y[i]\nL = exp(z[i])", "w", None),
    ("y[i] = x[2*i+k] w[k]\nz[i] = y[i+1] - y[i]\nL = sin(z[i])", "x", None),
    ("y[i] = x[i] w[k]\nz[i] = y[i+1] - y[i]\nL = sin(z[i])", "w", None),
    ("e[n,j] = E[t[n],j]\ny[n] = tanh(e[n,j] w[j])\nL = y[n] y[n+1]", "w", None),
    ("y[i] = x[2*i+k] w[k]\nL = y[i] y[i+1] w[k] x[i+k]", "w", None),
    ("y[i] = x[i+k] w[k]\nL = y[i] y[i+1] w[k] x[i+k]", "w", {"i": 6}),
    ("s[i,k] = softmax[k](x[i+k] w[k])\nL = s[i,k] c[i]", "w", None),
    ("y[i] = x[i-k+2] w[k]\nz[i] = y[i+1] - y[i]\nL = sigmoid(z[i])", "w", None),
    ("y[i] = x[i+2]^2 w[k]\nL = y[i] c[i]", "x", None),
    ("y[i] = sin(x[2*i+k] w[k])\nL = y[i] c[i]", "w", {"i": 10}),
]


def test_fuzzed_vjp_through_reads_past_the_end() -> None:
    """The caller's size of i (reads past x's end) carries over to the adjoint's reads."""
    r = np.random.default_rng(6)
    x, w, G = r.standard_normal(12), r.standard_normal(3), r.standard_normal(6)
    p = tc.compile("y[i] = sin(x[2*i+k] w[k])", sizes={"i": 6})
    v = tc.vjp(p, "w")(x=x, w=w, G=G)
    J = _central(lambda value: p(x=x, w=value), w)
    np.testing.assert_allclose(v, G @ J, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("src, wrt, sizes", FUZZED)
def test_fuzzed_gradients_and_hessians(src: str, wrt: str, sizes: dict | None) -> None:
    r = np.random.default_rng(5)
    arrays = {"x": r.standard_normal(12) * 0.5, "w": r.standard_normal(3) * 0.5,
              "c": r.standard_normal(10), "E": r.standard_normal((5, 3)),
              "t": r.integers(0, 5, 7)}
    p = tc.compile(src, sizes=sizes)
    need = {k: v for k, v in arrays.items() if k in p.inputs}

    def at(program: tc.Program, value: np.ndarray) -> object:
        return program(**{**need, wrt: value})

    g, h = tc.grad(p, wrt), tc.hessian(p, wrt)
    for d, of in ((g, p), (h, g)):
        value = d(**need)
        np.testing.assert_allclose(value, _central(lambda v, of=of: at(of, v), need[wrt]),
                                   rtol=1e-5, atol=1e-6, err_msg=str(d))
        np.testing.assert_allclose(tc.compile(str(d), sizes=sizes)(**need), value,
                                   rtol=1e-9, atol=1e-12, err_msg=str(d))


# the window's own indices kept (an unfold times a depthwise kernel): no convolution
# that torch runs itself (``backend/test_convolution_torch.py``), so every window is a
# strided view
UNFOLD = ("y[b,c,i,j,a,e] = x[b,c,i+a,j+e] W[c,a,e]\n"
          "L = G[b,c,i,j,a,e] y[b,c,i,j,a,e]")


@pytest.mark.parametrize("sizes", [None, {"i": 6, "j": 5}])
def test_torch_reads_windows_as_strided_views(sizes: dict | None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """On torch an affine read is ``torch.as_strided`` (a view, no gather), an axis read
    backwards (the input gradient's ``G[..., p-a, ...]``) a view flipped, and a padded
    ("same") read a functional pad: values equal NumPy's, and torch differentiates them
    again (double backward through ``to_torch``) as NumPy's derivative says."""
    torch = pytest.importorskip("torch")
    views = []
    as_strided = torch.as_strided

    def counted(*args: object) -> object:
        views.append(1)
        return as_strided(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "as_strided", counted)
    x, W = RNG.standard_normal((2, 3, 6, 5)), RNG.standard_normal((3, 3, 3))
    G = RNG.standard_normal((2, 3, 6, 5, 3, 3) if sizes else (2, 3, 4, 3, 3, 3))
    arrays = {"x": x, "W": W, "G": G}
    tensors = {k: torch.tensor(v) for k, v in arrays.items()}
    program = tc.compile(UNFOLD, sizes=sizes)
    for wrt in ("W", "x"):
        g = tc.grad(program, wrt)
        views.clear()
        np.testing.assert_allclose(g(**tensors).numpy(), g(**arrays), rtol=1e-12, atol=1e-12)
        assert views, f"the gradient w.r.t. {wrt} read no strided view"
    f = tc.to_torch(program)
    Wt = tensors["W"].clone().requires_grad_()
    (gW,) = torch.autograd.grad(f(**{**tensors, "W": Wt}), Wt, create_graph=True)
    v = torch.tensor(RNG.standard_normal(W.shape))
    (hv,) = torch.autograd.grad((gW * v).sum(), Wt, allow_unused=True, materialize_grads=True)
    np.testing.assert_allclose(gW.detach().numpy(), tc.grad(program, "W")(**arrays),
                               rtol=1e-12, atol=1e-12)
    assert not hv.abs().max() > 0  # L is linear in W: its Hessian is 0

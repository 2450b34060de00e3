"""Index arithmetic on torch tensors. A window read times a kernel runs as torch's own
convolution (``backend/convolution.py``): values, the forms that take it and the forms
that do not, gradients through it, and autograd of ``to_torch`` through it. A gather's
gradient is an in-place ``index_add_``, under ``vmap`` and to second order.

The oracles are torch's ``conv1d``/``conv2d``/``conv3d`` called by hand, explicit loops,
and the NumPy path of the same program (a strided view and one matrix product, itself
checked against JAX and ``np.correlate`` in ``calculus/test_index_arithmetic.py``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from corpus import GENERAL_WINDOW_PRODUCTS, NATIVE_CONVOLUTIONS, window_arrays

import tensorcalc as tc

torch = pytest.importorskip("torch")
F = torch.nn.functional

EXACT = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture
def convolutions(monkeypatch):
    """Counts the calls of torch's convolutions (and of its convolution's backward) by the
    programs bound from now on."""
    calls = {"conv1d": 0, "conv2d": 0, "conv3d": 0, "convolution_backward": 0}
    for name in calls:
        where = torch.ops.aten if name == "convolution_backward" else F
        original = getattr(where, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(where, name, counted)
    return calls


def _torch(arrays):
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _both(src, arrays, sizes=None):
    """The program's value on torch tensors and on NumPy arrays (separate bindings)."""
    on_torch = tc.compile(src).evaluate(_torch(arrays), sizes=sizes)
    on_numpy = tc.compile(src).evaluate(arrays, sizes=sizes)
    assert isinstance(on_torch, torch.Tensor)
    return on_torch.numpy(), np.asarray(on_numpy)


@pytest.mark.parametrize("name", sorted(NATIVE_CONVOLUTIONS))
def test_a_correlation_on_torch_runs_as_torchs_convolution(name, convolutions):
    src, shapes, sizes, which = NATIVE_CONVOLUTIONS[name]
    got, expected = _both(src, window_arrays(shapes), sizes)
    np.testing.assert_allclose(got, expected, **EXACT)
    assert convolutions[which] == 1, convolutions
    assert sum(convolutions.values()) == 1


def test_the_standard_form_equals_conv2d_called_by_hand():
    a = _torch(window_arrays({"x": (2, 3, 7, 6), "W": (4, 3, 3, 2)}))
    y = tc.compile("y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]")(**a)
    torch.testing.assert_close(y, F.conv2d(a["x"], a["W"]), rtol=1e-12, atol=1e-12)
    same = tc.compile("y[b,o,i,j] = x[b,c,2*i+a-1,2*j+e-1] W[o,c,a,e]").evaluate(
        a, sizes={"i": 4, "j": 4})
    torch.testing.assert_close(same, F.conv2d(a["x"], a["W"], stride=2, padding=1),
                               rtol=1e-12, atol=1e-12)


def test_a_flipped_read_equals_explicit_loops():
    """``y[i] = x[i-a] w[a]``: a full convolution, zeros outside ``x``."""
    x, w = np.arange(1.0, 6.0), np.array([1.0, 10.0, 100.0])
    y = tc.compile("y[i] = x[i-a] w[a]").evaluate(_torch({"x": x, "w": w}), sizes={"i": 7})
    expected = [sum(w[a] * x[i - a] for a in range(3) if 0 <= i - a < 5) for i in range(7)]
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(expected, np.convolve(x, w))


@pytest.mark.parametrize("name", sorted(GENERAL_WINDOW_PRODUCTS))
def test_other_window_products_keep_the_general_product(name, convolutions):
    src, shapes, sizes = GENERAL_WINDOW_PRODUCTS[name]
    got, expected = _both(src, window_arrays(shapes), sizes)
    np.testing.assert_allclose(got, expected, **EXACT)
    assert sum(convolutions.values()) == 0, convolutions


def test_mixed_dtypes_are_promoted():
    a = window_arrays({"x": (2, 3, 6, 6), "W": (4, 3, 3, 3)})
    t = {"x": torch.from_numpy(a["x"]).float(), "W": torch.from_numpy(a["W"])}
    y = tc.compile("y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]")(**t)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, F.conv2d(t["x"].double(), t["W"]))


LOSS = ("y[b,o,i,j] = x[b,c,2*i+a-1,j+e-1] W[o,c,a,e]; "
        "L = (y[b,o,i,j] - T[b,o,i,j])^2")
LOSS_SHAPES = {"x": (2, 3, 7, 6), "W": (4, 3, 3, 3), "T": (2, 4, 4, 6)}
LOSS_SIZES = {"i": 4, "j": 6}  # stride 2 with padding 1; "same" along j


@pytest.mark.parametrize("wrt", ["x", "W"])
def test_gradients_of_a_strided_padded_convolution_on_torch(wrt, convolutions):
    """Both gradients run through torch's convolution, and equal torch autograd's."""
    a = window_arrays(LOSS_SHAPES, seed=3)
    grad = tc.grad(tc.compile(LOSS, sizes=LOSS_SIZES), wrt)
    t = _torch(a)
    got = grad(**t)
    assert sum(convolutions.values()) >= 2  # the forward and the gradient's product
    np.testing.assert_allclose(got.numpy(), np.asarray(grad(**a)), **EXACT)
    leaf = t[wrt].clone().requires_grad_(True)
    args = {**t, wrt: leaf}
    y = F.conv2d(F.pad(args["x"], (1, 1, 1, 1)), args["W"], stride=(2, 1))
    (expected,) = torch.autograd.grad(((y - args["T"]) ** 2).sum(), leaf)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_to_torch_through_a_convolution_to_second_order():
    """Double backward and ``torch.func`` through ``to_torch`` of a convolution loss,
    against the same loss written with ``conv2d``."""
    a = _torch(window_arrays(LOSS_SHAPES, seed=4))
    f = tc.to_torch(tc.compile(LOSS, sizes=LOSS_SIZES))

    def ours(W):
        return f(x=a["x"], W=W, T=a["T"])

    def theirs(W):
        y = F.conv2d(F.pad(a["x"], (1, 1, 1, 1)), W, stride=(2, 1))
        return ((y - a["T"]) ** 2).sum()

    W = a["W"]
    torch.testing.assert_close(torch.func.grad(ours)(W), torch.func.grad(theirs)(W))
    v = torch.randn_like(W)
    hvp = torch.func.jvp(torch.func.grad(ours), (W,), (v,))[1]
    expected = torch.func.jvp(torch.func.grad(theirs), (W,), (v,))[1]
    torch.testing.assert_close(hvp, expected)
    leaf = W.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ours(leaf), leaf, create_graph=True)
    (h,) = torch.autograd.grad((g * v).sum(), leaf)
    torch.testing.assert_close(h, expected)


def test_vmap_over_a_batch_of_kernels():
    a = _torch(window_arrays({"x": (2, 3, 6, 6), "W": (5, 4, 3, 3, 3)}, seed=5))
    f = tc.to_torch("y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]; L = y[b,o,i,j]^2")
    got = torch.func.vmap(lambda W: f(x=a["x"], W=W))(a["W"])
    expected = torch.stack([(F.conv2d(a["x"], W) ** 2).sum() for W in a["W"]])
    torch.testing.assert_close(got, expected)


def _conv1d_by_autograd(x, W, G, wrt):
    """torch's own gradient of ``sum(G * conv1d(x, W))`` w.r.t. ``wrt``."""
    leaf = {"x": x, "W": W}[wrt].clone().requires_grad_(True)
    args = {"x": x, "W": W, wrt: leaf}
    (grad,) = torch.autograd.grad((F.conv1d(args["x"], args["W"]) * G).sum(), leaf)
    return grad


# the three forms, each with its axes (first the window tensor's, then the kernel's, then
# the result's), the shapes of the first two, the sizes to give, and torch's value of it
FORMS = {
    "forward": ((("b", "c", "i+a"), ("o", "c", "a"), ("b", "o", "i")),
                ((2, 3, 7), (4, 3, 3)), None,
                lambda x, W: F.conv1d(x, W)),
    "weight gradient": ((("k", "q", "l+r"), ("k", "p", "l"), ("p", "q", "r")),
                        ((2, 3, 7), (2, 4, 5)), None,
                        lambda x, G: _conv1d_by_autograd(x, torch.zeros(4, 3, 3,
                                                                        dtype=x.dtype),
                                                         G, "W")),
    "input gradient": ((("p", "k", "r-l"), ("k", "q", "l"), ("p", "q", "r")),
                       ((2, 4, 5), (4, 3, 3)), {"r": 7},
                       lambda G, W: _conv1d_by_autograd(torch.zeros(2, 3, 7, dtype=G.dtype),
                                                        W, G, "x")),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_index_order_of_a_1d_convolution_and_its_gradients(form, convolutions):
    """All orders of the window tensor's, the kernel's and the result's axes, against
    torch's conv1d and its autograd gradients."""
    (xa, ka, ya), (xshape, kshape), sizes, value = FORMS[form]
    rng = np.random.default_rng(6)
    x0, k0 = rng.standard_normal(xshape), rng.standard_normal(kshape)
    expected0 = value(torch.from_numpy(x0), torch.from_numpy(k0)).numpy()
    convolutions.update(dict.fromkeys(convolutions, 0))  # the oracle's own calls
    count = 0
    for xs, ks, ys in itertools.product(itertools.permutations(xa), itertools.permutations(ka),
                                        itertools.permutations(ya)):
        src = f"y[{','.join(ys)}] = x[{','.join(xs)}] K[{','.join(ks)}]"
        x = np.transpose(x0, [xa.index(i) for i in xs])
        k = np.transpose(k0, [ka.index(i) for i in ks])
        y = tc.compile(src).evaluate({"x": torch.from_numpy(x), "K": torch.from_numpy(k)},
                                     sizes=sizes)
        expected = np.transpose(expected0, [ya.index(i) for i in ys])
        np.testing.assert_allclose(y.numpy(), expected, **EXACT, err_msg=src)
        count += 1
    assert count == 216
    mode = {"forward": "conv1d", "weight gradient": "convolution_backward",
            "input gradient": "convolution_backward"}[form]
    assert convolutions[mode] == count  # each ran as one of torch's own


def test_a_scatter_add_on_torch_under_vmap_and_to_second_order():
    """The gradient of a gather is an ``index_add_`` into zeros made like the values (so
    that they are batched under ``vmap`` too): values against torch's own indexing,
    repeated ids included, out of ``vmap``, ``torch.func.hessian`` and double backward."""
    f = tc.to_torch("L = sum[n,j](tanh(E[t[n],j]) G[n,j])")
    E = torch.randn(7, 3, dtype=torch.float64)
    t = torch.tensor([0, 3, 3, 6, 0])
    G = torch.randn(5, 3, dtype=torch.float64)

    def ref(E, G=G):
        return (torch.tanh(E[t]) * G).sum()

    grad = tc.grad("L = sum[n,j](tanh(E[t[n],j]) G[n,j])", "E")
    Gs = torch.randn(4, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(torch.func.vmap(lambda G: grad(E=E, t=t, G=G))(Gs),
                               torch.stack([torch.func.grad(ref)(E, G) for G in Gs]))
    torch.testing.assert_close(torch.func.hessian(lambda E: f(E=E, t=t, G=G))(E),
                               torch.func.hessian(ref)(E))
    leaf = E.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(E=leaf, t=t, G=G), leaf, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), leaf)
    torch.testing.assert_close(h, torch.autograd.functional.hvp(ref, E, torch.ones_like(E))[1])

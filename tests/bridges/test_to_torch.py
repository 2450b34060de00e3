"""``to_torch`` to any order: double backward, ``torch.func`` (grad, hessian, jacfwd,
jacrev, vjp, jvp, vmap) and ``torch.compile``, each against torch's own autodiff of the
same function written in torch, in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import tensorcalc as tc

torch = pytest.importorskip("torch")
func = torch.func

MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"
LOGISTIC = "z[n] = X[n,d] w[d]; L = sum[n](softplus(z[n]) - y[n] z[n])"
POWER = "L = sum[i](tanh(A[i,j] x[j])^3) + (x[j] x[j])^1.5"
SOFTMAX = "L = sum[n](logsumexp[j](Z[n,k] U[k,j]) - Y[n,j] Z[n,k] U[k,j])"
GAUSS = "r[i] = x[i] - mu[i]\nL = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]"


def _mlp(X: Any, W: Any, c: Any, V: Any, T: Any) -> Any:
    return ((torch.tanh(X @ W + c) @ V - T) ** 2).sum()


def _logistic(X: Any, w: Any, y: Any) -> Any:
    z = X @ w
    return (torch.nn.functional.softplus(z) - y * z).sum()


def _power(A: Any, x: Any) -> Any:
    return (torch.tanh(A @ x) ** 3).sum() + (x @ x) ** 1.5


def _softmax(Z: Any, U: Any, Y: Any) -> Any:
    logits = Z @ U
    return (torch.logsumexp(logits, 1) - (Y * logits).sum(1)).sum()


def _gauss(S: Any, x: Any, mu: Any) -> Any:
    r = x - mu
    return 0.5 * torch.linalg.slogdet(S)[1] + 0.5 * r @ torch.linalg.solve(S, r)


def _arrays() -> dict[str, dict[str, Any]]:
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> Any:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    a = r(4, 4)
    return {
        "mlp": {"X": r(5, 4), "W": r(4, 3), "c": r(3), "V": r(3, 2), "T": r(5, 2)},
        "logistic": {"X": r(6, 3), "w": r(3), "y": (r(6) > 0).double()},
        "power": {"A": r(3, 4), "x": r(4)},
        "softmax": {"Z": r(5, 3), "U": r(3, 4),
                    "Y": torch.eye(4, dtype=torch.float64)[[0, 2, 1, 3, 0]]},
        "gauss": {"S": a @ a.T + 4 * torch.eye(4, dtype=torch.float64), "x": r(4), "mu": r(4)},
    }


CASES: list[tuple[str, str, Callable[..., Any], str]] = [
    ("mlp", MLP, _mlp, "W"), ("logistic", LOGISTIC, _logistic, "w"),
    ("power", POWER, _power, "x"), ("softmax", SOFTMAX, _softmax, "U"),
    ("gauss", GAUSS, _gauss, "mu"),
]


def _pair(key: str, program: str, reference: Callable[..., Any], wrt: str
          ) -> tuple[Callable[[Any], Any], Callable[[Any], Any], Any]:
    arrays = _arrays()[key]
    f = tc.to_torch(program)
    return (lambda v: f(**{**arrays, wrt: v}), lambda v: reference(**{**arrays, wrt: v}),
            arrays[wrt])


@pytest.mark.parametrize("key, program, reference, wrt", CASES)
def test_first_second_and_third_order(key: str, program: str, reference: Callable[..., Any],
                                      wrt: str) -> None:
    ours, theirs, x = _pair(key, program, reference, wrt)
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(func.grad(ours)(x), func.grad(theirs)(x))
    torch.testing.assert_close(func.hessian(ours)(x), func.hessian(theirs)(x))
    torch.testing.assert_close(func.jacrev(func.jacrev(ours))(x),
                               func.jacrev(func.jacrev(theirs))(x))
    if x.ndim == 1:  # third order: reverse over hessian (forward over reverse)
        torch.testing.assert_close(func.jacrev(func.hessian(ours))(x),
                                   func.jacrev(func.hessian(theirs))(x))
        torch.testing.assert_close(func.jacrev(func.jacrev(func.jacrev(ours)))(x),
                                   func.jacrev(func.jacrev(func.jacrev(theirs)))(x))


def test_forward_over_forward_is_refused_not_zeros() -> None:
    # torch does not carry an outer forward level through an autograd.Function's jvp:
    # it would answer zeros; tensorcalc refuses instead
    f = tc.to_torch("s = sigmoid(x[i]) x[i]")
    x = torch.linspace(-1, 1, 3, dtype=torch.float64)
    for transform in (lambda g: func.jacfwd(func.jacfwd(g)),
                      lambda g: func.jacfwd(func.hessian(g))):
        with pytest.raises(tc.DerivativeError, match="forward mode over forward mode"):
            transform(lambda v: f(x=v))(x)


@pytest.mark.parametrize("key, program, reference, wrt", CASES)
def test_double_backward_and_hessian_vector_products(
        key: str, program: str, reference: Callable[..., Any], wrt: str) -> None:
    ours, theirs, x0 = _pair(key, program, reference, wrt)
    v = torch.ones_like(x0) / 3
    products = []
    for fn in (ours, theirs):
        x = x0.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), x)
        products.append(hv)
    torch.testing.assert_close(*products)
    torch.testing.assert_close(func.jvp(func.grad(ours), (x0,), (v,))[1],
                               func.jvp(func.grad(theirs), (x0,), (v,))[1])


def test_vmap_and_mixed_derivatives() -> None:
    arrays = _arrays()["mlp"]
    f = tc.to_torch(MLP)
    batch = torch.randn(6, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(func.vmap(func.grad(lambda W: f(**{**arrays, "W": W})))(batch),
                               func.vmap(func.grad(lambda W: _mlp(**{**arrays, "W": W})))(batch))

    def ours(W: Any, V: Any) -> Any:
        return f(**{**arrays, "W": W, "V": V})

    def theirs(W: Any, V: Any) -> Any:
        return _mlp(**{**arrays, "W": W, "V": V})

    torch.testing.assert_close(
        func.jacrev(func.grad(ours, argnums=0), argnums=1)(arrays["W"], arrays["V"]),
        func.jacrev(func.grad(theirs, argnums=0), argnums=1)(arrays["W"], arrays["V"]))


def test_a_non_scalar_output_under_jacfwd_and_jacrev() -> None:
    f = tc.to_torch("H[b,h] = tanh(X[b,d] W[d,h] + c[h])")
    X, W, c = (torch.randn(*s, dtype=torch.float64) for s in ((4, 3), (3, 2), (2,)))
    expected = func.jacrev(lambda W: torch.tanh(X @ W + c))(W)
    torch.testing.assert_close(func.jacfwd(lambda W: f(X=X, W=W, c=c))(W), expected)
    torch.testing.assert_close(func.jacrev(lambda W: f(X=X, W=W, c=c))(W), expected)


def test_torch_compile_runs_it_between_graphs() -> None:
    arrays = _arrays()["mlp"]
    f = tc.to_torch(MLP)
    compiled = torch.compile(lambda W: 2 * f(**{**arrays, "W": W}) + 1)
    W = arrays["W"].clone().requires_grad_()
    value = compiled(W)
    value.backward()
    W2 = arrays["W"].clone().requires_grad_()
    (2 * _mlp(**{**arrays, "W": W2}) + 1).backward()
    torch.testing.assert_close(value.detach(), 2 * _mlp(**arrays) + 1)
    torch.testing.assert_close(W.grad, W2.grad)


def test_a_training_step_runs_one_shared_backward_program() -> None:
    # Plain autograd: the forward pass keeps every statement's value and one program
    # computes every gradient wanted (their shared adjoints once), recomputing nothing.
    f = tc.to_torch(MLP)
    arrays = _arrays()["mlp"]
    ours = {k: v.clone().requires_grad_(k in ("W", "c", "V")) for k, v in arrays.items()}
    theirs = {k: v.clone().requires_grad_(k in ("W", "c", "V")) for k, v in arrays.items()}
    f(**ours).backward()
    _mlp(**theirs).backward()
    for name in ("W", "c", "V"):
        torch.testing.assert_close(ours[name].grad, theirs[name].grad)
    from tensorcalc.bridges.bound import BoundProgram

    shared = BoundProgram(tc.compile(MLP)).shared_backward(("W", "c", "V"))
    assert shared is not None and len(shared.results) == 3
    names = [st.name for st in shared.plan.statements]
    assert "H" not in names and "P" not in names  # kept from the forward pass
    assert names.count("H_bar") == 1  # one adjoint for the three gradients


def _counting_tanh(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the tanh kernels tensorcalc runs (the forward statement's function)."""
    from tensorcalc.ops.functions import FUNCTIONS

    calls = [0]
    entry = FUNCTIONS["tanh"]
    kernel = entry.kernel

    def counted(x: Any, xp: Any) -> Any:
        calls[0] += 1
        return kernel(x, xp)

    monkeypatch.setitem(FUNCTIONS, "tanh", type(entry)(**{**vars(entry), "kernel": counted}))
    return calls


def test_double_backward_computes_nothing_of_the_forward_pass_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Hessian-vector product by double backward: the forward pass keeps H and P as
    outputs, the differentiable first backward pass reads them (no tanh), and the second
    sends cotangents to them: tanh runs once, in the forward pass, and the product equals
    torch's own."""
    calls = _counting_tanh(monkeypatch)
    f = tc.to_torch(MLP)
    arrays = _arrays()["mlp"]
    v = torch.randn_like(arrays["W"])
    products = []
    for fn in (f, _mlp):
        W = arrays["W"].clone().requires_grad_()
        calls[0] = 0
        (g,) = torch.autograd.grad(fn(**{**arrays, "W": W}), W, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), W)
        products.append(hv)
        if fn is f:
            assert calls[0] == 1, f"tanh ran {calls[0]} times"
    torch.testing.assert_close(*products)


def test_third_order_by_plain_autograd_and_kept_values_that_are_views() -> None:
    # Three nested backward passes: the last sends cotangents to kept values while a
    # graph is being made (the seeded program, run as a to_torch function itself)
    f = tc.to_torch("Y[j,i] = X[i,j]; s[i] = tanh(Y[j,i] w[j]); L = s[i]^3")
    X = torch.randn(3, 4, dtype=torch.float64)
    w0 = torch.randn(4, dtype=torch.float64)

    def theirs(X: Any, w: Any) -> Any:
        return (torch.tanh(X @ w) ** 3).sum()

    results = []
    for fn in (lambda w: f(X=X, w=w), lambda w: theirs(X, w)):
        w = w0.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(w), w, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), w, create_graph=True)
        (t,) = torch.autograd.grad((h * h).sum(), w)
        results.append((g.detach(), h.detach(), t))
    for ours, ref in zip(*results):
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("key, program, reference, wrt",
                         [c for c in CASES if _arrays()[c[0]][c[3]].ndim == 1])
def test_third_order_by_nested_plain_autograd(key: str, program: str,
                                              reference: Callable[..., Any], wrt: str) -> None:
    """Plain autograd three times (the kept values' path at every level): the gradient,
    a Hessian-vector product and the derivative of its square, as torch's own."""
    ours, theirs, x0 = _pair(key, program, reference, wrt)
    v = torch.linspace(-1, 1, x0.numel(), dtype=torch.float64).reshape(x0.shape)
    results = []
    for fn in (ours, theirs):
        x = x0.clone().requires_grad_()
        (g,) = torch.autograd.grad(fn(x), x, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), x, create_graph=True)
        # a Hessian-vector product that does not depend on x (a quadratic form) has no
        # graph, as with torch's own linear functions: its derivative is 0
        t = torch.autograd.grad((hv * hv).sum(), x, allow_unused=True,
                                materialize_grads=True)[0] if hv.requires_grad \
            else torch.zeros_like(x)
        results.append((g.detach(), hv.detach(), t))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_first_order_backward_of_a_program_with_sizes_given_by_name():
    """The merged backward pass is bound with the program's sizes (it raised KeyError
    '#i' before): a "same" convolution, whose padded read needs the size of i."""
    f = tc.to_torch(tc.compile("y[i] = x[i+k-1] w[k]; L = y[i]^2", sizes={"i": 6}))
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    f(x=x, w=w).backward()
    x2, w2 = x.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
    y = torch.nn.functional.conv1d(x2[None, None], w2[None, None], padding=1)
    (y ** 2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(w.grad, w2.grad)

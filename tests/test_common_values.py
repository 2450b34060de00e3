"""Values computed once: a function repeated up to the names of its bound indices is one
operand of the plan, and a derivative refers to the statement that computes a value
instead of copying it (issue "Speed II", item 2)."""

from __future__ import annotations

import numpy as np

import tensorcalc as tc
from tensorcalc.backend.plan import CallOperand
from tests.fd import numeric_jacobian

LOGISTIC = "L = sum[k](softplus(-y[k] X[k,l] w[l]))"
TWO_PRODUCTS = "H[b,h] = tanh(X[b,d] W[d,h] + Z[b,e] U[e,h])\nL = H[b,h]^2"


def test_the_exported_logistic_hessian_calls_sigmoid_once() -> None:
    h = tc.hessian(LOGISTIC, "w")
    text = str(h)
    assert "sigmoid(-X[k,l] w[l] y[k])" in text and "sigmoid(-X[k,l1] w[l1] y[k])" in text
    code = h.to_python()
    assert code.count("= _sigmoid(") == 1, code
    calls = [op for st in h.plan.statements for t in st.rhs.terms for op in t.operands
             if isinstance(op, CallOperand)]
    assert calls and all(op.shared is not None for op in calls if op.fn == "sigmoid")
    rng = np.random.default_rng(0)
    X, y, w = rng.standard_normal((7, 3)), np.sign(rng.standard_normal(7)), \
        rng.standard_normal(3)
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - our own generated code
    s = 1 / (1 + np.exp(y * (X @ w)))
    expected = X.T @ np.diag(s * (1 - s)) @ X
    np.testing.assert_allclose(h(X=X, y=y, w=w), expected, rtol=1e-12)
    np.testing.assert_allclose(namespace[h.result](X=X, y=y, w=w), expected,  # type: ignore[operator]
                               rtol=1e-12)


def test_a_two_product_tanh_gradient_reuses_the_forward_value() -> None:
    g = tc.grad(TWO_PRODUCTS, "W")
    assert str(g).splitlines()[-1] == "dL_dW[p,q] = H_bar[k,q] X[k,p] (1 - H[k,q]^2)"
    assert str(g).count("tanh(") == 1  # the forward statement only
    j = tc.derive(TWO_PRODUCTS, "W", of="H")
    assert str(j).splitlines()[-1] == "dH_dW[b,h,p,q] = delta[h,q] X[b,p] (1 - H[b,h]^2)"
    rng = np.random.default_rng(1)
    arrays = {"X": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 2)),
              "Z": rng.standard_normal((4, 5)), "U": rng.standard_normal((5, 2))}
    np.testing.assert_allclose(g(**arrays), numeric_jacobian(TWO_PRODUCTS, "W", arrays),
                               rtol=1e-6, atol=1e-8)


def test_shared_values_keep_their_axes_in_order() -> None:
    # The same function twice with bound indices named differently, its free axes in one
    # order: one operand. Written with the free axes in another order it is another value.
    p = tc.compile("Y[i,j] = exp(A[i,k] B[k,j]) + exp(A[i,m] B[m,j]) "
                   "+ exp(B[k,i] A[j,k])")
    slots = [op.shared for t in p.plan.statements[0].rhs.terms for op in t.operands]
    assert slots[0] is not None and slots[0] == slots[1] and slots[2] is None
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(p(A=A, B=B), 2 * np.exp(A @ B) + np.exp((A @ B).T),
                               rtol=1e-12)

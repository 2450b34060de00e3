"""Values computed once: a function repeated up to the names of its bound indices is one
operand of the plan, and a derivative refers to the statement that computes a value
instead of copying it."""

from __future__ import annotations

import numpy as np
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.backend.operands import CallOperand
from tensorcalc.calculus.reuse import elementwise_groups, share_products

LOGISTIC = "L = sum[k](softplus(-y[k] X[k,l] w[l]))"
TWO_PRODUCTS = "H[b,h] = tanh(X[b,d] W[d,h] + Z[b,e] U[e,h])\nL = H[b,h]^2"


def test_the_exported_logistic_hessian_calls_sigmoid_once() -> None:
    h = tc.hessian(LOGISTIC, "w")
    text = str(h)
    # computed once, by a statement of its own (calculus/subexpressions.py)
    assert text.count("sigmoid(") == 1 and "X_w_sigmoid[k] (1 - X_w_sigmoid[k])" in text
    code = h.to_python()
    assert code.count("= _sigmoid(") == 1, code
    calls = [op for st in h.plan.statements for t in st.rhs.terms for op in t.operands
             if isinstance(op, CallOperand)]
    assert [op.fn for op in calls].count("sigmoid") == 1
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


MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"


def _mlp_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"X": rng.standard_normal((6, 5)), "W": rng.standard_normal((5, 4)),
            "c": rng.standard_normal(4), "V": rng.standard_normal((4, 3)),
            "T": rng.standard_normal((6, 3))}


def test_a_product_two_terms_contract_is_one_statement() -> None:
    """The VJP of the MLP's VJP (a Hessian-vector product) contracts ``G2[k,h] X[b,k]`` in
    two statements: it is computed once, as a statement laid out like its first user."""
    first = tc.vjp(MLP, "W", "G")
    second = tc.vjp(first, "W", "G2")
    lines = str(second).splitlines()
    assert "G2_X[b,h] = G2[k,h] X[b,k]" in lines, lines
    assert sum("G2[" in line for line in lines) == 1, lines
    users = [line.split("[")[0] for line in lines if "G2_X[b,h]" in line.split("=", 1)[1]]
    assert users == ["H_bar_bar", "H_bar1"], lines
    rng = np.random.default_rng(2)
    arrays = {**_mlp_arrays(rng), "G": np.float64(1.0)}
    G2 = rng.standard_normal((5, 4))
    # the directional derivative of the gradient along G2, by central differences
    eps = 1e-6
    plus = first(**{**arrays, "W": arrays["W"] + eps * G2})
    minus = first(**{**arrays, "W": arrays["W"] - eps * G2})
    np.testing.assert_allclose(second(**arrays, G2=G2), (plus - minus) / (2 * eps),
                               rtol=1e-6, atol=1e-8)


def _shared(text: str) -> list[str]:
    p = tc.compile(text)
    names = iter(f"S{k}" for k in range(10))
    return [f"{st.name}[{','.join(st.indices)}]"
            for st in share_products(list(p.statements), lambda base: next(names))]


def test_only_closed_products_used_twice_are_shared() -> None:
    assert _shared("Y[b,h] = G[k,h] X[b,k] u[b,h]\nZ[h,b] = X[b,k] G[k,h] v[b,h]") == \
        ["S0[b,h]", "Y[b,h]", "Z[h,b]"]
    # the sum over k reaches the tanh: contracting G X first is not a way to run Y
    assert _shared("Y[b,h] = G[k,h] X[b,k] tanh(X[b,k])\nZ[b,h] = G[k,h] X[b,k] v[b,h]") \
        == ["Y[b,h]", "Z[b,h]"]
    # a whole term is no part of one: Z refers to Y already where reuse finds it
    assert _shared("Y[b,h] = G[k,h] X[b,k]\nZ[b,h] = G[k,h] X[b,k] v[b,h]") == \
        ["Y[b,h]", "Z[b,h]"]
    assert not any(st.name.endswith("_X") for st in tc.grad(MLP, "W").statements)


def test_the_merged_backward_pass_makes_a_shared_elementwise_product_once() -> None:
    """to_torch's first-order backward pass runs one program for W's, c's and V's
    gradients: ``H_bar (1 - H^2)``, which W's and c's both need, is one statement there,
    laid out as its operands are, and every gradient equals its own VJP program's."""
    from tensorcalc.bridges.bound import BoundProgram

    bound = BoundProgram(MLP)
    shared = bound.shared_backward(("W", "c", "V"))
    assert shared is not None
    statements = {st.name: st for st in shared.plan.statements}
    product = [st for name, st in statements.items() if name.endswith("_product")]
    assert len(product) == 1 and product[0].indices == ("k", "q"), statements
    users = [name for name, st in statements.items()
             if any(product[0].name in str(op) for t in st.rhs.terms for op in t.operands)]
    assert users == ["vjp_W", "vjp_c"], users
    rng = np.random.default_rng(3)
    arrays = _mlp_arrays(rng)
    values = bound.program.statement_values(dict(arrays))
    env = {n: v for n, v in {**arrays, **values}.items() if n in shared.plan.inputs}
    env[bound.cotangent] = np.float64(1.0)
    for name, value in zip(("W", "c", "V"), shared(env)):
        np.testing.assert_allclose(value, bound.vjp(name)(**arrays, **{bound.cotangent: 1.0}),
                                   rtol=1e-12, atol=1e-12)


def test_elementwise_groups_used_twice_are_shared() -> None:
    names = iter(f"S{k}" for k in range(10))
    p = tc.compile("y[p] = a[k,p] b[k,p]\nz[p,q] = a[k,q] X[k,p] b[k,q]\nw[k] = a[k,q] c[q]")
    out = share_products(list(p.statements), lambda base: next(names), elementwise_groups)
    lines = [f"{st.name}[{','.join(st.indices)}]" for st in out]
    assert lines == ["S0[k,p]", "y[p]", "z[p,q]", "w[k]"], lines

"""Functions nested in one statement are named as statements before differentiating
(``tensorcalc.calculus.split``): the derivative of a chain, the numbers of the nesting."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.calculus.split import split_nested


def sources(depth: int, fn: str) -> tuple[str, str]:
    e = "x[k0]"
    for d in range(1, depth + 1):
        e = (f"softmax[k{d}](W{d}[k{d},k{d - 1}] {e})" if fn == "softmax"
             else f"tanh(W{d}[k{d},k{d - 1}] {e})")
    chain = ["h0[k] = x[k]"] + [
        f"h{d}[k] = softmax[k](W{d}[k,j] h{d - 1}[j])" if fn == "softmax"
        else f"h{d}[k] = tanh(W{d}[k,j] h{d - 1}[j])" for d in range(1, depth + 1)]
    return f"L = c[k{depth}] {e}", "\n".join(chain + [f"L = c[k] h{depth}[k]"])


def arrays(depth: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(depth)
    out = {f"W{d}": rng.normal(size=(3, 3)) for d in range(1, depth + 1)}
    out.update(x=rng.normal(size=3), c=rng.normal(size=3))
    return out


@pytest.mark.parametrize("fn", ["softmax", "tanh"])
@pytest.mark.parametrize("depth", [2, 6])
def test_nested_layers_differentiate_as_their_chain(fn: str, depth: int) -> None:
    nested, chain = sources(depth, fn)
    a = arrays(depth)
    for derive in (tc.grad, tc.hessian):
        np.testing.assert_allclose(derive(nested, "x")(**a), derive(chain, "x")(**a),
                                   rtol=1e-10, atol=1e-13)


def test_nested_layers_against_jax(jax64: Any) -> None:
    jnp = jax64.numpy
    nested, _ = sources(6, "softmax")
    a = arrays(6)

    def loss(x: Any) -> Any:
        h = x
        for d in range(1, 7):
            h = jax64.nn.softmax(jnp.asarray(a[f"W{d}"]) @ h)
        return jnp.asarray(a["c"]) @ h

    np.testing.assert_allclose(tc.grad(nested, "x")(**a), jax64.grad(loss)(a["x"]),
                               rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(tc.hessian(nested, "x")(**a), jax64.hessian(loss)(a["x"]),
                               rtol=1e-9, atol=1e-13)


def test_what_is_named_and_what_stays() -> None:
    def names(src: str) -> list[str]:
        return [st.name for st in split_nested(tc.compile(src).statements, lambda b: b)]

    assert names(sources(3, "softmax")[0]) == ["L_in", "L_in", "L"]  # fresh: a stand-in
    # a function whose argument holds no function stays where it is written
    assert names("L = log(sum[j](exp(x[j])))") == ["L"]
    assert names("s = x[i] tanh(A[i,j] y[j])") == ["s"]
    # a reduction inside a function is named; index arithmetic is left as written
    assert names("L = log(softmax[j](z[j]))") == ["L_in", "L"]
    assert names("L = tanh(softmax[j](x[j+1]))") == ["L"]


def shared_chain(depth: int) -> str:
    """``depth`` softmax layers that all use one ``W``: every layer's tangent depends on
    every earlier one."""
    lines = ["h0[i] = softmax[i](W[i,j] x[j])"] + [
        f"h{d}[i] = softmax[i](W[i,j] h{d - 1}[j])" for d in range(1, depth)]
    return "\n".join(lines + [f"L = c[i] h{depth - 1}[i]"])


def test_hessian_of_a_chain_that_shares_its_weights(jax64: Any) -> None:
    jnp = jax64.numpy
    rng = np.random.default_rng(8)
    W, x, c = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4)

    def loss(W: Any) -> Any:
        h = x
        for _ in range(8):
            h = jax64.nn.softmax(W @ h)
        return jnp.asarray(c) @ h

    got = tc.hessian(shared_chain(8), "W")(W=W, x=x, c=c)
    np.testing.assert_allclose(got, jax64.hessian(loss)(W), rtol=1e-9, atol=1e-14)


def test_a_shared_chain_hessian_grows_with_depth_not_exponentially() -> None:
    # A tangent keeps one term per pattern of deltas (terms with the same deltas share a
    # core statement); kept term by term, they doubled at every layer and 6 layers hit the
    # 30,000-factor limit after 9 s.
    def terms(depth: int) -> int:
        return sum(len(st.rhs.terms) for st in tc.hessian(shared_chain(depth), "W").statements)

    t4, t8, t16 = terms(4), terms(8), terms(16)
    # each layer adds as many terms as the one before it (37 today)
    assert (t16 - t8) / 8 <= 1.2 * (t8 - t4) / 4

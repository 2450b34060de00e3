"""Derivatives of recurrences (docs/recurrences.md): the adjoint is a recurrence running
the other way, tangents one running the same way, derived once whatever the number of
steps; checked against JAX float64 (``lax.scan``) and central differences, to second
order, printed and parsed again, and on torch and JAX arrays."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from corpus import ELMAN
from fd import numeric_jacobian

import tensorcalc as tc
from tensorcalc.backend.plan import plan_program
from tensorcalc.ir.recurrences import recurrence_groups

jax = pytest.importorskip("jax")
jnp = jax.numpy
jax.config.update("jax_enable_x64", True)

NAMES = ("h0", "W", "U", "x", "b", "y")


def arrays(seed=0, T=6):
    rng = np.random.default_rng(seed)
    return dict(h0=rng.normal(size=3), W=rng.normal(size=(3, 3)), U=rng.normal(size=(3, 2)),
                x=rng.normal(size=(T, 2)), b=rng.normal(size=3), y=rng.normal(size=(T, 3)))


def states(h0, W, U, x, b):
    def step(h, xt):
        h = jnp.tanh(W @ h + U @ xt + b)
        return h, h

    return jax.lax.scan(step, h0, x)[1]


def loss(h0, W, U, x, b, y):
    return jnp.sum(states(h0, W, U, x, b) * y)


def test_the_adjoint_is_a_recurrence_running_the_other_way():
    g = tc.grad(ELMAN, "W")
    groups = recurrence_groups(g.statements)
    assert [(grp.members, grp.direction) for grp in groups] == [
        (("h_prev", "h"), 1), (("h_bar", "h_prev_bar"), -1)]
    assert "h_prev_bar[t1+1,j1]" in str(g)
    assert len(g.statements) < 10  # derived once, never unrolled


@pytest.mark.parametrize("wrt", NAMES)
def test_every_gradient_agrees_with_jax_scan(wrt):
    a = arrays(1)
    g = tc.grad(ELMAN, wrt)
    want = jax.grad(loss, argnums=NAMES.index(wrt))(*a.values())
    np.testing.assert_allclose(g(**a), want, rtol=1e-10, atol=1e-12)
    again = tc.compile(str(g))
    np.testing.assert_allclose(again(**{k: a[k] for k in again.inputs}), want, rtol=1e-10,
                               atol=1e-12)


def test_a_gradient_agrees_with_central_differences():
    a = arrays(2)
    np.testing.assert_allclose(tc.grad(ELMAN, "W")(**a), numeric_jacobian(ELMAN, "W", a),
                               rtol=1e-6, atol=1e-8)


def test_the_jacobian_of_the_states_is_a_forward_recurrence():
    a = arrays(3)
    del a["y"]
    src = ELMAN.replace("L = sum[t,j](h[t,j] y[t,j])", "")
    d = tc.derive(src, "W")
    assert any(grp.direction == 1 and "h_dot" in grp.members
               for grp in recurrence_groups(d.statements))
    want = jax.jacobian(states, argnums=1)(*a.values())
    np.testing.assert_allclose(d(**a), want, rtol=1e-10, atol=1e-12)
    V = np.random.default_rng(4).normal(size=(3, 3))
    jv = tc.jvp(src, "W")(**a, V=V)
    np.testing.assert_allclose(jv, np.einsum("tjpq,pq->tj", want, V), rtol=1e-10, atol=1e-12)
    G = np.random.default_rng(5).normal(size=(6, 3))
    vj = tc.vjp(src, "W", cotangent="G")(**a, G=G)
    np.testing.assert_allclose(vj, np.einsum("tjpq,tj->pq", want, G), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("wrt", ["W", "h0", "x"])
def test_hessians_agree_with_jax(wrt):
    a = arrays(6, T=4)
    H = tc.hessian(ELMAN, wrt)
    want = jax.hessian(loss, argnums=NAMES.index(wrt))(*a.values())
    np.testing.assert_allclose(H(**a), want, rtol=1e-9, atol=1e-11)
    again = tc.compile(str(H))
    np.testing.assert_allclose(again(**{k: a[k] for k in again.inputs}), want, rtol=1e-9,
                               atol=1e-11)


def test_a_hessian_vector_product_agrees_with_jax():
    a = arrays(7, T=20)
    V = np.random.default_rng(8).normal(size=(3, 3))
    hv = tc.jvp(tc.grad(ELMAN, "W"), "W")(**a, V=V)
    grad = jax.grad(loss, argnums=1)
    want = jax.jvp(lambda W: grad(a["h0"], W, a["U"], a["x"], a["b"], a["y"]),
                   (a["W"],), (V,))[1]
    np.testing.assert_allclose(hv, want, rtol=1e-9, atol=1e-11)


def test_a_backward_recurrence_and_its_second_derivative():
    src = "a[t,j] = sin(a[t+1,j]) + x[t,j] c[j]\nL = sum[t,j](a[t,j]^2)"
    rng = np.random.default_rng(9)
    arr = dict(x=rng.normal(size=(5, 2)), c=rng.normal(size=2))

    def f(x, c):
        def step(carry, xt):
            v = jnp.sin(carry) + xt * c
            return v, v
        return jnp.sum(jax.lax.scan(step, jnp.zeros(2), x, reverse=True)[1] ** 2)

    np.testing.assert_allclose(tc.grad(src, "x")(**arr), jax.grad(f)(arr["x"], arr["c"]),
                               rtol=1e-10)
    np.testing.assert_allclose(tc.hessian(src, "c")(**arr),
                               jax.hessian(f, argnums=1)(arr["x"], arr["c"]), rtol=1e-9)


def test_derivation_does_not_depend_on_the_number_of_steps():
    g = tc.grad(ELMAN, "W")
    short, long = arrays(10, T=10), arrays(10, T=3000)
    for a in (short, long):
        want = jax.grad(loss, argnums=1)(*a.values())
        np.testing.assert_allclose(g(**a), want, rtol=1e-9, atol=1e-11)


def test_float32_stays_float32():
    a = {k: v.astype(np.float32) for k, v in arrays(11).items()}
    value = tc.grad(ELMAN, "W")(**a)
    assert value.dtype == np.float32
    want = jax.grad(loss, argnums=1)(*arrays(11).values())
    np.testing.assert_allclose(value, want, rtol=1e-4, atol=1e-5)


def test_torch_and_jax_arrays_and_jax_jit_traces_one_step():
    torch = pytest.importorskip("torch")
    a = arrays(12)
    g = tc.grad(ELMAN, "W")
    want = g(**a)
    np.testing.assert_allclose(g(**{k: torch.tensor(v) for k, v in a.items()}).numpy(),
                               want, rtol=1e-12)
    jitted = jax.jit(lambda **kw: g(**kw))
    np.testing.assert_allclose(jitted(**{k: jnp.asarray(v) for k, v in a.items()}), want,
                               rtol=1e-12)
    sizes = []
    for T in (10, 400):
        b = {k: jnp.asarray(v) for k, v in arrays(13, T=T).items()}
        text = str(jax.make_jaxpr(lambda **kw: g(**kw))(**b))
        assert "scan" in text
        sizes.append(len(text))
    assert abs(sizes[0] - sizes[1]) < 0.1 * sizes[0]  # one step traced, not T


def test_to_torch_and_to_jax_give_second_derivatives():
    torch = pytest.importorskip("torch")
    a = arrays(14)
    p = tc.compile(ELMAN)
    V = np.random.default_rng(15).normal(size=(3, 3))
    want = tc.jvp(tc.grad(ELMAN, "W"), "W")(**a, V=V)
    t = {k: torch.tensor(v, requires_grad=(k == "W")) for k, v in a.items()}
    (gW,) = torch.autograd.grad(tc.to_torch(p)(**t), t["W"], create_graph=True)
    (hv,) = torch.autograd.grad((gW * torch.tensor(V)).sum(), t["W"])
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-10)
    f = tc.to_jax(p)
    j = {k: jnp.asarray(v) for k, v in a.items()}
    grad = jax.grad(lambda W: f(**{**j, "W": W}))
    np.testing.assert_allclose(jax.jvp(grad, (j["W"],), (jnp.asarray(V),))[1], want,
                               rtol=1e-10)


def test_work_a_step_does_not_need_is_done_once_before_it():
    g = tc.grad(ELMAN, "W")
    plan = plan_program(g.needed, g.needed_inputs, g.result)
    hoisted = [st.name for st in plan.statements if "@in" in st.name]
    assert hoisted  # U x + b over every t at once, and the adjoint's 1 - h^2 products
    steps = {m.name: m for loop in plan.loops for m in loop.members}
    assert not any(r[0] == "x" for t in steps["h"].terms for r in t.reads)


def test_a_read_of_the_step_before_as_a_factor_differentiates_to_the_step_after():
    src = "c[t,j] = sigmoid(a[t,j]) c[t-1,j] + x[t,j] W[j,k] x[t,k]\nL = sum[t,j](c[t,j]^2 w[t,j])"
    rng = np.random.default_rng(16)
    arr = dict(a=rng.normal(size=(5, 3)), x=rng.normal(size=(5, 3)), W=rng.normal(size=(3, 3)),
               w=rng.normal(size=(5, 3)))

    def f(a, x, W, w):
        def step(c, inputs):
            at, xt, wt = inputs
            c = jax.nn.sigmoid(at) * c + xt * (W @ xt)
            return c, jnp.sum(c ** 2 * wt)
        return jnp.sum(jax.lax.scan(step, jnp.zeros(3), (a, x, w))[1])

    g = tc.grad(src, "a")
    assert "c_bar[t1+1,j1] sigmoid(a[t1+1,j1])" in str(g)  # the step after, solved for
    for k, wrt in enumerate(("a", "x", "W")):
        np.testing.assert_allclose(tc.grad(src, wrt)(**arr),
                                   jax.grad(f, argnums=k)(*arr.values()), rtol=1e-10)
    np.testing.assert_allclose(tc.hessian(src, "a")(**arr), jax.hessian(f)(*arr.values()),
                               rtol=1e-9, atol=1e-12)


def test_a_shifted_read_of_another_array_needs_a_given_size_and_reads_zeros_past_it():
    src = """
    h[-1,j] = tanh(V[j,k] a[k])
    h[t,j] = tanh(W[j,k] h[t-1,k] + x[t+1,j] + [t == 0] a[j]) + x[t,j]
    L = sum[t,j](h[t,j]^2)
    """
    rng = np.random.default_rng(17)
    arr = dict(V=rng.normal(size=(3, 3)), a=rng.normal(size=3), W=rng.normal(size=(3, 3)),
               x=rng.normal(size=(5, 3)))
    with pytest.raises(tc.ProgramError, match=r"reads x \+1 along it: give the size of t"):
        tc.compile(src)(**arr)
    p = tc.compile(src, sizes={"t": 5})

    def f(V, a, W, x):
        h, total = jnp.tanh(V @ a), 0.0
        for t in range(5):
            ahead = x[t + 1] if t + 1 < 5 else jnp.zeros(3)  # zero past the end
            h = jnp.tanh(W @ h + ahead + (a if t == 0 else 0.0)) + x[t]
            total = total + jnp.sum(h ** 2)
        return total

    assert p(**arr) == pytest.approx(float(f(*arr.values())), rel=1e-13)
    for k, wrt in enumerate(("V", "a", "W", "x")):
        want = jax.grad(f, argnums=k)(*arr.values())
        grad = tc.grad(p, wrt)
        np.testing.assert_allclose(grad(**arr), want, rtol=1e-10, atol=1e-12)
        jitted = jax.jit(grad.__call__)  # the scan pads the same way
        np.testing.assert_allclose(jitted(**{n: jnp.asarray(v) for n, v in arr.items()}),
                                   want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tc.hessian(p, "a")(**arr),
                               jax.hessian(f, argnums=1)(*arr.values()), rtol=1e-9, atol=1e-12)


def test_threads_share_a_bound_recurrence():
    g = tc.grad(ELMAN, "W")
    inputs = [arrays(20 + k) for k in range(8)]
    wants = [jax.grad(loss, argnums=1)(*a.values()) for a in inputs]
    with ThreadPoolExecutor(4) as pool:
        gots = list(pool.map(lambda a: g(**a), inputs * 3))
    for k, got in enumerate(gots):
        np.testing.assert_allclose(got, wants[k % 8], rtol=1e-10, atol=1e-12)

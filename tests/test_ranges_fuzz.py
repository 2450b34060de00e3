"""A differential fuzzer for the ranges of shifted, strided and padded indices (SPEC §8:
"Ranges belong to the statement as written").

Each program is a first statement ``d[i] = ...`` that reads ``x`` (and maybe a kernel
``w`` or a table ``u``) through index arithmetic, then a loss over ``d`` that may shift
again. Every template carries its own JAX transcription, written by hand from the
language's rules, so the oracle is independent of tensorcalc: the value, ``grad``,
``hessian`` and ``jvp`` with respect to ``x`` (and ``w``) are compared with ``jax.grad``,
``jax.hessian`` and ``jax.jvp`` in float64. For each program the printed gradient and
Hessian are also compiled again from their text and must give the same numbers, the
exported ``to_python()`` gradient must run and agree, and torch tensors must give what
NumPy arrays give.

The default run draws a few dozen programs with a fixed seed (under a minute); set
``TC_RANGES_FUZZ=2000`` for the long profile (that many programs). Every defect it found
is pinned below as a named regression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorcalc as tc

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

EXAMPLES = int(os.environ.get("TC_RANGES_FUZZ", "40"))
TEST_TIMEOUT_S = 60 + 3 * EXAMPLES

# Elementwise functions: the language's spelling and JAX's.
FUNCS: dict[str, Callable[[Any], Any]] = {
    "tanh": lambda v: jnp.tanh(v),
    "sin": lambda v: jnp.sin(v),
    "exp": lambda v: jnp.exp(v),
    "softplus": lambda v: jax.nn.softplus(v),
    "sigmoid": lambda v: jax.nn.sigmoid(v),
}


def _conv(x: Any, w: Any, stride: int = 1) -> Any:
    """Valid cross-correlation: sum_k x[s*i+k] w[k]."""
    n, k = x.shape[0], w.shape[0]
    m = (n - k) // stride + 1
    return jnp.stack([jnp.sum(x[stride * i:stride * i + k] * w) for i in range(m)])


def _same(x: Any, w: Any) -> Any:
    """y[i] = x[i+k-1] w[k], i over x's length, reads past the ends zero."""
    padded = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(w.shape[0])])
    return jnp.stack([jnp.sum(padded[i:i + w.shape[0]] * w) for i in range(x.shape[0])])


@dataclass(frozen=True)
class First:
    """The first statement: its text (``F`` stands for a function) and its JAX value."""

    text: str
    value: Callable[..., Any]  # (F, x, w, u) -> d
    kernel: bool = False       # reads w
    table: bool = False        # reads u, of length len(x) - 1
    same: bool = False         # i given x's length by sizes=


FIRSTS = [
    First("d[i] = x[i+1] - x[i]", lambda F, x, w, u: x[1:] - x[:-1]),
    First("d[i] = F(x[i] + x[i+1])", lambda F, x, w, u: F(x[:-1] + x[1:])),
    First("d[i] = x[i+k] w[k]", lambda F, x, w, u: _conv(x, w), kernel=True),
    First("d[i] = F(x[i+k] w[k])", lambda F, x, w, u: F(_conv(x, w)), kernel=True),
    First("d[i] = x[2*i+k] w[k]", lambda F, x, w, u: _conv(x, w, 2), kernel=True),
    First("d[i] = x[i] (x[i+1] - x[i])", lambda F, x, w, u: x[:-1] * (x[1:] - x[:-1])),
    First("d[i] = x[i+k-1] w[k]", lambda F, x, w, u: _same(x, w), kernel=True, same=True),
    First("d[i] = F(x[i+2]) x[i]", lambda F, x, w, u: F(x[2:]) * x[:-2]),
    First("d[i] = x[i+1] u[i]", lambda F, x, w, u: x[1:] * u, table=True),
    First("d[i] = sqrt(1 + (x[i+k] w[k])^2)",
          lambda F, x, w, u: jnp.sqrt(1 + _conv(x, w) ** 2), kernel=True),
]


@dataclass(frozen=True)
class Loss:
    text: str
    value: Callable[..., Any]  # (G, d, c) -> L
    weights: bool = False      # reads c, of d's length


LOSSES = [
    Loss("L = c[q] d[q]", lambda G, d, c: jnp.sum(c * d), weights=True),
    Loss("L = d[q]^2", lambda G, d, c: jnp.sum(d ** 2)),
    Loss("L = c[q] G(d[q])", lambda G, d, c: jnp.sum(c * G(d)), weights=True),
    Loss("L = 3 (d[q+1] - d[q])", lambda G, d, c: 3 * jnp.sum(d[1:] - d[:-1])),
    Loss("L = (d[q+1] - d[q])^2", lambda G, d, c: jnp.sum((d[1:] - d[:-1]) ** 2)),
    Loss("L = d[q] (d[q+1] - d[q])", lambda G, d, c: jnp.sum(d[:-1] * (d[1:] - d[:-1]))),
    Loss("L = sqrt(1 + d[q]^2)", lambda G, d, c: jnp.sum(jnp.sqrt(1 + d ** 2))),  # rule 2
    Loss("L = G(d[q+1]) d[q]", lambda G, d, c: jnp.sum(G(d[1:]) * d[:-1])),
]


@dataclass(frozen=True)
class Case:
    first: First
    loss: Loss
    f: str
    g: str
    n: int
    k: int
    seed: int

    @property
    def source(self) -> str:
        return (self.first.text.replace("F(", self.f + "(") + "\n"
                + self.loss.text.replace("G(", self.g + "("))

    @property
    def sizes(self) -> dict[str, int] | None:
        return {"i": self.n} if self.first.same else None

    def arrays(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        out = {"x": rng.uniform(-1.5, 1.5, self.n)}
        if self.first.kernel:
            out["w"] = rng.uniform(-1, 1, self.k)
        if self.first.table:
            out["u"] = rng.uniform(-1, 1, self.n - 1)
        if self.loss.weights:
            out["c"] = rng.uniform(-1, 1, self.d_length())
        return out

    def d_length(self) -> int:
        x, w, u = jnp.zeros(self.n), jnp.zeros(self.k), jnp.zeros(self.n - 1)
        return int(self.first.value(FUNCS[self.f], x, w, u).shape[0])

    def oracle(self, arrays: dict[str, np.ndarray], wrt: str) -> Callable[[Any], Any]:
        F, G = FUNCS[self.f], FUNCS[self.g]

        def loss(v: Any) -> Any:
            a = {k: jnp.asarray(val) for k, val in arrays.items()}
            a[wrt] = v
            d = self.first.value(F, a["x"], a.get("w"), a.get("u"))
            return self.loss.value(G, d, a.get("c"))

        return loss


cases = st.builds(
    Case, st.sampled_from(FIRSTS), st.sampled_from(LOSSES), st.sampled_from(sorted(FUNCS)),
    st.sampled_from(sorted(FUNCS)), st.integers(6, 9), st.integers(2, 3),
    st.integers(0, 2**16))


def _close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected),
                               rtol=1e-9, atol=1e-9, err_msg=what)


def _reparsed(p: tc.Program, sizes: dict[str, int] | None) -> tc.Program:
    return tc.compile(str(p), sizes=sizes)


def check(case: Case) -> int:
    """Every check of one program; returns how many ran."""
    arrays = case.arrays()
    program = tc.compile(case.source, sizes=case.sizes)
    checks = 0
    x = jnp.asarray(arrays["x"])
    _close(program.evaluate(arrays), case.oracle(arrays, "x")(x), f"value of\n{case.source}")
    checks += 1
    for wrt in ["x", "w"] if case.first.kernel else ["x"]:
        oracle = case.oracle(arrays, wrt)
        at = jnp.asarray(arrays[wrt])
        label = f"{wrt} of\n{case.source}"
        gradient = tc.grad(program, wrt)
        expected = jax.grad(oracle)(at)
        _close(gradient.evaluate(arrays), expected, "grad wrt " + label)
        _close(_reparsed(gradient, case.sizes).evaluate(arrays), expected,
               f"printed grad wrt {label}\n{gradient}")
        hessian = tc.hessian(program, wrt)
        expected_h = jax.hessian(oracle)(at)
        _close(hessian.evaluate(arrays), expected_h, "hessian wrt " + label)
        _close(_reparsed(hessian, case.sizes).evaluate(arrays), expected_h,
               f"printed hessian wrt {label}\n{hessian}")
        tangent = np.linspace(-1, 1, at.shape[0])
        jvp = tc.jvp(program, wrt, tangent="V_t")
        _, expected_t = jax.jvp(oracle, (at,), (jnp.asarray(tangent),))
        _close(jvp.evaluate({**arrays, "V_t": tangent}), expected_t, "jvp wrt " + label)
        checks += 5
        if wrt == "x":
            namespace: dict[str, Any] = {}
            exec(gradient.to_python(), namespace)  # our own generated code, not user text
            _close(namespace[gradient.result](**arrays), expected, "to_python grad " + label)
            checks += 1
    return checks


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases)
def test_ranges_agree_with_jax(jax64: Any, runaway_alarm: None, case: Case) -> None:
    check(case)


def test_torch_arrays_give_numpy_numbers(jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    for first in FIRSTS:
        case = Case(first, LOSSES[4], "tanh", "sin", 7, 3, 1)
        arrays = case.arrays()
        g = tc.grad(tc.compile(case.source, sizes=case.sizes), "x")
        on_torch = g.evaluate({k: torch.tensor(v) for k, v in arrays.items()})
        _close(on_torch.numpy(), g.evaluate(arrays), f"torch\n{case.source}")


# --- the defects this fuzzer and the ranges issue found, pinned ---------------------------

X = np.array([1.0, 3, 2, 5, 4])


def test_sum_of_a_difference_has_a_gradient_at_the_last_position() -> None:
    np.testing.assert_allclose(tc.grad("L = 3 (x[i+1] - x[i])", "x")(x=X), [-3, 0, 0, 0, 3])


def test_product_with_a_difference_keeps_its_range_in_the_gradient() -> None:
    # d/dx of sum_{i<N-1} x[i] (x[i+1] - x[i]): the last entry is x[N-2] = 5
    np.testing.assert_allclose(tc.grad("L = x[i] (x[i+1] - x[i])", "x")(x=X),
                               [1, -3, 4, -4, 5])


def test_discrete_laplacian_hessian_has_ends_of_two() -> None:
    h = tc.hessian("L = (x[i+1] - x[i])^2", "x")(x=X)
    np.testing.assert_allclose(np.diag(h), [2, 4, 4, 4, 2])
    expected = 2 * (np.diag([1, 2, 2, 2, 1]) - np.eye(5, k=1) - np.eye(5, k=-1))
    np.testing.assert_allclose(h, expected)


def test_jvp_of_a_difference() -> None:
    v = np.arange(1.0, 6)
    np.testing.assert_allclose(tc.jvp("L = 3 (x[i+1] - x[i])", "x")(x=X, V=v), 12)


def test_padding_never_enters_a_function() -> None:
    # d[3] does not exist: 1 - d[3]^2 must not read as 1 - 0
    x = np.array([0.3, -1, 2, 0.5])
    expected = np.zeros(4)
    t = np.tanh(x[:-1] + x[1:])
    expected[:-1] += 1 - t ** 2
    expected[1:] += 1 - t ** 2
    np.testing.assert_allclose(tc.grad("d[i] = tanh(x[i] + x[i+1])\nL = d[q]", "x")(x=x),
                               expected)


def test_padding_never_enters_a_denominator() -> None:
    x, w, c = np.array([1.0, 2, 3, 4]), np.array([0.5, -1]), np.array([1.0, 2, 3])
    g = tc.grad("h[i] = sqrt(1 + (x[i+k] w[k])^2)\nL = c[q] h[q]", "x")(x=x, w=w, c=c)
    y = x[:-1] * w[0] + x[1:] * w[1]
    inner = c * y / np.sqrt(1 + y ** 2)
    expected = np.zeros(4)
    expected[:-1] += inner * w[0]
    expected[1:] += inner * w[1]
    np.testing.assert_allclose(g, expected)
    given = tc.compile("d[g] = sqrt(x[g+1])\nL = c[q] d[q]", sizes={"g": 5})
    gg = tc.grad(given, "x").evaluate({"x": x + 1, "c": np.ones(5)})
    np.testing.assert_allclose(gg, np.r_[0, 0.5 / np.sqrt(x[1:] + 1)])


def test_a_renamed_index_never_takes_a_declared_size() -> None:
    x, y = np.arange(5.0), np.arange(5.0) * 10
    for decl in ("z[i1]", "z[m]"):
        value = tc.evaluate(f"input x[a], y[b], {decl}\nL = x[i+1] + y[i]", x=x, y=y,
                            z=np.ones(2))
        assert value == pytest.approx(x[1:].sum() + y.sum())
    p = tc.compile("L = x[i+1] + y[i]")
    assert p.evaluate({"x": x, "y": y}, sizes={"i1": 2}) == pytest.approx(110)


def test_torch_backward_of_a_shifted_loss() -> None:
    torch = pytest.importorskip("torch")
    f = tc.to_torch("d[i] = (x[i+1] - x[i])^2\nL = d[q]")
    x = torch.tensor(X, requires_grad=True)
    f(x=x).backward()
    d = np.diff(X)
    np.testing.assert_allclose(x.grad.numpy(), np.r_[0, 2 * d] - np.r_[2 * d, 0])


def test_index_array_only_inside_a_delta_is_an_input() -> None:
    p = tc.compile("L = delta[v,t[e]] x[e] u[v]")
    assert "t" in p.inputs
    g = tc.grad(p, "x")(x=np.ones(3), t=np.array([0, 1, 1]), u=np.array([1.0, 2]))
    np.testing.assert_allclose(g, [1, 2, 2])


def test_printed_gradient_of_a_difference_reparses() -> None:
    g = tc.grad("L = 3 (x[i+1] - x[i])", "x")
    np.testing.assert_allclose(tc.compile(str(g))(x=X), [-3, 0, 0, 0, 3])
    h = tc.hessian("L = (x[i+1] - x[i])^2", "x")
    np.testing.assert_allclose(tc.compile(str(h))(x=X), h(x=X))

"""A differential fuzzer for the ranges of shifted, strided and padded indices
(docs/index-arithmetic.md: "Ranges belong to the statement as written").

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
from hypothesis import HealthCheck, Phase, assume, given, settings
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
    return jnp.einsum("ik,k->i", _windows(x, w.shape[0], stride), w)


def _windows(x: Any, k: int, stride: int = 1) -> Any:
    """W[i,a] = x[s*i+a] over the valid positions i."""
    m = (x.shape[0] - k) // stride + 1
    return jnp.stack([x[stride * i:stride * i + k] for i in range(m)])


def _same(x: Any, w: Any) -> Any:
    """y[i] = x[i+k-1] w[k], i over x's length, reads past the ends zero."""
    padded = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(w.shape[0])])
    return jnp.stack([jnp.sum(padded[i:i + w.shape[0]] * w) for i in range(x.shape[0])])


def _logdets(S: Any, x: Any) -> Any:
    """logdet(S + v v^T) for each window v = x[i:i+K]."""
    v = _windows(x, S.shape[0])
    return jnp.linalg.slogdet(S[None] + v[:, :, None] * v[:, None, :])[1]


def _quads(S: Any, x: Any, r: Any) -> Any:
    """r^T (S + v v^T)^-1 r for each window v = x[i:i+K]."""
    v = _windows(x, S.shape[0])
    m = S[None] + v[:, :, None] * v[:, None, :]
    return jnp.einsum("a,iab,b->i", r, jnp.linalg.inv(m), r)


@dataclass(frozen=True)
class First:
    """The first statement: its text (``F`` stands for a function) and its JAX value, a
    function of the function and the arrays (``x`` and whatever ``needs`` names)."""

    text: str
    value: Callable[..., Any]  # (F, a) -> d, a the dict of arrays
    needs: tuple[str, ...] = ()  # inputs besides x: w (kernel), u (table), S, r, E, t
    same: bool = False           # i given x's length by sizes=
    wrt: tuple[str, ...] = ("x",)


FIRSTS = [
    First("d[i] = x[i+1] - x[i]", lambda F, a: a["x"][1:] - a["x"][:-1]),
    First("d[i] = F(x[i] + x[i+1])", lambda F, a: F(a["x"][:-1] + a["x"][1:])),
    First("d[i] = x[i+k] w[k]", lambda F, a: _conv(a["x"], a["w"]), ("w",), wrt=("x", "w")),
    First("d[i] = F(x[i+k] w[k])", lambda F, a: F(_conv(a["x"], a["w"])), ("w",),
          wrt=("x", "w")),
    First("d[i] = x[2*i+k] w[k]", lambda F, a: _conv(a["x"], a["w"], 2), ("w",),
          wrt=("x", "w")),
    First("d[i] = x[i] (x[i+1] - x[i])", lambda F, a: a["x"][:-1] * (a["x"][1:] - a["x"][:-1])),
    First("d[i] = x[i+k-1] w[k]", lambda F, a: _same(a["x"], a["w"]), ("w",), same=True,
          wrt=("x", "w")),
    First("d[i] = F(x[i+2]) x[i]", lambda F, a: F(a["x"][2:]) * a["x"][:-2]),
    First("d[i] = x[i+1] u[i]", lambda F, a: a["x"][1:] * a["u"], ("u",)),
    First("d[i] = sqrt(1 + (x[i+k] w[k])^2)",
          lambda F, a: jnp.sqrt(1 + _conv(a["x"], a["w"]) ** 2), ("w",), wrt=("x", "w")),
    First("d[i] = logsumexp[k](x[i+k] w[k])",
          lambda F, a: jax.scipy.special.logsumexp(_windows(a["x"], a["w"].shape[0])
                                                   * a["w"], axis=1), ("w",), wrt=("x", "w")),
    First("d[i] = softmax[i](x[i+1] - x[i])",
          lambda F, a: jax.nn.softmax(a["x"][1:] - a["x"][:-1])),
    First("d[i] = logdet[a,b](S[a,b] + x[i+a] x[i+b])",
          lambda F, a: _logdets(a["S"], a["x"]), ("S",), wrt=("x", "S")),
    First("d[i] = r[a] inv[a,b](S[a,b] + x[i+a] x[i+b]) r[b]",
          lambda F, a: _quads(a["S"], a["x"], a["r"]), ("S", "r"), wrt=("x", "S")),
    First("d[i] = E[t[i],j] x[j+1]",
          lambda F, a: a["E"][a["t"]] @ a["x"][1:], ("E", "t"), wrt=("x", "E")),
    First("d[i] = F(E[t[i],j] x[j]) - x[i+1]",
          lambda F, a: F(a["E"][a["t"]] @ a["x"])[:a["x"].shape[0] - 1]
          - a["x"][1:a["t"].shape[0] + 1], ("E", "t"), wrt=("x", "E")),
]


@dataclass(frozen=True)
class Middle:
    """An optional second statement ``m[j]`` over ``d`` (not ``i``: a size given by name
    is given in every statement); ``d`` itself where absent."""

    text: str
    value: Callable[..., Any]  # (G, d) -> m


MIDDLES = [
    Middle("", lambda G, d: d),
    Middle("m[j] = G(d[j+1]) - d[j]", lambda G, d: G(d[1:]) - d[:-1]),
    Middle("m[j] = d[j] d[j]", lambda G, d: d * d),
    Middle("m[j] = G(d[j])", lambda G, d: G(d)),
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
    middle: Middle
    loss: Loss
    f: str
    g: str
    n: int
    k: int
    seed: int

    @property
    def source(self) -> str:
        g = self.g + "("
        lines = [self.first.text.replace("F(", self.f + "(")]
        loss = self.loss.text
        if self.middle.text:
            lines.append(self.middle.text.replace("G(", g))
            loss = loss.replace("d[", "m[")
        return "\n".join(lines + [loss.replace("G(", g)])

    @property
    def sizes(self) -> dict[str, int] | None:
        return {"i": self.n} if self.first.same else None

    def arrays(self) -> dict[str, np.ndarray]:
        out = self._inputs()
        if self.loss.weights:
            rng = np.random.default_rng(self.seed + 1)
            out["c"] = rng.uniform(-1, 1, self._length(out))
        return out

    def _inputs(self) -> dict[str, np.ndarray]:
        """The arrays of the first statement."""
        rng = np.random.default_rng(self.seed)
        n, k = self.n, self.k
        out = {"x": rng.uniform(-1.5, 1.5, n)}
        needs = self.first.needs
        if "w" in needs:
            out["w"] = rng.uniform(-1, 1, k)
        if "u" in needs:
            out["u"] = rng.uniform(-1, 1, n - 1)
        if "S" in needs:
            a = rng.uniform(-0.5, 0.5, (k, k))
            out["S"] = a @ a.T + 2 * np.eye(k)
        if "r" in needs:
            out["r"] = rng.uniform(-1, 1, k)
        if "E" in needs:
            out["E"] = rng.uniform(-1, 1, (4, n - 1 if "j+1" in self.first.text else n))
            out["t"] = rng.integers(0, 4, n - 2)
        return out

    def long_enough(self) -> bool:
        """Does the loss have a value to sum (a stride and two shifts can leave none: the
        program is then refused, rightly, with a ShapeError), one of moderate size (``exp``
        of ``exp`` of ``exp`` can overflow, where every side is inf or nan)?"""
        if self._length(self._inputs()) < 2:
            return False
        arrays = self.arrays()
        value = float(self.oracle(arrays, "x")(jnp.asarray(arrays["x"])))
        return bool(np.isfinite(value) and abs(value) < 1e6)

    def _length(self, arrays: dict[str, np.ndarray]) -> int:
        d = self.first.value(FUNCS[self.f], {k: jnp.asarray(v) for k, v in arrays.items()})
        return int(self.middle.value(FUNCS[self.g], d).shape[0])

    def oracle(self, arrays: dict[str, np.ndarray], wrt: str) -> Callable[[Any], Any]:
        F, G = FUNCS[self.f], FUNCS[self.g]

        def loss(v: Any) -> Any:
            a = {k: jnp.asarray(val) for k, val in arrays.items()}
            a[wrt] = v
            m = self.middle.value(G, self.first.value(F, a))
            return self.loss.value(G, m, a.get("c"))

        return loss


cases = st.builds(
    Case, st.sampled_from(FIRSTS), st.sampled_from(MIDDLES), st.sampled_from(LOSSES),
    st.sampled_from(sorted(FUNCS)), st.sampled_from(sorted(FUNCS)), st.integers(6, 9),
    st.integers(2, 3), st.integers(0, 2**16))


def _close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected),
                               rtol=1e-8, atol=1e-9, err_msg=what)


def _reparsed(p: tc.Program, sizes: dict[str, int] | None) -> tc.Program:
    return tc.compile(str(p), sizes=sizes)


#: What the fuzzer ran in this process (the long profile prints it: run with -s).
RAN = {"programs": 0, "checks": 0}


def check(case: Case, bridges: bool = False) -> int:
    """Every check of one program; returns how many ran. ``bridges``: also through
    ``to_torch`` (backward and double backward) and ``to_jax`` (``jax.hessian``)."""
    checks = _checks(case, bridges)
    RAN["programs"] += 1
    RAN["checks"] += checks
    return checks


def _checks(case: Case, bridges: bool) -> int:
    arrays = case.arrays()
    program = tc.compile(case.source, sizes=case.sizes)
    checks = 0
    x = jnp.asarray(arrays["x"])
    _close(program.evaluate(arrays), case.oracle(arrays, "x")(x), f"value of\n{case.source}")
    checks += 1
    for wrt in case.first.wrt:
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
        tangent = np.linspace(-1, 1, at.size).reshape(at.shape)
        jvp = tc.jvp(program, wrt, tangent="V_t")
        _, expected_t = jax.jvp(oracle, (at,), (jnp.asarray(tangent),))
        _close(jvp.evaluate({**arrays, "V_t": tangent}), expected_t, "jvp wrt " + label)
        checks += 5
        if wrt == "x":
            namespace: dict[str, Any] = {}
            exec(gradient.to_python(), namespace)  # our own generated code, not user text
            _close(namespace[gradient.result](**arrays), expected, "to_python grad " + label)
            checks += 1
        if bridges:
            checks += _bridges(case, program, arrays, wrt, expected, expected_h, label)
    return checks


def _bridges(case: Case, program: tc.Program, arrays: dict[str, np.ndarray], wrt: str,
             expected: Any, expected_h: Any, label: str) -> int:
    torch = pytest.importorskip("torch")
    f = tc.to_torch(program)
    tensors = {k: torch.tensor(v) for k, v in arrays.items()}
    at = tensors[wrt].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(**{**tensors, wrt: at}), at, create_graph=True)
    _close(g.detach().numpy(), expected, "to_torch backward wrt " + label)
    rows = [torch.autograd.grad(g.reshape(-1)[j], at, retain_graph=True)[0].reshape(-1)
            for j in range(g.numel())]
    _close(torch.stack(rows).reshape(expected_h.shape).numpy(), expected_h,
           "to_torch double backward wrt " + label)
    j = tc.to_jax(program)
    rest = {k: jnp.asarray(v) for k, v in arrays.items() if k != wrt}
    _close(jax.hessian(lambda v: j(**rest, **{wrt: v}))(jnp.asarray(arrays[wrt])),
           expected_h, "to_jax hessian wrt " + label)
    return 3


# No shrinking: a failure is reported as drawn (derandomized, so it comes back the same),
# and the default run stays within its minutes.
QUICK = (Phase.explicit, Phase.generate)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), phases=QUICK)
@given(cases)
def test_ranges_agree_with_jax(jax64: Any, runaway_alarm: None, case: Case) -> None:
    assume(case.long_enough())
    check(case)


@settings(max_examples=max(EXAMPLES // 4, 8), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), phases=QUICK)
@given(cases)
def test_ranges_through_torch_and_jax(jax64: Any, runaway_alarm: None, case: Case) -> None:
    assume(case.long_enough())
    check(case, bridges=True)


def test_every_template_once(jax64: Any) -> None:
    """Each first statement and each loss at least once, whatever the draw."""
    for k, first in enumerate(FIRSTS):
        check(Case(first, MIDDLES[k % len(MIDDLES)], LOSSES[k % len(LOSSES)], "tanh", "sin",
                   7, 3, k))
    for k, loss in enumerate(LOSSES):
        check(Case(FIRSTS[0], MIDDLES[0], loss, "sigmoid", "tanh", 6, 2, k))


def test_torch_arrays_give_numpy_numbers(jax64: Any) -> None:
    torch = pytest.importorskip("torch")
    for first in FIRSTS:
        case = Case(first, MIDDLES[0], LOSSES[4], "tanh", "sin", 7, 3, 1)
        arrays = case.arrays()
        g = tc.grad(tc.compile(case.source, sizes=case.sizes), "x")
        on_torch = g.evaluate({k: torch.tensor(v) for k, v in arrays.items()})
        _close(on_torch.numpy(), g.evaluate(arrays), f"torch\n{case.source}")


# --- defects found in index ranges, pinned -----------------------------------------------

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


def test_a_refused_statement_refuses_its_derivatives_too() -> None:
    # the valid rule cannot size i and k here (both read plainly, x[i+k] falls outside)
    x, w = np.arange(5.0), np.ones(2)
    with pytest.raises(tc.ShapeError, match=r"x\[..i\+k..\]"):
        tc.compile("L = (x[i+k] + x[i]) w[k]")(x=x, w=w)
    with pytest.raises(tc.ShapeError, match=r"x\[..i\+k..\]"):
        tc.grad("L = (x[i+k] + x[i]) w[k]", "x")(x=x, w=w)


def test_hessian_of_a_squared_correlation_by_its_kernel(jax64: Any) -> None:
    a, x = np.array([1.0, 2]), np.arange(5.0)
    expected = jax.hessian(lambda a: jnp.sum((a[0] * x[:4] + a[1] * x[1:]) ** 2))(a)
    np.testing.assert_allclose(tc.hessian("L = (a[k] x[t+k])^2", "a")(a=a, x=x), expected)


def test_softmax_along_a_shifted_axis_has_a_jvp(jax64: Any) -> None:
    # found by the fuzzer: softmax's copy k of its axis i read the tangent over x's length
    x, v = np.arange(5.0) ** 2 / 10, np.array([0.3, -1.0, 0.5, 2.0, -0.7])
    j = tc.jvp("d[i] = softmax[i](x[i+1] - x[i])", "x")
    _, expected = jax.jvp(lambda x: jax.nn.softmax(x[1:] - x[:-1]), (x,), (v,))
    np.testing.assert_allclose(j(x=x, V=v), expected)
    np.testing.assert_allclose(tc.compile(str(j))(x=x, V=v), expected)


def test_a_declared_index_summed_by_two_terms_keeps_its_size() -> None:
    # found by the fuzzer: a printed JVP summed k1 in two terms; re-parsed, the second term
    # renamed it and lost the declared range
    src = "d[i] = tanh(x[i+k] w[k])\nm[i] = sin(d[i])\nL = 3 (m[q+1] - m[q])"
    rng = np.random.default_rng(3)
    a = {"x": rng.normal(size=7), "w": rng.normal(size=3), "V_t": np.linspace(-1, 1, 7)}
    j = tc.jvp(src, "x", tangent="V_t")
    np.testing.assert_allclose(tc.compile(str(j)).evaluate(a), j.evaluate(a))


def test_double_backward_through_a_range_statement() -> None:
    # found by the fuzzer: range statements were taken for kept forward values
    torch = pytest.importorskip("torch")
    f = tc.to_torch("d[i] = x[i+1] - x[i]\nL = (d[q+1] - d[q])^2")
    x = torch.tensor(np.arange(6.0) ** 2, requires_grad=True)
    (g,) = torch.autograd.grad(f(x=x), x, create_graph=True)
    (h,) = torch.autograd.grad(g[2], x)  # L = sum_q (x[q+2] - 2 x[q+1] + x[q])^2
    expected = np.zeros(6)
    for q in range(4):
        row = np.zeros(6)
        row[q:q + 3] = [1, -2, 1]
        expected += 2 * row[2] * row
    np.testing.assert_allclose(h.numpy(), expected)


def test_a_size_given_by_name_reaches_the_jacobian() -> None:
    # h's g is given 2, a has 4 entries: the statement refuses, so must its Jacobian
    p = tc.compile("h[g] = delta[g,k] a[k]", sizes={"g": 2})
    for program in (p, tc.derive(p, "a")):
        with pytest.raises(tc.ShapeError, match="ties index g of size 2"):
            program(a=np.ones(4))
    np.testing.assert_allclose(tc.derive(p, "a")(a=np.ones(2)), np.eye(2))


def test_zz_what_ran() -> None:
    """Last in the file: how many programs and checks the fuzzer ran (printed with -s)."""
    print(f"\nranges fuzzer: {RAN['programs']} programs, {RAN['checks']} checks")
    assert RAN["programs"] == 0 or RAN["checks"] >= 6 * RAN["programs"]

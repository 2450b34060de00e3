"""Index conditions (``[i != j]``, ``[j <= i]``, ``[c != t[n]]``), masked functions of whole
axes (``softmax[j | j <= i](e)``), ``size(i)`` and ``mean[i](e)``: what they parse to, their
values against NumPy, first and second derivatives against central differences and JAX in
float64, the printed round trip, export, torch and JAX arrays, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.errors import InputError, ProgramError, TensorCalcError
from tensorcalc.render.diagram import diagram
from tests.fd import numeric_jacobian
from tests.support import EXACT, close

RNG = np.random.default_rng(7)

ATTENTION = """S[i,j] = Q[i,d] K[j,d] / sqrt(size(d))
A[i,j] = softmax[j | j <= i](S[i,j])
L = A[i,j] V[j,e] Y[i,e]"""

LAYERNORM = """mu[b] = mean[d](x[b,d])
v[b] = mean[d]((x[b,d] - mu[b])^2)
L = sum[b,d](((x[b,d] - mu[b]) / sqrt(v[b] + 0.00001) g[d] + be[d] - T[b,d])^2)"""

HINGE = "L = sum[n,c]([c != t[n]] relu(1 + Z[n,c] - Z[n,t[n]]))"


def _attention_arrays() -> dict[str, np.ndarray]:
    return {name: RNG.normal(size=shape) for name, shape in
            (("Q", (5, 3)), ("K", (5, 3)), ("V", (5, 2)), ("Y", (5, 2)))}


def _layernorm_arrays() -> dict[str, np.ndarray]:
    return {"x": RNG.normal(size=(4, 6)), "g": RNG.normal(size=6), "be": RNG.normal(size=6),
            "T": RNG.normal(size=(4, 6))}


def _hinge_arrays() -> dict[str, np.ndarray]:
    return {"Z": RNG.normal(size=(6, 4)), "t": np.array([0, 3, 1, 2, 1, 0])}


def _run(p: tc.Program, arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(p(**{k: v for k, v in arrays.items() if k in p.accepts}))


def _derivatives_agree(src: str, wrt: str, arrays: dict[str, np.ndarray],
                       sizes: dict[str, int] | None = None, order: int = 2) -> None:
    """Each derivative up to ``order`` against central differences of the one before, and
    its printed text compiled again to the same numbers."""
    programs = [tc.compile(src, sizes=sizes)]
    for _ in range(order):
        programs.append(tc.derive(programs[-1], wrt))
    for before, after in zip(programs, programs[1:]):
        got = _run(after, arrays)
        close(got.reshape(-1), numeric_jacobian(before, wrt, arrays).reshape(-1),
              rtol=1e-6, atol=1e-6)
        again = tc.compile(str(after), sizes=sizes)
        close(_run(again, arrays), got, **EXACT)


# --- parsing, printing ------------------------------------------------------------------


@pytest.mark.parametrize("src", [
    "y[i] = [i != j] x[j]",
    "y[i] = x[i] * [j <= i] x[j]",
    "L = [c != t[n]] Z[n,c]",
    "A[i,j] = softmax[j | j <= i](S[i,j])",
    "m[n] = max[c | c != t[n], c < 3](Z[n,c])",
    "y[b] = x[b,d] / size(d)",
    "mu[b] = mean[d](x[b,d])",
])
def test_printed_text_compiles_to_the_same_program(src: str) -> None:
    p = tc.compile(src)
    assert str(tc.compile(str(p))) == str(p)


def test_an_equality_bracket_is_a_delta() -> None:
    assert str(tc.compile("y[i] = [i == j] x[j]")) == str(tc.compile("y[i] = delta[i,j] x[j]"))


def test_sum_with_a_condition_multiplies_by_it() -> None:
    x = RNG.normal(size=5)
    got = tc.evaluate("input x[i]\ny[i] = sum[j | j <= i](x[j])", x=x)
    close(got, np.cumsum(x), **EXACT)


def test_a_bracket_after_a_factor_needs_a_star() -> None:
    """After a factor, ``[`` would read as subscripts: the printer writes ``*`` there,
    and the text without it is a syntax error, not another product."""
    assert "x[i] * [i != j]" in str(tc.compile("y[i] = x[i] * [i != j] x[j]"))
    with pytest.raises(TensorCalcError):
        tc.compile("y[i] = x[i] [i != j] x[j]")


# --- values -----------------------------------------------------------------------------


def test_conditions_against_numpy() -> None:
    x = RNG.normal(size=4)
    i, j = np.indices((4, 4))
    for op, mask in (("!=", i != j), ("<", i < j), ("<=", i <= j), (">", i > j),
                     (">=", i >= j)):
        close(tc.evaluate(f"input x[i]\ny[i] = [i {op} j] x[j]", x=x),
              mask.astype(float) @ x, **EXACT)
    close(tc.evaluate("input x[i]\ny[i] = [i+1 < j] x[j]", x=x),
          (i + 1 < j).astype(float) @ x, **EXACT)


def test_causal_softmax_excludes_the_future() -> None:
    S = RNG.normal(size=(4, 4))
    got = tc.evaluate("A[i,j] = softmax[j | j <= i](S[i,j])", S=S)
    want = np.where(np.tril(np.ones((4, 4))) > 0, np.exp(S), 0.0)
    close(got, want / want.sum(axis=1, keepdims=True), **EXACT)


def test_masked_reductions_against_numpy() -> None:
    Z, t = RNG.normal(size=(6, 4)), np.array([0, 3, 1, 2, 1, 0])
    other = np.arange(4)[None, :] != t[:, None]
    close(tc.evaluate("m[n] = max[c | c != t[n]](Z[n,c])", Z=Z, t=t),
          np.where(other, Z, -np.inf).max(axis=1), **EXACT)
    close(tc.evaluate("m[n] = min[c | c != t[n]](Z[n,c])", Z=Z, t=t),
          np.where(other, Z, np.inf).min(axis=1), **EXACT)
    close(tc.evaluate("m[n] = logsumexp[c | c != t[n]](Z[n,c])", Z=Z, t=t),
          np.log(np.where(other, np.exp(Z), 0).sum(axis=1)), **EXACT)


def test_a_row_with_nothing_left() -> None:
    """``max`` over no entry is -inf and ``softmax`` over none is 0, not 0/0; the
    derivative of such a row is 0."""
    S = RNG.normal(size=(3, 3))
    assert tc.evaluate("m[i] = max[j | j < i](S[i,j])", S=S)[0] == -np.inf
    A = tc.evaluate("A[i,j] = softmax[j | j < i](S[i,j])", S=S)
    close(A[0], np.zeros(3), **EXACT)
    d = tc.derive("L = sum[i](max[j | j < i](S[i,j]) W[i])", "S")
    close(d(S=S, W=np.ones(3))[0], np.zeros(3), **EXACT)


def test_size_and_mean() -> None:
    x = RNG.normal(size=(3, 5))
    close(tc.evaluate("y[b] = sum[d](x[b,d]) / size(d)", x=x), x.mean(axis=1), **EXACT)
    close(tc.evaluate("y[b] = mean[d](x[b,d])", x=x), x.mean(axis=1), **EXACT)
    close(tc.evaluate("input x[b,d]\nL = size(b) size(d)", x=x), 15.0, **EXACT)
    close(tc.evaluate("y[b] = x[b,d] size(d)", x=x), 5 * x.sum(axis=1), **EXACT)


def test_mean_over_a_strided_window() -> None:
    """Average pooling, 2×2 with stride 2: the window's size is given by name."""
    X = RNG.normal(size=(6, 6))
    got = tc.evaluate(tc.compile("P[i,j] = mean[a,b](X[2*i+a, 2*j+b])",
                                 sizes={"a": 2, "b": 2, "i": 3, "j": 3}), X=X)
    close(got, X.reshape(3, 2, 3, 2).mean(axis=(1, 3)), **EXACT)


# --- derivatives ------------------------------------------------------------------------


@pytest.mark.parametrize("wrt", ["Q", "K", "V"])
def test_causal_attention_derivatives(wrt: str) -> None:
    _derivatives_agree(ATTENTION, wrt, _attention_arrays())


@pytest.mark.parametrize("wrt", ["x", "g"])
def test_layernorm_derivatives(wrt: str) -> None:
    _derivatives_agree(LAYERNORM, wrt, _layernorm_arrays())


def test_hinge_derivatives() -> None:
    _derivatives_agree(HINGE, "Z", _hinge_arrays())


@pytest.mark.parametrize("src", [
    "L = sum[n](logsumexp[c | c != t[n]](Z[n,c]))",
    "L = sum[n](max[c | c != t[n]](Z[n,c])^2)",
    "L = sum[n](min[c | c >= t[n]](Z[n,c])^2)",
    "L = sum[n](logsumexp[c](Z[n,c]) - 0.9 Z[n,t[n]] - 0.1 mean[c](Z[n,c]))",
])
def test_masked_and_mean_derivatives(src: str) -> None:
    _derivatives_agree(src, "Z", _hinge_arrays())


@pytest.mark.parametrize("fn", ["mean", "max"])
def test_pooling_derivatives(fn: str) -> None:
    src = f"P[i,j] = {fn}[a,b](X[2*i+a, 2*j+b])\nL = sum[i,j](P[i,j]^2 W[i,j])"
    arrays = {"X": RNG.normal(size=(6, 6)), "W": RNG.normal(size=(3, 3))}
    _derivatives_agree(src, "X", arrays, sizes={"a": 2, "b": 2, "i": 3, "j": 3})


def test_a_third_derivative_through_conditions() -> None:
    _derivatives_agree("L = [i < j] x[i] x[j]^2 + sum[j | j <= i](x[j] x[i])^2", "x",
                       {"x": RNG.normal(size=5)}, order=3)


def test_derivatives_print_conditions_and_sizes() -> None:
    g = tc.derive("mu[b] = sum[d](x[b,d]^2) / size(d)", "x")
    assert str(g).splitlines()[-1] == "dmu_dx[b,p,q] = 2 delta[b,p] x[b,q] / size(q)"
    h = tc.derive(HINGE, "Z")
    assert "[q != t[p]]" in str(h)
    a = tc.derive("A[i,j] = softmax[j | j <= i](S[i,j])", "S")
    assert "softmax" not in str(a).splitlines()[-1]  # the forward value is reused


def test_against_jax_float64() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    arrays = _attention_arrays()

    def attention(Q, K, V, Y):  # noqa: N803 - the program's names
        S = Q @ K.T / jnp.sqrt(Q.shape[1])
        S = jnp.where(jnp.tril(jnp.ones(S.shape)) > 0, S, -jnp.inf)
        return jnp.sum(jax.nn.softmax(S, axis=1) @ V * Y)

    close(tc.derive(ATTENTION, "Q")(**arrays), jax.grad(attention)(*arrays.values()), **EXACT)
    hessian = tc.derive(tc.derive(ATTENTION, "K"), "K")(**arrays)
    close(hessian, jax.hessian(attention, argnums=1)(*arrays.values()), **EXACT)

    ln = _layernorm_arrays()

    def layernorm(x, g, be, T):  # noqa: N803
        mu = x.mean(axis=1, keepdims=True)
        v = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        return jnp.sum(((x - mu) / jnp.sqrt(v + 1e-5) * g + be - T) ** 2)

    close(tc.derive(LAYERNORM, "x")(**ln), jax.grad(layernorm)(*ln.values()), **EXACT)
    close(tc.derive(tc.derive(LAYERNORM, "x"), "x")(**ln),
          jax.hessian(layernorm)(*ln.values()), **EXACT)


# --- array libraries, export, rendering --------------------------------------------------


def test_torch_jax_and_export_agree() -> None:
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    src = ATTENTION + "\nM = L + sum[n](logsumexp[c | c != t[n]](Q[n,c]))"
    arrays = {**_attention_arrays(), "t": np.array([0, 2, 1, 1, 0])}
    g = tc.derive(src, "Q")
    want = g(**arrays)
    close(g(**{k: torch.tensor(v) for k, v in arrays.items()}), want, **EXACT)
    close(g(**{k: jax.numpy.asarray(v) for k, v in arrays.items()}), want, **EXACT)
    namespace: dict[str, object] = {}
    exec(g.to_python(), namespace)  # the exported module defines dM_dQ
    close(namespace["dM_dQ"](**arrays), want, **EXACT)  # type: ignore[operator]


def test_latex_and_diagram() -> None:
    p = tc.compile("A[i,j] = softmax[j | j <= i](S[i,j])\ny[b] = [b != c] x[c] / size(c)")
    latex = p.latex()
    assert "j \\le i" in latex and "[b \\neq c]" in latex and "\\left|c\\right|" in latex
    svg = diagram(p.statement("y"))
    assert "[b != c]" in svg  # labelled as the printer writes it


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("src, words", [
    ("B[i,j] = inv[i,j | i != j](A[i,j])", "inv takes no condition"),
    ("m[i] = max[j | j == i](S[i,j])", "a mask takes"),
    ("y[i] = [2*i == i+1] x[i]", "one side of =="),
    ("y = size(x[i])", "size() at line 1, column 5 takes one index name"),
    ("m[i] = mean[j | j <= i](S[i,j])", "mean takes no condition"),
])
def test_errors_name_the_construct(src: str, words: str) -> None:
    with pytest.raises(ProgramError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("|", r"\|")):
        tc.compile(src)


def test_a_size_nothing_gives_is_asked_for_by_name() -> None:
    p = tc.compile("P[i] = mean[a](x[2*i+a])", sizes={"i": 2})
    with pytest.raises(InputError, match=r"index a .* sizes="):
        p(x=np.ones(4))


def test_the_docs_section_shows_the_real_output() -> None:
    """docs/functions.md's section on conditions and sizes: its ``>>>`` examples (run when
    the site is built, which shows what they print) print what the page says, as doctests."""
    import doctest

    from tests.support import ROOT

    page = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    section = page.split("## Conditions, masks, sizes and means", 1)[1].split("\n## ", 1)[0]
    examples = [block for block in section.split('```pycon exec="on"')[1:]]
    assert len(examples) == 2
    text = "\n".join(block.split("\n", 1)[1].split("```", 1)[0] for block in examples)
    test = doctest.DocTestParser().get_doctest(text, {"tc": tc}, "docs/functions.md", None, 0)
    result = doctest.DocTestRunner().run(test)
    assert result.attempted == 2 and result.failed == 0


def test_help_names_conditions_masks_and_sizes() -> None:
    from tests.support import cli

    out = cli("--help").stdout.replace("\n", " ")
    assert "[j <= i]" in out and "softmax[j | j <= i](e)" in out and "size(i)" in out
    assert "mean[j](e)" in out

"""How functions of whole axes (docs/functions.md) are planned, printed and reported: the solve that
replaces an inverse, the statement a repeated reduction becomes, LaTeX, the CLI, and the
messages. Their numbers against JAX and finite differences are in ops/test_reductions.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import ROOT

import tensorcalc as tc
from tensorcalc.backend.operands import ReduceOperand, SolveOperand
from tensorcalc.tools.cli import main

NLL = "r[i] = x[i] - mu[i]\nL = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]"


def spd(n: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def operands(p: tc.Program) -> list[object]:
    out: list[object] = []
    for st in p.plan.statements:
        for t in st.rhs.terms:
            out += t.operands
    return out


@pytest.fixture
def no_explicit_inverse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an explicit inverse was computed")

    monkeypatch.setattr(np.linalg, "inv", refuse)


@pytest.mark.parametrize("text, kind", [
    ("x[i] = inv[i,j](A[i,j]) b[j]", "column"),
    ("x[j] = b[i] inv[i,j](A[i,j])", "row"),
    ("t = inv[i,j](A[i,j]) B[j,i]", "trace"),
    ("q = b[i] inv[i,j](A[i,j]) b[j]", "quadratic form"),
    ("X[i,k] = inv[i,j](A[i,j]) B[j,l] C[l,k]", "product"),
])
def test_an_inverse_only_contracted_is_a_solve(text: str, kind: str,
                                               no_explicit_inverse: None) -> None:
    n = 5
    rng = np.random.default_rng(1)
    A, B, C, b = spd(n), rng.standard_normal((n, n)), rng.standard_normal((n, n)), \
        rng.standard_normal(n)
    p = tc.compile(text)
    assert any(isinstance(op, SolveOperand) for op in operands(p)), kind
    assert not any(isinstance(op, ReduceOperand) for op in operands(p))
    given = {k: v for k, v in {"A": A, "B": B, "C": C, "b": b}.items() if k in p.accepts}
    Ainv = np.linalg.solve(A, np.eye(n))
    expected = {
        "column": Ainv @ b, "row": b @ Ainv, "trace": np.trace(Ainv @ B),
        "quadratic form": b @ Ainv @ b, "product": Ainv @ B @ C,
    }[kind]
    np.testing.assert_allclose(p(**given), expected, rtol=1e-10)
    namespace: dict[str, object] = {}
    exec(p.to_python(), namespace)  # noqa: S102 - our own generated code
    np.testing.assert_allclose(namespace[p.result](**given), expected, rtol=1e-10)  # type: ignore[operator]


def test_a_batched_solve_broadcasts_the_right_side(no_explicit_inverse: None) -> None:
    S = np.stack([spd(4, 0), spd(4, 1), spd(4, 2)])
    v = np.random.default_rng(2).standard_normal(4)
    p = tc.compile("x[b,i] = inv[i,j](S[b,i,j]) v[j]")
    expected = np.linalg.solve(S, np.stack([v] * 3)[..., None])[..., 0]
    np.testing.assert_allclose(p(S=S, v=v), expected)


def test_an_inverse_kept_free_is_an_inverse() -> None:
    p = tc.compile("Y[i,j] = inv[i,j](A[i,j])")
    assert any(isinstance(op, ReduceOperand) and op.fn == "inv" for op in operands(p))
    np.testing.assert_allclose(p(A=spd(3)), np.linalg.inv(spd(3)))


def test_the_gaussian_gradient_inverts_once() -> None:
    g = tc.grad(NLL, "S")
    text = str(g)
    assert text.count("= inv[") == 1 and text.count("](S[") == 1, text
    assert "S_inv[q,p] = inv[q,p](S[q,p])" in text
    assert text.splitlines()[-1] == \
        "dL_dS[p,q] = 0.5 S_inv[q,p] - 0.5 r[k] r[l] S_inv[k,p] S_inv[q,l]"
    S, x, mu = spd(4), np.arange(4.0), np.ones(4)
    Si, r = np.linalg.inv(S), np.arange(4.0) - 1
    np.testing.assert_allclose(g(S=S, x=x, mu=mu), 0.5 * (Si - Si @ np.outer(r, r) @ Si).T)


def test_derivatives_refer_to_the_statement_that_computes_the_value() -> None:
    assert str(tc.derive("Y[i,j] = inv[i,j](A[i,j])", "A")).splitlines()[-1] == \
        "dY_dA[i,j,p,q] = -Y[i,p] Y[q,j]"
    assert str(tc.derive("s[n,j] = softmax[j](z[n,j])", "z")).splitlines()[-1] == \
        "ds_dz[n,j,p,q] = delta[j,q] delta[n,p] s[n,j] - delta[n,p] s[n,j] s[n,q]"
    # max's weights compare X with its own maximum inside hardmax, not with m: the
    # argument written again could miss m by an ulp (tests/regression/test_adversarial.py)
    d = tc.derive("m[i] = max[j](X[i,j])", "X")
    assert str(d).splitlines()[-1] == "dm_dX[i,p,q] = delta[i,p] hardmax[q](X[i,q])"


def test_the_softmax_jacobian_keeps_its_batch_tie() -> None:
    d = tc.derive("s[n,j] = softmax[j](z[n,j])", "z")
    z = np.random.default_rng(3).standard_normal((3, 4))
    c = d.evaluate(z=z, compact=True)
    assert c.core.shape == (3, 4, 4)  # n and p tied: the core has no p axis
    s = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    dense = np.einsum("np,jq,nj->njpq", np.eye(3), np.eye(4), s) - \
        np.einsum("np,nj,nq->njpq", np.eye(3), s, s)
    np.testing.assert_allclose(c.toarray(), dense, atol=1e-14)


def test_the_docs_examples_print_as_documented() -> None:
    page = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    block = page[page.index("## Functions of whole axes"):]
    block = block[:block.index("## Conditions, masks")]
    shown = re.findall(r">>> print\((tc\.\w+\(.*\))\)\n((?:[^>`].*\n)+)", block)
    assert len(shown) == 2
    for prompt, printed in shown:
        assert str(eval(prompt, {"tc": tc})) + "\n" == printed  # noqa: S307 - the docs' text


def test_latex() -> None:
    latex = tc.compile(NLL).latex()
    assert "\\log\\det_{ij}\\left[S_{ij}\\right]" in latex
    assert "\\left[S_{ij}\\right]^{-1}_{ij}" in latex
    assert "\\max_{j}\\left(X_{ij}\\right)" in tc.compile("m[i] = max[j](X[i,j])").latex()
    assert "\\operatorname{softmax}_{j}" in tc.compile("s[j] = softmax[j](z[j])").latex()


@pytest.mark.parametrize("text, words", [
    ("y = max * 2", ["max is a reserved word", "max[j](e)"]),
    ("y = x[i] logdet", ["logdet is a reserved word"]),
    ("y = inv(A[i,j])", ["inv[i,j](...)"]),
    ("y = max(x[i])", ["max[j](...)"]),
    ("softmax[i] = x[i]", ["softmax is a reserved word"]),
])
def test_reserved_words_are_explained(text: str, words: list[str]) -> None:
    with pytest.raises(tc.TensorCalcError) as err:
        tc.compile(text)
    for w in words:
        assert w in str(err.value)


def test_a_reduction_of_a_left_hand_index_names_it() -> None:
    with pytest.raises(tc.ProgramError, match=r"summed by max\[i\]"):
        tc.compile("y[i] = max[i](x[i])")


def test_dask_without_det_is_a_clear_error() -> None:
    da = pytest.importorskip("dask.array")
    with pytest.raises(tc.InputError, match="linalg"):
        tc.compile("y = logdet[i,j](S[i,j])")(S=da.from_array(spd(3)))
    y = tc.compile("x[i] = inv[i,j](S[i,j]) b[j]")(S=da.from_array(spd(3)), b=da.ones(3))
    np.testing.assert_allclose(np.asarray(y), np.linalg.solve(spd(3), np.ones(3)))


def test_cli_sizes_a_matrix_from_one_index(tmp_path: object, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["check", NLL, "--wrt", "S", "--size", "i=4"]) == 0
    assert "agree" in capsys.readouterr().out
    assert main(["derive", NLL, "--wrt", "S", "--format", "einsum"]) == 0
    assert "S_inv: inv[q,p](...)[q,p]" in capsys.readouterr().out
    assert main(["eval", "x[i] = inv[i,j](A[i,j]) b[j]", "--size", "i=3"]) == 0


def test_reductions_along_an_empty_axis() -> None:
    X = np.zeros((3, 0))
    for fn in ("max", "min"):
        with pytest.raises(tc.InputError, match=r"index j, of size 0"):
            tc.compile(f"y[i] = {fn}[j](X[i,j])")(X=X)
    np.testing.assert_array_equal(tc.compile("y[i] = logsumexp[j](X[i,j])")(X=X), [-np.inf] * 3)
    assert tc.compile("Y[i,j] = softmax[j](X[i,j])")(X=X).shape == (3, 0)


def test_an_inverse_only_contracted_in_a_derivative_stays_a_solve(
        no_explicit_inverse: None) -> None:
    g = tc.grad(NLL, "mu")
    assert "S_inv" not in str(g)  # two solves, never the matrix S⁻¹
    assert [op for op in operands(g) if isinstance(op, SolveOperand)]
    S, x, mu = spd(4), np.arange(4.0), np.ones(4)
    np.testing.assert_allclose(g(S=S, x=x, mu=mu),
                               -np.linalg.solve(S, x - mu), rtol=1e-12)


def test_the_same_inverse_contracted_twice_is_two_solves(no_explicit_inverse: None) -> None:
    p = tc.compile("y = r[i] inv[i,j](S[i,j]) r[j] + q[i] inv[i,j](S[i,j]) q[j]")
    assert sum(isinstance(op, SolveOperand) for op in operands(p)) == 2
    S, r, q = spd(4), np.arange(4.0), np.ones(4)
    np.testing.assert_allclose(p(S=S, r=r, q=q),
                               r @ np.linalg.solve(S, r) + q @ np.linalg.solve(S, q))


def test_a_delta_never_collapses_the_axes_of_an_inverse() -> None:
    # d logdet(S + 0.5 diag(x²)) / dx[p] needs the diagonal of the inverse, not the inverse
    # of the diagonal: substituting delta[i,p] delta[j,p] into inv[i,j](...) gave
    # inv[p,p](S[p,p] + ...), a wrong number. The delta stays; the plan contracts it.
    S, x = spd(4), np.linspace(-1, 1, 4)
    p = tc.compile("L = logdet[i,j](S[i,j] + 0.5 delta[i,j] x[i] x[j])")
    g = tc.grad(p, "x")
    assert "inv[p,p]" not in str(g)
    expected = x * np.diag(np.linalg.inv(S + 0.5 * np.diag(x * x)))
    np.testing.assert_allclose(g(S=S, x=x), expected, rtol=1e-12)
    np.testing.assert_allclose(tc.compile(str(g))(S=S, x=x), expected, rtol=1e-12)
    namespace: dict[str, object] = {}
    exec(g.to_python(), namespace)  # noqa: S102 - our own generated code
    np.testing.assert_allclose(namespace[g.result](S=S, x=x), expected,  # type: ignore[operator]
                               rtol=1e-12)
    Y = tc.compile("Y[i,j] = delta[i,j] inv[i,j](S[i,j])")(S=S)  # both indices free
    np.testing.assert_allclose(Y, np.diag(np.diag(np.linalg.inv(S))), rtol=1e-12)

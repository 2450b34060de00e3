"""One registry entry per operation: an entry registered at run time parses,
differentiates to second order, prints, evaluates, exports and draws with no other edit,
and the registry is the only list of the names (grammar, CLI help, syntax hints)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.ir import Reduce, Sum, Term, power
from tensorcalc.language.hints import meanings
from tensorcalc.language.parser import grammar
from tensorcalc.ops.functions import Function
from tensorcalc.ops.reductions import KEEPING, MATRIX, REDUCTIONS, RESERVED, Reduction, weighted
from tensorcalc.tools.check import finite_differences
from tensorcalc.tools.cli import main

PROGRAM = "y[i] = sumsq[j](A[i,j] x[j]) + cube(x[i])"


def sumsq(x: Any, axes: tuple[int, ...], xp: Any) -> Any:
    return xp.sum(x * x, axis=axes)


def cube(x: Any, xp: Any) -> Any:
    return x * x * x


def _sumsq_derivative(f: Reduce, darg: Sum, fresh: Any) -> Sum:
    return weighted((f.arg,), darg, f.indices, 2.0)  # d sum_j e[j]^2 = sum_j 2 e[j] de[j]


@pytest.fixture
def registered() -> Iterator[None]:
    """``sumsq[j](e)`` (sum of squares along j) and ``cube(e)``, removed afterwards."""
    tc.compile("y = max[j](x[j])")  # a parser built before the entries exist
    tc.REDUCERS["sumsq"] = Reduction("sumsq", sumsq, _sumsq_derivative,
                                     "sum of squares over the axes")
    tc.FUNCTIONS["cube"] = Function(
        "cube", cube, lambda a: Sum((Term(3.0, (power(a, 2.0),)),)), "x^3")
    try:
        yield
    finally:
        del tc.REDUCERS["sumsq"], tc.FUNCTIONS["cube"]


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"A": rng.uniform(-1.5, 1.5, (3, 4)), "x": rng.uniform(-1.5, 1.5, 4)}


def _reference(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((A * x) ** 2).sum(axis=1) + x[:3] ** 3


def test_without_the_entry_the_word_is_a_tensor_name() -> None:
    assert tc.compile("y = sumsq[i](x[i])").inputs == ("sumsq", "x")  # a product


def test_a_registered_reduction_parses_and_evaluates(registered: None) -> None:
    p = tc.compile(PROGRAM.replace("x[i])", "z[i])"))
    assert p.inputs == ("A", "x", "z")  # no input named sumsq
    a = _arrays()
    z = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(p(**a, z=z), ((a["A"] * a["x"]) ** 2).sum(axis=1) + z ** 3)
    assert "sumsq" in RESERVED and "sumsq" in REDUCTIONS
    assert "sumsq" not in KEEPING and "sumsq" not in MATRIX


def test_gradient_and_hessian_against_finite_differences(registered: None) -> None:
    a = {"A": np.random.default_rng(1).uniform(-1.5, 1.5, (3, 3)),
         "x": np.array([0.7, -1.2, 0.4])}
    p = tc.compile(PROGRAM)
    np.testing.assert_allclose(p(**a), _reference(a["A"], a["x"]))
    g = tc.derive(p, "x")
    np.testing.assert_allclose(g(**a), finite_differences(p, "x", a), rtol=1e-6, atol=1e-8)
    h = tc.derive(g, "x")
    np.testing.assert_allclose(h(**a), finite_differences(g, "x", a), rtol=1e-6, atol=1e-7)
    assert np.abs(h(**a)).max() > 1  # not a vanishing second derivative


def test_printed_text_parses_to_the_same_numbers(registered: None) -> None:
    a = {"A": np.random.default_rng(2).uniform(-1.5, 1.5, (3, 3)), "x": np.array([1.0, 2, 3])}
    assert str(tc.compile(PROGRAM)) == PROGRAM
    for program in (tc.compile(PROGRAM), tc.derive(PROGRAM, "x"),
                    tc.derive(tc.derive(PROGRAM, "x"), "A")):
        again = tc.compile(str(program))
        np.testing.assert_allclose(again(**a), program(**a))


def test_latex_of_registered_entries(registered: None) -> None:
    latex = tc.compile(PROGRAM).latex()
    assert "\\operatorname{sumsq}_{j}\\left(A_{ij} x_{j}\\right)" in latex
    assert "\\operatorname{cube}\\left(x_{i}\\right)" in latex


def test_a_registered_entry_with_its_own_latex(registered: None) -> None:
    entry = tc.REDUCERS["sumsq"]
    tc.REDUCERS["sumsq"] = Reduction(entry.name, entry.kernel, entry.derivative, entry.doc,
                                     latex=lambda sub, arg: f"\\|{arg}\\|^2_{{{sub}}}")
    assert "\\|A_{ij} x_{j}\\|^2_{j}" in tc.compile(PROGRAM).latex()


def test_export_runs_the_registered_kernels(registered: None) -> None:
    a = {"A": np.random.default_rng(3).uniform(-1.5, 1.5, (3, 3)), "x": np.array([1.0, 2, 3])}
    for program in (tc.compile(PROGRAM), tc.derive(PROGRAM, "x")):
        code = program.to_python()
        space: dict[str, Any] = {}
        exec(compile(code, "<exported>", "exec"), space)
        np.testing.assert_allclose(space[program.result](**a), program(**a))
    assert "def _sumsq(" in tc.compile(PROGRAM).to_python()


def test_diagram_draws_registered_entries(registered: None) -> None:
    svg = tc.compile(PROGRAM).diagram()
    names = re.findall(r'class="node" data-id="n\d+" data-name="([^"]*)"', svg)
    # each labelled by its expression: the entry's name and then its argument
    assert any(n.startswith("sumsq[j](") for n in names), names
    assert any(n.startswith("cube(") for n in names), names


def test_a_parser_built_before_registration_knows_the_word(registered: None) -> None:
    assert re.search(r"REDUCE\.2: /\((\w+\|)*sumsq(\|\w+)*\)", grammar())
    with pytest.raises(tc.ParseError, match="sumsq is a reserved word.*sum of squares"):
        tc.compile("y = sumsq * 2")


def test_removing_an_entry_frees_its_word() -> None:
    tc.REDUCERS["sumsq"] = Reduction("sumsq", sumsq, _sumsq_derivative, "sum of squares")
    assert tc.compile("y = sumsq[j](x[j])").inputs == ("x",)
    del tc.REDUCERS["sumsq"]
    assert tc.compile("y = sumsq[j](x[j])").inputs == ("sumsq", "x")


def _grammar_words() -> set[str]:
    found = re.search(r"REDUCE\.2: /\(([\w|]+)\)", grammar())
    assert found is not None
    return set(found.group(1).split("|"))


def test_the_registry_is_the_only_list(registered: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert _grammar_words() == set(tc.REDUCERS)
    assert set(tc.REDUCERS) | {"sum", "delta", "input"} == set(meanings()) == set(RESERVED)
    for name, entry in tc.REDUCERS.items():
        assert entry.doc in meanings()[name]
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for f in tc.FUNCTIONS.values():
        assert f"{f.usage} {' '.join(f.doc.split())}" in help_text
    for r in tc.REDUCERS.values():
        assert f"{r.usage} {' '.join(r.doc.split())}" in help_text


@pytest.mark.parametrize("name", sorted(tc.REDUCERS))
def test_every_reduction_is_reserved_with_its_meaning(name: str) -> None:
    with pytest.raises(tc.ParseError, match=f"{name} is a reserved word") as err:
        tc.compile(f"y = {name} * 2")
    assert tc.REDUCERS[name].doc in str(err.value)


def _function_case(name: str) -> tuple[str, str, str]:
    """A program applying the function to X (and the constants 1, 1.25 as its further
    arguments), the function's LaTeX of that, and the diagram node it draws as: a
    comparison is written, and drawn, as the condition of a where."""
    entry = tc.FUNCTIONS[name]
    if entry.operator is not None:
        return (f"y[n,i] = where(X[n,i] {entry.operator} 1, X[n,i], 0)",
                entry.to_latex("X_{ni}", "1"), "where")
    if entry.condition:
        test = tc.FUNCTIONS["greater"].to_latex("X_{ni}", "1")
        return f"y[n,i] = {name}(X[n,i] > 1, X[n,i], 1)", entry.to_latex(test, "X_{ni}", "1"), \
            name
    rest = ("1", "1.25")[:entry.arity - 1]
    return f"y[n,i] = {name}({', '.join(('X[n,i]', *rest))})", \
        entry.to_latex("X_{ni}", *rest), name


def _case(kind: str, name: str) -> tuple[str, str, str]:
    """A program applying the entry to X, the entry's LaTeX of that, and its diagram label."""
    if kind == "function":
        return _function_case(name)
    entry = tc.REDUCERS[name]
    axes, sub, x = ("i,j", "ij", "X_{nij}") if entry.matrix else ("j", "j", "X_{nj}")
    lhs = f"y[n,{axes}]" if entry.keeps else "y[n]"
    return f"{lhs} = {name}[{axes}](X[n,{axes}])", entry.to_latex(sub, x), f"{name}["


EVERY_ENTRY = [("function", n) for n in sorted(tc.FUNCTIONS)] + \
    [("reduction", n) for n in sorted(tc.REDUCERS)]


@pytest.mark.parametrize("kind, name", EVERY_ENTRY)
def test_every_entry_through_every_emitter(kind: str, name: str) -> None:
    """Run, printed text, LaTeX, export and diagram agree for each built-in entry."""
    text, latex, label = _case(kind, name)
    p = tc.compile(text)
    matrix = kind == "reduction" and tc.REDUCERS[name].matrix
    X = np.random.default_rng(4).uniform(0.5, 1.5, (2, 3, 3) if matrix else (2, 3))
    X += 2 * np.eye(3)[: X.shape[-2], :] if matrix else 0  # well away from singular
    value = p(X=X)
    np.testing.assert_allclose(tc.compile(str(p))(X=X), value)
    space: dict[str, Any] = {}
    exec(compile(p.to_python(), "<exported>", "exec"), space)
    np.testing.assert_allclose(space["y"](X=X), value)
    assert latex in p.latex()
    assert f'data-name="{label}' in p.diagram()

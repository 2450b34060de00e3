"""The package's shape, checked: layers that import only downwards and no cycles (the
import-linter contracts in pyproject.toml), modules small enough to read in one sitting,
functions short, no function-level imports of the package, no reads of another module's
private names, every module documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tensorcalc as tc

PACKAGE = Path(tc.__file__).parent
ROOT = PACKAGE.parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
#: Modules and functions allowed past the limits, and why (docs/layout.md lists them).
LONG_MODULES: dict[str, str] = {}
LONG_FUNCTIONS: dict[str, str] = {}


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"), filename=str(path))


def test_the_layer_contracts_hold() -> None:
    cli = pytest.importorskip("importlinter.cli")
    # the contracts are pyproject.toml's, at the repository root; no cache written there
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, "a contract is broken: lint-imports prints which import"


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_a_module_is_short_and_documented(path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES or name(path) in LONG_MODULES, \
        f"{name(path)} has {lines} lines"
    tree = parsed(path)
    assert ast.get_docstring(tree) or path.name == "__main__.py", f"{name(path)}: no docstring"


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_functions_are_short(path: Path) -> None:
    too_long = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            where = f"{name(path)}:{node.name}"
            if length > MAX_FUNCTION_LINES and where not in LONG_FUNCTIONS:
                too_long.append(f"{where} ({length} lines)")
    assert not too_long, too_long


def package_imports(node: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    """The imports of tensorcalc (relative, or by its name) anywhere below ``node``."""
    out: list[ast.ImportFrom | ast.Import] = []
    for n in ast.walk(node):
        if isinstance(n, ast.ImportFrom) and (n.level > 0 or (n.module or "").startswith(
                "tensorcalc")):
            out.append(n)
        elif isinstance(n, ast.Import) and any(a.name.startswith("tensorcalc")
                                                for a in n.names):
            out.append(n)
    return out


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_imports_of_the_package_are_at_the_top_and_public(path: Path) -> None:
    tree = parsed(path)
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = package_imports(fn)
            assert not inner, f"{name(path)}:{inner[0].lineno}: an import inside {fn.name}"
    for node in package_imports(tree):
        for alias in node.names:
            assert not alias.name.startswith("_"), \
                f"{name(path)}:{node.lineno}: imports the private name {alias.name}"


def test_the_layout_page_names_every_module_and_only_real_test_directories() -> None:
    """docs/layout.md describes the package module by module: a module added without a line
    there, or a tests/ directory it names that no longer exists, fails here."""
    page = (ROOT / "docs" / "layout.md").read_text("utf-8")
    unnamed = [name(m) for m in MODULES if m.name != "__init__.py" and m.name not in page]
    assert not unnamed, f"docs/layout.md does not name {unnamed}"
    named = set(re.findall(r"`tests/(\w+)/", page))
    assert named and all((ROOT / "tests" / d).is_dir() for d in named), named
    for listed in LONG_MODULES | LONG_FUNCTIONS:
        assert listed in page, f"{listed} is allowed past a limit but docs/layout.md omits it"

"""``to_python``: the exported function runs where tensorcalc cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tensorcalc as tc

MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"

CASES = [
    ("Y[i,j] = X[i,k] W[k,j]", lambda src: tc.derive(src, "X"),
     {"X": (3, 4), "W": (4, 5)}),
    (MLP, lambda src: tc.grad(src, "W"),
     {"X": (3, 4), "W": (4, 5), "c": (5,), "V": (5, 2), "T": (3, 2)}),
    ("y[i] = sigmoid(x[i]) + softplus(x[i]) + relu(x[i])", lambda src: tc.derive(src, "x"),
     {"x": (6,)}),
    ("L = (X[i,j] W[j,k] - Y[i,k])^2", lambda src: tc.hessian(src, "W"),
     {"X": (3, 4), "W": (4, 2), "Y": (3, 2)}),
    ("s[i] = X[i,j]", lambda src: tc.derive(src, "X"), {"X": (2, 3)}),
    ("l[n] = log(sum[j](exp(Z[n,j])))", lambda src: tc.compile(src), {"Z": (3, 4)}),
]


@pytest.mark.parametrize("src, make, shapes", CASES, ids=[c[0][:30] for c in CASES])
def test_exported_function_matches_the_program_without_tensorcalc(tmp_path: Path, src, make,
                                                                  shapes) -> None:
    program = make(src)
    rng = np.random.default_rng(0)
    arrays = {k: rng.normal(size=s) for k, s in shapes.items()}
    expected = program(**arrays)
    code = program.to_python("exported")
    (tmp_path / "exported.py").write_text(code)
    np.savez(tmp_path / "inputs.npz", **arrays)
    np.save(tmp_path / "expected.npy", np.asarray(expected))
    runner = textwrap.dedent(f"""
        import sys
        sys.modules["tensorcalc"] = None  # importing tensorcalc now fails
        import numpy as np
        from exported import exported
        inputs = dict(np.load("inputs.npz"))
        names = {sorted(program.needed_inputs)!r}
        got = exported(**{{k: inputs[k] for k in names}})
        assert got.flags.writeable
        np.testing.assert_allclose(got, np.load("expected.npy"), rtol=1e-12, atol=1e-12)
        print("ok")
    """)
    ran = subprocess.run([sys.executable, "-c", runner], cwd=tmp_path, capture_output=True,
                         text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "ok"


def test_exported_source_is_readable() -> None:
    code = tc.grad(MLP, "W").to_python()
    assert "def dL_dW(*, X, W, c, V, T):" in code
    assert "# dL_dW[p,q] = H_bar[k,q] X[k,p] (1 - H[k,q]^2)" in code
    assert "oe.contract(" in code
    assert "tensorcalc" not in code.split('"""')[2]  # no import of tensorcalc in the body


def test_python_keywords_and_generated_names_are_renamed() -> None:
    program = tc.compile("t1[i] = np[i] + oe[i]; out = t1[i] n[i]")
    code = program.to_python()
    namespace: dict = {}
    exec(compile(code, "<exported>", "exec"), namespace)  # our own generated code, not user text
    x = np.arange(3.0)
    got = namespace["out_"](np=x, oe=x, n=x)
    assert np.isclose(got, program(np=x, oe=x, n=x))


@pytest.mark.parametrize("make, name, definition", [
    (lambda: tc.compile("y[i] = W[i,j] x[j]"), None, "def y(*, W, x):"),
    (lambda: tc.grad("L = (X[n,d] w[d] - y[n])^2", "w"), None, "def dL_dw(*, X, w, y):"),
    (lambda: tc.hessian("L = (X[n,d] W1[d] - y[n])^2", "W1"), None,
     "def d2L_dW1_dW1(*, X, W1=None, y=None):"),
    (lambda: tc.compile(MLP, "H"), None, "def H(*, X, W, c, V=None, T=None):"),
    (lambda: tc.compile("y[i] = x[i+k-1] w[k]", sizes={"i": 5}), None,
     "def y(*, x, w, index_sizes=None):"),
    (lambda: tc.compile("y = 2"), None, "def y():"),
    (lambda: tc.compile("y = sum[i](list[i])"), None, "def y(**inputs):"),
    (lambda: tc.compile("L = x[i]^2"), "loss", "def loss(*, x):"),
])
def test_the_exported_function_is_named_and_called_as_the_docs_say(make, name, definition):
    # docs/output.md, 'Code export': the result's name (or the name given), keyword-only parameters:
    # the needed inputs in order of first use, then the other accepted ones =None, then
    # index_sizes=None with index arithmetic; **inputs where a name would shadow Python
    code = make().to_python(name)
    defs = [line for line in code.splitlines() if line.startswith("def ")]
    assert defs[0] == definition, defs  # the function first, then the helpers it calls
    assert all(d.startswith("def _") for d in defs[1:]), defs

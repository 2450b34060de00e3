"""``to_python`` of programs with recurrences (docs/recurrences.md): the exported
function runs each recurrence as a Python loop over its positions and computes the
program's own numbers, for the value, the gradient (the adjoint runs backward) and a
Hessian-vector product (forward over reverse), without tensorcalc."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from corpus import ELMAN, EULER, GRU, LSTM, SINKHORN

import tensorcalc as tc

T, J, M, B = 5, 3, 2, 2


SHAPES: dict[str, dict[str, tuple[int, ...]]] = {
    "elman": {"h0": (J,), "W": (J, J), "U": (J, M), "x": (T, M), "b": (J,), "y": (T, J)},
    "lstm": {"h0": (B, J), "c0": (B, J), "Wh": (4, J, J), "Wx": (4, J, M), "bias": (4, J),
             "x": (T, B, M), "y": (T, B, J)},
    "gru": {"h0": (J,), "x": (T, M), "y": (T, J),
            **{f"W{g}": (J, J) for g in "zrn"}, **{f"U{g}": (J, M) for g in "zrn"},
            **{f"b{g}": (J,) for g in "zrn"}},
    "sinkhorn": {"a": (J,), "K": (J, 4), "b": (4,), "C": (J, 4)},
    "euler": {"y0": (J,), "A": (J, J), "c": (J,), "dt": (), "w": (T, J)},
}


PROGRAMS: dict[str, tuple[str, str, dict[str, int] | None]] = {
    "elman": (ELMAN, "W", None),
    "lstm": (LSTM, "Wh", None),
    "gru": (GRU, "Wz", None),
    "sinkhorn": (SINKHORN, "K", {"n": 3}),
    "euler": (EULER, "A", {"n": T}),
}

KINDS: dict[str, Callable[[tc.Program, str], tc.Program]] = {
    "value": lambda p, wrt: p,
    "gradient": lambda p, wrt: tc.grad(p, wrt),
    "hvp": lambda p, wrt: tc.jvp(tc.grad(p, wrt), wrt),
}


def _arrays(name: str, program: tc.Program, dtype: Any = np.float64) -> dict[str, np.ndarray]:
    """Inputs that keep the recurrence tame: small weights, positive Sinkhorn marginals."""
    rng = np.random.default_rng(1)
    shapes = {**SHAPES[name], "V": SHAPES[name][PROGRAMS[name][1]]}
    arrays = {k: 0.5 * rng.normal(size=s) for k, s in shapes.items() if k in program.accepts}
    if name == "sinkhorn":
        arrays = {k: np.abs(v) + 0.5 for k, v in arrays.items()}
    if "dt" in arrays:
        arrays["dt"] = np.asarray(0.1)
    return {k: v.astype(dtype) for k, v in arrays.items()}


def _exported(program: tc.Program, name: str = "exported") -> Callable[..., Any]:
    """The exported function, run in a namespace of its own."""
    code = program.to_python(name)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<exported>", "exec"), namespace)  # our own generated code
    return namespace[name]


def _program(name: str, kind: str) -> tc.Program:
    src, wrt, sizes = PROGRAMS[name]
    return KINDS[kind](tc.compile(src, sizes=sizes), wrt)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_exported_recurrence_computes_the_programs_numbers(name: str, kind: str) -> None:
    program = _program(name, kind)
    assert program.plan.loops, "the case must have a recurrence"
    arrays = _arrays(name, program)
    got = _exported(program)(**arrays)
    np.testing.assert_allclose(got, program(**arrays), rtol=1e-12, atol=1e-14)


def _imported(nodes: Any) -> set[str]:
    names = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {(node.module or "").split(".")[0] for node in nodes
                    if isinstance(node, ast.ImportFrom)}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_the_exported_module_imports_only_numpy_and_opt_einsum(name: str) -> None:
    """At the top; the copied helpers may try optional libraries (numba, cupyx) inside."""
    tree = ast.parse(_program(name, "hvp").to_python())
    assert _imported(tree.body) == {"__future__", "numpy", "opt_einsum"}
    assert "tensorcalc" not in _imported(ast.walk(tree))


@pytest.mark.parametrize("kind", ["value", "gradient"])
def test_float32_inputs_give_float32(kind: str) -> None:
    program = _program("lstm", kind)
    arrays = _arrays("lstm", program, np.float32)
    got = _exported(program)(**arrays)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, program(**arrays), rtol=1e-5, atol=1e-6)


def test_the_elman_gradient_matches_jax_scan() -> None:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    program = _program("elman", "gradient")
    arrays = _arrays("elman", program)

    def loss(W: Any) -> Any:
        def step(h: Any, xy: Any) -> Any:
            x, y = xy
            h = jnp.tanh(W @ h + arrays["U"] @ x + arrays["b"])
            return h, jnp.sum(h * y)
        _, parts = jax.lax.scan(step, jnp.asarray(arrays["h0"]),
                                (jnp.asarray(arrays["x"]), jnp.asarray(arrays["y"])))
        return jnp.sum(parts)

    expected = np.asarray(jax.grad(loss)(jnp.asarray(arrays["W"])))
    np.testing.assert_allclose(_exported(program)(**arrays), expected, rtol=1e-10, atol=1e-12)


def test_a_call_time_size_sets_the_number_of_steps() -> None:
    """The Euler rollout is compiled with sizes={"n": 5}; a call with index_sizes runs
    three steps, as the program's own evaluate with sizes does."""
    program = _program("euler", "gradient")
    arrays = _arrays("euler", program)
    arrays["w"] = arrays["w"][:3]
    got = _exported(program)(**arrays, index_sizes={"n": 3})
    np.testing.assert_allclose(got, program.evaluate(arrays, sizes={"n": 3}), rtol=1e-12)


def test_the_names_the_plan_makes_do_not_take_the_users() -> None:
    """``h@in1``, ``h@0-1`` and ``h@row`` are spelled ``h_in1``, ``h_0m1``, ``h_row``: a
    tensor of the program with one of those names keeps it and its own value."""
    src = ELMAN.replace("b[j]", "h_row[j]").replace("U[j,m]", "h_in1[j,m]")
    program = tc.grad(src, "W")
    shapes = {**SHAPES["elman"], "h_row": (J,), "h_in1": (J, M)}
    rng = np.random.default_rng(2)
    arrays = {k: 0.5 * rng.normal(size=shapes[k]) for k in program.accepts}
    code = program.to_python("exported")
    assert "# h_in1_, computed before the recurrence" in code
    np.testing.assert_allclose(_exported(program)(**arrays), program(**arrays), rtol=1e-12)


def test_the_steps_are_written_readably() -> None:
    code = _program("elman", "gradient").to_python()
    assert "for h_prev_step in range(h_prev_steps):" in code
    assert "for h_bar_step in range(h_bar_steps - 1, -1, -1):" in code
    assert "h_0m1 = h_rows[h_prev_step - 1]  # h[t-1]" in code
    assert "        # h[t,j] = tanh(W[j,k] h_prev[t,k] + U[j,m] x[t,m] + b[j])" in code


def test_exported_positions_read_zeros_past_an_array_a_one_hot_and_a_condition():
    """A shifted read of another array (zero past its end), a condition on the index
    inside a function, and a Hessian with respect to an input read along the index (its
    delta[t,r] read as a one-hot row): exported code gives the runner's numbers."""
    src = """
    h[-1,j] = tanh(V[j,k] a[k])
    h[t,j] = tanh(W[j,k] h[t-1,k] + x[t+1,j] + [t == 0] a[j]) + x[t,j]
    L = sum[t,j](h[t,j]^2)
    """
    rng = np.random.default_rng(21)
    arrays = dict(V=rng.normal(size=(3, 3)), a=rng.normal(size=3),
                  W=rng.normal(size=(3, 3)), x=rng.normal(size=(5, 3)))
    p = tc.compile(src, sizes={"t": 5})
    for program in (p, tc.grad(p, "W"), tc.hessian(p, "x")):
        namespace: dict[str, object] = {}
        exec(program.to_python("f"), namespace)  # noqa: S102 - our own generated code
        got = namespace["f"](**{k: arrays[k] for k in program.inputs})
        np.testing.assert_allclose(got, program(**arrays), rtol=1e-12, atol=1e-14)

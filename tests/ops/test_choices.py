"""The elementwise choices: ``where(cond, a, b)`` with value comparisons as its condition,
``maximum``, ``minimum`` and ``clip``. Values against NumPy; Jacobians and Hessians against
JAX in float64 (``jnp.where``, ``jnp.maximum``, ``jnp.clip``) and central differences away
from ties; the ties and boundaries themselves against JAX; the printed derivative, the
exported function, torch, JAX and Dask arrays, LaTeX, and the errors of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import CHOICE_CASES, away
from fd import numeric_jacobian
from support import EXACT, ROOT, close, jax_arrays

import tensorcalc as tc
from tensorcalc.ir import Call, Power, Sum, Term, as_sum, const
from tensorcalc.ops.functions import Function
from tensorcalc.tools.cli import main

IDS = [c[0] for c in CHOICE_CASES]
SCALAR_CASES = [c for c in CHOICE_CASES if c[1].splitlines()[-1].split("=")[0].strip() == "L"]


def jax_jacobian(jax, fn, arrays, wrt):
    a = jax_arrays(jax, arrays)
    return np.asarray(jax.jacobian(lambda w: fn(jax.numpy, **{**a, wrt: w}))(a[wrt]))


def jax_hessian(jax, fn, arrays, wrt):
    a = jax_arrays(jax, arrays)
    return np.asarray(jax.hessian(lambda w: fn(jax.numpy, **{**a, wrt: w}))(a[wrt]))


def run_exported(p: tc.Program, arrays: dict):
    """``p.to_python()`` executed in a fresh namespace, its function called."""
    namespace: dict = {}
    exec(compile(p.to_python(), f"<{p.result}>", "exec"), namespace)
    return namespace[p.result](**{k: v for k, v in arrays.items() if k in p.accepts})


def reparsed(d: tc.Program, arrays: dict):
    """``str(d)`` compiled again and run on the same arrays."""
    q = tc.compile(str(d))
    return q(**{k: v for k, v in arrays.items() if k in q.accepts})


# --- away from ties: values, Jacobians, Hessians ------------------------------------------


@pytest.mark.parametrize("name, src, wrt, make, fn", CHOICE_CASES, ids=IDS)
def test_value_against_numpy(name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(1))
    value = tc.compile(src)(**arrays)
    close(value, fn(np, **arrays), **EXACT)
    close(run_exported(tc.compile(src), arrays), value, **EXACT)


@pytest.mark.parametrize("name, src, wrt, make, fn", CHOICE_CASES, ids=IDS)
def test_jacobian_against_jax_and_finite_differences(jax64, name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(2))
    d = tc.derive(src, wrt)
    J = np.asarray(d(**arrays))
    close(J, jax_jacobian(jax64, fn, arrays, wrt), **EXACT)
    close(J, numeric_jacobian(src, wrt, arrays), rtol=1e-6, atol=1e-7)
    assert np.abs(J).max() > 0.1  # not a vanishing derivative
    close(reparsed(d, arrays), J, **EXACT)
    close(run_exported(d, arrays), J, **EXACT)


@pytest.mark.parametrize("name, src, wrt, make, fn", SCALAR_CASES,
                         ids=[c[0] for c in SCALAR_CASES])
def test_hessian_against_jax_and_finite_differences(jax64, name, src, wrt, make, fn):
    arrays = make(np.random.default_rng(3))
    h = tc.hessian(src, wrt)
    H = np.asarray(h(**arrays))
    close(H, jax_hessian(jax64, fn, arrays, wrt), rtol=1e-9, atol=1e-11)
    close(H, numeric_jacobian(tc.grad(src, wrt), wrt, arrays), rtol=1e-5, atol=1e-6)
    close(reparsed(h, arrays), H, **EXACT)
    close(run_exported(h, arrays), H, **EXACT)


def test_second_derivatives_are_the_choices_of_second_derivatives():
    x = np.array([-1.5, -0.3, 0.4, 2.0])
    h = tc.hessian("L = where(x[i] > 0, x[i]^3, x[i]^2)", "x")
    close(h(x=x), np.diag(np.where(x > 0, 6 * x, 2.0)), **EXACT)
    assert "where(x[p] > 0, 1, 0)" in str(h)


def test_the_printed_derivative_of_relu_written_as_maximum():
    d = tc.derive("y[i] = maximum(x[i], 0)", "x")
    assert str(d) == "dy_dx[i,p] = delta[i,p] (0.5 where(x[i] == 0, 1, 0) + where(x[i] > 0, 1, 0))"
    x = np.array([-1.0, 0.0, 2.0])
    close(tc.compile(str(d))(x=x), np.diag([0.0, 0.5, 1.0]), **EXACT)


def test_a_comparison_as_a_factor_folds_back_into_itself():
    """``where(c, 1, 0)``, how a comparison used as a factor prints, is that comparison
    again once simplified: deriving the printed derivative once more prints as before."""
    d = tc.grad("L = where(x[i] > 0, x[i]^2, 0)", "x")
    again = tc.derive(tc.compile(str(d)), "x")
    assert str(again).partition(" = ")[2] == str(tc.derive(d, "x")).partition(" = ")[2]


def test_a_constant_condition_picks_its_branch():
    d = tc.grad("L = where(2 > 1, x[i]^2, sin(x[i])) + where(1 == 2, x[i], 3 x[i])", "x")
    assert str(d) == "dL_dx[p] = 2 x[p] + 3"


def hypot(a, b, xp):
    return xp.sqrt(a * a + b * b)


def _hypot_partials(args):
    """a / hypot(a, b) and b / hypot(a, b)."""
    h = Power(as_sum(Call("hypot", args)), const(-1.0))
    return tuple(Sum((Term(1.0, (arg, h)),)) for arg in args)


def test_a_registered_function_of_two_arguments_is_one_entry():
    tc.FUNCTIONS["hypot"] = Function("hypot", hypot, None, "sqrt(a^2 + b^2)", arity=2,
                                     partials=_hypot_partials)
    try:
        src = "L = hypot(x[i], y[i])^3"
        a = {"x": np.array([0.3, -1.2, 2.0]), "y": np.array([1.0, 0.4, -0.7])}
        close(tc.evaluate(src, **a), np.sum(np.hypot(a["x"], a["y"]) ** 3), **EXACT)
        h = tc.hessian(src, "y")
        close(h(**a), numeric_jacobian(tc.grad(src, "y"), "y", a), rtol=1e-6, atol=1e-7)
        close(reparsed(h, a), h(**a), **EXACT)
        close(run_exported(h, a), h(**a), **EXACT)
        assert "\\operatorname{hypot}\\left(x_{i}, y_{i}\\right)" in tc.compile(src).latex()
        with pytest.raises(tc.ProgramError, match=r"hypot\(\) at .* takes 2 arguments"):
            tc.compile("L = hypot(x[i])")
    finally:
        del tc.FUNCTIONS["hypot"]


# --- ties and boundaries, against JAX ----------------------------------------------------


def _grad(src: str, wrt: str, arrays: dict) -> np.ndarray:
    return np.asarray(tc.grad(src, wrt)(**arrays))


def test_maximum_and_minimum_share_a_tie_equally(jax64):
    jnp = jax64.numpy
    x, y = np.array([1.0, 2.0, -0.5]), np.array([1.0, 0.5, -0.5])
    for fn, jfn in (("maximum", jnp.maximum), ("minimum", jnp.minimum)):
        src = f"L = {fn}(x[i], y[i])"
        for k, wrt in enumerate("xy"):
            expected = jax64.grad(lambda a, b, f=jfn: jnp.sum(f(a, b)), argnums=k)(x, y)
            close(_grad(src, wrt, {"x": x, "y": y}), expected, **EXACT)
    close(_grad("L = maximum(x[i], y[i])", "x", {"x": x, "y": y}), [0.5, 1.0, 0.5], **EXACT)


def test_relu_written_as_maximum_has_a_half_at_zero_as_jnp_maximum(jax64):
    x = np.array([-1.0, 0.0, 2.0])
    expected = jax64.grad(lambda v: jax64.numpy.sum(jax64.numpy.maximum(v, 0.0)))(x)
    close(_grad("L = maximum(x[i], 0)", "x", {"x": x}), expected, **EXACT)
    close(expected, [0.0, 0.5, 1.0], **EXACT)


def test_clip_at_its_bounds_as_jnp_clip(jax64):
    jnp = jax64.numpy
    # at lo, at hi, inside, outside, lo == hi == x, and lo > hi (the value is hi)
    x = np.array([0.0, 1.0, 0.5, 3.0, 1.0, 2.0])
    lo = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    hi = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    arrays = {"x": x, "lo": lo, "hi": hi}
    src = "L = clip(x[i], lo[i], hi[i])"
    close(tc.compile(src.replace("L =", "y[i] ="))(**arrays), jnp.clip(x, lo, hi), **EXACT)
    for k, wrt in enumerate(("x", "lo", "hi")):
        expected = jax64.grad(lambda *a: jnp.sum(jnp.clip(*a)), argnums=k)(x, lo, hi)
        close(_grad(src, wrt, arrays), expected, **EXACT)
    close(_grad(src, "x", arrays), [0.5, 0.5, 1.0, 0.0, 0.25, 0.0], **EXACT)


@pytest.mark.parametrize("op, taken", [(">", "b"), (">=", "a"), ("<", "b"), ("<=", "a"),
                                       ("==", "a"), ("!=", "b")])
def test_where_at_its_boundary_takes_the_branch_the_condition_picks(jax64, op, taken):
    jnp = jax64.numpy
    x = np.array([0.0])
    src = f"L = where(x[i] {op} 0, 3 x[i], 5 x[i])"
    g = _grad(src, "x", {"x": x})
    close(g, [3.0 if taken == "a" else 5.0], **EXACT)
    condition = {">": jnp.greater, ">=": jnp.greater_equal, "<": jnp.less, "<=": jnp.less_equal,
                 "==": jnp.equal, "!=": jnp.not_equal}[op]
    expected = jax64.grad(lambda v: jnp.sum(jnp.where(condition(v, 0.0), 3 * v, 5 * v)))(x)
    close(g, expected, **EXACT)


def test_an_untaken_branch_with_an_infinite_derivative_poisons_it_as_in_jax(jax64):
    """sqrt'(0) is inf, and 0 * inf is nan: the classic trap, as in JAX. Guarding the
    argument (sqrt of where(x > 0, x, 1)) keeps the gradient finite, as in JAX."""
    jnp = jax64.numpy
    x = np.array([0.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):  # sqrt'(0) = 1 / (2 sqrt(0))
        trap = _grad("L = where(x[i] > 0, sqrt(x[i]), 0)", "x", {"x": x})
    jax_trap = jax64.grad(lambda v: jnp.sum(jnp.where(v > 0, jnp.sqrt(v), 0.0)))(x)
    assert np.isnan(trap[0]) and np.isnan(jax_trap[0])
    close(trap[1], 0.25, **EXACT)
    with np.errstate(all="ignore"):
        value = tc.evaluate("y[i] = where(x[i] > 0, log(x[i]), 0)", x=x)
    close(value, [0.0, np.log(4.0)], **EXACT)  # the value itself is never poisoned
    guarded = _grad("L = where(x[i] > 0, sqrt(where(x[i] > 0, x[i], 1)), 0)", "x", {"x": x})
    jax_guarded = jax64.grad(lambda v: jnp.sum(
        jnp.where(v > 0, jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)))(x)
    close(guarded, jax_guarded, **EXACT)
    close(guarded, [0.0, 0.25], **EXACT)


# --- dtypes and array libraries ----------------------------------------------------------

# z[i], not L: x[i] inside where's argument is then elementwise, no dot product (docs/language.md)
CHOICES = ("z[i] = where(x[i] > y[i], maximum(x[i], 0)^2, clip(y[i], -1, 1) x[i]) "
           "+ minimum(x[i], y[i]^2)\nL = z[i]")


def _choices(xp, x, y):
    """CHOICES for NumPy, JAX and torch (whose maximum takes no Python number)."""
    return xp.sum(xp.where(x > y, xp.maximum(x, 0 * x) ** 2, xp.clip(y, -1.0, 1.0) * x)
                  + xp.minimum(x, y ** 2))


def _choice_arrays(dtype=np.float64):
    r = np.random.default_rng(7)
    while True:
        x, y = away(r, 6), away(r, 6, spread=1.8)
        if (np.abs(x - y) > 0.1).all() and (np.abs(np.abs(y) - 1) > 0.1).all() \
                and (np.abs(x - y ** 2) > 0.1).all():
            return {"x": x.astype(dtype), "y": y.astype(dtype)}


def test_float32_stays_float32():
    a = _choice_arrays(np.float32)
    p = tc.compile(CHOICES)
    assert p(**a).dtype == np.float32
    g = tc.grad(p, "x")(**a)
    assert g.dtype == np.float32
    close(g, tc.grad(p, "x")(**_choice_arrays()), rtol=1e-5, atol=1e-6)


def test_torch_tensors_and_to_torch():
    torch = pytest.importorskip("torch")
    a = _choice_arrays()
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in a.items()}
    value = tc.compile(CHOICES)(**t)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float32
    close(value.numpy(), _choices(np, **a), rtol=1e-5)
    x = torch.tensor(a["x"], requires_grad=True)
    y = torch.tensor(a["y"])
    loss = tc.to_torch(CHOICES)(x=x, y=y)
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    xt = x.detach().clone().requires_grad_()
    expected = torch.autograd.grad(_choices(torch, xt, y), xt)[0]
    close(g.detach().numpy(), expected.numpy(), **EXACT)
    H = torch.func.hessian(lambda v: tc.to_torch(CHOICES)(x=v, y=y))(x.detach())
    close(H.numpy(), torch.func.hessian(lambda v: _choices(torch, v, y))(x.detach()).numpy(),
          **EXACT)


def test_jax_arrays_and_to_jax(jax64):
    jnp = jax64.numpy
    a = jax_arrays(jax64, _choice_arrays())
    value = tc.compile(CHOICES)(**a)
    assert isinstance(value, jax64.Array)
    close(value, _choices(jnp, **a), **EXACT)
    f = tc.to_jax(CHOICES)
    close(jax64.grad(lambda v: f(x=v, y=a["y"]))(a["x"]),
          jax64.grad(lambda v: _choices(jnp, v, a["y"]))(a["x"]), **EXACT)
    close(jax64.jit(jax64.hessian(lambda v: f(x=v, y=a["y"])))(a["x"]),
          jax64.hessian(lambda v: _choices(jnp, v, a["y"]))(a["x"]), **EXACT)


def test_dask_arrays():
    da = pytest.importorskip("dask.array")
    a = _choice_arrays()
    chunked = {k: da.from_array(v, chunks=3) for k, v in a.items()}
    value = tc.compile(CHOICES)(**chunked)
    assert isinstance(value, da.Array)
    close(value.compute(), _choices(np, **a), **EXACT)
    close(tc.grad(CHOICES, "x")(**chunked).compute(), tc.grad(CHOICES, "x")(**a), **EXACT)


# --- printing, LaTeX, help, explain -------------------------------------------------------


@pytest.mark.parametrize("src", [
    "y[i] = where(x[i] > 0, x[i], 0)",
    "y[i] = where(A[i,j] x[j] + 1 <= 2 b[i], -x[i], sum[k](c[k]))",
    "z[i,j] = maximum(x[i], y[j]) - minimum(x[i] y[j], 0.5)",
    "L = clip(x[i], -1, 1)^2",
    "y[i] = where(x[i] != 0, 1 / x[i], 0) + where(x[i] == 1, 2, 3)",
])
def test_a_program_prints_as_written(src):
    assert str(tc.compile(src)) == src


def test_latex_of_the_choices_and_of_a_comparison_as_a_factor():
    p = tc.compile("z[i] = where(x[i] >= 0, maximum(x[i], y[i]), clip(x[i], -1, 1))")
    latex = p.latex()
    assert "\\operatorname{where}\\left(x_{i} \\geq 0, \\max\\left(x_{i}, y_{i}\\right), " \
        "\\operatorname{clip}\\left(x_{i}, -1, 1\\right)\\right)" in latex
    d = tc.derive("y[i] = maximum(x[i], 0)", "x")
    assert "\\left[x_{i} > 0\\right]" in d.latex()
    assert "\\left[x_{i} = 0\\right]" in d.latex()
    pytest.importorskip("matplotlib")
    from matplotlib import mathtext

    for program in (p, d, tc.hessian(CHOICES, "x")):
        for line in program.latex().split(" \\\\\n"):
            mathtext.math_to_image(f"${line}$", __import__("io").BytesIO(), format="png")


def test_help_lists_the_choices_and_the_comparisons(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for usage in ("where(cond, a, b)", "maximum(a, b)", "minimum(a, b)", "clip(x, lo, hi)",
                  "a > b", "a >= b", "a < b", "a <= b", "a == b", "a != b"):
        assert usage in text


def test_the_docs_show_the_real_output():
    page = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    section = page.split("### Choices", 1)[1].split("\n## ", 1)[0]
    huber = "L = where(abs(r[i]) <= 1, 0.5 r[i]^2, abs(r[i]) - 0.5)"
    assert f'>>> print(tc.grad("{huber}", "r"))\n{tc.grad(huber, "r")}\n' in section
    relu = "y[i] = maximum(x[i], 0)"
    assert f'>>> print(tc.derive("{relu}", "x"))\n{tc.derive(relu, "x")}\n' in section


def test_explain_says_where_to_sum_inside_an_argument():
    out = tc.explain("L = maximum(x[i], 0)")
    assert "to sum inside, write maximum(sum[i](...), ...)" in out


# --- bad input ----------------------------------------------------------------------------

ERRORS = [
    ("y[i] = maximum(x[i])", tc.ProgramError,
     r"maximum\(\) at line 1, column 8 takes 2 arguments, maximum\(a, b\); got 1"),
    ("y[i] = clip(x[i], 0, 1, 2)", tc.ProgramError, r"clip\(\) at .* takes 3 arguments"),
    ("y[i] = tanh(x[i], 1)", tc.ProgramError, r"tanh\(\) at .* takes 1 argument, tanh\(e\)"),
    ("y[i] = where(x[i], 1, 0)", tc.ProgramError,
     r"the condition of where\(\) at line 1, column 8 is not a comparison"),
    ("y[i] = where(x[i] > 0, x[i] > 1, 0)", tc.ProgramError,
     r"the comparison > at line 1, column 29 is not the condition of a where"),
    ("y[i] = maximum(x[i] > 0, 1)", tc.ProgramError, r"the comparison > at .*column 21"),
    ("y[i] = greater(x[i], 0)", tc.ProgramError,
     r"greater\(\) at .* is the comparison a > b: write it so"),
    ("y[i] = max(x[i], 0)", tc.ProgramError, r"write maximum\(a, b\)"),
    ("y[i] = x[i] > 0", tc.ParseError,
     r"column 13: unexpected '>'.*only as the first argument of where"),
    ("y[i] = where((x[i] > 0), 1, 0)", tc.ParseError, r"column 20: .*not in parentheses"),
    ("y[i] = where(0 < x[i] < 1, 1, 0)", tc.ParseError, r"column 23: .*not chained"),
    ("y[i] == x[i]", tc.ParseError, r"unexpected '=='.*to assign, write one ="),
]


@pytest.mark.parametrize("src, error, match", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_a_clear_error(src, error, match):
    with pytest.raises(error, match=match):
        tc.compile(src)

"""Index arithmetic is written once: the runner calls ``windows``' functions and the
exported code carries their very source."""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.backend import windows
from tensorcalc.ir import Affine

RNG = np.random.default_rng(11)


def _body(fn: object) -> str:
    source = textwrap.dedent(inspect.getsource(fn))  # type: ignore[arg-type]
    return source[source.index('"""', source.index('"""') + 3) + 3:]  # after the docstring


@pytest.mark.parametrize("src, wrt, used", [
    ("y[i] = x[i+k] w[k]\nL = y[i]^2", "x", ("read_window", "subscript_at", "window_layout",
                                            "shrink_sizes")),
    ("y[i] = x[2*i+k] w[k]\nL = y[i]^2", "x", ("scatter_shifts", "scatter_add")),
    ("e[n,j] = E[t[n],j]\nL = sum[n,j](tanh(e[n,j]))", "E", ("scatter_shifts", "scatter_add",
                                                             "check_index_array")),
    ("d[i] = x[i+1] - x[i]\nL = d[i]^2", "x", ("read_window", "strided_view", "fit")),
])
def test_exported_code_carries_the_runners_functions(src: str, wrt: str,
                                                     used: tuple[str, ...]) -> None:
    g = tc.grad(src, wrt)
    code = g.to_python("f")
    for name in used:
        assert _body(getattr(windows, name)) in code, name
    arrays = {"x": RNG.standard_normal(9), "w": RNG.standard_normal(3),
              "E": RNG.standard_normal((5, 4)), "t": np.array([4, 0, 4, 2])}
    given = {k: v for k, v in arrays.items() if k in g.inputs}
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - our own generated code
    np.testing.assert_allclose(namespace["f"](**given), g(**given),  # type: ignore[operator]
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("coefs, offset", [((1, 1), 0), ((2, 1), -1), ((1, -1), 2),
                                           ((-1, 2), 6), ((3, 0), -2)])
def test_a_strided_view_reads_what_a_gather_reads(coefs: tuple[int, int], offset: int) -> None:
    """The two ways ``read_window`` reads an affine window agree, zeros past the ends
    included."""
    parts = tuple((i, c) for i, c in zip(("i", "k"), coefs) if c)
    subs = (windows.encode(Affine(parts, offset)), windows.encode("j"))
    out, n = ("i", "k", "j"), {"i": 4, "k": 3, "j": 2}
    x = RNG.standard_normal((7, 2))
    layout = windows.window_layout(subs, out, n, x.shape)
    args = (subs, out, n, {}, layout, np, np.pad, windows.subscript_at)
    viewed = windows.read_window(x, *args, windows.strided_view, {})
    gathered = windows.read_window(x, *args, None, {})
    expected = np.zeros((4, 3, 2))
    for i in range(4):
        for k in range(3):
            p = offset + coefs[0] * i + coefs[1] * k
            if 0 <= p < 7:
                expected[i, k] = x[p]
    np.testing.assert_array_equal(viewed, expected)
    np.testing.assert_array_equal(gathered, expected)

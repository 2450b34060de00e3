"""Central finite differences: the numerical oracle behind ``tensorcalc check``.

It only evaluates the program, never its symbolic derivative, so it is an
independent check of ``derive``.

>>> import numpy as np
>>> from tensorcalc.api import compile
>>> finite_differences(compile("s = x[i] x[i]"), "x", {"x": np.array([1.0, 2.0])}).round(6)
array([2., 4.])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend.arrays import COMPLEX
from ..errors import InputError
from ..program import Program

#: How many times the rounding error of one evaluation (a few ulps of the largest value)
#: a difference quotient may carry: the error of two evaluations, divided by the step.
_ROUNDING_ULPS = 8


def finite_differences(program: Program, wrt: str, arrays: dict[str, Any],
                       eps: float = 1e-6) -> np.ndarray:
    """d result / d wrt by central differences; result axes first, then wrt's axes.

    Complex inputs are refused: a real step would silently drop their imaginary part.
    """
    x = np.asarray(arrays[wrt])
    columns, _ = difference_columns(program, wrt, arrays, range(x.size), eps)
    return columns.reshape(columns.shape[:-1] + x.shape)


def difference_columns(program: Program, wrt: str, arrays: dict[str, Any],
                       positions: Sequence[int], eps: float = 1e-6) -> tuple[np.ndarray, float]:
    """The derivative's columns at the flat ``positions`` of ``wrt``, by central
    differences (the result's axes, then one axis over the positions), and a bound on
    their rounding error: each value is exact to a few ulps of the largest result, and a
    difference divides that by its step. The step at ``x`` is ``eps * max(1, |x|)``."""
    for name, value in arrays.items():
        if np.iscomplexobj(value):
            raise InputError(f"input {name} is complex: {COMPLEX}")
    base = np.asarray(program(**arrays))
    x = np.array(arrays[wrt], dtype=np.float64)
    flat = x.reshape(-1)
    out = np.zeros(base.shape + (len(positions),))
    rounding = 0.0
    for column, k in enumerate(positions):
        step = eps * max(1.0, abs(float(flat[k])))
        values = []
        for sign in (1.0, -1.0):
            moved = flat.copy()
            moved[k] += sign * step
            values.append(np.asarray(program(**{**arrays, wrt: moved.reshape(x.shape)})))
        # the precision the stepped evaluations ran in (x stepped in float64 makes them
        # float64 even where the other inputs are float32)
        kind = values[0].dtype if values[0].dtype.kind == "f" else np.dtype(np.float64)
        ulp = float(np.finfo(kind).eps)
        out[..., column] = (values[0].astype(np.float64) - values[1]) / (2 * step)
        largest = max((float(np.max(np.abs(v))) for v in values if v.size), default=0.0)
        rounding = max(rounding, _ROUNDING_ULPS * ulp * largest / step)
    return out, rounding

"""Central finite differences: the numerical oracle behind ``tensorcalc check``.

It only evaluates the program, never its symbolic derivative, so it is an
independent check of ``derive``.

>>> import numpy as np
>>> from tensorcalc.api import compile
>>> finite_differences(compile("s = x[i] x[i]"), "x", {"x": np.array([1.0, 2.0])}).round(6)
array([2., 4.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend.arrays import COMPLEX
from .errors import InputError
from .program import Program


def finite_differences(program: Program, wrt: str, arrays: dict[str, Any],
                       eps: float = 1e-6) -> np.ndarray:
    """d result / d wrt by central differences; result axes first, then wrt's axes.

    Complex inputs are refused: a real step would silently drop their imaginary part.
    """
    for name, value in arrays.items():
        if np.iscomplexobj(value):
            raise InputError(f"input {name} is complex: {COMPLEX}")
    base = np.asarray(program(**arrays))
    x = np.array(arrays[wrt], dtype=np.float64)
    out = np.zeros(base.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        f_plus = np.asarray(program(**{**arrays, wrt: plus}))
        f_minus = np.asarray(program(**{**arrays, wrt: minus}))
        out[(Ellipsis,) + idx] = (f_plus - f_minus) / (2 * eps)
    return out

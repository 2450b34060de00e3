"""Central finite differences: the numerical oracle behind ``tensorcalc check`` and the
playground's check.

It only evaluates the program, never its symbolic derivative, so it is an
independent check of ``derive``; ``compare`` sets the two side by side.

>>> import numpy as np
>>> from tensorcalc.api import compile
>>> finite_differences(compile("s = x[i] x[i]"), "x", {"x": np.array([1.0, 2.0])}).round(6)
array([2., 4.])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backend.arrays import COMPLEX
from ..derivatives import derive
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


#: ``compare`` steps at most this many entries of the input (two evaluations each), chosen
#: at random past it, so that it ends in seconds whatever the size.
MAX_CHECKED_ENTRIES = 1000
#: Past this share of the largest derivative, the differences' rounding decides nothing.
_UNDECIDED = 0.1


@dataclass(frozen=True)
class Comparison:
    """A symbolic derivative beside central differences: ``verdict`` is ``agree``,
    ``DISAGREE`` or ``UNDECIDED: ...``; ``error`` is relative to ``scale``; ``summary`` is
    the line ``tensorcalc check`` prints."""

    verdict: str
    error: float
    scale: float
    summary: str


def compare(program: Program, wrt: str, of: str | None, arrays: dict[str, Any], tol: float,
            seed: int) -> Comparison:
    """``derive(program, wrt, of)`` at ``arrays`` against central differences, at most
    ``MAX_CHECKED_ENTRIES`` entries of ``wrt`` (chosen with ``seed`` past that)."""
    d = derive(program, wrt, of)
    name = wrt.split("[")[0].strip()
    analytic = np.asarray(d(**{k: v for k, v in arrays.items() if k in d.accepts}), dtype=float)
    size = int(np.asarray(arrays[name]).size)
    positions = np.arange(size)
    if size > MAX_CHECKED_ENTRIES:
        positions = np.sort(np.random.default_rng(seed).choice(size, MAX_CHECKED_ENTRIES,
                                                                replace=False))
    numeric, rounding = difference_columns(program, name, arrays, positions.tolist())
    shape = analytic.shape
    analytic = analytic.reshape(numeric.shape[:-1] + (size,))[..., positions]
    # relative to the larger of the two (a derivative that is wrongly large or wrongly
    # small is as far off); an exact zero everywhere compares absolutely
    scale = max(float(np.max(np.abs(numeric), initial=0.0)),
                float(np.max(np.abs(analytic), initial=0.0))) or 1.0
    error = float(np.max(np.abs(analytic - numeric))) / scale if numeric.size else 0.0
    allowed = tol + rounding / scale  # the differences are no better than their rounding
    verdict = "agree" if error <= allowed else "DISAGREE"
    if rounding / scale > _UNDECIDED:
        verdict = ("UNDECIDED: the differences are mostly rounding here (the values are large "
                   "beside the derivative); check at smaller values")
    sampled = (f"; {len(positions):,} of the {size:,} entries of {name}, chosen at random "
               "(--seed)" if len(positions) < size else "")
    slack = f" + {rounding / scale:.1e} for the differences' rounding" \
        if rounding / scale > tol / 100 else ""
    summary = (f"{d.result}: shape {shape}"
               f"{sampled}, largest error {error:.3e} (relative to max |derivative| "
               f"{scale:.3g}); tolerance {tol:g}{slack}: {verdict}")
    return Comparison(verdict, error, scale, summary)

"""Central finite differences: the oracle every derivative is checked against."""

from __future__ import annotations

from typing import Any

import numpy as np

import tensorcalc as tc
from tensorcalc.tools.check import finite_differences


def numeric_jacobian(program: Any, wrt: str, arrays: dict[str, np.ndarray],
                     eps: float = 1e-6) -> np.ndarray:
    """d result / d wrt by central differences, laid out result axes then wrt axes."""
    return finite_differences(tc.compile(program), wrt, arrays, eps)


def random_arrays(program: Any, sizes: dict[str, int], seed: int = 0,
                  positive: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Random inputs for a program, shaped from ``sizes`` of each index it is written with."""
    p = tc.compile(program)
    rng = np.random.default_rng(seed)
    shapes: dict[str, tuple[int, ...]] = {}
    from tensorcalc.ir import statement_refs

    for st in p.statements:
        for r in statement_refs(st):
            if r.name in p.inputs and r.name not in shapes:
                shapes[r.name] = tuple(sizes.get(i, 3) for i in r.indices)
    out = {}
    for name, shape in shapes.items():
        a = rng.normal(size=shape)
        out[name] = np.abs(a) + 0.5 if name in positive else a
    return out

"""Helpers that several test files share and that are not data: the repository's root, the
command-line runner, the count of printed derivatives that were run again, and comparisons
of arrays, and a program's first, second and mixed derivatives. Shared programs and cases
are in ``corpus.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import tensorcalc as tc
from tensorcalc.errors import TensorCalcError

ROOT = Path(__file__).resolve().parent.parent

# How many printed derivatives conftest's autouse fixture compiled again and compared.
PRINTED_CHECKS = {"count": 0}

EXACT = dict(rtol=1e-10, atol=1e-12)  # against NumPy / JAX in float64


def cli(*args, cwd=None, timeout=60):
    """``python -m tensorcalc ARGS`` with the repository first on PYTHONPATH."""
    env = dict(os.environ)
    extra = os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    env["PYTHONPATH"] = str(ROOT) + extra
    return subprocess.run(
        [sys.executable, "-m", "tensorcalc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


def close(a, b, rtol=1e-6, atol=1e-7):
    """Same shape and the same values, as float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def jax_arrays(jax, arrays):
    """The arrays as jax.numpy arrays."""
    return {k: jax.numpy.asarray(v) for k, v in arrays.items()}


def derivatives_of(src: str, wrt: str, sizes: dict[str, int] | None) -> list[tc.Program]:
    """First, second and mixed derivatives of ``src``; none where it cannot be derived
    by ``wrt`` (an index array, a size): the checks that use them are not about that."""
    p = tc.compile(src, sizes=sizes) if sizes else tc.compile(src)
    try:
        first = tc.derive(p, wrt)
        out = [first, tc.derive(first, wrt)]
        out += [tc.derive(first, x) for x in p.inputs if x != wrt and x not in p.index_arrays]
    except TensorCalcError:
        return []
    return out

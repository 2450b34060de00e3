"""Which array library an array belongs to.

NumPy arrays (and Python numbers) use NumPy itself; any other array goes through
array-api-compat, imported only when such an array first appears, so torch, JAX,
CuPy and Dask arrays stay in their own library.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from typing import Any

import numpy as np

from ..errors import InputError


def namespace(*arrays: Any) -> Any:
    """The array namespace shared by ``arrays`` (NumPy for NumPy arrays and scalars)."""
    foreign = [a for a in arrays if not isinstance(a, (np.ndarray, np.generic, int, float))]
    if not foreign:
        return np
    import array_api_compat  # lazy: only for arrays that are not NumPy's

    return array_api_compat.array_namespace(*foreign)


def on_device(array: Any) -> dict[str, Any]:
    """Keyword arguments that put a new array beside ``array`` (a GPU tensor's device)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return {}
    import array_api_compat

    return {"device": array_api_compat.device(array)}


def as_array(value: Any) -> Any:
    """An input as an array: the caller's own array kept, numbers and lists to NumPy floats."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    return array


def bind_inputs(arrays: dict[str, Any], accepts: Set[str], needed: Set[str],
                order: tuple[str, ...], computed: Collection[str]) -> dict[str, Any]:
    """The caller's keyword arrays checked against a program and made arrays.

    ``accepts``: every name the program takes; ``needed``: those it must have (``order``
    lists them in order of first use, for messages); ``computed``: its statements' names.
    """
    if arrays.keys() <= accepts and needed <= arrays.keys() and all(
        type(v) is np.ndarray and v.dtype.kind in "fc" for v in arrays.values()
    ):
        return dict(arrays)  # the common case, checked in one pass
    for name in arrays:
        if name not in accepts:
            if name in computed:
                raise InputError(f"{name} is computed by the program; it is not an input")
            known = ", ".join(accepts) or "none"
            raise InputError(f"unknown input {name}; the program's inputs are {known}")
    missing = [n for n in order if n not in arrays]
    if missing:
        raise InputError(
            f"missing input array{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(the program needs {', '.join(order)})"
        )
    env = {}
    # A Python number takes the float type of the arrays, as NumPy's own scalars do.
    floats = [a.dtype for a in arrays.values()
              if isinstance(a, np.ndarray) and a.dtype.kind in "fc"]
    number_dtype = np.result_type(*floats) if floats else np.float64
    for name, value in arrays.items():
        try:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                env[name] = np.asarray(value, dtype=number_dtype)
                continue
            env[name] = as_array(value)
        except (ValueError, TypeError) as err:
            raise InputError(f"input {name} is not an array of numbers: {err}") from None
        if isinstance(env[name], np.ndarray) and env[name].dtype.kind not in "fc":
            raise InputError(f"input {name} has dtype {env[name].dtype}; give numbers")
    return env

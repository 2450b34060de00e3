"""Which array library an array belongs to.

NumPy arrays (and Python numbers) use NumPy itself; any other array goes through
array-api-compat, imported only when such an array first appears, so torch, JAX,
CuPy and Dask arrays stay in their own library.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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

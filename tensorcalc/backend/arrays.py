"""Which array library an array belongs to, and the caller's arrays bound to a program.

NumPy arrays (and Python numbers) use NumPy itself; any other array goes through
array-api-compat, imported only when such an array first appears, so torch, JAX,
CuPy and Dask arrays stay in their own library.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from typing import Any

import numpy as np

from ..errors import InputError
from .libraries import library


def namespace(*arrays: Any) -> Any:
    """The array namespace shared by ``arrays`` (NumPy for NumPy arrays and scalars)."""
    foreign = [a for a in arrays if not isinstance(a, (np.ndarray, np.generic, int, float))]
    if not foreign:
        return np
    import array_api_compat  # lazy: only for arrays that are not NumPy's

    return array_api_compat.array_namespace(*foreign)


def on_device(array: Any) -> dict[str, Any]:
    """Keyword arguments that put a new array beside ``array`` (a GPU tensor's device)."""
    return library(namespace(array)).device_of(array)


def signature(value: Any) -> tuple[Any, ...]:
    """What a plan bound for the array ``value`` depends on: its type, shape, dtype and,
    off NumPy, its device (constants and identities are made there)."""
    if type(value) is np.ndarray:
        return (np.ndarray, value.shape, value.dtype)
    try:
        device = value.device
        hash(device)
    except Exception:  # noqa: BLE001 - no device to tell (a traced value, a Dask array)
        device = None
    return (type(value), value.shape, value.dtype, device)


def as_array(value: Any) -> Any:
    """An input as an array: the caller's own array kept, numbers and lists to NumPy floats."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    return array


def _index_array(name: str, value: Any, like: Any) -> Any:
    """An index array (docs/index-arithmetic.md) as an integer array of the library of ``like``."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        array = value
        kind = _kind(namespace(array), array.dtype)
    else:
        array = np.asarray(value)
        kind = array.dtype.kind
    if kind not in "iu":
        raise InputError(f"index array {name} has dtype {array.dtype}; an array used as a "
                         "subscript must hold integers")
    if like is not None and _library(like) != _library(array):
        # integer arrays are cheap to move: to the library of the numbers they index
        try:
            moved = np.array(array.cpu() if hasattr(array, "cpu") else array)  # a copy
            array = moved if isinstance(like, np.ndarray) else \
                namespace(like).asarray(moved, **on_device(like))
        except Exception:  # noqa: BLE001 - a traced array (jax.vmap, jax.jit) has no values
            raise InputError(f"index array {name} is a {_library(array)} array and the "
                             f"numbers it indexes are {_library(like)} arrays; give them "
                             "in one library") from None
    return library(namespace(array)).as_index(array)


def _library(array: Any) -> str:
    """The name of the array library of ``array``: NumPy, torch, JAX, ..."""
    return library(namespace(array)).name


COMPLEX = "complex inputs are not supported (tensorcalc computes with real numbers only)"


def bind_inputs(arrays: dict[str, Any], accepts: Set[str], needed: Set[str],
                order: tuple[str, ...], computed: Collection[str],
                index_arrays: Set[str] = frozenset()) -> dict[str, Any]:
    """The caller's keyword arrays checked against a program and made arrays.

    ``accepts``: every name the program takes; ``needed``: those it must have (``order``
    lists them in order of first use, for messages); ``computed``: its statements' names;
    ``index_arrays``: the inputs used as subscripts (``t`` in ``E[t[n], j]``), which stay
    integer arrays. Complex values are refused, here, for every library: nothing downstream
    handles them.
    """
    if arrays.keys() <= accepts and needed <= arrays.keys() and all(
        type(v) is np.ndarray and v.dtype.kind == "f" for v in arrays.values()
    ) and not index_arrays:
        return dict(arrays)  # the common case, checked in one pass
    if arrays.keys() <= accepts and needed <= arrays.keys() and not index_arrays \
            and _one_float_type(arrays.values()):
        return dict(arrays)  # the same for tensors of one library: nothing to convert
    if index_arrays & arrays.keys():
        return _bind_with_index_arrays(arrays, accepts, needed, order, computed, index_arrays)
    _check_names(arrays, accepts, order, computed)
    env: dict[str, Any] = {}
    numbers: dict[str, Any] = {}  # Python numbers, NumPy scalars and lists: no library
    foreign: dict[str, Any] = {}  # arrays of torch, JAX, Dask, CuPy ...
    for name, value in arrays.items():
        _sort_input(name, value, env, numbers, foreign)
    if foreign:
        return _bind_foreign(arrays, env, numbers, foreign)
    # A Python number takes the float type of the arrays, as NumPy's own scalars do.
    floats = [a.dtype for a in env.values()]
    number_dtype = np.result_type(*floats) if floats else np.float64
    for name, value in numbers.items():
        env[name] = value if isinstance(value, np.ndarray) else \
            np.asarray(value, dtype=number_dtype)
    return {name: env[name] for name in arrays}


def _bind_with_index_arrays(arrays: dict[str, Any], accepts: Set[str], needed: Set[str],
                            order: tuple[str, ...], computed: Collection[str],
                            index_arrays: Set[str]) -> dict[str, Any]:
    """``bind_inputs`` where some inputs are index arrays: the numbers bound as any
    inputs are, then each index array as an integer array of their library."""
    missing_index = [n for n in order if n in index_arrays and n not in arrays]
    if missing_index:
        raise InputError(f"missing index array{'s' if len(missing_index) > 1 else ''} "
                         f"{', '.join(missing_index)} (the program needs "
                         f"{', '.join(order)})")
    numeric = {n: v for n, v in arrays.items() if n not in index_arrays}
    bound = bind_inputs(numeric, accepts - index_arrays, needed - index_arrays,
                        tuple(n for n in order if n not in index_arrays), computed)
    like = next(iter(bound.values()), None)
    for name in arrays.keys() & index_arrays:
        bound[name] = _index_array(name, arrays[name], like)
    return {name: bound[name] for name in arrays}


def _check_names(arrays: dict[str, Any], accepts: Set[str], order: tuple[str, ...],
                 computed: Collection[str]) -> None:
    """Every array given is an input of the program, and every input it needs is given."""
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


def _sort_input(name: str, value: Any, env: dict[str, Any], numbers: dict[str, Any],
                foreign: dict[str, Any]) -> None:
    """One input, checked to be real numbers, into ``env`` (a NumPy array), ``numbers``
    (a Python number, a NumPy scalar or a list) or ``foreign`` (another library's)."""
    if isinstance(value, (complex, np.complexfloating)):
        raise InputError(f"input {name} is complex: {COMPLEX}")
    if isinstance(value, int) and not isinstance(value, bool):
        _fits_float64(name, value)
        numbers[name] = value
        return
    if isinstance(value, float):
        numbers[name] = value
        return
    if hasattr(value, "shape") and hasattr(value, "dtype") \
            and not isinstance(value, (np.ndarray, np.generic)):
        foreign[name] = value
        return
    try:
        array = as_array(value)
    except (ValueError, TypeError) as err:
        raise InputError(f"input {name} is not an array of numbers: {err}") from None
    if array.dtype == object:
        array = _object_numbers(name, value, array)
    if array.dtype.kind == "c":
        raise InputError(f"input {name} has dtype {array.dtype}: {COMPLEX}")
    if array.dtype.kind != "f":
        raise InputError(f"input {name} has dtype {array.dtype}; give numbers")
    if isinstance(value, np.ndarray):
        env[name] = array
    else:
        numbers[name] = array


def _one_float_type(values: Collection[Any]) -> bool:
    """Arrays of one library other than NumPy (one Python type), all of one real floating
    dtype: torch's ``is_floating_point``, or NumPy's kind "f" (JAX, CuPy, Dask)."""
    first = next(iter(values), None)
    if first is None or isinstance(first, np.ndarray) or not hasattr(first, "shape"):
        return False
    dtype = getattr(first, "dtype", None)
    if not (getattr(dtype, "is_floating_point", False) or getattr(dtype, "kind", "") == "f"):
        return False
    kind = type(first)
    return all(type(v) is kind and v.dtype == dtype for v in values)


def _fits_float64(name: str, value: int) -> None:
    try:
        float(value)
    except OverflowError:
        raise InputError(
            f"input {name} holds an integer too large for a float64 (|x| > 1.8e308)"
        ) from None


def _object_numbers(name: str, value: Any, array: np.ndarray) -> np.ndarray:
    """Values NumPy could only store as objects: Python ints beyond int64 are numbers
    (as float64, if they fit); anything else (None, strings, ...) is not."""
    items = list(array.flat)
    if any(isinstance(v, (complex, np.complexfloating)) for v in items):
        raise InputError(f"input {name} holds complex numbers: {COMPLEX}")
    if not all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
        return array
    for v in items:
        if isinstance(v, int):
            _fits_float64(name, v)
    return array.astype(np.float64)


def _bind_foreign(arrays: dict[str, Any], env: dict[str, Any], numbers: dict[str, Any],
                  foreign: dict[str, Any]) -> dict[str, Any]:
    """Arrays of one foreign library (torch, JAX, ...) made one float type by the
    library's own promotion: float32 beside float64 is float64; integer and bool arrays,
    Python numbers, lists and NumPy arrays take that type, in that library, on the device
    of the first float array."""
    try:
        xp = namespace(*foreign.values())
    except TypeError as err:  # two libraries at once, or an array no library claims
        raise InputError(f"input{'s' if len(foreign) > 1 else ''} {', '.join(foreign)}: "
                         f"not arrays of one library tensorcalc can use ({err})") from None
    kinds = {name: _kind(xp, a.dtype) for name, a in foreign.items()}
    for name, kind in kinds.items():
        if kind == "c":
            raise InputError(f"input {name} has dtype {foreign[name].dtype}: {COMPLEX}")
        if kind not in "fbi":
            raise InputError(f"input {name} has dtype {foreign[name].dtype}; give numbers")
    floats = [a for name, a in foreign.items() if kinds[name] == "f"]
    first = floats[0] if floats else next(iter(foreign.values()))
    where = on_device(first)
    dtype = xp.result_type(*(a.dtype for a in floats)) if floats else \
        xp.asarray(0.0, **where).dtype
    bound = {name: a if a.dtype == dtype else xp.astype(a, dtype)
             for name, a in foreign.items()}
    for name, value in {**env, **numbers}.items():  # env holds the NumPy arrays
        bound[name] = xp.asarray(value, dtype=dtype, **where)
    return {name: bound[name] for name in arrays}


def _kind(xp: Any, dtype: Any) -> str:
    """NumPy's kind letter ("f", "c", "b", "i") for a dtype of any array-API library."""
    for kind, name in (("f", "real floating"), ("c", "complex floating"), ("b", "bool"),
                       ("i", "integral")):
        if xp.isdtype(dtype, name):
            return kind
    return "?"

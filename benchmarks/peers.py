"""The peers, jax and torch: optional, imported lazily, configured once.

Workload modules never import jax or torch at module level: their peer builders call
:func:`jax` or :func:`torch` here, which import the library on first use (jax with
``jax_enable_x64``, torch with ``--threads`` applied) and raise :class:`Unavailable`
when it is not installed. The harness asks :func:`available` first and shows ``n/a``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks import threads

NAMES = ("jax", "torch")

_loaded: dict[str, Any] = {}


class Unavailable(RuntimeError):
    """The peer library is not installed (or failed to import)."""


def _load_jax() -> Any:
    jax = importlib.import_module("jax")
    importlib.import_module("jax.numpy")
    jax.config.update("jax_enable_x64", True)
    return jax


def _load_torch() -> Any:
    torch = importlib.import_module("torch")
    importlib.import_module("torch.func")
    if threads.THREADS is not None:
        torch.set_num_threads(int(threads.THREADS))
    return torch


_LOADERS: dict[str, Callable[[], Any]] = {"jax": _load_jax, "torch": _load_torch}


def load(name: str) -> Any | None:
    """The module ``name`` ("jax" or "torch"), configured; None when not installed."""
    if name not in _loaded:
        try:
            _loaded[name] = _LOADERS[name]()
        except Exception:  # noqa: BLE001 - any failure to import means "not available"
            _loaded[name] = None
    return _loaded[name]


def available(name: str) -> bool:
    return load(name) is not None


def jax() -> Any:
    """The jax module with x64 enabled; :class:`Unavailable` when not installed."""
    module = load("jax")
    if module is None:
        raise Unavailable("jax is not installed")
    return module


def torch() -> Any:
    """The torch module (``torch.func`` imported); :class:`Unavailable` when not installed."""
    module = load("torch")
    if module is None:
        raise Unavailable("torch is not installed")
    return module


def to_jax(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The arrays on jax's default device (float64)."""
    jnp = jax().numpy
    return {k: jnp.asarray(v) for k, v in arrays.items()}


def to_torch(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The arrays as torch tensors sharing NumPy's memory (float64)."""
    th = torch()
    return {k: th.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}

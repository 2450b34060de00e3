"""What each array library can do: one ``ArrayLibrary`` per library, asked by the back end
when it binds a plan, instead of tests on module names spread through it.

The library is recognised here, once, from the array namespace (``arrays.namespace``);
everything after asks the object: whether a read through index arithmetic can be a
strided view of the array's memory, how a scatter-add runs, whether a sum may add into
its own total in place, which convolution and linear-algebra routines there are.

>>> import numpy as np
>>> numpy = library(np)
>>> numpy.name, numpy.strided_views, numpy.scatter, numpy.writes_in_place, numpy.devices
('NumPy', True, 'segments', True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..ops import kernels, special
from . import windows

Array = Any


@dataclass(frozen=True)
class ArrayLibrary:
    """One array library's abilities, as the back end needs them."""

    name: str  # as messages name it: NumPy, torch, JAX, Dask, CuPy, or the module's name
    xp: Any  # the array namespace
    # a read through affine subscripts as a view of the array's memory (its strides)
    strided_view: Callable[..., Array] | None = None
    # how a scatter-add runs (windows.scatter_add): segments, index_add, at, cupyx; or None
    scatter: str | None = None
    # may a fresh total be added into in place (not on torch: under vmap a batched term
    # cannot be added into an unbatched total)
    writes_in_place: bool = True
    immutable: bool = False  # arrays are never written into (JAX: ``.at[].set``)
    convolution: str | None = None  # whose own convolution runs a window times a kernel
    convolution_axes: int = 0  # the most spatial axes that convolution takes
    # Dask: chunked arrays, with their own einsum, no gathers or scatter-adds, and LAPACK
    # routines that want one chunk along a matrix's axes
    chunked: bool = False
    # a product worth laying out as one matmul first: not on JAX (XLA lays out its own
    # dot_general) nor on Dask (its own chunked einsum)
    matmul_layout: bool = True
    # JAX: a contraction as one jitted function; its einsum names any number of indices
    jit_contractions: bool = False
    max_axes: int | None = None  # the most axes an array may have
    devices: bool = True  # arrays live on devices (a GPU), where new arrays must go too
    # a recurrence's steps as one traced step (JAX's lax.scan), not one per position
    scans: bool = False

    @property
    def strided_views(self) -> bool:
        return self.strided_view is not None

    @property
    def index_arithmetic(self) -> bool:
        """Gathers and scatter-adds (docs/index-arithmetic.md) exist for its arrays."""
        return not self.chunked

    def scan(self, body: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any,
             length: int) -> tuple[Any, Any]:
        """``body`` run along ``xs`` carrying ``carry`` (where ``scans``: JAX)."""
        raise NotImplementedError(f"{self.name} has no scan")

    def has_linalg(self, routine: str) -> bool:
        """Does the library have ``linalg.<routine>`` (Dask has no ``det`` or ``slogdet``)?"""
        return hasattr(getattr(self.xp, "linalg", None), routine)

    def pad(self, array: Array, pads: list[tuple[int, int]]) -> Array:
        """``array`` with ``pads[d] = (before, after)`` zeros on each axis ``d`` (NumPy's
        ``np.pad`` rule): here zeros with the array written into them."""
        shape = tuple(array.shape)
        device = getattr(array, "device", None)
        out = self.xp.zeros(tuple(n + lo + hi for n, (lo, hi) in zip(shape, pads)),
                            dtype=array.dtype, **({} if device is None else {"device": device}))
        window = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, shape))
        if self.immutable:
            return out.at[window].set(array)
        out[window] = array
        return out

    def device_of(self, array: Array) -> dict[str, Any]:
        """Keyword arguments that put a new array beside ``array`` (a GPU tensor's device)."""
        if not self.devices:
            return {}
        import array_api_compat  # lazy: only for arrays that are not NumPy's

        return {"device": array_api_compat.device(array)}

    def as_index(self, array: Array) -> Array:
        """An integer array as the library indexes with."""
        return array

    def array_functions(self) -> tuple[Callable[..., Array], Callable[..., Array],
                                       Callable[..., Array]]:
        """``permute_dims``, ``reshape`` and ``matmul`` of the namespace."""
        return self.xp.permute_dims, self.xp.reshape, self.xp.matmul

    def routine(self, kernel: Callable[..., Array]) -> Callable[[Array], Array] | None:
        """The library's own routine for an elementwise function's ``kernel`` (the
        registry's), where it has one at least as accurate; None: the kernel runs on
        ``xp``."""
        return self.routines().get(kernel) if isinstance(kernel, Hashable) else None

    def routines(self) -> dict[Any, Callable[[Array], Array]]:
        return {}


@dataclass(frozen=True)
class _NumPy(ArrayLibrary):
    pad = staticmethod(np.pad)  # type: ignore[assignment]  # itself: no call between

    def array_functions(self) -> tuple[Callable[..., Array], Callable[..., Array],
                                       Callable[..., Array]]:
        return np.transpose, np.reshape, np.matmul


@dataclass(frozen=True)
class _Torch(ArrayLibrary):
    def pad(self, array: Array, pads: list[tuple[int, int]]) -> Array:
        """Never a write into an array that torch's ``vmap`` or autograd could see:
        ``F.pad`` is functional (vmap and autograd follow it); it takes the last axis
        first."""
        import torch

        return torch.nn.functional.pad(array, [n for lo_hi in reversed(pads) for n in lo_hi])

    def as_index(self, array: Array) -> Array:
        """torch reads uint8 as a mask, and indexes with no integers but int64 and int32."""
        if str(array.dtype) not in ("torch.int64", "torch.int32"):
            return array.long()
        return array

    def array_functions(self) -> tuple[Callable[..., Array], Callable[..., Array],
                                       Callable[..., Array]]:
        """torch's own: array-api-compat's torch wrappers check dtypes on every call, a
        fifth of a small training step's time outside BLAS."""
        import torch

        return torch.permute, torch.reshape, torch.matmul

    def routines(self) -> dict[Any, Callable[[Array], Array]]:
        return _torch_routines()


@dataclass(frozen=True)
class _Jax(ArrayLibrary):
    def routines(self) -> dict[Any, Callable[[Array], Array]]:
        return _jax_routines()

    def scan(self, body: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any,
             length: int) -> tuple[Any, Any]:
        """``jax.lax.scan``: under ``jax.jit`` one step is traced, not one per position."""
        import jax

        return jax.lax.scan(body, carry, xs, length=length)


@cache
def _jax_routines() -> dict[Any, Callable[[Array], Array]]:
    """JAX's own erf (within 2 ulp; its erfc, lgamma and digamma are not: 5e-9, 7e-13 and
    2e-13 relative in float64, where the kernels are within 1e-15), and log1p by Kahan's
    formula, log(u) x / (u - 1) with u = 1 + x, within 2 ulp, as JAX's own log1p is 120 ulp
    off in float64 for x in [-0.5, -0.1] (jax 0.10, CPU)."""
    import jax.numpy as jnp
    import jax.scipy.special

    def log1p(x: Array) -> Array:
        u = 1.0 + x
        d = u - 1.0
        kahan = jnp.log(u) * (x / jnp.where(d == 0, jnp.ones_like(d), d))
        return jnp.where(d == 0, x, jnp.where(jnp.isinf(u), u, kahan))

    return {kernels.Native("log1p"): log1p, special.ERF: jax.scipy.special.erf}


@cache
def _torch_routines() -> dict[Any, Callable[[Array], Array]]:
    """torch's own erf, erfc and lgamma (within 2 ulp; its digamma and trigamma are 5e-14
    and 5e-10 relative off in float64), and gelu from its erfc and erfcx (below)."""
    import torch

    erfc, erfcx = torch.special.erfc, torch.special.erfcx

    def gelu(x: Array) -> Array:
        # x Φ(x), Φ(x) = erfc(a) / 2 with a = -x/√2: relatively accurate for x < 0, where
        # torch's own gelu, x (1 + erf(x/√2)) / 2, cancels to 0 from x = -8 on. There
        # erfc(a) = erfcx(a) e^(-x²/2), the square split as in ops/special.py's kernel: a
        # rounded a² would cost 2e-14 at x = -12.
        m = torch.clamp(x.abs(), max=60.0)
        h = torch.floor(m * 16.0) / 16.0
        gauss = torch.exp(-0.5 * (h * h)) * torch.exp(-0.5 * ((m - h) * (m + h)))
        a = m * 0.7071067811865476
        phi = torch.where(x < 0, 0.5 * erfcx(a) * gauss, 1.0 - 0.5 * erfc(a))
        return torch.where(phi > 0, x, torch.zeros_like(x)) * phi  # -inf * 0 would be nan

    return {special.ERF: torch.special.erf, special.ERFC: erfc,
            special.LGAMMA: torch.special.gammaln, special.GELU: gelu}


def _torch_strided_view(array: Array, start: int, grid: tuple[int, ...],
                        steps: tuple[int, ...], xp: Any) -> Array:
    """``windows.strided_view`` on torch, whose strides count elements and are never
    negative: an axis read backwards (``p-k``) is read forwards from its far end, then
    flipped (a copy of the window, which its product makes anyway). A view, as on NumPy:
    autograd and vmap follow it."""
    import torch

    backwards = tuple(g for g, step in enumerate(steps) if step < 0)
    first = start + sum(steps[g] * (grid[g] - 1) for g in backwards)
    base = array.contiguous().reshape(-1)
    # as_strided counts from the storage's start: a slice's own offset first
    view = torch.as_strided(base, grid, tuple(abs(s) for s in steps),
                            first + base.storage_offset())
    return torch.flip(view, backwards) if backwards else view


def _recognise(module: str, xp: Any) -> ArrayLibrary:
    if xp is np:
        return _NumPy("NumPy", xp, strided_view=windows.strided_view, scatter="segments",
                      max_axes=64, devices=False)
    if module == "array_api_compat.torch":
        return _Torch("torch", xp, strided_view=_torch_strided_view, scatter="index_add",
                      writes_in_place=False, convolution="torch", convolution_axes=3)
    if module.startswith("jax"):
        return _Jax("JAX", xp, scatter="at", immutable=True, convolution="jax",
                    convolution_axes=8, matmul_layout=False, jit_contractions=True, scans=True)
    if "dask" in module:
        return ArrayLibrary("Dask", xp, chunked=True, matmul_layout=False)
    if "cupy" in module:
        return ArrayLibrary("CuPy", xp, scatter="cupyx")
    return ArrayLibrary(module.split(".")[-1] or "these arrays", xp)


_KNOWN: dict[int, ArrayLibrary] = {}  # by the namespace's id: namespaces live for good


def library(xp: Any) -> ArrayLibrary:
    """The ``ArrayLibrary`` of the array namespace ``xp`` (one object per namespace)."""
    found = _KNOWN.get(id(xp))
    if found is None or found.xp is not xp:
        found = _KNOWN[id(xp)] = _recognise(getattr(xp, "__name__", ""), xp)
    return found

"""What each array library's ``ArrayLibrary`` reports, and that the back end acts on it."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc.backend.arrays import namespace
from tensorcalc.backend.libraries import ArrayLibrary, library

RNG = np.random.default_rng(7)


def _library_of(name: str) -> ArrayLibrary:
    if name == "numpy":
        return library(np)
    mod = pytest.importorskip("dask.array" if name == "dask" else name)
    if name == "torch":
        return library(namespace(mod.zeros(2)))
    if name == "jax":
        return library(namespace(mod.numpy.zeros(2)))
    return library(namespace(mod.zeros(2)))  # dask


# (name, strided views, scatter-add, in-place sums, immutable, convolution, chunked,
#  matmul layout, jitted contractions, det, slogdet)
EXPECTED = [
    ("numpy", "NumPy", True, "segments", True, False, None, False, True, False, True, True),
    ("torch", "torch", True, "index_add", False, False, "torch", False, True, False, True, True),
    ("jax", "JAX", False, "at", True, True, "jax", False, False, True, True, True),
    ("dask", "Dask", False, None, True, False, None, True, False, False, False, False),
]


@pytest.mark.parametrize("row", EXPECTED, ids=[r[0] for r in EXPECTED])
def test_each_library_reports_what_it_can_do(row: tuple) -> None:  # type: ignore[type-arg]
    (module, name, strided, scatter, in_place, immutable, convolution, chunked, layout,
     jitted, det, slogdet) = row
    lib = _library_of(module)
    assert lib.name == name
    assert lib.strided_views is strided
    assert lib.scatter == scatter
    assert lib.writes_in_place is in_place
    assert lib.immutable is immutable
    assert lib.convolution == convolution
    assert lib.chunked is chunked and lib.index_arithmetic is not chunked
    assert lib.matmul_layout is layout
    assert lib.jit_contractions is jitted
    assert lib.has_linalg("det") is det and lib.has_linalg("slogdet") is slogdet
    assert lib.has_linalg("solve")
    assert library(lib.xp) is lib  # one object per library
    assert lib.devices is (module not in ("numpy",))


@pytest.mark.parametrize("module", ["numpy", "torch", "jax"])
def test_new_arrays_go_to_the_device_of_the_inputs(module: str) -> None:
    lib = _library_of(module)
    x = lib.xp.asarray(np.ones(3, dtype=np.float32))
    where = lib.device_of(x)
    assert where == ({} if module == "numpy" else {"device": x.device})
    assert lib.xp.zeros(2, **where).device == x.device


def test_an_unknown_namespace_claims_nothing() -> None:
    import types

    lib = library(types.SimpleNamespace(__name__="array_api_strict"))
    assert lib.name == "array_api_strict"
    assert not lib.strided_views and lib.scatter is None and lib.convolution is None


@pytest.mark.parametrize("module", ["numpy", "torch", "jax"])
def test_pad_puts_zeros_around_as_numpy_does(module: str) -> None:
    lib = _library_of(module)
    x = RNG.standard_normal((2, 3)).astype(np.float32)  # JAX's default float
    padded = lib.pad(lib.xp.asarray(x), [(1, 0), (2, 1)])
    np.testing.assert_array_equal(np.asarray(padded), np.pad(x, [(1, 0), (2, 1)]))


@pytest.mark.parametrize("module", ["numpy", "torch"])
def test_strided_view_reads_forwards_and_backwards(module: str) -> None:
    """x[i - k + 2] for i < 3, k < 3: one axis read backwards (torch flips it)."""
    lib = _library_of(module)
    x = np.arange(5.0)
    assert lib.strided_view is not None
    view = lib.strided_view(lib.xp.asarray(x), 2, (3, 3), (1, -1), lib.xp)
    np.testing.assert_array_equal(np.asarray(view),
                                  [[x[i - k + 2] for k in range(3)] for i in range(3)])


def test_the_library_that_lacks_a_routine_is_refused_by_name() -> None:
    da = pytest.importorskip("dask.array")
    with pytest.raises(tc.InputError, match="linalg.slogdet, which Dask arrays do not have"):
        tc.evaluate("L = logdet[i,j](A[i,j])", A=da.from_array(np.eye(3) * 2))
    with pytest.raises(tc.InputError, match="not available for Dask arrays"):
        tc.evaluate("y[i] = x[i+k] w[k]", x=da.from_array(np.arange(5.0)),
                    w=da.from_array(np.ones(2)))

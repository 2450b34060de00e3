"""A derivative on a dask.distributed cluster, on data larger than a worker's memory.

A LocalCluster of two worker processes (one thread each, 300 MB memory limit each)
computes the gradient of least squares, ``L = (X[n,d] w[d] - y[n])^2`` w.r.t. ``w``, on
an X of 640 MB: more than one worker's limit, and more than the two limits together.
X and y are made chunk by chunk on the workers from a seed per chunk, so they never
exist whole anywhere; the expected ``2 Xᵀ(X w - y)`` is accumulated in NumPy in the test
process from the same seeds, one chunk at a time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
da = pytest.importorskip("dask.array")

import tensorcalc as tc  # noqa: E402

SEED = 20240611
ROWS, D, CHUNK = 800_000, 100, 25_000  # X: 800_000 x 100 float64 = 640 MB, 32 chunks of 20 MB
WORKER_LIMIT = 300_000_000  # bytes: memory_limit="300MB"


def block(seed: int, i: int, rows: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``i`` of X (rows x d) and of y (rows,), from its own seed."""
    rng = np.random.default_rng([seed, i])
    return rng.standard_normal((rows, d)), rng.standard_normal(rows)


def chunked(rows_total: int, d: int, chunk: int) -> tuple[da.Array, da.Array]:
    """X and y as lazy dask arrays whose chunk ``i`` is ``block(SEED, i, ...)``.

    The chunk functions are nested, so that cloudpickle ships them to the workers by
    value (the workers need not import this test module).
    """
    nblocks = rows_total // chunk

    def x_block(block_id: tuple[int, ...] = (0,)) -> np.ndarray:
        return block(SEED, block_id[0], chunk, d)[0]

    def y_block(block_id: tuple[int, ...] = (0,)) -> np.ndarray:
        return block(SEED, block_id[0], chunk, d)[1]

    X = da.map_blocks(x_block, dtype=np.float64, chunks=((chunk,) * nblocks, (d,)),
                      meta=np.empty((0, 0)))
    y = da.map_blocks(y_block, dtype=np.float64, chunks=((chunk,) * nblocks,),
                      meta=np.empty((0,)))
    return X, y


def expected_gradient(rows_total: int, d: int, chunk: int, w: np.ndarray) -> np.ndarray:
    """``2 Xᵀ(X w - y)`` streamed over the chunks in NumPy: one 20 MB chunk at a time."""
    total = np.zeros(d)
    for i in range(rows_total // chunk):
        Xi, yi = block(SEED, i, chunk, d)
        total += 2 * Xi.T @ (Xi @ w - yi)
    return total


def test_least_squares_gradient_on_a_local_cluster_larger_than_a_worker() -> None:
    start = time.perf_counter()
    X, y = chunked(ROWS, D, CHUNK)
    assert X.nbytes > 2 * WORKER_LIMIT  # more than both workers' limits together
    assert X.chunksize[0] * X.chunksize[1] * 8 <= 25_000_000
    w = np.random.default_rng(SEED + 1).standard_normal(D) / np.sqrt(D)

    grad = tc.grad("L = (X[n,d] w[d] - y[n])^2", "w")  # built once, no arrays
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit="300MB", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(info["memory_limit"] == WORKER_LIMIT for info in workers.values())
        lazy = grad(X=X, w=da.from_array(w), y=y)
        assert isinstance(lazy, da.Array) and lazy.shape == (D,)
        with distributed.get_task_stream(client) as stream:
            got = client.compute(lazy).result()
            # The same with w as a NumPy array beside the dask arrays, via .compute().
            got_numpy_w = grad(X=X, w=w, y=y).compute()
        # Both workers took part, and neither was restarted (a worker past 95% of its
        # limit is killed by its nanny and comes back under a new address).
        assert {task["worker"] for task in stream.data} == set(workers)
        assert set(client.scheduler_info()["workers"]) == set(workers)
    assert isinstance(got, np.ndarray) and got.shape == (D,)

    want = expected_gradient(ROWS, D, CHUNK, w)
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(got_numpy_w, want, rtol=1e-9, atol=1e-9 * scale)
    print(f"distributed gradient on X of {X.nbytes / 1e6:.0f} MB: "
          f"{time.perf_counter() - start:.1f} s")

"""A least-squares gradient computed on a dask.distributed cluster, chunk by chunk.

A derivative called with chunked Dask arrays is a lazy Dask graph, which the cluster's
workers run. Two local worker processes here; Client("tcp://scheduler:8786") connects to
a cluster that is already running. The result is checked against 2 Xᵀ(X w − y).

Run: python examples/dask_cluster.py [ROWS]   (default 100 000 rows: X is 80 MB)
"""

import sys

import numpy as np

import tensorcalc as tc

try:
    import dask.array as da
    from dask.distributed import Client, LocalCluster
except ImportError:
    da = None

if __name__ == "__main__":  # a script needs this guard: the workers are new processes
    if da is None:
        print("dask.distributed is not installed: pip install '.[dask]'")
        sys.exit(0)
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="300MB",
                           dashboard_address=None)
    client = Client(cluster)

    # chunked inputs: da.random, da.from_array(...), da.from_zarr(...), ...
    X = da.random.default_rng(0).standard_normal((rows, 100), chunks=(25_000, 100))
    y = da.random.default_rng(1).standard_normal(rows, chunks=25_000)
    w = np.linspace(-1, 1, 100)  # small: a NumPy array beside Dask arrays joins them

    grad = tc.grad("L = (X[n,d] w[d] - y[n])^2", "w")  # built once, no arrays
    g = grad(X=X, w=w, y=y)  # a lazy Dask array: nothing is computed yet
    g = g.compute()          # runs on the cluster; or client.compute(g).result()

    expected = (2 * X.T @ (X @ w - y)).compute()
    assert np.allclose(g, expected, rtol=1e-9), np.abs(g - expected).max()
    print(f"gradient of shape {g.shape} from {rows} rows in {X.numblocks[0]} chunks on "
          f"{len(client.scheduler_info()['workers'])} workers; it agrees with 2 Xᵀ(X w − y)")
    client.close()
    cluster.close()

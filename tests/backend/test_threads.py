"""Programs, derivatives and plans shared between threads: compiling
and deriving without deadlock, one program run with many signatures, and derivatives and
compact values used from several threads at once.

Each test runs 8 threads with a tiny switch interval, so that threads interleave inside
every Python-level step, and joins them with a timeout: a deadlock fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import tensorcalc as tc

THREADS = 8
TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def target(k: int) -> None:
        try:
            work(k)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=target, args=(k,), daemon=True) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    alive = [t for t in threads if t.is_alive()]
    assert not alive, f"{len(alive)} of {THREADS} threads still running after {TIMEOUT} s"
    if errors:
        raise errors[0]


def test_compile_and_grad_from_eight_threads_do_not_deadlock() -> None:
    p = tc.compile("H[b,h] = tanh(X[b,d] W[d,h])\nL = H[b,h] H[b,h]")
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        out = results.setdefault(k, [])
        for _ in range(20):
            if k % 2:
                y = tc.compile("y[i] = W[i,j] x[j]")(W=np.eye(2), x=np.array([1.0, 2.0]))
                np.testing.assert_allclose(y, [1.0, 2.0])
            else:
                out.append(tc.grad(p, "X")(X=X, W=W))

    run_threads(work)
    H = np.tanh(X @ W)
    expected = (2 * H * (1 - H**2)) @ W.T
    for values in results.values():
        for g in values:
            np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_one_program_many_signatures_from_eight_threads() -> None:
    """More input signatures than the cache keeps (32): eviction races with insertion."""
    p = tc.compile("y[i] = W[i,j] x[j]")

    def work(k: int) -> None:
        for n in range(1, 41):
            m = (n + k) % 40 + 1
            W = np.ones((m, n))
            x = np.arange(n, dtype=float)
            np.testing.assert_allclose(p(W=W, x=x), np.full(m, x.sum()))

    run_threads(work)


def test_derivatives_and_compact_values_shared_between_threads() -> None:
    d = tc.derive("y[i] = sigmoid(W[i,j] x[j])", "W")
    rng = np.random.default_rng(1)
    W, x = rng.normal(size=(3, 4)), rng.normal(size=4)
    s = 1 / (1 + np.exp(-(W @ x)))
    dense = np.einsum("ip,q->ipq", np.diag(s * (1 - s)), x)

    def work(k: int) -> None:
        for _ in range(20):
            if k % 2:
                np.testing.assert_allclose(d(W=W, x=x), dense, rtol=1e-12)
            else:
                np.testing.assert_allclose(d.evaluate(compact=True, W=W, x=x).toarray(), dense,
                                           rtol=1e-12)

    run_threads(work)

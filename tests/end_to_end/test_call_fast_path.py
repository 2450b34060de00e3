"""A call with the same NumPy arrays' names, shapes and float types as the last one runs
that call's bound plan at once (program.py, ``Program.__call__``): the same numbers, and
every other call takes the checked route, with its errors and conversions."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc import program as program_module
from tensorcalc.errors import InputError

RNG = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def no_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own hook (conftest re-runs printed derivatives) sends every call the
    checked way; here calls go as they go for a user."""
    monkeypatch.setattr(program_module, "AFTER_EVALUATION", [])


def test_a_repeated_call_takes_the_fast_path_and_agrees(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    g = tc.grad("s = (W[i,j] x[j])^2", "W")
    W, x = RNG.standard_normal((3, 3)), RNG.standard_normal(3)
    first = g(W=W, x=x)
    assert g._last_call is not None
    checked = []
    monkeypatch.setattr(g, "_call", lambda arrays: checked.append(1))
    again = g(W=W, x=x)
    assert checked == []  # not the checked route
    np.testing.assert_array_equal(again, first)
    np.testing.assert_allclose(again, 2 * np.outer(W @ x, x), rtol=1e-14)


def test_another_shape_type_or_name_takes_the_checked_route() -> None:
    g = tc.grad("s = (W[i,j] x[j])^2", "W")
    g(W=RNG.standard_normal((3, 3)), x=RNG.standard_normal(3))
    W, x = RNG.standard_normal((4, 2)), RNG.standard_normal(2)
    np.testing.assert_allclose(g(W=W, x=x), 2 * np.outer(W @ x, x), rtol=1e-14)
    Wi, xi = RNG.integers(-3, 3, (4, 2)), RNG.integers(-3, 3, 2)  # integers: made floats
    np.testing.assert_allclose(g(W=Wi, x=xi), 2 * np.outer(Wi @ xi, xi), rtol=1e-14)
    W32, x32 = W.astype(np.float32), x.astype(np.float32)
    assert g(W=W32, x=x32).dtype == np.float32
    with pytest.raises(InputError, match="x"):
        g(W=W)
    with pytest.raises(InputError, match="z"):
        g(W=W, x=x, z=x)
    with pytest.raises(InputError):
        g(W=W, x=RNG.standard_normal(5))  # a size that disagrees, after a fast call
    np.testing.assert_allclose(g(W=W, x=x), 2 * np.outer(W @ x, x), rtol=1e-14)


def test_the_result_never_aliases_an_input_on_the_fast_path() -> None:
    p = tc.compile("Y[i,j] = X[i,j]")
    X = RNG.standard_normal((2, 3))
    for _ in range(3):
        Y = p(X=X)
        assert Y is not X and not np.shares_memory(Y, X)
        Y[0, 0] = 99.0
    assert X[0, 0] != 99.0


def test_threads_share_the_fast_path() -> None:
    g = tc.grad("s = (W[i,j] x[j])^2", "W")
    arrays = [(RNG.standard_normal((3, 3)), RNG.standard_normal(3)) for _ in range(8)]
    wrong: list[int] = []

    def work(k: int) -> None:
        W, x = arrays[k]
        for _ in range(200):
            if not np.allclose(g(W=W, x=x), 2 * np.outer(W @ x, x), rtol=1e-13):
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []

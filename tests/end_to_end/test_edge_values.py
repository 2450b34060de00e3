"""Edge values every array library gives alike: a NaN beside a regular matrix, empty
batches of matrices, products of more indices than einsum can name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tensorcalc as tc


def _libraries() -> list[Any]:
    out: list[Any] = [np]
    for name in ("torch", "jax.numpy"):
        try:
            out.append(__import__(name, fromlist=["_"]))
        except ImportError:
            pass
    return out


LIBRARIES = _libraries()


def _numpy(value: Any) -> np.ndarray:
    return np.asarray(value.detach() if hasattr(value, "detach") else value)


@pytest.mark.parametrize("xp", LIBRARIES, ids=lambda xp: xp.__name__)
def test_nan_in_the_right_hand_side_is_not_a_singular_matrix(xp: Any) -> None:
    r, s = xp.asarray(np.array([np.nan, 1.0])), xp.asarray(2 * np.eye(2))
    assert np.isnan(_numpy(tc.evaluate("q = r[i] inv[i,j](S[i,j]) r[j]", r=r, S=s)))
    # a singular matrix is still named as one
    with pytest.raises(tc.InputError, match="singular"):
        tc.evaluate("q = r[i] inv[i,j](S[i,j]) r[j]", r=xp.asarray(np.ones(2)),
                    S=xp.asarray(np.zeros((2, 2))))


@pytest.mark.parametrize("xp", LIBRARIES, ids=lambda xp: xp.__name__)
@pytest.mark.parametrize("src, shape", [
    ("y[b,i] = inv[i,j](N[b,i,j]) v[j]", (0, 2)),
    ("y[b,i,j] = inv[i,j](N[b,i,j])", (0, 2, 2)),
    ("y[b] = logdet[i,j](N[b,i,j]) + det[i,j](N[b,i,j])", (0,)),
])
def test_an_empty_batch_of_matrices_gives_an_empty_result(xp: Any, src: str,
                                                           shape: tuple[int, ...]) -> None:
    arrays = {"N": xp.asarray(np.zeros((0, 2, 2)))}
    if src.endswith("v[j]"):
        arrays["v"] = xp.asarray(np.ones(2))
    assert tuple(tc.evaluate(src, **arrays).shape) == shape


def test_an_empty_batch_on_the_command_line(tmp_path: Any) -> None:
    from tensorcalc.tools.cli import main

    np.save(tmp_path / "N.npy", np.zeros((0, 2, 2)))
    np.save(tmp_path / "v.npy", np.ones(2))
    out = tmp_path / "y.npy"
    assert main(["eval", "y[b,i] = inv[i,j](N[b,i,j]) v[j]", "-i", f"N={tmp_path / 'N.npy'}",
                 "-i", f"v={tmp_path / 'v.npy'}", "-o", str(out)]) == 0
    assert np.load(out).shape == (0, 2)


def _sixty(n: int) -> str:
    a = ",".join(f"i{k}" for k in range(n))
    b = ",".join(f"j{k}" for k in range(n))
    return f"s = A[{a}] B[{b}]"


@pytest.mark.parametrize("xp", LIBRARIES, ids=lambda xp: xp.__name__)
def test_a_product_of_more_indices_than_einsum_names(xp: Any) -> None:
    ones = xp.asarray(np.ones((1,) * 30))
    if "jax" in xp.__name__:  # JAX's einsum takes any symbols: it runs
        assert float(tc.evaluate(_sixty(30), A=ones, B=2 * ones)) == 2
        return
    with pytest.raises(tc.ProgramError, match="more than 52 indices at once"):
        tc.evaluate(_sixty(30), A=ones, B=2 * ones)
    twenty = xp.asarray(np.ones((1,) * 20))
    assert float(tc.evaluate(_sixty(20), A=twenty, B=2 * twenty)) == 2

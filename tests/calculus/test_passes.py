"""A derivative goes through ``derivatives.PASSES`` in order, and every program a
derivative function returns is given to each function in ``derivatives.AFTER_DERIVATION``."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcalc as tc
from tensorcalc import derivatives
from tensorcalc.tools.check import finite_differences

MLP = "H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; L = (P[b,o] - T[b,o])^2"


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    shapes = {"X": (2, 3), "W": (3, 4), "c": (4,), "V": (4, 2), "T": (2, 2)}
    return {n: rng.normal(size=s) for n, s in shapes.items()}


def test_every_derivative_function_hands_its_program_to_the_hooks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tc.Program] = []
    monkeypatch.setattr(derivatives, "AFTER_DERIVATION",
                        [*derivatives.AFTER_DERIVATION, seen.append])
    returned = [tc.derive(MLP, "W"), tc.grad(MLP, "c"), tc.hessian(MLP, "c"),
                tc.vjp("P[b,o] = X[b,d] W[d,o]", "W"), tc.jvp(MLP, "V", tangent="U")]
    assert all(any(p is r for p in seen) for r in returned)
    assert seen[-1] is returned[-1]


def test_the_passes_run_in_order_and_the_derivative_is_right(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def recorded(step: derivatives.Pass) -> derivatives.Pass:
        def run(draft: derivatives.Draft) -> derivatives.Draft:
            ran.append(step.__name__)
            return step(draft)
        return run

    monkeypatch.setattr(derivatives, "PASSES", tuple(recorded(p) for p in derivatives.PASSES))
    arrays = _arrays()
    gradient = tc.grad(MLP, "W")
    assert ran == ["reuse_forward_values", "share_forward_pieces", "hoist_repeated_functions",
                   "share_repeated_products", "keep_given_sizes", "sizes_from_inputs"]
    expected = finite_differences(tc.compile(MLP), "W", arrays)
    np.testing.assert_allclose(gradient(**arrays), expected, rtol=1e-6, atol=1e-8)

"""The recurrence fuzzer (``tests/fuzz_recurrences.py``) in the suite: a few random
recurrences, forward and backward, with and without start lines, against the same
programs unrolled into one statement per step (value, every gradient and its printed
form, a Hessian, a Hessian-vector product)."""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_recurrences import arrays, case, check


@pytest.mark.parametrize("seed", range(4))
def test_a_random_recurrence_agrees_with_its_unrolling(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    assert check(case(rng), arrays(rng)) >= 6

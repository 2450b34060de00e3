"""The recurrence fuzzer (``tests/fuzz_recurrences.py``) in the suite: a few random
recurrences, forward and backward, with and without start lines, against the same
programs unrolled into one statement per step (value, every gradient and its printed
form, a Hessian, a Hessian-vector product)."""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_recurrences import arrays, case, check


# seeds whose programs are: no start line; a start line; a cell and an output recurring
# together through a gate; a backward recurrence
@pytest.mark.parametrize("seed", [1000, 1001, 1003, 1012])
def test_a_random_recurrence_agrees_with_its_unrolling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert check(case(rng), arrays(rng)) >= 6

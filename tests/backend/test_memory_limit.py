"""Setting the memory limit: bad values are input errors that leave the
limit unchanged, good ones are taken, and a bad environment value does not break the import."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

import tensorcalc as tc


@pytest.mark.parametrize("bad", ["abc", None, math.inf, -1, 0, 1.5, float("nan"), True, [1]])
def test_bad_limits_are_input_errors(bad: object) -> None:
    old = tc.set_memory_limit(10**9)
    try:
        with pytest.raises(tc.InputError, match="memory limit"):
            tc.set_memory_limit(bad)  # type: ignore[arg-type]
        assert tc.set_memory_limit(old) == 10**9  # unchanged by the refusal
    finally:
        tc.set_memory_limit(old)


def test_good_limits_are_taken() -> None:
    old = tc.set_memory_limit(2**20)
    try:
        assert tc.set_memory_limit(3.0e6) == 2**20
        assert tc.set_memory_limit("4096") == 3_000_000
    finally:
        tc.set_memory_limit(old)


@pytest.mark.parametrize("value", ["garbage", "-5", "1e999", ""])
def test_a_bad_environment_value_does_not_break_import(value: str) -> None:
    env = dict(os.environ, TENSORCALC_MEMORY_LIMIT=value)
    done = subprocess.run(
        [sys.executable, "-c",
         "import tensorcalc.limits as m; print(m.memory_limit())"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(4 * 2**30)
    assert "TENSORCALC_MEMORY_LIMIT ignored" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_good_environment_value_is_used() -> None:
    env = dict(os.environ, TENSORCALC_MEMORY_LIMIT="123456")
    done = subprocess.run(
        [sys.executable, "-c", "import tensorcalc.limits as m; print(m.memory_limit())"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.stdout.strip() == "123456"

"""Hypothesis profiles: "default" (quick) and "long"; pick one with HYPOTHESIS_PROFILE."""

import os

from hypothesis import settings

settings.register_profile("default", max_examples=25, deadline=None)
settings.register_profile("long", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# Every derivative a test evaluates is also printed, compiled again from that text and run
# on the same arrays: the printed program must give the same numbers (zero derivatives
# included), and compile with no trap of the convention (no warning). Derivatives are
# recognised as the programs derivatives.AFTER_DERIVATION is given.
import re  # noqa: E402
import signal  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from support import PRINTED_CHECKS  # noqa: E402

import tensorcalc.derivatives as derivatives  # noqa: E402
import tensorcalc.program as program  # noqa: E402
from tensorcalc.errors import InputError  # noqa: E402
from tensorcalc.program import Evaluation, Program  # noqa: E402


@pytest.fixture(scope="module")
def jax64() -> Iterator[object]:
    """JAX in float64 for one test module, restored afterwards (other test files may rely
    on the default); skips where JAX is not installed."""
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def runaway_alarm(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail (rather than hang) a test that runs away, after the module's TEST_TIMEOUT_S
    seconds (60 by default); no assertion is about speed."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return
    seconds = int(getattr(request.module, "TEST_TIMEOUT_S", 60))

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"test ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def printed_derivatives_run_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    derived: dict[int, Program] = {}  # this test's derivatives (held, so ids stay theirs)

    def mark(p: Program) -> None:
        derived[id(p)] = p

    def check(e: Evaluation) -> None:
        if id(e.program) not in derived or not all(
            isinstance(a, (np.ndarray, np.generic, float, int)) for a in e.arrays.values()
        ):
            return
        text = str(e.program)
        assert not re.search(r"\^0(?![\d.])", text), text  # no X^0 anchors
        # tensorcalc's own text never warns: it has no trap of the convention
        # (tensorcalc/language/traps.py) when compiled again
        again = Program.from_source(text, warn=False)
        assert not again.traps, (text, [t.message for t in again.traps])
        again = again.with_sizes(e.program.sizes)
        try:
            printed = again.evaluate(dict(e.arrays), sizes=e.sizes, compact=e.compact)
        except InputError as err:
            # docs/limitations.md: a derivative that needs one size the caller gave
            # by name for two nested indices (max's weights over a window of given
            # size) prints one of them under another name. Its printed form then says
            # which index it cannot size; it never runs to another number.
            if not (e.program.sizes and "cannot tell the size of index" in str(err)):
                raise
            return
        value = e.value
        if e.compact:  # the same structure: compare the cores (a dense value may be huge)
            assert printed.ties.keys() == value.ties.keys(), (printed.ties, value.ties)
            printed, value = printed.core, value.core
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(np.asarray(printed), np.asarray(value), rtol=1e-9,
                                       atol=1e-12, equal_nan=True,
                                       err_msg=f"printed derivative:\n{text}")
        PRINTED_CHECKS["count"] += 1

    monkeypatch.setattr(derivatives, "AFTER_DERIVATION", [*derivatives.AFTER_DERIVATION, mark])
    monkeypatch.setattr(program, "AFTER_EVALUATION", [*program.AFTER_EVALUATION, check])

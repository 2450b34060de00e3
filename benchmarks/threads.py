"""``--threads N`` and OpenBLAS's spinning threads: must act before NumPy, jax and
torch start their thread pools.

This module imports nothing heavy, so the entry points (``benchmarks/__main__.py`` and
``benchmarks/run.py``) call :func:`configure_from_argv` before anything imports NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

#: The ``--threads`` value given on the command line, or None (the libraries' defaults).
THREADS: str | None = None


def threads_from_argv(argv: Sequence[str]) -> str | None:
    """The value of ``--threads N`` or ``--threads=N`` in ``argv``, if any."""
    for k, arg in enumerate(argv):
        if arg == "--threads" and k + 1 < len(argv):
            return argv[k + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


def configure(threads: str | None) -> None:
    """Pin BLAS (and, for one thread, XLA) to ``threads`` threads via the environment."""
    global THREADS
    THREADS = threads
    if threads is None:
        return
    for var in THREAD_VARIABLES:
        os.environ[var] = threads
    if threads == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false").strip()


#: OpenBLAS's threads spin for about 2^28 cycles (0.1 s) after each call before they
#: sleep; on a 2-core machine that takes the CPU from whatever runs next in the process:
#: torch's conv2d measured 23-39 ms right after the NumPy formula against 12 ms alone,
#: which flattered tensorcalc's ratios to torch (and jax). 2^4 cycles: no spinning.
SPIN = ("OPENBLAS_THREAD_TIMEOUT", "4")


def configure_from_argv(argv: Sequence[str]) -> None:
    os.environ.setdefault(*SPIN)  # before NumPy starts OpenBLAS's threads
    configure(threads_from_argv(argv))

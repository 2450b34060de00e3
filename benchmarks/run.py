#!/usr/bin/env python
"""``python benchmarks/run.py [--quick] [--threads N]``: the same as ``python -m benchmarks``
(see ``benchmarks/README.md``), kept so this path works from the repository root."""

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path: put the repository root
# there instead, so that ``benchmarks`` is the package and its modules don't shadow others.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.threads import configure_from_argv  # noqa: E402

configure_from_argv(sys.argv)  # before anything imports NumPy

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks [--quick] [--threads N]``: see ``benchmarks/README.md``."""

import sys

from benchmarks.threads import configure_from_argv

configure_from_argv(sys.argv)  # before anything imports NumPy

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

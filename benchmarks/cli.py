"""The command line: ``python -m benchmarks`` (or ``python benchmarks/run.py``).

Prints the machine, then one markdown table row per workload. Every implementation's
result is checked against the NumPy formula (float64, ``np.allclose``, rtol 1e-6; the
float32 convolution rows within 1e-4 of the formula's largest entry) before it is
timed; a mismatch is printed loudly and the row is marked. Times are medians of
several repeats after a warm-up; tensorcalc and the NumPy formula (and jax/torch) are
timed interleaved, in one process, in a rotating order. Compile time is excluded except
in the "first call" and "symbolic" rows. jax and torch are optional: their columns read
"n/a" when they are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import threads
from benchmarks.harness import (
    NOISY,
    RTOL,
    Report,
    Row,
    cpu_snapshot,
    describe_machine,
    others_share,
    others_text,
    print_summary,
    print_table,
)
from benchmarks.spec import Context, Workload
from benchmarks.workloads import ALL

DESCRIPTION = ("Benchmarks: tensorcalc against a hand-written NumPy formula, jax.jit and "
               "torch.func.")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, torch and XLA (default: the libraries' own); "
                             "--threads 1 is steadier on a shared machine")
    parser.add_argument("--only", default=None, metavar="KEYS",
                        help="run only these workloads, by key, comma-separated (e.g. "
                             "--only 8,14b); the summary then counts only their goals")
    parser.add_argument("--markdown", default=None, metavar="PATH",
                        help="also write the machine, the date and time (UTC) and the "
                             "summary table to PATH as Markdown (the documentation site "
                             "includes docs/performance-table.md)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every workload and print the table; 1 when a result differed from the NumPy
    formula or a workload crashed. ``--threads`` takes effect on BLAS only when the
    entry point applied it before NumPy was imported (``benchmarks.threads``)."""
    args = parse_args(argv)
    if args.threads is not None and threads.THREADS is None:
        threads.configure(str(args.threads))
    repeats = 3 if args.quick else 9
    ctx = Context(Report(), repeats, args.quick)
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    cpu_start = cpu_snapshot()
    machine = echoed(describe_machine)
    chosen = None if args.only is None else {k.strip() for k in args.only.split(",")}
    for w in ALL:
        if chosen is None or w.key in chosen:
            run_step(w, ctx)

    print(f"## Results ({'quick, ' if args.quick else ''}times: median of {repeats} repeats, "
          f"{3 * repeats} for the jax.jit rows 11-13; "
          f"ratios: median of the per-repeat ratios of back-to-back runs; float64 except "
          f"the float32 convolution rows 15-17; every result checked against the NumPy "
          f"formula, rtol {RTOL:g} (rows 15-17: 1e-4 of its largest entry))\n")
    table = echoed(print_table, ctx.report.rows)
    print()
    for note in ctx.report.notes:
        print(f"- {note}")
    total = (f"the whole run took {time.perf_counter() - t_start:.0f} s; "
             f"{others_text(cpu_start)}")
    print(f"- {total}")
    summary = echoed(print_summary, ctx.report)
    if args.markdown is not None:
        write_markdown(Path(args.markdown), started, machine, table, summary, total)
    return 1 if ctx.report.errors else 0


def echoed(fn: Callable[..., None], *args: object) -> str:
    """Run ``fn``, which prints; print its text as usual and return it too."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        fn(*args)
    print(buffer.getvalue(), end="")
    return buffer.getvalue()


def write_markdown(path: Path, started: datetime.datetime, machine: str, table: str,
                   summary: str, total: str) -> None:
    """The summary table as a Markdown page fragment, with when and where it was measured:
    the documentation's Performance page includes it, so a rerun updates the site."""
    facts = "\n".join(line for line in machine.splitlines() if line.startswith("- "))
    goals = summary.strip().removeprefix("SUMMARY: ")
    path.write_text(
        f"<!-- written by python -m benchmarks --markdown {path.name}; rerun it to update -->\n"
        f"Measured on {started:%Y-%m-%d} at {started:%H:%M} UTC ({total}), on this machine:\n\n"
        f"{facts}\n\n{table.strip()}\n\n**{goals}.**\n", encoding="utf-8")


def run_step(w: Workload, ctx: Context) -> None:
    """Measure one workload; mark its rows noisy when other processes used the CPU, and
    turn a crash into a loud error and a row that says so."""
    print(f"running workload {w.key} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    rows = ctx.report.rows
    first_row = len(rows)
    cpu0 = cpu_snapshot()
    try:
        w.measure(w, ctx)
    except Exception as err:  # noqa: BLE001
        ctx.report.loud(f"workload {w.key} crashed: {type(err).__name__}: {err}\n"
                        + traceback.format_exc())
        row = Row(w.key, "(crashed)", "")
        row.met_text = "error"
        rows.append(row)
        return
    share = others_share(cpu0)
    if share is not None and share > NOISY:
        for row in rows[first_row:]:
            row.noisy = share
    print(f"  ... {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

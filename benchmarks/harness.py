"""What every workload shares: goals and verdicts, checks against the NumPy formula,
interleaved timing, peak memory, the machine, the CPU used by other processes (noise),
and the printed table."""

from __future__ import annotations

import gc
import io
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks import peers, threads

RTOL = 1e-6
NA = "n/a"
IMPLS = ("ours", "numpy", "jax", "torch")
NOISY = 0.10  # share of the machine's CPU used by other processes that makes timings noisy

Size = Mapping[str, int]

# --------------------------------------------------------------------------------------
# formatting


def fmt_time(t: float | None) -> str:
    if t is None:
        return NA
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms" if t < 0.1 else f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_bytes(n: float) -> str:
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def fmt_number(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 and float(x).is_integer() else f"{x:g}"


# --------------------------------------------------------------------------------------
# goals and verdicts


@dataclass(frozen=True)
class Goal:
    """A workload's goal: a number, what it is measured on, and how the two compare.

    ``limit`` is a number, or a function of the workload's size (then ``formula`` says how,
    e.g. ``"n²+k+16"``). ``counted=False`` marks a goal shown for information only: the
    verdict reads "(yes)" / "(no)" and does not enter the summary.
    """

    on: str
    limit: float | Callable[[Size], float]
    op: str = "≤"  # "≤" or "<"
    unit: str = ""  # "" (a ratio), "s", "B" or "elements"
    formula: str = ""
    label: str = ""  # shown before the comparison in the goal cell, e.g. "grad/fwd"
    counted: bool = True

    def bound(self, size: Size) -> float:
        return self.limit(size) if callable(self.limit) else float(self.limit)

    def met(self, value: float, size: Size) -> bool:
        bound = self.bound(size)
        return value < bound if self.op == "<" else value <= bound

    def text(self, size: Size) -> str:
        bound = self.bound(size)
        if self.unit == "s":
            number = f"{bound:g} s" if bound >= 1 else f"{bound * 1e3:g} ms"
        elif self.unit == "B":
            number = fmt_bytes(bound)
        elif self.unit:
            number = f"{fmt_number(bound)} {self.unit}"
        else:
            number = fmt_number(bound)
        if self.formula:
            number = f"{self.formula} = {number}"
        text = f"{self.label} {self.op} {number}" if self.label else f"{self.op} {number}"
        return text if self.counted else f"{text} (info, not counted)"


class Row:
    """One line of the table."""

    def __init__(self, key: str, workload: str, goal: str = "(info)", name: str = ""):
        self.key = key
        self.name = name or key  # how the summary names it (rows may share a key)
        self.workload = f"{key}. {workload}"
        self.goal = goal
        self.cells: dict[str, str] = {k: NA for k in IMPLS}
        self.ratio = "—"
        self.vs_jax = "—"  # tensorcalc / jax.jit from the same timings, where JAX ran
        self.met: bool | None = None  # None: no goal, or one not counted
        self.met_text: str | None = None
        self.bad: list[str] = []  # implementations whose check failed
        self.noisy: float | None = None  # others' CPU share while it ran, when high

    def judge(self, goal: Goal, value: float, size: Size) -> bool:
        """Set the goal cell and the verdict from ``value``; a failed check of ours
        fails the goal."""
        met = goal.met(value, size) and "ours" not in self.bad
        self.goal = goal.text(size)
        if goal.counted:
            self.met = met
        else:
            self.met_text = "(yes)" if met else "(no)"
        return met

    def judge_pair(self, times: Timings, peer: str, goal: Goal, size: Size) -> bool:
        """``ours / peer`` from timings taken back to back, shown in the ratio cell and
        judged against ``goal``; not met where either was not timed."""
        if "ours" not in times or peer not in times:
            self.met = False
            return False
        ratio = times.ratio("ours", peer)
        self.ratio = f"{ratio:.2f} (ours/{peer})"
        return self.judge(goal, ratio, size)

    def met_cell(self) -> str:
        if self.met_text is not None:
            text = self.met_text
        elif self.met is None:
            text = "—"
        else:
            text = "yes" if self.met else "**NO**"
        if self.bad:
            text += f" ⚠ MISMATCH: {', '.join(self.bad)}"
        if self.noisy is not None:
            text += f" (noisy: others used {self.noisy:.0%} CPU)"
        return text


# --------------------------------------------------------------------------------------
# checks


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def difference(got: Any, ref: Any, rtol: float = RTOL) -> str | None:
    """None when ``got`` equals the NumPy reference (float64, ``np.allclose``);
    otherwise what differs."""
    got = to_numpy(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return f"shape {got.shape} differs from the NumPy formula's {ref.shape}"
    if got.dtype != np.float64:
        return f"dtype {got.dtype}, expected float64"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if not np.allclose(got, ref, rtol=rtol, atol=1e-12 * max(scale, 1e-300)):
        err = float(np.max(np.abs(got - ref))) / max(scale, 1e-300)
        return f"result differs from the NumPy formula (max abs error / max |ref| = {err:.3g})"
    return None


@dataclass
class Report:
    """The rows, notes and errors of one run."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def loud(self, msg: str) -> None:
        line = "!" * 88
        text = f"\n{line}\n!!! ERROR: {msg}\n{line}\n"
        print(text, flush=True)
        print(text, file=sys.stderr, flush=True)
        self.errors.append(msg)

    def check(self, row: Row, impl: str, got: Any, ref: Any, mark: str | None = None) -> bool:
        """True when ``got`` equals ``ref``; otherwise a loud error, and ``mark`` (by
        default ``impl``) joins the row's mismatches."""
        problem = difference(got, ref)
        if problem is None:
            return True
        self.loud(f"[{row.workload}] {impl}: {problem}")
        row.bad.append(mark or impl)
        return False

    def run_impls(self, row: Row, impls: Mapping[str, Callable[[], Any]], ref: Any,
                  repeats: int, target: float = 0.02,
                  transform: Callable[[Any], Any] | None = None,
                  extra: Mapping[str, Callable[[], Any]] | None = None,
                  pairs: tuple[tuple[str, str], ...] = (("ours", "numpy"),)) -> Timings:
        """Run each implementation once, check it against ``ref``, then time them all
        (together with ``extra``: functions checked by the caller) and fill the cells."""
        ready: dict[str, Callable[[], Any]] = {}
        for k, fn in impls.items():
            try:
                out = fn()
                if transform is not None:
                    out = transform(out)
            except Exception as err:  # noqa: BLE001
                self.loud(f"[{row.workload}] {k} raised {type(err).__name__}: {err}")
                row.cells[k] = "error"
                row.bad.append(k)
                continue
            self.check(row, k, out, ref)
            ready[k] = fn
        times = bench({**ready, **(extra or {})}, repeats, target, pairs)
        for k, t in times.items():
            if k in row.cells:
                row.cells[k] = fmt_time(t) + (" ✗" if k in row.bad else "")
        return times


# --------------------------------------------------------------------------------------
# timing


def calibrate(fn: Callable[[], Any], target: float) -> int:
    """Calls per timed repeat so that one repeat lasts about ``target`` seconds."""
    t0 = time.perf_counter()
    fn()
    t = time.perf_counter() - t0
    if t >= target:
        return 1
    n = 1
    while True:  # time a few calls to get past timer resolution for tiny functions
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= target / 10 or n >= 1 << 20:
            break
        n *= 4
    return max(1, int(target / (t / n)))


class Timings(dict[str, float]):
    """Median seconds per call by name, with the samples kept for paired ratios."""

    def __init__(self, samples: dict[str, list[float]]):
        super().__init__({k: statistics.median(v) for k, v in samples.items()})
        self.samples = samples

    def ratio(self, a: str, b: str) -> float:
        """Median over repeats of a's time / b's time in the same repeat. The two run
        back to back, so a burst of load from another process hits both alike."""
        return statistics.median(x / y for x, y in zip(self.samples[a], self.samples[b]))


def bench(fns: Mapping[str, Callable[[], Any]], repeats: int, target: float = 0.02,
          pairs: tuple[tuple[str, str], ...] = (("ours", "numpy"),)) -> Timings:
    """Seconds per call of each function, timed interleaved: each repeat runs every
    function once (a batch of calls filling about ``target`` seconds), in an order that
    rotates from repeat to repeat; the two functions of a pair always run back to back,
    which first alternating. Each function was already run once, for its check, and
    ``calibrate`` warms it up again."""
    numbers = {k: calibrate(f, target) for k, f in fns.items()}
    samples: dict[str, list[float]] = {k: [] for k in fns}
    units: list[tuple[str, ...]] = []
    paired: set[str] = set()
    for a, b in pairs:
        if a in fns and b in fns:
            units.append((a, b))
            paired |= {a, b}
    units += [(k,) for k in fns if k not in paired]
    gc.collect()
    for r in range(repeats):
        shift = r % len(units)
        for unit in units[shift:] + units[:shift]:
            for k in (unit if r % 2 == 0 else unit[::-1]):
                f, n = fns[k], numbers[k]
                t0 = time.perf_counter()
                for _ in range(n):
                    f()
                samples[k].append((time.perf_counter() - t0) / n)
    return Timings(samples)


def once(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took, after a garbage collection."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes Python and NumPy allocated while ``fn`` ran (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del out
    return peak


# --------------------------------------------------------------------------------------
# the machine, and the CPU other processes use


def describe_machine() -> None:
    import lark
    import opt_einsum

    import tensorcalc as tc

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores: int | None = os.cpu_count()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    given = threads.THREADS
    print("## Machine\n")
    print(f"- CPU: {cpu}; {cores} logical cores ({usable} usable by this process)")
    print(f"- OS: {platform.platform()}")
    print(f"- threads: {'libraries default' if given is None else given + ' (--threads)'}; "
          f"{threads.SPIN[0]}={os.environ.get(threads.SPIN[0], '(unset)')} (OpenBLAS's "
          "threads do not spin after a call, slowing torch or XLA run next)")
    print(f"- load average at start: {load_text()}")
    print(f"- Python: {platform.python_implementation()} {platform.python_version()}")
    print(f"- NumPy: {np.__version__}; BLAS: {blas_info()}")
    print(f"- tensorcalc {tc.__version__}, opt_einsum {opt_einsum.__version__}, "
          f"lark {lark.__version__}")
    jax = peers.load("jax")
    if jax is not None:
        devs = ", ".join(str(d) for d in jax.devices())
        print(f"- jax: {jax.__version__} (devices: {devs}; x64 enabled)")
    else:
        print("- jax: not installed (columns n/a)")
    torch = peers.load("torch")
    if torch is not None:
        print(f"- torch: {torch.__version__} ({torch.get_num_threads()} intra-op threads)")
    else:
        print("- torch: not installed (columns n/a)")
    print()


def load_text() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def blas_info() -> str:
    try:
        import threadpoolctl

        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return "; ".join(
                f"{i.get('internal_api')} {i.get('version')} "
                f"({i.get('num_threads')} threads, {i.get('architecture', '?')})"
                for i in infos)
    except Exception:  # noqa: BLE001
        pass
    try:
        cfg: Any = np.show_config(mode="dicts")
        deps = cfg.get("Build Dependencies", {})
        parts = []
        for key in ("blas", "lapack"):
            d = deps.get(key, {})
            if d:
                parts.append(f"{key}={d.get('name', '?')} {d.get('version', '')}".strip())
        simd = cfg.get("SIMD Extensions", {}).get("found", [])
        env = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        text = ", ".join(parts) or "unknown"
        if simd:
            text += f"; SIMD found: {' '.join(simd[-4:])}"
        if env:
            text += f"; threads env={env}"
        return text
    except Exception:  # noqa: BLE001
        pass
    buf = io.StringIO()
    try:
        with redirect_stdout(buf):
            np.show_config()
        for line in buf.getvalue().splitlines():
            if "blas" in line.lower() and "name" in line.lower():
                return line.strip()
    except Exception:  # noqa: BLE001
        pass
    return "unknown"


CpuSnapshot = tuple[float, float, float]


def cpu_snapshot() -> CpuSnapshot | None:
    """(busy CPU seconds of the whole machine, our own CPU seconds, wall time)."""
    try:
        import resource

        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # minus idle, iowait
        own = sum(resource.getrusage(who)[k] for who in
                  (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for k in (0, 1))
        return busy, own, time.monotonic()
    except (OSError, ValueError, ImportError, IndexError):
        return None


def others_share(start: CpuSnapshot | None) -> float | None:
    """The share of the machine's CPU other processes used since ``start``."""
    end = cpu_snapshot()
    if start is None or end is None or end[2] <= start[2]:
        return None
    cores = os.cpu_count() or 1
    share = ((end[0] - start[0]) - (end[1] - start[1])) / ((end[2] - start[2]) * cores)
    return max(share, 0.0)


def others_text(start: CpuSnapshot | None) -> str:
    """How much CPU other processes used while the benchmarks ran."""
    share = others_share(start)
    if share is None:
        return "CPU use of other processes unknown"
    text = f"other processes used {share:.0%} of the machine's CPU during the run"
    if share > NOISY:
        text += (" -- WARNING: timings are noisy (rows marked 'noisy'), rerun on a quiet "
                 "machine" + (" or with --threads 1" if threads.THREADS is None else ""))
    return text


# --------------------------------------------------------------------------------------
# the table and the summary


def print_table(rows: list[Row]) -> None:
    head = ["workload", "tensorcalc", "NumPy formula", "jax.jit", "torch.func",
            "ours/NumPy", "ours/jax.jit", "goal", "met?"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        cells = [r.workload, r.cells["ours"], r.cells["numpy"], r.cells["jax"],
                 r.cells["torch"], r.ratio, r.vs_jax, r.goal, r.met_cell()]
        print("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")


def print_summary(report: Report) -> None:
    """The errors and the ``SUMMARY:`` line."""
    goals = [r for r in report.rows if r.met is not None]
    met = sum(1 for r in goals if r.met)
    missed = [r.name for r in goals if not r.met]
    errors = report.errors
    if errors:
        print(f"\n!!! {len(errors)} ERROR(S): " + " / ".join(errors))
    print(f"\nSUMMARY: {met} of {len(goals)} goals met"
          + (f" (missed: {', '.join(missed)})" if missed else "")
          + (f"; {len(errors)} error(s)" if errors else ""))

#!/usr/bin/env python
"""Benchmarks: tensorcalc against a hand-written NumPy formula, jax.jit and torch.func.

Run from the repository root:

    python benchmarks/run.py            # full run (about 1-2 minutes on 2 cores)
    python benchmarks/run.py --quick    # fewer repeats
    python benchmarks/run.py --threads 1  # single-threaded BLAS/torch/XLA (steadier)

Prints the machine, then one markdown table row per workload. Every implementation's
result is checked against the NumPy formula (float64, ``np.allclose``, rtol 1e-6) before
it is timed; a mismatch is printed loudly and the row is marked. Times are medians of
several repeats after a warm-up; tensorcalc and the NumPy formula (and jax/torch) are
timed interleaved, in one process, in a rotating order. Compile time is excluded except
in the "first call" rows. jax and torch are optional: their columns read "n/a" when
they are not installed.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any


def _threads_from_argv() -> str | None:
    """``--threads N`` must act before NumPy, jax and torch start their thread pools."""
    for k, arg in enumerate(sys.argv):
        if arg == "--threads" and k + 1 < len(sys.argv):
            return sys.argv[k + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


THREADS = _threads_from_argv()
if THREADS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = THREADS
    if THREADS == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false").strip()

import numpy as np  # noqa: E402

import tensorcalc as tc  # noqa: E402

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
except Exception:  # noqa: BLE001 - any failure to import means "not available"
    jax = None  # type: ignore[assignment]
    jnp = None  # type: ignore[assignment]

try:
    import torch
    import torch.func

    if THREADS is not None:
        torch.set_num_threads(int(THREADS))
except Exception:  # noqa: BLE001
    torch = None  # type: ignore[assignment]

RTOL = 1e-6
NA = "n/a"
IMPLS = ("ours", "numpy", "jax", "torch")

# --------------------------------------------------------------------------------------
# reporting helpers


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


ERRORS: list[str] = []


def loud(msg: str) -> None:
    line = "!" * 88
    text = f"\n{line}\n!!! ERROR: {msg}\n{line}\n"
    print(text, flush=True)
    print(text, file=sys.stderr, flush=True)
    ERRORS.append(msg)


def to_numpy(x: Any) -> np.ndarray:
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def check(row: str, impl: str, got: Any, ref: np.ndarray, rtol: float = RTOL) -> bool:
    """True when ``got`` equals the NumPy reference; otherwise a loud error."""
    got = to_numpy(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        loud(f"[{row}] {impl}: shape {got.shape} differs from the NumPy formula's {ref.shape}")
        return False
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    if got.dtype != np.float64:
        loud(f"[{row}] {impl}: dtype {got.dtype}, expected float64")
        return False
    if not np.allclose(got, ref, rtol=rtol, atol=1e-12 * max(scale, 1e-300)):
        err = float(np.max(np.abs(got - ref))) / max(scale, 1e-300)
        loud(f"[{row}] {impl}: result differs from the NumPy formula "
             f"(max abs error / max |ref| = {err:.3g})")
        return False
    return True


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


class Timings(dict):
    """Median seconds per call by name, with the samples kept for paired ratios."""

    def __init__(self, samples: dict[str, list[float]]):
        super().__init__({k: statistics.median(v) for k, v in samples.items()})
        self.samples = samples

    def ratio(self, a: str, b: str) -> float:
        """Median over repeats of a's time / b's time in the same repeat. The two run
        back to back, so a burst of load from another process hits both alike."""
        return statistics.median(x / y for x, y in zip(self.samples[a], self.samples[b]))


def bench(fns: dict[str, Callable[[], Any]], repeats: int, target: float = 0.02,
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


class Row:
    def __init__(self, workload: str, goal: str = ""):
        self.workload = workload
        self.goal = goal
        self.cells: dict[str, str] = {k: NA for k in IMPLS}
        self.ratio = "—"
        self.met: bool | None = None  # None: no goal / informational
        self.met_text: str | None = None
        self.bad: list[str] = []  # implementations whose check failed
        self.noisy: float | None = None  # others' CPU share while it ran, when high

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


ROWS: list[Row] = []
NOTES: list[str] = []


def run_impls(row: Row, name: str, impls: dict[str, Callable[[], Any] | None],
              ref: np.ndarray, repeats: int, target: float = 0.02,
              transform: Callable[[Any], Any] | None = None,
              extra: dict[str, Callable[[], Any]] | None = None,
              pairs: tuple[tuple[str, str], ...] = (("ours", "numpy"),)) -> Timings:
    """Run each implementation once, check it against ``ref``, then time them all
    (together with ``extra``: functions checked by the caller)."""
    ready: dict[str, Callable[[], Any]] = {}
    for k, fn in impls.items():
        if fn is None:
            continue
        try:
            out = fn()
            if transform is not None:
                out = transform(out)
        except Exception as err:  # noqa: BLE001
            loud(f"[{name}] {k} raised {type(err).__name__}: {err}")
            row.cells[k] = "error"
            row.bad.append(k)
            continue
        if not check(name, k, out, ref):
            row.bad.append(k)
        ready[k] = fn
    times = bench({**ready, **(extra or {})}, repeats, target, pairs)
    for k, t in times.items():
        if k in row.cells:
            row.cells[k] = fmt_time(t) + (" ✗" if k in row.bad else "")
    return times


def ratio_row(row: Row, times: Timings, limit: float) -> float | None:
    if "ours" not in times or "numpy" not in times:
        return None
    r = times.ratio("ours", "numpy")
    row.ratio = f"{r:.2f}"
    row.met = r <= limit and "ours" not in row.bad
    return r


# --------------------------------------------------------------------------------------
# the machine


def describe_machine() -> None:
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
    print("## Machine\n")
    print(f"- CPU: {cpu}; {cores} logical cores ({usable} usable by this process)")
    print(f"- OS: {platform.platform()}")
    print(f"- threads: {'libraries default' if THREADS is None else THREADS + ' (--threads)'}")
    print(f"- load average at start: {load_text()}")
    print(f"- Python: {platform.python_implementation()} {platform.python_version()}")
    print(f"- NumPy: {np.__version__}; BLAS: {blas_info()}")
    import lark
    import opt_einsum

    print(f"- tensorcalc {tc.__version__}, opt_einsum {opt_einsum.__version__}, "
          f"lark {lark.__version__}")
    if jax is not None:
        devs = ", ".join(str(d) for d in jax.devices())
        print(f"- jax: {jax.__version__} (devices: {devs}; x64 enabled)")
    else:
        print("- jax: not installed (columns n/a)")
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


def cpu_snapshot() -> tuple[float, float, float] | None:
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


NOISY = 0.10  # share of the machine's CPU used by other processes that makes timings noisy


def others_share(start: tuple[float, float, float] | None) -> float | None:
    """The share of the machine's CPU other processes used since ``start``."""
    end = cpu_snapshot()
    if start is None or end is None or end[2] <= start[2]:
        return None
    cores = os.cpu_count() or 1
    share = ((end[0] - start[0]) - (end[1] - start[1])) / ((end[2] - start[2]) * cores)
    return max(share, 0.0)


def others_text(start: tuple[float, float, float] | None) -> str:
    """How much CPU other processes used while the benchmarks ran."""
    share = others_share(start)
    if share is None:
        return "CPU use of other processes unknown"
    text = f"other processes used {share:.0%} of the machine's CPU during the run"
    if share > NOISY:
        text += (" -- WARNING: timings are noisy (rows marked 'noisy'), rerun on a quiet "
                 "machine" + (" or with --threads 1" if THREADS is None else ""))
    return text


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
        threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        text = ", ".join(parts) or "unknown"
        if simd:
            text += f"; SIMD found: {' '.join(simd[-4:])}"
        if threads:
            text += f"; threads env={threads}"
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


# --------------------------------------------------------------------------------------
# workloads

MLP_SRC = ("H[b,h] = tanh(X[b,d] W[d,h] + c[h]); P[b,o] = H[b,h] V[h,o]; "
           "L = (P[b,o] - T[b,o])^2")


def sigmoid_np(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def chain_src(n: int) -> str:
    lines = [f"h{k}[b,j] = tanh(h{k - 1}[b,i] W{k}[i,j])" for k in range(1, n + 1)]
    return "\n".join(lines + [f"L = h{n}[b,j]^2"])


def chain_arrays(rng: np.random.Generator, n: int, batch: int, width: int) -> dict:
    arrays = {"h0": rng.standard_normal((batch, width))}
    for k in range(1, n + 1):
        arrays[f"W{k}"] = rng.standard_normal((width, width)) * (1.2 / np.sqrt(width))
    return arrays


def jx(a: dict) -> dict:
    return {k: jnp.asarray(v) for k, v in a.items()}


def th(a: dict) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()}


def w1_logreg(rng, repeats):
    name = "1. logistic regression Hessian wrt w (X 2000×500)"
    row = Row(name, "≤ 1.15")
    X = rng.standard_normal((2000, 500))
    w = 0.01 * rng.standard_normal(500)
    y = (rng.random(2000) < 0.5).astype(np.float64)
    src = "z[n] = X[n,d] w[d]; L = sum[n](softplus(z[n]) - y[n] z[n])"
    H = tc.hessian(src, "w")

    def numpy_formula():
        s = sigmoid_np(X @ w)
        return X.T @ (X * (s * (1 - s))[:, None])

    impls: dict[str, Any] = {"ours": lambda: H(X=X, w=w, y=y), "numpy": numpy_formula}
    if jax is not None:
        def jloss(w, X, y):
            z = X @ w
            return jnp.sum(jax.nn.softplus(z) - y * z)
        jh = jax.jit(jax.hessian(jloss))
        a = jx({"w": w, "X": X, "y": y})
        impls["jax"] = lambda: jh(a["w"], a["X"], a["y"]).block_until_ready()
    if torch is not None:
        def tloss(w, X, y):
            z = X @ w
            return torch.sum(torch.nn.functional.softplus(z) - y * z)
        thess = torch.func.hessian(tloss)
        t = th({"w": w, "X": X, "y": y})
        impls["torch"] = lambda: thess(t["w"], t["X"], t["y"])
    times = run_impls(row, name, impls, numpy_formula(), repeats)
    ratio_row(row, times, 1.15)
    ROWS.append(row)


def w2_least_squares(rng, repeats):
    m, n, k = 100, 60, 20
    name = f"2. least squares Hessian wrt W, dense (m={m}, n={n}, k={k})"
    row = Row(name, "≤ 1.5")
    X = rng.standard_normal((m, n))
    W = rng.standard_normal((n, k))
    Y = rng.standard_normal((m, k))
    src = "L = (X[i,j] W[j,k] - Y[i,k])^2"
    H = tc.hessian(src, "W")
    eye = np.eye(k)

    def numpy_formula():
        return np.einsum("pr,qs->pqrs", 2 * X.T @ X, eye)

    ref = numpy_formula()
    impls: dict[str, Any] = {"ours": lambda: H(X=X, W=W, Y=Y), "numpy": numpy_formula}
    if jax is not None:
        def jloss(W, X, Y):
            return jnp.sum((X @ W - Y) ** 2)
        jh = jax.jit(jax.hessian(jloss))
        a = jx({"W": W, "X": X, "Y": Y})
        impls["jax"] = lambda: jh(a["W"], a["X"], a["Y"]).block_until_ready()
    if torch is not None:
        def tloss(W, X, Y):
            return torch.sum((X @ W - Y) ** 2)
        thess = torch.func.hessian(tloss)
        t = th({"W": W, "X": X, "Y": Y})
        impls["torch"] = lambda: thess(t["W"], t["X"], t["Y"])
    times = run_impls(row, name, impls, ref, repeats)
    ratio_row(row, times, 1.5)
    ROWS.append(row)

    # the compact form
    crow = Row(f"2b. same Hessian, compact: core size vs dense n·k·n·k = {n * k * n * k:,}",
               f"≤ n²+k+small = {n * n + k}+")
    c = H.evaluate(compact=True, X=X, W=W, Y=Y)
    size = int(np.asarray(c.core).size)
    ok = check(crow.workload, "ours compact.toarray()", c.toarray(), ref)
    if not ok:
        crow.bad.append("ours")
    ctimes = bench({"ours": lambda: H.evaluate(compact=True, X=X, W=W, Y=Y),
                    "numpy": lambda: 2 * X.T @ X}, repeats)
    crow.cells["ours"] = (f"{size:,} elements {tuple(np.shape(c.core))}, ties {c.ties}; "
                          f"{fmt_time(ctimes['ours'])}")
    crow.cells["numpy"] = f"2XᵀX: {n * n:,} elements; {fmt_time(ctimes['numpy'])}"
    crow.ratio = f"{size / (n * k * n * k):.4f} (size)"
    crow.met = size <= n * n + k + 16 and ok
    ROWS.append(crow)


def w3_mlp(rng, repeats):
    b, d, h, o = 512, 784, 256, 10
    name = f"3. tanh MLP gradient wrt W (batch {b}, {d}→{h}→{o})"
    row = Row(name, "≤ 1.2")
    arrays = mlp_arrays(rng, b, d, h, o)
    X, W, c, V, T = (arrays[k] for k in ("X", "W", "c", "V", "T"))
    G = tc.grad(MLP_SRC, "W")

    def numpy_formula():
        H = np.tanh(X @ W + c)
        P = H @ V
        Pb = 2 * (P - T)
        Hb = Pb @ V.T
        return X.T @ (Hb * (1 - H * H))

    impls: dict[str, Any] = {"ours": lambda: G(**arrays), "numpy": numpy_formula}
    if jax is not None:
        jg = jax.jit(jax.grad(mlp_loss_jax))
        a = jx(arrays)
        impls["jax"] = lambda: jg(a["W"], a["X"], a["c"], a["V"], a["T"]).block_until_ready()
    if torch is not None:
        tg = torch.func.grad(mlp_loss_torch)
        t = th(arrays)
        impls["torch"] = lambda: tg(t["W"], t["X"], t["c"], t["V"], t["T"])
    times = run_impls(row, name, impls, numpy_formula(), repeats)
    ratio_row(row, times, 1.2)
    ROWS.append(row)
    return arrays, numpy_formula


def mlp_arrays(rng, b=512, d=784, h=256, o=10):
    return {
        "X": rng.standard_normal((b, d)),
        "W": rng.standard_normal((d, h)) / np.sqrt(d),
        "c": 0.1 * rng.standard_normal(h),
        "V": rng.standard_normal((h, o)) / np.sqrt(h),
        "T": rng.standard_normal((b, o)),
    }


def mlp_loss_jax(W, X, c, V, T):
    return jnp.sum((jnp.tanh(X @ W + c) @ V - T) ** 2)


def mlp_loss_torch(W, X, c, V, T):
    return torch.sum((torch.tanh(X @ W + c) @ V - T) ** 2)


def w4_sigmoid(rng, repeats):
    n = 4000
    name = f"4. sigmoid Jacobian, dense (n={n})"
    row = Row(name, "≤ 1.3")
    x = rng.standard_normal(n)
    J = tc.derive("y[i] = sigmoid(x[i])", "x")

    def numpy_formula():
        s = sigmoid_np(x)
        return np.diag(s * (1 - s))

    impls: dict[str, Any] = {"ours": lambda: J(x=x), "numpy": numpy_formula}
    if jax is not None:
        jj = jax.jit(jax.jacobian(jax.nn.sigmoid))
        xj = jnp.asarray(x)
        impls["jax"] = lambda: jj(xj).block_until_ready()
    if torch is not None:
        tj = torch.func.jacrev(torch.sigmoid)
        xt = torch.from_numpy(x)
        impls["torch"] = lambda: tj(xt)
    times = run_impls(row, name, impls, numpy_formula(), repeats)
    ratio_row(row, times, 1.3)
    ROWS.append(row)

    # compact, n = 10**6
    n = 10**6
    name = f"4b. sigmoid Jacobian, compact (n={n:,}; jax/torch: vmap(grad))"
    crow = Row(name, "(time: info)")
    x = rng.standard_normal(n)

    def numpy_compact():
        s = sigmoid_np(x)
        return s * (1 - s)

    def ours_core():
        return J.evaluate(compact=True, x=x).core

    c = J.evaluate(compact=True, x=x)
    if c.ties != {"p": "i"}:
        loud(f"[{name}] unexpected ties {c.ties} (expected {{'p': 'i'}})")
        crow.bad.append("ours")
    impls = {"ours": ours_core, "numpy": numpy_compact}
    if jax is not None:
        jd = jax.jit(jax.vmap(jax.grad(jax.nn.sigmoid)))
        xj = jnp.asarray(x)
        impls["jax"] = lambda: jd(xj).block_until_ready()
    if torch is not None:
        td = torch.func.vmap(torch.func.grad(torch.sigmoid))
        xt = torch.from_numpy(x)
        impls["torch"] = lambda: td(xt)
    ctimes = run_impls(crow, name, impls, numpy_compact(), repeats)
    if "ours" in ctimes and "numpy" in ctimes:
        crow.ratio = f"{ctimes.ratio('ours', 'numpy'):.2f}"
    ROWS.append(crow)

    # its memory
    mrow = Row(f"4c. peak memory of 4b (n={n:,}; tracemalloc)", "≤ 10·n·8 B = 76.3 MiB")

    def peak(fn):
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = fn()
            p = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        del out
        return p

    p_ours = peak(lambda: J.evaluate(compact=True, x=x))
    p_np = peak(numpy_compact)
    mrow.cells["ours"] = f"{fmt_bytes(p_ours)} = {p_ours / (8 * n):.1f}·n·8 B"
    mrow.cells["numpy"] = f"{fmt_bytes(p_np)} = {p_np / (8 * n):.1f}·n·8 B"
    mrow.ratio = f"{p_ours / p_np:.2f} (mem)"
    mrow.met = p_ours <= 10 * 8 * n
    ROWS.append(mrow)


def w5_small(rng, repeats):
    name = "5. gradient of (W[i,j] x[j])^2 wrt W, 3×3, per call"
    row = Row(name, "≤ 3")
    W = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)
    G = tc.grad("s = (W[i,j] x[j])^2", "W")

    def numpy_formula():
        return 2 * np.outer(W @ x, x)

    impls: dict[str, Any] = {"ours": lambda: G(W=W, x=x), "numpy": numpy_formula}
    if jax is not None:
        jg = jax.jit(jax.grad(lambda W, x: jnp.sum((W @ x) ** 2)))
        Wj, xj = jnp.asarray(W), jnp.asarray(x)
        impls["jax"] = lambda: jg(Wj, xj).block_until_ready()
    if torch is not None:
        tg = torch.func.grad(lambda W, x: torch.sum((W @ x) ** 2))
        Wt, xt = torch.from_numpy(W), torch.from_numpy(x)
        impls["torch"] = lambda: tg(Wt, xt)
    times = run_impls(row, name, impls, numpy_formula(), repeats, target=0.05)
    ratio_row(row, times, 3.0)
    ROWS.append(row)


FRESH_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import tensorcalc as tc
t1 = time.perf_counter()
rng = np.random.default_rng(1)
b, d, h, o = 512, 784, 256, 10
arrays = {"X": rng.standard_normal((b, d)), "W": rng.standard_normal((d, h)) / np.sqrt(d),
          "c": 0.1 * rng.standard_normal(h), "V": rng.standard_normal((h, o)) / np.sqrt(h),
          "T": rng.standard_normal((b, o))}
t2 = time.perf_counter()
g = tc.grad(SRC, "W")
out = g(**arrays)
t3 = time.perf_counter()
X, W, c, V, T = (arrays[k] for k in "XWcVT")
H = np.tanh(X @ W + c)
ref = X.T @ ((2 * (H @ V - T)) @ V.T * (1 - H * H))
t4 = time.perf_counter()
tc.grad(SRC, "W")(**arrays)  # the same again, now that the grammar is built
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "second": t5 - t4,
                  "ok": bool(np.allclose(out, ref, rtol=1e-6))}))
"""


def w6_first_call(rng, repeats, arrays, numpy_formula):
    name = "6. first call: tc.grad(MLP, 'W') + one evaluation (row 3 arrays)"
    row = Row(name, "≤ 30 ms")
    ref = numpy_formula()
    samples, derive_only = [], []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        g = tc.grad(MLP_SRC, "W")  # from the text: parse, lower, derive, simplify
        t1 = time.perf_counter()
        out = g(**arrays)  # plan (sizes, contraction paths) and run
        samples.append(time.perf_counter() - t0)
        derive_only.append(t1 - t0)
        if not check(name, "ours", out, ref):
            row.bad.append("ours")
            break
    t_ours = statistics.median(samples)
    row.cells["ours"] = (f"{fmt_time(t_ours)} "
                         f"(of which tc.grad {fmt_time(statistics.median(derive_only))})")
    warm = bench({"numpy": numpy_formula}, repeats)["numpy"]
    row.cells["numpy"] = f"{fmt_time(warm)} (warm)"

    if jax is not None:
        js = []
        a = jx(arrays)
        for _ in range(max(2, repeats // 2)):
            def loss(W, X, c, V, T):  # a new function each time: no jit cache hit
                return jnp.sum((jnp.tanh(X @ W + c) @ V - T) ** 2)
            t0 = time.perf_counter()
            out = jax.jit(jax.grad(loss))(a["W"], a["X"], a["c"], a["V"], a["T"])
            out.block_until_ready()
            js.append(time.perf_counter() - t0)
            if not check(name, "jax", out, ref):
                row.bad.append("jax")
                break
        row.cells["jax"] = f"{fmt_time(statistics.median(js))} (trace+compile)"
    if torch is not None:
        ts = []
        t = th(arrays)
        for _ in range(max(2, repeats // 2)):
            t0 = time.perf_counter()
            out = torch.func.grad(mlp_loss_torch)(t["W"], t["X"], t["c"], t["V"], t["T"])
            ts.append(time.perf_counter() - t0)
            if not check(name, "torch", out, ref):
                row.bad.append("torch")
                break
        row.cells["torch"] = f"{fmt_time(statistics.median(ts))} (eager)"
    row.met = t_ours <= 0.030 and "ours" not in row.bad
    ROWS.append(row)

    # The same in a fresh interpreter. Lark keeps the parser tables it builds in a cache
    # file in the temporary directory, so each fresh process gets an empty TMPDIR of its
    # own ("cold": the grammar is built) and then runs once more with that file present.
    code = FRESH_CODE.replace("SRC", repr(MLP_SRC))
    runs: dict[str, dict[str, list[float]]] = {"cold": {}, "cached": {}}
    failed = False
    for _ in range(max(1, min(3, repeats))):
        tmp = tempfile.mkdtemp(prefix="tc-bench-")
        try:
            for kind in ("cold", "cached"):
                env = {**os.environ, "TMPDIR": tmp}
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, timeout=120, env=env)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    loud(f"[6b] the fresh process failed:\n{proc.stderr.strip()[-2000:]}")
                    failed = True
                    break
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if not res["ok"]:
                    loud("[6b] the fresh process's gradient differs from the NumPy formula")
                    failed = True
                res["wall"] = wall
                for key, value in res.items():
                    if key != "ok":
                        runs[kind].setdefault(key, []).append(value)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if failed:
            break
    for kind, label in (("cold", "6b. first call in a fresh process, Lark grammar built "
                                 "(empty TMPDIR)"),
                        ("cached", "6c. first call in a fresh process, Lark's parser cache "
                                   "file present")):
        frow = Row(label, "≤ 30 ms (info, not counted)")
        if failed:
            frow.bad.append("ours")
        r = {k: statistics.median(v) for k, v in runs[kind].items()}
        if r:
            frow.cells["ours"] = (f"{fmt_time(r['first'])} (then a second grad+eval there: "
                                  f"{fmt_time(r['second'])}; import numpy+tensorcalc before: "
                                  f"{fmt_time(r['import'])}; process wall "
                                  f"{fmt_time(r['wall'])})")
            frow.met_text = "(yes)" if r["first"] <= 0.030 else "(no)"
        ROWS.append(frow)


def w7_reverse_cost(rng, repeats):
    n, batch, width = 20, 256, 128
    name = f"7. reverse-mode cost, {n}-layer tanh chain (batch {batch}, width {width})"
    row = Row(name, "grad/fwd ≤ 3")
    src = chain_src(n)
    arrays = chain_arrays(rng, n, batch, width)
    F = tc.compile(src)
    G = tc.grad(src, "W1")
    Ws = [arrays[f"W{k}"] for k in range(1, n + 1)]
    h0 = arrays["h0"]

    def numpy_forward():
        h = h0
        for W in Ws:
            h = np.tanh(h @ W)
        return np.sum(h * h)

    def numpy_grad():
        hs = [h0]
        for W in Ws:
            hs.append(np.tanh(hs[-1] @ W))
        g = 2 * hs[-1]
        for k in range(n, 0, -1):
            gz = g * (1 - hs[k] * hs[k])
            if k == 1:
                return hs[0].T @ gz
            g = gz @ Ws[k - 1].T

    ref = numpy_grad()
    ok_f = check(name, "ours forward", F(**arrays), numpy_forward())
    if not ok_f:
        row.bad.append("ours forward")
    impls: dict[str, Any] = {"ours": lambda: G(**arrays), "numpy": numpy_grad,
                             "ours_fwd": lambda: F(**arrays), "numpy_fwd": numpy_forward}
    if jax is not None:
        def jloss(W1, h0, rest):
            h = jnp.tanh(h0 @ W1)
            for W in rest:
                h = jnp.tanh(h @ W)
            return jnp.sum(h * h)
        jg = jax.jit(jax.grad(jloss))
        jW1, jh0, jrest = jnp.asarray(Ws[0]), jnp.asarray(h0), [jnp.asarray(W) for W in Ws[1:]]
        impls["jax"] = lambda: jg(jW1, jh0, jrest).block_until_ready()
    if torch is not None:
        def tloss(W1, h0, rest):
            h = torch.tanh(h0 @ W1)
            for W in rest:
                h = torch.tanh(h @ W)
            return torch.sum(h * h)
        tg = torch.func.grad(tloss)
        tW1, th0, trest = (torch.from_numpy(Ws[0]), torch.from_numpy(h0),
                           [torch.from_numpy(W) for W in Ws[1:]])
        impls["torch"] = lambda: tg(tW1, th0, trest)
    fwd = {k: impls.pop(k) for k in ("ours_fwd", "numpy_fwd")}
    times = run_impls(row, name, impls, ref, repeats, extra=fwd,
                      pairs=(("ours", "ours_fwd"), ("numpy", "numpy_fwd")))
    r = times.ratio("ours", "ours_fwd")
    row.cells["ours"] = f"grad {fmt_time(times['ours'])}, fwd {fmt_time(times['ours_fwd'])}"
    row.cells["numpy"] = (f"grad {fmt_time(times['numpy'])}, "
                          f"fwd {fmt_time(times['numpy_fwd'])}")
    row.ratio = f"{r:.2f} (grad/fwd)"
    row.met = r <= 3.0 and "ours" not in row.bad
    NOTES.append(f"row 7: NumPy hand backprop grad/fwd = "
                 f"{times.ratio('numpy', 'numpy_fwd'):.2f}; ours grad / NumPy grad = "
                 f"{times['ours'] / times['numpy']:.2f}; ours fwd / NumPy fwd = "
                 f"{times['ours_fwd'] / times['numpy_fwd']:.2f} (ratios of medians)")
    ROWS.append(row)


def w8_symbolic(rng, repeats):
    sizes = (25, 50, 100, 200)
    batch, width = 2, 3
    detail = []
    per_stmt = {}
    for n in sizes:
        src = chain_src(n)
        arrays = chain_arrays(rng, n, batch, width)
        parse_t, derive_t, eval_t, total = [], [], [], []
        out = None
        for _ in range(repeats):
            gc.collect()
            t0 = time.perf_counter()
            tc.compile(src)
            t1 = time.perf_counter()
            g = tc.grad(src, "W1")  # parses again: the whole symbolic pipeline
            t2 = time.perf_counter()
            out = g(**arrays)
            t3 = time.perf_counter()
            parse_t.append(t1 - t0)
            derive_t.append(t2 - t1)
            eval_t.append(t3 - t2)
            total.append(t3 - t1)
        name = f"8. symbolic: tc.grad(chain N={n}, 'W1') + first eval ({batch}×{width})"
        goal = {50: "< 1 s", 200: "per stmt ≤ 2× N=50's"}.get(n, "(info)")
        row = Row(name, goal)
        # reference: NumPy backprop on the small arrays
        hs = [arrays["h0"]]
        for k in range(1, n + 1):
            hs.append(np.tanh(hs[-1] @ arrays[f"W{k}"]))
        gr = 2 * hs[-1]
        for k in range(n, 0, -1):
            gz = gr * (1 - hs[k] * hs[k])
            if k == 1:
                ref = hs[0].T @ gz
            else:
                gr = gz @ arrays[f"W{k}"].T
        if not check(name, "ours", out, ref):
            row.bad.append("ours")
        t = statistics.median(total)
        per_stmt[n] = t / n
        row.cells["ours"] = f"{fmt_time(t)} ({fmt_time(t / n)}/stmt)"
        if jax is not None and n in (50, 200):
            def jloss(W1, h0, rest):
                h = jnp.tanh(h0 @ W1)
                for W in rest:
                    h = jnp.tanh(h @ W)
                return jnp.sum(h * h)
            Ws = [jnp.asarray(arrays[f"W{k}"]) for k in range(1, n + 1)]
            t0 = time.perf_counter()
            jout = jax.jit(jax.grad(jloss))(Ws[0], jnp.asarray(arrays["h0"]), Ws[1:])
            jout.block_until_ready()
            tj = time.perf_counter() - t0
            if not check(name, "jax", jout, ref):
                row.bad.append("jax")
            row.cells["jax"] = f"{fmt_time(tj)} (trace+compile, once)"
        if n == 50:
            row.met = t < 1.0 and "ours" not in row.bad
        if n == 200:
            growth = per_stmt[200] / per_stmt[50]
            row.ratio = f"{growth:.2f} (per-stmt vs N=50)"
            row.met = growth <= 2.0 and "ours" not in row.bad
        ROWS.append(row)
        detail.append((n, statistics.median(parse_t), statistics.median(derive_t),
                       statistics.median(eval_t), t))
    NOTES.append("row 8 breakdown (median): N | tc.compile (parse+lower) | tc.grad (parse+derive"
                 "+simplify) | first evaluation (plan+run) | grad+eval per statement\n" + "\n".join(
                     f"    {n:4d} | {fmt_time(p)} | {fmt_time(d)} | {fmt_time(e)} | "
                     f"{fmt_time(t / n)}" for n, p, d, e, t in detail))


# --------------------------------------------------------------------------------------


def print_table() -> None:
    head = ["workload", "tensorcalc", "NumPy formula", "jax.jit", "torch.func",
            "ours/NumPy", "goal", "met?"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in ROWS:
        cells = [r.workload, r.cells["ours"], r.cells["numpy"], r.cells["jax"],
                 r.cells["torch"], r.ratio, r.goal, r.met_cell()]
        print("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, torch and XLA (default: the libraries' own); "
                             "--threads 1 is steadier on a shared machine")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    t_start = time.perf_counter()
    cpu_start = cpu_snapshot()
    describe_machine()
    rng = np.random.default_rng(0)
    steps = [
        ("1", lambda: w1_logreg(rng, repeats)),
        ("2", lambda: w2_least_squares(rng, repeats)),
    ]
    for label, step in steps:
        run_step(label, step)
    mlp = run_step("3", lambda: w3_mlp(rng, repeats))
    run_step("4", lambda: w4_sigmoid(rng, repeats))
    run_step("5", lambda: w5_small(rng, repeats))
    if mlp is not None:
        run_step("6", lambda: w6_first_call(rng, repeats, *mlp))
    run_step("7", lambda: w7_reverse_cost(rng, repeats))
    run_step("8", lambda: w8_symbolic(rng, 1 if args.quick else 3))

    print(f"## Results ({'quick, ' if args.quick else ''}times: median of {repeats} repeats; "
          f"ratios: median of the per-repeat ratios of back-to-back runs; float64; "
          f"every result checked against the NumPy formula, rtol {RTOL:g})\n")
    print_table()
    print()
    for note in NOTES:
        print(f"- {note}")
    goals = [r for r in ROWS if r.met is not None]
    met = sum(1 for r in goals if r.met)
    missed = [r.workload.split(" ")[0].rstrip(".") for r in goals if not r.met]
    print(f"- total benchmark time {time.perf_counter() - t_start:.0f} s; "
          f"{others_text(cpu_start)}")
    if ERRORS:
        print(f"\n!!! {len(ERRORS)} ERROR(S): " + " / ".join(ERRORS))
    print(f"\nSUMMARY: {met} of {len(goals)} goals met"
          + (f" (missed: {', '.join(missed)})" if missed else "")
          + (f"; {len(ERRORS)} error(s)" if ERRORS else ""))
    return 1 if ERRORS else 0


def run_step(label: str, step: Callable[[], Any]) -> Any:
    print(f"running workload {label} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    first_row = len(ROWS)
    cpu0 = cpu_snapshot()
    try:
        out = step()
        share = others_share(cpu0)
        if share is not None and share > NOISY:
            for row in ROWS[first_row:]:
                row.noisy = share
    except Exception as err:  # noqa: BLE001
        import traceback

        loud(f"workload {label} crashed: {type(err).__name__}: {err}\n"
             + traceback.format_exc())
        row = Row(f"{label}. (crashed)", "")
        row.met_text = "error"
        ROWS.append(row)
        return None
    print(f"  ... {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())

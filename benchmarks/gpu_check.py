"""GPU table: tensorcalc's derivatives on torch CUDA tensors, CuPy arrays and JAX arrays.

    python benchmarks/gpu_check.py                    # on a machine with a GPU
    python benchmarks/gpu_check.py --cpu              # dry run: the same code, small, on CPU
    python benchmarks/gpu_check.py --mlp 4096,784,1024,10 --sigmoid 10000000 --dtype float64

Every workload of the benchmark table that fits on a GPU (MLP gradient, logistic and
least-squares Hessians, compact sigmoid Jacobian, Gaussian NLL gradient, the 2-D
convolution and its two gradients, the embedding gradient) is built once
with tensorcalc and called with arrays of each library that is installed and sees a GPU
(torch, CuPy, JAX; with --cpu: torch and JAX on the CPU, CuPy skipped). Each result is
checked against the hand formula written in the same library (its type, device and dtype
too), then both are timed interleaved (for JAX also ``jax.jit`` of the hand formula),
and a markdown table is printed with the date, the GPU and the library versions. Exits
1 when a value disagrees or a tensorcalc call fails, 0 otherwise (also when no GPU).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the benchmarks package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

# JAX would otherwise take 75% of the GPU's memory at its first array, before torch and
# CuPy have run; set before jax can be imported.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402

import tensorcalc as tc  # noqa: E402
from benchmarks.workloads import (  # noqa: E402
    conv,
    embedding,
    gaussian_nll,
    least_squares_hessian,
    logistic_hessian,
    mlp_gradient,
    sigmoid_jacobian,
)

Arrays = dict[str, Any]

# --------------------------------------------------------------------------- libraries


@dataclass
class Lib:
    """One array library on one device: how to move NumPy data there, its namespace for
    the hand formulas, how to wait for it, and how to tell its arrays."""

    name: str
    version: str
    device: str
    xp: Any
    put: Callable[[np.ndarray], Any]
    sync: Callable[[Any], None]
    native: Callable[[Any], bool]  # an array of this library, on this device
    eye: Callable[[int, Any], Any]
    put_index: Callable[[np.ndarray], Any] = lambda a: a  # an integer array, kept integer
    jit: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    free: Callable[[], None] = lambda: None
    gpu_name: str = ""
    dtype_of: Callable[[Any], str] = lambda a: str(a.dtype).removeprefix("torch.")


def torch_lib(cpu: bool, dtype: str) -> Lib | str:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not cpu and not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    dev = torch.device("cpu" if cpu else "cuda")
    tdtype = getattr(torch, dtype)

    def sync(_: Any) -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def free() -> None:
        if dev.type == "cuda":
            torch.cuda.empty_cache()

    return Lib(
        name="torch", version=torch.__version__, device=str(dev), xp=torch,
        put=lambda a: torch.from_numpy(a).to(device=dev, dtype=tdtype),
        put_index=lambda a: torch.from_numpy(a).to(device=dev),
        sync=sync,
        native=lambda v: isinstance(v, torch.Tensor) and v.device.type == dev.type,
        eye=lambda k, like: torch.eye(k, dtype=like.dtype, device=like.device),
        free=free,
        gpu_name="" if cpu else torch.cuda.get_device_name(0),
    )


def cupy_lib(cpu: bool, dtype: str) -> Lib | str:
    if cpu:
        return "CuPy skipped (--cpu)"
    try:
        import cupy as cp
    except ImportError:
        return "cupy is not installed"
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            return f"cupy {cp.__version__} sees no CUDA device"
        props = cp.cuda.runtime.getDeviceProperties(0)
    except Exception as exc:  # noqa: BLE001 - no driver, no device: nothing to run on
        return f"cupy {cp.__version__} sees no CUDA device ({type(exc).__name__})"
    name = props["name"]
    return Lib(
        name="cupy", version=cp.__version__, device="cuda:0", xp=cp,
        put=lambda a: cp.asarray(a, dtype=dtype),
        put_index=cp.asarray,
        sync=lambda _: cp.cuda.runtime.deviceSynchronize(),
        native=lambda v: isinstance(v, cp.ndarray),
        eye=lambda k, like: cp.eye(k, dtype=like.dtype),
        free=lambda: cp.get_default_memory_pool().free_all_blocks(),
        gpu_name=name.decode() if isinstance(name, bytes) else str(name),
    )


def jax_lib(cpu: bool, dtype: str) -> Lib | str:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return "jax is not installed"
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    # Full float32 matrix products (no TF32), as torch and CuPy do by default, so that
    # values agree to float32 precision and the three libraries do the same arithmetic.
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        device = jax.devices("cpu" if cpu else "gpu")[0]
    except RuntimeError:
        return f"jax {jax.__version__} has no GPU backend"

    def native(v: Any) -> bool:
        return isinstance(v, jax.Array) and v.devices() == {device}

    return Lib(
        name="jax", version=jax.__version__, device=str(device), xp=jnp,
        put=lambda a: jax.device_put(a.astype(dtype), device),
        put_index=lambda a: jax.device_put(a, device),
        sync=lambda v: jax.block_until_ready(v),
        native=native,
        eye=lambda k, like: jnp.eye(k, dtype=like.dtype),
        jit=jax.jit,
        gpu_name="" if cpu else str(getattr(device, "device_kind", device)),
    )


# --------------------------------------------------------------------------- workloads
# The hand formulas, written once for any of the three namespaces (torch, cupy, jnp).


def mlp_hand(xp: Any, X: Any, W: Any, c: Any, V: Any, T: Any) -> Any:
    H = xp.tanh(X @ W + c)
    Hb = (2 * (H @ V - T)) @ V.T
    return X.T @ (Hb * (1 - H * H))


def logistic_hand(xp: Any, X: Any, w: Any, y: Any) -> Any:
    s = 1 / (1 + xp.exp(-(X @ w)))
    return X.T @ (X * (s * (1 - s))[:, None])


def least_squares_hand(xp: Any, X: Any, W: Any, Y: Any, *, eye: Any) -> Any:
    return xp.einsum("pr,qs->pqrs", 2 * X.T @ X, eye)


def sigmoid_hand(xp: Any, x: Any) -> Any:
    s = 1 / (1 + xp.exp(-x))
    return s * (1 - s)


def nll_hand(xp: Any, S: Any, x: Any, mu: Any) -> Any:
    Si = xp.linalg.inv(S)
    v = Si @ (x - mu)
    return 0.5 * (Si - xp.outer(v, v))


def _library(xp: Any) -> str:
    return getattr(xp, "__name__", "").split(".")[0]


def conv_hand(xp: Any, x: Any, W: Any, G: Any) -> Any:
    """The valid 2-D correlation, by the library's own convolution."""
    if _library(xp) == "torch":
        import torch

        return torch.nn.functional.conv2d(x, W)
    import jax

    return jax.lax.conv_general_dilated(x, W, (1, 1), "VALID",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def conv_vjp(xp: Any, x: Any, W: Any, G: Any, wrt: str) -> Any:
    """The convolution's gradient w.r.t. ``wrt`` for the cotangent ``G``: torch's
    ``conv2d_weight``/``conv2d_input``, or ``jax.vjp`` of JAX's convolution."""
    if _library(xp) == "torch":
        import torch

        if wrt == "W":
            return torch.nn.grad.conv2d_weight(x, W.shape, G)
        return torch.nn.grad.conv2d_input(x.shape, W, G)
    import jax

    _, pullback = jax.vjp(lambda x, W: conv_hand(xp, x, W, G), x, W)
    gx, gW = pullback(G)
    return gW if wrt == "W" else gx


def embedding_hand(xp: Any, E: Any, t: Any, G: Any) -> Any:
    """The gradient of ``G[n,j] E[t[n],j]`` w.r.t. ``E``: the rows of ``G`` added into a
    zero table at ``t`` (torch's ``index_add``, JAX's ``.at[].add``, CuPy's
    ``scatter_add``)."""
    lib = _library(xp)
    if lib == "torch":
        return xp.zeros_like(E).index_add_(0, t, G)
    if lib == "jax":
        return xp.zeros_like(E).at[t].add(G)
    import cupyx

    out = xp.zeros_like(E)
    cupyx.scatter_add(out, t, G)
    return out


@dataclass
class Check:
    """One workload: its NumPy data (float64, from the benchmark's own ``setup``), the
    tensorcalc call built once, the hand formula and the tolerance (float32)."""

    key: str
    title: str
    make: Callable[[], Callable[..., Any]]  # builds tensorcalc's call once, no arrays
    setup: Callable[[], dict[str, np.ndarray]]
    hand: Callable[..., Any]
    tol32: float = 1e-3
    needs_eye: int = 0  # the hand formula takes eye=identity of this size
    libs: tuple[str, ...] = ("torch", "cupy", "jax")


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def checks(cpu: bool, mlp: tuple[int, int, int, int], sigmoid_n: int) -> list[Check]:
    b, d, h, o = mlp
    lm, ld = (400, 50) if cpu else (16384, 1024)
    sm, sn, sk = (50, 20, 5) if cpu else (2000, 200, 40)
    nn = 50 if cpu else 2000
    conv_size = {"b": 2, "c": 3, "o": 4, "h": 8, "w": 8, "k": 3, "bits": 64} if cpu \
        else {**conv.SIZE, "bits": 64}
    embed_size = {"v": 1000, "d": 16, "n": 256} if cpu else {"v": 50000, "d": 256, "n": 8192}

    def compact_sigmoid() -> Callable[..., Any]:
        jac = tc.derive(sigmoid_jacobian.SOURCE, "x")
        return lambda **a: jac.evaluate(compact=True, **a).core

    def to_torch_backward() -> Callable[..., Any]:
        layer = tc.to_torch(mlp_gradient.SOURCE)

        def call(**a: Any) -> Any:
            W = a["W"].detach().requires_grad_()
            layer(**{**a, "W": W}).backward()
            return W.grad

        return call

    def to_jax_grad() -> Callable[..., Any]:
        import jax

        f = tc.to_jax(mlp_gradient.SOURCE)
        g = jax.grad(lambda W, a: f(**{**a, "W": W}))
        return lambda **a: g(a["W"], a)

    mlp_size = {"b": b, "d": d, "h": h, "o": o}
    conv_label = (f"batch {conv_size['b']}, {conv_size['c']}→{conv_size['o']} channels, "
                  f"{conv_size['h']}×{conv_size['w']}, 3×3")

    def _without_g(source: str) -> Callable[..., Any]:
        forward = tc.compile(source)
        return lambda **a: forward(x=a["x"], W=a["W"])
    return [
        Check("3", f"MLP gradient wrt W, {b}×{d}→{h}→{o}",
              lambda: tc.grad(mlp_gradient.SOURCE, "W"),
              lambda: mlp_gradient.setup(rng(), mlp_size), mlp_hand),
        Check("3t", "  the same through tc.to_torch, .backward()", to_torch_backward,
              lambda: mlp_gradient.setup(rng(), mlp_size), mlp_hand, libs=("torch",)),
        Check("3j", "  the same through tc.to_jax, jax.grad", to_jax_grad,
              lambda: mlp_gradient.setup(rng(), mlp_size), mlp_hand, libs=("jax",)),
        Check("1", f"logistic Hessian wrt w, X {lm}×{ld}",
              lambda: tc.hessian(logistic_hessian.SOURCE, "w"),
              lambda: logistic_hessian.setup(rng(), {"m": lm, "d": ld}), logistic_hand),
        Check("2", f"least-squares Hessian wrt W, dense (m={sm}, n={sn}, k={sk}: "
                   f"{(sn * sk) ** 2:,} elements)",
              lambda: tc.hessian(least_squares_hessian.SOURCE, "W"),
              lambda: least_squares_hessian.setup(rng(), {"m": sm, "n": sn, "k": sk}),
              least_squares_hand, needs_eye=sk),
        Check("4b", f"sigmoid Jacobian, compact core, n={sigmoid_n:,}", compact_sigmoid,
              lambda: sigmoid_jacobian.setup(rng(), {"n": sigmoid_n}), sigmoid_hand),
        Check("9", f"Gaussian NLL gradient wrt S, n={nn}",
              lambda: tc.grad(gaussian_nll.SOURCE, "S"),
              lambda: gaussian_nll.setup(rng(), {"n": nn}), nll_hand, tol32=2e-3),
        Check("15", f"2-D convolution, {conv_label}", lambda: _without_g(conv.FORWARD),
              lambda: conv.setup(rng(), conv_size), conv_hand, libs=("torch", "jax")),
        Check("16", "  its gradient wrt the kernel W", lambda: tc.grad(conv.LOSS, "W"),
              lambda: conv.setup(rng(), conv_size),
              lambda xp, **a: conv_vjp(xp, **a, wrt="W"), libs=("torch", "jax")),
        Check("17", "  its gradient wrt the input x", lambda: tc.grad(conv.LOSS, "x"),
              lambda: conv.setup(rng(), conv_size),
              lambda xp, **a: conv_vjp(xp, **a, wrt="x"), libs=("torch", "jax")),
        Check("18", f"embedding gradient wrt E, table {embed_size['v']:,}×{embed_size['d']}, "
                    f"{embed_size['n']:,} lookups", lambda: tc.grad(embedding.SOURCE, "E"),
              lambda: embedding.setup(rng(), embed_size), embedding_hand),
    ]


# --------------------------------------------------------------------------- measuring


def timed(calls: dict[str, Callable[[], Any]], sync: Callable[[Any], None],
          rounds: int = 5, budget: float = 0.05) -> dict[str, list[float]]:
    """Per-call seconds of each call, ``rounds`` times, interleaved: in each round every
    call runs as many times as fill about ``budget`` seconds (measured once first)."""
    number = {}
    for k, f in calls.items():
        sync(f())
        start = time.perf_counter()
        sync(f())
        once = time.perf_counter() - start
        number[k] = max(1, min(1000, int(budget / max(once, 1e-7))))
    out: dict[str, list[float]] = {k: [] for k in calls}
    for r in range(rounds):
        order = list(calls)[r % len(calls):] + list(calls)[:r % len(calls)]
        for k in order:
            f, n = calls[k], number[k]
            start = time.perf_counter()
            for _ in range(n):
                v = f()
            sync(v)
            out[k].append((time.perf_counter() - start) / n)
    return out


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass
class Report:
    rows: list[list[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_check(c: Check, lib: Lib, data: dict[str, np.ndarray], dtype: str,
              report: Report) -> None:
    label = f"{c.key} {c.title}"
    tol = c.tol32 if dtype == "float32" else 1e-9
    try:
        arrays = {k: lib.put(v) if v.dtype.kind == "f" else lib.put_index(v)
                  for k, v in data.items()}
        extra = {"eye": lib.eye(c.needs_eye, next(iter(arrays.values())))} if c.needs_eye else {}

        def hand(**a: Any) -> Any:
            return c.hand(lib.xp, **a, **extra)

        ours_fn = c.make()
        ours = ours_fn(**arrays)
        want = hand(**arrays)
        lib.sync(ours)
        lib.sync(want)
        problems = []
        if not lib.native(ours):
            problems.append(f"result is {type(ours).__module__}.{type(ours).__name__}, "
                            f"not a {lib.name} array on {lib.device}")
        elif lib.dtype_of(ours) != dtype:
            problems.append(f"result dtype {lib.dtype_of(ours)}, not {dtype}")
        if tuple(ours.shape) != tuple(want.shape):
            problems.append(f"shape {tuple(ours.shape)}, expected {tuple(want.shape)}")
            err = float("nan")
        else:
            got_np, want_np = to_numpy(ours), to_numpy(want)
            err = float(np.max(np.abs(got_np - want_np)) / max(np.max(np.abs(want_np)), 1e-30))
            if not err <= tol:
                problems.append(f"relative error {err:.2e} > {tol:.0e}")
        calls = {"ours": lambda: ours_fn(**arrays), "hand": lambda: hand(**arrays)}
        if lib.jit is not None:
            jitted = lib.jit(hand)
            jit_want = jitted(**arrays)
            lib.sync(jit_want)
            jerr = float(np.max(np.abs(to_numpy(jit_want) - to_numpy(want)))
                         / max(float(np.max(np.abs(to_numpy(want)))), 1e-30))
            if not jerr <= tol:  # the peer itself is off: say so, not our failure
                report.notes.append(f"{label} [{lib.name}]: jax.jit(hand) differs from the "
                                    f"eager hand formula by {jerr:.2e}")
            calls["jit"] = lambda: jitted(**arrays)
        ok = not problems
        if not ok:
            report.failures.append(f"{label} [{lib.name}]: " + "; ".join(problems))
        times = timed(calls, lib.sync)
        t = {k: statistics.median(v) for k, v in times.items()}
        row = [label, lib.name, f"{err:.1e} {'ok' if ok else '✗ DISAGREE'}",
               ms(t["ours"]), ms(t["hand"]), f"{ratio(times, 'ours', 'hand'):.2f}"]
        row += ([ms(t["jit"]), f"{ratio(times, 'ours', 'jit'):.2f}"] if "jit" in t
                else ["", ""])
        report.rows.append(row)
    except Exception as exc:  # noqa: BLE001 - a failing path is a result, reported
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        report.failures.append(f"{label} [{lib.name}]: raised {detail}")
        report.rows.append([label, lib.name, f"✗ ERROR: {detail[:80]}", "", "", "", "", ""])
        traceback.print_exc(file=sys.stderr)
    finally:
        lib.free()


def to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return np.asarray(a.get(), dtype=np.float64)
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true",
                   help="dry run on the CPU at small sizes (torch and JAX; CuPy skipped)")
    p.add_argument("--mlp", default=None, metavar="B,D,H,O",
                   help="MLP batch and widths (default 8192,784,1024,10; --cpu 256,64,32,10)")
    p.add_argument("--sigmoid", type=int, default=None, metavar="N",
                   help="compact sigmoid Jacobian's n (default 10**8; --cpu 10**6)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    mlp = tuple(int(x) for x in (args.mlp or ("256,64,32,10" if args.cpu
                                              else "8192,784,1024,10")).split(","))
    if len(mlp) != 4:
        raise SystemExit("--mlp takes four sizes: B,D,H,O")
    sigmoid_n = args.sigmoid or (10**6 if args.cpu else 10**8)

    libs: list[Lib] = []
    skipped: list[str] = []
    for make in (torch_lib, cupy_lib, jax_lib):
        lib = make(args.cpu, args.dtype)
        (libs.append(lib) if isinstance(lib, Lib) else skipped.append(lib))
    gpu = next((lib.gpu_name for lib in libs if lib.gpu_name), "")
    if not libs:
        print("no library with a GPU: nothing to check (--cpu runs the same checks on the "
              "CPU).\n" + "\n".join(f"- {s}" for s in skipped))
        return 0

    report = Report()
    for c in checks(args.cpu, mlp, sigmoid_n):  # type: ignore[arg-type]
        data = c.setup()
        for lib in libs:
            if lib.name in c.libs:
                run_check(c, lib, data, args.dtype, report)
        del data

    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    where = gpu or f"CPU (dry run, --cpu): {platform.processor() or platform.machine()}"
    print(f"# tensorcalc GPU table, {today}\n")
    print(f"- device: {where}")
    print(f"- {args.dtype}; tensorcalc {tc.__version__}, NumPy {np.__version__}, "
          + ", ".join(f"{lib.name} {lib.version} ({lib.device})" for lib in libs))
    for s in skipped:
        print(f"- {s}")
    print("- ours: the derivative built once with tensorcalc, called with the library's "
          "arrays; hand: the formula written by hand in that library (eager); jax.jit: "
          "`jax.jit` of that hand formula (JAX matmul precision 'highest'); times are "
          "medians of 5 interleaved rounds; ratios are medians of per-round ratios\n")
    head = ["workload", "library", "rel. error vs hand", "ours", "hand", "ours/hand",
            "jax.jit(hand)", "ours/jit"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in report.rows:
        print("| " + " | ".join(row) + " |")
    for note in report.notes:
        print(f"\nnote: {note}")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    if report.failures:
        print("\n!!! ERROR: " + "\n!!! ERROR: ".join(report.failures))
        return 1
    print("all values agree with the hand formulas")
    return 0


if __name__ == "__main__":
    sys.exit(main())

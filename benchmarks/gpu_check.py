"""GPU check: tensorcalc on torch CUDA tensors (evaluation, gradient, to_torch backward).

Run where a CUDA GPU is available:  python benchmarks/gpu_check.py
It prints the device, the largest difference from torch's own autograd for each
check, and timings; it exits 1 if a value disagrees, 0 otherwise (also when no GPU).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the benchmarks package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import tensorcalc as tc  # noqa: E402
from benchmarks.workloads.mlp_gradient import SOURCE as MLP  # noqa: E402
from benchmarks.workloads.sigmoid_jacobian import SOURCE as SIGMOID  # noqa: E402


def timed(fn: Callable[[], Any], sync: Callable[[], Any],
          repeats: int = 20) -> tuple[Any, float]:
    value = fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        value = fn()
    sync()
    return value, (time.perf_counter() - start) / repeats


def main() -> int:
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to check")
        return 0
    if "--cpu" in sys.argv:  # a dry run of the same checks, to test this script anywhere
        dev, sync = torch.device("cpu"), (lambda: None)
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check (--cpu runs the same checks on the CPU)")
        return 0
    else:
        dev, sync = torch.device("cuda"), torch.cuda.synchronize
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "CPU (dry run)"
    print(f"device: {name}; torch {torch.__version__}; "
          f"tensorcalc {tc.__version__}")
    torch.manual_seed(0)
    n, d, h = (4096, 784, 1024) if dev.type == "cuda" else (256, 64, 32)
    shapes = {"X": (n, d), "W": (d, h), "c": (h,), "V": (h, 10), "T": (n, 10)}
    failures = 0
    for dtype, tol in ((torch.float32, 1e-3), (torch.float64, 1e-10)):
        failures += check(torch, dev, sync, shapes, dtype, tol)
    return 1 if failures else 0


def check(torch: Any, dev: Any, sync: Callable[[], Any], shapes: dict[str, tuple[int, ...]],
          dtype: Any, tol: float) -> int:
    """One dtype: every check, printed; the number that disagree."""
    failures = 0
    a = {k: torch.randn(*s, device=dev, dtype=dtype) * 0.05 for k, s in shapes.items()}

    def reference(X: Any, W: Any, c: Any, V: Any, T: Any) -> Any:
        return ((torch.tanh(X @ W + c) @ V - T) ** 2).sum()

    loss = tc.compile(MLP)
    ours, t_ours = timed(lambda: loss(**a), sync)
    theirs, t_theirs = timed(lambda: reference(**a), sync)
    rows = [("evaluate", ours, theirs, t_ours, t_theirs)]

    grad = tc.grad(MLP, "W")
    g_ours, t_g = timed(lambda: grad(**a), sync)

    def autograd() -> Any:
        W = a["W"].detach().requires_grad_()
        reference(**{**a, "W": W}).backward()
        return W.grad

    g_theirs, t_auto = timed(autograd, sync)
    rows.append(("gradient dL/dW", g_ours, g_theirs, t_g, t_auto))

    layer = tc.to_torch(MLP)

    def through_to_torch() -> Any:
        W = a["W"].detach().requires_grad_()
        layer(**{**a, "W": W}).backward()
        return W.grad

    b_ours, t_b = timed(through_to_torch, sync)
    rows.append(("to_torch backward", b_ours, g_theirs, t_b, t_auto))

    jac = tc.derive(SIGMOID, "x")
    x = torch.randn(1_000_000, device=dev, dtype=dtype)
    core, t_c = timed(lambda: jac.evaluate(compact=True, x=x).core, sync)
    s = torch.sigmoid(x)
    rows.append(("compact sigmoid Jacobian n=1e6", core, s * (1 - s), t_c, float("nan")))

    for name, got, want, t1, t2 in rows:
        assert isinstance(got, torch.Tensor) and got.device.type == dev.type, name
        err = float((got - want).abs().max() / max(1.0, float(want.abs().max())))
        ok = err <= tol
        failures += not ok
        print(f"{str(dtype):14} {name:32} rel. error {err:.2e} {'ok' if ok else 'DISAGREE'}"
              f"   tensorcalc {t1 * 1e3:8.3f} ms   torch {t2 * 1e3:8.3f} ms")
    return failures


if __name__ == "__main__":
    sys.exit(main())

"""Rows 15, 16 and 17: a 2-D convolution written with index arithmetic (docs/index-arithmetic.md),
``y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]`` ("valid": i runs over H-K+1), in float32:
its forward pass (15), and for the loss ``L = G[b,o,i,j] y[b,o,i,j]`` with a fixed
cotangent ``G`` the gradient w.r.t. the kernel ``W`` (16, conv2d's weight gradient) and
w.r.t. the input ``x`` (17, a full correlation).

Each row carries two goals, judged on the same interleaved timings: tensorcalc within
1.2× of the best straightforward NumPy (sliding windows + one optimized ``einsum``, or a
``tensordot`` and nine shifted adds for the input gradient: the "NumPy formula") and within
2× of PyTorch on the same CPU (``torch.nn.functional.conv2d``; for the gradients, torch
autograd's backward of conv2d alone: the graph is built once and
``torch.autograd.grad(y, W, G, retain_graph=True)`` is timed, so torch pays no forward).

The arrays are float32 at the benchmark size (``bits=32``; every result must be float32
and within ``RTOL32`` of the NumPy formula relative to its largest entry) and float64 at
the tiny size that ``tests/end_to_end/test_benchmarks.py`` checks (``bits=64``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, bench, fmt_time, to_numpy
from benchmarks.spec import Arrays, Call, Context, Workload, derivative

FORWARD = "y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]"
LOSS = "y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]; L = G[b,o,i,j] y[b,o,i,j]"

#: max |ours - NumPy| / max |NumPy| allowed in float32 (sums of 576 to 28,800 products).
RTOL32 = 1e-4
#: The benchmark size: batch 32, 64→64 channels, 3×3 kernel, 32×32 images, float32.
SIZE = {"b": 32, "c": 64, "o": 64, "h": 32, "w": 32, "k": 3, "bits": 32}
#: The tiny size of the tests, in float64 (non-square images, c ≠ o).
TINY = {"b": 2, "c": 3, "o": 4, "h": 6, "w": 5, "k": 3, "bits": 64}
TITLE = ("{b}×{c}×{h}×{w} → {o} channels, {k}×{k} kernel, float{bits}")


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    """Images ``x``, a kernel ``W`` scaled so that ``y`` is of order 1, the cotangent
    ``G`` of the output."""
    b, c, o, h, w, k = (size[n] for n in ("b", "c", "o", "h", "w", "k"))
    dtype = np.float32 if size["bits"] == 32 else np.float64
    x = rng.standard_normal((b, c, h, w))
    W = rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)
    G = rng.standard_normal((b, o, h - k + 1, w - k + 1))
    return {"x": x.astype(dtype), "W": W.astype(dtype), "G": G.astype(dtype)}


def windows(x: np.ndarray, k: int) -> np.ndarray:
    """The (b, c, i, j, a, e) view of every k×k window of ``x`` (im2col, no copy)."""
    return sliding_window_view(x, (k, k), axis=(2, 3))


def forward(x: np.ndarray, W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """im2col + one matrix product: einsum's optimized path hands the window view to
    BLAS (the fastest of the straightforward NumPy forms measured here)."""
    return np.einsum("bcijae,ocae->boij", windows(x, W.shape[2]), W, optimize=True)


def kernel_gradient(x: np.ndarray, W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``W_bar[o,c,a,e] = G[b,o,i,j] x[b,c,i+a,j+e]``: the same window view, one
    contraction over b, i, j."""
    return np.einsum("boij,bcijae->ocae", G, windows(x, W.shape[2]), optimize=True)


def input_gradient(x: np.ndarray, W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``x_bar[b,c,p,q] = G[b,o,i,j] W[o,c,p-i,q-j]``, col2im: one ``tensordot`` over
    ``o`` to the (c, a, e, b, i, j) columns, then k² shifted adds."""
    k = W.shape[2]
    _, _, p, q = G.shape
    cols = np.tensordot(W, G, axes=([0], [1]))
    out = np.zeros((x.shape[1], x.shape[0], x.shape[2], x.shape[3]), dtype=x.dtype)
    for a in range(k):
        for e in range(k):
            out[:, :, a:a + p, e:e + q] += cols[:, a, e]
    return out.transpose(1, 0, 2, 3)


def program_forward(arrays: Arrays) -> Call:
    p = tc.compile(FORWARD)
    return lambda: p(x=arrays["x"], W=arrays["W"])


def torch_forward(arrays: Arrays) -> Call:
    torch = peers.torch()
    t = peers.to_torch(arrays)
    conv2d = torch.nn.functional.conv2d
    return lambda: conv2d(t["x"], t["W"])


def torch_backward(wrt: str) -> Callable[[Arrays], Call]:
    """torch autograd's backward of conv2d w.r.t. ``wrt`` alone: the forward graph is
    built once, and each call runs ``torch.autograd.grad(y, wrt, G)``."""

    def build(arrays: Arrays) -> Call:
        torch = peers.torch()
        t = peers.to_torch(arrays)
        leaf = t[wrt].clone().requires_grad_(True)
        inputs = {**t, wrt: leaf}
        y = torch.nn.functional.conv2d(inputs["x"], inputs["W"])
        G = t["G"]
        return lambda: torch.autograd.grad(y, leaf, G, retain_graph=True)[0]

    return build


# --------------------------------------------------------------------------------------
# measurement: float32 checks, then ours / NumPy and ours / torch from the same timings


def difference(got: Any, ref: np.ndarray) -> str | None:
    """None when ``got`` has the reference's shape and dtype and is within ``RTOL32``
    of it (max |difference| / max |reference|, float32 rounding of long sums)."""
    got = to_numpy(got)
    if got.shape != ref.shape:
        return f"shape {got.shape} differs from the NumPy formula's {ref.shape}"
    if got.dtype != ref.dtype:
        return f"dtype {got.dtype}, expected {ref.dtype}"
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) / scale
    if not err <= RTOL32:
        return (f"result differs from the NumPy formula (max abs error / max |ref| = "
                f"{err:.3g}, allowed {RTOL32:g})")
    return None


def checked_timings(w: Workload, ctx: Context, row: Row,
                    pair: tuple[str, str] = ("ours", "numpy")) -> dict[str, float]:
    """Every implementation run once and checked against the NumPy formula (dtype and
    ``RTOL32``), then all timed interleaved, the two of ``pair`` back to back; the cells
    filled. The NumPy formula is timed only where it is one of the pair: BLAS's threads
    spin on after it returns, slowing whatever torch runs next on a small machine."""
    arrays = w.arrays()
    impls: dict[str, Call] = {"ours": w.program(arrays)}
    if "numpy" in pair:
        impls["numpy"] = lambda: w.reference(**arrays)
    impls.update(ctx.peer_calls(w, arrays, row))
    ref = w.expected(arrays)
    ready: dict[str, Call] = {}
    for k, fn in impls.items():
        try:
            out = fn()
        except Exception as err:  # noqa: BLE001
            ctx.report.loud(f"[{row.workload}] {k} raised {type(err).__name__}: {err}")
            row.cells[k] = "error"
            row.bad.append(k)
            continue
        problem = difference(out, ref)
        if problem is not None:
            ctx.report.loud(f"[{row.workload}] {k}: {problem}")
            row.bad.append(k)
        ready[k] = fn
        del out
    times = bench(ready, ctx.repeats, w.target, (pair,))
    for k, t in times.items():
        row.cells[k] = fmt_time(t) + (" ✗" if k in row.bad else "")
    return times


def measure_two_goals(w: Workload, ctx: Context) -> None:
    """One row, two goals on the same timings: ours / NumPy (``w.goals[0]``) and
    ours / torch (``w.goals[1]``). The goal cell states both, the verdict cell says which
    was met; the row counts as met in the summary only when both are (a miss is named
    there with the goal it missed). Without torch the torch goal reads
    "(torch not installed)" and the row is judged on NumPy alone."""
    numpy_goal, torch_goal = w.goals
    row = Row(w.key, w.label())
    times: Any = checked_timings(w, ctx, row)
    ours_ok = "ours" not in row.bad
    verdicts: list[str] = []
    ratios: list[str] = []
    missed: list[str] = []
    for goal, other in ((numpy_goal, "numpy"), (torch_goal, "torch")):
        if other == "torch" and not peers.available("torch"):
            verdicts.append(f"{goal.label}: (torch not installed)")
            continue
        if "ours" in times and other in times and other not in row.bad:
            value = times.ratio("ours", other)
            met = goal.met(value, w.size) and ours_ok
            ratios.append(f"{value:.2f}" if other == "numpy" else f"{value:.2f} (ours/torch)")
        else:
            met = False
            ratios.append("—" if other == "numpy" else "— (ours/torch)")
        verdicts.append(f"{goal.label}: {'yes' if met else '**NO**'}")
        if not met:
            missed.append(goal.label)
    row.ratio = "; ".join(ratios)
    row.goal = "; ".join(g.text(w.size) for g in w.goals)
    row.met = not missed
    row.met_text = "; ".join(verdicts)
    if missed:
        row.name = f"{w.key} ({', '.join(missed)})"
    ctx.report.rows.append(row)


def measure_on_torch(w: Workload, ctx: Context) -> None:
    """Rows 15t-17t: tensorcalc called with torch tensors (its terms run as torch's own
    convolution and convolution backward) against torch on the same tensors, timed back
    to back; ours / torch judged. Without torch the row says so and counts for nothing."""
    row = Row(w.key, w.label(), w.goal.text(w.size))
    if not peers.available("torch"):
        row.met_text = "(torch not installed)"
        ctx.report.rows.append(row)
        return
    times: Any = checked_timings(w, ctx, row, ("ours", "torch"))
    if row.bad:
        row.met = False
    else:
        row.judge_pair(times, "torch", w.goal, w.size)
    ctx.report.rows.append(row)


def on_torch(program: Callable[[Arrays], Call]) -> Callable[[Arrays], Call]:
    """The same tensorcalc program, called with torch tensors on the CPU."""
    return lambda arrays: program(peers.to_torch(arrays))


#: The rows whose tensorcalc side itself needs torch.
TORCH_KEYS = ("15t", "16t", "17t")
#: Rows 15t-17t: tensorcalc on torch tensors against torch itself (the GPU table's bound).
TORCH_GOAL = Goal("tensorcalc time / torch time, the same torch tensors, same run", 1.15,
                  label="ours/torch")


def goals() -> tuple[Goal, Goal]:
    return (Goal("tensorcalc time / NumPy formula time (im2col + matmul)", 1.2,
                 label="ours/NumPy"),
            Goal("tensorcalc time / torch time (conv2d; its autograd backward), same "
                 "machine, same run", 2.0, label="ours/torch"))


WORKLOADS = (
    Workload(
        key="15",
        title="2-D convolution forward y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e], " + TITLE
              + " (torch: conv2d)",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=program_forward,
        reference=forward,
        peers={"torch": torch_forward},
        goals=goals(),
        measure=measure_two_goals,
    ),
    Workload(
        key="16",
        title="conv gradient wrt the kernel W of L = G[b,o,i,j] y[b,o,i,j], " + TITLE
              + " (torch: autograd backward of conv2d)",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.grad, LOSS, "W"),
        reference=kernel_gradient,
        peers={"torch": torch_backward("W")},
        goals=goals(),
        measure=measure_two_goals,
    ),
    Workload(
        key="17",
        title="conv gradient wrt the input x (full correlation), " + TITLE
              + " (torch: autograd backward of conv2d)",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=derivative(tc.grad, LOSS, "x"),
        reference=input_gradient,
        peers={"torch": torch_backward("x")},
        goals=goals(),
        measure=measure_two_goals,
    ),
    Workload(
        key="15t",
        title="  row 15 on torch CPU tensors: tensorcalc runs torch's conv2d",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=on_torch(program_forward),
        reference=forward,
        peers={"torch": torch_forward},
        goals=(TORCH_GOAL,),
        measure=measure_on_torch,
    ),
    Workload(
        key="16t",
        title="  row 16 on torch CPU tensors: tensorcalc runs torch's convolution backward",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=on_torch(derivative(tc.grad, LOSS, "W")),
        reference=kernel_gradient,
        peers={"torch": torch_backward("W")},
        goals=(TORCH_GOAL,),
        measure=measure_on_torch,
    ),
    Workload(
        key="17t",
        title="  row 17 on torch CPU tensors: tensorcalc runs torch's convolution backward",
        size=SIZE,
        tiny=TINY,
        setup=setup,
        program=on_torch(derivative(tc.grad, LOSS, "x")),
        reference=input_gradient,
        peers={"torch": torch_backward("x")},
        goals=(TORCH_GOAL,),
        measure=measure_on_torch,
    ),
)

"""Rows 14 and 14b: tensorcalc inside PyTorch's autograd, through ``tc.to_torch``, timed
against the same computation written in plain torch.

* Row 14: one Adam training step of row 3's MLP (512×784→256→10), float32 tensors on the
  CPU: zero the grads, ``f(X=X, W=W, c=c, V=V, T=T).backward()`` with
  ``f = tc.to_torch(MLP)``, ``optimizer.step()`` on ``W``, ``c``, ``V``; against the step
  with the loss ``((torch.tanh(X @ W + c) @ V - T) ** 2).sum()``. One step of each from
  the same initial parameters must give the same parameters (float32, rtol 1e-4, atol 1e-4
  times the largest parameter), and both must match the NumPy formula's step in float64,
  before anything is timed; the timed calls then keep training. Adam's ``eps`` is 1e-3 (see
  ``EPS``) so that this check is well posed in float32.
* Row 14b: a Hessian-vector product w.r.t. ``W`` by double backward
  (``torch.autograd.grad(..., create_graph=True)``, then ``torch.autograd.grad((g * v)
  .sum(), W)``), float64, through ``tc.to_torch(MLP)`` against plain torch; both are
  checked against the NumPy formula (timed too, shown for scale).

Both rows run torch on one thread (``torch.set_num_threads(1)``, restored after); the
ratio judged is tensorcalc's time over torch's, the two timed back to back. Without
torch the rows say so and count for nothing.

The workloads' ``program`` and ``reference`` work in the arrays' dtype (float64 in
``tests/end_to_end/test_benchmarks.py``, where row 14's step is checked against a NumPy Adam step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, bench, fmt_time, to_numpy
from benchmarks.spec import Arrays, Call, Context, Workload
from benchmarks.workloads import mlp_gradient

#: The rows that need torch for tensorcalc's side too.
KEYS = ("14", "14b")

PARAMS = ("W", "c", "V")
LR = 1e-3
BETAS = (0.9, 0.999)
# Adam's first step from zero moments is ``lr g / (|g| + eps)``: with the usual eps=1e-8 it
# is ``lr sign(g)``, which float32 rounding flips for gradient entries near 0 (there are
# entries of 1e-6 here), so that two correct steps can differ by 2 lr. With eps=1e-3 the
# step is smooth in g (an error d in g moves the parameter by at most lr d / eps = d) and
# the check below is well posed; the time of a step does not depend on eps.
EPS = 1e-3
STEP_RTOL = 1e-4  # one float32 Adam step; atol is STEP_RTOL times the largest parameter

# --------------------------------------------------------------------------------------
# row 14: one Adam step


def plain_loss(X: Any, W: Any, c: Any, V: Any, T: Any) -> Any:
    torch = peers.torch()
    return ((torch.tanh(X @ W + c) @ V - T) ** 2).sum()


def adam_step(loss: Callable[..., Any]) -> Callable[[Arrays], Call]:
    """A builder of one Adam step of ``loss`` on fresh parameters (copies of the arrays,
    in their dtype); the call steps and returns the parameters, flattened and joined."""

    def build(arrays: Arrays) -> Call:
        torch = peers.torch()
        t = {k: torch.tensor(np.ascontiguousarray(v)) for k, v in arrays.items()}
        params = [t[k].requires_grad_() for k in PARAMS]
        optimizer = torch.optim.Adam(params, lr=LR, betas=BETAS, eps=EPS)
        keys = ("X", "W", "c", "V", "T")

        def step() -> Any:
            optimizer.zero_grad()
            loss(**{k: t[k] for k in keys}).backward()
            optimizer.step()
            return torch.cat([p.detach().reshape(-1) for p in params])

        return step

    return build


def to_torch_loss() -> Callable[..., Any]:
    """``tc.to_torch(MLP)``, built once per call of the builder (not timed)."""
    f = tc.to_torch(mlp_gradient.SOURCE)
    return lambda **t: f(**t)


def ours_step(arrays: Arrays) -> Call:
    return adam_step(to_torch_loss())(arrays)


torch_step = adam_step(plain_loss)


def gradients(X: np.ndarray, W: np.ndarray, c: np.ndarray, V: np.ndarray,
              T: np.ndarray) -> dict[str, np.ndarray]:
    """Hand backprop of the MLP's squared error w.r.t. ``W``, ``c``, ``V``."""
    H = np.tanh(X @ W + c)
    Pb = 2 * (H @ V - T)
    Zb = (Pb @ V.T) * (1 - H * H)
    return {"W": X.T @ Zb, "c": Zb.sum(axis=0), "V": H.T @ Pb}


def step_reference(X: np.ndarray, W: np.ndarray, c: np.ndarray, V: np.ndarray,
                   T: np.ndarray) -> np.ndarray:
    """One Adam step from zero moments, in NumPy: ``p - lr m̂ / (√v̂ + eps)`` with
    ``m̂ = g``, ``v̂ = g²`` after the bias corrections; the parameters joined."""
    b1, b2 = BETAS
    grads = gradients(X, W, c, V, T)
    out = []
    for name, p in (("W", W), ("c", c), ("V", V)):
        g = grads[name]
        m_hat = (1 - b1) * g / (1 - b1)
        v_hat = (1 - b2) * g * g / (1 - b2)
        out.append((p - LR * m_hat / (np.sqrt(v_hat) + EPS)).reshape(-1))
    return np.concatenate(out)


# --------------------------------------------------------------------------------------
# row 14b: a Hessian-vector product by double backward


def hvp_setup(rng: np.random.Generator, size: Size) -> Arrays:
    arrays = mlp_gradient.setup(rng, size)
    arrays["v"] = rng.standard_normal(arrays["W"].shape)
    return arrays


def double_backward(loss: Callable[..., Any]) -> Callable[[Arrays], Call]:
    """A builder of ``H v`` w.r.t. ``W`` by double backward through ``loss``."""

    def build(arrays: Arrays) -> Call:
        torch = peers.torch()
        t = peers.to_torch(arrays)
        W = t["W"].clone().requires_grad_()

        def hvp() -> Any:
            (g,) = torch.autograd.grad(loss(X=t["X"], W=W, c=t["c"], V=t["V"], T=t["T"]),
                                       W, create_graph=True)
            (hv,) = torch.autograd.grad((g * t["v"]).sum(), W)
            return hv

        return hvp

    return build


def ours_hvp(arrays: Arrays) -> Call:
    return double_backward(to_torch_loss())(arrays)


torch_hvp = double_backward(plain_loss)


def hvp_reference(X: np.ndarray, W: np.ndarray, c: np.ndarray, V: np.ndarray,
                  T: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The directional derivative of row 3's gradient ``Xᵀ((2 R Vᵀ) ∘ (1 - H²))`` along
    ``v``: with ``dH = (1 - H²) ∘ X v``, ``Xᵀ((2 dH V Vᵀ) ∘ (1 - H²) - (2 R Vᵀ) ∘ 2 H dH)``."""
    H = np.tanh(X @ W + c)
    R = H @ V - T
    D = 1 - H * H
    dH = D * (X @ v)
    return X.T @ ((2 * (dH @ V) @ V.T) * D - (2 * R @ V.T) * (2 * H * dH))


# --------------------------------------------------------------------------------------
# measurement


def on_one_thread(body: Callable[[Workload, Context, Row], None]) -> Callable[..., None]:
    """A measure: the row says "(torch not installed)" without torch; otherwise ``body``
    fills it with torch on one thread, the thread count restored after."""

    def measure(w: Workload, ctx: Context) -> None:
        row = Row(w.key, w.label(), w.goal.text(w.size))
        if not peers.available("torch"):
            row.met_text = "(torch not installed)"
            ctx.report.rows.append(row)
            return
        torch = peers.torch()
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            body(w, ctx, row)
        finally:
            torch.set_num_threads(before)
        ctx.report.rows.append(row)

    return measure


def judge(w: Workload, row: Row, times: dict[str, float], ratio: Callable[[], float]) -> None:
    if "ours" in times and "torch" in times:
        value = ratio()
        row.ratio = f"{value:.2f} (ours/torch)"
        row.judge(w.goal, value, w.size)
    else:
        row.met = False


def step_body(w: Workload, ctx: Context, row: Row) -> None:
    """Row 14: float32; one step of each from the same initial parameters compared, then
    both timed back to back (each call one more training step)."""
    arrays = {k: v.astype(np.float32) for k, v in w.arrays().items()}
    steps = {"ours": w.program(arrays), "torch": w.peers["torch"](arrays)}
    firsts: dict[str, np.ndarray] = {}
    for k, fn in steps.items():
        try:
            firsts[k] = to_numpy(fn()).astype(np.float64)
        except Exception as err:  # noqa: BLE001
            ctx.report.loud(f"[{row.workload}] {k} raised {type(err).__name__}: {err}")
            row.cells[k] = "error"
            row.bad.append(k)
    want64 = w.expected(w.arrays())  # the NumPy step in float64
    checks = [("ours", "torch", "plain torch's"), ("ours", None, "the NumPy formula's"),
              ("torch", None, "the NumPy formula's")]
    for k, other, what in checks:
        if k not in firsts or (other is not None and other not in firsts):
            continue
        got = firsts[k]
        want = want64 if other is None else firsts[other]
        atol = STEP_RTOL * float(np.max(np.abs(want)))
        if got.shape != want.shape or not np.allclose(got, want, rtol=STEP_RTOL, atol=atol):
            err = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)
            ctx.report.loud(f"[{row.workload}] {k}: the parameters after one Adam step "
                            f"(float32) differ from {what} (max abs error / max |ref| = "
                            f"{err:.3g}; rtol {STEP_RTOL:g})")
            if k not in row.bad:
                row.bad.append(k)
    ready = {k: fn for k, fn in steps.items() if k in firsts}
    times = bench(ready, ctx.repeats, w.target, pairs=(("ours", "torch"),))
    for k, t in times.items():
        row.cells[k] = fmt_time(t) + (" ✗" if k in row.bad else "")
    judge(w, row, times, lambda: times.ratio("ours", "torch"))


def hvp_body(w: Workload, ctx: Context, row: Row) -> None:
    """Row 14b: float64; ours, torch and the NumPy formula checked against the formula,
    then timed interleaved, ours and torch back to back."""
    arrays = w.arrays()
    impls: dict[str, Call] = {"ours": w.program(arrays),
                              "numpy": lambda: w.reference(**arrays)}
    impls.update(ctx.peer_calls(w, arrays, row))
    times = ctx.report.run_impls(row, impls, w.expected(arrays), ctx.repeats, w.target,
                                 pairs=(("ours", "torch"),))
    judge(w, row, times, lambda: times.ratio("ours", "torch"))


def torch_goal(limit: float) -> Goal:
    return Goal("tensorcalc time / plain torch time, same machine, one thread", limit,
                label="ours/torch")


WORKLOADS = (
    Workload(
        key="14",
        title="one Adam step through tc.to_torch(MLP) vs the plain-torch step (float32, "
              "1 thread, batch {b}, {d}→{h}→{o})",
        size=mlp_gradient.SIZE,
        tiny=mlp_gradient.TINY,
        setup=mlp_gradient.setup,
        program=ours_step,
        reference=step_reference,
        peers={"torch": torch_step},
        goals=(torch_goal(1.15),),
        measure=on_one_thread(step_body),
    ),
    Workload(
        key="14b",
        title="Hessian-vector product wrt W by double backward through tc.to_torch(MLP) "
              "vs plain torch (float64, 1 thread, batch {b}, {d}→{h}→{o})",
        size=mlp_gradient.SIZE,
        tiny=mlp_gradient.TINY,
        setup=hvp_setup,
        program=ours_hvp,
        reference=hvp_reference,
        peers={"torch": torch_hvp},
        goals=(torch_goal(1.5),),
        measure=on_one_thread(hvp_body),
    ),
)

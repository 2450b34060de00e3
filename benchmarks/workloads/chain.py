"""Rows 7 and 8: a chain of N tanh layers, ``h{k}[b,j] = tanh(h{k-1}[b,i] W{k}[i,j])``,
``L = h{N}[b,j]^2``, differentiated w.r.t. the first layer ``W1``.

Row 7 times the gradient against the forward pass (reverse mode should cost a small
multiple of it) at N=20, batch 256, width 128. Row 8 times the symbolic work, ``tc.grad``
from the text plus the first evaluation on tiny arrays, for N = 25, 50, 100, 200, with
three goals: ``tc.grad`` alone at N=50, (grad + first evaluation) at N=50 against jax's
trace + compile + first call of the same gradient (row 8j), and the per-statement growth
from N=50 to N=200."""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any

import numpy as np

import tensorcalc as tc
from benchmarks import peers
from benchmarks.harness import Goal, Row, Size, fmt_time, once
from benchmarks.spec import Arrays, Call, Context, Workload


def source(n: int) -> str:
    lines = [f"h{k}[b,j] = tanh(h{k - 1}[b,i] W{k}[i,j])" for k in range(1, n + 1)]
    return "\n".join(lines + [f"L = h{n}[b,j]^2"])


def setup(rng: np.random.Generator, size: Size) -> Arrays:
    n, batch, width = size["n"], size["batch"], size["width"]
    arrays = {"h0": rng.standard_normal((batch, width))}
    for k in range(1, n + 1):
        arrays[f"W{k}"] = rng.standard_normal((width, width)) * (1.2 / np.sqrt(width))
    return arrays


def layers(weights: dict[str, np.ndarray]) -> list[np.ndarray]:
    """``W1``, ``W2``, ... in order."""
    return [weights[f"W{k}"] for k in range(1, len(weights) + 1)]


def depth(arrays: Arrays) -> int:
    return len(arrays) - 1


def reference(h0: np.ndarray, **weights: np.ndarray) -> np.ndarray:
    """Hand backprop: the gradient of L w.r.t. W1."""
    Ws = layers(weights)
    hs = [h0]
    for W in Ws:
        hs.append(np.tanh(hs[-1] @ W))
    g = 2 * hs[-1]
    for k in range(len(Ws), 0, -1):
        gz = g * (1 - hs[k] * hs[k])
        if k == 1:
            return hs[0].T @ gz
        g = gz @ Ws[k - 1].T
    raise ValueError("the chain has no layer")


def forward_reference(h0: np.ndarray, **weights: np.ndarray) -> Any:
    h = h0
    for W in layers(weights):
        h = np.tanh(h @ W)
    return np.sum(h * h)


def gradient_program(arrays: Arrays) -> Call:
    gradient = tc.grad(source(depth(arrays)), "W1")
    return lambda: gradient(**arrays)


def forward_program(arrays: Arrays) -> Call:
    forward = tc.compile(source(depth(arrays)))
    return lambda: forward(**arrays)


def symbolic_program(arrays: Arrays) -> Call:
    """Everything symbolic each call: parse, derive, simplify, plan, then run."""
    text = source(depth(arrays))
    return lambda: tc.grad(text, "W1")(**arrays)


def jax_gradient(arrays: Arrays) -> Call:
    jax = peers.jax()
    jnp = jax.numpy

    def loss(W1: Any, h0: Any, rest: list[Any]) -> Any:
        h = jnp.tanh(h0 @ W1)
        for W in rest:
            h = jnp.tanh(h @ W)
        return jnp.sum(h * h)

    gradient = jax.jit(jax.grad(loss))
    a = peers.to_jax(arrays)
    Ws = [a[f"W{k}"] for k in range(1, depth(arrays) + 1)]
    return lambda: gradient(Ws[0], a["h0"], Ws[1:]).block_until_ready()


def torch_gradient(arrays: Arrays) -> Call:
    torch = peers.torch()

    def loss(W1: Any, h0: Any, rest: list[Any]) -> Any:
        h = torch.tanh(h0 @ W1)
        for W in rest:
            h = torch.tanh(h @ W)
        return torch.sum(h * h)

    gradient = torch.func.grad(loss)
    t = peers.to_torch(arrays)
    Ws = [t[f"W{k}"] for k in range(1, depth(arrays) + 1)]
    return lambda: gradient(Ws[0], t["h0"], Ws[1:])


def measure_reverse(w: Workload, ctx: Context) -> None:
    """Row 7: gradient and forward pass, each checked, timed in pairs (ours grad with
    ours forward, NumPy's with NumPy's); the goal is on ours grad / ours forward."""
    arrays = w.arrays()
    row = Row(w.key, w.label())
    forward, forward_ref = w.extras["forward"]
    ours_fwd = forward(arrays)
    ctx.report.check(row, "ours forward", ours_fwd(), forward_ref(**arrays))
    impls = {"ours": w.program(arrays), "numpy": lambda: w.reference(**arrays),
             **ctx.peer_calls(w, arrays, row)}
    times = ctx.report.run_impls(
        row, impls, w.expected(arrays), ctx.repeats, w.target,
        extra={"ours_fwd": ours_fwd, "numpy_fwd": lambda: forward_ref(**arrays)},
        pairs=(("ours", "ours_fwd"), ("numpy", "numpy_fwd")))
    ratio = times.ratio("ours", "ours_fwd")
    row.cells["ours"] = f"grad {fmt_time(times['ours'])}, fwd {fmt_time(times['ours_fwd'])}"
    row.cells["numpy"] = (f"grad {fmt_time(times['numpy'])}, "
                          f"fwd {fmt_time(times['numpy_fwd'])}")
    row.ratio = f"{ratio:.2f} (grad/fwd)"
    row.judge(w.goal, ratio, w.size)
    ctx.report.rows.append(row)
    ctx.report.notes.append(
        f"row 7: NumPy hand backprop grad/fwd = {times.ratio('numpy', 'numpy_fwd'):.2f}; "
        f"ours grad / NumPy grad = {times['ours'] / times['numpy']:.2f}; "
        f"ours fwd / NumPy fwd = {times['ours_fwd'] / times['numpy_fwd']:.2f} "
        f"(ratios of medians)")


#: Row 8's chain lengths; the goals are on BASE (tc.grad time; against jax, row 8j) and
#: on DEPTHS[-1] against BASE (growth).
DEPTHS = (25, 50, 100, 200)
BASE = 50
JAX_DEPTHS = (50, 200)  # jax traces and compiles once at these (slow: not at every N)


def measure_symbolic(w: Workload, ctx: Context) -> None:
    """Row 8: per N, ``tc.compile`` (parse + lower), then ``tc.grad`` (parse + derive +
    simplify) and the first evaluation. Goals: ``tc.grad`` alone at N=BASE; row 8j,
    grad + evaluation at N=BASE / jax's trace + compile + first call there; per-statement
    grad + evaluation at N=DEPTHS[-1] / at N=BASE."""
    repeats = 1 if ctx.quick else 5
    grad_goal, jax_goal, growth_goal = w.goals
    per_stmt: dict[int, float] = {}
    at_base: tuple[Row, float] | None = None  # row, grad+eval
    detail: list[tuple[int, float, float, float, float]] = []
    rows: dict[int, Row] = {}
    # In rounds, every N once per round in a rotating order: the machine's slow spells
    # (it is shared) then touch every N alike, and the growth ratio compares like with like
    times: dict[int, tuple[list[float], list[float], list[float], list[float]]] = {
        n: ([], [], [], []) for n in DEPTHS}
    outs: dict[int, Any] = {}
    inputs = {n: (source(n), w.arrays({**w.size, "n": n})) for n in DEPTHS}
    for r in range(repeats):
        for n in DEPTHS[r % len(DEPTHS):] + DEPTHS[:r % len(DEPTHS)]:
            text, arrays = inputs[n]
            _, t_parse = once(partial(tc.compile, text))
            t0 = time.perf_counter()
            gradient = tc.grad(text, "W1")  # parses again: the whole symbolic pipeline
            t1 = time.perf_counter()
            outs[n] = gradient(**arrays)
            t2 = time.perf_counter()
            for kept, value in zip(times[n], (t_parse, t1 - t0, t2 - t1, t2 - t0)):
                kept.append(value)
    for n in DEPTHS:
        size = {**w.size, "n": n}
        parse_t, derive_t, eval_t, total = times[n]
        row = Row(w.key, w.label(size), "(info)", name=f"{w.key} (N={n})")
        ctx.report.check(row, "ours", outs[n], w.expected(inputs[n][1]))
        t = statistics.median(total)
        t_grad = statistics.median(derive_t)
        per_stmt[n] = t / n
        row.cells["ours"] = f"{fmt_time(t)} ({fmt_time(t / n)}/stmt)"
        if n == BASE:
            row.ratio = f"tc.grad {fmt_time(t_grad)}"
            row.judge(grad_goal, t_grad, size)
            at_base = (row, t)
        if n == DEPTHS[-1]:
            growth = per_stmt[n] / per_stmt[BASE]
            row.ratio = f"{growth:.2f} (per-stmt vs N={BASE})"
            row.judge(growth_goal, growth, size)
        rows[n] = row
        detail.append((n, statistics.median(parse_t), statistics.median(derive_t),
                       statistics.median(eval_t), t))
    # jax after all of ours: its compiler's threads and caches outlive its calls, and
    # tensorcalc measured after them ran up to 1.4x slower per statement on this machine
    tj: float | None = None
    for n in JAX_DEPTHS:
        if "jax" in w.peers:
            t = jax_compile_time(w, ctx, rows[n], w.arrays({**w.size, "n": n}), repeats)
            tj = t if n == BASE else tj
    ctx.report.rows += [rows[n] for n in DEPTHS]
    assert at_base is not None, f"N={BASE} is one of {DEPTHS}"
    ctx.report.rows.append(jax_row(w, *at_base, tj, jax_goal, {**w.size, "n": BASE}))
    ctx.report.notes.append(
        "row 8 breakdown (median): N | tc.compile (parse+lower) | tc.grad (parse+derive"
        "+simplify) | first evaluation (plan+run) | grad+eval per statement\n" + "\n".join(
            f"    {n:4d} | {fmt_time(p)} | {fmt_time(d)} | {fmt_time(e)} | {fmt_time(t / n)}"
            for n, p, d, e, t in detail))
    ctx.report.rows.append(nested_row(w, ctx, repeats))
    ctx.report.rows.append(shared_hessian_row(ctx, repeats))
    ctx.report.notes.append(
        f"row 8 without the repeat cache (every statement of the chain derived anew, as "
        f"statements that all differ would be): tc.grad at N={BASE} "
        f"{fmt_time(uncached_grad_time(source(BASE), repeats))} (median of {repeats})")


#: Row 8n: softmax layers nested in one statement against the same layers as a chain.
NESTED_DEPTH = 6
NESTED_GOAL = Goal(f"tc.grad of {NESTED_DEPTH} softmax layers nested in one statement / "
                   "tc.grad of the same layers as a chain of statements", 2.0,
                   label="nested/chain")


def nested_sources(depth: int) -> tuple[str, str]:
    """``L = c[k6] softmax[k6](W6[k6,k5] softmax[k5](...x[k0]))`` and the same as a chain."""
    e = "x[k0]"
    for d in range(1, depth + 1):
        e = f"softmax[k{d}](W{d}[k{d},k{d - 1}] {e})"
    chain_lines = ["h0[k] = x[k]"] + [f"h{d}[k] = softmax[k](W{d}[k,j] h{d - 1}[j])"
                                      for d in range(1, depth + 1)]
    return f"L = c[k{depth}] {e}", "\n".join(chain_lines + [f"L = c[k] h{depth}[k]"])


def nested_row(w: Workload, ctx: Context, repeats: int) -> Row:
    """Row 8n: the symbolic cost of nesting (``tc.grad`` from the text, parse included),
    timed in pairs; the two gradients are checked against each other on small arrays.
    Derivation once doubled with each nested level (0.03 s at depth 2, 150 s at 6)."""
    nested, chained = nested_sources(NESTED_DEPTH)
    rng = np.random.default_rng(8)
    arrays = {f"W{d}": rng.standard_normal((4, 4)) for d in range(1, NESTED_DEPTH + 1)}
    arrays.update(x=rng.standard_normal(4), c=rng.standard_normal(4))
    row = Row("8n", f"symbolic: tc.grad of {NESTED_DEPTH} nested softmax layers, against "
                    "the same layers as a chain of statements")
    ctx.report.check(row, "ours", tc.grad(nested, "x")(**arrays),
                     tc.grad(chained, "x")(**arrays))
    pairs = []
    for r in range(max(5, 3 * repeats)):
        # the text changes each time (a trailing space) so that no cache answers
        _, t_nested = once(partial(tc.grad, nested + " " * (r + 1), "x"))
        _, t_chain = once(partial(tc.grad, chained + " " * (r + 1), "x"))
        pairs.append((t_nested, t_chain))
    ratio = statistics.median(a / b for a, b in pairs)
    row.cells["ours"] = (f"nested {fmt_time(statistics.median(a for a, _ in pairs))}, chain "
                         f"{fmt_time(statistics.median(b for _, b in pairs))}")
    row.ratio = f"{ratio:.2f} (nested/chain)"
    row.judge(NESTED_GOAL, ratio, w.size)
    return row


#: Row 8h: the Hessian wrt one W that 8 softmax layers share.
SHARED_DEPTH = 8
SHARED_GOAL = Goal(f"seconds for tc.hessian of {SHARED_DEPTH} softmax layers that share one "
                   "4×4 W (parse, derive, simplify)", 1.0, unit="s", label="tc.hessian")


def shared_source(depth: int) -> str:
    lines = ["h0[i] = softmax[i](W[i,j] x[j])"] + [
        f"h{d}[i] = softmax[i](W[i,j] h{d - 1}[j])" for d in range(1, depth)]
    return "\n".join(lines + [f"L = c[i] h{depth - 1}[i]"])


def shared_loss(W: np.ndarray, x: np.ndarray, c: np.ndarray, depth: int) -> float:
    h = x
    for _ in range(depth):
        z = W @ h
        h = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return float(c @ h)


def shared_hessian_fd(W: np.ndarray, x: np.ndarray, c: np.ndarray, depth: int) -> np.ndarray:
    """Central second differences of the NumPy loss: an oracle that shares no code."""
    eps, n = 1e-4, W.size
    out = np.empty((n, n))
    for a in range(n):
        for b in range(n):
            total = 0.0
            for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                V = W.copy().ravel()
                V[a] += sa * eps
                V[b] += sb * eps
                total += sa * sb * shared_loss(V.reshape(W.shape), x, c, depth)
            out[a, b] = total / (4 * eps * eps)
    return out.reshape(W.shape + W.shape)


def shared_hessian_row(ctx: Context, repeats: int) -> Row:
    """Row 8h: ``tc.hessian`` from the text of 8 softmax layers that share one ``W``.
    Every layer's tangent depends on all earlier ones; kept term by term the tangents
    doubled at each layer, and 6 layers were refused by the 30,000-factor limit after 9 s."""
    text = shared_source(SHARED_DEPTH)
    rng = np.random.default_rng(88)
    W, x, c = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    row = Row("8h", f"symbolic: tc.hessian of {SHARED_DEPTH} softmax layers sharing one W")
    got = tc.hessian(text, "W")(W=W, x=x, c=c)
    want = shared_hessian_fd(W, x, c, SHARED_DEPTH)
    scale = float(np.abs(want).max())
    # second differences are good to about 1e-8 here, not to the harness's 1e-6 relative
    if not np.allclose(got, want, rtol=1e-5, atol=1e-6 * scale):
        ctx.report.loud(f"[8h] ours: the Hessian differs from second differences by "
                        f"{float(np.abs(got - want).max()) / scale:.3g} of its largest entry")
        row.bad.append("ours")
    times = [once(partial(tc.hessian, text + " " * (r + 1), "W"))[1]
             for r in range(max(5, 3 * repeats))]
    t = statistics.median(times)
    row.cells["ours"] = fmt_time(t)
    row.ratio = f"tc.hessian {fmt_time(t)}"
    row.judge(SHARED_GOAL, t, {})
    return row


def uncached_grad_time(text: str, repeats: int) -> float:
    """Median seconds of ``tc.grad(text, "W1")`` with ``tensorcalc.calculus.repeats`` finding
    nothing: the chain's blocks are alike, and the cache makes all but the first of them
    a renaming."""
    from tensorcalc.calculus import repeats as cache

    found = cache.Repeats.get
    cache.Repeats.get = lambda self, key, names: None  # type: ignore[method-assign]
    try:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tc.grad(text, "W1")
            times.append(time.perf_counter() - t0)
    finally:
        cache.Repeats.get = found  # type: ignore[method-assign]
    return statistics.median(times)


def jax_compile_time(w: Workload, ctx: Context, row: Row, arrays: Arrays,
                     repeats: int) -> float | None:
    """Median seconds of jax's trace + compile + first call of the gradient, each time a
    new ``jax.jit`` with jax's caches cleared (so that none is a cache hit), as many times
    as tensorcalc's side is timed; None when jax is missing or failed to build."""
    times = []
    for _ in range(repeats):
        peers.jax().clear_caches()
        call = ctx.peer_call(w, "jax", arrays, row)
        if call is None:
            return None
        jout, t = once(call)
        times.append(t)
    ctx.report.check(row, "jax", jout, w.expected(arrays))
    tj = statistics.median(times)
    row.cells["jax"] = (f"{fmt_time(tj)} (trace+compile+first call, median of {repeats})"
                        + (" ✗" if "jax" in row.bad else ""))
    return tj


def jax_row(w: Workload, base: Row, t: float, tj: float | None, goal: Goal,
            size: Size) -> Row:
    """Row 8j: tensorcalc's grad + first evaluation at N=BASE (``t``) / jax's trace +
    compile + first call of the same gradient there (``tj``, None when jax is missing or
    failed to build). Without jax the row says so and counts for nothing."""
    row = Row(f"{w.key}j", f"the same at N={BASE}: tc.grad + first eval vs jax.jit(jax.grad) "
              "trace + compile + first call", goal.text(size))
    row.bad = [k for k in base.bad if k in ("ours", "jax")]
    row.cells["ours"] = f"{fmt_time(t)} (grad+eval)"
    row.cells["jax"] = base.cells["jax"]
    if tj is not None:
        ratio = t / tj
        row.ratio = f"{ratio:.2f} (ours/jax)"
        row.judge(goal, ratio, size)
    elif "jax" in w.peers and not peers.available("jax"):
        row.met_text = "(jax not installed)"
    else:
        row.met = False
    return row


WORKLOADS = (
    Workload(
        key="7",
        title="reverse-mode cost, {n}-layer tanh chain (batch {batch}, width {width})",
        size={"n": 20, "batch": 256, "width": 128},
        tiny={"n": 3, "batch": 4, "width": 3},
        setup=setup,
        program=gradient_program,
        reference=reference,
        extras={"forward": (forward_program, forward_reference)},
        peers={"jax": jax_gradient, "torch": torch_gradient},
        goals=(Goal("tensorcalc gradient time / tensorcalc forward time", 3.0,
                    label="grad/fwd"),),
        measure=measure_reverse,
    ),
    Workload(
        key="8",
        title="symbolic: tc.grad(chain N={n}, 'W1') + first eval ({batch}×{width})",
        size={"n": BASE, "batch": 2, "width": 3},
        tiny={"n": 3, "batch": 2, "width": 3},
        setup=setup,
        program=symbolic_program,
        reference=reference,
        peers={"jax": jax_gradient},
        goals=(Goal(f"seconds for tc.grad alone (parse, derive, simplify) at N={BASE}",
                    lambda s: 0.002 * s["n"], unit="s", label="tc.grad",
                    formula="2 ms/stmt × N"),
               Goal(f"seconds for tc.grad + first evaluation at N={BASE} / seconds for "
                    "jax.jit(jax.grad) trace + compile + first call, same machine", 0.15,
                    label="ours/jax"),
               Goal(f"per-statement time (tc.grad + first evaluation) at N={DEPTHS[-1]} / "
                    f"at N={BASE}", 1.3, label="per stmt", unit=f"× N={BASE}'s")),
        measure=measure_symbolic,
    ),
)

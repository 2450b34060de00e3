"""Rows 6, 6b and 6c: the first call, ``tc.grad(MLP, "W")`` from the text plus one
evaluation on row 3's arrays, fresh each time (6), and the same in a fresh Python
process, with Lark's parser tables built (6b) or loaded from its cache file (6c)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import tensorcalc as tc
from benchmarks.harness import Goal, Row, bench, difference, fmt_time, once
from benchmarks.spec import Arrays, Call, Context, Workload
from benchmarks.workloads import mlp_gradient as mlp

ROOT = Path(__file__).resolve().parents[2]  # the repository root: benchmarks is importable

#: What the peers' first call pays.
PEER_NOTES = {"jax": "trace+compile", "torch": "eager"}


def derive() -> Any:
    """The whole symbolic pipeline: parse, lower, derive, simplify."""
    return tc.grad(mlp.SOURCE, "W")


def program(arrays: Arrays) -> Call:
    return lambda: derive()(**arrays)


def measure_first_call(w: Workload, ctx: Context) -> None:
    arrays = w.arrays()
    row = Row(w.key, w.label())
    ref = w.expected(arrays)
    total: list[float] = []
    derive_only: list[float] = []
    for _ in range(ctx.repeats):
        derived, t_derive = once(derive)
        t0 = time.perf_counter()
        out = derived(**arrays)  # plan (sizes, contraction paths) and run
        total.append(t_derive + time.perf_counter() - t0)
        derive_only.append(t_derive)
        if not ctx.report.check(row, "ours", out, ref):
            break
    t_ours = statistics.median(total)
    row.cells["ours"] = (f"{fmt_time(t_ours)} "
                         f"(of which tc.grad {fmt_time(statistics.median(derive_only))})")
    warm = bench({"numpy": lambda: w.reference(**arrays)}, ctx.repeats)["numpy"]
    row.cells["numpy"] = f"{fmt_time(warm)} (warm)"
    for name in w.peers:
        times: list[float] = []
        for _ in range(max(2, ctx.repeats // 2)):
            # a new build each time: a new function, so no jit cache hit
            call = ctx.peer_call(w, name, arrays, row)
            if call is None:
                break
            out, t = once(call)
            times.append(t)
            if not ctx.report.check(row, name, out, ref):
                break
        if times:
            row.cells[name] = f"{fmt_time(statistics.median(times))} ({PEER_NOTES[name]})"
    row.judge(w.goal, t_ours, w.size)
    ctx.report.rows.append(row)


CHILD = """
import time
t0 = time.perf_counter()
import numpy
import tensorcalc
t1 = time.perf_counter()
import sys
from benchmarks.workloads.first_call import child
child(t0, t1, sys.argv[1])
"""


def child(t0: float, t1: float, size_json: str) -> None:
    """In the fresh process (``CHILD``): row 6 once, as a line of JSON."""
    w = FIRST_CALL
    arrays = w.arrays(json.loads(size_json))
    t2 = time.perf_counter()
    out = derive()(**arrays)
    t3 = time.perf_counter()
    ok = difference(out, w.expected(arrays)) is None
    t4 = time.perf_counter()
    derive()(**arrays)  # the same again, now that the grammar is built
    t5 = time.perf_counter()
    print(json.dumps({"import": t1 - t0, "first": t3 - t2, "second": t5 - t4, "ok": ok}))


def measure_fresh_process(w: Workload, ctx: Context) -> None:
    """Lark keeps the parser tables it builds in a cache file in the temporary
    directory, so each fresh process gets an empty TMPDIR of its own ("cold": the
    grammar is built) and then runs once more with that file present ("cached")."""
    runs: dict[str, dict[str, list[float]]] = {"cold": {}, "cached": {}}
    failed = False
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    for _ in range(max(1, min(3, ctx.repeats))):
        tmp = tempfile.mkdtemp(prefix="tc-bench-")
        try:
            for kind in ("cold", "cached"):
                env = {**os.environ, "TMPDIR": tmp, "PYTHONPATH": path}
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(dict(w.size))],
                                      capture_output=True, text=True, timeout=120, env=env,
                                      cwd=ROOT)
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    ctx.report.loud(f"[6b] the fresh process failed:\n"
                                    f"{proc.stderr.strip()[-2000:]}")
                    failed = True
                    break
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if not res.pop("ok"):
                    ctx.report.loud("[6b] the fresh process's gradient differs from the "
                                    "NumPy formula")
                    failed = True
                res["wall"] = wall
                for key, value in res.items():
                    runs[kind].setdefault(key, []).append(value)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if failed:
            break
    for key, kind, title in (
            ("6b", "cold", "first call in a fresh process, Lark grammar built (empty TMPDIR)"),
            ("6c", "cached", "first call in a fresh process, Lark's parser cache file present")):
        row = Row(key, title, w.goal.text(w.size))
        if failed:
            row.bad.append("ours")
        r = {k: statistics.median(v) for k, v in runs[kind].items()}
        if r:
            row.cells["ours"] = (f"{fmt_time(r['first'])} (then a second grad+eval there: "
                                 f"{fmt_time(r['second'])}; import numpy+tensorcalc before: "
                                 f"{fmt_time(r['import'])}; process wall "
                                 f"{fmt_time(r['wall'])})")
            row.judge(w.goal, r["first"], w.size)
        ctx.report.rows.append(row)


GOAL = Goal("seconds for tc.grad from the text plus one evaluation", 0.015, unit="s")

FIRST_CALL = Workload(
    key="6",
    title="first call: tc.grad(MLP, 'W') + one evaluation (row 3 arrays)",
    size=mlp.SIZE,
    tiny=mlp.TINY,
    setup=mlp.setup,
    program=program,
    reference=mlp.reference,
    peers=mlp.PEERS,
    goals=(GOAL,),
    measure=measure_first_call,
)

FRESH_PROCESS = Workload(
    key="6b",
    title="first call in a fresh process (6b: Lark grammar built; 6c: cache file present)",
    size=mlp.SIZE,
    tiny=mlp.TINY,
    setup=mlp.setup,
    program=program,
    reference=mlp.reference,
    goals=(replace(GOAL, on=GOAL.on + ", in a fresh process", counted=False),),
    measure=measure_fresh_process,
)

WORKLOADS = (FIRST_CALL, FRESH_PROCESS)

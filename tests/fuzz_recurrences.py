"""A differential fuzzer for recurrences (docs/recurrences.md): random recurrences against
the same program unrolled by hand into one statement per step, which tensorcalc runs and
differentiates with no recurrence at all (constant subscripts, the oldest and most
tested path). Values, gradients, a Hessian and a Hessian-vector product must agree, and
so must the printed derivatives parsed again.

    python tests/fuzz_recurrences.py SEED N      # N random programs from SEED

``tests/calculus/test_recurrence_fuzz.py`` runs a few with a fixed seed in the suite.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import numpy as np

import tensorcalc as tc

T = 4  # steps
FUNCTIONS = ("tanh", "sigmoid", "sin")
STARTS = ("h0[j]", "tanh(V[j,k] h0[k])", "1", None)


@dataclass(frozen=True)
class Case:
    recurrent: str  # the program with a recurrence
    unrolled: str  # the same program, one statement per step
    direction: int


def _body(rng: np.random.Generator) -> list[str]:
    """The terms of ``h[t,j]``: ``{t}`` the position, ``{Pk}`` and ``{Pj}`` the state
    before read at index ``k`` or ``j``."""
    f = FUNCTIONS[rng.integers(len(FUNCTIONS))]
    terms = [f"{f}(W[j,k] {{Pk}} + U[j,m] x[{{t}},m] + b[j])"]
    options = [
        "a[{t},j] {Pj}",  # the state before as a factor
        "[{t} == 0] c[j]",  # a condition on the position
        "0.5 sin({Pj}) x[{t},j]",  # the state before inside a function
        "x[{t},j]^2",
    ]
    return terms + [options[k] for k in rng.permutation(4)[: rng.integers(1, 3)]]


def gated(rng: np.random.Generator) -> Case:
    """Two statements recurring together through a gate, as an LSTM's cell and output do;
    each started or not."""
    c_start = "c0[j]" if rng.random() < 0.5 else None
    h_start = "h0[j]" if rng.random() < 0.5 else None
    f = FUNCTIONS[rng.integers(len(FUNCTIONS))]
    step = ["g{s}[j] = sigmoid(W[j,k] {h}[k] + x[{t},j])",
            "c{s}[j] = g{s}[j] {c}[j] + (1 - g{s}[j]) tanh(U[j,k] x[{t},k])",
            f"h{{s}}[j] = {f}(c{{s}}[j]) + b[j] {{h}}[j]"]
    lines = [f"c[-1,j] = {c_start}"] if c_start else []
    lines += [f"h[-1,j] = {h_start}"] if h_start else []
    lines += [line.format(s="", t="t", h="h[t-1,", c="c[t-1,").replace("[t-1,[", "[t-1,")
              .replace("g[j]", "g[t,j]").replace("c[j]", "c[t,j]").replace("h[j]", "h[t,j]",
                                                                              1)
              for line in step]
    lines = [line.replace("g[j] =", "g[t,j] =") for line in lines]
    lines.append("L = sum[t,j](h[t,j] y[t,j])")
    unrolled = [f"cs[j] = {c_start}"] if c_start else []
    unrolled += [f"hs[j] = {h_start}"] if h_start else []
    c_before, h_before = ("cs" if c_start else "Z"), ("hs" if h_start else "Z")
    for s in range(T):  # step statements in capitals: c0 and h0 name the starts' inputs
        unrolled += [re.sub(r"\b([gch])(\d)\[", lambda m: m[1].upper() + m[2] + "[",
                            line.format(s=s, t=s, h=h_before, c=c_before)) for line in step]
        c_before, h_before = f"C{s}", f"H{s}"
    unrolled.append("L = " + " + ".join(f"sum[j](H{s}[j] y[{s},j])" for s in range(T)))
    return Case("\n".join(lines), "\n".join(unrolled), 1)


def case(rng: np.random.Generator) -> Case:
    if rng.random() < 0.25:
        return gated(rng)
    direction = 1 if rng.random() < 0.7 else -1
    start = STARTS[rng.integers(len(STARTS))] if direction > 0 else None
    terms = _body(rng)
    loss = ["h{at} y[{t},j]", "(h{at} - y[{t},j])^2", "sin(h{at}) y[{t},j]"][rng.integers(3)]
    shift = "t-1" if direction > 0 else "t+1"
    lines = [f"h[-1,j] = {start}"] if start is not None else []
    lines.append("h[t,j] = " + " + ".join(terms).format(
        t="t", Pk=f"h[{shift},k]", Pj=f"h[{shift},j]"))
    lines.append("L = sum[t,j](" + loss.format(at="[t,j]", t="t") + ")")
    # unrolled: the state before the first step is the start (hs), or zeros (Z)
    begin = "Z[j] + 1" if start == "1" else start  # j sized by Z's axis
    unrolled = [f"hs[j] = {begin}"] if start is not None else []
    before = "hs" if start is not None else "Z"
    for s in (range(T) if direction > 0 else range(T - 1, -1, -1)):
        text = " + ".join(terms).format(t=s, Pk=f"{before}[k]", Pj=f"{before}[j]")
        unrolled.append(f"u{s}[j] = " + text.replace(f"[{s} == 0]", "1 *" if s == 0 else "0 *"))
        before = f"u{s}"
    unrolled.append("L = " + " + ".join(
        "sum[j](" + loss.format(at="", t=s).replace("h ", f"u{s}[j] ").replace("h)", f"u{s}[j])")
        + ")" for s in range(T)))
    return Case("\n".join(lines), "\n".join(unrolled), direction)


def arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return dict(W=rng.normal(size=(2, 2)), U=rng.normal(size=(2, 2)), b=rng.normal(size=2),
                x=rng.normal(size=(T, 2)), a=rng.normal(size=(T, 2)), c=rng.normal(size=2),
                y=rng.normal(size=(T, 2)), h0=rng.normal(size=2), V=rng.normal(size=(2, 2)),
                c0=rng.normal(size=2), Z=np.zeros(2))


def check(c: Case, a: dict[str, np.ndarray], rtol: float = 1e-9) -> int:
    """Compare the recurrence with its unrolling; the number of checks made."""
    rec, un = tc.compile(c.recurrent), tc.compile(c.unrolled)

    def call(p: tc.Program) -> np.ndarray:
        return np.asarray(p(**{k: a[k] for k in p.inputs}))

    def same(got: np.ndarray, want: np.ndarray, what: str) -> None:
        if not np.allclose(got, want, rtol=rtol, atol=1e-11):
            raise AssertionError(f"{what} differs ({np.abs(got - want).max():.3g}):\n"
                                 f"{c.recurrent}\n--- unrolled ---\n{c.unrolled}")

    same(call(rec), call(un), "the value")
    checks = 1
    for wrt in [w for w in ("W", "U", "b", "x", "a", "c", "h0", "c0", "V") if w in rec.inputs]:
        g = tc.grad(rec, wrt)
        same(call(g), call(tc.grad(un, wrt)), f"the gradient wrt {wrt}")
        same(call(tc.compile(str(g))), call(g), f"the printed gradient wrt {wrt}")
        checks += 2
    same(call(tc.hessian(rec, "W")), call(tc.hessian(un, "W")), "the Hessian wrt W")
    wrt = "x"
    a["V_"] = np.ones_like(a[wrt])
    hv = tc.jvp(tc.grad(rec, wrt), wrt, tangent="V_")
    same(call(hv), call(tc.jvp(tc.grad(un, wrt), wrt, tangent="V_")), "the HVP wrt x")
    return checks + 2


def main(seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    total = 0
    for k in range(count):
        c = case(rng)
        total += check(c, arrays(rng))
        print(f"program {k}: ok ({'forward' if c.direction > 0 else 'backward'})")
    print(f"{count} programs, {total} checks: all agree")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0,
         int(sys.argv[2]) if len(sys.argv) > 2 else 20)

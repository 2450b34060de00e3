"""Random programs derived and checked against central differences, by hand:

    python tests/fuzz_derivatives.py [SEED] [N]

Two kinds of program, N of each: products of a few small matrices and vectors through
elementwise functions, index conditions and masked softmaxes (gradient, second
derivative, the printed second derivative run again, and a vector-Jacobian product of a
vector-Jacobian product against differences of the first), and chains of one repeated
block (shared or separate weights, biases, residual connections; gradient and Hessian),
which exercise the reverse-mode repeat cache. Prints each program whose derivatives
disagree or crash; exits 1 if any did. Not part of the test suite (it takes about a
minute per 100 programs).
"""

from __future__ import annotations

import random
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fd import numeric_jacobian  # noqa: E402

import tensorcalc as tc  # noqa: E402

FUNCS = ["tanh", "sigmoid", "sin", "exp", "softplus"]
SIZES = {"a": 3, "b": 2, "c": 4, "d": 3}
INPUTS = {"A": "ab", "B": "bc", "C": "cd", "D": "ad", "x": "a", "y": "b", "z": "c"}


def products(r: random.Random) -> str:
    """A few statements, each a product of two tensors sharing an index, maybe plus a
    third, maybe through a function; the loss the last one squared."""
    avail = dict(INPUTS)
    stmts = []
    n = r.randint(1, 4)
    for k in range(n):
        names = list(avail)
        t1, t2 = names[0], names[0]
        shared: set[str] = set()
        for _ in range(50):
            t1, t2 = r.sample(names, 2)
            shared = set(avail[t1]) & set(avail[t2])
            if shared:
                break
        i1, i2 = avail[t1], avail[t2]
        free = "".join(sorted((set(i1) | set(i2)) - (shared if r.random() < 0.8 else set())))
        free = free or sorted(set(i1) | set(i2))[0]
        expr = f"{t1}[{','.join(i1)}] {t2}[{','.join(i2)}]"
        t3 = r.choice(names)
        if r.random() < 0.4 and set(avail[t3]) <= set(free):
            expr = f"{expr} + {t3}[{','.join(avail[t3])}]"
        if r.random() < 0.7:
            expr = f"{r.choice(FUNCS)}({expr})"
        if r.random() < 0.3 and set(i1) <= set(free):
            expr = f"{expr} {t1}[{','.join(i1)}]"
        expr = conditioned(r, expr, sorted(set(i1) | set(i2)), free)
        stmts.append(f"h{k}[{','.join(free)}] = {expr}")
        avail[f"h{k}"] = free
    last = f"h{n - 1}"
    return "\n".join(stmts + [f"L = {last}[{','.join(avail[last])}]^2"])


def conditioned(r: random.Random, expr: str, indices: list[str], free: str) -> str:
    """``expr`` sometimes times an index condition (``[a < c]``, ``[b != d+1]``) or, over
    a free index, under a masked softmax (``softmax[c | c <= a](...)``)."""
    if len(indices) < 2 or r.random() < 0.6:
        return expr
    i, j = r.sample(indices, 2)
    op = r.choice(["!=", "<", "<=", ">", ">="])
    if r.random() < 0.5 or i not in free:
        return f"[{i} {op} {j}{r.choice(['', '+1', '-1'])}] ({expr})"
    return f"softmax[{i} | {i} {op} {j}]({expr})"


def chain(r: random.Random) -> str:
    """A block ``h_k = f2(f1(h_{k-1} W_k + c_k))`` repeated 2 to 5 times."""
    tame = [f for f in FUNCS if f != "exp"] + [""]  # exp of exp overflows: differences fail
    f1, f2 = r.choice(tame), r.choice(tame)
    shared, resid, bias = r.random() < 0.3, r.random() < 0.4, r.random() < 0.5
    n = r.randint(2, 5)
    lines = []
    for k in range(1, n + 1):
        W = "W" if shared else f"W{k}"
        inner = f"h{k - 1}[b,i] {W}[i,j]" + (f" + c{k}[j]" if bias else "")
        body = f"{f1}({inner})" if f1 else f"({inner})"
        body = f"{f2}({body})" if f2 else body
        body = f"h{k - 1}[b,j] + {body}" if resid else body
        lines.append(f"h{k}[b,j] = {body}")
    lines.append(f"L = h{n}[b,j] h{n}[b,j] g[j]" if r.random() < 0.5
                 else f"L = sum[b,j](softplus(h{n}[b,j]))")
    return "\n".join(lines)


def shape(name: str, kind: str) -> tuple[int, ...]:
    if kind == "products":
        return tuple(SIZES[i] for i in INPUTS[name])
    return (2, 3) if name == "h0" else (3, 3) if name.startswith("W") else (3,)


def check(src: str, kind: str, r: random.Random, seed: int) -> bool:
    """True when every derivative agrees (or the program is refused, which is fine)."""
    try:
        p = tc.compile(src)
    except tc.TensorCalcError:
        return True
    rng = np.random.default_rng(seed)
    arrays = {n: rng.standard_normal(shape(n, kind)) * 0.5 for n in p.inputs}
    wrt = r.choice(p.inputs)
    try:
        g = tc.grad(p, wrt)
        ok = [np.allclose(g(**arrays), numeric_jacobian(src, wrt, arrays), rtol=1e-5,
                          atol=1e-7)]
        h = tc.derive(g, wrt)
        value = h(**arrays)
        ok.append(np.allclose(value, numeric_jacobian(g, wrt, arrays), rtol=1e-4, atol=1e-6))
        printed = tc.compile(str(h))
        ok.append(np.allclose(printed(**{k: v for k, v in arrays.items()
                                         if k in printed.inputs}), value, rtol=1e-10,
                              atol=1e-12))
        if kind == "products":
            v1 = tc.vjp(p, wrt, "G")
            v2 = tc.vjp(v1, wrt, "G2")
            G2 = rng.standard_normal(arrays[wrt].shape)
            a1 = {**arrays, "G": np.float64(1.0)}
            eps = 1e-6
            want = (v1(**{**a1, wrt: arrays[wrt] + eps * G2})
                    - v1(**{**a1, wrt: arrays[wrt] - eps * G2})) / (2 * eps)
            ok.append(np.allclose(v2(**a1, G2=G2), want, rtol=1e-4, atol=1e-6))
    except tc.TensorCalcError:
        return True
    except Exception:  # noqa: BLE001 - a crash is a finding: shown, counted
        print(f"CRASH (wrt {wrt}):\n{src}")
        traceback.print_exc()
        return False
    if not all(ok):
        print(f"MISMATCH {ok} (wrt {wrt}):\n{src}\n")
    return all(ok)


def main() -> int:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    r = random.Random(seed)
    bad = sum(not check(make(r), kind, r, seed * 100003 + k)
              for kind, make in (("products", products), ("chain", chain))
              for k in range(n))
    print(f"{2 * n} programs, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

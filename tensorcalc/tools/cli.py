"""The ``tensorcalc`` command line: ``eval``, ``derive``, ``explain`` and ``check``.

Every error is one line on stderr (a syntax error adds the line and a caret) and
a non-zero exit status; there is never a traceback. Arrays are loaded with
``allow_pickle=False``, from regular files only (nothing can block on a FIFO), after
their header is checked against the memory limit; ``-o`` writes exactly the path given.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..api import compile
from ..backend.operands import (
    CallOperand,
    DeltaOperand,
    GroupOperand,
    MaskOperand,
    Operand,
    PowerOperand,
    ReduceOperand,
    RefOperand,
    ScatterOperand,
    SolveOperand,
    SumPlan,
    nested_sums,
)
from ..derivatives import derive
from ..errors import InputError, MemoryLimitError, TensorCalcError
from ..ir import Affine, Gather, Subscript, statement_refs, sub_names, subscript_text
from ..limits import check_size
from ..program import Program
from .check import difference_columns
from .explain import explain
from .files import load_npy, load_npz, open_regular, reason, write_npy, write_text

EXIT_BAD_INPUT = 2
EXIT_DISAGREE = 1

_EXAMPLES = {
    "eval": """examples:
  tensorcalc eval "Y[i,j] = X[i,k] W[k,j]" --size i=2,k=3,j=4
  tensorcalc eval "y[i] = W[i,j] x[j]" -i W=W.npy -i x=x.npy -o y.npy
  tensorcalc eval -f model.tc -i inputs.npz
  tensorcalc eval "x[i] = inv[i,j](A[i,j]) b[j]" --size i=4   (j takes i's size)
  tensorcalc eval "y[i] = x[i+k] w[k]" --size i=8,k=3     (x is drawn with 10 values)
  tensorcalc eval "y[i] = x[i+k-1] w[k]" -i x=x.npy --size i=100,k=3   ("same": zeros past the ends)
  tensorcalc eval "e[n,j] = E[t[n],j]" --size n=5,j=4 -i E=E.npy  (t: random rows of E)""",
    "derive": """examples:
  tensorcalc derive "Y[i,j] = X[i,k] W[k,j]" --wrt X
  tensorcalc derive "L = (X[n,d] w[d] - y[n])^2" --wrt w --format latex
  tensorcalc derive -f model.tc --wrt W --of H --format einsum
  tensorcalc derive "Y[i,j] = X[i,k] W[k,j]" --wrt X --format svg -o d.svg
  tensorcalc derive "L = 0.5 logdet[i,j](S[i,j]) + 0.5 r[i] inv[i,j](S[i,j]) r[j]" --wrt S
  tensorcalc derive "s[n,j] = softmax[j](z[n,j])" --wrt z
  tensorcalc derive "y[i] = x[i+k] w[k]; L = y[i]^2" --wrt x
  tensorcalc derive "L = 3 (x[i+1] - x[i])" --wrt x
      (ranges belong to the statement as written: k runs over i's N-1 values, which
      the printed derivative declares as an axis of L_range, a statement never computed)
  tensorcalc derive "L = logsumexp[j](Z[n,j]) - Z[n,t[n]]" --wrt Z""",
    "explain": """examples:
  tensorcalc explain "n = sqrt(x[i]^2)"
  tensorcalc explain -f model.tc""",
    "check": """examples:
  tensorcalc check "y[i] = sigmoid(W[i,j] x[j])" --wrt W --size i=3,j=4
  tensorcalc check -f model.tc --wrt W -i inputs.npz
  tensorcalc check "m[i] = max[j](X[i,j])" --wrt X --size i=3,j=5
  tensorcalc check "y[b,o,i,j] = X[b,c,i+a,j+e] K[o,c,a,e]" --wrt K \\
      --size b=2,c=3,o=4,i=5,j=5,a=3,e=3""",
}


_FILES_NOTE = """files and sizes:
  -f and -i read regular files only: a FIFO, a device or a directory is refused,
  so nothing blocks; a file that cannot be read is one line naming it, exit 2.
  An index not sized by --size takes its size from the loaded arrays, by the
  indices they are written with. An input read only through index arithmetic
  (x[i+k]) is drawn just long enough for the sizes given; an index array (t in
  E[t[n],j]) is drawn as random positions along the axis it indexes. A --size of
  an index that arithmetic uses is a given size: reads past an array's end are
  zero (x[i+k-1] with --size i=N is a "same" convolution). Inputs, loaded or
  drawn at random, larger than the memory limit (4 GiB; set
  TENSORCALC_MEMORY_LIMIT=BYTES) are refused before they are read or drawn, and
  so are random inputs that together exceed it."""


def _seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"a seed is a whole number >= 0, not {text!r}")
    return int(text)


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):  # nan fails every comparison
        raise argparse.ArgumentTypeError(f"a tolerance is a number >= 0, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tensorcalc",
        description="Symbolic tensor calculus in index notation: evaluate programs, "
                    "derive them symbolically, and check derivatives numerically. Besides "
                    "elementwise functions (tanh(e), ...) the language has functions of whole "
                    "axes: max[j](e), min[j](e), hardmax[j](e) and hardmin[j](e) (their "
                    "derivatives), logsumexp[j](e), softmax[j](e), and the "
                    "matrix functions inv[i,j](e), det[i,j](e), logdet[i,j](e). Subscripts may "
                    "be affine in indices (x[i+k], x[2*i+k], x[i-1]: convolutions, strides, "
                    "differences) or integer index arrays (E[t[n],j]: gathers).",
        epilog="\n\n".join(_EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", metavar="{eval,derive,explain,check}")
    sub.required = True

    def program_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("program", nargs="?", help="the program text (or use -f FILE)")
        p.add_argument("-f", "--file", help="read the program from FILE")
        p.add_argument("--of", help="the statement to use (default: the last one)")

    def input_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("-i", "--input", action="append", default=[],
                       metavar="NAME=FILE.npy|FILE.npz",
                       help="an input array from a .npy file, or the arrays of a .npz archive "
                            "(its keys are the names; keys that are not inputs of the program "
                            "are ignored); regular files only; repeatable")
        p.add_argument("--size", action="append", default=[], metavar="i=3,k=4",
                       help="axis sizes for the inputs that are not given, which are drawn at "
                            "random (uniform in [0.5, 1.5), so log, sqrt and division are "
                            "defined); sizes that loaded arrays give need not be repeated; "
                            "subject to the memory limit (TENSORCALC_MEMORY_LIMIT)")
        p.add_argument("--seed", type=_seed, default=0,
                       help="seed for random inputs and for the entries check samples "
                            "(a whole number >= 0; default 0)")

    e = sub.add_parser("eval", help="evaluate a program",
                       epilog=_FILES_NOTE + "\n\n" + _EXAMPLES["eval"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    program_args(e)
    input_args(e)
    e.add_argument("-o", "--output", metavar="OUT",
                   help="write the result in .npy format to exactly the path OUT (no .npy "
                        "is added) instead of printing it; a directory is refused")

    d = sub.add_parser("derive", help="print a symbolic derivative", epilog=_EXAMPLES["derive"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    program_args(d)
    d.add_argument("--wrt", required=True, help="the input to differentiate by, e.g. X or X[p,q]")
    d.add_argument("--format", choices=["index", "latex", "einsum", "python", "svg"],
                   default="index",
                   help="index notation (default), LaTeX, the einsum strings that run it (each "
                        "followed by '# STATEMENT: its operands, in order'; a function, power "
                        "or parenthesised sum operand is written 'tanh(...)[b,h]' and its own "
                        "einsums follow as 'STATEMENT, in tanh:'), a standalone Python "
                        "function, or an SVG picture of each term as a tensor network")
    d.add_argument("-o", "--output", metavar="OUT",
                   help="write the chosen format, as text, to exactly the path OUT instead of "
                        "printing it; a directory is refused")

    x = sub.add_parser("explain", help="print a program with every implied sum written out",
                       description="Print the program with every summation the convention "
                                   "implies written as sum[...] where it places it, and '#' "
                                   "notes on indices summed outside a function or a power, or "
                                   "on their own in one term (rule 2). The output compiles to "
                                   "the same program.",
                       epilog=_EXAMPLES["explain"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("program", nargs="?", help="the program text (or use -f FILE)")
    x.add_argument("-f", "--file", help="read the program from FILE")

    c = sub.add_parser("check", help="compare a derivative with finite differences",
                       epilog=_FILES_NOTE + "\n\n" + _EXAMPLES["check"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    program_args(c)
    input_args(c)
    c.add_argument("--wrt", required=True, help="the input to differentiate by")
    c.add_argument("--tol", type=_tolerance, default=1e-5,
                   help="largest allowed error, relative to the largest derivative, beside "
                        "the differences' own rounding error (default 1e-5); past 1,000 "
                        "entries of the input, 1,000 chosen at random (--seed) are checked")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except MemoryLimitError as err:
        print(f"tensorcalc: error: {err} (on the command line: set the environment variable "
              "TENSORCALC_MEMORY_LIMIT to a number of bytes)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TensorCalcError as err:
        print(f"tensorcalc: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as err:
        print(f"tensorcalc: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError as err:
        print(f"tensorcalc: error: out of memory: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecursionError:
        print("tensorcalc: error: the program is nested too deeply", file=sys.stderr)
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace) -> int:
    program = _program(args)
    if args.command == "explain":
        print(explain(program))
        return 0
    if args.command == "derive":
        d = derive(program, args.wrt, args.of)
        if args.format == "index":
            text = str(d)
        elif args.format == "latex":
            text = d.latex()
        elif args.format == "einsum":
            text = labelled_einsums(d)
        elif args.format == "svg":
            text = d.diagram().rstrip("\n")
        else:
            text = d.to_python()
        if args.output is not None:
            write_text(args.output, text)
        else:
            print(text)
        return 0
    arrays = _inputs(program, args)
    program = program.with_sizes(arithmetic_sizes(program, _sizes(args.size, program)))
    if args.command == "eval":
        value = np.asarray(program(**arrays))
        if args.output is not None:
            write_npy(args.output, value)
        else:
            with np.printoptions(threshold=2000, linewidth=100):
                print(value)
        return 0
    return _check(program, args.wrt, args.of, arrays, args.tol, args.seed)


def _program(args: argparse.Namespace) -> Program:
    if args.file is not None and args.program is not None:
        raise InputError("give the program as text or with -f FILE, not both")
    if args.file is not None:
        with open_regular(args.file, "program file") as f:
            try:
                text = f.read().decode("utf-8-sig")  # a byte-order mark is not the program
            except UnicodeDecodeError:
                raise InputError(f"cannot read program file {args.file}: not UTF-8 text") \
                    from None
            except OSError as err:
                raise InputError(f"cannot read program file {args.file}: {reason(err)}") \
                    from None
    elif args.program is not None:
        text = args.program
    else:
        raise InputError("no program: give it as text or with -f FILE")
    return compile(text, getattr(args, "of", None))


def _sizes(specs: list[str], program: Program) -> dict[str, int]:
    """The --size pairs: each an index of the program, once, with a whole number."""
    indices = {i for st in program.plan.statements for i in st.every_index}
    sizes: dict[str, int] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, value = (s.strip() for s in part.partition("="))
            if not eq or not re.fullmatch(r"[0-9]+", value) or not name:
                raise InputError(f"--size expects index=N pairs like i=3,k=4 (N a whole "
                                 f"number, 0-9), got {part!r}")
            if name not in indices:
                raise InputError(f"--size {part.strip()}: {name} is not an index of the "
                                 f"program; its indices are {', '.join(sorted(indices))}")
            if sizes.get(name, int(value)) != int(value):
                raise InputError(f"--size gives {name} twice: {sizes[name]} and {value}")
            sizes[name] = int(value)
    return sizes


def _inputs(program: Program, args: argparse.Namespace) -> dict[str, Any]:
    wanted = set(program.inputs)
    arrays: dict[str, Any] = {}
    notes: list[str] = []
    given_by: dict[str, str] = {}
    for spec in args.input:
        name, eq, path = spec.partition("=")
        if eq:
            name = name.strip()
            if name not in wanted:
                raise InputError(f"unknown input {name} (-i {spec}); the program's inputs are "
                                 f"{', '.join(program.inputs) or 'none'}")
            loaded = {name: load_npy(path, name)}
        else:
            ignored: list[str] = []
            loaded = load_npz(spec, wanted, ignored)
            if ignored:
                notes.append(f"tensorcalc: note: {spec}: ignored {', '.join(ignored)} (not "
                             "inputs of the program)")
        for name in loaded:
            if name in given_by:
                raise InputError(f"input {name} is given twice (-i {given_by[name]} and "
                                 f"-i {spec})")
            given_by[name] = spec
        arrays.update(loaded)
    sizes = _known_sizes(program, arrays)
    given = _sizes(args.size, program)
    free_to_differ = arithmetic_sizes(program, given)  # zeros past the ends (SPEC §8)
    for index, n in given.items():
        if sizes.get(index, n) != n and index not in free_to_differ:
            raise InputError(f"--size {index}={n} contradicts the arrays given, which give "
                             f"{index} the size {sizes[index]}")
    sizes.update(given)
    for st in program.plan.statements:  # a matrix function's two indices have one size
        for i, j, _fn in st.square:
            if i in sizes or j in sizes:
                sizes.setdefault(i, sizes.get(j, 0))
                sizes.setdefault(j, sizes[i])
    rng = np.random.default_rng(args.seed)
    drawn = 0  # elements drawn so far: the inputs drawn together stay within the limit
    for name in program.inputs:
        if name in arrays or name in program.index_arrays:
            continue
        axes = _indices_of(program, name)
        missing = [i for a in axes for i in sub_names(a) if i not in sizes]
        if missing:
            written = ",".join(subscript_text(a) for a in axes)
            raise InputError(
                f"input {name}[{written}] was not given; give it with -i {name}=FILE.npy "
                f"or give the size of {', '.join(dict.fromkeys(missing))} with --size"
            )
        if any(isinstance(a, Gather) for a in axes):
            written = ",".join(subscript_text(a) for a in axes)
            raise InputError(f"input {name}[{written}] is read through an index array: give it "
                             f"with -i {name}=FILE.npy")
        # An axis read through arithmetic (x[i+k]) is made just long enough for the sizes.
        shape = tuple(sizes[a] if isinstance(a, str) else _reach(a, sizes) + 1 for a in axes)
        check_size(f"random input {name}", shape, np.dtype(float).itemsize, compact_hint=False)
        drawn += math.prod(shape)
        check_size("the random inputs together", (drawn,), np.dtype(float).itemsize,
                   compact_hint=False)
        arrays[name] = rng.uniform(0.5, 1.5, size=shape)
    for name in program.index_arrays:  # random positions along the axis each one indexes
        if name in arrays:
            continue
        tensor, axis, indices = _indexing(program, name)
        missing = [i for i in indices if i not in sizes]
        if missing or tensor not in arrays:
            also = f" or give the size of {', '.join(missing)} with --size" if missing else ""
            raise InputError(f"index array {name} was not given; give it with -i {name}=FILE.npy "
                             f"(integers){also}")
        arrays[name] = rng.integers(0, arrays[tensor].shape[axis],
                                    size=tuple(sizes[i] for i in indices))
    for note in notes:  # once every input is in hand, so that a failure stays one line
        print(note, file=sys.stderr)
    return arrays


def _known_sizes(program: Program, arrays: dict[str, Any]) -> dict[str, int]:
    """Index sizes that the loaded arrays give, by the indices they are written with
    (the first array to give an index its size wins)."""
    sizes: dict[str, int] = {}
    for st in program.statements:
        for r in statement_refs(st):
            value = arrays.get(r.name)
            shape = getattr(value, "shape", None)
            if shape is None or len(shape) != r.rank:
                continue
            for axis, index in r.plain_axes():
                sizes.setdefault(index, int(shape[axis]))
            for a in r.axes:
                value = arrays.get(a.name) if isinstance(a, Gather) else None
                for index, n in zip(a.indices if isinstance(a, Gather) else (),
                                    getattr(value, "shape", ())):
                    sizes.setdefault(index, int(n))
    return sizes


def _indices_of(program: Program, name: str) -> tuple[Subscript, ...]:
    """How a tensor is subscripted: a plain occurrence where there is one."""
    found: tuple[Subscript, ...] | None = None
    for st in program.statements:
        for r in statement_refs(st):
            if r.name == name and (found is None or r.subs is None):
                found = r.axes
    return found or ()


def _reach(sub: Affine | Gather, sizes: dict[str, int]) -> int:
    """The last position an affine subscript reads."""
    assert isinstance(sub, Affine)
    return max(0, sub.offset + sum(max(c * (sizes[n] - 1), 0) for n, c in sub.parts))


def _indexing(program: Program, name: str) -> tuple[str, int, tuple[str, ...]]:
    """Where the index array ``name`` is used: the tensor, the axis, its own indices."""
    for st in program.statements:
        for r in statement_refs(st):
            for axis, a in enumerate(r.axes):
                if isinstance(a, Gather) and a.name == name:
                    return r.name, axis, a.indices
    raise InputError(f"{name} is not used as an index array")  # pragma: no cover


def arithmetic_sizes(program: Program, sizes: dict[str, int]) -> dict[str, int]:
    """The --size values of indices that arithmetic subscripts use: given sizes (SPEC §8),
    for which reads past an array's end are zero."""
    used = {n for st in program.statements for r in statement_refs(st) if r.subs
            for a in r.subs if not isinstance(a, str) for n in sub_names(a)}
    return {i: n for i, n in sizes.items() if i in used}


def labelled_einsums(program: Program) -> str:
    """The einsum strings that run ``program``, one a line, each followed by
    ``# STATEMENT: operand, operand``: the operands in the order of the spec.

    >>> print(labelled_einsums(compile("y[i] = W[i,j] x[j]")))
    ij,j->i    # y: W[i,j], x[j]
    """
    rows = [row for st in program.plan.statements for row in _einsum_rows(st.name, st.rhs)]
    width = max((len(spec) for spec, _ in rows), default=0)
    return "\n".join(f"{spec:<{width}}    # {label}" for spec, label in rows)


def _einsum_rows(where: str, s: SumPlan) -> Iterator[tuple[str, str]]:
    # the same order as Program.einsum: a term's contraction, then those inside its operands
    for t in s.terms:
        if t.operands:
            yield t.spec, f"{where}: " + ", ".join(_operand_label(op) for op in t.operands)
        for op in t.operands:
            inside = f"{where}, in {_operand_kind(op)}"
            for inner in nested_sums(op):
                yield from _einsum_rows(inside, inner)


def _operand_kind(op: Operand) -> str:
    if isinstance(op, CallOperand):
        return op.fn
    if isinstance(op, ReduceOperand):
        return f"{op.fn}[{','.join(op.indices)}]"
    if isinstance(op, SolveOperand):
        return f"a solve with inv[{','.join(op.indices)}]"
    if isinstance(op, PowerOperand):
        return "a power"
    if isinstance(op, ScatterOperand):
        return "a scatter-add through " + ", ".join(
            f"delta[{p},{subscript_text(s)}]" for p, s in op.shifts)
    return "a parenthesised sum"


def _operand_label(op: Operand) -> str:
    if isinstance(op, RefOperand):
        written = op.subs if op.subs is not None else op.indices
        return op.name + (f"[{','.join(subscript_text(a) for a in written)}]" if written else "")
    if isinstance(op, MaskOperand):
        return f"delta[{op.i},{subscript_text(op.sub)}]"
    if isinstance(op, ScatterOperand):
        return "scatter-add(...)" + f"[{','.join(op.free)}]"
    if isinstance(op, DeltaOperand):
        return f"delta[{op.i},{op.j}]"
    axes = f"[{','.join(op.free)}]" if op.free else ""
    if isinstance(op, CallOperand):
        return f"{op.fn}(...){axes}"
    if isinstance(op, ReduceOperand):
        return f"{op.fn}[{','.join(op.indices)}](...){axes}"
    if isinstance(op, SolveOperand):
        return f"solve(inv[{','.join(op.indices)}](...), ...){axes}"
    if isinstance(op, PowerOperand):
        exponent = f"{op.exponent:g}" if isinstance(op.exponent, float) else "(...)"
        return f"(...)^{exponent}{axes}"
    assert isinstance(op, GroupOperand)
    return f"(...){axes}"


#: ``check`` steps at most this many entries of the input (two evaluations each), chosen
#: at random past it, so that it ends in seconds whatever the size.
MAX_CHECKED_ENTRIES = 1000
#: Past this share of the largest derivative, the differences' rounding decides nothing.
_UNDECIDED = 0.1


def _check(program: Program, wrt: str, of: str | None, arrays: dict[str, Any], tol: float,
           seed: int) -> int:
    d = derive(program, wrt, of)
    name = wrt.split("[")[0].strip()
    analytic = np.asarray(d(**{k: v for k, v in arrays.items() if k in d.accepts}), dtype=float)
    size = int(np.asarray(arrays[name]).size)
    positions = np.arange(size)
    if size > MAX_CHECKED_ENTRIES:
        positions = np.sort(np.random.default_rng(seed).choice(size, MAX_CHECKED_ENTRIES,
                                                                replace=False))
    numeric, rounding = difference_columns(program, name, arrays, positions.tolist())
    shape = analytic.shape
    analytic = analytic.reshape(numeric.shape[:-1] + (size,))[..., positions]
    # relative to the larger of the two (a derivative that is wrongly large or wrongly
    # small is as far off); an exact zero everywhere compares absolutely
    scale = max(float(np.max(np.abs(numeric), initial=0.0)),
                float(np.max(np.abs(analytic), initial=0.0))) or 1.0
    error = float(np.max(np.abs(analytic - numeric))) / scale if numeric.size else 0.0
    allowed = tol + rounding / scale  # the differences are no better than their rounding
    verdict = "agree" if error <= allowed else "DISAGREE"
    if rounding / scale > _UNDECIDED:
        verdict = ("UNDECIDED: the differences are mostly rounding here (the values are large "
                   "beside the derivative); check at smaller values")
    sampled = (f"; {len(positions):,} of the {size:,} entries of {name}, chosen at random "
               "(--seed)" if len(positions) < size else "")
    slack = f" + {rounding / scale:.1e} for the differences' rounding" \
        if rounding / scale > tol / 100 else ""
    print(f"{d.result}: shape {shape}"
          f"{sampled}, largest error {error:.3e} (relative to max |derivative| {scale:.3g}); "
          f"tolerance {tol:g}{slack}: {verdict}")
    return 0 if verdict == "agree" else EXIT_DISAGREE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``tensorcalc`` command line: ``eval``, ``derive``, ``explain``, ``check`` and
``serve`` (the playground, ``tools/playground``).

Every error is one line on stderr (a syntax error adds the line and a caret) and
a non-zero exit status; there is never a traceback. A trap of the summation convention
(``language/traps.py``) is a line ``tensorcalc: warning: ...`` on stderr, and with
``--strict`` an error. Arrays are loaded with
``allow_pickle=False``, from regular files only (nothing can block on a FIFO), after
their header is checked against the memory limit; ``-o`` writes exactly the path given.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import compile
from ..derivatives import derive
from ..errors import InputError, MemoryLimitError, TensorCalcError, TensorCalcWarning
from ..ops.functions import FUNCTIONS
from ..ops.reductions import REDUCERS
from ..program import Program
from .check import compare
from .einsums import labelled_einsums
from .explain import explain
from .files import open_regular, reason, write_npy, write_text
from .inputs import arithmetic_sizes, given_sizes, inputs
from .playground.server import serve
from .playground.worker import TIME_LIMIT

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


def _functions_help() -> str:
    """The functions the language knows, each with its help: read from the registries, so
    that a registered function is listed."""
    def rows(entries: list[tuple[str, str]]) -> list[str]:
        width = max((len(u) for u, _ in entries), default=0)
        return [textwrap.fill(doc, 88, initial_indent=f"  {u:<{width}}  ",
                              subsequent_indent=" " * (width + 4)) for u, doc in entries]

    elementwise = rows([(f.usage, f.doc) for f in FUNCTIONS.values()]
                       + [(family.usage, family.doc) for family in FUNCTIONS.families])
    axes = rows([(r.usage, r.doc) for r in REDUCERS.values()])
    return "\n".join(["elementwise functions:", *elementwise, "",
                      "functions of whole axes (f[i,j](e): of a matrix along i and j):", *axes])


_WARNINGS_NOTE = """warnings:
  Two ways of writing are read by the summation convention otherwise than they
  are most likely meant, and each prints 'tensorcalc: warning: ...' on stderr
  (the command still runs); 'tensorcalc explain' shows them as '#' notes:
  - one index name summed inside a function (or a power, or parentheses) by a
    product there, and apart, outside it: in
    L = (tanh(gam[d] xh[b,d] + bet[d]) - T[b,d])^2 the d of gam[d] xh[b,d] is
    summed inside tanh, the other d over the whole term;
  - a parenthesised sum whose terms lack an index summed around it: in
    R = lam * (A[i,r]^2 + B[j,r]^2) A's term is multiplied by size(j).
  Write the sum where you mean it (sum[d](...), sum[i,r](A[i,r]^2) + ...) or
  use another index name, and the warning goes. --strict makes them errors."""


def _program_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", nargs="?", help="the program text (or use -f FILE)")
    p.add_argument("-f", "--file", help="read the program from FILE")
    p.add_argument("--of", help="the statement to use (default: the last one)")
    p.add_argument("--strict", action="store_true",
                   help="refuse (exit 2) a program the summation convention likely reads "
                        "otherwise than meant, rather than warn (see 'warnings' below)")


def _input_args(p: argparse.ArgumentParser) -> None:
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


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tensorcalc",
        description="Symbolic tensor calculus in index notation: evaluate programs, "
                    "derive them symbolically, and check derivatives numerically. Besides "
                    "elementwise functions (tanh(e), ...) the language has functions of whole "
                    "axes (max[j](e), softmax[j](e), inv[i,j](e), ...: all are listed below). "
                    "Subscripts may be affine in indices (x[i+k], x[2*i+k], x[i-1]: "
                    "convolutions, strides, differences) or integer index arrays (E[t[n],j]: "
                    "gathers). Index conditions are 0/1 factors ([i != j], [j <= i], "
                    "[c != t[n]]) and masks after | (softmax[j | j <= i](e): a masked entry "
                    "takes no part); size(i) is how many values index i takes, and "
                    "mean[j](e) is sum[j](e) / size(j). A statement may read its own "
                    "previous step, a recurrence (h[-1,j] = h0[j]; h[t,j] = tanh(W[j,k] "
                    "h[t-1,k] + x[t,j]): an RNN, iterations, time stepping; give the number "
                    "of steps with --size n=N where no array has it); its derivative is a "
                    "recurrence running backwards.",
        epilog="\n\n".join([_functions_help(), _WARNINGS_NOTE, *_EXAMPLES.values()]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", metavar="{eval,derive,explain,check,serve}")
    sub.required = True
    _eval_command(sub)
    _derive_command(sub)
    _explain_command(sub)
    _check_command(sub)
    _serve_command(sub)
    return top


Commands = Any  # argparse's private _SubParsersAction


def _with_inputs(sub: Commands, name: str, summary: str) -> argparse.ArgumentParser:
    """A command that reads a program and arrays (``eval``, ``check``)."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=summary,
        epilog="\n\n".join([_FILES_NOTE, _WARNINGS_NOTE, _EXAMPLES[name]]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _program_args(p)
    _input_args(p)
    return p


def _eval_command(sub: Commands) -> None:
    e = _with_inputs(sub, "eval", "evaluate a program")
    e.add_argument("-o", "--output", metavar="OUT",
                   help="write the result in .npy format to exactly the path OUT (no .npy "
                        "is added) instead of printing it; a directory is refused")


def _derive_command(sub: Commands) -> None:
    d = sub.add_parser("derive", help="print a symbolic derivative",
                       epilog=_WARNINGS_NOTE + "\n\n" + _EXAMPLES["derive"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _program_args(d)
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


def _explain_command(sub: Commands) -> None:
    x = sub.add_parser("explain", help="print a program with every implied sum written out",
                       description="Print the program with every summation the convention "
                                   "implies written as sum[...] where it places it, and '#' "
                                   "notes on indices summed outside a function or a power, or "
                                   "on their own in one term (rule 2), and on the two traps "
                                   "that other commands warn of (below). The output compiles "
                                   "to the same program.",
                       epilog=_WARNINGS_NOTE + "\n\n" + _EXAMPLES["explain"],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("program", nargs="?", help="the program text (or use -f FILE)")
    x.add_argument("-f", "--file", help="read the program from FILE")


def _check_command(sub: Commands) -> None:
    c = _with_inputs(sub, "check", "compare a derivative with finite differences")
    c.add_argument("--wrt", required=True, help="the input to differentiate by")
    c.add_argument("--tol", type=_tolerance, default=1e-5,
                   help="largest allowed error, relative to the largest derivative, beside "
                        "the differences' own rounding error (default 1e-5); past 1,000 "
                        "entries of the input, 1,000 chosen at random (--seed) are checked")


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # nan fails every comparison
        raise argparse.ArgumentTypeError(f"a time limit is a number of seconds > 0, not {text!r}")
    return value


def _serve_command(sub: Commands) -> None:
    s = sub.add_parser("serve", help="start the playground, a local web page",
                       description="Serve the playground: a web page on this machine to type "
                                   "a program, derive it (rendered math, text, diagram, "
                                   "Python) and check it against finite differences. The URL "
                                   "it prints carries a random token that every request "
                                   "needs; stop it with Ctrl-C.")
    s.add_argument("--port", type=_port, default=8765,
                   help="the port (default 8765; 0 picks a free one)")
    s.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1, this machine only; "
                        "another address warns: anyone who reaches it with the token can "
                        "use it)")
    s.add_argument("--open", action="store_true", help="open the page in a web browser")
    s.add_argument("--time-limit", type=_seconds, default=TIME_LIMIT, metavar="SECONDS",
                   help=f"the longest one request may run (default {TIME_LIMIT:g})")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    shown: set[str] = set()
    previous = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        """A TensorCalcWarning as one line on stderr, once; any other as Python shows it."""
        if not issubclass(category, TensorCalcWarning):
            previous(message, category, filename, lineno, file, line)
        elif str(message) not in shown:
            shown.add(str(message))
            print(f"tensorcalc: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", TensorCalcWarning)  # shown once, by ``show``
        warnings.showwarning = show
        return _guarded(args)


def _guarded(args: argparse.Namespace) -> int:
    """``args`` run, every error one line on stderr and an exit status."""
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
    if args.command == "serve":
        return serve(args.host, args.port, args.open, args.time_limit)
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
    arrays = inputs(program, args.input, args.size, args.seed)
    program = program.with_sizes(arithmetic_sizes(program, given_sizes(args.size, program)))
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
    if args.command == "explain":  # its notes say what the warnings would
        return Program.from_source(text, warn=False)
    return compile(text, args.of, strict=args.strict)


def _check(program: Program, wrt: str, of: str | None, arrays: dict[str, Any], tol: float,
           seed: int) -> int:
    comparison = compare(program, wrt, of, arrays, tol, seed)
    print(comparison.summary)
    return 0 if comparison.verdict == "agree" else EXIT_DISAGREE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

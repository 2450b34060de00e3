"""A plan written as the source of one standalone Python function (NumPy and opt_einsum).

The function takes the program's inputs as keyword parameters and computes the
statements the result needs in order, one named temporary per term, from the same plan
the runner runs. The numerical helpers it needs are copied from ``ops.kernels`` and
``windows`` (the functions the runner calls), so the exported code computes what
``p(...)`` computes. A recurrence is a loop over its positions (``export_loops``).
Every name in the source comes from the grammar's identifiers (``[A-Za-z_][A-Za-z0-9_]*``)
or is made by the plan from them (``h@in1``, spelled ``h_in1``); one that a Python keyword,
a builtin, or a name of the generated code would shadow gets a trailing underscore, so
nothing from the user's text is ever executed.

>>> from tensorcalc.api import compile
>>> code = compile("y[i] = W[i,j] x[j]").to_python()
>>> [line for line in code.splitlines() if line.startswith("def y")]
['def y(*, W, x):']
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import textwrap
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ..ir import SIZE_MARK, Gather, Subscript
from ..ops import kernels
from ..ops.functions import FUNCTIONS
from ..ops.reductions import REDUCERS
from ..render.printing import format_number
from . import operands, windows
from .export_fused import fused_sum
from .export_fused import helpers as fused_helpers
from .export_loops import loop_names, sizes_in_code, write_loop

_RESERVED = {"np", "oe", "n", "inputs", "out", "annotations", "given", "index_sizes", "dtype"}
_BUILTINS = set(dir(builtins))
_SPELLED = str.maketrans({"@": "_", "+": "p", "-": "m"})
_SUM_CHUNK = 100


def kernel_source(fn: Callable[..., Any], name: str) -> str:
    """The source of a kernel as a module-level function called ``name``."""
    if isinstance(fn, (kernels.Native, kernels.WithConstants, kernels.Comparison)):
        return fn.source(name)
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        raise TypeError(f"kernel {fn!r} has no source to export: {err}") from None
    head = f"def {fn.__name__}("
    if not source.startswith(head):
        raise TypeError(f"kernel {fn.__name__} must be a plain def to be exported")
    return f"def {name}(" + source[len(head):].rstrip()


class _Writer:
    """Lines of one function body; temporaries ``t1, t2, ...`` avoid the names taken."""

    def __init__(self, taken: set[str], var: Mapping[str, str]):
        self.lines: list[str] = []
        self.kernels: dict[str, Callable[..., Any]] = {}
        self.taken = set(taken)
        self.var = var
        self.count = 0
        self.shared: dict[int, str] = {}
        self.arithmetic = False  # does the statement being written use index arithmetic?
        self.fused: list[str] = []  # module-level source of the fused sums (export_fused)
        self.fuse = True  # not inside a recurrence's loop (export_loops)

    def temp(self, expr: str) -> str:
        self.count += 1
        name = f"t{self.count}"
        while name in self.taken:
            self.count += 1
            name = f"t{self.count}"
        self.lines.append(f"    {name} = {expr}")
        return name

    def kernel(self, name: str, fn: Callable[..., Any]) -> str:
        self.kernels[f"_{name}"] = fn
        return f"_{name}"

    def statement(self, st: operands.StatementPlan) -> None:
        self.shared = {}
        self.lines.append("    n = {" + ", ".join(
            f"{i!r}: " + (f"index_sizes[{name[len(SIZE_MARK):]!r}]" if name.startswith(SIZE_MARK)
                          else self.plain_size(st, i, name, axis))
            for i, (name, axis) in st.sources.items()
        ) + "}")
        self.valid_rule(st, lambda tensor, axis: f"{self.var[tensor]}.shape[{axis}]")
        self.arithmetic = bool(st.accesses)
        target = self.var[st.name]
        value = self.sum(st.rhs, st.indices)
        self.lines.append(f"    {target} = np.asarray({value})")

    def valid_rule(self, st: operands.StatementPlan, shape_of: Callable[[str, int], str]
                   ) -> None:
        """Where a statement uses index arithmetic: the sizes ``n`` the caller gives, then
        cut by the valid rule (docs/index-arithmetic.md). ``shape_of(tensor, axis)`` writes
        the length of an axis of a tensor the statement reads."""
        if not st.accesses:
            return
        every = tuple(i for i in st.every_index if i not in st.given)
        self.lines.append(f"    given = {{i: v for i, v in (index_sizes or {{}}).items() "
                          f"if i in {every!r}}}")
        self.lines.append("    n.update(given)")
        reads = ", ".join(
            f"({repr(axis) if tensor is None else shape_of(tensor, int(axis))}, "
            f"{sub.parts!r}, {sub.offset}, {windows.read_text(tensor, axis, sub)!r})"
            for tensor, axis, sub in st.accesses)
        shrink = self.kernel("shrink_sizes", windows.shrink_sizes)
        by_given = self.kernel("size_by_given_reads", windows.size_by_given_reads)
        fixed = self.temp("set(given)" + (f" | {set(st.given)!r}" if st.given else ""))
        listed = self.temp(f"[{reads}]")
        self.lines.append(f"    {shrink}(n, {listed}, {fixed})")
        self.lines.append(f"    while {by_given}(n, {listed}, {fixed}, {st.indices!r}):")
        self.lines.append(f"        {shrink}(n, {listed}, {fixed})")

    def plain_size(self, st: operands.StatementPlan, i: str, name: str, axis: int) -> str:
        """The size of index ``i`` from the axis that sizes it; the shortest of its plain
        reads where the valid rule cuts them (``StatementPlan.shortest``)."""
        axes = dict.fromkeys([(name, axis)] + [(t, a) for j, t, a in st.occurrences
                                               if j == i and i in st.shortest])
        sizes = [f"{self.var[t]}.shape[{a}]" for t, a in axes]
        return sizes[0] if len(sizes) == 1 else f"min({', '.join(sizes)})"

    def sum(self, plan: operands.SumPlan, order: tuple[str, ...]) -> str:
        if not plan.terms:
            return self.temp(f"np.zeros({_shape(order)})")
        fused = fused_sum(self, plan, order, _shape) if self.fuse else None
        if fused is not None:
            return fused
        parts = [self.term_value(term, order) for term in plan.terms]
        if len(parts) == 1 and parts[0].startswith("t") and parts[0][1:].isdigit():
            return parts[0]
        # at most _SUM_CHUNK terms a line: Python's compiler recurses once per operator
        total = self.temp(" + ".join(parts[:_SUM_CHUNK]))
        for k in range(_SUM_CHUNK, len(parts), _SUM_CHUNK):
            total = self.temp(" + ".join([total] + parts[k:k + _SUM_CHUNK]))
        return total

    def term_value(self, term: operands.TermPlan, order: tuple[str, ...]) -> str:
        """A term's value laid out over ``order`` (on the diagonal its ties pick)."""
        value = self.term(term)
        if term.ties:
            have = order if set(term.free) == set(order) else term.free
            value = self.on_diagonal(value, term.einsum_out, have, term.ties)
        else:
            have = term.einsum_out
        return self._align(value, have, order)

    def _align(self, value: str, have: tuple[str, ...], want: tuple[str, ...]) -> str:
        if have == want:
            return value
        align = self.kernel("align", kernels.align)
        return f"{align}({value}, {have!r}, {want!r}, {_shape(want)}, np)"

    def term(self, term: operands.TermPlan) -> str:
        operands = [self.operand(op) for op in term.operands]
        scale = format_number(term.coef) if term.coef != 1 else ""
        for i in term.missing_summed:
            scale = (scale + " * " if scale else "") + f"n[{i!r}]"
        if not operands:
            return self.temp(f"np.asarray({scale or '1.0'}, dtype=dtype)")
        expr = f"oe.contract({term.spec!r}, {', '.join(operands)})" if term.is_einsum \
            else operands[0]
        if scale:
            expr = f"{scale} * {expr}"
        return self.temp(expr)

    def operand(self, op: operands.Operand) -> str:
        if isinstance(op, operands.RefOperand):
            return self.read(op)
        if isinstance(op, operands.DeltaOperand):
            return self.temp(f"np.eye(n[{op.i!r}], n[{op.j!r}])")
        if isinstance(op, operands.MaskOperand):
            mask, at = self.kernel("shift_mask", windows.shift_mask), self.subscript_at()
            index = self._index_arrays((op.sub,))
            return self.temp(f"{mask}({op.i!r}, {windows.encode(op.sub)!r}, {op.free!r}, n, "
                             f"{index}, float, np, {at}, {{}})")
        if isinstance(op, operands.ConditionOperand):
            return self.temp(f"({self.condition(op)}).astype(dtype)")
        if isinstance(op, operands.ScatterOperand):
            return self.scatter(op)
        if op.shared is not None and op.shared in self.shared:
            return self.shared[op.shared]
        value = self._operand(op)
        if op.shared is not None:
            self.shared[op.shared] = value
        return value

    def condition(self, op: operands.ConditionOperand) -> str:
        """``[a op b]`` over ``op.free``, as a boolean array expression."""
        hits, at = self.kernel("condition_hits", windows.condition_hits), self.subscript_at()
        index = self._index_arrays((op.a, op.b))
        return (f"{hits}({op.op!r}, {windows.encode(op.a)!r}, {windows.encode(op.b)!r}, "
                f"{op.free!r}, n, {index}, np, {at}, {{}})")

    def read(self, op: operands.RefOperand) -> str:
        """A tensor: itself, cut or padded to its indices' sizes, or read through its
        subscripts (the index arrays checked first)."""
        if op.subs is None and not self.arithmetic:
            return self.var[op.name]
        array = self.var[op.name]
        if op.subs is None:  # read as far as its indices run (zeros past its end)
            fit = self.kernel("fit", windows.fit)
            return self.temp(f"{fit}({array}, {_shape(op.indices)}, np.pad)")
        subs = tuple(windows.encode(a) for a in op.subs)
        index = self._index_arrays(op.subs)
        if windows.index_names(op.subs):
            index = self.temp(index)
            check = self.kernel("check_index_array", windows.check_index_array)
            for axis, sub in enumerate(op.subs):
                if isinstance(sub, Gather):
                    self.lines.append(f"    {check}({sub.name!r}, {index}[{sub.name!r}], "
                                      f"{array}.shape[{axis}], {op.name!r}, {axis}, np)")
        layout = self.kernel("window_layout", windows.window_layout)
        read, at = self.kernel("read_window", windows.read_window), self.subscript_at()
        view = self.kernel("strided_view", windows.strided_view)
        return self.temp(f"{read}({array}, {subs!r}, {op.indices!r}, n, {index}, "
                         f"{layout}({subs!r}, {op.indices!r}, n, {array}.shape), np, np.pad, "
                         f"{at}, {view}, {{}})")

    def scatter(self, op: operands.ScatterOperand) -> str:
        """The product of a term's other factors, sent through its shifted deltas."""
        order = op.grid + op.rest
        core = self.term(op.core)
        if op.core.ties:
            have = op.core.free
            core = self.on_diagonal(core, op.core.einsum_out, have, op.core.ties)
            values = self._align(core, have, order)
        else:
            values = self._align(core, op.core.einsum_out, order)
        at, find = self.subscript_at(), self.kernel("scatter_targets", windows.scatter_targets)
        send = self.kernel("scatter_shifts", windows.scatter_shifts)
        add = self.kernel("scatter_add", windows.scatter_add)
        shifts = tuple((p, windows.encode(sub)) for p, sub in op.shifts)
        index = self._index_arrays(sub for _, sub in op.shifts)
        linear = self.temp(f"{find}({shifts!r}, {op.grid!r}, {op.kept!r}, n, {index}, np, "
                           f"{at}, {{}})")
        targets = tuple(p for p, _ in op.shifts) + op.kept
        return self.temp(f"{send}(np.asarray({values}), {linear}, {targets!r}, {op.rest!r}, "
                         f"n, np, {add}, 'segments')")

    def subscript_at(self) -> str:
        return self.kernel("subscript_at", windows.subscript_at)

    def on_diagonal(self, value: str, einsum_out: tuple[str, ...], have: tuple[str, ...],
                    ties: dict[str, str]) -> str:
        """A term's value written on the diagonal its ties pick, over ``have``."""
        diagonal = kernels.diagonal_axes(have, ties)
        aligned = self._align(value, einsum_out, diagonal)
        write = self.kernel("on_diagonal", kernels.on_diagonal)
        return self.temp(f"{write}({aligned}, {have!r}, {ties!r}, {_shape(have)}, np)")

    def _index_arrays(self, subs: Iterable[Subscript]) -> str:
        """The index arrays by name, each cut to its indices' sizes (which a shifted read may
        have shrunk, the valid rule, docs/index-arithmetic.md)."""
        gathers = {a.name: a.indices for a in subs if isinstance(a, Gather)}
        fit = self.kernel("fit", windows.fit) if gathers else ""
        return "{" + ", ".join(f"{n!r}: {fit}(np.asarray({self.var[n]}), {_shape(own)}, np.pad)"
                               for n, own in gathers.items()) + "}"

    def _operand(self, op: operands.CallOperand | operands.PowerOperand
                 | operands.ReduceOperand | operands.SolveOperand | operands.GroupOperand) -> str:
        if isinstance(op, operands.ReduceOperand):
            layout = op.batch + op.indices
            arg = self.sum(op.arg, layout)
            fn = self.kernel(REDUCERS[op.fn].kernel.__name__, REDUCERS[op.fn].kernel)
            axes = tuple(range(len(op.batch), len(layout)))
            if not op.mask:
                return self.temp(f"{fn}({arg}, {axes!r}, np)")
            keep = self.temp(" & ".join(self.condition(c) for c in op.mask))
            masked = self.kernel("masked", kernels.masked)
            value = self.temp(f"{fn}({masked}({arg}, {keep}, "
                              f"float({str(REDUCERS[op.fn].masked)!r}), np), {axes!r}, np)")
            if REDUCERS[op.fn].keeps:  # 0 at an excluded entry, as the runner gives
                value = self.temp(f"{masked}({value}, {keep}, 0.0, np)")
            return value
        if isinstance(op, operands.SolveOperand):
            i, j = op.indices
            matrix = self.sum(op.matrix, op.batch + op.indices)
            if op.transpose:
                matrix = self.temp(f"np.swapaxes({matrix}, -1, -2)")
            contracted = i if op.transpose else j
            right = self._align(self.term(op.right), op.right.einsum_out,
                                op.batch + (contracted,) + op.rest)
            solve = self.kernel("solve", kernels.solve)
            return self.temp(f"{solve}({matrix}, {right}, np)")
        if isinstance(op, operands.CallOperand):
            args = [self.sum(a, op.free) for a in op.args]
            fn = self.kernel(op.fn, FUNCTIONS[op.fn].kernel)
            return self.temp(f"{fn}({', '.join(args)}, np)")
        if isinstance(op, operands.PowerOperand):
            base = self.sum(op.base, op.free)
            if isinstance(op.exponent, operands.SumPlan):
                return self.temp(f"{base} ** {self.sum(op.exponent, op.free)}")
            power = self.kernel("constant_power", kernels.constant_power)
            return self.temp(f"{power}({base}, {format_number(op.exponent)}, np)")
        return self.sum(op.body, op.free)


def _shape(order: tuple[str, ...]) -> str:
    return "(" + "".join(f"n[{i!r}], " for i in order) + ")"


def _clashes(name: str) -> bool:
    """Would this name, used as it is, shadow Python or a name of the generated code?"""
    return keyword.iskeyword(name) or name in _RESERVED or name in _BUILTINS \
        or name.startswith("_") or (name.startswith("t") and name[1:].isdigit())


def python_names(names: list[str]) -> dict[str, str]:
    """A distinct Python variable for each tensor name: itself where that is safe, else
    the name with underscores added until it is safe and taken by no other tensor. The
    names the plan makes are spelled as identifiers first: a hoisted statement ``h@in1``
    as ``h_in1``, a slice ``x@0+1`` as ``x_0p1``, a row ``h@row`` as ``h_row``."""
    out: dict[str, str] = {}
    taken = set(names)
    for name in dict.fromkeys(names):
        var = name.translate(_SPELLED)
        var = "v" + var if var.startswith("_") else var  # _helpers are ours
        while _clashes(var) or (var != name and var in taken):
            var += "_"
        out[name] = var
        taken.add(var)
    return out


def _signature(fname: str, inputs: list[str], optional: list[str], var: Mapping[str, str],
               arithmetic: bool) -> tuple[str, list[str]]:
    """The ``def`` line of the function, and the lines that take its inputs: keyword
    parameters, or ``**inputs`` where a name would shadow Python; ``index_sizes`` too where
    a statement uses index arithmetic."""
    if any(var[n] != n for n in inputs + optional):  # a name Python needs: take **inputs
        body = ["    index_sizes = inputs.pop('index_sizes', None)"] if arithmetic else []
        return f"def {fname}(**inputs):", body + [f"    {var[n]} = inputs[{n!r}]"
                                                  for n in inputs]
    params = inputs + [f"{n}=None" for n in optional] + (["index_sizes=None"] if arithmetic
                                                          else [])
    return (f"def {fname}(*, {', '.join(params)}):" if params else f"def {fname}():"), []


def to_python(plan: operands.ProgramPlan, accepts: tuple[str, ...], texts: Mapping[str, str],
              function_name: str | None = None, sizes: Mapping[str, int] | None = None,
              index_arrays: Collection[str] = ()) -> str:
    """The source of one function computing the plan's result from keyword arrays.

    It takes every name in ``accepts`` as a keyword; those the plan does not need are
    optional (a derivative accepts every input of the program it came from). ``texts``
    holds each statement as index notation, for the docstring and comments.
    """
    inputs = list(plan.inputs)
    optional = [n for n in accepts if n not in inputs]
    wanted = function_name or plan.result
    names = inputs + optional + [st.name for st in plan.statements] + \
        [name for loop in plan.loops for name in loop_names(loop)]
    var = python_names(names + ([wanted] if wanted not in names else []))
    fname = var[wanted]  # the function may share its result's name: that is a local
    writer = _Writer(set(var.values()) | {fname}, var)
    arithmetic = any(st.accesses for st in plan.statements)
    header, body = _signature(fname, inputs, optional, var, arithmetic)
    if sizes and arithmetic:  # the program's given sizes
        body.append(f"    index_sizes = {{**{dict(sizes)!r}, **(index_sizes or {{}})}}")
    # As a call binds its inputs: integers and bools as float64, and constants made in the
    # inputs' float type (float32 in, float32 out)
    data = [var[n] for n in inputs if n not in index_arrays]
    if data:
        floats = writer.kernel("as_float", kernels.as_float)
        body.append(f"    {', '.join(data)}, = ({floats}(a, np) for a in ({', '.join(data)}, ))")
    body.append(f"    dtype = np.result_type({''.join(d + ', ' for d in data)}np.float32)")
    body += _statements(writer, plan, texts, sizes or {})
    result = var[plan.result]
    if inputs:  # a result is a new array, never a view of an input
        body.append(f"    if any(np.may_share_memory({result}, a) "
                    f"for a in ({''.join(var[n] + ', ' for n in inputs)})):")
        body.append(f"        {result} = {result}.copy()")
    body.append(f"    if not {result}.flags.writeable:")
    body.append(f"        {result} = {result}.copy()")
    body.append(f"    return {result}")
    helpers = [kernel_source(fn, name) for name, fn in sorted(writer.kernels.items())]
    hoisted = {st.name for st in plan.hoisted}
    doc = "\n".join(texts[st.name] for st in plan.statements if st.name not in hoisted)
    head = [
        f'"""Generated by tensorcalc; needs only NumPy and opt_einsum.\n\n{doc}\n"""',
        "from __future__ import annotations",
        "",
        "import numpy as np",
        "import opt_einsum as oe",
        "",
        "",
        header,
    ]
    tail = ["", ""] + [h + "\n\n" for h in helpers + fused_helpers(writer.fused)]
    return "\n".join(head + body + tail).rstrip() + "\n"


def _statements(writer: _Writer, plan: operands.ProgramPlan, texts: Mapping[str, str],
                sizes: Mapping[str, int]) -> list[str]:
    """The lines computing the statements in order: each recurrence at its first member
    (``export_loops``), the statements hoisted out of it before it."""
    loops = {loop.names[0]: loop for loop in plan.loops}
    members = {name for loop in plan.loops for name in loop.names}
    hoisted = {st.name for st in plan.hoisted}
    available = set(plan.inputs)
    lines: list[str] = []
    for st in plan.statements:
        if st.name in loops:
            writer.lines = []
            write_loop(writer, loops[st.name], sizes_in_code(writer.var, set(available), sizes),
                       sizes, texts)
            lines += writer.lines
        elif st.name not in members:
            writer.lines = [f"    # {writer.var[st.name]}, computed before the recurrence that "
                            f"reads it, for all its positions at once: {texts[st.name]}"
                            if st.name in hoisted else f"    # {texts[st.name]}"]
            writer.statement(st)
            lines += writer.lines
        available.add(st.name)
    return lines

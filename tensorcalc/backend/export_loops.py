"""A recurrence in exported code (``Program.to_python()``, docs/recurrences.md).

The runner (``stepping.py``) binds a recurrence's step once per pattern of present terms;
exported code writes the step once, as a Python loop over the positions, with each term
of each member under an ``if`` that says whether the term is there at the position (the
rule of ``stepping._present``: its conditions hold and each step of the recurrence it
reads is inside it; a slice of another array past its ends reads zeros). The sizes of a
step's indices are found before the loop by the runner's own propagation
(``loops.step_sizes``), here as source text (``W.shape[1]``), and each member's rows are
stacked along the recurrence index after it. Nothing inside the loop is fused
(``export_fused`` compiles per call, not per position), and each term's temporaries are
its own: none made under one ``if`` is read outside it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol, TypeVar

from ..ir import SIZE_MARK
from . import operands
from .loops import (
    LoopPlan,
    MemberPlan,
    Read,
    Size,
    SizeOf,
    StepTerm,
    slice_name,
    step_count,
    step_sizes,
)
from .stepping import plan_step, row_name, step_statement

Value = TypeVar("Value")


class Writer(Protocol):
    """What this module uses of ``export._Writer``."""

    lines: list[str]
    var: Mapping[str, str]
    shared: dict[int, str]
    fuse: bool
    arithmetic: bool

    def term_value(self, term: operands.TermPlan, order: tuple[str, ...]) -> str: ...

    def valid_rule(self, st: operands.StatementPlan, shape_of: Callable[[str, int], str]
                   ) -> None: ...


def loop_names(loop: LoopPlan) -> list[str]:
    """The names the code of a recurrence uses beside its members': each slice its steps
    read (``x@0+1``); for each member the shape of its row (``h@row``), the list of its
    rows (``h@rows``) and its step's index sizes (``h@sizes``); the position and the
    number of positions (``h@step``, ``h@steps``, after the first member). Each suffix is
    one of its own, so no two of these names are equal."""
    first = loop.members[0].name
    names = [slice_name(*r) for m in loop.members for t in m.terms for r in t.reads]
    names += [name for m in loop.members for t in m.terms for name, *_ in t.onehots]
    names += [name for m in loop.members for t in m.terms for name, _ in t.scalars]
    for m in loop.members:
        names += [row_name(m.name), f"{m.name}@rows", f"{m.name}@sizes"]
    return list(dict.fromkeys(names + [f"{first}@step", f"{first}@steps"]))


def sizes_in_code(var: Mapping[str, str], available: Collection[str],
                  given: Mapping[str, int]) -> SizeOf:
    """A tensor's axis's size as source text: the axis of an array computed or taken
    before the loop, or a size the program was given (``index_sizes``); None otherwise."""
    def size_of(tensor: str, axis: int) -> str | None:
        if tensor.startswith(SIZE_MARK):
            key = tensor[len(SIZE_MARK):]
            return f"index_sizes[{key!r}]" if key in given else None
        return f"{var[tensor]}.shape[{axis}]" if tensor in available else None
    return size_of


def write_loop(writer: Writer, loop: LoopPlan, size_of: SizeOf, given: Mapping[str, int],
               texts: Mapping[str, str]) -> None:
    """The lines of one recurrence: the sizes, the loop over the positions, the rows
    stacked into each member's value."""
    var, first = writer.var, loop.members[0]
    at, count = var[f"{first.name}@step"], var[f"{first.name}@steps"]
    named: dict[str, Size] = {i: f"index_sizes[{i!r}]" for i in given}
    sizes = step_sizes(loop, size_of, named)
    way = "up" if loop.direction > 0 else "down (it reads the position after)"
    lines = [f"    # the recurrence of {', '.join(loop.names)} along {first.index}, run {way}: "
             f"{at} is the position, {count} their number",
             f"    {count} = {step_count(loop, size_of, named)}"]
    step = plan_step([step_statement(m, m.terms) for m in loop.members])
    for m, st in zip(loop.members, step.statements):
        sized = var[f"{m.name}@sizes"]
        lines += [f"    {sized} = {{" + ", ".join(f"{i!r}: {n}" for i, n in
                                                   sizes[m.name].items()) + "}",
                  f"    {var[row_name(m.name)]} = (" +
                  "".join(f"{sized}[{i!r}], " for i in m.indices) + ")",
                  f"    {var[f'{m.name}@rows']} = [None] * {count}"]
        if st.accesses:  # a constant subscript (z[t,b,1,j]) or other index arithmetic
            lines.append(f"    n = {sized}")
            lines += _captured(writer, writer.valid_rule, st,
                               lambda tensor, axis: _length(tensor, axis, loop, var))[0]
    positions = f"range({count})" if loop.direction > 0 else f"range({count} - 1, -1, -1)"
    lines.append(f"    for {at} in {positions}:")
    writer.fuse = False
    for m, st in zip(loop.members, step.statements):
        lines += _member(writer, loop, m, st, texts[m.name])
    writer.fuse = True
    for m in loop.members:
        row = var[row_name(m.name)]
        lines.append(f"    {var[m.name]} = np.stack({var[f'{m.name}@rows']}) if {count} else "
                     f"np.zeros((0, *{row}), dtype=dtype)")
    writer.lines += lines


def _member(writer: Writer, loop: LoopPlan, m: MemberPlan, st: operands.StatementPlan,
            text: str) -> list[str]:
    """A member's step at the position: the sum of its terms there, kept as a row."""
    writer.arithmetic = bool(st.accesses)
    var = writer.var
    value = var[m.name]
    lines = [f"        # {text}", f"        n = {var[f'{m.name}@sizes']}",
             f"        {value} = np.zeros({var[row_name(m.name)]}, dtype=dtype)"]
    for step, term in zip(m.terms, st.rhs.terms):
        checks = _presence(step, loop, var)
        indent = "    " * (2 + bool(checks))
        if checks:
            lines.append(f"        if {' and '.join(checks)}:")
        lines += [f"{indent}{var[slice_name(*r)]} = {_slice(r, loop, var)}  # "
                  f"{_read_text(r, m.index)}" for r in step.reads]
        lines += [f"{indent}{line}" for line in _positional(step, m, loop, var)]
        writer.shared = {}  # a value shared with a term absent here would be unset
        body, got = _captured(writer, writer.term_value, term, m.indices)
        lines += [indent[4:] + line for line in body]
        lines.append(f"{indent}{value} = {value} + {got}")
    lines.append(f"        {var[f'{m.name}@rows']}[{var[_position(loop)]}] = {value}")
    return lines


def _captured(writer: Writer, write: Callable[..., Value], *args: Any
              ) -> tuple[list[str], Value]:
    """The lines ``write(*args)`` adds (at the function body's indent), and what it
    returns."""
    kept, writer.lines = writer.lines, []
    try:
        got = write(*args)
        return writer.lines, got
    finally:
        writer.lines = kept


def _position(loop: LoopPlan) -> str:
    return f"{loop.members[0].name}@step"


def _presence(term: StepTerm, loop: LoopPlan, var: Mapping[str, str]) -> list[str]:
    """The checks that a term is there at the position (``stepping._present``): its
    conditions hold and each step of the recurrence it reads is inside it (a slice of
    another array past its ends reads zeros). None: always there."""
    at = var[_position(loop)]
    checks = []
    for op, a, b, constant in term.conditions:
        left = _at(at, a) if a is not None else str(constant)
        right = _at(at, b) if b is not None else str(constant)
        checks.append(f"{left} {op} {right}")
    for tensor, _axis, offset in term.reads:
        if tensor in loop.names:  # a member, along its first axis (ir.recurrences)
            length = var[f"{loop.members[0].name}@steps"]
            checks.append(f"{_at(at, offset)} < {length}" if offset >= 0 else
                          f"0 <= {_at(at, offset)} < {length}")
    return checks


def _positional(term: StepTerm, m: MemberPlan, loop: LoopPlan, var: Mapping[str, str]
                ) -> list[str]:
    """What a term reads of the position itself (``stepping.LoopStep._positional``): a
    one-hot row for ``delta[t,r]``, and each condition inside a function as a number."""
    at = var[_position(loop)]
    lines = [f"{var[name]} = (np.arange({var[row_name(m.name)]}[{axis}]) == "
             f"{_at(at, offset)}).astype(dtype)" for name, axis, offset in term.onehots]
    for name, (op, a, b, constant) in term.scalars:
        left = _at(at, a) if a is not None else str(constant)
        right = _at(at, b) if b is not None else str(constant)
        lines.append(f"{var[name]} = np.asarray(float({left} {op} {right}), dtype=dtype)")
    return lines


def _length(tensor: str, axis: int, loop: LoopPlan, var: Mapping[str, str]) -> str:
    """The length of an axis of what a step reads, before the loop: an array, a member's
    row (its value at the position, or a slice of it at another), a slice of an array."""
    sliced = {slice_name(*r): r for m in loop.members for t in m.terms for r in t.reads}
    if tensor in sliced:
        name, cut, _offset = sliced[tensor]
        if name in loop.names:
            return f"{var[row_name(name)]}[{axis}]"
        return f"{var[name]}.shape[{axis + (axis >= cut)}]"
    if tensor in loop.names:
        return f"{var[row_name(tensor)]}[{axis}]"
    return f"{var[tensor]}.shape[{axis}]"


def _at(position: str, offset: int) -> str:
    return f"{position} {'+' if offset > 0 else '-'} {abs(offset)}" if offset else position


def _slice(read: Read, loop: LoopPlan, var: Mapping[str, str]) -> str:
    """The slice a step reads at the position: a member's row, or an array's."""
    tensor, axis, offset = read
    at = _at(var[_position(loop)], offset)
    if tensor in loop.names:
        return f"{var[f'{tensor}@rows']}[{at}]"
    # past the array's ends a slice reads zeros (stepping._slice)
    return (f"{var[tensor]}[{':, ' * axis}{at}] if 0 <= {at} < {var[tensor]}.shape[{axis}] "
            f"else 0 * {var[tensor]}[{':, ' * axis}0]")


def _read_text(read: Read, index: str) -> str:
    """What a slice is, in the program's notation: ``h[t-1]``, ``x[:,t+1]``."""
    tensor, axis, offset = read
    at = f"{index}{offset:+d}" if offset else index
    return f"{tensor}[{':,' * axis}{at}]"

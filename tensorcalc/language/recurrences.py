"""Recurrences in the program text (docs/recurrences.md): start lines and reads of a
statement's own earlier steps, lowered to what the rest of the language already has.

A statement may read itself, or a statement assigned after it, at the previous step of
its first index (``h[t-1,k]`` in ``h[t,j] = ...``); the statements that read each other so
form a recurrence along that index, which the backend runs step by step. A start line
``h[-1,j] = h0[j]`` gives the value before the first step; without one it is zero. A read
``h[t+1,k]`` of a later step (an adjoint running the other way) reads zero past the end.

Lowering writes the state before each step as a statement of its own,

    h_prev[t,k] = [t == 0] h0[k] + h[t-1,k]

and reads ``h_prev[t,k]`` where the text read ``h[t-1,k]``: past the start, the shifted
read's term is absent (docs/index-arithmetic.md) and the start's term is there, so a
nonlinear function of the previous state sees the start, never a missing value. A read
that is itself a factor of a top-level term (``f[t,j] c[t-1,j]``) with no start line is
left as written: its absent term is the zero it stands for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ..errors import ProgramError
from ..ir import Affine, Gather, Subscript, affine, fresh_name, subscript_text
from .surface import (
    SBinary,
    SCall,
    SCompare,
    SCond,
    SDeclaration,
    SDelta,
    SExpr,
    SNeg,
    SNumber,
    SPow,
    SReduce,
    SStatement,
    SSumOver,
    STensor,
)
from .surface_walks import first, flatten_product, flatten_sum, operands

Line = SStatement | SDeclaration


@dataclass(frozen=True)
class Desugared:
    """The lines with start lines gone and state statements added; ``back_reads`` holds
    (reader, name) for the reads of a name assigned at or after its reader, which lowering
    accepts as steps of a recurrence."""

    lines: list[Line]
    back_reads: frozenset[tuple[str, str]]


def desugar(lines: list[Line]) -> Desugared:
    """Start lines and reads of earlier steps lowered (see the module's docstring)."""
    starts: dict[str, SStatement] = {}
    order: dict[str, int] = {}
    assigned: dict[str, SStatement] = {}
    for k, line in enumerate(lines):
        if isinstance(line, SStatement) and line.start:
            if line.name in starts:
                raise ProgramError(f"{line.name} has two start lines: at "
                                   f"{starts[line.name].pos} and at {line.pos}")
            starts[line.name] = line
        elif isinstance(line, SStatement):
            order.setdefault(line.name, k)
            assigned.setdefault(line.name, line)
    for name, s in starts.items():
        _check_start(s, assigned.get(name), order.get(name), lines.index(s))
    if not starts and not _any_back_read(lines, order):
        return Desugared(lines, frozenset())
    states = _States(starts, order, assigned, _names(lines))
    out_lines: dict[int, Line] = {}
    for k, line in enumerate(lines):
        if isinstance(line, SStatement) and not line.start:
            out_lines[k] = states.rewrite(line, k)
    result: list[Line] = []
    for k, line in enumerate(lines):
        if isinstance(line, SStatement) and line.start:
            continue
        result += states.placed.get(k, [])
        result.append(out_lines.get(k, line))
    return Desugared(result, frozenset(states.back))


class _States:
    """The state statements made so far (``x_prev``), where each goes, and the reads of
    later statements that lowering is to accept."""

    def __init__(self, starts: dict[str, SStatement], order: dict[str, int],
                 assigned: dict[str, SStatement], taken: set[str]):
        self.starts, self.order, self.assigned, self.taken = starts, order, assigned, taken
        self.wrappers: dict[tuple[str, int], str] = {}  # (recurring name, step) -> name
        self.placed: dict[int, list[SStatement]] = {}  # line number -> statements before it
        self.back: set[tuple[str, str]] = set()

    def rewrite(self, line: SStatement, k: int) -> SStatement:
        direct = _direct_reads(line.rhs)
        return replace(line, rhs=_map_tensors(line.rhs,
                                              lambda node: self.read(node, line, k, direct)))

    def read(self, node: STensor, line: SStatement, k: int, direct: set[int]) -> SExpr:
        step = _step_of(node, line, self.order, self.starts, k)
        if step is None:
            return node
        if self.order[node.name] >= k:
            self.back.add((line.name, node.name))
        if id(node) in direct and node.name not in self.starts:
            return node  # its absent term is the zero it stands for
        key = (node.name, step)
        if key not in self.wrappers:
            name = fresh_name(f"{node.name}_{'prev' if step < 0 else 'next'}", self.taken)
            self.wrappers[key] = name
            self.taken.add(name)
            self.placed.setdefault(k, []).append(
                _state(name, self.assigned[node.name], self.starts.get(node.name), step))
            self.back.add((name, node.name))
        return STensor(self.wrappers[key], (line.indices[0],) + (node.indices or ())[1:],
                       node.pos)


def _check_start(s: SStatement, st: SStatement | None, at: int | None, line: int) -> None:
    if st is None or at is None:
        raise ProgramError(f"{s.name}[-1,...] at {s.pos} starts a recurrence, but no statement "
                           f"assigns {s.name}")
    if len(s.indices) + 1 != len(st.indices):
        raise ProgramError(f"the start line of {s.name} at {s.pos} has {len(s.indices) + 1} "
                           f"indices but {s.name} has {len(st.indices)} at {st.pos}")
    if line > at:
        raise ProgramError(f"the start line of {s.name} at {s.pos} comes after {s.name} is "
                           f"assigned at {st.pos}; write it before")


def _any_back_read(lines: list[Line], order: dict[str, int]) -> bool:
    for k, line in enumerate(lines):
        if isinstance(line, SStatement) and first(
                line.rhs, lambda n, k=k: isinstance(n, STensor)  # type: ignore[misc]
                and order.get(n.name, -1) >= k) is not None:
            return True
    return False


def _step_of(node: STensor, line: SStatement, order: dict[str, int],
             starts: dict[str, SStatement], k: int) -> int | None:
    """-1 or +1 where ``node`` reads a step of a recurrence (the previous or the next
    step of ``line``'s first index); None for an ordinary read. A read of ``line`` itself
    or of a later statement must be such a step."""
    at = order.get(node.name)
    later = at is not None and at >= k
    if not later and node.name not in starts:
        return None
    t = line.indices[0] if line.indices else None
    subs = node.indices or ()
    step = None
    if t is not None and subs and isinstance(subs[0], Affine) \
            and subs[0].parts == ((t, 1),) and subs[0].offset in (-1, 1) \
            and all(isinstance(s, str) for s in subs[1:]):
        step = subs[0].offset
    if step == 1 and node.name in starts:
        step = None  # a started recurrence read ahead: an ordinary shifted read
    if step is None and later:
        where = "itself" if node.name == line.name else f"{node.name}, assigned later"
        written = f"{node.name}[{','.join(subscript_text(s) for s in subs)}]"
        first_index = f"{t}-1" if t is not None else "t-1"
        raise ProgramError(
            f"{line.name} reads {where} as {written} at {node.pos}: a statement may read itself "
            f"or a later statement only at the previous step of its first index "
            f"({node.name}[{first_index}, ...], the other subscripts plain indices), which "
            "makes a recurrence along that index (docs/recurrences.md); otherwise every "
            "name is assigned before its use")
    return step


def _direct_reads(rhs: SExpr) -> set[int]:
    """The ids of the tensor reads that are themselves factors of a top-level term (not
    divisors, not inside a function, a power or a parenthesised sum)."""
    out: set[int] = set()
    for _sign, operand in flatten_sum(rhs):
        for f, inverse in flatten_product(operand)[1]:
            if isinstance(f, STensor) and not inverse:
                out.add(id(f))
    return out


def _state(name: str, st: SStatement, start: SStatement | None, step: int) -> SStatement:
    """``name[t,...] = [t == 0] start[...] + x[t-1,...]`` (or ``x[t+1,...]``) over the
    recurring statement's own index names."""
    t, rest = st.indices[0], st.indices[1:]
    pos = start.pos if start is not None else st.pos
    shifted: SExpr = STensor(st.name, (affine(((t, 1),), step),) + rest, pos)
    if start is None:
        return SStatement(name, st.indices, shifted, pos)
    mapping = dict(zip(start.indices, rest))
    begin = SCond("==", t, Affine((), 0), pos)
    value = _map_tensors(start.rhs, lambda n: n, mapping)
    return SStatement(name, st.indices, SBinary("+", SBinary("*", begin, value, pos), shifted,
                                                pos), pos)


def _names(lines: list[Line]) -> set[str]:
    """Every tensor name of the program: a state statement's name avoids them."""
    names: set[str] = set()
    for line in lines:
        if isinstance(line, SDeclaration):
            names |= {n for n, _ in line.inputs}
            continue
        names.add(line.name)
        stack: list[SExpr] = [line.rhs]
        while stack:
            node = stack.pop()
            if isinstance(node, STensor):
                names.add(node.name)
            stack += operands(node)
    return names


def _rename_sub(s: Subscript, mapping: dict[str, str]) -> Subscript:
    if isinstance(s, str):
        return mapping.get(s, s)
    if isinstance(s, Affine):
        return affine(((mapping.get(n, n), c) for n, c in s.parts), s.offset)
    if isinstance(s, Gather):
        return Gather(s.name, tuple(mapping.get(i, i) for i in s.indices))
    return s  # pragma: no cover - the subscript kinds are the three above


def _map_tensors(node: SExpr, fn: Callable[[STensor], SExpr],
                 mapping: dict[str, str] | None = None) -> SExpr:
    """``node`` with each tensor read replaced by ``fn``'s answer, and index names renamed
    by ``mapping`` (a start line's names become the recurring statement's)."""
    m = mapping or {}

    def subs(items: Iterable[Subscript]) -> tuple[Subscript, ...]:
        return tuple(_rename_sub(s, m) for s in items)

    def walk(n: SExpr) -> SExpr:
        if isinstance(n, STensor):
            return fn(replace(n, indices=None if n.indices is None else subs(n.indices))
                      if m else n)
        if isinstance(n, SBinary):
            return replace(n, left=walk(n.left), right=walk(n.right))
        if isinstance(n, SNeg):
            return replace(n, operand=walk(n.operand))
        if isinstance(n, SPow):
            return replace(n, base=walk(n.base), exponent=walk(n.exponent))
        if isinstance(n, SCall):
            return replace(n, args=tuple(walk(a) for a in n.args))
        if isinstance(n, SCompare):
            return replace(n, left=walk(n.left), right=walk(n.right))
        if isinstance(n, SSumOver):
            return replace(n, indices=tuple(m.get(i, i) for i in n.indices), body=walk(n.body))
        if isinstance(n, SReduce):
            return replace(n, indices=tuple(m.get(i, i) for i in n.indices), body=walk(n.body),
                           mask=tuple(replace(c, a=_rename_sub(c.a, m), b=_rename_sub(c.b, m))
                                      for c in n.mask))
        if isinstance(n, SDelta):
            return replace(n, indices=subs(n.indices))
        if isinstance(n, SCond):
            return replace(n, a=_rename_sub(n.a, m), b=_rename_sub(n.b, m))
        if isinstance(n, SNumber):
            return n
        raise ProgramError(f"cannot read a recurrence through {type(n).__name__} at "
                           f"{getattr(n, 'pos', '?')}")  # pragma: no cover

    return walk(node)



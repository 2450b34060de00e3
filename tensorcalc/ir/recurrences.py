"""Recurrences among statements (docs/recurrences.md): which statements read each
other's steps, along which index, in which direction.

Statements form a recurrence when they read each other in a cycle; each read inside the
cycle is at the same step of the reader's first index (``c[t,j]`` in ``h[t,j]``, of a
statement before the reader) or at the step before or after it (``h[t-1,k]``,
``h_bar[t+1,j]``), all in one direction. A step then computes each statement of the
group at one position, in program order, and the steps run forward (reads of the step
before) or backward (reads of the step after).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import ProgramError
from .nodes import Ref, Statement
from .queries import dependencies
from .subscripts import Affine
from .walk import statement_refs


@dataclass(frozen=True)
class Group:
    """The statements of one recurrence, in program order, and its direction: +1 when a
    step reads the step before (``h[t-1]``), -1 when it reads the step after."""

    members: tuple[str, ...]
    direction: int


def step_of(ref: Ref, index: str) -> int | None:
    """0, -1 or +1 where ``ref`` reads its first axis at ``index``, ``index-1`` or
    ``index+1``; None otherwise."""
    first = ref.axes[0] if ref.axes else None
    if first == index:
        return 0
    if isinstance(first, Affine) and first.parts == ((index, 1),) and first.offset in (-1, 1):
        return first.offset
    return None


def recurrence_groups(statements: Sequence[Statement]) -> tuple[Group, ...]:
    """The recurrences among ``statements`` (cycles of reads), checked; none for a
    program without one."""
    position = {st.name: k for k, st in enumerate(statements)}
    if not any(position.get(r.name, -1) >= k for k, st in enumerate(statements)
               for r in statement_refs(st)):
        return ()
    edges = {st.name: {r.name for r in statement_refs(st) if r.name in position}
             for st in statements}
    out = []
    for component in _cycles(list(position), edges):
        members = tuple(sorted(component, key=position.__getitem__))
        out.append(_checked(members, {st.name: st for st in statements}, position))
    return tuple(sorted(out, key=lambda g: position[g.members[0]]))


def _checked(members: tuple[str, ...], by_name: dict[str, Statement],
             position: dict[str, int]) -> Group:
    directions = set()
    for name in members:
        st = by_name[name]
        t = st.indices[0] if st.indices else None
        for r in statement_refs(st):
            if r.name not in members:
                continue
            step = step_of(r, t) if t is not None else None
            if step is None or (step == 0 and position[r.name] >= position[name]):
                raise ProgramError(
                    f"statement {name} reads {r.name} inside a recurrence, but not at the same "
                    f"step of its first index, nor at the step before or after, nor a statement "
                    f"before it at the same step (docs/recurrences.md)")
            if step:
                directions.add(step)
    if len(directions) != 1:
        raise ProgramError(f"the recurrence of {', '.join(members)} reads both the step "
                           "before and the step after; a recurrence runs one way")
    return Group(members, -directions.pop())


def _cycles(nodes: list[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with a cycle (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    component.add(w)
                    if w == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append(component)
    return found


def members_of(groups: Iterable[Group]) -> dict[str, Group]:
    """Each member statement's group."""
    return {name: g for g in groups for name in g.members}


def steps_together(statements: Sequence[Statement], groups: Iterable[Group]
                   ) -> tuple[Statement, ...]:
    """The statements in an order where each recurrence's statements are next to each
    other (a step computes them all) and everything else follows what it reads: a
    statement the derivative placed among them that does not read them goes before."""
    group_of = members_of(groups)
    position = {st.name: k for k, st in enumerate(statements)}
    node = {st.name: (group_of[st.name].members[0] if st.name in group_of else st.name)
            for st in statements}
    needs: dict[str, set[str]] = {}
    for st in statements:
        deps = {node[n] for n in dependencies(st) if n in node} - {node[st.name]}
        needs.setdefault(node[st.name], set()).update(deps)
    done: set[str] = set()
    order: list[str] = []
    pending = sorted(needs, key=position.__getitem__)
    while pending:
        ready = next((n for n in pending if needs[n] <= done), pending[0])
        pending.remove(ready)
        done.add(ready)
        order.append(ready)
    by_name = {st.name: st for st in statements}
    out: list[Statement] = []
    for n in order:
        members = group_of[n].members if n in group_of else (n,)
        out += [by_name[m] for m in members]
    return tuple(out)

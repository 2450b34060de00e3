"""Subscripts: a plain index name, index arithmetic (``Affine``: ``i+k``, ``2*i-1``) or an
integer tensor used as a subscript (``Gather``: ``t[n]``), with how to write, rename and
substitute into them.

>>> subscript_text(affine([("i", 1), ("k", 1)]))
'i+k'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

__all__ = [
    "Affine", "Arithmetic", "Gather", "Subscript", "affine", "compared", "rename_subscript",
    "sub_names", "subscript_text",
]


def unique(names: Iterable[str]) -> tuple[str, ...]:
    """The names in order, each once."""
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)


class Affine:
    """An index expression ``c1*i1 + c2*i2 + ... + offset`` with integer coefficients
    (docs/index-arithmetic.md): ``i+k``, ``2*i+k``, ``p-i``, ``i+1``. ``parts`` holds (index,
    coefficient) pairs in order of writing, each index once, no coefficient zero."""

    parts: tuple[tuple[str, int], ...]
    offset: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.parts)

    def coefficient(self, name: str) -> int:
        return dict(self.parts).get(name, 0)


@dataclass(frozen=True)


class Gather:
    """An integer tensor used as a subscript: ``t[n]`` in ``E[t[n], j]``
    (docs/index-arithmetic.md)."""

    name: str
    indices: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return unique(self.indices)


Arithmetic = Union[Affine, Gather]  # noqa: UP007
Subscript = Union[str, Affine, Gather]  # noqa: UP007


def affine(parts: Iterable[tuple[str, int]], offset: int = 0) -> Subscript:
    """An affine subscript with equal indices merged and zero coefficients dropped; a plain
    index name where it is one (``1*i + 0``)."""
    merged: dict[str, int] = {}
    for n, c in parts:
        merged[n] = merged.get(n, 0) + c
    kept = tuple((n, c) for n, c in merged.items() if c != 0)
    if offset == 0 and len(kept) == 1 and kept[0][1] == 1:
        return kept[0][0]
    return Affine(kept, offset)


def subscript_text(s: Subscript) -> str:
    """A subscript as the language writes it: ``i``, ``i+k``, ``2*i-1``, ``t[n]``."""
    if isinstance(s, str):
        return s
    if isinstance(s, Gather):
        return f"{s.name}[{','.join(s.indices)}]"
    out = ""
    for n, c in s.parts:
        sign = "-" if c < 0 else ("+" if out else "")
        out += sign + (n if abs(c) == 1 else f"{abs(c)}*{n}")
    if s.offset or not out:
        out += f"{'-' if s.offset < 0 else ('+' if out else '')}{abs(s.offset)}"
    return out


def sub_names(sub: Subscript) -> tuple[str, ...]:
    return (sub,) if isinstance(sub, str) else sub.names


def rename_subscript(sub: Subscript, mapping: dict[str, str]) -> Subscript:
    if isinstance(sub, str):
        return mapping.get(sub, sub)
    if isinstance(sub, Gather):
        return Gather(sub.name, tuple(mapping.get(i, i) for i in sub.indices))
    return affine(((mapping.get(n, n), c) for n, c in sub.parts), sub.offset)


def compared(op: str, a: Subscript, b: Subscript) -> bool | None:
    """The truth of ``a op b`` where it does not depend on the values of the indices
    (``i <= i``, ``i+1 > i``), else None. An index tensor compares only with itself."""
    if a == b:
        return op in ("<=", ">=")
    if isinstance(a, Gather) or isinstance(b, Gather):
        return None
    gap: dict[str, int] = {}
    offset = 0
    for side, sign in ((a, 1), (b, -1)):
        parts = ((side, 1),) if isinstance(side, str) else side.parts
        offset += 0 if isinstance(side, str) else sign * side.offset
        for n, c in parts:
            gap[n] = gap.get(n, 0) + sign * c
    if any(gap.values()):
        return None
    return {"!=": offset != 0, "<": offset < 0, "<=": offset <= 0,
            ">": offset > 0, ">=": offset >= 0}[op]


class Stuck(Exception):
    """An index cannot be replaced by an expression here (see ``rename.substitute``)."""


def put(sub: Subscript, name: str, expr: Subscript) -> Subscript:
    """``sub`` with index ``name`` replaced by the subscript ``expr``; ``Stuck`` where an
    index tensor would have to take arithmetic, or arithmetic an index tensor."""
    if isinstance(sub, str):
        return expr if sub == name else sub
    if name not in sub.names:
        return sub
    if isinstance(sub, Gather) or isinstance(expr, Gather):
        if isinstance(sub, Gather) and isinstance(expr, str):
            return Gather(sub.name, tuple(expr if i == name else i for i in sub.indices))
        raise Stuck
    c = sub.coefficient(name)
    rest = [(n, k) for n, k in sub.parts if n != name]
    if isinstance(expr, str):
        return affine(rest + [(expr, c)], sub.offset)
    return affine(rest + [(n, c * k) for n, k in expr.parts], sub.offset + c * expr.offset)

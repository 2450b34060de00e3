"""Run IR statements on arrays: each product term is one opt_einsum contraction.

Every term is planned once (deltas substituted away, tied axes found); each
contraction's ``contract_expression`` is cached per input shapes. A term whose
deltas tie two free indices is computed compactly, on the diagonal only, and
written into a zero array just when a dense result is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import opt_einsum as oe

from .backend.arrays import namespace, on_device
from .errors import InputError, ShapeError
from .ir import (
    Call,
    Delta,
    Power,
    Ref,
    Statement,
    Sum,
    Term,
    all_deltas,
    const_value,
    is_anchor,
    rename_term,
    statement_refs,
)
from .simplify import substitute_deltas, tie_groups

Array = Any


@dataclass
class Compact:
    """A value kept in its delta structure.

    The dense value has the axes ``indices`` and ``shape``. Each index in ``ties``
    equals the index it maps to (the dense array is zero off that diagonal).
    ``core`` holds the values on that diagonal over the axes ``core_indices``; an
    untied index missing from ``core_indices`` is one the value does not vary along.
    """

    core: Array
    core_indices: tuple[str, ...]
    indices: tuple[str, ...]
    ties: dict[str, str]
    shape: tuple[int, ...]

    def toarray(self) -> Array:
        return _densify(self.core, self.core_indices, self.indices, self.ties, self.shape)


def _densify(core: Array, core_indices: tuple[str, ...], indices: tuple[str, ...],
             ties: dict[str, str], shape: tuple[int, ...]) -> Array:
    xp = namespace(core)
    if not ties:
        return _align(core, core_indices, indices, shape)
    if xp is not np:  # libraries without writable einsum views: multiply by eye
        return _densify_generic(core, core_indices, indices, ties, shape, xp)
    out = np.zeros(shape, dtype=core.dtype)
    spec, diag_order = diagonal_view(indices, ties)
    view = np.einsum(spec, out)
    view[...] = _align(core, core_indices, diag_order, view.shape)
    return out


def diagonal_view(indices: tuple[str, ...],
                  ties: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """The einsum spec whose (writable) result is the diagonal of an array over
    ``indices`` that ``ties`` picks, and the axes of that diagonal."""
    letters = {i: oe.get_symbol(k) for k, i in enumerate(indices)}
    diagonal = tuple(dict.fromkeys(ties.get(i, i) for i in indices))
    spec = "".join(letters[ties.get(i, i)] for i in indices) + "->" + \
        "".join(letters[i] for i in diagonal)
    return spec, diagonal


def _densify_generic(core: Array, core_indices: tuple[str, ...], indices: tuple[str, ...],
                     ties: dict[str, str], shape: tuple[int, ...], xp: Any) -> Array:
    sizes = dict(zip(indices, shape))
    diag_order = tuple(dict.fromkeys(ties.get(i, i) for i in indices))
    aligned = _align(core, core_indices, diag_order, tuple(sizes[i] for i in diag_order))
    letters = {i: oe.get_symbol(k) for k, i in enumerate(indices)}
    eyes = [(np.eye(sizes[i], dtype=bool), letters[ties[i]] + letters[i]) for i in ties]
    spec = ",".join([ "".join(letters[i] for i in diag_order)] + [s for _, s in eyes])
    where = on_device(aligned)
    operands = [aligned] + [xp.asarray(e, dtype=aligned.dtype, **where) for e, _ in eyes]
    return oe.contract(f"{spec}->{''.join(letters[i] for i in indices)}", *operands)


def _align(value: Array, have: tuple[str, ...], want: tuple[str, ...],
           shape: tuple[int, ...]) -> Array:
    """Transpose ``value`` (axes ``have``) to ``want``, broadcasting missing axes."""
    xp = namespace(value)
    if have == want and tuple(value.shape) == tuple(shape):
        return value
    order = [have.index(i) for i in want if i in have]
    if order != list(range(len(order))):
        value = xp.permute_dims(value, tuple(order)) if xp is not np else value.transpose(order)
    kept = [i for i in want if i in have]
    if len(kept) != len(want):
        expanded = [1] * len(want)
        for i in kept:
            expanded[want.index(i)] = value.shape[kept.index(i)]
        value = xp.reshape(value, tuple(expanded))
    if tuple(value.shape) != tuple(shape):
        value = xp.broadcast_to(value, tuple(shape))
    return value


Sizes = dict[str, int]


class StatementPlan:
    """A statement ready to run: its size bindings and a plan per term."""

    def __init__(self, st: Statement):
        self.statement = st
        self.refs = tuple(statement_refs(st))
        self.deltas = tuple(all_deltas(st.rhs))
        self.indices = tuple(dict.fromkeys(
            st.indices + tuple(i for t in st.rhs.terms for i in sorted(t.mentioned))))
        self.rhs = _SumPlan(st.rhs)

    def sizes(self, env: dict[str, Array]) -> Sizes:
        """Bind every index of the statement to an axis size, checking that they agree."""
        sizes: Sizes = {}
        owner: dict[str, str] = {}
        for ref in self.refs:
            shape = env[ref.name].shape
            if len(shape) != len(ref.indices):
                raise InputError(
                    f"{ref.name} has {len(shape)} axes but is written with "
                    f"{len(ref.indices)} indices ({ref.name}[{','.join(ref.indices)}])"
                )
            for i, n in zip(ref.indices, shape):
                n = int(n)
                if i in sizes and sizes[i] != n:
                    raise ShapeError(
                        f"index {i} has size {sizes[i]} in {owner[i]} but size {n} in "
                        f"{ref.name} (statement {self.statement.name})"
                    )
                sizes.setdefault(i, n)
                owner.setdefault(i, ref.name)
        changed = True
        while changed:
            changed = False
            for d in self.deltas:
                a, b = sizes.get(d.i), sizes.get(d.j)
                if a is not None and b is not None and a != b:
                    raise ShapeError(
                        f"delta[{d.i},{d.j}] ties index {d.i} of size {a} (in {owner[d.i]}) "
                        f"to index {d.j} of size {b} (in {owner[d.j]})"
                    )
                if a is None and b is not None:
                    sizes[d.i], owner[d.i], changed = b, owner[d.j], True
                elif b is None and a is not None:
                    sizes[d.j], owner[d.j], changed = a, owner[d.i], True
        for i in self.indices:
            if i not in sizes:
                raise InputError(
                    f"cannot tell the size of index {i} in statement {self.statement.name}: "
                    "no tensor in it has that axis"
                )
        return sizes

class _SumPlan:
    """A sum analysed once: a plan per term."""

    def __init__(self, expr: Sum):
        self.expr = expr
        self.terms = [_TermPlan(t) for t in expr.terms]


class _TermPlan:
    """One product term analysed once: ``coef * einsum(factors)`` on the diagonal its
    deltas pick, with the indices that no factor carries set apart."""

    def __init__(self, term: Term):
        term = substitute_deltas(term)
        self.free = term.free
        self.ties = {i: r for i, r in tie_groups(term).items() if i != r}
        # Deltas are structure and ``X^0`` anchors only sizes: neither is an operand.
        core = rename_term(
            Term(term.coef, tuple(f for f in term.factors
                                  if not isinstance(f, Delta) and not is_anchor(f)),
                 term.summed),
            self.ties,
        )
        self.coef = core.coef
        self.core_factors = core.factors
        self.core_free = tuple(dict.fromkeys(self.ties.get(i, i) for i in self.free))
        self.operands = [_operand_indices(f) for f in core.factors]
        present = {i for f in core.factors for i in f.free}
        self.einsum_out = tuple(i for i in self.core_free if i in present)
        self.missing_summed = tuple(sorted(core.summed - present))
        letters = _letters(i for idx in self.operands for i in idx)
        self.spec = ",".join("".join(letters[i] for i in idx) for idx in self.operands) + \
            "->" + "".join(letters[i] for i in self.einsum_out)

    def einsum_strings(self) -> list[str]:
        out = [self.spec] if self.operands else []
        for f in self.core_factors:
            if not isinstance(f, Ref):
                for s in _nested_sums(f):
                    out += [x for t in _SumPlan(s).terms for x in t.einsum_strings()]
        return out


def _nested_sums(f: Any) -> tuple[Sum, ...]:
    if isinstance(f, Call):
        return (f.arg,)
    if isinstance(f, Power):
        return (f.base,) if const_value(f.exponent) is not None else (f.base, f.exponent)
    return (f,) if isinstance(f, Sum) else ()


def _letters(indices: Iterable[str]) -> dict[str, str]:
    """Einsum letters: an index keeps its own name where it is one free letter."""
    names = list(dict.fromkeys(indices))
    letters = {i: i for i in names if len(i) == 1 and i.isascii() and i.isalpha()}
    used = set(letters.values())
    k = 0
    for i in names:
        if i not in letters:
            while oe.get_symbol(k) in used:
                k += 1
            letters[i] = oe.get_symbol(k)
            used.add(letters[i])
    return letters


def _operand_indices(f: Any) -> tuple[str, ...]:
    return f.indices if isinstance(f, Ref) else f.free


def _const_power(x: Array, exponent: float) -> Array:
    if exponent == 1:
        return x
    if exponent == 2:
        return x * x
    if exponent == -1:
        return 1.0 / x
    if exponent == 0.5:
        return namespace(x).sqrt(x)
    return x ** exponent

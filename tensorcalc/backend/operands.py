"""The plan's data: what a statement computes, as the runner (``binder.py``) and the
exporter (``export.py``) read it. ``plan.py`` makes it from the IR.

A statement is a ``SumPlan`` of ``TermPlan``s, each an einsum of operands: tensors as
written (``RefOperand``), functions, powers, reductions and groups of their own sums,
solves, identity matrices, masks and scatter-adds of shifted deltas.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from ..ir import Affine, Gather, Subscript, unknown_kind

# --- operands ------------------------------------------------------------------


@dataclass(frozen=True)
class RefOperand:
    """A tensor, with its indices as written (a repeated index takes a diagonal)."""

    name: str
    indices: tuple[str, ...]
    subs: tuple[Subscript, ...] | None = None  # index arithmetic: a view (windows.py)


@dataclass(frozen=True)
class CallOperand:
    """An elementwise function of one or more sums, each computed over the axes ``free``."""

    fn: str
    args: tuple[SumPlan, ...]
    free: tuple[str, ...]
    shared: int | None = None  # a slot: the same value is used again in the statement


@dataclass(frozen=True)
class PowerOperand:
    """``base ** exponent`` over ``free``; a constant exponent is a number."""

    base: SumPlan
    exponent: float | SumPlan
    free: tuple[str, ...]
    shared: int | None = None


@dataclass(frozen=True)
class ConditionOperand:
    """The index condition ``[a op b]`` as a 0/1 array over ``free``."""

    op: str
    a: Subscript
    b: Subscript
    free: tuple[str, ...]


@dataclass(frozen=True)
class ReduceOperand:
    """A function of whole axes (docs/functions.md): its argument is computed over ``batch +
    indices`` and the kernel runs along the trailing ``indices``; the value is over
    ``free`` (``batch``, then ``indices`` where the function keeps them). ``mask`` holds
    the conditions an entry must meet to take part (``softmax[j | j <= i]``)."""

    fn: str
    indices: tuple[str, ...]
    arg: SumPlan
    batch: tuple[str, ...]
    free: tuple[str, ...]
    shared: int | None = None
    mask: tuple[ConditionOperand, ...] = ()


@dataclass(frozen=True)
class SolveOperand:
    """An inverse that is only contracted, run as a linear solve: ``inv[i,j](e)`` times the
    operands ``right`` that hold the contracted index ``j`` (their product, over
    ``batch + (j,) + rest``) is ``solve(M, right)``, over ``batch + (i,) + rest``; with
    ``transpose`` the contracted index is ``i`` and ``M`` is transposed. ``free`` lists
    the value's axes (``i`` may repeat in ``rest``: a trace takes the diagonal)."""

    matrix: SumPlan
    indices: tuple[str, str]
    batch: tuple[str, ...]
    transpose: bool
    right: TermPlan
    rest: tuple[str, ...]
    free: tuple[str, ...]
    shared: int | None = None


@dataclass(frozen=True)
class DeltaOperand:
    """An identity matrix over ``(i, j)``: only for a delta whose diagonal would run
    through the axes of an ``inv`` or a ``softmax`` (see ``ir.collapses``), or in a
    statement with index arithmetic (where i and j may differ in size: ones on the
    diagonal of the rectangle)."""

    i: str
    j: str

    @property
    def free(self) -> tuple[str, str]:
        return (self.i, self.j)


@dataclass(frozen=True)
class MaskOperand:
    """A shifted delta ``delta[i, sub]`` as a 0/1 array over ``free``: only where its
    ``i`` is also an axis of another factor, so that no scatter can stand for it."""

    i: str
    sub: Affine | Gather
    free: tuple[str, ...]


@dataclass(frozen=True)
class ScatterOperand:
    """The shifted deltas ``delta[p, sub]`` of a term (docs/index-arithmetic.md) applied to the
    product of its other factors (``core``, over ``grid + rest``): a scatter-add into the targets
    ``p``. The value is over ``free``: the targets, the subscript indices that are free in
    the term (``kept``), then ``rest``; the other subscript indices are summed."""

    core: TermPlan
    shifts: tuple[tuple[str, Affine | Gather], ...]
    grid: tuple[str, ...]
    kept: tuple[str, ...]
    rest: tuple[str, ...]
    free: tuple[str, ...]


@dataclass(frozen=True)
class GroupOperand:
    """A parenthesised sum used as one factor, over ``free``."""

    body: SumPlan
    free: tuple[str, ...]
    shared: int | None = None


Operand = Union[RefOperand, CallOperand, PowerOperand, ReduceOperand,  # noqa: UP007
                SolveOperand, GroupOperand, DeltaOperand, MaskOperand, ScatterOperand,
                ConditionOperand]


def operand_indices(op: Operand) -> tuple[str, ...]:
    return op.indices if isinstance(op, RefOperand) else op.free


# --- terms and sums ------------------------------------------------------------


@dataclass(frozen=True)
class TermPlan:
    """``coef * einsum(operands)`` over ``einsum_out``, times the sizes of
    ``missing_summed`` (summed indices that no operand carries).

    Where the term's deltas tie free indices, ``ties`` maps each tied index to the one
    it equals: the contraction computes only that diagonal (the core, over
    ``einsum_out``), and a dense value writes it onto the diagonal of zeros over ``free``.
    """

    coef: float
    operands: tuple[Operand, ...]
    spec: str
    einsum_out: tuple[str, ...]
    free: tuple[str, ...]
    ties: dict[str, str] = field(hash=False)
    missing_summed: tuple[str, ...]

    @property
    def core_free(self) -> tuple[str, ...]:
        """The free indices of the core: tied indices replaced by their partners."""
        return tuple(dict.fromkeys(self.ties.get(i, i) for i in self.free))

    @property
    def is_einsum(self) -> bool:
        """Whether the product needs a contraction (not one operand used as it is)."""
        if not self.operands:
            return False
        inputs, output = self.spec.split("->")
        return len(self.operands) != 1 or inputs != output


@dataclass(frozen=True)
class SumPlan:
    terms: tuple[TermPlan, ...]


# --- statements and programs ------------------------------------------------------


@dataclass(frozen=True)
class StatementPlan:
    """A statement's terms, and the sizes of its indices.

    ``tensors`` lists every tensor reference (name, indices as written), and
    ``occurrences`` every axis a tensor gives an index (the sizes must agree);
    ``sources`` the tensor axis that sizes each index (``sizes.index_sources``);
    ``deltas`` the pairs of indices a delta makes equal; ``square`` the two indices of
    each matrix function, with its name (their sizes must be equal).
    """

    name: str
    indices: tuple[str, ...]
    rhs: SumPlan
    tensors: tuple[tuple[str, tuple[Subscript, ...]], ...]
    occurrences: tuple[tuple[str, str, int], ...]
    sources: dict[str, tuple[str, int]] = field(hash=False)
    deltas: tuple[tuple[str, str], ...]
    every_index: tuple[str, ...]
    square: tuple[tuple[str, str, str], ...] = ()
    # Index arithmetic (docs/index-arithmetic.md): each affine read, as (tensor, axis, subscript),
    # with tensor None for a shifted delta ``delta[p, sub]`` (its axis is then p's length);
    # and the indices given a size by an extent (declared or derived), which no read
    # shrinks and whose reads past an array's end are zero.
    accesses: tuple[tuple[str | None, int | str, Affine], ...] = ()
    given: dict[str, tuple[str, int]] = field(default_factory=dict, hash=False)
    # In a program with index arithmetic two indices a delta ties may differ in size (a
    # derivative's delta[i,q] with i over N-2 and q over N): deltas are rectangles there.
    rectangular: bool = False
    # (new, written) for an index lowering renamed (``Statement.aliases``): a size given by
    # the written name is the new one's, and never one given by the new name.
    aliases: tuple[tuple[str, str], ...] = ()
    # Each index that two or more top-level terms sum, each its own, with the tensor names
    # of each such term (a size error between two of them suggests renaming one).
    summed_apart: dict[str, tuple[frozenset[str], ...]] = field(default_factory=dict,
                                                                hash=False)
    # With index arithmetic, the indices read alone through it (``V[t+1]``): the valid
    # rule runs one over the largest range from 0 at which every read of it stays inside,
    # plain reads included, so plain reads of different lengths are cut to the shortest.
    shortest: frozenset[str] = frozenset()

    @property
    def unsized(self) -> tuple[str, ...]:
        """Indices nothing sizes (evaluation reports them)."""
        return tuple(i for i in self.every_index if i not in self.sources)


@dataclass(frozen=True)
class ProgramPlan:
    """The statements a result needs, in order; ``inputs`` are the arrays they read."""

    statements: tuple[StatementPlan, ...]
    inputs: tuple[str, ...]
    result: str
    # The statements whose values the result needs; the others are there for their shapes
    # only (an extent names them), which binding knows without running them.
    valued: frozenset[str] = frozenset()
    # The recurrences (``loops.LoopPlan``), run step by step (docs/recurrences.md).
    loops: tuple[Any, ...] = ()
    # The statements computed before a recurrence for all its positions at once
    # (``invariants.py``: ``h@in1``), as IR statements: export prints them.
    hoisted: tuple[Any, ...] = ()

    def einsum_strings(self) -> list[str]:
        out: list[str] = []
        for st in self.statements:
            out += _sum_einsums(st.rhs)
        return out


def nested_sums(op: Operand) -> Iterator[SumPlan]:
    if isinstance(op, CallOperand):
        yield from op.args
    elif isinstance(op, ReduceOperand):
        yield op.arg
    elif isinstance(op, SolveOperand):
        yield op.matrix
        yield SumPlan((op.right,))
    elif isinstance(op, PowerOperand):
        yield op.base
        if isinstance(op.exponent, SumPlan):
            yield op.exponent
    elif isinstance(op, GroupOperand):
        yield op.body
    elif isinstance(op, ScatterOperand):
        yield SumPlan((op.core,))
    elif not isinstance(op, (RefOperand, DeltaOperand, MaskOperand, ConditionOperand)):
        unknown_kind(op)


def _sum_einsums(s: SumPlan) -> list[str]:
    out: list[str] = []
    for t in s.terms:
        if t.operands:
            out.append(t.spec)
        for op in t.operands:
            for inner in nested_sums(op):
                out += _sum_einsums(inner)
    return out

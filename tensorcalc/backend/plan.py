"""The plan of a program: what each statement computes, decided once, with no arrays.

For each statement the plan holds its terms (deltas substituted away, the axes a delta
ties, the einsum spec of the product, the summed indices no factor carries), a tree of
operands for the factors that are not plain tensors (functions, powers, groups), which
operands repeat and are computed once, and where each index takes its size from. The
runner (``run.py``) binds a plan to arrays and the exporter (``export.py``) writes it as
Python: neither decides anything the plan has decided.

>>> from tensorcalc.api import compile
>>> p = compile("y[i] = W[i,j] x[j]")
>>> plan = plan_program(p.needed, p.needed_inputs, p.result)
>>> plan.statements[0].rhs.terms[0].spec
'ij,j->i'
>>> plan.statements[0].sources["j"]
('W', 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union

import opt_einsum as oe

from ..ir import (
    Call,
    Delta,
    Factor,
    Power,
    Ref,
    Statement,
    Sum,
    Term,
    all_deltas,
    const_value,
    rename_term,
    statement_refs,
)
from ..simplify import substitute_deltas, tie_groups
from ..sizes import index_sources

# --- operands ------------------------------------------------------------------


@dataclass(frozen=True)
class RefOperand:
    """A tensor, with its indices as written (a repeated index takes a diagonal)."""

    name: str
    indices: tuple[str, ...]


@dataclass(frozen=True)
class CallOperand:
    """An elementwise function of a sum, over the axes ``free``."""

    fn: str
    arg: SumPlan
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
class GroupOperand:
    """A parenthesised sum used as one factor, over ``free``."""

    body: SumPlan
    free: tuple[str, ...]
    shared: int | None = None


Operand = Union[RefOperand, CallOperand, PowerOperand, GroupOperand]  # noqa: UP007


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
    ``deltas`` the pairs of indices a delta makes equal.
    """

    name: str
    indices: tuple[str, ...]
    rhs: SumPlan
    tensors: tuple[tuple[str, tuple[str, ...]], ...]
    occurrences: tuple[tuple[str, str, int], ...]
    sources: dict[str, tuple[str, int]] = field(hash=False)
    deltas: tuple[tuple[str, str], ...]
    every_index: tuple[str, ...]

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

    def einsum_strings(self) -> list[str]:
        out: list[str] = []
        for st in self.statements:
            out += _sum_einsums(st.rhs)
        return out


def plan_program(statements: tuple[Statement, ...], inputs: tuple[str, ...],
                 result: str) -> ProgramPlan:
    """The plan of the statements a result needs (in order), reading ``inputs``."""
    return ProgramPlan(tuple(plan_statement(st) for st in statements), inputs, result)


def plan_statement(st: Statement) -> StatementPlan:
    tensors = tuple((r.name, r.indices) for r in statement_refs(st))
    occurrences = tuple((i, name, axis) for name, indices in tensors
                        for axis, i in enumerate(indices))
    sources = index_sources(st)
    deltas = tuple((d.i, d.j) for d in all_deltas(st.rhs))
    every = tuple(dict.fromkeys(
        st.indices + tuple(i for t in st.rhs.terms for i in sorted(t.mentioned))))
    slots = _Slots(_repeated(st.rhs))
    rhs = plan_sum(st.rhs, slots)
    return StatementPlan(st.name, st.indices, rhs, tensors, occurrences, sources, deltas, every)


class _Slots:
    """Numbers for the operands that occur more than once in a statement."""

    def __init__(self, repeated: set[Factor]):
        self.repeated = repeated
        self.numbers: dict[Factor, int] = {}

    def slot(self, f: Factor) -> int | None:
        if f not in self.repeated:
            return None
        return self.numbers.setdefault(f, len(self.numbers))


def plan_sum(expr: Sum, slots: _Slots | None = None) -> SumPlan:
    slots = slots if slots is not None else _Slots(set())
    return SumPlan(tuple(plan_term(t, slots) for t in expr.terms))


def plan_term(term: Term, slots: _Slots) -> TermPlan:
    term = substitute_deltas(term)
    ties = {i: r for i, r in tie_groups(term).items() if i != r}
    # Deltas are structure, not operands: the core is the product of the other factors
    # on the diagonal the deltas pick.
    core = rename_term(
        Term(term.coef, tuple(f for f in term.factors if not isinstance(f, Delta)), term.summed),
        ties,
    )
    operands = tuple(_operand(f, slots) for f in core.factors)
    indices = [operand_indices(op) for op in operands]
    present = {i for idx in indices for i in idx}
    core_free = tuple(dict.fromkeys(ties.get(i, i) for i in term.free))
    einsum_out = tuple(i for i in core_free if i in present)
    letters = einsum_letters(i for idx in indices for i in idx)
    spec = ",".join("".join(letters[i] for i in idx) for idx in indices) + "->" + \
        "".join(letters[i] for i in einsum_out)
    return TermPlan(core.coef, operands, spec, einsum_out, term.free, ties,
                    tuple(sorted(core.summed - present)))


def _operand(f: Factor, slots: _Slots) -> Operand:
    if isinstance(f, Ref):
        return RefOperand(f.name, f.indices)
    if isinstance(f, Call):
        return CallOperand(f.fn, plan_sum(f.arg, slots), f.free, slots.slot(f))
    if isinstance(f, Power):
        n = const_value(f.exponent)
        exponent: float | SumPlan = n if n is not None else plan_sum(f.exponent, slots)
        return PowerOperand(plan_sum(f.base, slots), exponent, f.free, slots.slot(f))
    if isinstance(f, Sum):
        return GroupOperand(plan_sum(f, slots), f.free, slots.slot(f))
    raise TypeError(f"no operand for {f!r}")  # a Delta is removed before this


def _repeated(expr: Sum) -> set[Factor]:
    """Function calls, powers and groups that occur more than once in a statement."""
    seen: set[Factor] = set()
    twice: set[Factor] = set()
    stack = [expr]
    while stack:
        s = stack.pop()
        for t in s.terms:
            for f in t.factors:
                if isinstance(f, (Call, Power, Sum)):
                    if f in seen:
                        twice.add(f)
                        continue
                    seen.add(f)
                    stack += [f.arg] if isinstance(f, Call) else \
                        [f.base, f.exponent] if isinstance(f, Power) else [f]
    return twice


def einsum_letters(indices: Iterable[str]) -> dict[str, str]:
    """Einsum letters: an index keeps its own name where it is one ASCII letter; others
    take unused symbols (opt_einsum has symbols beyond the 52 letters)."""
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


def nested_sums(op: Operand) -> Iterator[SumPlan]:
    if isinstance(op, CallOperand):
        yield op.arg
    elif isinstance(op, PowerOperand):
        yield op.base
        if isinstance(op.exponent, SumPlan):
            yield op.exponent
    elif isinstance(op, GroupOperand):
        yield op.body


def _sum_einsums(s: SumPlan) -> list[str]:
    out: list[str] = []
    for t in s.terms:
        if t.operands:
            out.append(t.spec)
        for op in t.operands:
            for inner in nested_sums(op):
                out += _sum_einsums(inner)
    return out

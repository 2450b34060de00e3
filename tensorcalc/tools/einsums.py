"""The einsum strings that run a program, each labelled with its operands as written:
what ``tensorcalc derive --format einsum`` prints, read from the plan.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from ..ir import subscript_text, unknown_kind
from ..program import Program


def labelled_einsums(program: Program) -> str:
    """The einsum strings that run ``program``, one a line, each followed by
    ``# STATEMENT: operand, operand``: the operands in the order of the spec.

    >>> from tensorcalc import compile
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
            for inner in nested_sums(op):  # none in a tensor or a delta
                yield from _einsum_rows(f"{where}, in {_operand_kind(op)}", inner)


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
    if isinstance(op, GroupOperand):
        return "a parenthesised sum"
    unknown_kind(op)


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
    if isinstance(op, GroupOperand):
        return f"(...){axes}"
    unknown_kind(op)

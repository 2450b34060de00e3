"""The summation convention's silent traps: statements that it reads one way, giving a
number with no error, where the writer most likely meant another.

1. *One name, two sums.* An index summed by a product inside a function's argument, a
   power or a parenthesised sum (rule 1), whose name the same top-level term also uses
   outside that product, where rule 2 sums it over the whole term:
   ``L = (tanh(gam[d] xh[b,d] + bet[d]) - T[b,d])^2`` sums ``gam[d] xh[b,d]`` over ``d``
   inside ``tanh`` and, apart from it, the other ``d`` over the whole term. The writer
   most likely meant one index (here: elementwise in ``d``).
2. *A sum that broadcasts.* Rule 2 sums an index over its whole top-level term; where the
   index stands in a parenthesised sum whose terms do not all hold it, each term that
   lacks it is added once per value of it: ``R = lam * (A[i,r]^2 + B[j,r]^2)`` multiplies
   A's penalty by size(j).

``term_traps`` finds both in one top-level term as the convention lowers it, before its
bound names are made unique, so that the names are the ones written. An explicit
``sum[...]`` is never a trap: it says where the sum is. A program's traps are warnings
(``TensorCalcWarning``) when it is compiled, a ``ProgramError`` with ``strict=True``,
and ``#`` notes in ``explain``. Derivatives, which tensorcalc writes, have none.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import Call, Factor, Power, Reduce, Term, broadcasts, children, const_value
from ..render.printing import factors_with, format_number, format_term
from .surface import Pos


@dataclass(frozen=True)
class Trap:
    """A trap in statement ``statement``, in the top-level term at ``pos``: ``note``
    names the index and says how to write what was likely meant."""

    statement: str
    pos: Pos
    index: str
    note: str

    @property
    def message(self) -> str:
        return f"statement {self.statement} at {self.pos}: {self.note}"


def describe(f: Factor | None) -> str:
    """A factor that holds a sum, as a note names it: ``tanh(...)``, ``(...)^2``, ``the
    denominator``; None (the top-level term itself) and a parenthesised sum are
    ``(...)``."""
    if isinstance(f, Call):
        return f"{f.fn}(...)"
    if isinstance(f, Reduce):
        return f"{f.fn}[{','.join(f.indices)}](...)"
    if isinstance(f, Power):
        n = const_value(f.exponent)
        if n == -1:
            return "the denominator"
        return f"(...)^{format_number(n)}" if n is not None else "the power"
    return "(...)"


def term_traps(term: Term, rule2: frozenset[str]) -> list[tuple[str, str]]:
    """The traps of one top-level term, as (index, note): ``term`` is lowered but its
    bound names not yet made unique; ``rule2`` are the indices rule 2 sums over it."""
    return _inner_sums(term, rule2) + _broadcasts(term, rule2)


def _inner_sums(term: Term, rule2: frozenset[str]) -> list[tuple[str, str]]:
    """Trap 1: a product below the top-level term that sums a name rule 2 also sums."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[Factor, Factor | None]] = [(f, None) for f in reversed(term.factors)]
    while stack:
        f, around = stack.pop()
        if isinstance(f, (Call, Power, Reduce)):
            around = f  # the innermost function or power is what the note names
        for s in children(f):
            for t in s.terms:
                # summed by the product itself (two factors hold it), not by a sum[...]
                for i in sorted(i for i in t.summed & rule2 if factors_with(t, i) >= 2):
                    found.append((i, (
                        f"{i} is summed inside {describe(around)} by the product "
                        f"{format_term(t)} (rule 1), and the {i} outside it separately, over "
                        f"the whole term (rule 2): two different indices named {i}; write "
                        f"sum[{i}](...) where you mean the sum, or use another name")))
                stack += [(g, around) for g in reversed(t.factors)]
    return found


def _broadcasts(term: Term, rule2: frozenset[str]) -> list[tuple[str, str]]:
    """Trap 2: a term of a parenthesised sum that lacks an index rule 2 sums around it."""
    found = []
    for t, names in broadcasts(term, rule2):
        listed = ", ".join(names)
        verb = "does" if len(names) == 1 else "do"
        sizes = " ".join(f"size({i})" for i in names)
        text = format_term(t)
        own = [i for i in t.free if i in rule2]
        fix = (f"write sum[{','.join(own)}]({text}) + ... to sum each term on its own" if own
               else f"write sum[{','.join(names)}](...) around the terms that hold "
                    f"{listed}, so that {text} is added once")
        found.append((names[0], f"{listed} {verb} not occur in {text}, which is multiplied "
                                f"by {sizes} (rule 2 sums the whole term); {fix}"))
    return found

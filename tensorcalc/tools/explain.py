"""A program with every implied summation written out, and notes on the surprising ones.

Each summed index is written as ``sum[...]`` around the term that sums it, which is
where the summation convention placed it. After a statement, ``#`` lines note the
indices that rule 2 sums over a whole top-level term although they occur inside a
function's argument or a power's base (``sqrt(x[i]^2)`` is ``sum[i](sqrt(x[i]^2))``,
not a norm), several such indices in one term (a double sum), and an index summed on
its own in one term whose name another term also uses (``X[i,k] W[k,j] + b[k]``). The
traps of a program compiled from text (``language/traps.py``: one name summed inside a
function and apart outside it, a parenthesised sum multiplied by the size of an index
some of its terms lack), which compiling warns of, are noted too. The text compiles to
the same program.

>>> print(explain("n = sqrt(x[i]^2)"))
n = sum[i](sqrt(x[i]^2))
# i: summed outside sqrt(...), over the whole term (rule 2); to sum inside, write sqrt(sum[i](...))
"""

from __future__ import annotations

from ..errors import ProgramError
from ..ir import Call, Factor, Power, Statement, Term, const_value
from ..language.declarations import format_program
from ..language.traps import describe
from ..program import Program
from ..render.printing import factors_with, format_number, grabbed_below


def explain(program: str | Program) -> str:
    """The program as index notation with every sum explicit, and ``#`` notes after the
    statements where rule 2 sums an index outside a function or a power, or separately
    in one term of several."""
    if not isinstance(program, (str, Program)):
        raise ProgramError(f"explain takes program text or a Program, not "
                           f"{type(program).__name__}")
    # no warnings: the traps are the notes here
    p = program if isinstance(program, Program) else Program.from_source(program, warn=False)
    lines = format_program(p.statements, p.accepts, explicit_sums=True,
                           avoid=p.sizes).split("\n")
    head, body = lines[: len(lines) - len(p.statements)], lines[len(lines) - len(p.statements):]
    out = list(head)
    for st, line in zip(p.statements, body):
        out.append(line)
        out += ["# " + note for note in statement_notes(st)]
        out += ["# " + t.note for t in p.traps if t.statement == st.name]
    return "\n".join(out)


def statement_notes(st: Statement) -> list[str]:
    """The notes on one statement's top-level terms (see the module docstring)."""
    notes: list[str] = []
    terms = st.rhs.terms
    for k, t in enumerate(terms):
        # summed by rule 2: in fewer than two factors, and in no product inside as a pair
        # (that would be a user's explicit sum[i] around a product)
        alone = [i for i in sorted(t.summed) if factors_with(t, i) < 2 and not grabbed_below(t, i)]
        groups: dict[Call | Power, list[str]] = {}
        for i in alone:
            where = _enclosing(t, i)
            if where is not None:
                groups.setdefault(where, []).append(i)
        for where, names in groups.items():
            listed = ", ".join(names)
            notes.append(f"{listed}: summed outside {describe(where)}, over the whole term "
                         f"(rule 2); to sum inside, write {_inside_hint(where, names)}")
        if len(groups) > 1:
            inside = [i for names in groups.values() for i in names]
            notes.append(f"{', '.join(inside)}: summed independently over the same term, a "
                         f"{'double' if len(inside) == 2 else 'multiple'} sum "
                         f"(sum[{','.join(inside)}])")
        if len(terms) > 1:
            for i in alone:
                others = [n + 1 for n, u in enumerate(terms) if n != k and i in u.mentioned]
                if others:
                    which = ", ".join(_ordinal(n) for n in others)
                    notes.append(f"{i} in the {_ordinal(k + 1)} term: summed there on its own "
                                 f"(rule 2), not together with the {i} of the {which} term")
    return notes


def _enclosing(t: Term, index: str) -> Call | Power | None:
    """The function call or power among ``t``'s factors that holds ``index``, if any."""
    for f in t.factors:
        if isinstance(f, (Call, Power)) and index in f.free:
            return f
    return None


def _inside_hint(f: Factor, names: list[str]) -> str:
    index = ",".join(names)
    if isinstance(f, Call):  # sum[...] around each argument that holds them
        inside = set(names)
        return f"{f.fn}(" + ", ".join(f"sum[{index}](...)" if inside & set(a.free) else "..."
                                      for a in f.args) + ")"
    if isinstance(f, Power) and const_value(f.exponent) == -1:
        return f"/ sum[{index}](...)"
    n = const_value(f.exponent) if isinstance(f, Power) else None
    return f"sum[{index}](...)^{format_number(n)}" if n is not None else f"sum[{index}](...)"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")

"""Functions a recurrence computes at each step and a later statement computes again, kept
from the step instead (docs/recurrences.md): the stored activations of backpropagation
through time, at plan time.

An LSTM's step computes ``sigmoid(z[t,b,1,j])``, and its adjoint reads the same value at
every step going back (``c_prev_bar[t,b,j] = c_bar[t,b,j] sigmoid(z[t,b,1,j])``). Computed
again there, every gate's function costs twice what the formula costs. Here each such
call becomes a statement of its own inside the recurrence, ``z@fn1[t,b,j] =
sigmoid(z[t,b,1,j])``, which the step computes once and keeps, and every statement that
wrote the call reads instead: the adjoint then multiplies stored values, as a
hand-written backward pass does.

A call is taken when it is a function of one read of a recurrence's statement at the
step (its first subscript a plain index, the others plain indices, each once, or
constants), it is written inside the recurrence, and some statement outside the
recurrence writes it too. The printed program is not changed: this is how it is run.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import Call, Factor, Ref, Statement, Sum, Term, all_factors
from ..ir.recurrences import Group
from ..ir.subscripts import Affine
from ..ir.walk import replace_factors

#: A call up to the names of its indices: the function, the statement it reads, and each
#: axis's subscript as ``("i", k)`` (the k-th index the read names) or ``("c", value)``.
Key = tuple[str, str, tuple[tuple[str, int], ...]]


def share_calls(statements: Sequence[Statement], groups: Sequence[Group]
                ) -> tuple[Statement, ...]:
    """The statements with each call worth keeping (above) made a statement of the
    recurrence, placed just after the statement it reads, and read where it was written."""
    group_of = {n: k for k, g in enumerate(groups) for n in g.members}
    inside: dict[Key, Ref] = {}  # the call's read, as a statement of its recurrence has it
    outside: set[Key] = set()
    for st in statements:
        for call in (f for f in all_factors(st.rhs) if isinstance(f, Call)):
            key = _key(call)
            if key is None or key[1] not in group_of:
                continue
            read = call.args[0].terms[0].factors[0]
            assert isinstance(read, Ref)
            if group_of.get(st.name) == group_of[key[1]]:
                if st.indices and read.indices[0] == st.indices[0]:
                    inside.setdefault(key, read)
            else:
                outside.add(key)
    taken = {st.name for st in statements}
    made: dict[Key, Statement] = {}
    for key, read in inside.items():
        if key in outside:
            name = _fresh(f"{key[1]}@fn", taken)
            made[key] = Statement(name, read.indices,
                                  Sum((Term(1.0, (Call(key[0], (_plain(read),)),)),)))
    if not made:
        return tuple(statements)
    out: list[Statement] = []
    for st in statements:
        out.append(Statement(st.name, st.indices, _replace(st.rhs, made), st.extents,
                             st.aliases))
        out += [new for key, new in made.items() if key[1] == st.name]
    return tuple(out)


def _plain(read: Ref) -> Sum:
    return Sum((Term(1.0, (read,)),))


def _fresh(base: str, taken: set[str]) -> str:
    k = 1
    while f"{base}{k}" in taken:
        k += 1
    taken.add(f"{base}{k}")
    return f"{base}{k}"


def _key(call: Call) -> Key | None:
    """The call's key, where it is a function of one plain read at the step."""
    if len(call.args) != 1 or len(call.args[0].terms) != 1:
        return None
    term = call.args[0].terms[0]
    if term.coef != 1.0 or term.summed or term.extents or len(term.factors) != 1 \
            or not isinstance(term.factors[0], Ref):
        return None
    read = term.factors[0]
    if len(set(read.indices)) != len(read.indices) or not read.axes \
            or not isinstance(read.axes[0], str):
        return None
    pattern = []
    for sub in read.axes:
        if isinstance(sub, str):
            pattern.append(("i", read.indices.index(sub)))
        elif isinstance(sub, Affine) and not sub.parts:
            pattern.append(("c", sub.offset))
        else:
            return None
    if sum(1 for kind, _ in pattern if kind == "i") != len(read.indices):
        return None  # an index named twice: a diagonal
    return call.fn, read.name, tuple(pattern)


def _replace(expr: Sum, made: dict[Key, Statement]) -> Sum:
    """``expr`` with each call of ``made`` read from its statement."""

    def swap(f: Factor) -> Factor | None:
        if not isinstance(f, Call):
            return None
        key = _key(f)
        if key is None or key not in made:
            return None
        read = f.args[0].terms[0].factors[0]
        assert isinstance(read, Ref)
        return Ref(made[key].name, read.indices)

    return replace_factors(expr, swap)

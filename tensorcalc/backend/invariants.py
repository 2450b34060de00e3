"""Work a recurrence's step does not need to do at each position, done once before it
(docs/recurrences.md): loop-invariant code motion, at plan time.

In ``z[t,b,g,j] = Wh[g,j,k] h_prev[t,b,k] + Wx[g,j,m] x[t,b,m] + bias[g,j]`` only the
first term reads the recurrence; the others are computed for every position at once, as
one statement (one matrix product over all ``t`` instead of one per step), which the step
then reads a row of. The same is done inside a function's argument (``tanh(W h_prev +
U x + b)``) and for the factors of a product that read no statement of the recurrence
(an adjoint's ``c_bar[t,b,j] c_prev[t,b,j] sigmoid(z[t,b,1,j])``). Only pieces that read
the recurrence index plainly (``x[t,m]``, not ``x[t+1,m]``: a shifted read's range is its
own) and that are worth a statement are taken. The printed program is not changed: this
is how it is run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..ir import Call, Factor, Power, Ref, Statement, Sum, Term, refs
from ..ir.recurrences import Group
from ..ir.subscripts import sub_names

Namer = Callable[[str], str]


def hoist_invariants(statements: Sequence[Statement], groups: Sequence[Group]
                     ) -> tuple[Statement, ...]:
    """The statements with each recurrence's invariant pieces computed before it."""
    group_of = {n: set(g.members) for g in groups for n in g.members}
    taken = {st.name for st in statements}
    count = [0]

    def name(base: str) -> str:
        count[0] += 1
        while f"{base}@in{count[0]}" in taken:
            count[0] += 1
        taken.add(f"{base}@in{count[0]}")
        return f"{base}@in{count[0]}"

    out: list[Statement] = []
    for st in statements:
        if st.name not in group_of or not st.indices:
            out.append(st)
            continue
        hoisted: list[Statement] = []
        rhs = _terms(st.rhs, st.indices, st.indices[0], group_of[st.name], hoisted, name,
                     st.name)
        out += hoisted
        out.append(Statement(st.name, st.indices, rhs, st.extents, st.aliases))
    return tuple(out)


def _plain_in(term: Term, t: str) -> bool:
    """Reads ``t`` only plainly (no arithmetic with it anywhere inside) and has no extents,
    deltas or conditions on it."""
    if term.extents or t in term.summed:
        return False
    for r in refs(Sum((term,))):
        if r.subs is not None and any(s != t and t in sub_names(s) for s in r.subs):
            return False
    return all(isinstance(f, (Ref, Call, Power, Sum)) for f in term.factors)


def _reads(term: Term | Factor, members: set[str]) -> bool:
    expr = Sum((term,)) if isinstance(term, Term) else Sum((Term(1.0, (term,)),))
    return any(r.name in members for r in refs(expr))


def _worth(terms: list[Term]) -> bool:
    """More than a plain read: a product, a function, a contraction."""
    return len(terms) > 1 or any(len(t.factors) > 1 or t.summed or
                                 not isinstance(t.factors[0], Ref) for t in terms if t.factors)


def _terms(expr: Sum, free: tuple[str, ...], t: str, members: set[str],
           hoisted: list[Statement], name: Namer, base: str) -> Sum:
    """``expr`` (whose free indices are ``free``, ``t`` among them) with its invariant terms
    as one read of a hoisted statement, and the factors of the others looked into."""
    invariant = [term for term in expr.terms
                 if not _reads(term, members) and t in term.mentioned and _plain_in(term, t)
                 and set(term.free) <= set(free)]
    kept = [term for term in expr.terms if not any(term is i for i in invariant)]
    out = [_factors(term, t, members, hoisted, name, base) for term in kept]
    if invariant and _worth(invariant):
        indices = (t,) + tuple(i for i in free if i != t and
                               any(i in term.free for term in invariant))
        hoisted.append(Statement(name(base), indices, Sum(tuple(invariant))))
        out.append(Term(1.0, (Ref(hoisted[-1].name, indices),)))
    else:
        out += invariant
    return Sum(tuple(out))


def _factors(term: Term, t: str, members: set[str], hoisted: list[Statement], name: Namer,
             base: str) -> Term:
    """A term that reads the recurrence: the product of its factors that do not, where
    they read ``t`` plainly and need no index of their own, as one hoisted read; and the
    arguments of its functions looked into."""
    if not _reads(term, members) or t in term.summed:
        return term
    inside = [f for f in term.factors if _reads(f, members)]
    outside = [f for f in term.factors if not _reads(f, members)]
    around = {i for f in inside for i in f.free} | set(term.free)
    moving = [f for f in outside if t in f.free and isinstance(f, (Ref, Call, Power, Sum))
              and set(f.free) <= around and _plain_in(Term(1.0, (f,)), t)]
    staying = [f for f in outside if not any(f is m for m in moving)]
    factors = [_inside(f, t, members, hoisted, name, base) for f in inside] + staying
    if len(moving) > 1 or any(not isinstance(f, Ref) for f in moving):
        order = tuple(dict.fromkeys((t,) + tuple(i for f in moving for i in f.free)))
        hoisted.append(Statement(name(base), order, Sum((Term(1.0, tuple(moving)),))))
        factors.append(Ref(hoisted[-1].name, order))
    else:
        factors += moving
    return Term(term.coef, tuple(factors), term.summed, term.extents)


def _inside(f: Factor, t: str, members: set[str], hoisted: list[Statement], name: Namer,
            base: str) -> Factor:
    """A function of the recurrence with the invariant terms of its argument hoisted."""
    if isinstance(f, Call) and len(f.args) == 1 and t in f.args[0].free:
        arg = f.args[0]
        return Call(f.fn, (_terms(arg, arg.free, t, members, hoisted, name, base),))
    return f


"""The chain rule across statements: forward tangents and reverse adjoints.

Across statements the chain rule is a sum over the shared indices of an
intermediate. ``forward`` carries tangents in program order (a Jacobian, a JVP);
``reverse`` carries adjoints from a scalar result back (a gradient, a VJP: each
statement contributes one vector-Jacobian product). Within a statement both use the
rules of ``rules.py``. A tangent that is a delta pattern times a core keeps its
deltas inline and moves the core into a statement of its own, so structure is never
lost and no expression is copied twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import DerivativeError
from ..ir import (
    ZERO,
    arithmetic,
    as_sum,
    fresh_name,
    freshen,
    needed_statements,
    read_through,
    refs,
    rename_term,
    statement_refs,
    subscript_text,
)
from ..ir.nodes import Delta, Extent, Ref, Statement, Sum, Term
from ..ir.recurrences import Group, members_of, recurrence_groups, steps_together
from ..ir.sizes import sized, sized_terms
from .ranges import own_ranges
from .repeats import Repeats
from .reuse import refer_to_statement
from .rules import Budget, differentiate
from .simplify import simplify_sum


@dataclass
class Derived:
    """The statements a derivative needs (forward ones first) and its result statement."""

    statements: list[Statement]
    result: Statement


class Names:
    """Fresh statement and index names for one derivation.

    ``tensors`` are the names taken (the statements', the inputs' and any reserved);
    ``axes`` are index names taken besides those the statements use.
    """

    def __init__(self, statements: Iterable[Statement], tensors: Iterable[str],
                 axes: Iterable[str] = ()):
        statements = tuple(statements)
        self.tensors = {st.name for st in statements} | set(tensors)
        self.indices: set[str] = set(axes)
        for st in statements:
            self.indices |= set(st.indices) | all_indices(st.rhs)
        self._next: dict[str, int] = {}  # per stem, the number to try first

    def tensor(self, base: str) -> str:
        """``base``, or ``base`` numbered: the smallest number not taken that is past
        those given before (a derivation can make thousands of names on one stem)."""
        if base not in self.tensors:
            name = base
        else:
            stem = base.rstrip("0123456789") or base
            n = self._next.get(stem, 1)
            while f"{stem}{n}" in self.tensors:
                n += 1
            name = f"{stem}{n}"
            self._next[stem] = n + 1
        self.tensors.add(name)
        return name

    def axes(self, count: int, prefer: str = "pqrstuvwxyz") -> tuple[str, ...]:
        out: list[str] = []
        for letter in prefer:
            if len(out) == count:
                break
            if letter not in self.indices:
                out.append(letter)
                self.indices.add(letter)
        while len(out) < count:
            out.append(fresh_name("p", self.indices))
            self.indices.add(out[-1])
        return tuple(out)


def all_indices(expr: Sum) -> set[str]:
    out: set[str] = set()
    for t in expr.terms:
        out |= set(t.mentioned)
    return out


def _inline_ref(value: Sum, lhs: tuple[str, ...], ref: Ref, context: set[str]) -> Sum:
    """``value`` (an expression over ``lhs``) as seen through ``ref``'s indices.

    Its bound names are first made distinct from ``context``, the names around the
    place it goes.
    """
    used = context | set(ref.indices)
    terms = []
    for t in value.terms:
        if ref.subs is not None:  # seen through arithmetic: y[p-k] is y's value at i = p-k
            seen = read_through(freshen(t, set(used)), lhs, ref.axes, used)
            if seen is None:
                raise DerivativeError(
                    f"cannot differentiate through {ref.name}[...] read at "
                    f"{', '.join(subscript_text(s) for s in ref.axes)}: a subscript cannot "
                    "replace an index of its tangent there (an index array's own index, or "
                    "the axes of a function of whole axes)")
            terms.append(seen)
            continue
        t = freshen(t, set(used))
        terms.append(rename_term(t, dict(zip(lhs, ref.indices))))
    return Sum(tuple(terms))


def in_steps(chain: tuple[Statement, ...]
              ) -> tuple[tuple[Statement, ...], dict[str, Group]]:
    """The statements with each recurrence's next to each other, after what they read,
    and the recurrence of each statement in one (docs/recurrences.md)."""
    groups = recurrence_groups(chain)
    if not groups:
        return chain, {}
    return steps_together(chain, groups), members_of(groups)


def active_statements(statements: Iterable[Statement], wrt: str) -> set[str]:
    statements = tuple(statements)
    active = {wrt}
    while True:  # once, unless a recurrence reads a later statement
        before = len(active)
        for st in statements:
            if any(r.name in active for r in statement_refs(st)):
                active.add(st.name)
        if len(active) == before:
            return active


# --- forward: tangents ----------------------------------------------------------


def forward(statements: tuple[Statement, ...], of: str, wrt: str,
            seed: Callable[[Ref], Sum], new_axes: tuple[str, ...], name: str,
            names: Names) -> Derived:
    """Tangents of every statement, in program order; the last one is the result.

    ``seed(X[a,...])`` is the tangent of a reference to ``wrt`` (deltas for a
    Jacobian, ``V[a,...]`` for a JVP); ``new_axes`` are the axes it adds.
    """
    chain, groups = in_steps(needed_statements(statements, of))
    active = active_statements(chain, wrt)
    inline, reread = _tangent_places(chain)
    tangents: dict[str, Sum] = {}
    lhs_of: dict[str, tuple[str, ...]] = {}
    out: list[Statement] = []
    forward_needed: list[Statement] = []
    repeats = Repeats()
    for st in chain:
        if st.name not in active:
            forward_needed.append(st)
            if st.name == of:  # the result does not depend on wrt: its derivative is zero
                return Derived(forward_needed, Statement(name, st.indices + new_axes, ZERO))
            continue
        group = groups.get(st.name)
        if group is not None:  # a recurrence: its tangents are one too, derived together
            if st.name == group.members[0]:
                forward_needed += _forward_group([s for s in chain if s.name in group.members],
                                                 wrt, seed, new_axes, names, tangents, lhs_of, out)
            if st.name == of:
                return Derived(forward_needed + out, Statement(name, st.indices + new_axes,
                                                               tangents[of]))
            continue
        context = set(st.indices) | all_indices(st.rhs) | set(new_axes)
        rule = _tangent_rule(wrt, seed, tangents, lhs_of, context)

        read = tuple((n, tangents[n], lhs_of[n]) for n in dict.fromkeys(
            r.name for r in statement_refs(st)) if n in tangents)
        key, tensors = repeats.key(st, wrt, ZERO, new_axes, frozenset(context), read)
        found = repeats.get(key, tensors)  # a statement like an earlier one: its tangent
        if found is not None:
            tangent = Sum(tuple(found))
        else:
            tangent = differentiate(sized_terms(st.rhs), rule, Budget(st.name),
                                    frozenset(context), own_ranges(st))
            tangent = simplify_sum(refer_to_statement(tangent, st),
                                   frozenset(st.indices + new_axes))
            repeats.put(key, tensors, list(tangent.terms))
        forward_needed.append(st)
        if st.name == of:
            result = Statement(name, st.indices + new_axes, tangent)
            return Derived(forward_needed + out, result)
        if tangent.terms:
            tangents[st.name] = _placed(st, tangent, Ref(wrt, new_axes), st.name in reread,
                                        st.name in inline, names, out)
            lhs_of[st.name] = st.indices + new_axes
    raise DerivativeError(f"{of} is not computed by the program")  # pragma: no cover


def _tangent_rule(wrt: str, seed: Callable[[Ref], Sum], tangents: dict[str, Sum],
                  lhs_of: dict[str, tuple[str, ...]], context: set[str]
                  ) -> Callable[[Ref], Sum | None]:
    """The tangent of a reference in a statement whose names are ``context``: the seed's
    for ``wrt``, a statement's tangent as the reference reads it, or None (a constant)."""

    def rule(ref: Ref) -> Sum | None:
        if ref.name == wrt:
            return seed(ref)
        value = tangents.get(ref.name)
        return None if value is None else _inline_ref(value, lhs_of[ref.name], ref, context)

    return rule


def _forward_group(members: list[Statement], wrt: str, seed: Callable[[Ref], Sum],
                   new_axes: tuple[str, ...], names: Names, tangents: dict[str, Sum],
                   lhs_of: dict[str, tuple[str, ...]], out: list[Statement]
                   ) -> list[Statement]:
    """The tangents of a recurrence's statements (``members``, returned) put in ``out``:
    a recurrence of their own, in the same direction (``h_dot[t]`` reads ``h_dot[t-1]``),
    each tangent a statement that the others read by name (docs/recurrences.md)."""
    for st in members:
        tangents[st.name] = as_sum(Ref(names.tensor(f"{st.name}_dot"), st.indices + new_axes))
        lhs_of[st.name] = st.indices + new_axes
    for st in members:
        context = set(st.indices) | all_indices(st.rhs) | set(new_axes)
        rule = _tangent_rule(wrt, seed, tangents, lhs_of, context)

        tangent = differentiate(sized_terms(st.rhs), rule, Budget(st.name), frozenset(context),
                                own_ranges(st))
        tangent = simplify_sum(refer_to_statement(tangent, st), frozenset(st.indices + new_axes))
        dot = tangents[st.name].terms[0].factors[0]
        assert isinstance(dot, Ref)
        out.append(sized(Statement(dot.name, st.indices + new_axes, tangent),
                         [Ref(st.name, st.indices), Ref(wrt, new_axes)]))
    return members


def _tangent_places(chain: tuple[Statement, ...]) -> tuple[set[str], set[str]]:
    """The statements whose tangents may be inlined where they are used, and those whose
    tangents must be statements read as they are (``reread``).

    A tangent used once is inlined whole, so that a chain of products ends up in one term
    and opt_einsum chooses the order of the contraction; one used more is hoisted. A
    tangent read through arithmetic, or of a statement with it, is a statement of its own:
    inlined, its reads would lose their ranges (given sizes)."""
    uses = {st.name: 0 for st in chain}
    for st in chain:
        for r in refs(st.rhs):
            if r.name in uses:
                uses[r.name] += 1
    reread = {r.name for st in chain for r in refs(st.rhs) if r.subs is not None} | \
        {st.name for st in chain if arithmetic(st.rhs)}
    return {n for n, k in uses.items() if k == 1}, reread


def _placed(st: Statement, tangent: Sum, wrt: Ref, reread: bool, inline: bool, names: Names,
            out: list[Statement]) -> Sum:
    """The tangent of ``st`` as its users read it; the statements it needs go to ``out``.
    ``wrt`` is the variable with the axes the tangent adds."""
    lhs = st.indices + wrt.indices
    shape_of = [Ref(st.name, st.indices), wrt]  # a tangent statement's axes: st's, wrt's
    if reread:
        # Read through arithmetic (y[p-k]): its tangent is a statement, read the same way,
        # so that its zeros past the ends still bound the sum.
        stmt_name = names.tensor(f"{st.name}_dot")
        out.append(sized(Statement(stmt_name, lhs, tangent), shape_of))
        return as_sum(Ref(stmt_name, lhs))
    if inline and _small(tangent):
        return tangent
    tangent, hoisted = _hoist(tangent, lhs, f"{st.name}_dot", names)
    out += [sized(h, shape_of) for h in hoisted]
    return tangent


def _hoist(tangent: Sum, lhs: tuple[str, ...], base: str,
           names: Names) -> tuple[Sum, list[Statement]]:
    """Keep a tangent small enough to inline: its cores become statements of their own.

    A term ``c * deltas * core`` stays inline as ``deltas * dm[...]``: the deltas carry
    the structure; ``dm`` is computed once, however often the tangent is used. Terms with
    the same deltas share one core statement (``delta[i,p] (a[i,q] + b[i,q])``), so a
    tangent keeps one term per pattern of deltas: through a chain of layers that share a
    variable, the terms would otherwise double at every layer.
    """
    if len(tangent.terms) == 1 and _is_plain(tangent.terms[0]):
        return tangent, []
    # the cores of the terms with the same (deltas, indices they tie, ranges of those)
    groups: dict[tuple[tuple[Delta, ...], frozenset[str], tuple[Extent, ...]], list[Term]] = {}
    terms: list[Term] = []
    for t in tangent.terms:
        ties = tuple(f for f in t.factors if isinstance(f, Delta))
        # an index the term sums that a delta ties stays summed beside the delta: the core
        # keeps it as an axis (delta[p,l] s[p,k] s[p,l] is delta[p,l] core[p,k,l])
        tied = frozenset(i for d in ties for i in (d.i, d.j)) & t.summed
        core = Term(t.coef, tuple(f for f in t.factors if not isinstance(f, Delta)),
                    t.summed - tied, t.extents)
        if ties and _is_plain(core):
            terms.append(t)
            continue
        kept = tuple(e for e in t.extents if e.name in tied)
        groups.setdefault((ties, tied, kept), []).append(core)
    hoisted = []
    for (ties, tied, kept), cores in groups.items():
        group = Sum(tuple(cores))
        free = tuple(i for i in lhs if i in group.free) + tuple(sorted(tied & set(group.free)))
        stmt_name = names.tensor(base)
        only = cores[0].factors[0] if len(cores) == 1 and len(cores[0].factors) == 1 else None
        rhs = only if isinstance(only, Sum) and cores[0].coef == 1.0 and not cores[0].summed \
            and not cores[0].extents else group
        hoisted.append(Statement(stmt_name, free, rhs))
        terms.append(Term(1.0, ties + (Ref(stmt_name, free),), tied, kept))
    return Sum(tuple(terms)), hoisted


def _small(tangent: Sum) -> bool:
    """Few enough terms and factors to inline where the tangent is used."""
    return len(tangent.terms) <= 2 and all(len(t.factors) <= 6 for t in tangent.terms)


def _is_plain(t: Term) -> bool:
    """At most one factor, a plain reference: nothing worth computing once."""
    return len(t.factors) <= 1 and all(isinstance(f, Ref) for f in t.factors) and not t.summed

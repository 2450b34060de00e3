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
    const,
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
from ..ir.sizes import sized, sized_terms
from ..ir.recurrences import Group, members_of, recurrence_groups, steps_together
from .ranges import own_ranges
from .repeats import Repeats
from .reuse import refer_to_statement
from .rules import Budget, deltas, differentiate
from .simplify import distinct_bound_names, simplify_sum


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


def _in_steps(chain: tuple[Statement, ...]
              ) -> tuple[tuple[Statement, ...], dict[str, Group]]:
    """The statements with each recurrence's next to each other, after what they read,
    and the recurrence of each statement in one (docs/recurrences.md)."""
    groups = recurrence_groups(chain)
    if not groups:
        return chain, {}
    return steps_together(chain, groups), members_of(groups)


def _active(statements: Iterable[Statement], wrt: str) -> set[str]:
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
    chain, groups = _in_steps(needed_statements(statements, of))
    active = _active(chain, wrt)
    inline, reread = _tangent_places(chain)
    tangents: dict[str, Sum] = {}
    lhs_of: dict[str, tuple[str, ...]] = {}
    out: list[Statement] = []
    forward_needed: list[Statement] = []
    repeats = Repeats()
    for st in chain:
        group = groups.get(st.name)
        if group is not None and st.name in active:
            if st.name == group.members[0]:
                steps = _forward_group([s for s in chain if s.name in group.members], wrt,
                                       seed, new_axes, names, tangents, lhs_of)
                forward_needed += [s for s in chain if s.name in group.members]
                out += steps
            if st.name == of:
                result = Statement(name, st.indices + new_axes,
                                   as_sum(Ref(f"{tangents[of].terms[0].factors[0].name}",
                                              st.indices + new_axes)))
                return Derived(forward_needed + out, result)
            continue
        if group is not None:
            forward_needed.append(st)
            if st.name == of:
                return Derived(forward_needed, Statement(name, st.indices + new_axes, ZERO))
            continue
        if st.name not in active:
            forward_needed.append(st)
            if st.name == of:  # the result does not depend on wrt: its derivative is zero
                return Derived(forward_needed, Statement(name, st.indices + new_axes, ZERO))
            continue
        context = set(st.indices) | all_indices(st.rhs) | set(new_axes)

        def rule(ref: Ref, context: set[str] = context) -> Sum | None:
            if ref.name == wrt:
                return seed(ref)
            value = tangents.get(ref.name)
            if value is None:
                return None
            return _inline_ref(value, lhs_of[ref.name], ref, context)

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


def _forward_group(members: list[Statement], wrt: str, seed: Callable[[Ref], Sum],
                   new_axes: tuple[str, ...], names: Names, tangents: dict[str, Sum],
                   lhs_of: dict[str, tuple[str, ...]]) -> list[Statement]:
    """The tangents of a recurrence's statements: a recurrence of their own, in the same
    direction (``h_dot[t]`` reads ``h_dot[t-1]``), each tangent a statement that the others
    read by name (docs/recurrences.md)."""
    for st in members:
        tangents[st.name] = as_sum(Ref(names.tensor(f"{st.name}_dot"), st.indices + new_axes))
        lhs_of[st.name] = st.indices + new_axes
    out = []
    for st in members:
        context = set(st.indices) | all_indices(st.rhs) | set(new_axes)

        def rule(ref: Ref, context: set[str] = context) -> Sum | None:
            if ref.name == wrt:
                return seed(ref)
            value = tangents.get(ref.name)
            return None if value is None else _inline_ref(value, lhs_of[ref.name], ref, context)

        tangent = differentiate(sized_terms(st.rhs), rule, Budget(st.name), frozenset(context),
                                own_ranges(st))
        tangent = simplify_sum(refer_to_statement(tangent, st), frozenset(st.indices + new_axes))
        dot = tangents[st.name].terms[0].factors[0]
        assert isinstance(dot, Ref)
        out.append(sized(Statement(dot.name, st.indices + new_axes, tangent),
                         [Ref(st.name, st.indices), Ref(wrt, new_axes)]))
    return out


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


# --- reverse: adjoints ----------------------------------------------------------


def reverse(statements: tuple[Statement, ...], of: str, wrt: str,
            cotangent: Ref | None, wrt_axes: tuple[str, ...], name: str,
            names: Names) -> Derived:
    """Adjoints, from the result back to ``wrt``: the gradient or a VJP.

    ``cotangent`` is the seed (``G[i,...]`` for a VJP) or None for a scalar result,
    whose adjoint is 1. Each statement ``s[I] = rhs`` adds ``s_bar[I] d rhs/d m[J]``
    to the adjoint of every input ``m`` it uses that depends on ``wrt``.
    """
    chain, groups = _in_steps(needed_statements(statements, of))
    active = _active(chain, wrt)
    lhs_of = {st.name: st.indices for st in chain}
    lhs_of[wrt] = wrt_axes
    contributions: dict[str, list[Term]] = {}
    contributors: dict[str, int] = {}  # how many statements contributed to each adjoint
    adjoint_ref: dict[str, Sum] = {of: as_sum(cotangent) if cotangent else const(1.0)}
    adjoints: list[Statement] = []
    repeats = Repeats()
    for st in reversed(chain):
        if st.name not in active:
            continue
        group = groups.get(st.name)
        if group is not None:
            if st.name == group.members[-1]:
                if of in group.members:
                    contributions.setdefault(of, []).extend(adjoint_ref.pop(of).terms)
                    contributors[of] = contributors.get(of, 0) + 2  # simplified with the rest
                adjoints += _reverse_group([s for s in chain if s.name in group.members],
                                           active, lhs_of, contributions, contributors,
                                           set(wrt_axes), names)
            continue
        if st.name != of:
            total = _total(contributions.pop(st.name, []), contributors.pop(st.name, 0),
                           st.indices)
            if not total.terms:
                continue
            adjoint_ref[st.name], extra = _adjoint_statement(st, total, names)
            adjoints += extra
        bar = adjoint_ref[st.name]
        context = set(st.indices) | all_indices(st.rhs) | set(wrt_axes)
        targets = {r.name for r in statement_refs(st) if r.name in active}
        for target in sorted(targets):
            target_lhs = lhs_of[target]
            key, tensors = repeats.key(st, target, bar, target_lhs, frozenset(context))
            terms = repeats.get(key, tensors)  # a statement like an earlier one: its terms
            if terms is None:
                terms = _contribution(st, target, bar, target_lhs, context, names)
                repeats.put(key, tensors, terms)
            if terms:
                contributors[target] = contributors.get(target, 0) + 1
            contributions.setdefault(target, []).extend(terms)
    gradient = _total(contributions.get(wrt, []), contributors.get(wrt, 0), wrt_axes)
    # Adjoints were made from the result backwards: each uses only those made before it.
    return Derived(list(chain) + adjoints, Statement(name, wrt_axes, gradient))


def _reverse_group(members: list[Statement], active: set[str],
                   lhs_of: dict[str, tuple[str, ...]], contributions: dict[str, list[Term]],
                   contributors: dict[str, int], around: set[str], names: Names
                   ) -> list[Statement]:
    """The adjoints of a recurrence's statements: a recurrence running the other way
    (``h_prev_bar[t+1]`` read by ``h_bar[t]``), each adjoint a statement that the others
    read by name (docs/recurrences.md). The contributions of the statements after the
    recurrence are in ``contributions``; those to the recurrence's inputs are added there."""
    bars = {st.name: Ref(names.tensor(f"{st.name}_bar"), st.indices) for st in members}
    inside = {st.name for st in members}
    for st in members:
        context = set(st.indices) | all_indices(st.rhs) | around
        for target in sorted({r.name for r in statement_refs(st) if r.name in active}):
            terms = _contribution(st, target, as_sum(bars[st.name]), lhs_of[target], context,
                                  names)
            if terms:
                contributors[target] = contributors.get(target, 0) + 1
            contributions.setdefault(target, []).extend(terms)
    out = []
    for st in reversed(members):
        total = _total(contributions.pop(st.name, []), contributors.pop(st.name, 0),
                       st.indices)
        out.append(sized(Statement(bars[st.name].name, st.indices, total),
                         [Ref(st.name, st.indices)]))
    assert inside == {st.name for st in members}
    return out


def _contribution(st: Statement, target: str, bar: Sum, target_lhs: tuple[str, ...],
                  context: set[str], names: Names) -> list[Term]:
    """``sum_I bar[I] d st[I] / d target[J]``, simplified, over ``target_lhs`` (``J``)."""
    temp = names.axes(len(target_lhs), prefer="")
    context_t = context | set(temp)

    def rule(ref: Ref) -> Sum | None:
        return deltas(ref.axes, temp) if ref.name == target else None

    budget = Budget(st.name)
    local = differentiate(sized_terms(st.rhs), rule, budget, frozenset(context_t),
                          own_ranges(st))
    local = refer_to_statement(local, st)
    # Names a rule made up (softmax's k) are not in the context: the adjoint's own bound
    # names must avoid them too.
    made_up = {n for t in local.terms for n in t.mentioned} - context_t
    seeded = _times_bar(bar, local, Ref(st.name, st.indices), context_t | made_up, budget,
                        arithmetic(st.rhs))
    value = simplify_sum(seeded, frozenset(temp))
    return [rename_term(freshen(t, set(target_lhs)), dict(zip(temp, target_lhs)))
            for t in value.terms]


def _total(terms: list[Term], contributors: int, axes: tuple[str, ...]) -> Sum:
    """An adjoint: the contributions of the statements that use it, added. One statement's
    contribution is simplified already (only renamed since, with its bound names kept
    apart from the new ones): it is used as it is."""
    if contributors <= 1:  # renaming may have given a bound name a second size: not so
        return distinct_bound_names(Sum(tuple(terms)), frozenset(axes))
    return simplify_sum(Sum(tuple(terms)), frozenset(axes))


def _times_bar(bar: Sum, local: Sum, lhs: Ref, context: set[str], budget: Budget,
               given: bool = False) -> Sum:
    """``sum_I bar[I] * local[I, J]`` for the statement ``lhs`` (its indices are ``I``).

    Each ``I`` keeps the length of the statement's axis beside the term, for where no
    factor carries it (a constant adjoint, folded in: ``bar`` is then a number); ``given``
    (a statement with index arithmetic) marks them given: reads that read zeros past an
    array's end there (a size the caller gave) do so again (docs/index-arithmetic.md). A term
    of ``local`` repeated as the same object stays one object (see ``rules._d_term``).
    """
    terms = []
    lengths = tuple(Extent(i, lhs.name, axis, given) for axis, i in enumerate(lhs.indices))
    for k, b in enumerate(bar.terms):
        b = freshen(b, set(context))
        if given:  # lengths from the adjoint (shaped like the statement) where it has them
            carried = {i: Extent(i, f.name, axis, True) for f in b.factors
                       if isinstance(f, Ref) for axis, i in f.plain_axes()}
            lengths = tuple(carried.get(e.name, e) for e in lengths)
        made: dict[int, Term] = {}
        for u in local.terms:
            if id(u) not in made:  # the budget has had u's factors once already
                budget.spend(len(b.factors) + (len(u.factors) if k else 0))
                made[id(u)] = Term(b.coef * u.coef, b.factors + u.factors,
                                   b.summed | u.summed | frozenset(lhs.indices),
                                   b.extents + u.extents + lengths)
            terms.append(made[id(u)])
    return Sum(tuple(terms))


def _adjoint_statement(st: Statement, total: Sum, names: Names) -> tuple[Sum, list[Statement]]:
    """The adjoint of ``st`` as a reference: a plain reference or a number is used as it is
    (``m_bar[n] = 1`` is folded in, never printed), anything else becomes a statement."""
    if len(total.terms) == 1:
        t = total.terms[0]
        if t.coef == 1 and len(t.factors) == 1 and isinstance(t.factors[0], Ref) \
                and not t.summed and t.factors[0].indices == st.indices:
            return total, []
        if not t.factors and not t.summed:
            return Sum((Term(t.coef, ()),)), []
    bar_name = names.tensor(f"{st.name}_bar")
    adjoint = sized(Statement(bar_name, st.indices, total), [Ref(st.name, st.indices)])
    return as_sum(Ref(bar_name, st.indices)), [adjoint]

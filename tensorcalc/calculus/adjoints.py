"""The chain rule across statements in reverse: adjoints, from a result back to an input
(a gradient, a VJP). Each statement ``s[I] = rhs`` adds ``s_bar[I] d rhs/d m[J]`` to the
adjoint of every input ``m`` it uses that depends on the input; the rules within a
statement are ``rules.py``'s. A recurrence's adjoints are a recurrence running the other
way (docs/recurrences.md).
"""

from __future__ import annotations

from ..ir import arithmetic, as_sum, const, freshen, needed_statements, rename_term, statement_refs
from ..ir.nodes import Delta, Extent, Ref, Shift, Statement, Sum, Term
from ..ir.rename import substitute
from ..ir.sizes import sized, sized_terms
from ..ir.subscripts import Affine, Subscript, affine
from .modes import Derived, Names, active_statements, all_indices, in_steps
from .ranges import own_ranges
from .repeats import Repeats
from .reuse import refer_to_statement
from .rules import Budget, deltas, differentiate
from .simplify import distinct_bound_names, simplify_sum


def reverse(statements: tuple[Statement, ...], of: str, wrt: str,
            cotangent: Ref | None, wrt_axes: tuple[str, ...], name: str,
            names: Names) -> Derived:
    """Adjoints, from the result back to ``wrt``: the gradient or a VJP.

    ``cotangent`` is the seed (``G[i,...]`` for a VJP) or None for a scalar result,
    whose adjoint is 1. Each statement ``s[I] = rhs`` adds ``s_bar[I] d rhs/d m[J]``
    to the adjoint of every input ``m`` it uses that depends on ``wrt``.
    """
    chain, groups = in_steps(needed_statements(statements, of))
    active = active_statements(chain, wrt)
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
        total = _next_steps(_total(contributions.pop(st.name, []),
                                   contributors.pop(st.name, 0), st.indices), st.indices[0])
        out.append(sized(Statement(bars[st.name].name, st.indices, total),
                         [Ref(st.name, st.indices)]))
    assert inside == {st.name for st in members}
    return out


def _next_steps(total: Sum, t: str) -> Sum:
    """An adjoint of a recurrence with each ``delta[t, k-1]`` (its read of the step before,
    differentiated) solved for the summed ``k``: ``c_bar[t+1,j] sigmoid(a[t+1,j])``. A
    step's term is absent where a read falls past the end, as the sum over ``k`` was
    there, so this holds inside functions too (``deltas.substitute_shifts`` keeps such a
    delta outside a recurrence, where padding must never enter one)."""
    terms = []
    for term in total.terms:
        changed = True
        while changed:
            changed = False
            for f in term.factors:
                solve = _tied_step(f, t, term.summed)
                if solve is None:
                    continue
                rest = Term(term.coef, tuple(g for g in term.factors if g is not f),
                            term.summed, term.extents)
                solved = substitute(rest, *solve)
                if solved is not None:
                    term, changed = solved, True
                    break
        terms.append(term)
    return Sum(tuple(terms))


def _tied_step(f: object, t: str, summed: frozenset[str]) -> tuple[str, Subscript] | None:
    """``(k, t - c)`` where ``f`` is ``delta[t, k+c]`` (or ``delta[k,t]``) with ``k`` summed."""
    if isinstance(f, Delta) and t in (f.i, f.j):
        k = f.j if f.i == t else f.i
        return (k, t) if k in summed and k != t else None
    if isinstance(f, Shift) and f.i == t and isinstance(f.sub, Affine) and \
            len(f.sub.parts) == 1 and f.sub.parts[0][1] == 1 and f.sub.parts[0][0] in summed:
        return f.sub.parts[0][0], affine(((t, 1),), -f.sub.offset)
    return None


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

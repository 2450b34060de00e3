"""The ``input`` declaration: what a program's text says about sizes it does not carry.

``input X[p,q], W[q,j], c`` names inputs, fixes their order, and gives the index names
``p``, ``q``, ``j`` the sizes of those axes in the statements below it wherever no tensor
of a statement sizes them. Lowering turns what a declaration says into ``ir.Extent``
values beside the terms (``declare_inputs``, ``with_extents``); printing a program whose
statements have such extents writes the declaration back (``format_program``), so that a
printed derivative compiles and runs as it stands.

>>> from tensorcalc.api import compile
>>> print(compile("input x[p]; g[p] = 1"))
input x[p]
g[p] = 1
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ..errors import ProgramError
from ..ir import (
    COUNT_MARK,
    SIZE_MARK,
    Extent,
    Statement,
    Sum,
    Term,
    all_deltas,
    arithmetic,
    fresh_name,
    index_tensors,
    map_factor_sums,
    rename_extents,
    rename_sum,
    rename_term,
    statement_extents,
    statement_refs,
)
from ..ir.sizes import (
    Source,
    carried_sources,
    count_extent,
    counts,
    index_sources,
    resolve,
    through_deltas,
)
from ..ops.reductions import RESERVED
from ..render.printing import format_statement
from .surface import Pos, SDeclaration, SStatement

# --- reading a declaration ------------------------------------------------------------


def declare_inputs(decl: SDeclaration, assigned: dict[str, SStatement], ranks: dict[str, int],
             first_use: dict[str, Pos], inputs: list[str], declared: dict[str, Source]) -> None:
    """``input X[p,q], c``: inputs in order, and the index names that their axes size.
    A statement's value may be declared too, after its statement: it names no input."""
    for name, indices in decl.inputs:
        if name in RESERVED:
            raise ProgramError(f"{name} is a reserved word and cannot name a tensor ({decl.pos})")
        indices = indices or ()
        if name in assigned:
            # ``input y[k]`` after y's statement: k has the size of y's axis in the
            # statements below (an axis that index arithmetic shrank, which no input has)
            if len(indices) != ranks[name]:
                raise ProgramError(f"{name} is computed by the program at "
                                   f"{assigned[name].pos} with {ranks[name]} indices but "
                                   f"declared with {len(indices)} at {decl.pos}")
            for axis, i in enumerate(indices):
                declared[i] = (name, axis)
            continue
        for k, i in enumerate(indices):
            if i in indices[:k]:
                raise ProgramError(f"input {name} declares index {i} twice ({decl.pos})")
        known = ranks.get(name)
        if known is not None and known != len(indices):
            raise ProgramError(f"{name} is declared with {len(indices)} indices at {decl.pos} "
                               f"but written with {known} elsewhere")
        ranks[name] = len(indices)
        if name not in first_use:
            first_use[name] = decl.pos
            inputs.append(name)
        for axis, i in enumerate(indices):
            declared.setdefault(i, (name, axis))


def with_extents(st: Statement, lengths: dict[str, Source],
                  earlier: dict[str, Statement]) -> Statement:
    """Extents for the indices no tensor of the statement sizes, from ``lengths`` (index
    names declared with ``input``, or carried by a zero term), as input axes."""
    carried = carried_sources(st)
    given = arithmetic(st.rhs)
    if given:  # with index arithmetic a declared size is a given one, carried or not
        carried = {i: v for i, v in carried.items() if i not in lengths}

    def extent(i: str) -> Extent | None:
        source = lengths.get(i)
        if source is None:
            return None
        return Extent(i, *(resolve(*source, earlier) or source), given)

    def in_sum(expr: Sum) -> Sum:
        out = []
        for t in expr.terms:
            found = tuple(e for k in sorted(t.summed - set(carried)) if (e := extent(k)))
            out.append(Term(t.coef, tuple(map_factor_sums(f, in_sum) for f in t.factors),
                            t.summed, t.extents + found))
        return Sum(tuple(out))

    every = set(st.indices) | {i for t in st.rhs.terms for i in t.mentioned}
    if every <= carried.keys():
        return st
    lhs = tuple(e for i in st.indices if i not in carried and (e := extent(i)))
    return Statement(st.name, st.indices, in_sum(st.rhs), lhs, st.aliases)


def with_counts(st: Statement, declared: Mapping[str, Source]) -> Statement:
    """``st`` with the count that each ``size(i)`` was lowered to sized as the index ``i``
    is in the statement (``sizes.count_extent``: a tensor that reads it plainly, else its
    declaration, else a size given by name)."""
    if not any(e.tensor.startswith(COUNT_MARK) for e in statement_extents(st)):
        return st

    def in_sum(expr: Sum) -> Sum:
        out = []
        for t in expr.terms:
            extents = tuple(
                count_extent(e.name, e.tensor[len(COUNT_MARK):], st.rhs, declared)
                if e.tensor.startswith(COUNT_MARK) else e for e in t.extents)
            out.append(Term(t.coef, tuple(map_factor_sums(f, in_sum) for f in t.factors),
                            t.summed, extents))
        return Sum(tuple(out))

    return Statement(st.name, st.indices, in_sum(st.rhs), st.extents, st.aliases)


# --- writing one ----------------------------------------------------------------------


def format_program(statements: Iterable[Statement], accepts: Mapping[str, int],
                   explicit_sums: bool = False, avoid: Iterable[str] = ()) -> str:
    """The statements as index notation that compiles to the same program.

    Where an index would have no size in the text (no tensor of its statement carries
    it, as in ``dY_dX[i,j,p,q] = delta[i,p] W[q,j]``, where ``p`` and ``i`` have the
    size of ``X``'s first axis), or where an input the program accepts is not
    mentioned, a first line ``input X[p,q], W[q,j]`` names the inputs in order and
    gives those index names their sizes. An index name never stands for two sizes
    there: a statement's own index is renamed where it would. ``avoid`` holds the names
    of sizes given by name to the program (``sizes=``), which the text takes again: no
    index is renamed to one of them.
    """
    avoid = frozenset(avoid)
    statements = _given_apart([_sizes_by_name(st) for st in statements], avoid)
    declared: dict[str, Source] = {}
    printed = [_declare(st, declared, avoid) for st in statements]
    if len(declared) > len(set(declared.values())):
        # Several names for one size: give summed indices the declared name where they can
        # take it, then declare again (fewer names).
        shared = [_share_bound_names(st, declared) for st in printed]
        declared = {}
        printed = [_declare(st, declared, avoid) for st in shared]
    computed = {st.name: st for st in statements}
    lines = [format_statement(st, explicit_sums) for st in printed]
    # sizes only a statement has (an axis that index arithmetic shrank): declared after it
    after = {n: src for n, src in declared.items() if src[0] in computed}
    if after:
        declared = {n: src for n, src in declared.items() if n not in after}
        lines = _declare_after(printed, computed, after, declared, avoid, accepts, lines)
    mentioned = {r.name for st in printed for r in statement_refs(st)} | \
        {g.name for st in printed for g in index_tensors(st.rhs)}
    if declared or any(name not in mentioned for name in accepts):
        lines.insert(0, _declaration(printed, accepts, declared))
    return "\n".join(lines)


def _declare_after(printed: list[Statement], computed: dict[str, Statement],
                   after: dict[str, Source], declared: dict[str, Source],
                   avoid: frozenset[str], accepts: Mapping[str, int],
                   lines: list[str]) -> list[str]:
    """``lines`` with, after each statement whose axes size names below it, one line
    ``input y[b,o,i,j]`` with every such name on its axis (a second entry only where two
    names share an axis); the other axes take names that are neither indices nor tensors."""
    taken = {i for st in printed for i in _all_names(st)} | set(declared) | set(after) \
        | avoid | set(computed) | set(accepts)
    fill = (n for n in _FILLERS() if n not in taken)
    lines = list(lines)
    for k in reversed(range(len(printed))):
        tensor = printed[k].name
        on_axis: dict[int, list[str]] = {}
        for name, (of, axis) in after.items():
            if of == tensor:
                on_axis.setdefault(axis, []).append(name)
        if not on_axis:
            continue
        rank = len(computed[tensor].indices)
        entries = []
        for c in range(max(len(names) for names in on_axis.values())):
            axes = [on_axis[a][c] if c < len(on_axis.get(a, ())) else next(fill)
                    for a in range(rank)]
            entries.append(f"{tensor}[{','.join(axes)}]")
        lines.insert(k + 1, "input " + ", ".join(entries))
    return lines


def _sizes_by_name(st: Statement) -> Statement:
    """``st`` with each index whose size the caller gave by name (an extent of ``#k``,
    ``sizes.with_given_sizes``) renamed back to that name where it is free to take it (a
    term's summed indices are its own): printed, it takes the same ``sizes=`` again."""
    def by_name(extents: Iterable[Extent], taken: set[str],
                allowed: Iterable[str]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        allowed = set(allowed)
        for e in extents:
            key = e.tensor[len(SIZE_MARK):]
            if e.tensor.startswith(SIZE_MARK) and e.name in allowed and e.name != key \
                    and e.name not in mapping and key not in taken:
                mapping[e.name] = key
                taken.add(key)
        return mapping

    every = set(_all_names(st))
    outer = by_name(statement_extents(st), set(every), st.indices)
    held = {outer.get(i, i) for i in st.indices}
    terms = []
    for t in rename_sum(st.rhs, outer).terms:
        inner = by_name(t.extents, set(t.mentioned) | held, t.summed)
        terms.append(rename_term(t, inner))
    if not outer and all(a is b for a, b in zip(terms, st.rhs.terms)):
        return st
    return Statement(st.name, tuple(outer.get(i, i) for i in st.indices), Sum(tuple(terms)),
                     rename_extents(st.extents, outer))


def _given(st: Statement) -> set[str]:
    return {e.name for e in statement_extents(st) if e.given}


def _given_apart(statements: list[Statement], avoid: frozenset[str]) -> list[Statement]:
    """Statements where an index name with a given size (docs/index-arithmetic.md) is renamed where
    another statement uses that name without one: the declaration that gives it applies by name."""
    if not any(_given(st) for st in statements):
        return statements
    names = [set(_all_names(st)) for st in statements]
    # Any size an extent gives is declared, and a declaration applies by name to the
    # statements below it, given there where they use arithmetic: every such name is kept
    # apart from the names other statements use otherwise.
    givens = [{e.name for e in statement_extents(st)
               if e.tensor != SIZE_MARK + e.name} for st in statements]  # by name: stays
    taken = set().union(*names) | avoid
    out = []
    for k, st in enumerate(statements):
        mapping: dict[str, str] = {}
        for i in sorted(givens[k]):
            if any(i in names[m] and i not in givens[m] for m in range(len(statements))
                   if m != k):
                mapping[i] = fresh_name(i, taken)
                taken.add(mapping[i])
        out.append(st if not mapping else Statement(
            st.name, tuple(mapping.get(i, i) for i in st.indices), rename_sum(st.rhs, mapping),
            rename_extents(st.extents, mapping)))
    return out


def _all_names(st: Statement) -> list[str]:
    return list(dict.fromkeys(
        st.indices + tuple(i for t in st.rhs.terms for i in sorted(t.mentioned))))


def _declare(st: Statement, declared: dict[str, Source],
             avoid: frozenset[str] = frozenset()) -> Statement:
    """``st``, renamed where one of its unsized index names is declared with another size;
    the names it needs declared are added to ``declared``."""
    given = _given(st)
    carried = {i: v for i, v in carried_sources(st).items() if i not in given}
    sources = index_sources(st)
    for e in reversed(list(statement_extents(st))):  # the statement's own extents first
        if e.given:
            sources[e.name] = (e.tensor, e.axis)
    # a count printed as size(q), with an index q of the statement: nothing to declare
    carried.update({k: sources[k] for k in counts(st) if k in sources})
    pairs = [(d.i, d.j) for d in all_deltas(st.rhs)]
    names = _all_names(st)
    uncarried = [i for i in names if i not in carried and i in sources]
    mapping: dict[str, str] = {}
    taken = set(names) | set(declared) | avoid
    targets: set[str] = set()
    for i in uncarried:
        # A name already declared with this size is used again (one declaration serves
        # every statement, and no input is declared twice for one axis); otherwise its own
        # name where that is free, else a new name.
        again = next((n for n, src in declared.items()
                      if src == sources[i] and n not in names and n not in targets), None)
        if again is None and declared.get(i, sources[i]) == sources[i] and i not in targets:
            targets.add(i)
            continue
        mapping[i] = again if again is not None else fresh_name(i, taken)
        taken.add(mapping[i])
        targets.add(mapping[i])
    sized = dict(carried)
    # Prefer the last left-hand indices (a derivative's wrt axes), then the others.
    for i in list(reversed(st.indices)) + [n for n in names if n not in st.indices]:
        if i not in sources or (i in sized and i not in given):  # a given size: declared
            continue
        declared[mapping.get(i, i)] = sources[i]
        sized = through_deltas({**sized, i: sources[i]}, pairs)
    if not mapping:
        return st
    return Statement(st.name, tuple(mapping.get(i, i) for i in st.indices),
                     rename_sum(st.rhs, mapping), rename_extents(st.extents, mapping))


def _share_bound_names(st: Statement, declared: dict[str, Source]) -> Statement:
    """``st`` with each summed index that no tensor sizes renamed, within its top-level
    term, to the first name declared with its size, where that name is free there."""
    given = _given(st)
    carried = {i: v for i, v in carried_sources(st).items() if i not in given}
    sources = index_sources(st)
    for e in reversed(list(statement_extents(st))):  # a given size is what is declared
        if e.given:
            sources[e.name] = (e.tensor, e.axis)
    first: dict[Source, str] = {}
    for name, source in declared.items():
        first.setdefault(source, name)
    terms = []
    for t in st.rhs.terms:
        mapping: dict[str, str] = {}
        for b in sorted(t.summed):
            shared = first.get(sources.get(b, ("", -1)))
            if b in carried or shared is None or shared == b or shared in t.mentioned \
                    or shared in st.indices or shared in carried or shared in mapping.values():
                continue
            mapping[b] = shared
        terms.append(rename_term(t, mapping))
    return Statement(st.name, st.indices, Sum(tuple(terms)), st.extents)


def _declaration(statements: list[Statement], accepts: Mapping[str, int],
                 declared: dict[str, Source]) -> str:
    """``input X[p,q], W[q,j], c``: every accepted input, with the declared names on their
    axes and, on the other axes, names that size nothing else."""
    names_on: dict[Source, list[str]] = {}
    for name, source in declared.items():
        names_on.setdefault(source, []).append(name)
    unsized_somewhere: set[str] = set()
    for st in statements:
        carried = carried_sources(st)
        unsized_somewhere.update(i for i in _all_names(st) if i not in carried)
    everywhere = {i for st in statements for i in _all_names(st)} | set(declared)
    # With index arithmetic a declared name gives a size (docs/index-arithmetic.md): an axis that
    # sizes nothing there is named apart.
    arithmetic_names = {i for st in statements if arithmetic(st.rhs) for i in _all_names(st)}
    unsized_somewhere |= arithmetic_names
    written: dict[str, tuple[str, ...]] = {}
    for st in statements:
        for r in statement_refs(st):
            if r.subs is None:
                written.setdefault(r.name, r.indices)
        for g in index_tensors(st.rhs):
            written.setdefault(g.name, g.indices)
    entries = []
    for name, rank in accepts.items():
        if rank == 0:
            entries.append(name)
            continue
        copies = max([1] + [len(names_on.get((name, a), [])) for a in range(rank)])
        for c in range(copies):
            axes: list[str] = []
            for a in range(rank):
                on_axis = names_on.get((name, a), [])
                if c < len(on_axis):
                    axes.append(on_axis[c])
                    continue
                own = written.get(name, ())
                guess = own[a] if a < len(own) else None
                if guess is None or guess in unsized_somewhere or guess in declared \
                        or guess in axes or len(set(own)) != len(own):
                    guess = next(n for n in _FILLERS() if n not in everywhere and n not in axes)
                    everywhere.add(guess)
                axes.append(guess)
            entries.append(f"{name}[{','.join(axes)}]")
    return "input " + ", ".join(entries)


def _FILLERS() -> Iterator[str]:  # noqa: N802 - a generator of names, used like a constant
    yield from "pqrstuvwxyzabcdefghijklmno"
    k = 1
    while True:
        yield f"p{k}"
        k += 1

"""Surface syntax to the checked IR: the checks of a program's names and statements,
and each statement lowered, its expression by the summation convention
(``convention.py``, rules 1 and 3) and each top-level term summing what is left
(rule 2, docs/language.md). Left-hand indices are always held.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProgramError
from ..ir import (
    Affine,
    Gather,
    Ref,
    Statement,
    Sum,
    Term,
    all_factors,
    arithmetic,
    fresh_name,
    refs,
    rename_term,
)
from ..ir.recurrences import recurrence_groups
from ..ir.sizes import Source
from ..limits import MAX_FACTORS, MAX_NESTING, MAX_TERMS, size_error
from ..ops.reductions import RESERVED
from .convention import Lowering, summed_by
from .declarations import declare_inputs, with_counts, with_extents
from .recurrences import desugar
from .surface import (
    Pos,
    SBinary,
    SCall,
    SCond,
    SDeclaration,
    SDelta,
    SExpr,
    SNumber,
    SReduce,
    SStatement,
    SSumOver,
    STensor,
)
from .surface_walks import first, flatten_product, flatten_sum, operands
from .traps import Trap


@dataclass(frozen=True)
class Lowered:
    statements: tuple[Statement, ...]
    inputs: tuple[str, ...]
    ranks: dict[str, int]
    traps: tuple[Trap, ...] = ()  # where the convention likely reads otherwise than meant


def lower(surface: list[SStatement | SDeclaration]) -> Lowered:
    """Check a parsed program and lower it to IR statements."""
    desugared = desugar(surface)
    surface, back_reads = desugared.lines, desugared.back_reads
    assigned: dict[str, SStatement] = {}
    ranks: dict[str, int] = {}
    first_use: dict[str, Pos] = {}
    first_reader: dict[str, str] = {}  # the statement that first used a name
    inputs: list[str] = []
    declared: dict[str, Source] = {}
    statements: list[Statement] = []
    by_name: dict[str, Statement] = {}  # the statements so far (one dict: no quadratic cost)
    index_use: dict[str, tuple[bool, Pos]] = {}  # is a name an index array, and where seen
    traps: list[Trap] = []
    for st in surface:
        if isinstance(st, SDeclaration):
            declare_inputs(st, assigned, ranks, first_use, inputs, declared)
            continue
        if st.name in RESERVED:
            raise ProgramError(f"{st.name} is a reserved word and cannot name a tensor ({st.pos})")
        if st.name in assigned:
            raise ProgramError(
                f"{st.name} is assigned twice: at {assigned[st.name].pos} and at {st.pos}"
            )
        if st.name in first_use and (first_reader.get(st.name), st.name) not in back_reads:
            raise ProgramError(
                f"{st.name} is used at {first_use[st.name]} before it is assigned at {st.pos}; "
                "every name is either an input or assigned once, before its use"
            )
        _check_size(st)
        uses = _uses(st.rhs)
        _check_index_use(st, uses, assigned, index_use, back_reads)
        for name, rank, pos, _as_index in uses:
            if name in RESERVED:
                raise ProgramError(f"{name} is a reserved word and cannot name a tensor ({pos})")
            known = ranks.get(name)
            if known is not None and known != rank:
                raise ProgramError(
                    f"{name} is written with {rank} ind{'ex' if rank == 1 else 'ices'} at {pos} "
                    f"but with {known} elsewhere"
                )
            ranks[name] = rank
            if name not in assigned and name not in first_use:
                first_use[name] = pos
                first_reader[name] = st.name
                if (st.name, name) not in back_reads:
                    inputs.append(name)
        if st.name in ranks and ranks[st.name] != len(st.indices):
            raise ProgramError(f"{st.name} is assigned with {len(st.indices)} indices at {st.pos} "
                               f"but used with {ranks[st.name]}")
        statements.append(_lower_statement(st, declared, by_name, traps))
        by_name[st.name] = statements[-1]
        assigned[st.name] = st
        ranks[st.name] = len(st.indices)
    if back_reads:
        recurrence_groups(statements)  # each recurrence checked now, not at the first call
    return Lowered(tuple(statements), tuple(inputs), ranks, tuple(traps))


def _check_index_use(st: SStatement, uses: list[tuple[str, int, Pos, bool]],
                     assigned: dict[str, SStatement],
                     index_use: dict[str, tuple[bool, Pos]],
                     back_reads: frozenset[tuple[str, str]] = frozenset()) -> None:
    """An index array is an input, never also a tensor of numbers, and no statement uses
    itself."""
    for name, _rank, pos, as_index in uses:
        if as_index and name in assigned:
            raise ProgramError(f"{name} is used as an index array at {pos} but computed by "
                               f"the program at {assigned[name].pos}; index arrays are "
                               "inputs")
        if index_use.setdefault(name, (as_index, pos))[0] != as_index:
            earlier = index_use[name][1]
            raise ProgramError(f"{name} is used as an index array and as a tensor of "
                               f"numbers (at {earlier} and {pos}); give them two names")
        if name == st.name and (name, name) not in back_reads:
            raise ProgramError(
                f"{st.name} is used on its own right-hand side at {pos}; every name is "
                "either an input or assigned once, before its use"
            )


def _check_size(st: SStatement) -> None:
    """Refuse a statement past a program-size limit (``limits.py``) before it is lowered:
    its terms, the factors of each product and how deeply its factors nest.

    Nesting counts as lowering builds it: a function's argument, a power's base and
    exponent, a ``sum[]`` body, a divisor and a parenthesised sum used as a factor are each
    one level deeper; a sum inside a sum and a product inside a product are not.
    """
    terms = 0
    widest: tuple[int, Pos] = (0, st.pos)  # the product with the most factors
    deepest: tuple[int, Pos] = (0, st.pos)
    stack: list[tuple[SExpr, int]] = [(st.rhs, 0)]  # sums still to walk, with their depth
    while stack:  # iterative: the text may nest thousands deep
        node, depth = stack.pop()
        if depth > deepest[0]:
            deepest = (depth, node.pos)
        summands = flatten_sum(node)
        terms += len(summands)
        for _sign, operand in summands:
            factors = flatten_product(operand)[1]
            counted = sum(1 for f, _inverse in factors if not isinstance(f, SNumber))
            if counted > widest[0]:
                widest = (counted, operand.pos)
            for f, inverse in factors:
                if inverse or isinstance(f, SBinary):  # a divisor, or a parenthesised sum
                    stack.append((f, depth + 1))
                else:
                    stack += [(c, depth + 1) for c in operands(f)]
    where = f"statement {st.name} at {st.pos}"
    if terms > MAX_TERMS:
        raise size_error(where, terms, "terms (operands of + and -, at every depth)",
                         MAX_TERMS, "split the sum over several statements")
    if widest[0] > MAX_FACTORS:
        raise size_error(f"the product at {widest[1]} in {where}", widest[0], "factors",
                         MAX_FACTORS, "write a factor that repeats as a power (x[i]^3), or "
                         "split the product over several statements")
    if deepest[0] > MAX_NESTING:
        raise size_error(f"{where}", deepest[0], "levels of function calls, powers, sum[], "
                         "divisors and parenthesised sums inside each other (the deepest at "
                         f"{deepest[1]})", MAX_NESTING,
                         "compute inner parts in statements of their own")


def _uses(node: SExpr) -> list[tuple[str, int, Pos, bool]]:
    """Every tensor name used in an expression, with its number of indices, and whether it
    is used as a subscript (an index array)."""
    found: list[tuple[str, int, Pos, bool]] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, SCall) and n.fn == "size":  # size(i) names an index, no tensor
            continue
        if isinstance(n, STensor):
            found.append((n.name, len(n.indices or ()), n.pos, False))
            found += [(g.name, len(g.indices), n.pos, True) for g in n.indices or ()
                      if isinstance(g, Gather)]
        elif isinstance(n, SDelta):  # delta[v, t[e]]: t is an index array
            found += [(g.name, len(g.indices), n.pos, True) for g in n.indices
                      if isinstance(g, Gather)]
        elif isinstance(n, (SCond, SReduce)):  # [c != t[n]], max[c | c != t[n]]
            for c in n.mask if isinstance(n, SReduce) else (n,):
                found += [(g.name, len(g.indices), c.pos, True) for g in (c.a, c.b)
                          if isinstance(g, Gather)]
        stack += reversed(operands(n))
    return found


def _lower_statement(st: SStatement, declared: dict[str, Source],
                     earlier: dict[str, Statement], traps: list[Trap]) -> Statement:
    """``st`` lowered; its traps (``traps.py``) are added to ``traps``."""
    lhs = st.indices
    for k, i in enumerate(lhs):
        if i in lhs[:k]:
            raise ProgramError(f"index {i} appears twice on the left of {st.name} at {st.pos}")
    low = Lowering(frozenset(declared), st.name)
    occurring = low.occurs(st.rhs)
    for i in lhs:
        if i not in occurring and i not in declared:
            inner = summed_by(st.rhs, i)
            if inner is not None:
                raise ProgramError(
                    f"index {i} of {st.name} at {st.pos} is summed by "
                    f"{'sum' if isinstance(inner, SSumOver) else inner.fn}[{i}] at {inner.pos} "
                    f"inside, so it cannot also label the result (a sum over a held index); "
                    f"drop {i} from the left, or sum over another index name"
                )
            keeping = first(st.rhs, lambda n, i=i: isinstance(n, SReduce)  # type: ignore[misc]
                             and i in n.indices)
            if isinstance(keeping, SReduce):  # inv[i,j](A[i,k]): its own check says more
                raise ProgramError(f"{keeping.fn}[{','.join(keeping.indices)}] at "
                                   f"{keeping.pos} runs along index {i}, which its argument "
                                   "does not have")
            raise ProgramError(
                f"index {i} of {st.name} at {st.pos} never appears on the right-hand side"
            )
    held = frozenset(lhs)
    terms = []
    lengths: dict[str, Source] = {}  # left-hand indices that only a zero term carries
    for sign, node in flatten_sum(st.rhs):
        term = low.term(node, held, sign)
        if term.coef != 0:
            terms.append(term)
        else:  # a zero term still tells the sizes of the left-hand indices it carries
            for r in refs(Sum((term,))):
                for axis, i in r.plain_axes():
                    if i in lhs:
                        lengths.setdefault(i, (r.name, axis))
    traps += low.traps
    rhs, aliases = _own_ranges(tuple(terms), lhs, set(declared))
    statement = with_counts(Statement(st.name, lhs, rhs, aliases=aliases), declared)
    return with_extents(statement, {**lengths, **declared}, earlier)


def _own_ranges(terms: tuple[Term, ...], lhs: tuple[str, ...], declared: set[str]
                ) -> tuple[Sum, tuple[tuple[str, str], ...]]:
    """With index arithmetic, an index summed by a term runs over what that term's reads
    allow: a name summed by an earlier term is renamed in a later one (``L = x[i+1] +
    y[i]`` sums x[1:] and all of y; a derivative then sees each range where it is). The
    renames come back as ``(new, written)`` (``Statement.aliases``). A new name is never a
    ``declared`` one, whose size would then be given to it."""
    expr = Sum(terms)
    if not arithmetic(expr):
        return expr, ()
    shifted = {n for f in all_factors(expr) if isinstance(f, Ref) and f.subs is not None
               for s in f.subs if isinstance(s, Affine) for n in s.names}
    taken = set(lhs) | {n for t in terms for n in t.mentioned} | declared
    seen: set[str] = set()
    out = []
    aliases: list[tuple[str, str]] = []
    for t in terms:
        mapping = {}
        for k in sorted(t.summed & seen & shifted - declared):  # declared: one size
            mapping[k] = fresh_name(k, taken)
            taken.add(mapping[k])
            aliases.append((mapping[k], k))
        seen |= t.summed
        out.append(rename_term(t, mapping))
    return Sum(tuple(out)), tuple(aliases)

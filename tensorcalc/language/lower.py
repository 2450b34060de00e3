"""Surface syntax to the checked IR: the summation convention and every static check.

The summation convention (SPEC §1), applied top down:

1. an index not held from outside is summed over the outermost product in which it
   occurs in two or more factors (a division ``a / b`` is the factor ``b^-1``);
2. otherwise over the top-level term (operand of the outermost ``+``/``-``);
3. ``sum[j](e)`` holds ``j`` while ``e`` is lowered, then sums it.

Left-hand indices are always held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ProgramError
from ..ir import (
    Affine,
    Call,
    Delta,
    Factor,
    Gather,
    Power,
    Reduce,
    Ref,
    Shift,
    Statement,
    Sum,
    Term,
    access,
    all_factors,
    arithmetic,
    as_sum,
    children,
    const,
    const_value,
    fresh_name,
    freshen,
    map_factor_sums,
    refs,
    rename_term,
    sub_names,
    unknown_kind,
)
from ..ir.sizes import Source
from ..limits import MAX_FACTORS, MAX_NESTING, MAX_TERMS, size_error
from ..ops.functions import FUNCTIONS
from ..ops.reductions import KEEPING, MATRIX, REDUCTIONS, RESERVED
from ..render.printing import format_number
from .declarations import declare_inputs, with_extents
from .surface import (
    Pos,
    SBinary,
    SCall,
    SDeclaration,
    SDelta,
    SExpr,
    SNeg,
    SNumber,
    SPow,
    SReduce,
    SStatement,
    SSumOver,
    STensor,
)

_RESERVED = RESERVED


@dataclass(frozen=True)
class Lowered:
    statements: tuple[Statement, ...]
    inputs: tuple[str, ...]
    ranks: dict[str, int]


def lower(surface: list[SStatement | SDeclaration]) -> Lowered:
    """Check a parsed program and lower it to IR statements."""
    assigned: dict[str, SStatement] = {}
    ranks: dict[str, int] = {}
    first_use: dict[str, Pos] = {}
    inputs: list[str] = []
    declared: dict[str, Source] = {}
    statements: list[Statement] = []
    by_name: dict[str, Statement] = {}  # the statements so far (one dict: no quadratic cost)
    index_use: dict[str, tuple[bool, Pos]] = {}  # is a name an index array, and where seen
    for st in surface:
        if isinstance(st, SDeclaration):
            declare_inputs(st, assigned, ranks, first_use, inputs, declared)
            continue
        if st.name in _RESERVED:
            raise ProgramError(f"{st.name} is a reserved word and cannot name a tensor ({st.pos})")
        if st.name in assigned:
            raise ProgramError(
                f"{st.name} is assigned twice: at {assigned[st.name].pos} and at {st.pos}"
            )
        if st.name in first_use:
            raise ProgramError(
                f"{st.name} is used at {first_use[st.name]} before it is assigned at {st.pos}; "
                "every name is either an input or assigned once, before its use"
            )
        _check_size(st)
        uses = _uses(st.rhs)
        for name, _rank, pos, as_index in uses:
            if as_index and name in assigned:
                raise ProgramError(f"{name} is used as an index array at {pos} but computed by "
                                   f"the program at {assigned[name].pos}; index arrays are "
                                   "inputs")
            if index_use.setdefault(name, (as_index, pos))[0] != as_index:
                first = index_use[name][1]
                raise ProgramError(f"{name} is used as an index array and as a tensor of "
                                   f"numbers (at {first} and {pos}); give them two names")
            if name == st.name:
                raise ProgramError(
                    f"{st.name} is used on its own right-hand side at {pos}; every name is "
                    "either an input or assigned once, before its use"
                )
        for name, rank, pos, _as_index in uses:
            if name in _RESERVED:
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
                inputs.append(name)
        if st.name in ranks and ranks[st.name] != len(st.indices):
            raise ProgramError(f"{st.name} is assigned with {len(st.indices)} indices at {st.pos} "
                               f"but used with {ranks[st.name]}")
        statements.append(_lower_statement(st, declared, by_name))
        by_name[st.name] = statements[-1]
        assigned[st.name] = st
        ranks[st.name] = len(st.indices)
    return Lowered(tuple(statements), tuple(inputs), ranks)


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
        operands = _flatten_sum(node)
        terms += len(operands)
        for _sign, operand in operands:
            factors = _flatten_product(operand)[1]
            counted = sum(1 for f, _inverse in factors if not isinstance(f, SNumber))
            if counted > widest[0]:
                widest = (counted, operand.pos)
            for f, inverse in factors:
                if inverse or isinstance(f, SBinary):  # a divisor, or a parenthesised sum
                    stack.append((f, depth + 1))
                else:
                    stack += [(c, depth + 1) for c in _children(f)]
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
        if isinstance(n, STensor):
            found.append((n.name, len(n.indices or ()), n.pos, False))
            found += [(g.name, len(g.indices), n.pos, True) for g in n.indices or ()
                      if isinstance(g, Gather)]
        elif isinstance(n, SDelta):  # delta[v, t[e]]: t is an index array
            found += [(g.name, len(g.indices), n.pos, True) for g in n.indices
                      if isinstance(g, Gather)]
        stack += reversed(_children(n))
    return found


def _lower_statement(st: SStatement, declared: dict[str, Source],
                     earlier: dict[str, Statement]) -> Statement:
    lhs = st.indices
    for k, i in enumerate(lhs):
        if i in lhs[:k]:
            raise ProgramError(f"index {i} appears twice on the left of {st.name} at {st.pos}")
    low = _Lowering(frozenset(declared))
    occurring = low.occurs(st.rhs)
    for i in lhs:
        if i not in occurring and i not in declared:
            inner = _summed_by(st.rhs, i)
            if inner is not None:
                raise ProgramError(
                    f"index {i} of {st.name} at {st.pos} is summed by "
                    f"{'sum' if isinstance(inner, SSumOver) else inner.fn}[{i}] at {inner.pos} "
                    f"inside, so it cannot also label the result (a sum over a held index); "
                    f"drop {i} from the left, or sum over another index name"
                )
            keeping = _first(st.rhs, lambda n, i=i: isinstance(n, SReduce)  # type: ignore[misc]
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
    for sign, node in _flatten_sum(st.rhs):
        term = low.product(node, held, sign)
        _settle(term)
        rule2 = frozenset(term.free) - held
        term = freshen(Term(term.coef, term.factors, term.summed | rule2))
        term = inline_single_terms(term)
        if term.coef != 0:
            terms.append(term)
        else:  # a zero term still tells the sizes of the left-hand indices it carries
            for r in refs(Sum((term,))):
                for axis, i in r.plain_axes():
                    if i in lhs:
                        lengths.setdefault(i, (r.name, axis))
    rhs, aliases = _own_ranges(tuple(terms), lhs, set(declared))
    statement = Statement(st.name, lhs, rhs, aliases=aliases)
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


def _settle(term: Term) -> None:
    """Compute the ``free`` indices of every term and sum inside, innermost first: asked of
    the outer term alone, each level would ask the next (``sum[]`` nested 40 deep is 80
    levels of Python calls)."""
    order: list[Term | Sum] = []
    stack: list[Term | Sum] = [term]
    while stack:
        node = stack.pop()
        order.append(node)
        if isinstance(node, Term):
            stack += [s for f in node.factors for s in children(f)]
        else:
            stack += node.terms
    for node in reversed(order):
        node.free  # noqa: B018 - cached on the node


def inline_single_terms(term: Term) -> Term:
    """Merge every factor that is a one-term sum into the term that holds it.

    Valid because bound names are unique inside a top-level term (see ``freshen``).
    """
    coef = term.coef
    factors: list[Factor] = []
    summed = set(term.summed)
    for f in term.factors:
        if isinstance(f, Sum) and len(f.terms) == 1:
            inner = inline_single_terms(f.terms[0])
            coef *= inner.coef
            factors += inner.factors
            summed |= inner.summed
        elif isinstance(f, Sum) and not f.terms:
            return Term(0.0, (), frozenset())
        elif isinstance(f, (Call, Power, Sum)):
            factors.append(map_factor_sums(
                f, lambda s: Sum(tuple(inline_single_terms(t) for t in s.terms))))
        elif isinstance(f, (Ref, Delta, Shift, Reduce)):  # a reduction keeps its own sums
            factors.append(f)
        else:
            unknown_kind(f)
    return Term(coef, tuple(factors), frozenset(summed))


def _flatten_sum(node: SExpr, sign: float = 1.0) -> list[tuple[float, SExpr]]:
    """The signed top-level operands of ``+`` and ``-`` (iterative: no deep recursion)."""
    out: list[tuple[float, SExpr]] = []
    stack: list[tuple[float, SExpr]] = [(sign, node)]
    while stack:
        s, n = stack.pop()
        if isinstance(n, SBinary) and n.op in "+-":
            stack.append((s if n.op == "+" else -s, n.right))
            stack.append((s, n.left))
        elif isinstance(n, SNeg):
            stack.append((-s, n.operand))
        else:
            out.append((s, n))
    return out


def _flatten_product(node: SExpr) -> tuple[float, list[tuple[SExpr, bool]]]:
    """Coefficient sign and the factors of a product; ``True`` marks a divisor.

    A divisor is one factor however it is built: ``a / (b c)`` is ``a (b c)^-1``.
    """
    sign = 1.0
    factors: list[tuple[SExpr, bool]] = []
    stack: list[tuple[SExpr, bool]] = [(node, False)]
    while stack:
        n, inverse = stack.pop()
        if isinstance(n, SBinary) and n.op == "*" and not inverse:
            stack += [(n.right, False), (n.left, False)]
        elif isinstance(n, SBinary) and n.op == "/" and not inverse:
            stack += [(n.right, True), (n.left, False)]
        elif isinstance(n, SNeg):
            sign = -sign
            stack.append((n.operand, inverse))
        else:
            factors.append((n, inverse))
    return sign, factors


def _summed_by(node: SExpr, index: str) -> SSumOver | SReduce | None:
    """The first ``sum[...]`` (or reduction, ``max[...]``) in ``node``, in reading order,
    that sums ``index`` away, if any."""
    found = _first(node, lambda n: index in _binds(n))
    assert found is None or isinstance(found, (SSumOver, SReduce))  # the nodes that bind
    return found


def _first(node: SExpr, test: Callable[[SExpr], bool]) -> SExpr | None:
    """The first node of ``node``'s tree, in reading order, that passes ``test``."""
    stack = [node]
    while stack:  # iterative: the text may nest deeply
        n = stack.pop()
        if test(n):
            return n
        stack += reversed(_children(n))
    return None


def _binds(node: SExpr) -> tuple[str, ...]:
    """The indices a node sums or reduces away: ``sum[j]``'s, ``max[j]``'s; none for a
    function that keeps them (``softmax``, ``inv``) or any other node."""
    if isinstance(node, SSumOver) or (isinstance(node, SReduce) and node.fn not in KEEPING):
        return node.indices
    return ()


def _children(node: SExpr) -> tuple[SExpr, ...]:
    """The operands of a surface node, in reading order; every walk of the surface tree
    asks this, so a node kind it does not know stops the walk."""
    if isinstance(node, SBinary):
        return (node.left, node.right)
    if isinstance(node, SNeg):
        return (node.operand,)
    if isinstance(node, SPow):
        return (node.base, node.exponent)
    if isinstance(node, SCall):
        return (node.arg,)
    if isinstance(node, (SSumOver, SReduce)):
        return (node.body,)
    if isinstance(node, (SNumber, STensor, SDelta)):
        return ()
    unknown_kind(node)


class _Lowering:
    def __init__(self, declared: frozenset[str] = frozenset()) -> None:
        self._occurs: dict[int, frozenset[str]] = {}
        self.declared = declared  # index names an input declaration sizes

    def occurs(self, node: SExpr) -> frozenset[str]:
        """Indices written inside a node (those bound by an inner ``sum[]`` excluded).

        Iterative, and memoised per node: a long flat sum is a deep tree.
        """
        memo = self._occurs
        stack: list[tuple[SExpr, bool]] = [(node, False)]
        while stack:
            n, ready = stack.pop()
            if id(n) in memo:
                continue
            kids = _children(n)
            if not ready and any(id(k) not in memo for k in kids):
                stack.append((n, True))
                stack += [(k, False) for k in kids if id(k) not in memo]
                continue
            if isinstance(n, STensor):
                found = frozenset(n.names)
            elif isinstance(n, SDelta):
                found = frozenset(i for s in n.indices for i in sub_names(s))
            else:
                found = frozenset().union(*(memo[id(k)] for k in kids))
                found -= frozenset(_binds(n))
            memo[id(n)] = found
        return memo[id(node)]

    def sum(self, node: SExpr, held: frozenset[str]) -> Sum:
        terms = [self.product(n, held, s) for s, n in _flatten_sum(node)]
        return Sum(tuple(t for t in terms if t.coef != 0))

    def product(self, node: SExpr, held: frozenset[str], sign: float) -> Term:
        neg, parts = _flatten_product(node)
        coef = sign * neg
        seen: dict[str, int] = {}
        for n, _inverse in parts:
            for i in self.occurs(n):
                seen[i] = seen.get(i, 0) + 1
        contracted = frozenset(i for i, c in seen.items() if c >= 2 and i not in held)
        inner = held | contracted
        factors: list[Factor] = []
        for n, inverse in parts:
            if isinstance(n, SNumber):
                if inverse and n.value == 0:
                    raise ProgramError(f"division by the constant 0 at {n.pos}")
                coef *= 1.0 / n.value if inverse else n.value
                continue
            factor = self.factor(n, inner)
            factors.append(Power(as_sum(factor), const(-1.0)) if inverse else factor)
        return Term(coef, tuple(factors), contracted)

    def factor(self, node: SExpr, held: frozenset[str]) -> Factor:
        if isinstance(node, STensor):
            return access(node.name, node.indices or ())
        if isinstance(node, SDelta):
            if len(node.indices) != 2:
                raise ProgramError(
                    f"delta takes exactly two indices, got {len(node.indices)} at {node.pos}"
                )
            a, b = node.indices
            if isinstance(a, str) and isinstance(b, str):
                return Delta(a, b)
            if isinstance(a, str) and not isinstance(b, str):
                return Shift(a, b)
            if isinstance(b, str) and not isinstance(a, str):
                return Shift(b, a)
            raise ProgramError(f"delta at {node.pos} ties two expressions; one of its "
                               "subscripts must be an index name: delta[p, i+k]")
        if isinstance(node, SCall) and node.fn in REDUCTIONS:
            axes = "i,j" if node.fn in MATRIX else "j"
            raise ProgramError(
                f"{node.fn}() at {node.pos} needs the axes it runs along: write "
                f"{node.fn}[{axes}](...) (SPEC §7)")
        if isinstance(node, SCall):
            if node.fn not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise ProgramError(
                    f"unknown function {node.fn}() at {node.pos}; known functions: {known} "
                    f"(for a product write {node.fn} * (...))"
                )
            return Call(node.fn, self.sum(node.arg, held))
        if isinstance(node, SPow):
            base, exponent = self.sum(node.base, held), self.sum(node.exponent, held)
            e = const_value(exponent)
            if const_value(base) == 0 and e is not None and e < 0:
                raise ProgramError(f"0^({format_number(e)}) at {node.pos} divides by the "
                                   "constant 0")
            return Power(base, exponent)
        if isinstance(node, SSumOver):
            indices = node.indices
            body_indices = self.occurs(node.body)
            for k, i in enumerate(indices):
                if i in indices[:k]:
                    raise ProgramError(f"sum[] names index {i} twice at {node.pos}")
                if i not in body_indices and i not in self.declared:
                    raise ProgramError(f"sum[{i}] at {node.pos} sums over index {i}, "
                                       "which its body does not have (and no input "
                                       "declaration sizes)")
                if i in held:
                    raise ProgramError(
                        f"sum[{i}] at {node.pos} sums over index {i}, which is already "
                        "held outside (a left-hand index or summed by an enclosing product)"
                    )
            body = self.sum(node.body, held | frozenset(indices))
            return Sum((Term(1.0, (body,), frozenset(indices)),))
        if isinstance(node, SReduce):
            return self.reduce(node, held)
        if isinstance(node, (SBinary, SNeg)):  # a parenthesised sum or product as one factor
            return self.sum(node, held)
        unknown_kind(node)

    def reduce(self, node: SReduce, held: frozenset[str]) -> Reduce:
        """``max[j](e)``, ``inv[i,j](e)``, ...: the bracketed indices are held while ``e`` is
        lowered; a reducing function may not name an index held outside (a keeping one
        may: in ``x[i] = inv[i,j](A[i,j]) b[j]`` both are)."""
        fn, indices = node.fn, node.indices
        if fn in MATRIX and len(indices) != 2:
            raise ProgramError(f"{fn}[] at {node.pos} names {len(indices)} ind"
                               f"{'ex' if len(indices) == 1 else 'ices'}; a matrix function "
                               f"takes two, the rows and the columns: {fn}[i,j](...)")
        if not indices:
            raise ProgramError(f"{fn}[] at {node.pos} names no index to run along")
        body_indices = self.occurs(node.body)
        for k, i in enumerate(indices):
            if i in indices[:k]:
                raise ProgramError(f"{fn}[] names index {i} twice at {node.pos}"
                                   + ("; a matrix function takes two different indices of "
                                      "equal size" if fn in MATRIX else ""))
            if i not in body_indices:
                raise ProgramError(f"{fn}[{','.join(indices)}] at {node.pos} runs along index "
                                   f"{i}, which its argument does not have")
            if i in held and fn not in KEEPING:
                raise ProgramError(
                    f"{fn}[{i}] at {node.pos} reduces index {i}, which is already held "
                    "outside (a left-hand index or summed by an enclosing product)")
        return Reduce(fn, indices, self.sum(node.body, held | frozenset(indices)), fn in KEEPING)

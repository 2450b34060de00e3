"""The summation convention (docs/language.md) on one expression: which product sums which index,
and the expression lowered to IR factors with every static check of a factor.

1. an index not held from outside is summed over the outermost product in which it
   occurs in two or more factors (a division ``a / b`` is the factor ``b^-1``);
2. otherwise over the top-level term (operand of the outermost ``+``/``-``);
3. ``sum[j](e)`` holds ``j`` while ``e`` is lowered, then sums it.
"""

from __future__ import annotations

from ..errors import ProgramError
from ..ir import as_sum, children, const, const_value, freshen, map_factor_sums, nodes, sub_names
from ..ir.nodes import (
    COUNT_MARK,
    Call,
    Cond,
    Delta,
    Extent,
    Factor,
    Power,
    Reduce,
    Ref,
    Shift,
    Sum,
    Term,
    access,
    delta,
)
from ..ops.functions import FUNCTIONS, comparison_named
from ..ops.reductions import KEEPING, MATRIX, REDUCERS, REDUCTIONS
from ..render.printing import format_number
from .surface import (
    SBinary,
    SCall,
    SCompare,
    SCond,
    SDelta,
    SExpr,
    SNeg,
    SNumber,
    SPow,
    SReduce,
    SSumOver,
    STensor,
)
from .surface_walks import first, flatten_product, flatten_sum, operands
from .traps import Trap, term_traps


def summed_by(node: SExpr, index: str) -> SSumOver | SReduce | None:
    """The first ``sum[...]`` (or reduction, ``max[...]``) in ``node``, in reading order,
    that sums ``index`` away, if any."""
    found = first(node, lambda n: index in binds(n))
    assert found is None or isinstance(found, (SSumOver, SReduce))  # the nodes that bind
    return found


def binds(node: SExpr) -> tuple[str, ...]:
    """The indices a node sums or reduces away: ``sum[j]``'s, ``max[j]``'s; none for a
    function that keeps them (``softmax``, ``inv``) or any other node."""
    if isinstance(node, SSumOver) or (isinstance(node, SReduce) and node.fn not in KEEPING):
        return node.indices
    return ()


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
    extents = list(term.extents)  # a count's (size(i))
    for f in term.factors:
        if isinstance(f, Sum) and len(f.terms) == 1:
            inner = inline_single_terms(f.terms[0])
            coef *= inner.coef
            factors += inner.factors
            summed |= inner.summed
            extents += inner.extents
        elif isinstance(f, Sum) and not f.terms:
            return Term(0.0, (), frozenset())
        elif isinstance(f, (Call, Power, Sum)):
            factors.append(map_factor_sums(
                f, lambda s: Sum(tuple(inline_single_terms(t) for t in s.terms))))
        elif isinstance(f, (Ref, Delta, Shift, Cond, Reduce)):  # a reduction keeps its sums
            factors.append(f)
        else:
            nodes.unknown_kind(f)
    return Term(coef, tuple(factors), frozenset(summed), tuple(extents))


def size(node: SCall) -> Sum:
    """``size(i)``: how many values index ``i`` takes in the statement, a number (it is no
    use of ``i`` for the summation convention). Lowered as the count ``sum[i](1)``, whose
    extent the statement gives once it is complete (``declarations.with_counts``)."""
    arg = node.args[0] if len(node.args) == 1 else None
    if not (isinstance(arg, STensor) and arg.indices is None):
        raise ProgramError(f"size() at {node.pos} takes one index name: size(i)")
    i = arg.name
    return Sum((Term(1.0, (), frozenset({i}), (Extent(i, COUNT_MARK + i, 0),)),))


def written_delta(node: SDelta) -> Factor:
    """``delta[i,j]``, or a shifted delta ``delta[p, i+k]``."""
    if len(node.indices) != 2:
        raise ProgramError(
            f"delta takes exactly two indices, got {len(node.indices)} at {node.pos}")
    a, b = node.indices
    if isinstance(a, str) or isinstance(b, str):
        return delta(a, b)
    raise ProgramError(f"delta at {node.pos} ties two expressions; one of its "
                       "subscripts must be an index name: delta[p, i+k]")


def condition(node: SCond) -> Factor:
    """``[a op b]``: an index condition; ``[i == j]`` is ``delta[i,j]``."""
    if node.op == "==":
        if isinstance(node.a, str) or isinstance(node.b, str):
            return delta(node.a, node.b)
        raise ProgramError(f"{node.text} at {node.pos} ties two expressions; one side of == "
                           "must be an index name, as in a delta: [p == i+k]")
    return Cond(node.op, node.a, node.b)


class Lowering:
    def __init__(self, declared: frozenset[str] = frozenset(), statement: str = "") -> None:
        self._occurs: dict[int, frozenset[str]] = {}
        self.declared = declared  # index names an input declaration sizes
        self.statement = statement  # the name of the statement lowered, for its traps
        self.traps: list[Trap] = []  # what the convention reads otherwise than meant

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
            kids = operands(n)
            if not ready and any(id(k) not in memo for k in kids):
                stack.append((n, True))
                stack += [(k, False) for k in kids if id(k) not in memo]
                continue
            if isinstance(n, STensor):
                found = frozenset(n.names)
            elif isinstance(n, SDelta):
                found = frozenset(i for s in n.indices for i in sub_names(s))
            elif isinstance(n, SCond):
                found = frozenset(sub_names(n.a) + sub_names(n.b))
            else:
                found = frozenset().union(*(memo[id(k)] for k in kids))
                if isinstance(n, SReduce):  # softmax[j | j <= i]: i occurs in it too
                    found |= {i for c in n.mask for i in sub_names(c.a) + sub_names(c.b)}
                found -= frozenset(binds(n))
            memo[id(n)] = found
        return memo[id(node)]

    def term(self, node: SExpr, held: frozenset[str], sign: float) -> Term:
        """A top-level term: the indices no product inside summed and ``held`` does not
        hold are summed over the whole term (rule 2)."""
        term = self.product(node, held, sign)
        _settle(term)
        rule2 = frozenset(term.free) - held
        self.traps += [Trap(self.statement, node.pos, i, note)
                       for i, note in term_traps(term, rule2)]
        term = freshen(Term(term.coef, term.factors, term.summed | rule2))
        return inline_single_terms(term)

    def sum(self, node: SExpr, held: frozenset[str]) -> Sum:
        terms = [self.product(n, held, s) for s, n in flatten_sum(node)]
        return Sum(tuple(t for t in terms if t.coef != 0))

    def product(self, node: SExpr, held: frozenset[str], sign: float) -> Term:
        neg, parts = flatten_product(node)
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
            return written_delta(node)
        if isinstance(node, SCond):
            return condition(node)
        if isinstance(node, SCall) and node.fn == "size":
            return size(node)
        if isinstance(node, SCall):
            return self.call(node, held)
        if isinstance(node, SCompare):
            raise ProgramError(
                f"the comparison {node.op} at {node.pos} is not the condition of a where: a "
                "comparison is written only as the first argument of where(cond, a, b), "
                "as in where(x[i] > 0, x[i], 0); an index condition is written [j <= i]")
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
        nodes.unknown_kind(node)

    def call(self, node: SCall, held: frozenset[str]) -> Call:
        """``f(a, ...)``: each argument a sum of its own (no product with the others); the
        first one a comparison where the function takes a condition (``where``)."""
        fn, pos = node.fn, node.pos
        if fn in REDUCTIONS:
            axes = "i,j" if fn in MATRIX else "j"
            two = f"; for the elementwise {'larger' if fn == 'max' else 'smaller'} of two " \
                f"values write {fn}imum(a, b)" if fn in ("max", "min") else ""
            raise ProgramError(f"{fn}() at {pos} needs the axes it runs along: write "
                               f"{fn}[{axes}](...){two}")
        entry = FUNCTIONS.get(fn)
        if entry is None:
            known = sorted(n for n, f in FUNCTIONS.items() if f.operator is None) + [
                f"{family.prefix}N (N from {family.orders[0]} to {family.orders[-1]})"
                for family in FUNCTIONS.families]
            raise ProgramError(
                f"unknown function {fn}() at {pos}; known functions: "
                f"{', '.join(known)} (for a product write {fn} * (...))")
        if entry.operator is not None:
            raise ProgramError(f"{fn}() at {pos} is the comparison {entry.usage}: write it so, "
                               f"as the condition of where(a {entry.operator} b, 1, 0)")
        if len(node.args) != entry.arity:
            raise ProgramError(f"{fn}() at {pos} takes {entry.arity} argument"
                               f"{'s' if entry.arity > 1 else ''}, {entry.usage}; "
                               f"got {len(node.args)}")
        args = [self.sum(a, held) for a in node.args[1:]]
        first = node.args[0]
        if not entry.condition:
            return Call(fn, (self.sum(first, held), *args))
        if not isinstance(first, SCompare):
            raise ProgramError(f"the condition of {fn}() at {pos} is not a comparison: write "
                               f"{entry.usage} with a comparison as cond, x[i] > 0 or "
                               "a[i] <= b[i] (x[i] != 0 for any nonzero value)")
        compared = comparison_named(first.op)
        if compared is None:  # taken out of the registry
            raise ProgramError(f"no comparison {first.op} is registered ({first.pos})")
        test = Call(compared, (self.sum(first.left, held), self.sum(first.right, held)))
        return Call(fn, (as_sum(test), *args))

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
        mask = tuple(condition(c) for c in node.mask)
        if mask and REDUCERS[fn].masked is None:
            raise ProgramError(f"{fn}[{','.join(indices)} | ...] at {node.pos}: {fn} takes no "
                               "condition (a masked entry has no meaning in a matrix function)")
        for c, written in zip(mask, node.mask):
            if not isinstance(c, Cond):
                raise ProgramError(f"the condition {written.text} at {written.pos} keeps one "
                                   "entry; a mask takes !=, <, <=, > or >=")
        return Reduce(fn, indices, self.sum(node.body, held | frozenset(indices)), fn in KEEPING,
                      mask)  # type: ignore[arg-type]

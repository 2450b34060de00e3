"""Sub-expressions a derivative would compute again, computed once.

The chain rule copies pieces of the forward expressions into the derivative: LayerNorm's
gradient holds ``(x[b,k] - mu[b])`` and ``sqrt(1e-05 + v[b])`` in three statements, and
the forward statement ``v`` holds the first again; a Gaussian process's gradient
recomputes the whole kernel ``exp(-sum[n](...))`` that the forward statement ``K`` holds
beside ``0.1 delta``. ``reuse.reuse_forward`` finds a statement's whole right-hand side
only. Here any such piece found in two places or more, one of them in the derivative,
under any names of its indices, becomes a statement of its own, placed before its first
use (in the forward part when the forward pass uses it: ``K_exp[i,j] = exp(...)``,
``K[i,j] = K_exp[i,j] + 0.1 delta[i,j]``), and is read by name everywhere.

What counts as a piece: a function call, a power, a reduction that is not a matrix
function (``reuse.hoist_repeated`` decides those: an inverse only contracted runs as a
solve), or a parenthesised sum; over at least one index; each index it mentions read by
a plain tensor inside it, so that it is sized on its own; not an elementwise function of
one tensor as it is (``x[p]^2``, ``tanh(H[k,q])``: computed again in one pass, the
same pass a read of it costs), nor a tensor plus constants (``v[b] + 1e-05``).
Statements with index arithmetic are left as they are: their ranges belong to them as
written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..ir import (
    all_factors,
    arithmetic,
    children,
    index_order,
    map_factor_sums,
    map_factors,
    mentioned,
    needed_statements,
    reads,
    refs,
)
from ..ir.nodes import Call, Extent, Factor, Power, Reduce, Ref, Statement, Sum, Term
from ..ops.functions import FUNCTIONS
from ..ops.reductions import REDUCERS
from .canonical import canonical_term
from .reuse import as_rhs, skeleton

# At most this many pieces are named per derivative: each costs a pass over every
# statement, and a derivative with more is rare.
MOST = 24


def share_subexpressions(forward: list[Statement], derived: list[Statement], result: str,
                         tensor_name: Callable[[str], str]
                         ) -> tuple[list[Statement], list[Statement]]:
    """``forward`` and ``derived`` with every piece found twice or more, once at least in
    ``derived``, computed by a statement of its own. Only the forward statements that
    ``result`` needs count (the loss itself is not computed for its gradient).
    ``tensor_name(base)`` gives a fresh statement name."""
    needed = {st.name for st in needed_statements(forward + derived, result)}
    unused = [st for st in forward if st.name not in needed]
    statements = [st for st in forward if st.name in needed] + derived
    split = len(statements) - len(derived)
    for _ in range(MOST):
        found = _repeated(statements, split)
        if found is None:
            break
        key, places = found
        at, first = places[0]
        free = tuple(i for i in dict.fromkeys(index_order(first)) if i in first.free)
        value = first if isinstance(first, Sum) else as_rhs(first)
        made = Statement(tensor_name(_base(first)), free, value)
        pattern = skeleton(_canonical(first))[1]
        statements = [_replaced(st, key, made, pattern) for st in statements]
        statements.insert(at, made)  # before its first use, in the forward part if that is
        split += at < split
    return unused + statements[:split], statements[split:]


def _repeated(statements: list[Statement], split: int
              ) -> tuple[str, list[tuple[int, Factor]]] | None:
    """The largest piece found twice or more, once at least at or after ``split``: its
    key and its places (statement position, the piece as found there), first first."""
    candidates = [(at, f) for at, st in enumerate(statements) if _open(st)
                  for f in _pieces(st.rhs)]
    rough: dict[tuple[str, tuple[str, ...]], int] = {}
    for _, f in candidates:
        rough[reads(f)] = rough.get(reads(f), 0) + 1
    places: dict[str, list[tuple[int, Factor]]] = {}
    for at, f in candidates:
        if rough[reads(f)] >= 2:
            places.setdefault(skeleton(_canonical(f))[0], []).append((at, f))
    best = [(len(key), key) for key, found in places.items()
            if len(found) >= 2 and any(at >= split for at, _ in found)]
    if not best:
        return None
    key = max(best)[1]
    return key, places[key]


def _open(st: Statement) -> bool:
    """May pieces of the statement be named (no index arithmetic, no extents)?"""
    return not st.extents and not arithmetic(st.rhs) \
        and not any(t.extents for t in st.rhs.terms)


def _pieces(expr: Sum) -> Iterator[Factor]:
    """The factors inside ``expr``, at every depth, that may be named, and the sums of
    two terms or more inside functions and powers (``(x[b,d] - mu[b])^2``'s base)."""
    for f in all_factors(expr):
        if _piece(f):
            yield f
        if isinstance(f, (Call, Power, Reduce)):
            yield from (s for s in children(f) if _piece(s))


def _piece(f: Factor) -> bool:
    if isinstance(f, Call):
        if FUNCTIONS[f.fn].operator is not None:  # a comparison: a constant
            return False
    elif isinstance(f, Reduce):
        if REDUCERS[f.fn].matrix:
            return False
    elif isinstance(f, Sum):
        if len(f.terms) < 2:
            return False
    elif not isinstance(f, Power):
        return False
    inside = children(f)
    if not isinstance(f, Reduce) and all(_cheap(s) for s in inside):
        return False
    uses = mentioned(f)
    plain = {i for s in inside for r in refs(s) if r.subs is None for i in r.indices}
    return bool(uses) and uses <= plain


def _cheap(s: Sum) -> bool:
    """One tensor as it is, up to a factor and constants added (``x[p]``, ``v[b] + 1e-05``,
    ``1 - H[k,q]``): a function or power of it costs one pass, as reading it would."""
    tensors = [t for t in s.terms if t.factors]
    if len(tensors) > 1:
        return False
    return not tensors or (not tensors[0].summed and len(tensors[0].factors) == 1
                           and isinstance(tensors[0].factors[0], Ref))


def _canonical(f: Factor) -> Factor:
    return canonical_term(Term(1.0, (f,))).factors[0]


def _base(f: Factor) -> str:
    """A readable stem for the statement's name: the tensors it reads, then what it is."""
    names = list(dict.fromkeys(r.name for s in children(f) for r in refs(s)))
    stem = "_".join(names[:2]) or "shared"
    if isinstance(f, (Call, Reduce)):
        return f"{stem}_{f.fn}"
    return f"{stem}_pow" if isinstance(f, Power) else stem


def _replaced(st: Statement, key: str, made: Statement, pattern: tuple[str, ...]) -> Statement:
    """``st`` with every piece of ``key`` read from ``made`` (a piece's indices line up
    with ``pattern``, the order of first use in the named one). A count (``size(q)``)
    sized by an axis that only a replaced piece read is then sized by ``made``'s axis."""
    if not _open(st):
        return st
    axes: dict[tuple[str, int], int] = {}  # (tensor, axis) read in a piece: made's axis

    def match(f: Factor) -> Ref | None:
        if not _piece(f):
            return None
        own_key, order = skeleton(_canonical(f))
        if own_key != key:
            return None
        mapping = dict(zip(pattern, order))
        ref = Ref(made.name, tuple(mapping[i] for i in made.indices))
        for r in (r for s in children(f) for r in refs(s) if r.subs is None):
            for axis, i in enumerate(r.indices):
                if i in ref.indices:
                    axes.setdefault((r.name, axis), ref.indices.index(i))
        return ref

    def in_factor(f: Factor) -> Factor:
        return match(f) or map_factor_sums(f, in_child)

    def in_child(s: Sum) -> Sum:
        ref = match(s)
        return as_rhs(ref) if ref is not None else in_sum(s)

    def in_sum(s: Sum) -> Sum:
        return map_factors(s, in_factor)

    rhs = in_sum(st.rhs)
    if rhs is st.rhs:
        return st
    still = {(r.name, axis) for r in refs(rhs) if r.subs is None for axis in range(len(r.indices))}
    moved = {k: v for k, v in axes.items() if k not in still}
    if moved:
        rhs = _resized(rhs, moved, made.name)
    return Statement(st.name, st.indices, rhs, st.extents, st.aliases)


def _resized(expr: Sum, moved: dict[tuple[str, int], int], name: str) -> Sum:
    """``expr`` with each extent on an axis of ``moved`` moved to ``name``'s axis."""
    def extent(e: Extent) -> Extent:
        axis = moved.get((e.tensor, e.axis))
        return e if axis is None else Extent(e.name, name, axis, e.given)

    return Sum(tuple(Term(t.coef, tuple(map_factor_sums(f, lambda s: _resized(s, moved, name))
                                        for f in t.factors),
                          t.summed, tuple(extent(e) for e in t.extents)) for t in expr.terms))

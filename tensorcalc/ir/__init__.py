"""The checked program representation: immutable sums of product terms.

A right-hand side is a ``Sum`` of ``Term``s. A term is a coefficient times a
product of factors and names the indices it contracts (``summed``). A factor is
a tensor reference, a Kronecker delta, an elementwise function of a sum, a power
of two sums, or a parenthesised sum. Constants live in coefficients.

Indices bound by a term (its ``summed``) are local to it. Within one top-level
term of a statement a bound index name is used only inside the term that binds
it, so renaming it there never captures anything; ``lower.py`` and every pass
keep it so (``freshen`` re-establishes it after terms are merged).

>>> from tensorcalc.ir import Ref, Term, Sum
>>> t = Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))), frozenset({"j"}))
>>> t.free
('i',)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, NoReturn, Union

from ..caching import cached_property, memo


def unknown_kind(node: object) -> NoReturn:
    """Where a walk meets a node kind it does not know: tensorcalc's own error, loudly
    (a walk that skipped it would give a wrong derivative or number silently)."""
    raise TypeError(f"internal error: no case for the IR node kind {type(node).__name__}")


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Affine:
    """An index expression ``c1*i1 + c2*i2 + ... + offset`` with integer coefficients
    (SPEC §8): ``i+k``, ``2*i+k``, ``p-i``, ``i+1``. ``parts`` holds (index, coefficient)
    pairs in order of writing, each index once, no coefficient zero."""

    parts: tuple[tuple[str, int], ...]
    offset: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.parts)

    def coefficient(self, name: str) -> int:
        return dict(self.parts).get(name, 0)


@dataclass(frozen=True)
class Gather:
    """An integer tensor used as a subscript: ``t[n]`` in ``E[t[n], j]`` (SPEC §8)."""

    name: str
    indices: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return _unique(self.indices)


Arithmetic = Union[Affine, Gather]  # noqa: UP007
Subscript = Union[str, Affine, Gather]  # noqa: UP007


def affine(parts: Iterable[tuple[str, int]], offset: int = 0) -> Subscript:
    """An affine subscript with equal indices merged and zero coefficients dropped; a plain
    index name where it is one (``1*i + 0``)."""
    merged: dict[str, int] = {}
    for n, c in parts:
        merged[n] = merged.get(n, 0) + c
    kept = tuple((n, c) for n, c in merged.items() if c != 0)
    if offset == 0 and len(kept) == 1 and kept[0][1] == 1:
        return kept[0][0]
    return Affine(kept, offset)


def subscript_text(s: Subscript) -> str:
    """A subscript as the language writes it: ``i``, ``i+k``, ``2*i-1``, ``t[n]``."""
    if isinstance(s, str):
        return s
    if isinstance(s, Gather):
        return f"{s.name}[{','.join(s.indices)}]"
    out = ""
    for n, c in s.parts:
        sign = "-" if c < 0 else ("+" if out else "")
        out += sign + (n if abs(c) == 1 else f"{abs(c)}*{n}")
    if s.offset or not out:
        out += f"{'-' if s.offset < 0 else ('+' if out else '')}{abs(s.offset)}"
    return out


def sub_names(sub: Subscript) -> tuple[str, ...]:
    return (sub,) if isinstance(sub, str) else sub.names


@dataclass(frozen=True)
class Ref:
    """A tensor: an input or an earlier statement. Repeated indices take a diagonal.

    ``subs``, when given, holds one subscript per axis, some of them index arithmetic
    (``x[i+k]``, ``E[t[n], j]``); ``indices`` are then the index names the subscripts
    use, each once, in order: the axes of the value the reference reads."""

    name: str
    indices: tuple[str, ...]
    subs: tuple[Subscript, ...] | None = None

    @cached_property
    def free(self) -> tuple[str, ...]:
        return _unique(self.indices)

    def __repr__(self) -> str:
        subs = "" if self.subs is None else f", subs={self.subs!r}"
        return f"Ref(name={self.name!r}, indices={self.indices!r}{subs})"

    @property
    def rank(self) -> int:
        return len(self.subs) if self.subs is not None else len(self.indices)

    @property
    def axes(self) -> tuple[Subscript, ...]:
        """The subscript of each axis of the tensor."""
        return self.subs if self.subs is not None else self.indices

    def plain_axes(self) -> Iterable[tuple[int, str]]:
        """(axis, index) for each axis read with a plain index."""
        if self.subs is None:
            return enumerate(self.indices)
        return ((axis, s) for axis, s in enumerate(self.subs) if isinstance(s, str))


def access(name: str, subs: Iterable[Subscript]) -> Ref:
    """``name[subs]`` as a ``Ref``: plain where every subscript is an index name."""
    subs = tuple(subs)
    if all(isinstance(s, str) for s in subs):
        return Ref(name, subs)  # type: ignore[arg-type]
    return Ref(name, _unique(n for s in subs for n in sub_names(s)), subs)


@dataclass(frozen=True)
class Shift:
    """The shifted delta ``delta[i, sub]`` (MATH §7): 1 where index ``i`` equals the
    value of the subscript ``sub`` (``i+k``, or ``t[n]``), else 0. What an access
    ``x[i+k]`` differentiates to."""

    i: str
    sub: Arithmetic

    @cached_property
    def free(self) -> tuple[str, ...]:
        return _unique((self.i,) + self.sub.names)


@dataclass(frozen=True)
class Delta:
    """The Kronecker delta: 1 where ``i`` and ``j`` are equal."""

    i: str
    j: str

    @cached_property
    def free(self) -> tuple[str, ...]:
        return _unique((self.i, self.j))


@dataclass(frozen=True)
class Call:
    """An elementwise function of a sum."""

    fn: str
    arg: Sum

    @cached_property
    def free(self) -> tuple[str, ...]:
        return self.arg.free


@dataclass(frozen=True)
class Power:
    """``base ** exponent``, elementwise over the indices of both."""

    base: Sum
    exponent: Sum

    @cached_property
    def free(self) -> tuple[str, ...]:
        return _unique(self.base.free + self.exponent.free)


@dataclass(frozen=True)
class Reduce:
    """``fn[indices](arg)``: a function along the axes ``indices`` of ``arg`` (SPEC §7).

    The argument's other free indices are a batch, carried through. A reducing function
    (``max``, ``logdet``, ...) binds its ``indices``: they are local to it, like the summed
    indices of a term. A keeping one (``softmax``, ``inv``) leaves them free: its value has
    the batch axes, then ``indices``. ``keeps`` says which (the operation's registry entry
    gives it when the node is made).
    """

    fn: str
    indices: tuple[str, ...]
    arg: Sum
    keeps: bool = False

    @property
    def bound(self) -> tuple[str, ...]:
        """The index names local to this factor (none for a function that keeps them)."""
        return () if self.keeps else self.indices

    @cached_property
    def batch(self) -> tuple[str, ...]:
        return tuple(i for i in self.arg.free if i not in self.indices)

    @cached_property
    def free(self) -> tuple[str, ...]:
        return self.batch + self.indices if self.keeps else self.batch


Factor = Union[Ref, Delta, Shift, Call, Power, Reduce, "Sum"]


class Extent(NamedTuple):
    """Where the index ``name`` takes its size when no tensor around it carries it: the length of
    axis ``axis`` of the tensor ``tensor`` (after a derivative drops the only factor that
    carried a summed index, ``sum[k](1)`` is the length of k). It is data beside the
    factors: it is never multiplied, and it is renamed with the index."""

    name: str
    tensor: str
    axis: int
    # A given size (SPEC §8): no read shrinks the index, and reads past an array's end are
    # zero. Declared or derived where index arithmetic needs it (``x_bar[p] = y_bar[p-k]
    # w[k]``: p and k); kept although a tensor carries the index.
    given: bool = False


@dataclass(frozen=True)
class Term:
    """``coef * factor * factor * ...`` with the indices in ``summed`` contracted.

    ``extents`` size indices of the term that no factor carries (see ``Extent``).
    """

    coef: float
    factors: tuple[Factor, ...]
    summed: frozenset[str] = field(default=frozenset())
    extents: tuple[Extent, ...] = ()

    def __post_init__(self) -> None:
        # An extent is about an index of this term. One whose index has gone (eaten by a
        # delta, dropped with its factor) is dropped too: a later renaming could otherwise
        # give its name to another index, with another size.
        if self.extents:
            kept = tuple(dict.fromkeys(e for e in self.extents if e.name in self.mentioned))
            if kept != self.extents:
                object.__setattr__(self, "extents", kept)

    @cached_property
    def free(self) -> tuple[str, ...]:
        every = _unique(i for f in self.factors for i in f.free)
        return tuple(i for i in every if i not in self.summed)

    @cached_property
    def mentioned(self) -> frozenset[str]:
        """Every index name used anywhere inside, bound or free."""
        return frozenset(self.free) | self.summed | frozenset(
            n for f in self.factors for n in mentioned(f)
        )


@dataclass(frozen=True)
class Sum:
    """A sum of terms; each term broadcasts over the indices it lacks."""

    terms: tuple[Term, ...]

    @cached_property
    def free(self) -> tuple[str, ...]:
        return _unique(i for t in self.terms for i in t.free)


@dataclass(frozen=True)
class Statement:
    """``name[indices] = rhs``.

    ``extents`` size left-hand indices that nothing on the right carries (a derivative
    ``d[p] = 1`` has the length of the input it is taken by). ``aliases`` holds
    ``(name, written)`` for an index lowering renamed in one term so that the term keeps
    its own range (``L = x[i+1] + y[i]`` sums ``i1`` in the second term): a size given by
    the written name reaches it too.
    """

    name: str
    indices: tuple[str, ...]
    rhs: Sum
    extents: tuple[Extent, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()


# --- small constructors -------------------------------------------------------


def const(value: float) -> Sum:
    """The constant ``value`` as a sum (no terms for zero)."""
    return Sum((Term(float(value), ()),)) if value != 0 else Sum(())


ZERO = Sum(())


def as_sum(factor: Factor) -> Sum:
    if isinstance(factor, Sum):
        return factor
    return Sum((Term(1.0, (factor,)),))


def const_value(expr: Sum) -> float | None:
    """The value of a sum that is a number, else None."""
    if not expr.terms:
        return 0.0
    if all(not t.factors for t in expr.terms):
        return float(sum(t.coef for t in expr.terms))
    return None


def power(base: Sum, exponent: float | Sum) -> Power:
    return Power(base, const(exponent) if not isinstance(exponent, Sum) else exponent)


# --- traversal ----------------------------------------------------------------


def children(factor: Factor) -> tuple[Sum, ...]:
    if isinstance(factor, (Call, Reduce)):
        return (factor.arg,)
    if isinstance(factor, Power):
        return (factor.base, factor.exponent)
    if isinstance(factor, Sum):
        return (factor,)
    return ()


def mentioned(factor: Factor) -> frozenset[str]:
    """Every index name used inside a factor, bound or free (kept on the factor)."""
    if isinstance(factor, (Ref, Delta, Shift)):
        return frozenset(factor.free)
    def make() -> frozenset[str]:
        names: set[str] = set(factor.indices) if isinstance(factor, Reduce) else set()
        for s in children(factor):
            for t in s.terms:
                names |= t.mentioned
        return frozenset(names)

    return memo(factor, "_mentioned", make)


def collapses(term: Term, names: Iterable[str]) -> bool:
    """Would making ``names`` one index rename two axes of an ``inv`` or ``softmax``
    inside ``term`` alike? Their value on a diagonal is not the function of the diagonal
    (``inv[i,i](M[i,i])`` is not the diagonal of ``inv[i,j](M[i,j])``), so such a delta
    must not be substituted into them."""
    wanted = set(names)
    stack = list(term.factors)
    while stack:
        f = stack.pop()
        if isinstance(f, Reduce) and f.keeps and len(wanted & set(f.free)) > 1:
            return True
        stack += [g for s in children(f) for t in s.terms for g in t.factors]
    return False


def only_contracted(f: Factor, term: Term) -> bool:
    """Is ``f`` an inverse that ``term`` contracts over its row or its column index with
    another factor (``inv[i,j](A[i,j]) b[j]``)? Such an inverse runs as a linear solve."""
    if not isinstance(f, Reduce) or f.fn != "inv":
        return False
    others = [g for g in term.factors if g is not f]
    return any(i in term.summed and any(i in g.free for g in others) for i in f.indices)


def sizes_carried(f: Factor) -> frozenset[str]:
    """The free indices of a factor whose sizes a tensor inside it gives (a delta gives none)."""
    if isinstance(f, Ref):
        return frozenset(f.indices if f.subs is None else (i for _, i in f.plain_axes()))
    if isinstance(f, (Delta, Shift)):
        return frozenset()
    inside = {i for s in children(f) for r in refs(s) for _, i in r.plain_axes()}
    return frozenset(f.free) & inside


def extents_from(indices: Iterable[str], factor: Factor) -> tuple[Extent, ...]:
    """The lengths of ``indices`` as the tensors inside ``factor`` give them."""
    found: dict[str, Extent] = {}
    wanted = set(indices)
    for r in refs(as_sum(factor)):
        for axis, i in r.plain_axes():
            if i in wanted and i not in found:
                found[i] = Extent(i, r.name, axis)
    return tuple(found.values())


def needed_extents(term: Term) -> tuple[Extent, ...]:
    """The term's extents that still matter: one per index of the term that none of its
    factors carries."""
    carried = {i for f in term.factors for i in sizes_carried(f)}
    kept: dict[str, Extent] = {}
    for e in sorted(term.extents, key=lambda e: not e.given):  # a given one first
        if e.name in term.mentioned and (e.name not in carried or e.given):
            kept.setdefault(e.name, e)
    return tuple(kept.values())


def statement_refs(st: Statement) -> Iterator[Ref]:
    """Every tensor reference on the right-hand side."""
    yield from refs(st.rhs)


def term_extents(expr: Sum) -> Iterator[Extent]:
    """The extents of every term inside, depth first."""
    for t in expr.terms:
        yield from t.extents
        for f in t.factors:
            for s in children(f):
                yield from term_extents(s)


def statement_extents(st: Statement) -> Iterator[Extent]:
    """Every extent of a statement: of its left-hand indices and of its terms."""
    yield from st.extents
    yield from term_extents(st.rhs)


def dependencies(st: Statement) -> set[str]:
    """The names a statement needs: tensors it reads and tensors whose lengths it uses."""
    return {r.name for r in refs(st.rhs)} | {e.tensor for e in statement_extents(st)} | \
        ({g.name for g in index_tensors(st.rhs)} if arithmetic(st.rhs) else set())


def needed_statements(statements: Iterable[Statement], result: str) -> tuple[Statement, ...]:
    """The statements ``result`` depends on (for values or sizes), in program order."""
    statements = tuple(statements)
    want = {result}
    for st in reversed(statements):
        if st.name in want:
            want |= dependencies(st)
    return tuple(st for st in statements if st.name in want)


def all_deltas(expr: Sum) -> Iterator[Delta]:
    """Every delta inside, depth first."""
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Delta):
                yield f
            else:
                for s in children(f):
                    yield from all_deltas(s)


def reductions(expr: Sum) -> Iterator[tuple[Reduce, Term]]:
    """Every function of whole axes inside, outermost first, with the term it is a
    factor of."""
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Reduce):
                yield f, t
            for s in children(f):
                yield from reductions(s)


def reads(f: Factor) -> tuple[str, tuple[str, ...]]:
    """The kind of factor (a function's name) and the tensors it reads, sorted: equal for
    factors equal up to the names of their indices, and cheap, so that canonical keys are
    computed only where these repeat."""
    kind = f.fn if isinstance(f, (Call, Reduce)) else type(f).__name__
    if isinstance(f, Ref):
        return kind, (f.name,)
    # kept on the factor: planning and reuse ask again and again
    return memo(f, "_reads", lambda: (kind, tuple(sorted(r.name for s in children(f)
                                                         for r in refs(s)))))


def refs(expr: Sum) -> Iterator[Ref]:
    """Every tensor reference inside, depth first."""
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Ref):
                yield f
            else:
                for s in children(f):
                    yield from refs(s)


def index_order(f: Factor) -> list[str]:
    """Every index name inside a factor, in order of use (repeats kept)."""
    if isinstance(f, Ref):
        return list(f.indices) if f.subs is None else [n for s in f.subs for n in sub_names(s)]
    if isinstance(f, Delta):
        return [f.i, f.j]
    if isinstance(f, Shift):
        return [f.i, *f.sub.names]
    out: list[str] = []
    for s in children(f):
        for t in s.terms:
            inner = [n for g in t.factors for n in index_order(g)]
            out += sorted(t.summed - set(t.free) - set(inner))  # summed, in no factor
            out += inner
    return out


def map_factor_sums(factor: Factor, fn: Callable[[Sum], Sum]) -> Factor:
    """Apply ``fn`` to the sums directly inside a factor; the factor itself where ``fn``
    gives every sum back as it was (it keeps what is cached on it)."""
    if isinstance(factor, (Call, Reduce)):
        arg = fn(factor.arg)
        if arg is factor.arg:
            return factor
        if isinstance(factor, Call):
            return Call(factor.fn, arg)
        return Reduce(factor.fn, factor.indices, arg, factor.keeps)
    if isinstance(factor, Power):
        base, exponent = fn(factor.base), fn(factor.exponent)
        if base is factor.base and exponent is factor.exponent:
            return factor
        return Power(base, exponent)
    if isinstance(factor, Sum):
        return fn(factor)
    return factor


def same_terms(expr: Sum, terms: Iterable[Term]) -> Sum:
    """A sum of ``terms``: ``expr`` itself where they are its own terms, the same objects."""
    terms = tuple(terms)
    if len(terms) == len(expr.terms) and all(a is b for a, b in zip(terms, expr.terms)):
        return expr
    return Sum(terms)


def same_factors(term: Term, factors: Iterable[Factor]) -> Term:
    """``term`` with ``factors``: ``term`` itself where they are its own, the same objects."""
    factors = tuple(factors)
    if len(factors) == len(term.factors) and all(a is b for a, b in zip(factors, term.factors)):
        return term
    return Term(term.coef, factors, term.summed, term.extents)


# --- renaming -----------------------------------------------------------------


def rename_factor(factor: Factor, mapping: dict[str, str]) -> Factor:
    """Rename free and bound indices alike (the caller guarantees no capture)."""
    if mapping.keys().isdisjoint(mentioned(factor)):
        return factor
    if isinstance(factor, Ref):
        if factor.subs is not None:
            return access(factor.name, (rename_subscript(s, mapping) for s in factor.subs))
        return Ref(factor.name, tuple(mapping.get(i, i) for i in factor.indices))
    if isinstance(factor, Shift):
        sub = rename_subscript(factor.sub, mapping)
        i = mapping.get(factor.i, factor.i)
        return Delta(i, sub) if isinstance(sub, str) else Shift(i, sub)
    if isinstance(factor, Delta):
        return Delta(mapping.get(factor.i, factor.i), mapping.get(factor.j, factor.j))
    if isinstance(factor, Reduce):
        return Reduce(factor.fn, tuple(mapping.get(i, i) for i in factor.indices),
                      rename_sum(factor.arg, mapping), factor.keeps)
    return map_factor_sums(factor, lambda s: rename_sum(s, mapping))


def rename_subscript(sub: Subscript, mapping: dict[str, str]) -> Subscript:
    if isinstance(sub, str):
        return mapping.get(sub, sub)
    if isinstance(sub, Gather):
        return Gather(sub.name, tuple(mapping.get(i, i) for i in sub.indices))
    return affine(((mapping.get(n, n), c) for n, c in sub.parts), sub.offset)


def rename_term(term: Term, mapping: dict[str, str]) -> Term:
    """``term`` with its indices renamed; the same object where none of them is renamed
    (its cached keys and simplified forms stay with it)."""
    if not mapping or mapping.keys().isdisjoint(term.mentioned):
        return term
    return Term(
        term.coef,
        tuple(rename_factor(f, mapping) for f in term.factors),
        frozenset(mapping.get(i, i) for i in term.summed),
        rename_extents(term.extents, mapping),
    )


def rename_extents(extents: tuple[Extent, ...], mapping: dict[str, str]) -> tuple[Extent, ...]:
    return tuple(e._replace(name=mapping.get(e.name, e.name)) for e in extents)


def rename_sum(expr: Sum, mapping: dict[str, str]) -> Sum:
    if not mapping:
        return expr
    return same_terms(expr, (rename_term(t, mapping) for t in expr.terms))


def fresh_name(base: str, taken: set[str] | frozenset[str]) -> str:
    """``base`` itself if free, else ``base`` followed by the smallest number not taken."""
    if base not in taken:
        return base
    stem = base.rstrip("0123456789") or base
    n = 1
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


def freshen(term: Term, used: set[str] | None = None) -> Term:
    """Rename bound indices (at every depth) that clash with a name used around them.

    Walks top down; ``used`` holds the names already visible or bound and grows as
    the walk goes. Afterwards every bound name in the term is unique and differs
    from every free name, so substitution inside it can never capture.
    """
    used = set() if used is None else used
    mapping: dict[str, str] = {}
    for i in sorted(term.summed):
        if i in used:
            mapping[i] = fresh_name(i, used | term.mentioned | set(mapping.values()))
    term = rename_term(term, mapping)
    used |= set(term.free) | term.summed

    def inner(s: Sum) -> Sum:
        return same_terms(s, (freshen(t, used) for t in s.terms))

    def factor(f: Factor) -> Factor:
        if isinstance(f, Reduce) and f.bound:  # its own bound names, like a term's summed
            clash = {i: "" for i in f.bound if i in used}
            for i in clash:
                clash[i] = fresh_name(i, used | term.mentioned | set(clash.values()))
            renamed = rename_factor(f, clash) if clash else f
            assert isinstance(renamed, Reduce)
            used.update(renamed.bound)
            f = renamed
        return map_factor_sums(f, inner)

    return same_factors(term, (factor(f) for f in term.factors))


# --- index arithmetic ---------------------------------------------------------------


class _Stuck(Exception):
    """An index cannot be replaced by an expression here (see ``substitute``)."""


def _put(sub: Subscript, name: str, expr: Subscript) -> Subscript:
    """``sub`` with index ``name`` replaced by the subscript ``expr``."""
    if isinstance(sub, str):
        return expr if sub == name else sub
    if name not in sub.names:
        return sub
    if isinstance(sub, Gather) or isinstance(expr, Gather):
        if isinstance(sub, Gather) and isinstance(expr, str):
            return Gather(sub.name, tuple(expr if i == name else i for i in sub.indices))
        raise _Stuck
    c = sub.coefficient(name)
    rest = [(n, k) for n, k in sub.parts if n != name]
    if isinstance(expr, str):
        return affine(rest + [(expr, c)], sub.offset)
    return affine(rest + [(n, c * k) for n, k in expr.parts], sub.offset + c * expr.offset)


def _put_factor(f: Factor, name: str, expr: Subscript) -> Factor:
    if name not in mentioned(f):
        return f
    if isinstance(f, Ref):
        return access(f.name, (_put(s, name, expr) for s in f.axes))
    if isinstance(f, (Delta, Shift)):
        left = _put(f.i, name, expr)
        right = _put(f.j if isinstance(f, Delta) else f.sub, name, expr)
        if isinstance(left, str) and isinstance(right, str):
            return Delta(left, right)
        if isinstance(left, str):
            return Shift(left, right)  # type: ignore[arg-type]
        if isinstance(right, str):
            return Shift(right, left)
        raise _Stuck
    if isinstance(f, Reduce) and name in f.indices:
        raise _Stuck
    return map_factor_sums(f, lambda s: Sum(tuple(
        Term(t.coef, tuple(_put_factor(g, name, expr) for g in t.factors), t.summed, t.extents)
        for t in s.terms)))


def substitute(term: Term, name: str, expr: Subscript) -> Term | None:
    """``term`` with the index ``name`` replaced by the subscript ``expr`` everywhere
    (``w[k]`` with k = p-i is ``w[p-i]``); None where some factor cannot take it (an
    index tensor's own index, the axes of a function of whole axes)."""
    try:
        factors = tuple(_put_factor(f, name, expr) for f in term.factors)
    except _Stuck:
        return None
    return Term(term.coef, factors, term.summed - {name}, term.extents)


def arithmetic(expr: Sum) -> bool:
    """Does the expression use index arithmetic anywhere (an access, or a shifted delta)?"""
    known = expr.__dict__.get("_arithmetic")
    if known is None:
        known = expr.__dict__["_arithmetic"] = _arithmetic(expr)
    return bool(known)


def _arithmetic(expr: Sum) -> bool:
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Shift) or (isinstance(f, Ref) and f.subs is not None):
                return True
            if any(arithmetic(s) for s in children(f)):
                return True
    return False


def index_tensors(expr: Sum) -> Iterator[Gather]:
    """Every integer tensor used as a subscript inside, depth first."""
    for t in expr.terms:
        for f in t.factors:
            if isinstance(f, Ref) and f.subs is not None:
                yield from (s for s in f.subs if isinstance(s, Gather))
            elif isinstance(f, Shift) and isinstance(f.sub, Gather):
                yield f.sub
            for s in children(f):
                yield from index_tensors(s)


def all_factors(expr: Sum) -> Iterator[Factor]:
    """Every factor inside, at every depth."""
    for t in expr.terms:
        for f in t.factors:
            yield f
            for s in children(f):
                yield from all_factors(s)


def read_through(term: Term, lhs: tuple[str, ...], axes: tuple[Subscript, ...],
                 used: set[str]) -> Term | None:
    """``term``, a value over ``lhs``, as read at the subscripts ``axes`` (``y[p-k]`` is y's
    value at i = p-k); ``lhs`` may go on past ``axes`` (a tangent's new axes keep their
    names). None where a subscript cannot replace an index (see ``substitute``)."""
    taken = set(used) | set(lhs) | term.mentioned
    temps = []
    for _ in axes:
        temps.append(fresh_name("t", taken))
        taken.add(temps[-1])
    out: Term | None = rename_term(term, dict(zip(lhs, temps)))
    for temp, sub in zip(temps, axes):
        out = substitute(out, temp, sub) if out is not None else None
    return out


def read_inside(term: Term, name: str) -> bool:
    """Is the index ``name`` read through arithmetic inside a factor of the term that is not
    a tensor (``(x[i+1] - x[i])^2``)? There the read's zeros past the array's end do not
    zero the term, so its range is the only thing that keeps ``name`` in bounds: ``name``
    must not be replaced by another index (a delta substituted would run it over that
    index's range)."""
    for f in term.factors:
        if isinstance(f, (Ref, Delta, Shift)):
            continue
        for inner in children(f):
            if arithmetic(inner) and any(  # cached on the sum: usually no walk at all
                    isinstance(g, Ref) and g.subs is not None and any(
                        isinstance(s, Affine) and name in s.names for s in g.subs)
                    for g in all_factors(inner)):
                return True
    return False



# A size the caller gave by name (``sizes={"k": 2}``, SPEC §9) is carried as the extent of
# a pseudo tensor ``#k`` of that length, beside every term that uses the index: an extent
# is renamed with its index, so a derivative that names the index anew keeps its size.
SIZE_MARK = "#"

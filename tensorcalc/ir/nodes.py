"""The node kinds of the checked program: immutable sums of product terms.

A right-hand side is a ``Sum`` of ``Term``s. A term is a coefficient times a
product of factors and names the indices it contracts (``summed``). A factor is
a tensor reference, a Kronecker delta, an elementwise function of sums, a power
of two sums, or a parenthesised sum. Constants live in coefficients. ``children``
says which sums a factor holds: every walk over the tree is built on it.

Indices bound by a term (its ``summed``) are local to it. Within one top-level
term of a statement a bound index name is used only inside the term that binds
it, so renaming it there never captures anything; ``lower.py`` and every pass
keep it so (``freshen`` re-establishes it after terms are merged).

>>> t = Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))), frozenset({"j"}))
>>> t.free
('i',)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, NoReturn, Union

from ..caching import MENTIONED, cached_property
from .subscripts import Arithmetic, Subscript, sub_names, unique

__all__ = [
    "COMPARISONS", "COUNT_MARK", "SIZE_MARK", "ZERO", "Call", "Cond", "Delta", "Extent",
    "Factor", "Power", "Reduce", "Ref", "Shift", "Statement", "Sum", "Term", "access", "delta",
    "as_sum", "children", "const", "const_value", "mentioned", "power", "unknown_kind",
]


def unknown_kind(node: object) -> NoReturn:
    """Where a walk meets a node kind it does not know: tensorcalc's own error, loudly
    (a walk that skipped it would give a wrong derivative or number silently)."""
    raise TypeError(f"internal error: no case for the IR node kind {type(node).__name__}")


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
        return unique(self.indices)

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


def delta(a: Subscript, b: Subscript) -> Delta | Shift:
    """``delta[a, b]``: a Kronecker delta of two indices, or a shifted one where one side
    is a subscript with arithmetic (the index side first in a ``Shift``). The one place
    that chooses; two subscripts with arithmetic are no delta (``ValueError``)."""
    if isinstance(a, str):
        return Delta(a, b) if isinstance(b, str) else Shift(a, b)
    if isinstance(b, str):
        return Shift(b, a)
    raise ValueError("a delta ties an index to a subscript, not two subscripts")


def access(name: str, subs: Iterable[Subscript]) -> Ref:
    """``name[subs]`` as a ``Ref``: plain where every subscript is an index name."""
    subs = tuple(subs)
    if all(isinstance(s, str) for s in subs):
        return Ref(name, subs)  # type: ignore[arg-type]
    return Ref(name, unique(n for s in subs for n in sub_names(s)), subs)


@dataclass(frozen=True)


class Shift:
    """The shifted delta ``delta[i, sub]`` (docs/derivatives.md, 'Shifted deltas'): 1 where index
    ``i`` equals the value of the subscript ``sub`` (``i+k``, or ``t[n]``), else 0. What an access
    ``x[i+k]`` differentiates to."""

    i: str
    sub: Arithmetic

    @cached_property
    def free(self) -> tuple[str, ...]:
        return unique((self.i,) + self.sub.names)


@dataclass(frozen=True)


class Delta:
    """The Kronecker delta: 1 where ``i`` and ``j`` are equal."""

    i: str
    j: str

    @cached_property
    def free(self) -> tuple[str, ...]:
        return unique((self.i, self.j))


# The comparisons an index condition may make, with what each means in Python.
COMPARISONS = {"!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Cond:
    """The Iverson bracket ``[a op b]`` of two index subscripts: 1 where the comparison
    holds, else 0 (``[i != j]``, ``[j <= i]``, ``[c != t[n]]``). Like a delta it is
    structure, not data: it carries no size, has derivative 0, and is carried through
    derivatives as a factor. ``[i == j]`` is a delta, never a ``Cond``."""

    op: str
    a: Subscript
    b: Subscript

    @cached_property
    def free(self) -> tuple[str, ...]:
        return unique(sub_names(self.a) + sub_names(self.b))


@dataclass(frozen=True)


class Call:
    """An elementwise function of one or more sums (``tanh(e)``, ``where(c, a, b)``),
    broadcast over the union of their indices. A comparison (``a > b``) is a call too: a
    registered function of two sums whose value is 1.0 or 0.0."""

    fn: str
    args: tuple[Sum, ...]

    @property
    def arg(self) -> Sum:
        """The argument of a one-argument call; asked of any other call, an internal error
        (a walk that read only the first argument would miss the others silently)."""
        if len(self.args) != 1:
            raise TypeError(f"internal error: {self.fn} has {len(self.args)} arguments, "
                            "not one")
        return self.args[0]

    @cached_property
    def free(self) -> tuple[str, ...]:
        return unique(i for a in self.args for i in a.free)


@dataclass(frozen=True)


class Power:
    """``base ** exponent``, elementwise over the indices of both."""

    base: Sum
    exponent: Sum

    @cached_property
    def free(self) -> tuple[str, ...]:
        return unique(self.base.free + self.exponent.free)


@dataclass(frozen=True)
class Reduce:
    """``fn[indices](arg)``: a function along the axes ``indices`` of ``arg`` (docs/functions.md).

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
    # ``softmax[j | j <= i](e)``: the conditions that exclude entries (a masked entry
    # takes no part: as if it were -inf for max, logsumexp and softmax, +inf for min).
    mask: tuple[Cond, ...] = ()

    @property
    def bound(self) -> tuple[str, ...]:
        """The index names local to this factor (none for a function that keeps them)."""
        return () if self.keeps else self.indices

    @cached_property
    def batch(self) -> tuple[str, ...]:
        every = self.arg.free + tuple(n for c in self.mask for n in c.free)
        return tuple(i for i in unique(every) if i not in self.indices)

    @cached_property
    def free(self) -> tuple[str, ...]:
        return self.batch + self.indices if self.keeps else self.batch


Factor = Union[Ref, Delta, Shift, Cond, Call, Power, Reduce, "Sum"]


class Extent(NamedTuple):
    """Where the index ``name`` takes its size when no tensor around it carries it: the length of
    axis ``axis`` of the tensor ``tensor`` (after a derivative drops the only factor that
    carried a summed index, ``sum[k](1)`` is the length of k). It is data beside the
    factors: it is never multiplied, and it is renamed with the index."""

    name: str
    tensor: str
    axis: int
    # A given size (docs/index-arithmetic.md): no read shrinks the index, and reads past an array's
    # end are zero. Declared or derived where index arithmetic needs it (``x_bar[p] = y_bar[p-k]
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
        every = unique(i for f in self.factors for i in f.free)
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
        return unique(i for t in self.terms for i in t.free)


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
    if all(not t.factors and not t.summed for t in expr.terms):  # sum[k](1) is a size
        return float(sum(t.coef for t in expr.terms))
    return None


def power(base: Sum, exponent: float | Sum) -> Power:
    return Power(base, const(exponent) if not isinstance(exponent, Sum) else exponent)


def children(factor: Factor) -> tuple[Sum, ...]:
    """The sums directly inside a factor (none in a tensor or a delta)."""
    if isinstance(factor, Call):
        return factor.args
    if isinstance(factor, Reduce):
        return (factor.arg,)
    if isinstance(factor, Power):
        return (factor.base, factor.exponent)
    if isinstance(factor, Sum):
        return (factor,)
    if isinstance(factor, (Ref, Delta, Shift, Cond)):
        return ()
    unknown_kind(factor)


def mentioned(factor: Factor) -> frozenset[str]:
    """Every index name used inside a factor, bound or free (kept on the factor)."""
    if isinstance(factor, (Ref, Delta, Shift, Cond)):
        return frozenset(factor.free)

    def make() -> frozenset[str]:
        names: set[str] = set()
        if isinstance(factor, Reduce):
            names |= set(factor.indices) | {n for c in factor.mask for n in c.free}
        for s in children(factor):
            for t in s.terms:
                names |= t.mentioned
        return frozenset(names)

    return MENTIONED.of(factor, make)


# A size the caller gave by name (``sizes={"k": 2}``, docs/index-arithmetic.md) is carried as the
# extent of a pseudo tensor ``#k`` of that length, beside every term that uses the index: an extent
# is renamed with its index, so a derivative that names the index anew keeps its size.
SIZE_MARK = "#"

# ``size(i)`` as lowered, before its statement is complete: the extent of its count names
# the pseudo tensor ``size:i``, which ``declarations.with_counts`` replaces by the axis that
# sizes ``i`` in the statement (``sizes.count_extent``). No other pass ever sees it.
COUNT_MARK = "size:"

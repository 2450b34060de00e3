"""Sums with sparse terms: a scatter term, or a term on a diagonal, added into the value
of the sum's dense terms at its positions only.

A derivative often adds a few entries to a dense array: the cross-entropy gradient
``softmax[q](Z[p,q]) - delta[q,t[p]]`` subtracts 1 at one place per row, a Hessian
``A[p,q] + delta[p,q] s[p]`` adds a vector on the diagonal. Made dense first, such a term
costs an array of zeros, a scatter into it and a full addition: three passes over memory
where the formula makes none. Here the dense terms are summed first and the sparse ones
are added into that fresh result where they land (NumPy: ``np.add.at`` into it, in place;
torch: ``index_put`` with ``accumulate``; JAX: ``.at[].add``). CuPy and Dask keep the
dense route.

In place needs a result no one else holds: on NumPy the dense part must be computed by
the sum itself (see ``_fresh``), never an input, a statement's value, an operand computed
once and shared, or a view of one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ir import Affine
from ..ops import kernels
from . import operands
from .binding import StatementBinder
from .indexing import scatter_targets
from .windows import scatter_into

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Adder = Callable[[Env, Array], Array]

_IN_PLACE = ("segments", "index_add", "at")  # the scatter-adds that can add into a total


def sparse_sum(ctx: StatementBinder, plan: operands.SumPlan, order: tuple[str, ...],
               dense_sum: Callable[[operands.SumPlan], Step]) -> Step | None:
    """The sum over ``order`` with its sparse terms added into its dense terms' value, or
    None where that does not apply (no sparse term, nothing dense, or a library or
    layout the in-place route does not cover). ``dense_sum`` binds a sum of terms."""
    tiles = _tiles(ctx, plan, order)
    if tiles is not None:
        return tiles
    adders = {id(t): adder for t in plan.terms
              if (adder := _adder(ctx, t, order)) is not None}
    dense = tuple(t for t in plan.terms if id(t) not in adders)
    if not adders or (not dense and (ctx.lib.name != "NumPy" or len(adders) < 2)):
        return None
    if ctx.lib.name == "NumPy" and len(dense) == 1 and not _fresh(ctx, dense[0], order):
        return None
    if dense:
        dense_step = dense_sum(operands.SumPlan(dense))
    else:  # sparse terms only (an adjoint's gates, each at its own row): zeros to add into
        shape, xp, dtype = ctx.shape(order), ctx.xp, ctx.dtype
        dense_step = lambda env: xp.zeros(shape, dtype=dtype)  # noqa: E731
    adds = tuple(adders.values())

    def run(env: Env) -> Array:
        total = dense_step(env)
        for add in adds:
            total = add(env, total)
        return total

    return run


def _adder(ctx: StatementBinder, t: operands.TermPlan, order: tuple[str, ...]) -> Adder | None:
    """How term ``t`` adds itself into a total over ``order``, if it is sparse."""
    piece = _as_slice(ctx, t, order)
    if piece is not None:
        return _slice_adder(ctx, piece)
    op = _scatter(t, order)
    if op is not None and ctx.lib.scatter in _IN_PLACE and not ctx.lib.chunked:
        return _scatter_adder(ctx, t, op, order)
    if t.ties and ctx.lib.name == "NumPy" and set(t.free) == set(order) and len(order) <= 52:
        return _diagonal_adder(ctx, t, order)
    return None


def _scatter_adder(ctx: StatementBinder, t: operands.TermPlan, op: operands.ScatterOperand,
                   order: tuple[str, ...]) -> Adder:
    grid_order = op.grid + op.rest
    core = ctx.term(op.core, grid_order, ctx.shape(grid_order))
    scale = ctx.scale(t)
    targets_of = scatter_targets(ctx, op)
    targets, rest, sizes = tuple(p for p, _ in op.shifts) + op.kept, op.rest, ctx.sizes
    xp, how, into = ctx.xp, ctx.lib.scatter or "", scatter_into

    def add(env: Env, total: Array) -> Array:
        values = core(env)
        if scale != 1:
            values = values * scale
        if total.dtype != values.dtype:  # a wider result than the dense part's
            total = total + xp.zeros((), dtype=values.dtype)
        return into(total, order, values, targets_of(env), targets, rest, sizes, xp, how)

    return add


def _scatter(t: operands.TermPlan, order: tuple[str, ...]) -> operands.ScatterOperand | None:
    """Term ``t``'s scatter, where it is one scatter over ``order`` and nothing else."""
    op = t.operands[0] if len(t.operands) == 1 else None
    if isinstance(op, operands.ScatterOperand) and not t.ties \
            and _same_axes(op.free, order) and _same_axes(t.einsum_out, order):
        return op
    return None


@dataclass(frozen=True)
class _Slice:
    """A term that is a scatter to constant positions (an adjoint's gate ``delta[g,2]
    core``), on NumPy: its core (over ``rest``) and scale land at ``places`` of
    ``targets``; ``perm`` orders the total's axes ``targets + rest``; ``inside`` says
    whether every place is within its target's range."""

    t: operands.TermPlan
    op: operands.ScatterOperand
    targets: tuple[str, ...]
    places: tuple[int, ...]
    perm: tuple[int, ...]
    inside: bool


def _as_slice(ctx: StatementBinder, t: operands.TermPlan, order: tuple[str, ...]
              ) -> _Slice | None:
    op = _scatter(t, order)
    if ctx.lib.name != "NumPy" or op is None or op.grid or op.kept:
        return None
    if not all(isinstance(sub, Affine) and not sub.parts for _, sub in op.shifts):
        return None
    targets = tuple(p for p, _ in op.shifts)
    places = tuple(sub.offset for _, sub in op.shifts if isinstance(sub, Affine))
    return _Slice(t, op, targets, places, tuple(order.index(i) for i in targets + op.rest),
                  all(0 <= at < ctx.sizes[p] for p, at in zip(targets, places)))


def _tiles(ctx: StatementBinder, plan: operands.SumPlan, order: tuple[str, ...]) -> Step | None:
    """A sum whose terms are scatters to constant positions, one term at each position of
    the same targets (an adjoint's packed gates ``delta[g,0] a + delta[g,1] b + ...``), as
    one array written slice by slice (NumPy): no zeros, no additions. None otherwise."""
    pieces = [_as_slice(ctx, t, order) for t in plan.terms]
    if not pieces or any(p is None for p in pieces):
        return None
    tiles = [p for p in pieces if p is not None]
    first = tiles[0]
    count = 1
    for p in first.targets:
        count *= ctx.sizes[p]
    if any((p.targets, p.op.rest) != (first.targets, first.op.rest) or not p.inside
           for p in tiles) or not len({p.places for p in tiles}) == len(tiles) == count:
        return None
    rest = first.op.rest
    cores = tuple((ctx.term(p.op.core, rest, ctx.shape(rest)), ctx.scale(p.t), p.places)
                  for p in tiles)
    perm, shape, xp = first.perm, ctx.shape(order), ctx.xp

    def run(env: Env) -> Array:
        values = [(core(env), scale, places) for core, scale, places in cores]
        dtype = xp.result_type(ctx.dtype, *(v for v, _, _ in values))
        total = xp.empty(shape, dtype=dtype)
        view = total.transpose(perm)
        for value, scale, places in values:
            if scale != 1:
                xp.multiply(value, scale, out=view[places])
            else:
                view[places] = value
        return total

    return run


def _slice_adder(ctx: StatementBinder, piece: _Slice) -> Adder:
    """A scatter to constant positions added as a slice of the total (NumPy, in place):
    ``total[..., 2, ...] += core``, nothing where a position is outside its target."""
    rest = piece.op.rest
    core = ctx.term(piece.op.core, rest, ctx.shape(rest))
    scale, perm, places, xp = ctx.scale(piece.t), piece.perm, piece.places, ctx.xp

    def add(env: Env, total: Array) -> Array:
        values = core(env)
        if scale != 1:
            values = values * scale
        if total.dtype != values.dtype:  # a wider result than the dense part's
            total = total + xp.zeros((), dtype=values.dtype)
        total.transpose(perm)[places] += values
        return total

    return add if piece.inside else lambda env, total: total


def _diagonal_adder(ctx: StatementBinder, t: operands.TermPlan, order: tuple[str, ...]) -> Adder:
    """A delta-tied term's core added onto the diagonal view of the total (NumPy)."""
    core = ctx.contraction(t)
    diagonal = kernels.diagonal_axes(order, t.ties)
    line_up = ctx.aligner(t.einsum_out, diagonal, ctx.shape(diagonal))
    write, xp, ties = kernels.on_diagonal, ctx.xp, t.ties

    def add(env: Env, total: Array) -> Array:
        value = core(env) if line_up is None else line_up(core(env))
        if total.dtype != xp.result_type(total, value):
            return total + write(value, order, ties, total.shape, xp)
        kernels.diagonal_view(total, order, ties, xp)[...] += value
        return total

    return add


def _same_axes(have: tuple[str, ...], order: tuple[str, ...]) -> bool:
    return len(have) == len(order) and set(have) == set(order)


def _fresh(ctx: StatementBinder, t: operands.TermPlan, order: tuple[str, ...]) -> bool:
    """Is term ``t``'s value over ``order`` an array the sum alone holds (NumPy), so that
    it may be written into? Conservative: a product of two or more operands, a scaled
    value, a diagonal written into zeros, or one reduction or function computed for this
    term alone; never a read, a broadcast, or an operand shared with other terms."""
    if not _same_axes(t.free, order):
        return False
    if t.ties or ctx.scale(t) != 1 or len(t.operands) >= 2:
        return bool(t.operands)
    if len(t.operands) != 1 or t.is_einsum:  # a one-operand einsum may be a view
        return False
    op = t.operands[0]
    if isinstance(op, operands.PowerOperand):
        return op.shared is None and op.exponent != 1
    return isinstance(op, (operands.ReduceOperand, operands.CallOperand,
                           operands.SolveOperand)) and op.shared is None

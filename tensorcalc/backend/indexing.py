"""Index arithmetic (docs/index-arithmetic.md) bound for one input signature: the functions of
``windows`` (the ones ``to_python()`` copies) with every argument the plan and the
sizes fix given once, and the library's abilities (``libraries.ArrayLibrary``) asked
once: reads through subscripts, masks of shifted deltas, scatter-adds, plain reads cut
or padded to their indices' sizes. An index array out of range is the user's error,
named by its tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from ..errors import InputError
from ..ir import Gather, Subscript, subscript_text
from ..limits import check_size
from . import windows
from .binding import StatementBinder
from .libraries import ArrayLibrary
from .operands import ConditionOperand, MaskOperand, RefOperand, ScatterOperand

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Indexed = Callable[[Env], dict[str, Array]]  # the index arrays of a part, by name


def read(ctx: StatementBinder, op: RefOperand) -> Step:
    """A tensor as its operand: itself, cut or padded to its indices' sizes, or a view
    through its subscripts."""
    name = op.name
    shape = ctx.shapes.get(name)
    if op.subs is None:
        want = ctx.shape(op.indices)
        if shape is None or tuple(shape) == want:
            return itemgetter(name)
        fit = fitted(ctx.lib, want)
        return lambda env: fit(env[name])
    assert shape is not None
    refuse_chunked(ctx, f"{name}[{','.join(subscript_text(a) for a in op.subs)}]")
    subs = tuple(windows.encode(s) for s in op.subs)
    layout = windows.window_layout(subs, op.indices, ctx.sizes, tuple(shape))
    check_size(f"a window of {name} in {ctx.owner[0]}", ctx.shape(op.indices), ctx.owner[1],
               compact_hint=False)
    pads = layout[1] or [(0, 0)] * len(shape)
    check_size(f"{name} with the zeros its reads in {ctx.owner[0]} need past its ends",
               tuple(n + lo + hi for n, (lo, hi) in zip(shape, pads)), ctx.owner[1],
               compact_hint=False)
    lib, out, sizes, where, window = ctx.lib, op.indices, ctx.sizes, ctx.where, windows.read_window
    xp, pad, at, view = lib.xp, lib.pad, windows.subscript_at, lib.strided_view
    if not windows.index_names(op.subs):
        return lambda env: window(env[name], subs, out, sizes, {}, layout, xp, pad, at, view,
                                  where)
    index = index_arrays(ctx, ((s, shape[d], name, d) for d, s in enumerate(op.subs)))
    return lambda env: window(env[name], subs, out, sizes, index(env), layout, xp, pad, at,
                              view, where)


def mask(ctx: StatementBinder, op: MaskOperand) -> Step:
    """``delta[i, sub]`` as a 0/1 array over ``op.free``."""
    refuse_chunked(ctx, f"delta[{op.i},{subscript_text(op.sub)}]")
    sub, i, free, sizes, shift_mask = windows.encode(op.sub), op.i, op.free, ctx.sizes, \
        windows.shift_mask
    xp, dtype, where, at = ctx.lib.xp, ctx.dtype, ctx.where, windows.subscript_at
    index = index_arrays(ctx, [(op.sub, None, "", 0)])  # a position outside: no hit
    return lambda env: shift_mask(i, sub, free, sizes, index(env), dtype, xp, at, where)


def condition(ctx: StatementBinder, op: ConditionOperand) -> Step:
    """``[a op b]`` as a boolean array over ``op.free``."""
    a, b = windows.encode(op.a), windows.encode(op.b)
    free, sizes, hits, at = op.free, ctx.sizes, windows.condition_hits, windows.subscript_at
    xp, where, kind = ctx.lib.xp, ctx.where, op.op
    index = index_arrays(ctx, [(op.a, None, "", 0), (op.b, None, "", 0)])
    return lambda env: hits(kind, a, b, free, sizes, index(env), xp, at, where)


def condition_factor(ctx: StatementBinder, op: ConditionOperand) -> Step:
    """``[a op b]`` as a 0/1 factor of a product, in the statement's dtype."""
    hits, xp, dtype = condition(ctx, op), ctx.lib.xp, ctx.dtype
    return lambda env: xp.astype(hits(env), dtype)


def scatter(ctx: StatementBinder, op: ScatterOperand) -> Step:
    """A term's shifted deltas as a scatter-add of the product of its other factors."""
    refuse_chunked(ctx, "a scatter-add")
    how = ctx.lib.scatter
    if how is None:
        raise InputError(f"a scatter-add (the derivative of an index-array read) is not "
                         f"available for {ctx.lib.name} arrays; use NumPy, torch or JAX")
    check_size(f"a scatter in {ctx.owner[0]} (over {', '.join(op.free)})",
               ctx.shape(op.free), ctx.owner[1], compact_hint=False)
    order = op.grid + op.rest
    core = ctx.term(op.core, order, ctx.shape(order))
    targets_of, send = scatter_targets(ctx, op), windows.scatter_shifts
    targets, rest = tuple(p for p, _ in op.shifts) + op.kept, op.rest
    sizes, xp = ctx.sizes, ctx.lib.xp
    add = windows.scatter_add  # looked up when bound: a test may stand in for it
    return lambda env: send(core(env), targets_of(env), targets, rest, sizes, xp, add, how)


def scatter_targets(ctx: StatementBinder, op: ScatterOperand) -> Step:
    """The flat position over the targets that each grid point of ``op`` is sent to."""
    shifts = tuple((p, windows.encode(s)) for p, s in op.shifts)
    grid, kept, sizes, where = op.grid, op.kept, ctx.sizes, ctx.where
    xp, at, targets = ctx.lib.xp, windows.subscript_at, windows.scatter_targets
    index = index_arrays(ctx, ((s, sizes[p], "the derivative", 0) for p, s in op.shifts))
    return lambda env: targets(shifts, grid, kept, sizes, index(env), xp, at, where)


def index_arrays(ctx: StatementBinder,
                 reads: Iterable[tuple[Subscript, int | None, str, int]]) -> Indexed:
    """The index arrays among the subscripts of ``reads`` (each ``(subscript, length of
    the axis it picks from or None, the tensor, the axis)``), by name, each cut to the sizes of its
    indices (a shifted read elsewhere in the statement may shrink them, the valid rule,
    docs/index-arithmetic.md, as it does a plain tensor's axes) and checked to pick positions inside
    the axis."""
    gets: dict[str, Step] = {}
    checks: list[tuple[str, int, str, int]] = []
    for sub, length, tensor, axis in reads:
        if not isinstance(sub, Gather):
            continue
        if length is not None:
            checks.append((sub.name, length, tensor, axis))
        if sub.name not in gets:
            shape, want = ctx.shapes.get(sub.name), ctx.shape(sub.indices)
            gets[sub.name] = itemgetter(sub.name) if shape is None or tuple(shape) == want \
                else _fitted_input(sub.name, fitted(ctx.lib, want))
    xp, check = ctx.lib.xp, windows.check_index_array

    def run(env: Env) -> dict[str, Array]:
        index = {n: get(env) for n, get in gets.items()}
        for name, length, tensor, axis in checks:
            try:
                check(name, index[name], length, tensor, axis, xp)
            except ValueError as err:
                raise InputError(str(err)) from None
        return index

    return run


def fitted(lib: ArrayLibrary, want: tuple[int, ...]) -> Callable[[Array], Array]:
    """A plain read of an array whose axes differ from its indices' sizes ``want`` (a
    given size, or one a shifted read shrank)."""
    fit, pad = windows.fit, lib.pad
    return lambda array: fit(array, want, pad)


def _fitted_input(name: str, fit: Callable[[Array], Array]) -> Step:
    return lambda env: fit(env[name])


def refuse_chunked(ctx: StatementBinder, what: str) -> None:
    """Index arithmetic needs gathers and scatter-adds that Dask arrays lack."""
    if not ctx.lib.index_arithmetic:
        raise InputError(f"{what} in statement {ctx.owner[0]}: index arithmetic "
                         f"is not available for {ctx.lib.name} arrays; compute it with NumPy, "
                         "torch or JAX arrays")

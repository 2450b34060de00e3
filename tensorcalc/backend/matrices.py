"""Functions of whole axes (docs/functions.md) bound for one input signature: a reduction's
kernel along trailing axes, and an inverse that is only contracted run as a linear
solve. A singular matrix is the user's error, named by its statement.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import InputError
from ..limits import check_size
from ..ops import kernels
from ..ops.reductions import REDUCERS
from .binding import StatementBinder
from .indexing import condition
from .libraries import ArrayLibrary
from .operands import ReduceOperand, SolveOperand

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]


def reduction(ctx: StatementBinder, op: ReduceOperand) -> Step:
    """``fn[indices](arg)``: the argument over ``batch + indices``, the kernel along the
    trailing axes."""
    layout = op.batch + op.indices
    name, itemsize = ctx.owner
    check_size(f"the argument of {op.fn}[{','.join(op.indices)}] in {name}",
               ctx.shape(layout), itemsize, compact_hint=False)
    require_linalg(ctx, op.fn, {"inv": "inv", "det": "det", "logdet": "slogdet"})
    empty = [i for i in op.indices if ctx.sizes[i] == 0]
    if empty and op.fn in ("max", "min"):
        raise InputError(f"{op.fn}[{','.join(op.indices)}] in statement {name} runs along "
                         f"index {empty[0]}, of size 0: the "
                         f"{'largest' if op.fn == 'max' else 'smallest'} of no values "
                         "is undefined")
    arg = ctx.sum(op.arg, layout)
    axes = tuple(range(len(op.batch), len(layout)))
    kernel, xp = REDUCERS[op.fn].kernel, ctx.xp
    if REDUCERS[op.fn].matrix:
        kernel = for_lapack(kernel, ctx.lib)
    if op.fn == "inv":
        where = f"inv[{','.join(op.indices)}](...) in statement {name}"
        return lambda env: nonsingular(lambda m: kernel(m, axes, xp), arg(env), where, xp)
    if op.mask:
        return _masked(ctx, op, arg, kernel, axes)
    if xp is np:
        return lambda env: np.asarray(kernel(arg(env), axes, xp))
    return lambda env: kernel(arg(env), axes, xp)


def _masked(ctx: StatementBinder, op: ReduceOperand, arg: Step,
            kernel: Callable[[Array, tuple[int, ...], Any], Array],
            axes: tuple[int, ...]) -> Step:
    """A masked reduction (``softmax[j | j <= i](e)``): every entry the mask excludes is
    set to the value that takes no part (-inf for max, logsumexp and softmax, +inf for
    min) before the kernel runs; a function that keeps its axes then gives 0 there (so a
    row with no entry left is 0, not 0/0)."""
    fill = REDUCERS[op.fn].masked
    assert fill is not None  # lowering refuses a mask on any other function
    hits = [condition(ctx, c) for c in op.mask]
    xp, keep_only, keeps = ctx.xp, kernels.masked, REDUCERS[op.fn].keeps

    def run(env: Env) -> Array:
        keep = hits[0](env)
        for more in hits[1:]:
            keep = keep & more(env)
        with np.errstate(invalid="ignore", divide="ignore"):  # a row with no entry: 0/0
            value = kernel(keep_only(arg(env), keep, fill, xp), axes, xp)
        return keep_only(value, keep, 0.0, xp) if keeps else value

    return run


def require_linalg(ctx: StatementBinder, fn: str, routines: dict[str, str]) -> None:
    """Refuse, when the statement is bound, a matrix function the array library lacks
    (Dask has no ``det`` or ``slogdet``)."""
    routine = routines.get(fn)
    if routine is not None and not ctx.lib.has_linalg(routine):
        raise InputError(f"{fn}[...] in statement {ctx.owner[0]} needs linalg.{routine}, "
                         f"which {ctx.lib.name} arrays do not have; compute it on "
                         "NumPy arrays instead")


def solve(ctx: StatementBinder, op: SolveOperand) -> Step:
    """``inv[i,j](M)`` times the operands that hold ``j``, as ``solve(M, ...)``."""
    i, j = op.indices
    contracted = i if op.transpose else j
    name, itemsize = ctx.owner
    require_linalg(ctx, "inv", {"inv": "solve"})
    check_size(f"the matrix of inv[{i},{j}] in {name}", ctx.shape(op.batch + op.indices),
               itemsize, compact_hint=False)
    matrix = ctx.sum(op.matrix, op.batch + op.indices)
    layout = op.batch + (contracted,) + op.rest
    shape = ctx.shape(layout)
    right = ctx.contraction(op.right)
    line_up = ctx.aligner(op.right.einsum_out, layout, shape)
    xp, solve = ctx.xp, for_lapack(kernels.solve, ctx.lib)
    where = f"inv[{i},{j}](...) in statement {name}"

    def run(env: Env) -> Array:
        m = matrix(env)
        if op.transpose:
            m = xp.swapaxes(m, -1, -2) if hasattr(xp, "swapaxes") \
                else xp.matrix_transpose(m)
        b = right(env)
        b = b if line_up is None else line_up(b)
        return nonsingular(lambda a: solve(a, b, xp), m, where, xp, b)

    return run


def for_lapack(kernel: Callable[..., Array], lib: ArrayLibrary) -> Callable[..., Array]:
    """A LAPACK kernel, ``kernel(matrix, [right-hand side,] ...)``, made to take what
    LAPACK cannot: half-precision matrices run in float32 and the result is cast back
    (LAPACK has no float16; NumPy and torch refuse it); a Dask matrix is one chunk along
    its two axes (Dask's LU wants square chunks), and so are a right-hand side's rows."""
    xp, chunked = lib.xp, lib.chunked

    def run(*args: Any) -> Array:
        count = sum(hasattr(a, "dtype") and not isinstance(a, ModuleType) for a in args)
        arrays, rest = list(args[:count]), args[count:]  # the axes or the namespace after
        if chunked:
            rows = len(arrays[0].shape) - 2
            arrays = [a.rechunk({rows: -1, rows + 1: -1} if k == 0 else {rows: -1})
                      for k, a in enumerate(arrays)]
        dtype = arrays[0].dtype
        if not str(dtype).endswith("float16"):  # float16, bfloat16
            return kernel(*arrays, *rest)
        return xp.astype(kernel(*(xp.astype(a, xp.float32) for a in arrays), *rest), dtype)

    return run


def nonsingular(compute: Callable[[Array], Array], matrix: Array, where: str, xp: Any,
                rhs: Array | None = None) -> Array:
    """``compute(matrix)`` (an inverse or a solve), or an ``InputError`` naming ``where``
    when the matrix is singular: LAPACK's error (NumPy, torch), or a result that is not
    finite from a finite matrix and a finite right-hand side ``rhs`` (JAX returns inf; a
    NaN in the right-hand side is a NaN in the result, as on NumPy, not a singular
    matrix)."""
    try:
        value = compute(matrix)
    except Exception as err:  # each library has its own LinAlgError
        if "LinAlgError" in type(err).__name__ or "singular" in str(err).lower():
            raise InputError(f"the matrix of {where} is singular: it has no inverse") from None
        raise
    if xp is not np:
        try:
            bad = not bool(xp.all(xp.isfinite(value))) and bool(xp.all(xp.isfinite(matrix))) \
                and (rhs is None or bool(xp.all(xp.isfinite(rhs))))
        except Exception:  # noqa: BLE001 - a traced array (jax.jit) has no truth value
            bad = False
        if bad:
            raise InputError(f"the matrix of {where} is singular: it has no inverse")
    return value

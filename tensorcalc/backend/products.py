"""Products that are not general contractions, run directly: one matrix product
(``matmul``, laid out so that nothing is copied after BLAS, on NumPy and on the array API
of torch and CuPy), elementwise products and, on NumPy, a convolution's im2col product.
``run.py`` picks them where a term's operands allow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .libraries import ArrayLibrary, library

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]


def matmul(sizes: Sizes, indices: list[tuple[str, ...]], operands: list[Step],
           out: tuple[str, ...], lib: ArrayLibrary) -> Step | None:
    """A product that is one matrix product once the operands over the same axes are
    multiplied elementwise (``H_bar[k,q] X[k,p] (1 - H[k,q]^2)``): run as ``matmul`` of
    the array library ``lib`` with the operands in the order that makes the result
    C-ordered in ``out``'s order, so that nothing is copied afterwards (opt_einsum may
    choose ``W^T X^T`` and transpose, which on torch is a slower product and a strided
    result). None for any other product."""
    groups: dict[tuple[str, ...], list[Step]] = {}
    for idx, step in zip(indices, operands):
        groups.setdefault(idx, []).append(step)
    if any(len(set(idx)) != len(idx) for idx in groups):
        return None
    symmetric = _symmetric(groups, out, sizes) if lib.xp is np else None
    # An operand over a subset of another's axes (the weights s[k] of X[k,p] s[k] X[k,q])
    # is multiplied into that one, broadcast: X[k,p] s[k], then one matrix product.
    for idx in sorted(groups, key=len):
        wider = next((g for g in groups if set(idx) < set(g)), None)
        if wider is not None:
            # their product first, at their own size, then one pass over the wider
            groups[wider].append(broadcast(elementwise(groups.pop(idx)), idx, wider, sizes,
                                          lib))
    if len(groups) != 2:
        return None
    (ia, a_steps), (ib, b_steps) = groups.items()
    if any(i not in out for i in set(ia) ^ set(ib)) or not set(out) <= set(ia) | set(ib):
        return None  # an index summed within one side, or one no operand has
    if out == tuple(i for i in out if i in ia and i in ib) + tuple(i for i in ib if i not in ia) \
            + tuple(i for i in ia if i not in ib):  # swap, so that the result is laid out as out
        ia, ib, a_steps, b_steps = ib, ia, b_steps, a_steps
    product = _matrix_product(ia, ib, out, sizes, lib)
    a_side, b_side = elementwise(a_steps), elementwise(b_steps)

    def run(env: Env) -> Array:
        if symmetric is not None:
            scaled = symmetric(env)
            if scaled is not None:  # Aᵀ A of one buffer: BLAS's syrk, half the work
                return product(scaled, scaled)
        return product(a_side(env), b_side(env))

    return run


def _matrix_product(ia: tuple[str, ...], ib: tuple[str, ...], out: tuple[str, ...],
                    sizes: Sizes, lib: ArrayLibrary) -> Callable[[Array, Array], Array]:
    """The product of an array over ``ia`` and one over ``ib`` into ``out`` as one
    ``matmul``: the indices in both and in ``out`` are its batch, those in both and not in
    ``out`` are summed, and ``ia``'s own come before ``ib``'s."""
    batch = tuple(i for i in out if i in ia and i in ib)
    contracted = tuple(i for i in ia if i in ib and i not in out)
    a_only = tuple(i for i in ia if i not in ib)
    b_only = tuple(i for i in ib if i not in ia)
    natural = batch + a_only + b_only
    a_order = tuple(ia.index(i) for i in batch + a_only + contracted)
    b_order = tuple(ib.index(i) for i in batch + contracted + b_only)
    a_shape: tuple[int, ...] = (_count(sizes, batch), _count(sizes, a_only),
                                _count(sizes, contracted))
    b_shape: tuple[int, ...] = (_count(sizes, batch), _count(sizes, contracted),
                                _count(sizes, b_only))
    if not batch:
        a_shape, b_shape = a_shape[1:], b_shape[1:]
    shape = tuple(sizes[i] for i in natural)
    final = tuple(natural.index(i) for i in out)
    identity = tuple(range(len(final)))
    permute, reshape, multiply = lib.array_functions()

    def product(a: Array, b: Array) -> Array:
        a = reshape(permute(a, a_order), a_shape)
        b = reshape(permute(b, b_order), b_shape)
        value = reshape(multiply(a, b), shape)
        return value if final == identity else _contiguous(permute(value, final))

    return product


def _count(sizes: Sizes, names: tuple[str, ...]) -> int:
    """The number of combinations of the indices ``names``."""
    n = 1
    for i in names:
        n *= sizes[i]
    return n


def summed_product(indices: list[tuple[str, ...]], operands: list[Step], out: tuple[str, ...],
                   xp: Any) -> Step | None:
    """An elementwise product summed over some of its axes (``H_bar[k,p] (1 - H[k,p]^2)``
    summed over k): the product, then ``sum``, then the axes in ``out``'s order. torch's
    einsum runs ``kp,kp->p`` as a batch of vector products, 50 times slower. None unless
    every operand has the same axes, each once, and ``out`` is among them."""
    first = indices[0]
    if len(set(first)) != len(first) or any(idx != first for idx in indices) \
            or not set(out) <= set(first) or len(set(out)) != len(out):
        return None
    summed = tuple(k for k, i in enumerate(first) if i not in out)
    kept = tuple(i for i in first if i in out)
    order = tuple(kept.index(i) for i in out)
    product, total, permute = elementwise(operands), xp.sum, xp.permute_dims
    if order == tuple(range(len(order))):
        return lambda env: total(product(env), axis=summed)
    return lambda env: permute(total(product(env), axis=summed), order)


def _symmetric(groups: dict[tuple[str, ...], list[Step]], out: tuple[str, ...],
               sizes: Sizes) -> Callable[[Env], Array | None] | None:
    """``X[k,p] w[k] X[k,q]``, one tensor read twice with only the kept index renamed and
    weights over the shared indices: ``Xᵀ diag(w) X``, symmetric. Where the weights are
    all at least 0 when it runs (a logistic Hessian's ``s (1 - s)``), it is ``Aᵀ A`` with
    ``A = X sqrt(w)``: one buffer on both sides of the product, which BLAS runs as a
    symmetric rank-k update, half the work. The step gives ``A`` (None where the operands
    differ at run time or a weight is negative or nan)."""
    wide = [idx for idx in groups if len(groups[idx]) == 1 and any(i in out for i in idx)]
    if len(groups) != 3 or len(wide) != 2:
        return None
    first, second = wide
    (weights_idx,) = [idx for idx in groups if idx not in wide]
    shared = tuple(i for i, j in zip(first, second) if i == j)
    if len(first) != len(second) or any(
            i != j and (i not in out or j not in out) for i, j in zip(first, second)) \
            or not set(weights_idx) <= set(shared) or shared != tuple(i for i in first
                                                                       if i in second):
        return None
    (x1,), (x2,) = groups[first], groups[second]
    weights = broadcast(elementwise(groups[weights_idx]), weights_idx, first, sizes,
                        library(np))

    def scaled(env: Env) -> Array | None:
        x = x1(env)
        if x is not x2(env):
            return None
        w = weights(env)
        if not w.size or not w.min() >= 0:  # nan compares false: the general product
            return None
        return x * np.sqrt(w)

    return scaled


def _contiguous(value: Array) -> Array:
    """A transposed result laid out in its own order (torch's ``contiguous``; a copy on
    NumPy and CuPy; JAX arrays have no layout to fix)."""
    contiguous = getattr(value, "contiguous", None)
    if contiguous is not None:
        return contiguous()
    copy = getattr(value, "copy", None)
    return copy() if copy is not None and not hasattr(value, "at") else value


def broadcast(step: Step, have: tuple[str, ...], want: tuple[str, ...], sizes: Sizes,
              lib: ArrayLibrary) -> Step:
    """``step``'s value (axes ``have``) laid out to multiply an array over ``want``:
    transposed to ``want``'s order, with length-1 axes where it has none."""
    order = tuple(have.index(i) for i in want if i in have)
    shape = tuple(sizes[i] if i in have else 1 for i in want)
    permute, reshape, _ = lib.array_functions()
    if order == tuple(range(len(have))):
        return lambda env: reshape(step(env), shape)
    return lambda env: reshape(permute(step(env), order), shape)


def elementwise(steps: list[Step]) -> Step:
    """The elementwise product of operands over the same axes."""
    if len(steps) == 1:
        return steps[0]
    first, rest = steps[0], steps[1:]

    def product(env: Env) -> Array:
        value = first(env)
        for f in rest:
            value = value * f(env)
        return value

    return product


def window_product(sizes: Sizes, view: tuple[str, ...], other: tuple[str, ...],
                   steps: tuple[Step, Step], out: tuple[str, ...], lib: ArrayLibrary
                   ) -> Step | None:
    """The product of a strided view (a read through index arithmetic: ``X[b,c,i+a,j+e]``)
    and one other operand as one ``np.matmul``, laid out for the view's memory: the copy
    that makes the view a matrix (im2col) keeps its fastest axis innermost, and the view
    is the left factor where that axis is contracted, the right one where it is kept.
    None where the product is not one matrix product."""
    if len(set(view)) != len(view) or len(set(other)) != len(other) or len(set(out)) != len(out):
        return None
    v_only = tuple(i for i in view if i not in other)
    o_only = tuple(i for i in other if i not in view)
    batch = tuple(i for i in out if i in view and i in other)
    if any(i not in out for i in v_only + o_only) or set(out) != set(batch + v_only + o_only):
        return None
    read_view, read_other = steps
    decided: list[tuple[Any, ...]] = []  # the layout, decided on the first call
    permute, reshape, matmul = lib.array_functions()

    def run(env: Env) -> Array:
        v, o = read_view(env), read_other(env)
        if not decided:  # threads may both decide: the same layout, appended whole
            # torch's strides count elements, NumPy's bytes: only their order matters
            strides = v.strides if lib.xp is np else v.stride()
            decided.append(_im2col(strides, view, other, out, sizes))
        vp, vs, op, os_, view_left, shape, final = decided[0]
        a = reshape(permute(v, vp), vs)  # the one copy: im2col, in the view's memory order
        b = reshape(permute(o, op), os_)
        value = reshape(matmul(a, b) if view_left else matmul(b, a), shape)
        return value if final == tuple(range(len(final))) else _contiguous(permute(value, final))

    return run


def _im2col(strides: tuple[int, ...], view: tuple[str, ...], other: tuple[str, ...],
            out: tuple[str, ...], sizes: Sizes) -> tuple[Any, ...]:
    """How ``window_product`` lays out a view of ``strides`` and the other operand: the
    axis orders and matrix shapes of both, whether the view is the left factor, and the
    result's shape and final axis order."""
    batch = tuple(i for i in out if i in view and i in other)
    contracted = tuple(i for i in view if i in other and i not in out)
    v_only = tuple(i for i in view if i not in other)
    o_only = tuple(i for i in other if i not in view)
    # the view's axes by decreasing |stride|, longer axes later among equal strides
    rank = {i: (-abs(s), sizes[i]) for i, s in zip(view, strides)}
    by_memory = sorted(view, key=lambda i: rank[i])
    kept = tuple(i for i in by_memory if i in v_only)
    summed = tuple(i for i in by_memory if i in contracted)
    view_left = by_memory[-1] in contracted
    lead: tuple[str, ...] = ()
    if not view_left and not batch and out[0] in kept and len(kept) > 1:
        # other (o_only, summed) @ view (lead, summed, kept): one product per value of
        # out's first index (a convolution's batch), laid out as out wants it
        lead, kept = (out[0],), tuple(i for i in kept if i != out[0])
    if view_left:  # view (batch, kept, summed) @ other (batch, summed, o_only)
        v_axes, o_axes = batch + kept + summed, batch + summed + o_only
        natural = batch + kept + o_only
    else:  # other (batch, o_only, summed) @ view (batch, summed, kept)
        v_axes, o_axes = batch + lead + summed + kept, batch + o_only + summed
        natural = batch + lead + o_only + kept
    nb = _count(sizes, batch + lead)
    n_kept, n_summed, n_other = _count(sizes, kept), _count(sizes, summed), _count(sizes, o_only)
    v_shape = (nb, n_kept, n_summed) if view_left else (nb, n_summed, n_kept)
    o_shape = (nb, n_summed, n_other) if view_left else (_count(sizes, batch), n_other, n_summed)
    return (tuple(view.index(i) for i in v_axes), v_shape,
            tuple(other.index(i) for i in o_axes), o_shape, view_left,
            tuple(sizes[i] for i in natural), tuple(natural.index(i) for i in out))

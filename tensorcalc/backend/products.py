"""Products that are not general contractions, run directly on NumPy: one matrix
product (``np.matmul``, laid out so that nothing is copied after BLAS) and elementwise
products. ``run.py`` picks them where a term's operands allow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]


def matmul(sizes: Sizes, indices: list[tuple[str, ...]], operands: list[Step],
           out: tuple[str, ...]) -> Step | None:
    """A product that is one matrix product once the operands over the same axes are
    multiplied elementwise (``H_bar[k,q] X[k,p] (1 - H[k,q]^2)``): run as ``np.matmul``
    with the operands in the order that makes the result C-ordered in ``out``'s order,
    so that nothing is copied afterwards. None for any other product."""
    groups: dict[tuple[str, ...], list[Step]] = {}
    for idx, step in zip(indices, operands):
        groups.setdefault(idx, []).append(step)
    if any(len(set(idx)) != len(idx) for idx in groups):
        return None
    # An operand over a subset of another's axes (the weights s[k] of X[k,p] s[k] X[k,q])
    # is multiplied into that one, broadcast: X[k,p] s[k], then one matrix product.
    for idx in sorted(groups, key=len):
        wider = next((g for g in groups if set(idx) < set(g)), None)
        if wider is not None:
            # their product first, at their own size, then one pass over the wider
            groups[wider].append(broadcast(elementwise(groups.pop(idx)), idx, wider, sizes))
    if len(groups) != 2:
        return None
    (ia, a_steps), (ib, b_steps) = groups.items()
    if any(i not in out for i in set(ia) ^ set(ib)) or not set(out) <= set(ia) | set(ib):
        return None  # an index summed within one side, or one no operand has
    batch = tuple(i for i in out if i in ia and i in ib)
    contracted = tuple(i for i in ia if i in ib and i not in out)
    a_only = tuple(i for i in ia if i not in ib)
    b_only = tuple(i for i in ib if i not in ia)
    if out == batch + b_only + a_only:  # swap, so that the result is laid out as out
        ia, ib, a_steps, b_steps, a_only, b_only = ib, ia, b_steps, a_steps, b_only, a_only
    natural = batch + a_only + b_only
    a_order = tuple(ia.index(i) for i in batch + a_only + contracted)
    b_order = tuple(ib.index(i) for i in batch + contracted + b_only)
    size = sizes

    def count(names: tuple[str, ...]) -> int:
        n = 1
        for i in names:
            n *= size[i]
        return n

    a_shape: tuple[int, ...] = (count(batch), count(a_only), count(contracted))
    b_shape: tuple[int, ...] = (count(batch), count(contracted), count(b_only))
    if not batch:
        a_shape, b_shape = a_shape[1:], b_shape[1:]
    shape = tuple(size[i] for i in natural)
    final = tuple(natural.index(i) for i in out)
    a_side, b_side = elementwise(a_steps), elementwise(b_steps)
    matmul, identity = np.matmul, tuple(range(len(final)))

    def run(env: Env) -> Array:
        a = a_side(env).transpose(a_order).reshape(a_shape)
        b = b_side(env).transpose(b_order).reshape(b_shape)
        value = matmul(a, b).reshape(shape)
        return value if final == identity else value.transpose(final).copy()

    return run

def broadcast(step: Step, have: tuple[str, ...], want: tuple[str, ...], sizes: Sizes) -> Step:
    """``step``'s value (axes ``have``) laid out to multiply an array over ``want``:
    transposed to ``want``'s order, with length-1 axes where it has none."""
    order = tuple(have.index(i) for i in want if i in have)
    shape = tuple(sizes[i] if i in have else 1 for i in want)
    if order == tuple(range(len(have))):
        return lambda env: step(env).reshape(shape)
    return lambda env: step(env).transpose(order).reshape(shape)


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

"""Index arithmetic at run time (SPEC §8): reads through subscripts, and scatter-adds.

A read ``x[i+k]`` is a view of ``x`` with one axis per index of its subscripts (``i``,
``k``): on NumPy a strided view (``as_strided``) of ``x``, padded with zeros where a read
falls outside it; elsewhere, and wherever an index array picks the positions
(``E[t[n], j]``), an advanced-indexing gather. No loops over elements, no shift or
one-hot matrices. A shifted delta that survives simplification (``delta[p, t[n]]``,
``delta[p, 2*i+k]``) is a scatter-add of the product of the other factors into axis ``p``:
a sorted segment sum on NumPy, ``index_add_`` on torch, ``.at[].add`` on JAX,
``cupyx.scatter_add`` on CuPy.

>>> import numpy as np
>>> from tensorcalc.ir import Affine
>>> read = make_reader((Affine((("i", 1), ("k", 1))),), ("i", "k"), {"i": 3, "k": 2}, (4,),
...                    np, "x")
>>> read(np.arange(4.0))
array([[0., 1.],
       [1., 2.],
       [2., 3.]])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import prod
from typing import Any

import numpy as np

from ..errors import InputError
from ..ir import Affine, Gather, Subscript
from .arrays import torch_namespace

Array = Any
Reader = Callable[..., Array]  # (array, index arrays by name) -> the view


def _bounds(sub: Affine | str, sizes: Mapping[str, int]) -> tuple[int, int]:
    """The least and greatest value of an affine subscript over its indices' ranges."""
    if isinstance(sub, str):
        return 0, sizes[sub] - 1
    lo = hi = sub.offset
    for n, c in sub.parts:
        reach = c * (sizes[n] - 1)
        lo, hi = lo + min(reach, 0), hi + max(reach, 0)
    return lo, hi


def _coefficients(sub: Subscript) -> dict[str, int]:
    if isinstance(sub, str):
        return {sub: 1}
    if isinstance(sub, Affine):
        return dict(sub.parts)
    return {}


def _over(sub: Subscript, axes: tuple[str, ...], sizes: Mapping[str, int],
          index: Mapping[str, Array], xp: Any, where: dict[str, Any]) -> Array:
    """The value of a subscript at every point of the grid ``axes`` (broadcastable to it):
    the index array's entries, or the affine expression of the grid's coordinates."""
    if isinstance(sub, Gather):
        order = [sub.indices.index(i) for i in axes if i in sub.indices]
        t = index[sub.name]
        t = xp.permute_dims(t, tuple(order)) if order != sorted(order) else t
        return xp.reshape(t, tuple(sizes[i] if i in sub.indices else 1 for i in axes))
    total: Array = xp.asarray(sub.offset if isinstance(sub, Affine) else 0, **where)
    for n, c in _coefficients(sub).items():
        total = total + c * xp.reshape(xp.arange(sizes[n], **where),
                                       tuple(sizes[n] if i == n else 1 for i in axes))
    return total


def padding(axes: tuple[Subscript, ...], sizes: Mapping[str, int],
            shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """The zeros each axis of an array of ``shape`` needs before and after it for every
    affine read at ``axes`` to fall inside (none for an index array's axis)."""
    bounds = [None if isinstance(s, Gather) else _bounds(s, sizes) for s in axes]
    return [(0, 0) if b is None else (max(0, -b[0]), max(0, b[1] - (n - 1)))
            for b, n in zip(bounds, shape)]


def make_reader(axes: tuple[Subscript, ...], out: tuple[str, ...], sizes: Mapping[str, int],
                shape: tuple[int, ...], xp: Any, name: str) -> Reader:
    """A function from the array ``name`` (of ``shape``) to its values at the subscripts
    ``axes``, laid out over the indices ``out``; zero where an affine read falls outside the
    array. Index arrays are passed by name as keyword arguments."""
    grid = tuple(sizes[i] for i in out)
    if 0 in grid:
        return lambda array, **_: xp.zeros(grid, dtype=array.dtype)
    pads = padding(axes, sizes, shape)
    padded_shape = tuple(n + lo + hi for n, (lo, hi) in zip(shape, pads))
    empty = 0 in shape
    padded = any(p != (0, 0) for p in pads)

    def pad(array: Array) -> Array:
        if not padded:
            return array
        if empty:
            return xp.zeros(padded_shape, dtype=array.dtype)
        return zero_padded(array, pads, xp)

    gathers = any(isinstance(s, Gather) for s in axes)
    if (xp is np or torch_namespace(xp)) and not gathers:
        coefs = [_coefficients(s) for s in axes]
        start = tuple((s.offset if isinstance(s, Affine) else 0) + lo
                      for s, (lo, _) in zip(axes, pads))
        strides_el = [0] * len(out)
        for d, cs in enumerate(coefs):
            for n, c in cs.items():
                if sizes[n] > 1:  # an index of one value moves nothing (x[2**70 * i])
                    strides_el[out.index(n)] += c * prod(padded_shape[d + 1:])
        flat = int(np.ravel_multi_index(start, padded_shape)) if padded_shape else 0

        def strided(array: Array, **_: Array) -> Array:
            base = np.ascontiguousarray(pad(array)).reshape(-1)
            step = base.itemsize
            return np.lib.stride_tricks.as_strided(
                base[flat:], grid, tuple(s * step for s in strides_el), writeable=False)

        if xp is np:
            return strided
        import torch

        # torch has no negative strides: an axis read backwards (``p-k``) is read forwards
        # from its far end, then flipped (a copy of the window, which its product makes
        # anyway)
        backwards = tuple(g for g, st in enumerate(strides_el) if st < 0)
        first = flat + sum(strides_el[g] * (grid[g] - 1) for g in backwards)
        forwards = tuple(abs(st) for st in strides_el)

        def strided_torch(array: Array, **_: Array) -> Array:
            # a view, as on NumPy (torch strides count elements); autograd and vmap follow
            base = pad(array).contiguous().reshape(-1)
            # as_strided counts from the storage's start: a slice's own offset first
            view = torch.as_strided(base, grid, forwards, first + base.storage_offset())
            return torch.flip(view, backwards) if backwards else view

        return strided_torch

    # Advanced indexing: one integer array per axis, broadcast over the grid ``out``.
    def gathered(array: Array, **index: Array) -> Array:
        where = _device(array)
        for d, s in enumerate(axes):
            if isinstance(s, Gather):
                check_index_array(s.name, index[s.name], shape[d], name, d, xp)
        subscripts = tuple(_over(s, out, sizes, index, xp, where) + lo
                           for s, (lo, _) in zip(axes, pads))
        value = pad(array)[subscripts]
        return xp.broadcast_to(value, grid) if value.shape != grid else value

    return gathered


def _device(array: Array) -> dict[str, Any]:
    device = getattr(array, "device", None)
    return {} if device is None or isinstance(array, np.ndarray) else {"device": device}


def check_index_array(tensor: str, t: Array, length: int, name: str, axis: int,
                      xp: Any = np) -> None:
    """Every value of the index array ``t`` must pick a position of axis ``axis`` of
    ``name`` (of length ``length``): negative values do not wrap around. Its least and
    greatest values come back in one transfer (one wait for a GPU)."""
    if prod(t.shape) == 0:
        return
    try:
        lo, hi = (int(v) for v in xp.stack([xp.min(t), xp.max(t)]).tolist())
    except Exception:  # noqa: BLE001 - a traced value (inside jax.jit): not checked here
        return
    if lo < 0 or hi >= length:
        bad = lo if lo < 0 else hi
        raise InputError(f"index array {tensor} holds {bad}, outside axis {axis + 1} of {name} "
                         f"(positions 0 to {length - 1}); negative values do not wrap around")


def scatter_add(xp: Any, values: Array, target: Array, rows: int) -> Array:
    """``out[target[g]] += values[g]`` for each row g of ``values`` (g, r), into ``rows``
    rows; targets outside 0..rows-1 are dropped."""
    r = values.shape[1]
    if xp is np:
        keep = (target >= 0) & (target < rows)
        if not keep.all():
            target, values = target[keep], values[keep]
        out = np.zeros((rows, r), dtype=values.dtype)
        if target.size == 0:
            return out
        # Rows hit once are copied; only the repeated ones are summed (a segment sum).
        order = np.argsort(target, kind="stable")
        ordered = target[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        counts = np.diff(np.r_[starts, ordered.size])
        once = starts[counts == 1]
        out[ordered[once]] = values[order[once]]
        many = starts[counts > 1]
        if many.size:
            picked = np.concatenate([order[s:s + c] for s, c in
                                     zip(many.tolist(), counts[counts > 1].tolist())])
            groups = np.r_[0, np.cumsum(counts[counts > 1])[:-1]]
            out[ordered[many]] = np.add.reduceat(values[picked], groups, axis=0)
        return out
    dump = xp.where((target >= 0) & (target < rows), target, rows)  # a row thrown away
    if hasattr(values, "index_add_"):  # torch: in place into zeros of its own (batched
        # under vmap, like values), not index_add's copy of them
        out = values.new_zeros((rows + 1, r))
        out.index_add_(0, dump, values)
        return out[:rows]
    out = xp.zeros((rows + 1, r), dtype=values.dtype, **_device(values))
    if hasattr(out, "at"):  # JAX
        return out.at[dump].add(values)[:rows]
    if type(out).__module__.startswith("cupy"):  # CuPy: np.add.at's rule, by atomic adds
        import cupyx

        cupyx.scatter_add(out, dump, values)
        return out[:rows]
    raise InputError(f"a scatter-add (the derivative of an index-array read) is not available "
                     f"for arrays of {xp.__name__}; use NumPy, torch or JAX")


def make_scatter(shifts: tuple[tuple[str, Affine | Gather], ...], have: tuple[str, ...],
                 kept: tuple[str, ...], out: tuple[str, ...], sizes: Mapping[str, int],
                 xp: Any) -> Callable[..., Array]:
    """The product of a term's other factors, over ``have``, sent through the shifted
    deltas ``delta[p, sub]`` in ``shifts``: the value over ``out`` (the targets ``p``, then
    the other axes), where the indices of the subscripts not in ``kept`` are summed."""
    grid = tuple(dict.fromkeys(n for _, s in shifts for n in s.names))
    free_grid = tuple(i for i in grid if i in kept)
    rest = tuple(i for i in have if i not in grid)
    targets = tuple(p for p, _ in shifts)
    g = prod(sizes[i] for i in grid)
    r = prod(sizes[i] for i in rest)
    rows_shape = tuple(sizes[i] for i in targets + free_grid)
    rows = prod(rows_shape)
    perm = tuple(have.index(i) for i in grid + rest)
    produced = targets + free_grid + rest
    final = tuple(produced.index(i) for i in out)
    def run(values: Array, **index: Array) -> Array:
        where = _device(values)
        linear: Array = xp.asarray(0, **where)
        inside: Array = xp.asarray(True, **where)
        for p, s in shifts:
            if isinstance(s, Gather):
                check_index_array(s.name, index[s.name], sizes[p], "the derivative", 0,
                                  xp)
            t = _over(s, grid, sizes, index, xp, where)
            inside = inside & (t >= 0) & (t < sizes[p])
            linear = linear * sizes[p] + t
        for i in free_grid:
            linear = linear * sizes[i] + _over(i, grid, sizes, index, xp, where)
        linear = xp.where(inside, linear, -1)
        linear = xp.reshape(xp.broadcast_to(linear, tuple(sizes[i] for i in grid)), (g,))
        flat = xp.reshape(xp.permute_dims(values, perm), (g, r))
        result = scatter_add(xp, flat, linear, rows)
        result = xp.reshape(result, rows_shape + tuple(sizes[i] for i in rest))
        return xp.permute_dims(result, final) if final != tuple(range(len(final))) else result

    return run


def make_fit(shape: tuple[int, ...], want: tuple[int, ...], xp: Any) -> Callable[[Array], Array]:
    """A plain read of an array whose axes differ from its indices' sizes (a given size, or
    one a shifted read shrank): the first ``want`` positions of each axis, zero past its
    end."""
    cut = tuple(slice(0, min(a, b)) for a, b in zip(shape, want))
    pads = [(0, max(0, b - a)) for a, b in zip(shape, want)]

    def fit(array: Array) -> Array:
        value = array[cut]
        if not any(hi for _, hi in pads):
            return value
        return zero_padded(value, pads, xp)

    return fit


def zero_padded(array: Array, pads: list[tuple[int, int]], xp: Any) -> Array:
    """``array`` with ``pads[d] = (before, after)`` zeros on each axis ``d``. Never a write
    into an array that torch's ``vmap`` or autograd could see: ``F.pad`` on torch."""
    if xp is np:
        return np.pad(array, pads)
    if torch_namespace(xp):  # functional (vmap and autograd follow it), last axis first
        import torch

        return torch.nn.functional.pad(array, [n for lo_hi in reversed(pads) for n in lo_hi])
    shape = tuple(array.shape)
    out = xp.zeros(tuple(n + lo + hi for n, (lo, hi) in zip(shape, pads)), dtype=array.dtype,
                   **_device(array))
    window = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, shape))
    if hasattr(out, "at"):  # JAX: arrays are immutable
        return out.at[window].set(array)
    out[window] = array
    return out


def make_mask(i: str, sub: Affine | Gather, free: tuple[str, ...], sizes: Mapping[str, int],
              xp: Any, dtype: Any, where: dict[str, Any]) -> Callable[..., Array]:
    """``delta[i, sub]`` as a 0/1 array over ``free`` (on the device ``where`` names)."""
    def run(**index: Array) -> Array:
        hit = _over(i, free, sizes, index, xp, where) == _over(sub, free, sizes, index, xp, where)
        return xp.astype(xp.broadcast_to(hit, tuple(sizes[m] for m in free)), dtype)

    return run


def index_names(axes: tuple[Subscript, ...]) -> tuple[str, ...]:
    """The index arrays a read uses."""
    return tuple(dict.fromkeys(s.name for s in axes if isinstance(s, Gather)))


# --- plain kernels: NumPy only, self-contained, copied into ``to_python()``'s code ---------
# A subscript is encoded as data there: an affine one as ``(((index, coef), ...), offset)``,
# an index array as ``(name, (index, ...))``.


def encode(sub: Subscript) -> tuple[Any, ...]:
    """A subscript as the plain kernels take it."""
    if isinstance(sub, str):
        return (((sub, 1),), 0)
    if isinstance(sub, Gather):
        return (sub.name, sub.indices)
    return (sub.parts, sub.offset)


def shrink_sizes(n: dict[str, int], reads: list[tuple[Any, Any, int, str]],
                 fixed: set[str]) -> dict[str, int]:
    """SPEC §8 rule 2 on the index sizes ``n`` (a dict, updated): an index that ``n`` does
    not size yet is sized by each read whose other indices are sized, to the largest range
    from 0 at which the read stays inside its array; one that a tensor sized already is
    shrunk by reads of it alone (``x[i+1]``). Reads with an index in ``fixed`` (a given
    size) do neither: they may read zeros past the ends. ``reads`` holds ``(length,
    parts, offset, text)``; a length that is a string is the size of that index (a
    shifted delta's target). Raises ValueError naming the index or the read where no
    range is left, or where a read without a given index falls outside."""
    plain = set(n)
    def length(of: int | str) -> int | None:
        return n.get(of) if isinstance(of, str) else of

    def reach(parts: tuple[tuple[str, int], ...], skip: str | None) -> tuple[int, int]:
        lo = hi = 0
        for v, k in parts:
            if v != skip:
                lo += min(k * (n[v] - 1), 0)
                hi += max(k * (n[v] - 1), 0)
        return lo, hi

    for _ in range(64 * (len(reads) + 1)):
        changed = False
        for of, parts, offset, text in reads:
            size = length(of)
            if size is None:
                continue
            if any(v in fixed for v, _ in parts):
                continue
            for u, c in parts:
                if any(v not in n for v, _ in parts if v != u) or \
                        (u in plain and len(parts) > 1):
                    continue  # see the docstring
                lo, hi = reach(parts, u)
                bound = (size - 1 - hi - offset) // c + 1 if c > 0 else (lo + offset) // -c + 1
                if u not in n or bound < n[u]:
                    if bound <= 0:
                        raise ValueError(
                            f"index {u} has no values at which {text} stays inside its "
                            f"length {size}; give the size of {u} (sizes= or --size) to read "
                            "zeros past the ends")
                    n[u] = bound
                    changed = True
        if not changed:
            break
    for of, parts, offset, text in reads:
        size = length(of)
        if size is None or isinstance(of, str) or any(v in fixed or v not in n
                                                       for v, _ in parts):
            continue  # a shifted delta's positions outside its index's range are dropped
        lo, hi = reach(parts, None)
        if offset + lo < 0 or offset + hi > size - 1:
            where = offset + lo if offset + lo < 0 else offset + hi
            names = ", ".join(v for v, _ in parts) or "its indices"
            raise ValueError(f"{text} reads position {where}, outside 0..{size - 1}; give the "
                             f"sizes of {names} (sizes= or --size) to read zeros past the ends")
    return n


def fit(array, shape):  # type: ignore[no-untyped-def]
    """The first ``shape`` positions of each axis of ``array``, zero past its end."""
    array = array[tuple(slice(0, k) for k in shape)]
    pads = [(0, k - a) for a, k in zip(array.shape, shape)]
    return np.pad(array, pads) if any(p for _, p in pads) else array


def read_window(array, subs, out, n, index):  # type: ignore[no-untyped-def]
    """``array`` read at the encoded subscripts ``subs``, over the indices ``out`` (sizes
    ``n``); zero where an affine subscript falls outside; index arrays in ``index``."""
    pads, grids = [], []
    for axis, sub in enumerate(subs):
        if isinstance(sub[0], str):
            name, own = sub
            t = np.asarray(index[name])
            if t.size and (t.min() < 0 or t.max() >= array.shape[axis]):
                bad = t.min() if t.min() < 0 else t.max()
                raise ValueError(f"index array {name} holds {bad}, outside axis {axis + 1} "
                                 f"(positions 0 to {array.shape[axis] - 1})")
            t = np.transpose(t, [own.index(i) for i in out if i in own])
            grids.append(t.reshape([n[i] if i in own else 1 for i in out]))
            pads.append((0, 0))
            continue
        parts, offset = sub
        position = np.asarray(offset)
        for v, c in parts:
            position = position + c * np.arange(n[v]).reshape(
                [n[i] if i == v else 1 for i in out])
        lo = max(0, -int(position.min())) if position.size else 0
        hi = max(0, int(position.max()) - (array.shape[axis] - 1)) if position.size else 0
        pads.append((lo, hi))
        grids.append(position + lo)
    if any(p != (0, 0) for p in pads):
        array = np.pad(array, pads)
    return np.broadcast_to(array[tuple(grids)], [n[i] for i in out])


def scatter_shifts(values, shifts, grid, kept, rest, n, index):  # type: ignore[no-untyped-def]
    """``values`` (over ``grid + rest``) sent through the shifted deltas ``delta[p, sub]``
    of ``shifts`` (encoded subscripts): the sum, over ``targets + kept + rest``, of the
    values at the grid points each subscript sends to position p (outside: dropped)."""
    shape = [n[i] for i in grid]
    linear = np.zeros(shape, dtype=np.int64)
    inside = np.ones(shape, dtype=bool)
    for p, sub in shifts:
        if isinstance(sub[0], str):
            name, own = sub
            t = np.transpose(np.asarray(index[name]), [own.index(i) for i in grid if i in own])
            target = t.reshape([n[i] if i in own else 1 for i in grid])
        else:
            target = np.full([1] * len(grid), sub[1])
            for v, c in sub[0]:
                target = target + c * np.arange(n[v]).reshape(
                    [n[i] if i == v else 1 for i in grid])
        inside &= (target >= 0) & (target < n[p])
        linear = linear * n[p] + target
    for i in kept:
        linear = linear * n[i] + np.arange(n[i]).reshape([n[j] if j == i else 1 for j in grid])
    rows = int(np.prod([n[p] for p, _ in shifts] + [n[i] for i in kept]))
    width = int(np.prod([n[i] for i in rest]))
    flat = values.reshape(-1, width)[inside.reshape(-1)]
    linear = linear.reshape(-1)[inside.reshape(-1)]
    out = np.zeros((rows, width), dtype=values.dtype)
    order = np.argsort(linear, kind="stable")
    linear = linear[order]
    if linear.size:
        starts = np.flatnonzero(np.r_[True, linear[1:] != linear[:-1]])
        out[linear[starts]] = np.add.reduceat(flat[order], starts, axis=0)
    return out.reshape([n[p] for p, _ in shifts] + [n[i] for i in kept] + [n[i] for i in rest])


def shift_mask(i, sub, free, n, index, dtype):  # type: ignore[no-untyped-def]
    """``delta[i, sub]`` (an encoded subscript) as a 0/1 array over ``free``."""
    if isinstance(sub[0], str):
        name, own = sub
        t = np.transpose(np.asarray(index[name]), [own.index(j) for j in free if j in own])
        value = t.reshape([n[j] if j in own else 1 for j in free])
    else:
        value = np.full([1] * len(free), sub[1])
        for v, c in sub[0]:
            value = value + c * np.arange(n[v]).reshape([n[j] if j == v else 1 for j in free])
    hit = np.arange(n[i]).reshape([n[j] if j == i else 1 for j in free]) == value
    return np.broadcast_to(hit, [n[j] for j in free]).astype(dtype)

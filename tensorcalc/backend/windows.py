"""Index arithmetic (docs/index-arithmetic.md): reads through subscripts, scatter-adds, masks and
the valid-size rule, each written once and used by both emitters: the runner calls these
functions, and ``to_python()`` copies their source into the code it writes (called with
``xp=np``), as it does the kernels of ``ops.kernels``. So each is a plain function of its
arguments; the one helper they share (``subscript_at``) and what differs between array
libraries (padding, a strided view) are passed in as arguments.

A subscript is encoded as data (``encode``): an affine one as ``(((index, coef), ...),
offset)``, an index array as ``(name, (index, ...))``.

A read ``x[i+k]`` is a view of ``x`` with one axis per index of its subscripts (``i``,
``k``): where the library has strided views (NumPy, torch), a view of ``x``'s memory,
padded with zeros where a read falls outside it; elsewhere, and wherever an index array
picks the positions (``E[t[n], j]``), an advanced-indexing gather. No loops over
elements, no shift or one-hot matrices. A shifted delta that survives simplification
(``delta[p, t[n]]``, ``delta[p, 2*i+k]``) is a scatter-add of the product of the other
factors into axis ``p``: a sorted segment sum on NumPy, ``index_add_`` on torch,
``.at[].add`` on JAX, ``cupyx.scatter_add`` on CuPy.

>>> import numpy as np
>>> subs, n = (encode(Affine((("i", 1), ("k", 1)))),), {"i": 3, "k": 2}
>>> layout = window_layout(subs, ("i", "k"), n, (4,))
>>> read_window(np.arange(4.0), subs, ("i", "k"), n, {}, layout, np, np.pad, subscript_at,
...             strided_view, {})
array([[0., 1.],
       [1., 2.],
       [2., 3.]])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..ir import Affine, Gather, Subscript, subscript_text

Array = Any
Encoded = tuple[Any, ...]  # a subscript as the functions here take it (``encode``)
Sizes = Mapping[str, int]
Index = Mapping[str, Array]  # index arrays by name
Where = dict[str, Any]  # the device new arrays go to (``device=``), or nothing
# the window's shape; the zeros before and after each axis (None: none); the flat start
# and the steps of a strided view (None: no view)
Layout = tuple[tuple[int, ...], list[tuple[int, int]] | None, int | None,
               tuple[int, ...] | None]


def encode(sub: Subscript) -> Encoded:
    """A subscript as the functions here take it."""
    if isinstance(sub, str):
        return (((sub, 1),), 0)
    if isinstance(sub, Gather):
        return (sub.name, sub.indices)
    return (sub.parts, sub.offset)


def index_names(axes: tuple[Subscript, ...]) -> tuple[str, ...]:
    """The index arrays a read uses."""
    return tuple(dict.fromkeys(s.name for s in axes if isinstance(s, Gather)))


def read_text(tensor: str | None, axis: int | str, sub: Affine) -> str:
    """A read as the messages show it: ``x[..i+k..] (axis 1)``, ``delta[p,2*i+k]``."""
    if tensor is None:
        return f"delta[{axis},{subscript_text(sub)}]"
    return f"{tensor}[..{subscript_text(sub)}..] (axis {int(axis) + 1})"


# --- the shared functions (copied into exported code: each uses only its arguments) ----


def shrink_sizes(n: dict[str, int], reads: list[tuple[Any, Any, int, str]],
                 fixed: set[str]) -> dict[str, int]:
    """The valid rule (docs/index-arithmetic.md) on index sizes ``n`` (a dict, updated): an index
    that ``n`` does not size yet is sized by each read whose other indices are sized, to the largest
    range from 0 at which the read stays inside its array; one that a tensor sized already is
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



def size_by_given_reads(n: dict[str, int], reads: list[tuple[Any, Any, int, str]],
                        fixed: set[str], outputs: tuple[str, ...]) -> bool:
    """The valid rule (docs/index-arithmetic.md) for an index of the result (in ``outputs``) that
    only reads with a given index could size, once ``shrink_sizes`` has sized what it can: a pooling
    window's ``X[2*i+a]`` with the size of ``a`` given sizes ``i`` to the largest range
    from 0 at which the read stays inside its array for every value of the others
    (Tullio's floor((N - A)/s) + 1). Only where some range does (the others' reach alone
    stays inside); otherwise the index stays unsized and the caller asks for its size.
    An index summed inside is never sized so: a derivative may hold a copy of a window's
    index under another name (``max[m](x[2*k+m])``), whose range is the window's, not
    what the read allows. ``n`` is updated; returns whether an index was sized, after
    which ``shrink_sizes`` runs again (reads it now sizes)."""
    changed = False
    for of, parts, offset, _text in reads:
        size = n.get(of) if isinstance(of, str) else of
        unsized = [(u, c) for u, c in parts if u not in n]
        if size is None or len(unsized) != 1 or unsized[0][0] not in outputs \
                or not any(v in fixed for v, _ in parts):
            continue
        u, c = unsized[0]
        lo = offset + sum(min(k * (n[v] - 1), 0) for v, k in parts if v != u)
        hi = offset + sum(max(k * (n[v] - 1), 0) for v, k in parts if v != u)
        if lo < 0 or hi > size - 1:
            continue  # zeros are read whatever the range of u: none to infer
        n[u] = (size - 1 - hi) // c + 1 if c > 0 else lo // -c + 1
        changed = True
    return changed


def subscript_at(sub: Encoded, grid: tuple[str, ...], n: Sizes, index: Index, xp: Any,
                 where: Where) -> Array:
    """The value of the encoded subscript ``sub`` at every point of the grid of indices
    ``grid`` (sizes ``n``), broadcastable to it: the entries of its index array (in
    ``index``), or its affine expression of the grid's coordinates. ``where`` puts new
    arrays on the device of the others."""
    if isinstance(sub[0], str):
        name, own = sub
        order = tuple(own.index(i) for i in grid if i in own)
        t = index[name]
        t = xp.permute_dims(t, order) if order != tuple(sorted(order)) else t
        return xp.reshape(t, tuple(n[i] if i in own else 1 for i in grid))
    parts, offset = sub
    total = xp.asarray(offset, **where)
    for v, c in parts:
        total = total + c * xp.reshape(xp.arange(n[v], **where),
                                       tuple(n[i] if i == v else 1 for i in grid))
    return total


def window_layout(subs: tuple[Encoded, ...], out: tuple[str, ...], n: Sizes,
                  shape: tuple[int, ...]) -> Layout:
    """How an array of ``shape`` is read at the encoded subscripts ``subs`` over the
    indices ``out``: the shape of the window; the zeros each axis needs before and after
    it for every affine read to fall inside (none for an index array's axis), or None
    where none does; and, where no index array picks positions, the flat position of the
    first element read in the padded array and each index's step through it (else None,
    None)."""
    pads = []
    for sub, length in zip(subs, shape):
        if isinstance(sub[0], str):
            pads.append((0, 0))
            continue
        parts, offset = sub
        lo = offset + sum(min(c * (n[v] - 1), 0) for v, c in parts)
        hi = offset + sum(max(c * (n[v] - 1), 0) for v, c in parts)
        pads.append((max(0, -lo), max(0, hi - (length - 1))))
    grid = tuple(n[i] for i in out)
    padded = pads if any(p != (0, 0) for p in pads) else None
    if any(isinstance(sub[0], str) for sub in subs):
        return grid, padded, None, None
    start, steps, stride = 0, [0] * len(out), 1
    for d in reversed(range(len(subs))):
        parts, offset = subs[d]
        start += (offset + pads[d][0]) * stride
        for v, c in parts:
            if n[v] > 1:  # an index of one value moves nothing (x[2**70 * i])
                steps[out.index(v)] += c * stride
        stride *= shape[d] + pads[d][0] + pads[d][1]
    return grid, padded, start, tuple(steps)


def strided_view(array: Array, start: int, grid: tuple[int, ...], steps: tuple[int, ...],
                 xp: Any) -> Array:
    """The elements of ``array`` from the flat position ``start``, ``steps[g]`` elements
    apart along each axis ``g`` of ``grid``: a read-only view of its memory (NumPy)."""
    base = xp.ascontiguousarray(array).reshape(-1)
    size = base.itemsize
    return xp.lib.stride_tricks.as_strided(base[start:], grid, [s * size for s in steps],
                                           writeable=False)


def read_window(array: Array, subs: tuple[Encoded, ...], out: tuple[str, ...], n: Sizes,
                index: Index, layout: Layout, xp: Any, pad: Callable[..., Array],
                at: Callable[..., Array], view: Callable[..., Array] | None,
                where: Where) -> Array:
    """``array`` read at the encoded subscripts ``subs`` over the indices ``out`` (sizes
    ``n``), laid out by ``window_layout``: zero where an affine read falls outside it.
    ``index`` holds the index arrays by name (``check_index_array`` has checked them);
    ``pad`` pads with zeros as ``np.pad`` does, ``at`` is ``subscript_at``, and ``view``
    (``strided_view``, or None) reads a window that no index array picks as a view."""
    grid, pads, start, steps = layout
    if 0 in grid:
        return xp.zeros(grid, dtype=array.dtype, **where)
    if pads is not None:
        if 0 in array.shape:
            array = xp.zeros(tuple(k + lo + hi for k, (lo, hi) in zip(array.shape, pads)),
                             dtype=array.dtype, **where)
        else:
            array = pad(array, pads)
    if view is not None and start is not None:
        return view(array, start, grid, steps, xp)
    value = array[tuple(at(sub, out, n, index, xp, where) + (pads[d][0] if pads else 0)
                        for d, sub in enumerate(subs))]
    return xp.broadcast_to(value, grid) if tuple(value.shape) != grid else value


def check_index_array(name: str, t: Array, length: int, tensor: str, axis: int,
                      xp: Any) -> None:
    """Every value of the index array ``t`` (called ``name``) must pick a position of
    axis ``axis`` of ``tensor`` (of length ``length``): negative values do not wrap
    around; ValueError if one does not. Its least and greatest values come back in one
    transfer (one wait for a GPU); a traced value (inside ``jax.jit``) is not checked."""
    if 0 in tuple(t.shape):
        return
    try:
        lo, hi = (int(v) for v in xp.stack([xp.min(t), xp.max(t)]).tolist())
    except Exception:  # noqa: BLE001 - a traced value has no numbers to check
        return
    if lo < 0 or hi >= length:
        raise ValueError(f"index array {name} holds {lo if lo < 0 else hi}, outside axis "
                         f"{axis + 1} of {tensor} (positions 0 to {length - 1}); negative "
                         "values do not wrap around")


def fit(array: Array, shape: tuple[int, ...], pad: Callable[..., Array]) -> Array:
    """A plain read of an array whose axes differ from its indices' sizes (a given size,
    or one a shifted read shrank): the first ``shape`` positions of each axis, zero past
    its end (``pad`` pads as ``np.pad`` does)."""
    array = array[tuple(slice(0, k) for k in shape)]
    pads = [(0, k - a) for a, k in zip(array.shape, shape)]
    return pad(array, pads) if any(p for _, p in pads) else array


def scatter_add(xp: Any, values: Array, target: Array, rows: int, how: str) -> Array:
    """``out[target[g]] += values[g]`` for each row g of ``values`` (g, r), into ``rows``
    rows; targets outside 0..rows-1 are dropped. ``how``: ``segments`` (NumPy: rows hit
    once are copied, only the repeated ones summed), ``index_add`` (torch: in place into
    zeros of its own, batched under vmap like ``values``), ``at`` (JAX), ``cupyx`` (CuPy:
    ``np.add.at``'s rule, by atomic adds)."""
    r = values.shape[1]
    if how == "segments":
        keep = (target >= 0) & (target < rows)
        if not keep.all():
            target, values = target[keep], values[keep]
        out = xp.zeros((rows, r), dtype=values.dtype)
        if target.size == 0:
            return out
        order = xp.argsort(target, kind="stable")
        ordered = target[order]
        starts = xp.flatnonzero(xp.r_[True, ordered[1:] != ordered[:-1]])
        counts = xp.diff(xp.r_[starts, ordered.size])
        once = starts[counts == 1]
        out[ordered[once]] = values[order[once]]
        many = starts[counts > 1]
        if many.size:
            picked = xp.concatenate([order[s:s + c] for s, c in
                                     zip(many.tolist(), counts[counts > 1].tolist())])
            groups = xp.r_[0, xp.cumsum(counts[counts > 1])[:-1]]
            out[ordered[many]] = xp.add.reduceat(values[picked], groups, axis=0)
        return out
    dump = xp.where((target >= 0) & (target < rows), target, rows)  # a row thrown away
    if how == "index_add":
        out = values.new_zeros((rows + 1, r))
        out.index_add_(0, dump, values)
        return out[:rows]
    if how == "at":
        device = getattr(values, "device", None)
        out = xp.zeros((rows + 1, r), dtype=values.dtype,
                       **({} if device is None else {"device": device}))
        return out.at[dump].add(values)[:rows]
    if how == "cupyx":  # on CuPy's current device, as its arrays are
        import cupyx

        out = xp.zeros((rows + 1, r), dtype=values.dtype)
        cupyx.scatter_add(out, dump, values)
        return out[:rows]
    raise ValueError(f"no scatter-add called {how!r}")


def scatter_targets(shifts: tuple[tuple[str, Encoded], ...], grid: tuple[str, ...],
                    kept: tuple[str, ...], n: Sizes, index: Index, xp: Any,
                    at: Callable[..., Array], where: Where) -> Array:
    """Where the shifted deltas ``delta[p, sub]`` of ``shifts`` (encoded subscripts) send
    each point of ``grid``: the flat position over ``targets + kept`` (row-major), -1
    where a subscript falls outside its target's range. ``at`` is ``subscript_at``."""
    linear = xp.asarray(0, **where)
    inside = xp.asarray(True, **where)
    for p, sub in shifts:
        t = at(sub, grid, n, index, xp, where)
        inside = inside & (t >= 0) & (t < n[p])
        linear = linear * n[p] + t
    for i in kept:
        linear = linear * n[i] + at((((i, 1),), 0), grid, n, index, xp, where)
    g = 1
    for i in grid:
        g *= n[i]
    linear = xp.where(inside, linear, -1)
    return xp.reshape(xp.broadcast_to(linear, tuple(n[i] for i in grid)), (g,))


def scatter_shifts(values: Array, linear: Array, targets: tuple[str, ...],
                   rest: tuple[str, ...], n: Sizes, xp: Any, add: Callable[..., Array],
                   how: str) -> Array:
    """``values`` (over a grid, then ``rest``) sent to the flat positions ``linear`` over
    ``targets`` (``scatter_targets``): the sum over ``targets + rest`` of the values each
    position receives (-1: dropped). ``add`` is ``scatter_add``, run the way ``how``
    names."""
    r, rows = 1, 1
    for i in rest:
        r *= n[i]
    for i in targets:
        rows *= n[i]
    out = add(xp, xp.reshape(values, (linear.shape[0], r)), linear, rows, how)
    return xp.reshape(out, tuple(n[i] for i in targets + rest))


def scatter_into(total: Array, axes: tuple[str, ...], values: Array, linear: Array,
                 targets: tuple[str, ...], rest: tuple[str, ...], n: Sizes, xp: Any,
                 how: str) -> Array:
    """``total`` (over ``axes``) plus what ``scatter_shifts`` would give over ``targets +
    rest``, added at the positions only: in place into ``total`` on NumPy (which must be
    a fresh array), by ``index_put`` on torch and ``.at[].add`` on JAX."""
    dims = tuple(n[i] for i in targets)
    perm = tuple(axes.index(i) for i in targets + rest)
    back = tuple(perm.index(k) for k in range(len(perm)))
    values = xp.reshape(values, (linear.shape[0],) + tuple(n[i] for i in rest))
    inside = linear >= 0
    if how == "segments":
        picked = xp.flatnonzero(inside)
        if picked.size < linear.shape[0]:
            linear, values = linear[picked], values[picked]
        xp.add.at(xp.transpose(total, perm), xp.unravel_index(linear, dims), values)
        return total
    place = list(xp.unravel_index(xp.where(inside, linear, 0), dims))
    if how == "at":  # positive and past the end: dropped
        place[0] = xp.where(inside, place[0], dims[0])
        view = xp.transpose(total, perm).at[tuple(place)].add(values, mode="drop")
        return xp.transpose(view, back)
    keep = xp.reshape(inside, inside.shape + (1,) * len(rest))
    values = xp.where(keep, values, xp.zeros_like(values))
    view = xp.permute_dims(total, perm).index_put(tuple(place), values, accumulate=True)
    return xp.permute_dims(view, back)


def shift_mask(i: str, sub: Encoded, free: tuple[str, ...], n: Sizes, index: Index,
               dtype: Any, xp: Any, at: Callable[..., Array], where: Where) -> Array:
    """``delta[i, sub]`` (an encoded subscript) as a 0/1 array over ``free``."""
    hit = at((((i, 1),), 0), free, n, index, xp, where) == at(sub, free, n, index, xp, where)
    return xp.astype(xp.broadcast_to(hit, tuple(n[j] for j in free)), dtype)


def condition_hits(op: str, a: Encoded, b: Encoded, free: tuple[str, ...], n: Sizes,
                   index: Index, xp: Any, at: Callable[..., Array], where: Where) -> Array:
    """``[a op b]`` (two encoded subscripts) as a boolean array over ``free``."""
    left, right = at(a, free, n, index, xp, where), at(b, free, n, index, xp, where)
    if op == "!=":
        hit = left != right
    elif op == "<":
        hit = left < right
    elif op == "<=":
        hit = left <= right
    elif op == ">":
        hit = left > right
    else:
        hit = left >= right
    return xp.broadcast_to(hit, tuple(n[j] for j in free))

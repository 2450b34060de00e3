"""A product of a window read and a kernel, run as the array library's own convolution.

``y[b,o,i,j] = x[b,c,i+a,j+e] W[o,c,a,e]`` is a 2-D correlation; so are its gradients:
w.r.t. ``W`` (``G[k,p,l,m] x[k,q,l+r,m+s]``, a correlation of ``x`` with ``G`` as the
kernel) and w.r.t. ``x`` (``G[p,k,r-l,s-m] W[k,q,l,m]``, a full correlation with the kernel
flipped). On torch tensors such a term runs as the kernel torch itself runs for it
(oneDNN on the CPU, cuDNN on a GPU), 3 to 9 times faster than the strided view and one
matrix product (im2col) that NumPy runs:

* a window larger than the result along the read axes (a weight gradient) as torch's
  convolution backward for the weight;
* a read backwards at stride 1 with as many zeros before as after (an input gradient) as
  its convolution backward for the input;
* any other as ``conv1d``/``conv2d``/``conv3d``, after cutting and padding the tensor to
  what is read, and flipping the kernel where it is read backwards.

Elsewhere the view and the product stay: NumPy has no convolution, and XLA's on the CPU
measured slower than the product under ``jax.jit``.

The term must be a correlation along each axis it reads through index arithmetic: the
subscript ``s*i + t*a + c`` with ``i`` an index of the result (stride ``s`` >= 1), ``a`` an
index of the kernel only (dilation ``|t|``; ``t < 0`` flips the kernel), and an offset
``c`` (zeros are read outside the array, as everywhere in docs/index-arithmetic.md). Every other
index of the window is a batch index (kept, not in the kernel), a channel (summed with the kernel)
or a group (kept by the kernel and the result too: a depthwise or grouped convolution);
every other index of the kernel is an output channel. Anything else (one summed within
an operand, a shift without a kernel index, a window index kept) is left to the general
product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Any

from ..ir import Affine, Subscript
from .libraries import ArrayLibrary

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]


@dataclass(frozen=True)
class _Spatial:
    """One axis read through ``stride*i + dilation*a + offset`` (after any flip)."""

    axis: int  # of the window's tensor
    out: str  # i
    window: str  # a
    stride: int
    dilation: int
    flip: bool
    start: int  # first position of the tensor read, before padding
    stop: int  # one past the last position read that lies inside it
    pad: tuple[int, int]  # zeros before and after


def convolution(lib: ArrayLibrary, subs: tuple[Subscript, ...], shape: tuple[int, ...],
                view: tuple[str, ...], kernel: tuple[str, ...], sizes: Sizes,
                read: Step, other: Step, out: tuple[str, ...]) -> Step | None:
    """The term ``read[subs] other[kernel]`` over ``out`` (``view``: the indices the
    subscripts use) as one convolution of the array library ``lib`` (torch's or JAX's),
    or None where it is not a correlation that it runs (or ``lib`` has none). ``read``
    gives the tensor itself (``shape``), not its window."""
    if lib.convolution is None:
        return None
    if len(set(kernel)) != len(kernel) or len(set(out)) != len(out) \
            or 0 in shape or any(sizes[i] == 0 for i in (*view, *kernel)):
        return None
    spatial: list[_Spatial] = []
    batch: list[tuple[int, str]] = []
    channels: list[tuple[int, str]] = []
    groups: list[tuple[int, str]] = []
    seen: list[str] = []
    for axis, sub in enumerate(subs):
        if isinstance(sub, str):
            seen.append(sub)
            if sub in out and sub not in kernel:
                batch.append((axis, sub))
            elif sub in kernel and sub not in out:
                channels.append((axis, sub))
            elif sub in kernel:  # kept by every factor: a group (a depthwise channel)
                groups.append((axis, sub))
            else:
                return None
            continue
        found = _spatial(axis, sub, shape[axis], kernel, out, sizes)
        if found is None:
            return None
        spatial.append(found)
        seen += [found.out, found.window]
    if not spatial or len(spatial) > lib.convolution_axes \
            or len(set(seen)) != len(seen):
        return None
    outputs = tuple(i for i in kernel if i not in seen)
    if any(i not in out for i in outputs) or set(out) != {
            *(n for _, n in batch + groups), *outputs, *(s.out for s in spatial)}:
        return None
    run = _torch if lib.convolution == "torch" else _jax
    return run(_Term(spatial, batch, channels, groups, outputs, kernel, out, sizes), read,
               other)


def _spatial(axis: int, sub: Subscript, length: int, kernel: tuple[str, ...],
             out: tuple[str, ...], sizes: Sizes) -> _Spatial | None:
    """The correlation read by the subscript ``sub`` on a tensor axis of ``length``, or
    None where it is not one."""
    if not isinstance(sub, Affine) or len(sub.parts) != 2:
        return None
    (n1, c1), (n2, c2) = sub.parts
    if n1 in kernel:
        (n1, c1), (n2, c2) = (n2, c2), (n1, c1)
    i, s, a, t = n1, c1, n2, c2
    if i not in out or i in kernel or a not in kernel or a in out or s < 1:
        return None
    size_i, size_a = sizes[i], sizes[a]
    offset = sub.offset + (t * (size_a - 1) if t < 0 else 0)  # a -> size_a - 1 - a
    dilation = abs(t)
    first, last = offset, offset + s * (size_i - 1) + dilation * (size_a - 1)
    start, stop = max(0, first), min(length, last + 1)
    if stop <= start:
        return None  # every read falls outside: zeros, left to the general product
    return _Spatial(axis, i, a, s, dilation, t < 0, start, stop,
                    (max(0, -first), max(0, last - (length - 1))))


@dataclass(frozen=True)
class _Term:
    """A correlation's indices: along the read axes, and the rest by their role."""

    spatial: list[_Spatial]
    batch: list[tuple[int, str]]  # (axis of the window's tensor, index): kept
    channels: list[tuple[int, str]]  # summed with the kernel
    groups: list[tuple[int, str]]  # kept by both and the result: a grouped convolution's
    outputs: tuple[str, ...]  # the kernel's other kept indices
    kernel: tuple[str, ...]
    out: tuple[str, ...]
    sizes: Sizes

    def count(self, names: Any) -> int:
        return prod(self.sizes[i] for i in names)

    @property
    def reach(self) -> list[int]:
        """How far each read axis's window reaches: dilation × (kernel size - 1)."""
        return [s.dilation * (self.sizes[s.window] - 1) for s in self.spatial]

    def mode(self) -> str:
        """Which of torch's kernels runs the term: "weight", "input" or "forward"."""
        spatial = self.spatial
        if self.count(s.window for s in spatial) > self.count(s.out for s in spatial) \
                and not any(s.flip for s in spatial):
            # The weight gradient of ``conv(x, W)`` whose output gradient is the kernel:
            # its stride is the window's coefficient, its dilation the result's.
            return "weight"
        if all(s.flip and s.stride == 1 and s.pad[0] == s.pad[1] <= r
               for s, r in zip(spatial, self.reach)):
            # The input gradient of ``conv(x, W)`` whose output gradient is the window:
            # its padding is what the read's zeros leave of the kernel's reach.
            return "input"
        return "forward"

    def layout(self, mode: str) -> _Layout:
        """How the two arrays are laid out for the kernel of ``mode``, and how its result
        is laid out as ``out``. Groups go first among the channels of each (torch's and
        XLA's rule: input channel g·C + c, output channel g·O + o)."""
        spatial, groups = self.spatial, [i for _, i in self.groups]
        batch, channels = [i for _, i in self.batch], [i for _, i in self.channels]
        outputs = list(self.outputs)
        g, n, c, o = (self.count(groups), self.count(batch), self.count(channels),
                      self.count(outputs))
        axis = {i: a for a, i in (*self.batch, *self.channels, *self.groups)}
        # The tensor as (batch, groups·channels, spatial...), or for a weight gradient
        # (channels, groups·batch, spatial...), cut to what is read. The kernel as
        # (groups·outputs, channels, windows...); for a weight gradient (channels,
        # groups·outputs, windows...), the output's gradient; for an input gradient,
        # unflipped, (groups·channels, outputs, windows...), a weight.
        if mode == "weight":
            x_names, x_lead = channels + groups + batch, (c, g * n)
            k_names, k_lead = channels + groups + outputs, (c, g * o)
            natural, shape = groups + outputs + batch, (g * o, n)
        elif mode == "input":
            x_names, x_lead = batch + groups + channels, (n, g * c)
            k_names, k_lead = groups + channels + outputs, (g * c, o)
            natural, shape = batch + groups + outputs, (n, g * o)
        else:
            x_names, x_lead = batch + groups + channels, (n, g * c)
            k_names, k_lead = groups + outputs + channels, (g * o, c)
            natural, shape = batch + groups + outputs, (n, g * o)
        x_order = tuple(axis[i] for i in x_names) + tuple(s.axis for s in spatial)
        cut = tuple([slice(None)] * len(x_names) + [slice(s.start, s.stop) for s in spatial])
        x_shape = x_lead + tuple(s.stop - s.start for s in spatial)
        k_order = tuple(self.kernel.index(i) for i in (*k_names, *(s.window for s in spatial)))
        k_shape = k_lead + tuple(self.sizes[s.window] for s in spatial)
        natural += [s.out for s in spatial]
        final = tuple(natural.index(i) for i in self.out)
        results = tuple(self.sizes[s.out] for s in spatial)
        return _Layout(x_order, cut, x_shape, k_order, k_shape,
                       tuple(self.sizes[i] for i in natural),
                       None if final == tuple(range(len(final))) else final,
                       shape + results, g)


@dataclass(frozen=True)
class _Layout:
    x_order: tuple[int, ...]  # the window's tensor: permuted, cut, reshaped
    cut: tuple[slice, ...]
    x_shape: tuple[int, ...]
    k_order: tuple[int, ...]  # the kernel: permuted, reshaped
    k_shape: tuple[int, ...]
    y_shape: tuple[int, ...]  # the kernel's result, reshaped, then permuted by final
    final: tuple[int, ...] | None
    shape: tuple[int, ...]  # of the array a backward kernel takes for its shape only
    groups: int


def _torch(term: _Term, read: Step, other: Step) -> Step:
    """torch: ``conv1d``/``conv2d``/``conv3d``, or its convolution backward for the weight
    or the input."""
    import torch
    import torch.nn.functional as F

    spatial = term.spatial
    dims = len(spatial)
    mode = term.mode()
    lay = term.layout(mode)
    pads = [p for s in reversed(spatial) for p in s.pad] if mode != "input" else []
    flips = tuple(2 + d for d, s in enumerate(spatial) if s.flip) if mode == "forward" else ()
    conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    backward = torch.ops.aten.convolution_backward
    strides = [s.stride for s in spatial]
    dilations = [s.dilation for s in spatial]
    zeros, ones = [0] * dims, [1] * dims
    padding = [r - s.pad[0] for s, r in zip(spatial, term.reach)]

    def run(env: Env) -> Array:
        x = torch.permute(read(env), lay.x_order)[lay.cut].reshape(lay.x_shape)
        if any(pads):  # a backward kernel pads itself
            x = F.pad(x, pads)
        w = torch.permute(other(env), lay.k_order).reshape(lay.k_shape)
        if w.dtype != x.dtype:
            common = torch.promote_types(x.dtype, w.dtype)
            x, w = x.to(common), w.to(common)
        if mode == "weight":  # w: the output's gradient; the weight is its shape only
            y = backward(w, x, x.new_zeros(()).expand(lay.shape), None, dilations, zeros,
                         strides, False, zeros, lay.groups, [False, True, False])[1]
        elif mode == "input":  # x: the output's gradient; the input is its shape only
            y = backward(x, x.new_zeros(()).expand(lay.shape), w, None, ones, padding,
                         dilations, False, zeros, lay.groups, [True, False, False])[0]
        else:
            y = conv(x, torch.flip(w, flips) if flips else w, stride=strides,
                     dilation=dilations, groups=lay.groups)
        y = y.reshape(lay.y_shape)
        return y if lay.final is None else torch.permute(y, lay.final).contiguous()

    return run


def _jax(term: _Term, read: Step, other: Step) -> Step:
    """JAX: ``lax.conv_general_dilated``, the kernel flipped where read backwards, as
    ``jax.grad`` itself differentiates a convolution (XLA pads; nothing is copied)."""
    import jax.numpy as jnp
    from jax import lax

    spatial = term.spatial
    lay = term.layout("forward")
    flips = tuple(2 + d for d, s in enumerate(spatial) if s.flip)
    strides = tuple(s.stride for s in spatial)
    dilations = tuple(s.dilation for s in spatial)
    padding = tuple(s.pad for s in spatial)

    def run(env: Env) -> Array:
        x = jnp.transpose(read(env), lay.x_order)[lay.cut].reshape(lay.x_shape)
        w = jnp.transpose(other(env), lay.k_order).reshape(lay.k_shape)
        if w.dtype != x.dtype:
            common = jnp.promote_types(x.dtype, w.dtype)
            x, w = x.astype(common), w.astype(common)
        y = lax.conv_general_dilated(x, jnp.flip(w, flips) if flips else w, strides,
                                     padding, rhs_dilation=dilations,
                                     feature_group_count=lay.groups)
        y = y.reshape(lay.y_shape)
        return y if lay.final is None else jnp.transpose(y, lay.final)

    return run

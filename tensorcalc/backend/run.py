"""A plan bound to one signature of input shapes, dtypes and array types, and run.

The first call with a new signature checks every size (``bind_sizes``) and binds each
statement into a chain of small closures whose every decision is already made
(``binder.StatementBinder``). Later calls with the same signature do no checking and no
planning: they only run those closures.

>>> import numpy as np
>>> from tensorcalc.api import compile
>>> from tensorcalc.backend.plan import plan_program
>>> p = compile("y[i] = W[i,j] x[j]")
>>> plan = plan_program(p.needed, p.needed_inputs, p.result)
>>> env = {"W": np.eye(2), "x": np.array([1.0, 2.0])}
>>> Runner(plan, env).dense(env)
array([1., 2.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError, ShapeError
from ..ir import SIZE_MARK, subscript_text
from ..limits import check_size, memory_limit
from .arrays import namespace
from .binder import StatementBinder
from .compact import Compact
from .libraries import library
from .operands import ProgramPlan, StatementPlan, TermPlan
from .stepping import EVERY, LoopStep
from .windows import read_text, shrink_sizes, size_by_given_reads

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]


class _Shape:
    """Stands in for a statement's value while the statements are bound: only its shape
    is read then."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


def bind_sizes(st: StatementPlan, env: Env, given: Sizes | None = None) -> Sizes:
    """Every index of a statement bound to an axis size; the sizes must agree.

    ``given`` holds sizes the caller gave (docs/index-arithmetic.md): an index no tensor axis sizes
    takes one. With index arithmetic (docs/index-arithmetic.md), ``valid_sizes`` then sizes and
    shrinks the rest.
    """
    sizes: Sizes = {}
    owner: dict[str, str] = {}
    declared = {i: (int(env[t].shape[a]), t) for i, (t, a) in st.given.items()
                if t in env and a < len(env[t].shape)}
    for name, axes in st.tensors:
        _size_axes(st, name, axes, env[name].shape, declared, sizes, owner)
    _check_ties(st, sizes, owner)
    fixed = set(st.given)
    _take_given(st, given, declared, sizes, owner, fixed)
    for i, (name, axis) in st.sources.items():
        if i not in sizes:
            if name not in env:  # a size by name (SIZE_MARK) that the caller did not give
                key = name[len(SIZE_MARK):]
                raise InputError(f"cannot tell the size of index {key} in statement "
                                 f"{st.name}: no tensor there reads it plainly; give it with "
                                 f"sizes={{{key!r}: ...}}")
            shape = env[name].shape
            if axis >= len(shape):
                raise InputError(f"{name} has {len(shape)} axes, but statement {st.name} takes "
                                 f"the size of index {i} from its axis {axis + 1}")
            sizes[i] = int(shape[axis])
    if st.accesses:
        valid_sizes(st, env, sizes, fixed)
    for i in st.every_index:
        if i not in sizes:
            raise InputError(f"cannot tell the size of index {i} in statement {st.name}: "
                             "no tensor in it has that axis"
                             + ("; give it with sizes={...}" if st.accesses else ""))
    for a, b in () if st.rectangular else st.deltas:  # sizes given, or declared, tied too
        if sizes[a] != sizes[b]:
            raise ShapeError(f"delta[{a},{b}] in statement {st.name} ties index {a} of size "
                             f"{sizes[a]} to index {b} of size {sizes[b]}")
    return sizes


def _size_axes(st: StatementPlan, name: str, axes: tuple[Any, ...], shape: tuple[int, ...],
               declared: dict[str, tuple[int, str]], sizes: Sizes,
               owner: dict[str, str]) -> None:
    """The sizes the axes of the tensor ``name`` (of ``shape``, written with ``axes``)
    give its plain indices, which must agree with those taken so far."""
    if len(shape) != len(axes):
        written = ",".join(a if isinstance(a, str) else subscript_text(a) for a in axes)
        raise InputError(f"{name} has {len(shape)} ax{'is' if len(shape) == 1 else 'es'} "
                         f"but is written with {len(axes)} "
                         f"ind{'ex' if len(axes) == 1 else 'ices'} ({name}[{written}])")
    for i, n in zip(axes, shape):
        if not isinstance(i, str):
            continue  # arithmetic: reads past the end are zero
        n = int(n)
        if i in st.given:  # a given size: one given by name may cut a tensor's axis, not
            # pad it; a declared one (an input's axis, or a statement's in a derivative)
            # cuts the axis or pads it with zeros (d_bar[p] in d_bar[p-1] - d_bar[p])
            if i in declared and declared[i][0] > n \
                    and declared[i][1].startswith(SIZE_MARK):
                raise ShapeError(f"index {i} is given size {declared[i][0]} "
                                 f"({_given_by(declared[i][1])}) but has size {n} in "
                                 f"{name} (statement {st.name}); a given size may cut a "
                                 "tensor's axis, never pad it")
            continue
        if i in sizes and sizes[i] != n and i in st.shortest:  # the valid rule
            if n < sizes[i]:
                sizes[i], owner[i] = n, name
            continue
        if i in sizes and sizes[i] != n:
            raise ShapeError(f"index {i} has size {sizes[i]} in {owner[i]} but size {n} "
                             f"in {name} (statement {st.name})"
                             + _rename_hint(st, i, owner[i], name))
        sizes.setdefault(i, n)
        owner.setdefault(i, name)


def _rename_hint(st: StatementPlan, index: str, first: str, second: str) -> str:
    """Where the two tensors that disagree on ``index`` are in different top-level terms
    that each sum it, the two are different indices that share a name: say so."""
    terms = st.summed_apart.get(index, ())
    if not terms or any(first in names and second in names for names in terms):
        return ""
    return (f"; {first} and {second} are in different terms, which each sum their own "
            f"{index}: rename {index} in one of the terms (another index name) to sum "
            "each over its own size")


def _check_ties(st: StatementPlan, sizes: Sizes, owner: dict[str, str]) -> None:
    """Indices that a delta ties, or that a matrix function needs square, agree in size
    where tensors size both."""
    for a, b in () if st.rectangular else st.deltas:  # see StatementPlan.rectangular
        if a in sizes and b in sizes and sizes[a] != sizes[b]:
            raise ShapeError(f"delta[{a},{b}] ties index {a} of size {sizes[a]} (in {owner[a]}) "
                             f"to index {b} of size {sizes[b]} (in {owner[b]})")
    for i, j, fn in st.square:
        if i in sizes and j in sizes and sizes[i] != sizes[j]:
            raise ShapeError(f"{fn}[{i},{j}] in statement {st.name} needs a square matrix, but "
                             f"index {i} has size {sizes[i]} (in {owner[i]}) and index {j} "
                             f"size {sizes[j]} (in {owner[j]})")


def _take_given(st: StatementPlan, given: Sizes | None, declared: dict[str, tuple[int, str]],
                sizes: Sizes, owner: dict[str, str], fixed: set[str]) -> None:
    """The sizes the caller gave (by the written names, never by internal ones), which
    must agree with the tensors' and the declarations'; those taken join ``fixed``."""
    if given and st.aliases:
        renamed = {new for new, _ in st.aliases}
        given = {**{i: n for i, n in given.items() if i not in renamed},
                 **{new: given[w] for new, w in st.aliases if w in given}}
    for i, n in (given or {}).items():
        if i not in st.every_index:
            continue
        if i in sizes and sizes[i] != n and not (st.accesses and n < sizes[i]):
            raise ShapeError(f"index {i} is given size {n} but has size {sizes[i]} in "
                             f"{owner[i]} (statement {st.name})"
                             + ("; a given size may cut a tensor's axis, never pad it"
                                if st.accesses else ""))
        if i in declared and declared[i][0] != n:
            raise ShapeError(f"index {i} is given size {n} (sizes=) but size "
                             f"{declared[i][0]} ({_given_by(declared[i][1])}) in statement "
                             f"{st.name}")
        if i not in st.given:
            sizes[i] = n
            fixed.add(i)


def _given_by(source: str) -> str:
    """Where a given size comes from, as a message says it."""
    return "by sizes=" if source.startswith(SIZE_MARK) else f"by the declaration of {source}"


def valid_sizes(st: StatementPlan, env: Env, sizes: Sizes, fixed: set[str]) -> None:
    """The valid rule, docs/index-arithmetic.md (``windows.shrink_sizes``): each index that no size
    was given for runs over the largest range from 0 at which every affine read of the statement
    stays inside its array; reads that involve a given index may fall outside (and read zeros),
    and size an index of the result only where nothing else does (``size_by_given_reads``:
    pooling)."""
    reads = [(axis if tensor is None else int(env[tensor].shape[int(axis)]), sub.parts,
              sub.offset, read_text(tensor, axis, sub)) for tensor, axis, sub in st.accesses]
    try:
        shrink_sizes(sizes, reads, fixed)
        while size_by_given_reads(sizes, reads, fixed, st.indices):
            shrink_sizes(sizes, reads, fixed)
    except ValueError as err:
        raise ShapeError(f"statement {st.name}: {err}") from None


class Runner:
    """The statements of a plan bound to one input signature."""

    def __init__(self, plan: ProgramPlan, env: Env, given: Sizes | None = None):
        lib = library(namespace(*[v for v in env.values() if hasattr(v, "shape")]))
        xp = lib.xp
        dtypes = [v.dtype for v in env.values() if hasattr(v, "dtype")]
        dtype = _result_type(xp, dtypes)
        itemsize = np.dtype(dtype).itemsize if xp is np else 8
        arrays = [v for v in env.values() if hasattr(v, "shape") and hasattr(v, "dtype")]
        where = lib.device_of(arrays[0]) if arrays else {}
        sample: Env = dict(env)
        for key, n in (given or {}).items():  # the caller's sizes, as extents name them
            sample[SIZE_MARK + key] = _Shape((n,))
        self.steps: list[tuple[str, Step]] = []
        last = plan.statements[-1]
        # The shapes of the tensors so far, one dict that grows: a statement reads only
        # those before it, and only by name.
        shapes = {name: tuple(v.shape) for name, v in sample.items() if hasattr(v, "shape")}
        ctx: StatementBinder | None = None  # the last statement's (none for a recurrence)
        loops = {loop.names[0]: loop for loop in plan.loops}
        members = {name for loop in plan.loops for name in loop.names}
        for st in plan.statements:
            if st.name in members:  # a recurrence: its first statement runs them all
                if st.name in loops:
                    loop = LoopStep(loops[st.name], sample, given, Runner, lib, dtype)
                    for name, full in loop.shapes.items():
                        sample[name] = _Shape(full)
                        shapes[name] = full
                    self.steps.append((st.name, loop))
                else:
                    self.steps.append((st.name, _already(st.name)))
                shape = shapes[st.name]
                continue
            sizes = bind_sizes(st, sample, given)  # every check happens here, once per signature
            shape = tuple(sizes[i] for i in st.indices)
            if lib.max_axes is not None and len(shape) > lib.max_axes:
                raise InputError(f"{st.name} would have {len(shape)} axes; {lib.name} arrays "
                                 f"have at most {lib.max_axes}")
            sample[st.name] = _Shape(shape)
            shapes[st.name] = shape
            if st is not last:
                check_size(st.name, shape, itemsize, compact_hint=False)
            ctx = StatementBinder(lib, dtype, sizes, where, (st.name, itemsize))
            ctx.shapes = shapes
            self.steps.append((st.name, ctx.sum(st.rhs, st.indices)))
        self.result = plan.result
        _set_kept(plan, self.steps)
        # a statement only an extent names is not run: binding took its shape already
        self.valued_steps = [(name, step) for name, step in self.steps
                             if name in plan.valued or not plan.valued]
        self.itemsize = itemsize
        self.shape = shape
        self.nbytes = itemsize
        for n in shape:
            self.nbytes *= n
        self._last = (last, ctx)
        self._compact: Step | None = None

    def __call__(self, env: Env, upto: int | None = None) -> Env:
        """Run the steps (all, or the first ``upto``) and return the filled environment,
        every statement's value in it."""
        env[EVERY] = True
        for name, step in (self.steps if upto is None else self.steps[:upto]):
            env[name] = step(env)
        del env[EVERY]
        return env

    def dense(self, env: Env, every: bool = False) -> Array:
        """The result's value; with ``every``, every statement's value is left in ``env``
        (else a recurrence keeps only the members the statements after it read)."""
        if self.nbytes > memory_limit():  # the limit may have changed since binding
            check_size(self.result, self.shape, self.itemsize, compact_hint=True)
        if every:
            env[EVERY] = True
        for name, step in self.valued_steps:
            value = step(env)
            if value is not None:  # None: a recurrence's member nothing after it reads
                env[name] = value
        env.pop(EVERY, None)
        return env[self.result]

    def compact(self, env: Env) -> Compact:
        """The result in its delta structure (every earlier statement run densely)."""
        last, ctx = self._last
        if ctx is None:  # a recurrence's value: computed dense, kept so
            return Compact(self.dense(env), last.indices, last.indices, {}, self.shape)
        self(env, upto=len(self.steps) - 1)
        if self._compact is None:
            self._compact = _compact_step(last, ctx, self.shape)
        value: Compact = self._compact(env)
        return value


def _set_kept(plan: ProgramPlan, steps: list[tuple[str, Step]]) -> None:
    """Tell each recurrence which of its members the other statements (or the result)
    read: only those are kept whole by a run of the result alone."""
    for _, step in steps:
        if isinstance(step, LoopStep):
            members = {m.name for m in step.loop.members}
            read = {plan.result} | {name for st in plan.statements if st.name not in members
                                    for name, _ in st.tensors}
            step.kept = members & read


def _already(name: str) -> Step:
    """A recurrence's statement after its first: the first one's run computed it (None
    where the run kept it not: nothing after the recurrence reads it)."""
    return lambda env: env.get(name)


def _compact_step(st: StatementPlan, ctx: StatementBinder, shape: tuple[int, ...]) -> Step:
    """The ties every term has are kept (the softmax Jacobian's ``delta[n,p]``); a term's
    further ties are written into the core. No tie in common: the dense value."""
    order = st.indices
    terms = st.rhs.terms
    name, itemsize = ctx.owner
    ties = dict(terms[0].ties) if terms else {}
    for t in terms[1:]:
        ties = {i: r for i, r in ties.items() if t.ties.get(i) == r}
    if not ties:
        # The compact value is the dense one, under the same limit (and the refusal must
        # not advise compact=True, which is what was asked for).
        check_size(f"{name} (its terms tie no axes in common, so compact=True keeps it "
                   "dense; vjp or jvp contract it instead)", shape, itemsize,
                   compact_hint=False)
        dense = ctx.sum(st.rhs, order)
        return lambda env: Compact(dense(env), order, order, {}, shape)
    present = {i for t in terms for i in t.einsum_out} | \
        {i for t in terms for pair in t.ties.items() if pair[0] not in ties for i in pair}
    core_order = tuple(i for i in order if i not in ties and i in present)
    core_shape = ctx.shape(core_order)
    check_size(f"the compact core of {name}", core_shape, itemsize, compact_hint=False)
    parts = [_core_part(ctx, t, ties, core_order, core_shape) for t in terms]

    def run(env: Env) -> Compact:
        total = None
        for core, line_up in parts:
            value = core(env) if line_up is None else line_up(core(env))
            total = value if total is None else total + value
        return Compact(total, core_order, order, ties, shape)

    return run


def _core_part(ctx: StatementBinder, t: TermPlan, ties: dict[str, str], core_order: tuple[str, ...],
               core_shape: tuple[int, ...]) -> tuple[Step, Callable[[Array], Array] | None]:
    """One term's contribution to a compact core over ``core_order``: its contraction,
    written onto the diagonal of the ties it has beyond the common ``ties``."""
    extra = {i: r for i, r in t.ties.items() if i not in ties}
    if not extra:
        return ctx.contraction(t), ctx.aligner(t.einsum_out, core_order, core_shape)
    return ctx.contraction(t), ctx.on_diagonal(t.einsum_out, core_order, extra)


def _result_type(xp: Any, dtypes: list[Any]) -> Any:
    """The float type of the data arrays (binding made them one); index arrays, which stay
    integer, have no say."""
    floats = [d for d in dtypes if _is_float(d)]
    if xp is np:
        return np.result_type(*floats, np.float32) if floats else np.float64
    return floats[0] if floats else (dtypes[0] if dtypes else None)


def _is_float(dtype: Any) -> bool:
    flag = getattr(dtype, "is_floating_point", None)  # a torch dtype
    if isinstance(flag, bool):
        return flag
    try:
        return bool(np.issubdtype(np.dtype(dtype), np.floating))
    except TypeError:
        return False

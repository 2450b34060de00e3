"""A plan bound to one signature of input shapes, dtypes and array types, and run.

The first call with a new signature checks every size and binds each statement into a
chain of small closures whose every decision is already made: which contraction routine
runs each product term (NumPy's C ``einsum`` for tiny ones, a cached opt_einsum
expression on BLAS for the rest), the transposes that line results up, the diagonal a
delta-tied term is written on, and which operands are computed once. Later calls with
the same signature do no checking and no planning: they only run those closures.

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

import operator
from collections.abc import Callable, Iterable
from functools import lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
import opt_einsum as oe

from ..errors import InputError, ProgramError, ShapeError
from ..ir import SIZE_MARK, Affine, Gather, Subscript, subscript_text
from ..limits import check_size, memory_limit
from ..ops import kernels
from ..ops.functions import FUNCTIONS
from .arrays import namespace, on_device, torch_namespace
from .compact import Compact
from .convolution import convolution
from .matrices import reduction, solve
from .plan import (
    CallOperand,
    DeltaOperand,
    GroupOperand,
    MaskOperand,
    Operand,
    PowerOperand,
    ProgramPlan,
    ReduceOperand,
    RefOperand,
    ScatterOperand,
    SolveOperand,
    StatementPlan,
    SumPlan,
    TermPlan,
    operand_indices,
)
from .products import elementwise, matmul, summed_product, window_product
from .windows import (
    index_names,
    make_fit,
    make_mask,
    make_reader,
    make_scatter,
    padding,
    shrink_sizes,
)

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]

# The subscripts NumPy's einsum accepts (opt_einsum names any more with other characters).
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Below this many index combinations NumPy's C einsum beats opt_einsum's dispatch.
SMALL_EINSUM = 1 << 15
_MAX_AXES = 64  # NumPy's limit on the number of axes of an array


class _Shape:
    """Stands in for a statement's value while the statements are bound: only its shape
    is read then."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


def bind_sizes(st: StatementPlan, env: Env, given: Sizes | None = None) -> Sizes:
    """Every index of a statement bound to an axis size; the sizes must agree.

    ``given`` holds sizes the caller gave (SPEC §9): an index no tensor axis sizes takes
    one. With index arithmetic (SPEC §8), ``valid_sizes`` then sizes and shrinks the rest.
    """
    sizes: Sizes = {}
    owner: dict[str, str] = {}
    declared = {i: (int(env[t].shape[a]), t) for i, (t, a) in st.given.items()
                if t in env and a < len(env[t].shape)}
    for name, axes in st.tensors:
        shape = env[name].shape
        if len(shape) != len(axes):
            written = ",".join(a if isinstance(a, str) else subscript_text(a) for a in axes)
            raise InputError(f"{name} has {len(shape)} ax{'is' if len(shape) == 1 else 'es'} "
                             f"but is written with {len(axes)} "
                             f"ind{'ex' if len(axes) == 1 else 'ices'} ({name}[{written}])")
        for i, n in zip(axes, shape):
            if not isinstance(i, str):
                continue  # arithmetic: reads past the end are zero
            n = int(n)
            if i in st.given:  # a given size: one given by name must agree with a tensor's
                # axis; a declared one (an input's axis, or a statement's in a derivative)
                # cuts the axis or pads it with zeros (d_bar[p] in d_bar[p-1] - d_bar[p])
                if i in declared and declared[i][0] != n \
                        and declared[i][1].startswith(SIZE_MARK):
                    raise ShapeError(f"index {i} is given size {declared[i][0]} "
                                     f"({_given_by(declared[i][1])}) but has size {n} in "
                                     f"{name} (statement {st.name})")
                continue
            if i in sizes and sizes[i] != n:
                raise ShapeError(f"index {i} has size {sizes[i]} in {owner[i]} but size {n} "
                                 f"in {name} (statement {st.name})")
            sizes.setdefault(i, n)
            owner.setdefault(i, name)
    for a, b in () if st.rectangular else st.deltas:  # see StatementPlan.rectangular
        if a in sizes and b in sizes and sizes[a] != sizes[b]:
            raise ShapeError(f"delta[{a},{b}] ties index {a} of size {sizes[a]} (in {owner[a]}) "
                             f"to index {b} of size {sizes[b]} (in {owner[b]})")
    for i, j, fn in st.square:
        if i in sizes and j in sizes and sizes[i] != sizes[j]:
            raise ShapeError(f"{fn}[{i},{j}] in statement {st.name} needs a square matrix, but "
                             f"index {i} has size {sizes[i]} (in {owner[i]}) and index {j} "
                             f"size {sizes[j]} (in {owner[j]})")
    fixed = set(st.given)
    if given and st.aliases:  # sizes by the written names, never by internal ones
        renamed = {new for new, _ in st.aliases}
        given = {**{i: n for i, n in given.items() if i not in renamed},
                 **{new: given[w] for new, w in st.aliases if w in given}}
    for i, n in (given or {}).items():
        if i not in st.every_index:
            continue
        if i in sizes and sizes[i] != n:
            raise ShapeError(f"index {i} is given size {n} but has size {sizes[i]} in "
                             f"{owner[i]} (statement {st.name})")
        if i in declared and declared[i][0] != n:
            raise ShapeError(f"index {i} is given size {n} (sizes=) but size "
                             f"{declared[i][0]} ({_given_by(declared[i][1])}) in statement "
                             f"{st.name}")
        if i not in st.given:
            sizes[i] = n
            fixed.add(i)
    for i, (name, axis) in st.sources.items():
        if i not in sizes:
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


def _given_by(source: str) -> str:
    """Where a given size comes from, as a message says it."""
    return "by sizes=" if source.startswith(SIZE_MARK) else f"by the declaration of {source}"


def valid_sizes(st: StatementPlan, env: Env, sizes: Sizes, fixed: set[str]) -> None:
    """SPEC §8 rule 2 (``windows.shrink_sizes``): each index that no size was given for
    runs over the largest range from 0 at which every affine read of the statement stays
    inside its array; reads that involve a given index may fall outside (and read zeros)."""
    reads = [(axis if tensor is None else int(env[tensor].shape[int(axis)]), sub.parts,
              sub.offset, read_text(tensor, axis, sub)) for tensor, axis, sub in st.accesses]
    try:
        shrink_sizes(sizes, reads, fixed)
    except ValueError as err:
        raise ShapeError(f"statement {st.name}: {err}") from None


def read_text(tensor: str | None, axis: int | str, sub: Affine) -> str:
    """A read as the messages show it: ``x[..i+k..] (axis 1)``, ``delta[p,2*i+k]``."""
    if tensor is None:
        return f"delta[{axis},{subscript_text(sub)}]"
    return f"{tensor}[..{subscript_text(sub)}..] (axis {int(axis) + 1})"


def _lettered(expression: Callable[..., Array], statement: str,
              library: str) -> Callable[..., Array]:
    """A contraction of more indices than einsum has letters: opt_einsum names each pairwise
    step with letters where the step has at most 52 indices; a step with more is a
    ``ProgramError`` (NumPy's, torch's and Dask's einsum take letters only; JAX's any)."""
    def run(*arrays: Array) -> Array:
        try:
            return expression(*arrays)
        except (UnicodeEncodeError, RuntimeError, ValueError) as err:
            if not isinstance(err, UnicodeEncodeError) and "subscript" not in str(err):
                raise
            raise ProgramError(
                f"statement {statement} has a product whose contraction needs more than "
                f"{len(_LETTERS)} indices at once, the most einsum on "
                f"{library.split('.')[-1] or 'these arrays'} can name; split the product "
                "into statements of fewer indices each") from None

    return run


@lru_cache(maxsize=1024)
def _jax_contraction(spec: str, shapes: tuple[tuple[int, ...], ...]) -> Callable[..., Array]:
    """opt_einsum's contraction as one ``jax.jit`` function, shared by every term with the
    same subscripts and shapes, so that it is compiled once (inside an outer ``jax.jit``
    it is inlined)."""
    import jax

    return jax.jit(oe.contract_expression(spec, *shapes))


class Runner:
    """The statements of a plan bound to one input signature."""

    def __init__(self, plan: ProgramPlan, env: Env, given: Sizes | None = None):
        xp = namespace(*[v for v in env.values() if hasattr(v, "shape")])
        dtypes = [v.dtype for v in env.values() if hasattr(v, "dtype")]
        dtype = _result_type(xp, dtypes)
        itemsize = np.dtype(dtype).itemsize if xp is np else 8
        arrays = [v for v in env.values() if hasattr(v, "shape") and hasattr(v, "dtype")]
        where = on_device(arrays[0]) if arrays else {}
        sample: Env = dict(env)
        for key, n in (given or {}).items():  # the caller's sizes, as extents name them
            sample[SIZE_MARK + key] = _Shape((n,))
        self.steps: list[tuple[str, Step]] = []
        last = plan.statements[-1]
        # The shapes of the tensors so far, one dict that grows: a statement reads only
        # those before it, and only by name.
        shapes = {name: tuple(v.shape) for name, v in sample.items() if hasattr(v, "shape")}
        for st in plan.statements:
            sizes = bind_sizes(st, sample, given)  # every check happens here, once per signature
            shape = tuple(sizes[i] for i in st.indices)
            if xp is np and len(shape) > _MAX_AXES:
                raise InputError(f"{st.name} would have {len(shape)} axes; NumPy arrays have "
                                 f"at most {_MAX_AXES}")
            sample[st.name] = _Shape(shape)
            shapes[st.name] = shape
            if st is not last:
                check_size(st.name, shape, itemsize, compact_hint=False)
            ctx = StatementBinder(xp, dtype, sizes, where, (st.name, itemsize))
            ctx.shapes = shapes
            self.steps.append((st.name, ctx.sum(st.rhs, st.indices)))
        self.result = plan.result
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
        """Run the steps (all, or the first ``upto``) and return the filled environment."""
        for name, step in (self.steps if upto is None else self.steps[:upto]):
            env[name] = step(env)
        return env

    def dense(self, env: Env) -> Array:
        if self.nbytes > memory_limit():  # the limit may have changed since binding
            check_size(self.result, self.shape, self.itemsize, compact_hint=True)
        for name, step in self.valued_steps:
            env[name] = step(env)
        return env[self.result]

    def compact(self, env: Env) -> Compact:
        """The result in its delta structure (every earlier statement run densely)."""
        self(env, upto=len(self.steps) - 1)
        if self._compact is None:
            self._compact = _compact_step(*self._last, self.shape)
        value: Compact = self._compact(env)
        return value


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


def _fitted(name: str, fit: Callable[[Array], Array]) -> Step:
    return lambda env: fit(env[name])


class StatementBinder:
    """Binds the parts of one statement for fixed sizes."""

    def __init__(self, xp: Any, dtype: Any, sizes: Sizes, where: dict[str, Any],
                 owner: tuple[str, int]):
        self.owner = owner  # the statement, and the bytes of one element
        self.where = where  # the device new arrays go to, for libraries that have devices
        self.xp = xp
        self.dtype = dtype
        self.sizes = sizes
        self.shared: dict[int, Step] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}  # of the tensors read, when bound

    def shape(self, indices: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.sizes[i] for i in indices)

    def sum(self, plan: SumPlan, order: tuple[str, ...]) -> Step:
        shape = self.shape(order)
        xp, dtype = self.xp, self.dtype
        if not plan.terms:
            where = self.where
            return lambda env: xp.zeros(shape, dtype=dtype, **where)
        if len(plan.terms) == 2:
            fused = self.constant_plus(plan.terms, order, shape)
            if fused is not None:
                return fused
        terms = [self.term(t, order, shape) for t in plan.terms]
        if len(terms) == 1:
            return terms[0]
        first, second, rest = terms[0], terms[1], terms[2:]
        if not rest:
            return lambda env: first(env) + second(env)

        # A fresh array: the rest add in place, except on torch (under vmap a batched term
        # cannot be added into an unbatched total in place)
        add = operator.add if torch_namespace(self.xp) else operator.iadd

        def add_all(env: Env) -> Array:
            total = first(env) + second(env)
            for t in rest:
                total = add(total, t(env))
            return total

        return add_all

    def constant_plus(self, terms: tuple[TermPlan, ...], order: tuple[str, ...],
                      shape: tuple[int, ...]) -> Step | None:
        """``c + k * t`` where ``t`` already has the sum's axes: one pass where ``k`` is ±1
        (``1 - s``), and no array of the constant. None for any other sum."""
        constants = [t for t in terms if not t.operands and not t.ties]
        if len(constants) != 1:
            return None
        other = terms[1] if constants[0] is terms[0] else terms[0]
        if other.ties or not other.operands \
                or self.aligner(other.einsum_out, order, shape) is not None:
            return None
        c, k = self.scale(constants[0]), self.scale(other)
        operands = [self.operand(op) for op in other.operands]
        raw = self.einsum(other, operands) if other.is_einsum else operands[0]
        if k == 1:
            return lambda env: raw(env) + c
        if k == -1:
            return lambda env: c - raw(env)
        return lambda env: raw(env) * k + c

    def scale(self, plan: TermPlan) -> float:
        """A term's coefficient times the sizes of the summed indices no operand carries."""
        scale = plan.coef
        for i in plan.missing_summed:
            scale *= self.sizes[i]
        return scale

    def term(self, plan: TermPlan, order: tuple[str, ...], shape: tuple[int, ...]) -> Step:
        core = self.contraction(plan)
        if plan.ties:
            dense_order = order if set(plan.free) == set(order) else plan.free
            densify = self.on_diagonal(plan.einsum_out, dense_order, plan.ties)
            if dense_order == order:
                return lambda env: densify(core(env))
            reorder = self.aligner(dense_order, order, shape)
            assert reorder is not None  # the orders differ
            return lambda env: reorder(densify(core(env)))
        line_up = self.aligner(plan.einsum_out, order, shape)
        if line_up is None:
            return core
        return lambda env: line_up(core(env))

    def contraction(self, plan: TermPlan) -> Step:
        """The term's core: ``coef * einsum(operands)`` over ``plan.einsum_out``."""
        xp, dtype = self.xp, self.dtype
        scale = self.scale(plan)
        operands = [self.operand(op) for op in plan.operands]
        if not operands:
            value, where = scale, self.where
            return lambda env: xp.asarray(value, dtype=dtype, **where)
        run = self.einsum(plan, operands) if plan.is_einsum else operands[0]
        if scale == 1:
            return run
        return lambda env: run(env) * scale

    def einsum(self, plan: TermPlan, operands: list[Step]) -> Step:
        indices = [operand_indices(op) for op in plan.operands]
        if len(operands) >= 2 and len(set(plan.einsum_out)) == len(plan.einsum_out) \
                and all(idx == plan.einsum_out for idx in indices):
            # An elementwise product (``s[i] (1 - s[i])``): no contraction, no broadcast.
            return elementwise(operands)
        shapes = [self.shape(idx) for idx in indices]
        combos = 1
        for i in {i for idx in indices for i in idx}:
            combos *= self.sizes[i]
        spec = plan.spec
        if self.xp is np and combos <= SMALL_EINSUM and len(operands) <= 3 \
                and spec.replace(",", "").replace("->", "").isascii():
            einsum = np.einsum
            if len(operands) == 1:
                (a,) = operands
                return lambda env: einsum(spec, a(env))
            if len(operands) == 2:
                a, b = operands
                return lambda env: einsum(spec, a(env), b(env))
            a, b, c = operands
            return lambda env: einsum(spec, a(env), b(env), c(env))
        library = getattr(self.xp, "__name__", "")
        if len(operands) == 2 and "dask" not in library:
            product = self.window_times_kernel(plan, indices, operands)
            if product is not None:
                return product
        # Dask has its own chunked einsum; on JAX, einsum is one dot_general that XLA lays
        # out itself, where a transpose and a reshape first may cost a copy under jit
        if "dask" not in library and "jax" not in library:
            product = matmul(self.sizes, indices, operands, plan.einsum_out, self.xp)
            if product is None and self.xp is not np:
                product = summed_product(indices, operands, plan.einsum_out, self.xp)
            if product is not None:
                return product
        if "jax" in library:  # eagerly, one dispatch instead of a transpose, reshape, dot
            expression = _jax_contraction(spec, tuple(map(tuple, shapes)))
        else:
            expression = oe.contract_expression(spec, *shapes)
        if self.xp is np:
            # BLAS hands back transposed views; elementwise work that mixes them with
            # C-ordered arrays is several times slower, so results are made C-ordered
            # (a copy that costs far less than the contraction that made them).
            inner = expression

            def expression(*arrays: Array) -> Array:
                value = inner(*arrays)
                return value if value.flags.c_contiguous else value.copy(order="C")

        if not spec.isascii() and "jax" not in library:
            expression = _lettered(expression, self.owner[0], library)
        if len(operands) == 2:
            a, b = operands
            return lambda env: expression(a(env), b(env))
        return lambda env: expression(*[f(env) for f in operands])

    def window_times_kernel(self, plan: TermPlan, indices: list[tuple[str, ...]],
                            operands: list[Step]) -> Step | None:
        """A read through affine subscripts times one other operand: torch's or JAX's own
        convolution where the term is one, else (NumPy, torch) the strided view and one
        matrix product (im2col). None for any other pair."""
        views = [k for k, op in enumerate(plan.operands)
                 if isinstance(op, RefOperand) and op.subs is not None
                 and not index_names(op.subs)]
        if len(views) != 1:
            return None
        k = views[0]
        view = plan.operands[k]
        assert isinstance(view, RefOperand) and view.subs is not None
        product = convolution(self.xp, view.subs, tuple(self.shapes[view.name]), indices[k],
                              indices[1 - k], self.sizes, itemgetter(view.name),
                              operands[1 - k], plan.einsum_out)
        if product is None and (self.xp is np or torch_namespace(self.xp)):
            product = window_product(self.sizes, indices[k], indices[1 - k],
                                     (operands[k], operands[1 - k]), plan.einsum_out, self.xp)
        return product

    def operand(self, op: Operand) -> Step:
        if isinstance(op, RefOperand):
            return self.read(op)
        if isinstance(op, ScatterOperand):
            return self.scatter(op)
        if isinstance(op, MaskOperand):
            self.refuse_dask(f"delta[{op.i},{subscript_text(op.sub)}]")
            mask = make_mask(op.i, op.sub, op.free, self.sizes, self.xp, self.dtype,
                             self.where)
            index = self.index_arrays((op.sub,))
            return lambda env: mask(**index(env))
        if isinstance(op, DeltaOperand):
            n, m = self.sizes[op.i], self.sizes[op.j]
            xp, dtype, where = self.xp, self.dtype, self.where
            check_size(f"an identity matrix in {self.owner[0]}", (n, m), self.owner[1],
                       compact_hint=False)
            return lambda env: xp.eye(n, m, dtype=dtype, **where)
        if op.shared is not None and op.shared in self.shared:
            return self.shared[op.shared]
        step = self._operand(op)
        if op.shared is not None:  # computed once per run, however often it is used
            key = ("shared", self.owner[0], op.shared)
            inner = step

            def step(env: Env) -> Array:
                value = env.get(key)
                if value is None:
                    value = env[key] = inner(env)
                return value

            self.shared[op.shared] = step
        return step

    def _operand(self, op: CallOperand | PowerOperand | ReduceOperand | SolveOperand
                 | GroupOperand) -> Step:
        name, itemsize = self.owner
        check_size(f"a temporary in {name} (over {', '.join(op.free) or 'no index'})",
                   self.shape(op.free), itemsize, compact_hint=False)
        xp = self.xp
        if isinstance(op, ReduceOperand):
            return reduction(self, op)
        if isinstance(op, SolveOperand):
            return solve(self, op)
        if isinstance(op, CallOperand):
            arg = self.sum(op.arg, op.free)
            fn = FUNCTIONS[op.fn].kernel
            return lambda env: fn(arg(env), xp)
        if isinstance(op, PowerOperand):
            base = self.sum(op.base, op.free)
            if not isinstance(op.exponent, SumPlan):
                n = op.exponent
                power = kernels.constant_power
                return lambda env: power(base(env), n, xp)
            exponent = self.sum(op.exponent, op.free)
            return lambda env: base(env) ** exponent(env)
        return self.sum(op.body, op.free)

    def read(self, op: RefOperand) -> Step:
        """A tensor as its operand: itself, or a view through its subscripts (SPEC §8)."""
        name = op.name
        shape = self.shapes.get(name)
        if op.subs is None:
            want = self.shape(op.indices)
            if shape is None or tuple(shape) == want:
                return itemgetter(name)
            fit = make_fit(tuple(shape), want, self.xp)
            return lambda env: fit(env[name])
        assert shape is not None
        self.refuse_dask(f"{name}[{','.join(subscript_text(a) for a in op.subs)}]")
        check_size(f"a window of {name} in {self.owner[0]}", self.shape(op.indices),
                   self.owner[1], compact_hint=False)
        check_size(f"{name} with the zeros its reads in {self.owner[0]} need past its ends",
                   tuple(n + lo + hi for n, (lo, hi) in zip(shape, padding(op.subs, self.sizes,
                                                                            tuple(shape)))),
                   self.owner[1], compact_hint=False)
        reader = make_reader(op.subs, op.indices, self.sizes, tuple(shape), self.xp, name)
        if not index_names(op.subs):
            return lambda env: reader(env[name])
        index = self.index_arrays(op.subs)
        return lambda env: reader(env[name], **index(env))

    def index_arrays(self, subs: Iterable[Subscript]) -> Callable[[Env], dict[str, Array]]:
        """The index arrays that the subscripts ``subs`` read, by name, each cut to the sizes
        of its indices (a shifted read elsewhere in the statement may shrink them, SPEC §8
        rule 2, as it does a plain tensor's axes)."""
        fits: dict[str, Callable[[Env], Array]] = {}
        for s in subs:
            if isinstance(s, Gather) and s.name not in fits:
                shape, want = self.shapes.get(s.name), self.shape(s.indices)
                if shape is None or tuple(shape) == want:
                    fits[s.name] = itemgetter(s.name)
                else:
                    fits[s.name] = _fitted(s.name, make_fit(tuple(shape), want, self.xp))
        return lambda env: {n: get(env) for n, get in fits.items()}

    def scatter(self, op: ScatterOperand) -> Step:
        """A term's shifted deltas as a scatter-add of the product of its other factors."""
        self.refuse_dask("a scatter-add")
        check_size(f"a scatter in {self.owner[0]} (over {', '.join(op.free)})",
                   self.shape(op.free), self.owner[1], compact_hint=False)
        order = op.grid + op.rest
        core = self.term(op.core, order, self.shape(order))
        run = make_scatter(op.shifts, order, op.kept, op.free, self.sizes, self.xp)
        index = self.index_arrays(s for _, s in op.shifts)
        return lambda env: run(core(env), **index(env))

    def refuse_dask(self, what: str) -> None:
        """Index arithmetic needs gathers and scatter-adds that Dask arrays lack."""
        if "dask" in getattr(self.xp, "__name__", ""):
            raise InputError(f"{what} in statement {self.owner[0]}: index arithmetic (SPEC §8) "
                             "is not available for Dask arrays; compute it with NumPy, torch "
                             "or JAX arrays")

    def aligner(self, have: tuple[str, ...], want: tuple[str, ...],
                shape: tuple[int, ...]) -> Callable[[Array], Array] | None:
        """Transpose ``have`` to ``want`` and broadcast missing axes; None if nothing to do."""
        kept = [i for i in want if i in have]
        perm = tuple(have.index(i) for i in kept)
        expanded = tuple(self.sizes[i] if i in have else 1 for i in want)
        if perm == tuple(range(len(perm))) and len(kept) == len(want) and expanded == shape:
            return None
        xp, align = self.xp, kernels.align
        return lambda value: align(value, have, want, shape, xp)

    def on_diagonal(self, have: tuple[str, ...], order: tuple[str, ...],
                    ties: dict[str, str]) -> Callable[[Array], Array]:
        shape = self.shape(order)
        diagonal = kernels.diagonal_axes(order, ties)
        line_up = self.aligner(have, diagonal, self.shape(diagonal))
        xp, where, write = self.xp, self.where, kernels.on_diagonal
        if line_up is None:
            return lambda core: write(core, order, ties, shape, xp, where)
        return lambda core: write(line_up(core), order, ties, shape, xp, where)

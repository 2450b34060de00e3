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

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import opt_einsum as oe

from ..errors import InputError, ShapeError
from ..functions import FUNCTIONS
from ..limits import check_size, memory_limit
from ..reductions import REDUCERS
from . import kernels
from .arrays import namespace, on_device
from .compact import Compact
from .plan import (
    CallOperand,
    GroupOperand,
    Operand,
    PowerOperand,
    ProgramPlan,
    ReduceOperand,
    RefOperand,
    SolveOperand,
    StatementPlan,
    SumPlan,
    TermPlan,
    operand_indices,
)

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]

# Below this many index combinations NumPy's C einsum beats opt_einsum's dispatch.
SMALL_EINSUM = 1 << 15
_MAX_AXES = 64  # NumPy's limit on the number of axes of an array


class _Shape:
    """Stands in for a statement's value while the statements are bound: only its shape
    is read then."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


def bind_sizes(st: StatementPlan, env: Env) -> Sizes:
    """Every index of a statement bound to an axis size; the sizes must agree."""
    sizes: Sizes = {}
    owner: dict[str, str] = {}
    for name, indices in st.tensors:
        shape = env[name].shape
        if len(shape) != len(indices):
            raise InputError(f"{name} has {len(shape)} axes but is written with "
                             f"{len(indices)} indices ({name}[{','.join(indices)}])")
        for i, n in zip(indices, shape):
            n = int(n)
            if i in sizes and sizes[i] != n:
                raise ShapeError(f"index {i} has size {sizes[i]} in {owner[i]} but size {n} "
                                 f"in {name} (statement {st.name})")
            sizes.setdefault(i, n)
            owner.setdefault(i, name)
    for a, b in st.deltas:
        if a in sizes and b in sizes and sizes[a] != sizes[b]:
            raise ShapeError(f"delta[{a},{b}] ties index {a} of size {sizes[a]} (in {owner[a]}) "
                             f"to index {b} of size {sizes[b]} (in {owner[b]})")
    for i, j, fn in st.square:
        if i in sizes and j in sizes and sizes[i] != sizes[j]:
            raise ShapeError(f"{fn}[{i},{j}] in statement {st.name} needs a square matrix, but "
                             f"index {i} has size {sizes[i]} (in {owner[i]}) and index {j} "
                             f"size {sizes[j]} (in {owner[j]})")
    for i, (name, axis) in st.sources.items():
        if i not in sizes:
            shape = env[name].shape
            if axis >= len(shape):
                raise InputError(f"{name} has {len(shape)} axes, but statement {st.name} takes "
                                 f"the size of index {i} from its axis {axis + 1}")
            sizes[i] = int(shape[axis])
    for i in st.unsized:
        raise InputError(f"cannot tell the size of index {i} in statement {st.name}: "
                         "no tensor in it has that axis")
    return sizes


class Runner:
    """The statements of a plan bound to one input signature."""

    def __init__(self, plan: ProgramPlan, env: Env):
        xp = namespace(*[v for v in env.values() if hasattr(v, "shape")])
        dtypes = [v.dtype for v in env.values() if hasattr(v, "dtype")]
        dtype = _result_type(xp, dtypes)
        itemsize = np.dtype(dtype).itemsize if xp is np else 8
        arrays = [v for v in env.values() if hasattr(v, "shape") and hasattr(v, "dtype")]
        where = on_device(arrays[0]) if arrays else {}
        sample: Env = dict(env)
        self.steps: list[tuple[str, Step]] = []
        last = plan.statements[-1]
        for st in plan.statements:
            sizes = bind_sizes(st, sample)  # every check happens here, once per signature
            shape = tuple(sizes[i] for i in st.indices)
            if xp is np and len(shape) > _MAX_AXES:
                raise InputError(f"{st.name} would have {len(shape)} axes; NumPy arrays have "
                                 f"at most {_MAX_AXES}")
            sample[st.name] = _Shape(shape)
            if st is not last:
                check_size(st.name, shape, itemsize, compact_hint=False)
            ctx = _Context(xp, dtype, sizes, where, (st.name, itemsize))
            self.steps.append((st.name, ctx.sum(st.rhs, st.indices)))
        self.result = plan.result
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
        for name, step in self.steps:
            env[name] = step(env)
        return env[self.result]

    def compact(self, env: Env) -> Compact:
        """The result in its delta structure (every earlier statement run densely)."""
        self(env, upto=len(self.steps) - 1)
        if self._compact is None:
            self._compact = _compact_step(*self._last, self.shape)
        value: Compact = self._compact(env)
        return value


def _compact_step(st: StatementPlan, ctx: _Context, shape: tuple[int, ...]) -> Step:
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


def _core_part(ctx: _Context, t: TermPlan, ties: dict[str, str], core_order: tuple[str, ...],
               core_shape: tuple[int, ...]) -> tuple[Step, Callable[[Array], Array] | None]:
    """One term's contribution to a compact core over ``core_order``: its contraction,
    written onto the diagonal of the ties it has beyond the common ``ties``."""
    extra = {i: r for i, r in t.ties.items() if i not in ties}
    if not extra:
        return ctx.contraction(t), ctx.aligner(t.einsum_out, core_order, core_shape)
    return ctx.contraction(t), ctx.on_diagonal(t.einsum_out, core_order, extra)


def _result_type(xp: Any, dtypes: list[Any]) -> Any:
    if xp is np:
        return np.result_type(*dtypes, np.float32) if dtypes else np.float64
    return dtypes[0] if dtypes else None


class _Context:
    """Binds the parts of one statement for fixed sizes."""

    def __init__(self, xp: Any, dtype: Any, sizes: Sizes, where: dict[str, Any],
                 owner: tuple[str, int]):
        self.owner = owner  # the statement, and the bytes of one element
        self.where = where  # the device new arrays go to, for libraries that have devices
        self.xp = xp
        self.dtype = dtype
        self.sizes = sizes
        self.shared: dict[int, Step] = {}

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

        def add_all(env: Env) -> Array:
            total = first(env) + second(env)  # a fresh array: the rest add in place
            for t in rest:
                total += t(env)
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
            return _elementwise(operands)
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
        if self.xp is np:
            product = self.matmul(indices, operands, plan.einsum_out)
            if product is not None:
                return product
        expression = oe.contract_expression(spec, *shapes)
        if self.xp is np:
            # BLAS hands back transposed views; elementwise work that mixes them with
            # C-ordered arrays is several times slower, so results are made C-ordered
            # (a copy that costs far less than the contraction that made them).
            inner = expression

            def expression(*arrays: Array) -> Array:
                value = inner(*arrays)
                return value if value.flags.c_contiguous else value.copy(order="C")

        if len(operands) == 2:
            a, b = operands
            return lambda env: expression(a(env), b(env))
        return lambda env: expression(*[f(env) for f in operands])

    def matmul(self, indices: list[tuple[str, ...]], operands: list[Step],
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
                groups[wider].append(self.broadcast(_elementwise(groups.pop(idx)), idx, wider))
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
        size = self.sizes

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
        a_side, b_side = _elementwise(a_steps), _elementwise(b_steps)
        matmul, identity = np.matmul, tuple(range(len(final)))

        def run(env: Env) -> Array:
            a = a_side(env).transpose(a_order).reshape(a_shape)
            b = b_side(env).transpose(b_order).reshape(b_shape)
            value = matmul(a, b).reshape(shape)
            return value if final == identity else value.transpose(final).copy()

        return run

    def broadcast(self, step: Step, have: tuple[str, ...], want: tuple[str, ...]) -> Step:
        """``step``'s value (axes ``have``) laid out to multiply an array over ``want``:
        transposed to ``want``'s order, with length-1 axes where it has none."""
        order = tuple(have.index(i) for i in want if i in have)
        shape = tuple(self.sizes[i] if i in have else 1 for i in want)
        if order == tuple(range(len(have))):
            return lambda env: step(env).reshape(shape)
        return lambda env: step(env).transpose(order).reshape(shape)

    def operand(self, op: Operand) -> Step:
        if isinstance(op, RefOperand):
            return itemgetter(op.name)
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
            return self.reduction(op)
        if isinstance(op, SolveOperand):
            return self.solve(op)
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

    def reduction(self, op: ReduceOperand) -> Step:
        """``fn[indices](arg)``: the argument over ``batch + indices``, the kernel along the
        trailing axes."""
        layout = op.batch + op.indices
        name, itemsize = self.owner
        check_size(f"the argument of {op.fn}[{','.join(op.indices)}] in {name}",
                   self.shape(layout), itemsize, compact_hint=False)
        self.require_linalg(op.fn, {"inv": "inv", "det": "det", "logdet": "slogdet"})
        empty = [i for i in op.indices if self.sizes[i] == 0]
        if empty and op.fn in ("max", "min"):
            raise InputError(f"{op.fn}[{','.join(op.indices)}] in statement {name} runs along "
                             f"index {empty[0]}, of size 0: the "
                             f"{'largest' if op.fn == 'max' else 'smallest'} of no values "
                             "is undefined")
        arg = self.sum(op.arg, layout)
        axes = tuple(range(len(op.batch), len(layout)))
        kernel, xp = REDUCERS[op.fn].kernel, self.xp
        if op.fn == "inv":
            where = f"inv[{','.join(op.indices)}](...) in statement {name}"
            return lambda env: _nonsingular(lambda m: kernel(m, axes, xp), arg(env), where, xp)
        if xp is np:
            return lambda env: np.asarray(kernel(arg(env), axes, xp))
        return lambda env: kernel(arg(env), axes, xp)

    def require_linalg(self, fn: str, routines: dict[str, str]) -> None:
        """Refuse, when the statement is bound, a matrix function the array library lacks
        (Dask has no ``det`` or ``slogdet``)."""
        routine = routines.get(fn)
        if routine is not None and not hasattr(getattr(self.xp, "linalg", None), routine):
            library = getattr(self.xp, "__name__", "this").split(".")[-2:]
            raise InputError(f"{fn}[...] in statement {self.owner[0]} needs linalg.{routine}, "
                             f"which {'.'.join(library)} arrays do not have; compute it on "
                             "NumPy arrays instead")

    def solve(self, op: SolveOperand) -> Step:
        """``inv[i,j](M)`` times the operands that hold ``j``, as ``solve(M, ...)``."""
        i, j = op.indices
        contracted = i if op.transpose else j
        name, itemsize = self.owner
        self.require_linalg("inv", {"inv": "solve"})
        check_size(f"the matrix of inv[{i},{j}] in {name}", self.shape(op.batch + op.indices),
                   itemsize, compact_hint=False)
        matrix = self.sum(op.matrix, op.batch + op.indices)
        layout = op.batch + (contracted,) + op.rest
        shape = self.shape(layout)
        right = self.contraction(op.right)
        line_up = self.aligner(op.right.einsum_out, layout, shape)
        xp, solve = self.xp, kernels.solve
        where = f"inv[{i},{j}](...) in statement {name}"

        def run(env: Env) -> Array:
            m = matrix(env)
            if op.transpose:
                m = xp.swapaxes(m, -1, -2) if hasattr(xp, "swapaxes") \
                    else xp.matrix_transpose(m)
            b = right(env)
            b = b if line_up is None else line_up(b)
            return _nonsingular(lambda a: solve(a, b, xp), m, where, xp)

        return run

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


def _elementwise(steps: list[Step]) -> Step:
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


def _nonsingular(compute: Callable[[Array], Array], matrix: Array, where: str, xp: Any) -> Array:
    """``compute(matrix)`` (an inverse or a solve), or an ``InputError`` naming ``where``
    when the matrix is singular: LAPACK's error (NumPy, torch), or a result that is not
    finite from a finite matrix (JAX returns inf)."""
    try:
        value = compute(matrix)
    except Exception as err:  # each library has its own LinAlgError
        if "LinAlgError" in type(err).__name__ or "singular" in str(err).lower():
            raise InputError(f"the matrix of {where} is singular: it has no inverse") from None
        raise
    if xp is not np:
        try:
            bad = not bool(xp.all(xp.isfinite(value))) and bool(xp.all(xp.isfinite(matrix)))
        except Exception:  # noqa: BLE001 - a traced array (jax.jit) has no truth value
            bad = False
        if bad:
            raise InputError(f"the matrix of {where} is singular: it has no inverse")
    return value

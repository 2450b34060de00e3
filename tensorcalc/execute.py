"""Execution plans: a program bound to one signature of input shapes, dtypes and types.

The first call with a new signature checks every size (with the messages of
``evaluate.StatementPlan.sizes``) and binds each statement into a chain of small
closures whose every decision is already made: which contraction routine runs
each product term (NumPy's C ``einsum`` for tiny ones, a cached opt_einsum
expression on BLAS for the rest), the transposes that line results up, the
diagonal a delta-tied term is written on, and which sub-expressions appear
twice in a statement and are computed once. Later calls with the same
signature do no checking and no planning: they only run those closures.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import opt_einsum as oe

from .backend.arrays import namespace, on_device
from .evaluate import (
    Compact,
    StatementPlan,
    _const_power,
    _densify,
    _SumPlan,
    _TermPlan,
    diagonal_view,
)
from .functions import FUNCTIONS
from .ir import Call, Factor, Power, Ref, Statement, Sum, const_value
from .limits import check_size

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]

# Below this many index combinations NumPy's C einsum beats opt_einsum's dispatch.
SMALL_EINSUM = 1 << 15

class _Shape:
    """Stands in for a statement whose shape, not value, is needed."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape


class Runner:
    """The statements of a program bound to one input signature."""

    def __init__(self, plans: tuple[StatementPlan, ...], shape_only: frozenset[str],
                 env: Env, result: str):
        xp = namespace(*[v for v in env.values() if hasattr(v, "shape")])
        dtypes = [v.dtype for v in env.values() if hasattr(v, "dtype")]
        dtype = _result_type(xp, dtypes)
        itemsize = np.dtype(dtype).itemsize if xp is np else 8
        arrays = [v for v in env.values() if hasattr(v, "shape") and hasattr(v, "dtype")]
        where = on_device(arrays[0]) if arrays else {}
        sample: Env = dict(env)
        self.steps: list[tuple[str, Step | None, tuple[int, ...]]] = []
        for plan in plans:
            sizes = plan.sizes(sample)  # every check happens here, once per signature
            st = plan.statement
            shape = tuple(sizes[i] for i in st.indices)
            sample[st.name] = _Shape(shape)
            if st.name in shape_only:
                self.steps.append((st.name, None, shape))
                continue
            if plan is not plans[-1]:
                check_size(st.name, shape, itemsize, compact_hint=False)
            ctx = _Context(xp, dtype, sizes, _repeated(st), where, (st.name, itemsize))
            self.steps.append((st.name, ctx.sum(plan.rhs, st.indices), shape))
        self.result = result
        self.nbytes = (shape, itemsize)
        self._last = (plans[-1], ctx, shape)
        self._compact: Step | None = None

    def __call__(self, env: Env, upto: int | None = None) -> Env:
        """Run the steps (all, or the first ``upto``) and return the filled environment."""
        for name, step, shape in self.steps[:upto]:
            env[name] = _Shape(shape) if step is None else step(env)
        return env

    def dense(self, env: Env) -> Array:
        check_size(self.result, *self.nbytes, compact_hint=True)
        return self(env)[self.result]

    def compact(self, env: Env) -> Compact:
        """The result in its delta structure (every earlier statement run densely)."""
        self(env, upto=len(self.steps) - 1)
        if self._compact is None:
            self._compact = _compact_step(*self._last)
        return self._compact(env)


def _compact_step(plan: StatementPlan, ctx: _Context, shape: tuple[int, ...]) -> Step:
    """All terms tied alike: add their cores. Otherwise the dense value, with no ties."""
    order = plan.statement.indices
    terms = plan.rhs.terms
    if not terms or len({tuple(sorted(t.ties.items())) for t in terms}) != 1:
        dense = ctx.sum(plan.rhs, order)
        return lambda env: Compact(dense(env), order, order, {}, shape)
    ties = dict(terms[0].ties)
    present = {i for t in terms for i in t.einsum_out}
    core_order = tuple(i for i in order if i not in ties and i in present)
    core_shape = ctx.shape(core_order)
    parts = [(ctx.contraction(t), ctx.aligner(t.einsum_out, core_order, core_shape))
             for t in terms]

    def run(env: Env) -> Compact:
        total = None
        for core, line_up in parts:
            value = core(env) if line_up is None else line_up(core(env))
            total = value if total is None else total + value
        return Compact(total, core_order, order, ties, shape)

    return run


def _result_type(xp: Any, dtypes: list[Any]) -> Any:
    if xp is np:
        return np.result_type(*dtypes, np.float32) if dtypes else np.float64
    return dtypes[0] if dtypes else None


def _repeated(st: Statement) -> set[Factor]:
    """Function calls, powers and groups that occur more than once in a statement."""
    seen: set[Factor] = set()
    twice: set[Factor] = set()
    stack = [st.rhs]
    while stack:
        s = stack.pop()
        for t in s.terms:
            for f in t.factors:
                if isinstance(f, (Call, Power, Sum)):
                    if f in seen:
                        twice.add(f)
                        continue
                    seen.add(f)
                    stack += [f.arg] if isinstance(f, Call) else \
                        [f.base, f.exponent] if isinstance(f, Power) else [f]
    return twice


class _Context:
    """Binds the parts of one statement for fixed sizes."""

    def __init__(self, xp: Any, dtype: Any, sizes: dict[str, int], repeated: set[Factor],
                 where: dict[str, Any], owner: tuple[str, int]):
        self.owner = owner  # the statement, and the bytes of one element
        self.where = where  # the device new arrays go to, for libraries that have devices
        self.xp = xp
        self.dtype = dtype
        self.sizes = sizes
        self.repeated = repeated
        self.shared: dict[Factor, Step] = {}

    def shape(self, indices: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.sizes[i] for i in indices)

    def sum(self, plan: _SumPlan, order: tuple[str, ...]) -> Step:
        shape = self.shape(order)
        xp, dtype = self.xp, self.dtype
        if not plan.terms:
            where = self.where
            return lambda env: xp.zeros(shape, dtype=dtype, **where)
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

    def term(self, plan: _TermPlan, order: tuple[str, ...], shape: tuple[int, ...]) -> Step:
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

    def contraction(self, plan: _TermPlan) -> Step:
        """The term's core: ``coef * einsum(factors)`` over ``plan.einsum_out``."""
        xp, dtype = self.xp, self.dtype
        scale = plan.coef
        for i in plan.missing_summed:
            scale *= self.sizes[i]
        operands = [self.operand(f) for f in plan.core_factors]
        if not operands:
            value, where = scale, self.where
            return lambda env: xp.asarray(value, dtype=dtype, **where)
        inputs, output = plan.spec.split("->")
        if len(operands) == 1 and inputs == output:
            run: Step = operands[0]
        else:
            run = self.einsum(plan, operands)
        if scale == 1:
            return run
        return lambda env: run(env) * scale

    def einsum(self, plan: _TermPlan, operands: list[Step]) -> Step:
        indices = plan.operands
        shapes = [self.shape(idx) for idx in indices]
        combos = 1
        for i in {i for idx in indices for i in idx}:
            combos *= self.sizes[i]
        spec = plan.spec
        if self.xp is np and combos <= SMALL_EINSUM and len(operands) <= 3:
            einsum = np.einsum
            if len(operands) == 1:
                (a,) = operands
                return lambda env: einsum(spec, a(env))
            if len(operands) == 2:
                a, b = operands
                return lambda env: einsum(spec, a(env), b(env))
            a, b, c = operands
            return lambda env: einsum(spec, a(env), b(env), c(env))
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

    def operand(self, f: Factor) -> Step:
        if isinstance(f, Ref):
            return itemgetter(f.name)
        shared = self.shared.get(f)
        if shared is not None:
            return shared
        step = self._operand(f)
        if f in self.repeated:  # computed once per run, however often it is used
            key = ("shared", id(f))
            inner = step

            def step(env: Env) -> Array:
                value = env.get(key)
                if value is None:
                    value = env[key] = inner(env)
                return value

            self.shared[f] = step
        return step

    def _operand(self, f: Factor) -> Step:
        name, itemsize = self.owner
        check_size(f"a temporary in {name} (over {', '.join(f.free) or 'no index'})",
                   self.shape(f.free), itemsize, compact_hint=False)
        xp = self.xp
        if isinstance(f, Call):
            arg = self.sum(_SumPlan(f.arg), f.free)
            fn = FUNCTIONS[f.fn].value
            return lambda env: fn(arg(env), xp)
        if isinstance(f, Power):
            base = self.sum(_SumPlan(f.base), f.free)
            exponent = const_value(f.exponent)
            if exponent is not None:
                n = exponent
                return lambda env: _const_power(base(env), n)
            power = self.sum(_SumPlan(f.exponent), f.free)
            return lambda env: base(env) ** power(env)
        assert isinstance(f, Sum)
        return self.sum(_SumPlan(f), f.free)

    def aligner(self, have: tuple[str, ...], want: tuple[str, ...],
                shape: tuple[int, ...]) -> Callable[[Array], Array] | None:
        """Transpose ``have`` to ``want`` and broadcast missing axes; None if nothing to do."""
        kept = [i for i in want if i in have]
        perm = tuple(have.index(i) for i in kept)
        expanded = tuple(self.sizes[i] if i in have else 1 for i in want)
        needs_perm = perm != tuple(range(len(perm)))
        needs_reshape = len(kept) != len(want)
        needs_broadcast = expanded != shape
        if not (needs_perm or needs_reshape or needs_broadcast):
            return None
        xp = self.xp

        def line_up(value: Array) -> Array:
            if needs_perm:
                value = xp.permute_dims(value, perm) if xp is not np else value.transpose(perm)
            if needs_reshape:
                value = xp.reshape(value, expanded)
            if needs_broadcast:
                value = xp.broadcast_to(value, shape)
            return value

        return line_up

    def on_diagonal(self, core_indices: tuple[str, ...], order: tuple[str, ...],
                    ties: dict[str, str]) -> Callable[[Array], Array]:
        shape = self.shape(order)
        xp = self.xp
        if xp is not np:
            return lambda core: _densify(core, core_indices, order, ties, shape)
        spec, diagonal = diagonal_view(order, ties)
        line_up = self.aligner(core_indices, diagonal, self.shape(diagonal))
        dtype = self.dtype

        def densify(core: Array) -> Array:
            out = np.zeros(shape, dtype=np.result_type(core, dtype))
            view = np.einsum(spec, out)
            view[...] = core if line_up is None else line_up(core)
            return out

        return densify

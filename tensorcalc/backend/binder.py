"""One statement of a plan bound for fixed sizes: a chain of small closures whose every
decision is made when it is bound (``run.Runner`` binds each statement with one).

Which contraction routine runs each product term (NumPy's C ``einsum`` for tiny ones, one
matrix product, the library's own convolution, a cached opt_einsum expression on BLAS
for the rest), the transposes that line results up, the diagonal a delta-tied term is
written on, and which operands are computed once. What the array library can do is
asked of its ``ArrayLibrary``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
import opt_einsum as oe

from ..errors import ProgramError
from ..limits import check_size
from ..ops import kernels
from ..ops.functions import FUNCTIONS
from . import operands
from .convolution import convolution
from .fused import fused_sum
from .indexing import condition_factor, mask, read, scatter
from .libraries import ArrayLibrary
from .matrices import reduction, solve
from .products import elementwise, matmul, summed_product, window_product
from .sparse_sums import sparse_sum
from .windows import index_names

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]
Sizes = dict[str, int]

# The subscripts NumPy's einsum accepts (opt_einsum names any more with other characters).
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Below this many index combinations NumPy's C einsum beats opt_einsum's dispatch.
SMALL_EINSUM = 1 << 15


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
                f"{library} arrays can name; split the product "
                "into statements of fewer indices each") from None

    return run


@lru_cache(maxsize=1024)
def _jax_contraction(spec: str, shapes: tuple[tuple[int, ...], ...]) -> Callable[..., Array]:
    """opt_einsum's contraction as one ``jax.jit`` function, shared by every term with the
    same subscripts and shapes, so that it is compiled once (inside an outer ``jax.jit``
    it is inlined)."""
    import jax

    return jax.jit(oe.contract_expression(spec, *shapes))


class StatementBinder:
    """Binds the parts of one statement for fixed sizes."""

    def __init__(self, lib: ArrayLibrary, dtype: Any, sizes: Sizes, where: dict[str, Any],
                 owner: tuple[str, int]):
        self.owner = owner  # the statement, and the bytes of one element
        self.where = where  # the device new arrays go to, for libraries that have devices
        self.lib = lib
        self.xp = lib.xp
        self.dtype = dtype
        self.sizes = sizes
        self.shared: dict[int, Step] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}  # of the tensors read, when bound
        self.fusing = lib.xp is np  # sums of elementwise work as one loop (fused.py)

    def shape(self, indices: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.sizes[i] for i in indices)

    def sum(self, plan: operands.SumPlan, order: tuple[str, ...]) -> Step:
        shape = self.shape(order)
        xp, dtype = self.xp, self.dtype
        if not plan.terms:
            where = self.where
            return lambda env: xp.zeros(shape, dtype=dtype, **where)
        # sparse terms first: added in place into the dense terms' sum, which may be fused
        sparse = sparse_sum(self, plan, order, lambda dense: self.sum(dense, order))
        if sparse is not None:
            return sparse
        if self.fusing:
            fused = fused_sum(self, plan, order)
            if fused is not None:
                return fused
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
        add: Callable[[Array, Array], Array] = \
            operator.iadd if self.lib.writes_in_place else operator.add

        def add_all(env: Env) -> Array:
            total = first(env) + second(env)
            for t in rest:
                total = add(total, t(env))
            return total

        return add_all

    def constant_plus(self, terms: tuple[operands.TermPlan, ...], order: tuple[str, ...],
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
        steps = [self.operand(op) for op in other.operands]
        raw = self.einsum(other, steps) if other.is_einsum else steps[0]
        if k == 1:
            return lambda env: raw(env) + c
        if k == -1:
            return lambda env: c - raw(env)
        return lambda env: raw(env) * k + c

    def scale(self, plan: operands.TermPlan) -> float:
        """A term's coefficient times the sizes of the summed indices no operand carries."""
        scale = plan.coef
        for i in plan.missing_summed:
            scale *= self.sizes[i]
        return scale

    def term(self, plan: operands.TermPlan, order: tuple[str, ...], shape: tuple[int, ...]) -> Step:
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

    def contraction(self, plan: operands.TermPlan) -> Step:
        """The term's core: ``coef * einsum(operands)`` over ``plan.einsum_out``."""
        xp, dtype = self.xp, self.dtype
        scale = self.scale(plan)
        steps = [self.operand(op) for op in plan.operands]
        if not steps:
            value, where = scale, self.where
            return lambda env: xp.asarray(value, dtype=dtype, **where)
        run = self.einsum(plan, steps) if plan.is_einsum else steps[0]
        if scale == 1:
            return run
        return lambda env: run(env) * scale

    def einsum(self, plan: operands.TermPlan, steps: list[Step]) -> Step:
        indices = [operands.operand_indices(op) for op in plan.operands]
        if len(steps) >= 2 and len(set(plan.einsum_out)) == len(plan.einsum_out) \
                and all(idx == plan.einsum_out for idx in indices):
            # An elementwise product (``s[i] (1 - s[i])``): no contraction, no broadcast.
            return elementwise(steps)
        shapes = [self.shape(idx) for idx in indices]
        combos = 1
        for i in {i for idx in indices for i in idx}:
            combos *= self.sizes[i]
        spec = plan.spec
        if self.xp is np and combos <= SMALL_EINSUM and len(steps) <= 3 \
                and spec.replace(",", "").replace("->", "").isascii():
            einsum = np.einsum
            if len(steps) == 1:
                (a,) = steps
                return lambda env: einsum(spec, a(env))
            if len(steps) == 2:
                a, b = steps
                return lambda env: einsum(spec, a(env), b(env))
            a, b, c = steps
            return lambda env: einsum(spec, a(env), b(env), c(env))
        lib = self.lib
        if len(steps) == 2 and not lib.chunked:
            product = self.window_times_kernel(plan, indices, steps)
            if product is not None:
                return product
        # Dask has its own chunked einsum; on JAX, einsum is one dot_general that XLA lays
        # out itself, where a transpose and a reshape first may cost a copy under jit
        if lib.matmul_layout:
            product = matmul(self.sizes, indices, steps, plan.einsum_out, self.lib)
            if product is None and self.xp is not np:
                product = summed_product(indices, steps, plan.einsum_out, self.xp)
            if product is not None:
                return product
        if lib.jit_contractions:  # eagerly, one dispatch instead of a transpose, reshape, dot
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

        if not spec.isascii() and not lib.jit_contractions:
            expression = _lettered(expression, self.owner[0], lib.name)
        if len(steps) == 2:
            a, b = steps
            return lambda env: expression(a(env), b(env))
        return lambda env: expression(*[f(env) for f in steps])

    def window_times_kernel(self, plan: operands.TermPlan, indices: list[tuple[str, ...]],
                            steps: list[Step]) -> Step | None:
        """A read through affine subscripts times one other operand: torch's or JAX's own
        convolution where the term is one, else (NumPy, torch) the strided view and one
        matrix product (im2col). None for any other pair."""
        views = [k for k, op in enumerate(plan.operands)
                 if isinstance(op, operands.RefOperand) and op.subs is not None
                 and not index_names(op.subs)]
        if len(views) != 1:
            return None
        k = views[0]
        view = plan.operands[k]
        assert isinstance(view, operands.RefOperand) and view.subs is not None
        product = convolution(self.lib, view.subs, tuple(self.shapes[view.name]), indices[k],
                              indices[1 - k], self.sizes, itemgetter(view.name),
                              steps[1 - k], plan.einsum_out)
        if product is None and self.lib.strided_views:
            product = window_product(self.sizes, indices[k], indices[1 - k],
                                     (steps[k], steps[1 - k]), plan.einsum_out, self.lib)
        return product

    def operand(self, op: operands.Operand) -> Step:
        if isinstance(op, operands.RefOperand):
            return read(self, op)
        if isinstance(op, operands.ScatterOperand):
            return scatter(self, op)
        if isinstance(op, operands.MaskOperand):
            return mask(self, op)
        if isinstance(op, operands.ConditionOperand):
            return condition_factor(self, op)
        if isinstance(op, operands.DeltaOperand):
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

    def _operand(self, op: operands.CallOperand | operands.PowerOperand
                 | operands.ReduceOperand | operands.SolveOperand | operands.GroupOperand) -> Step:
        name, itemsize = self.owner
        check_size(f"a temporary in {name} (over {', '.join(op.free) or 'no index'})",
                   self.shape(op.free), itemsize, compact_hint=False)
        xp = self.xp
        if isinstance(op, operands.ReduceOperand):
            return reduction(self, op)
        if isinstance(op, operands.SolveOperand):
            return solve(self, op)
        if isinstance(op, operands.CallOperand):
            fn = FUNCTIONS[op.fn].kernel
            args = [self.sum(a, op.free) for a in op.args]
            if len(args) == 1:
                (arg,) = args
                own = self.lib.routine(fn)
                if own is not None:
                    return lambda env: own(arg(env))
                return lambda env: fn(arg(env), xp)
            return lambda env: fn(*[a(env) for a in args], xp)
        if isinstance(op, operands.PowerOperand):
            base = self.sum(op.base, op.free)
            if not isinstance(op.exponent, operands.SumPlan):
                n = op.exponent
                power = kernels.constant_power
                return lambda env: power(base(env), n, xp)
            exponent = self.sum(op.exponent, op.free)
            return lambda env: base(env) ** exponent(env)
        return self.sum(op.body, op.free)

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

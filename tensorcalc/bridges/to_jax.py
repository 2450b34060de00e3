"""tensorcalc inside JAX: ``to_jax(program)``, a function JAX can differentiate to any
order whose derivatives are tensorcalc's symbolic ones. JAX is imported only when it
is called.

The function is a ``jax.custom_jvp``. Its JVP rule sums, over the inputs ``X`` whose
tangent ``V`` is not a symbolic zero, a term linear in ``V``:

* for a scalar result, ``sum(grad(program, X) * V)``: the gradient is tensorcalc's
  reverse-mode program, so JAX's reverse mode (``jax.grad``, which transposes the
  JVP) costs what ``tc.grad`` costs, and a forward sweep over many tangents
  (``jax.jacfwd``, ``jax.hessian``) computes the gradient once;
* for a result with axes, ``jvp(program, X, tangent=V)``, tensorcalc's forward-mode
  program, which JAX transposes for reverse mode.

Each of these programs is derived once per input, on first use, and is itself bound
the same way, so it can be differentiated again, symbolically (``jax.hessian``,
``jax.jacfwd(jax.jacrev(...))``, third derivatives). Everything the runner does is
``jax.numpy`` on the arrays, so the whole is traced into one computation under
``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from ..derivatives import grad, jvp
from ..ir import fresh_name
from ..program import Program
from .bound import BoundProgram


class _JaxBound(BoundProgram):
    """A program bound for JAX: its ``custom_jvp`` function, and for each input the
    bound gradient (scalar result) or JVP program, derived on first use and kept, whose
    own derivatives follow in turn."""

    def __init__(self, program: str | Program):
        super().__init__(program)
        taken = set(self.program.accepts) | {st.name for st in self.program.statements}
        self.tangent = fresh_name("V", taken)
        self.scalar = not self.program.statement(self.program.result).indices
        self.run = self._custom_jvp()

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def gradient_of(self, name: str) -> _JaxBound:
        """The gradient w.r.t. ``name`` of the (scalar) result, bound."""
        return _JaxBound(grad(self.program, name))

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def tangent_of(self, name: str) -> _JaxBound:
        """The JVP program w.r.t. ``name`` (its inputs plus the tangent), bound."""
        return _JaxBound(jvp(self.program, name, tangent=self.tangent))

    def call(self, given: dict[str, Any]) -> Any:
        """The bound function applied to those of ``given`` it needs (positionally)."""
        return self.run(*(given[n] for n in self.names))

    def _custom_jvp(self) -> Any:
        import jax
        from jax.custom_derivatives import SymbolicZero

        def evaluate(*arrays: Any) -> Any:
            return self.program(**dict(zip(self.names, arrays)))

        run = jax.custom_jvp(evaluate)

        def rule(primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
            out = run(*primals)  # through ``run`` itself: an outer JVP uses this rule too
            given = dict(zip(self.names, primals))
            total = None
            for name, tangent in zip(self.names, tangents):
                if isinstance(tangent, SymbolicZero) or tangent.dtype == jax.dtypes.float0:
                    continue  # an input not differentiated (or an integer array)
                if self.scalar:  # <gradient, V>: transposed, the gradient itself
                    term = jax.numpy.sum(self.gradient_of(name).call(given) * tangent)
                else:
                    term = self.tangent_of(name).call({**given, self.tangent: tangent})
                total = term if total is None else total + term
            if total is None:
                total = jax.numpy.zeros_like(out)
            elif total.dtype != out.dtype:
                total = total.astype(out.dtype)
            return out, total

        run.defjvp(rule, symbolic_zeros=True)
        return run


def to_jax(program: str | Program) -> Callable[..., Any]:
    """A function of keyword arrays that JAX can differentiate to any order, in forward
    and reverse mode, also under ``jax.jit`` and ``jax.vmap`` (``jax.custom_jvp``).
    Its JVP is tensorcalc's symbolic JVP, itself differentiable the same way."""
    bound = _JaxBound(program)

    def function(**arrays: Any) -> Any:
        return bound.run(*bound.arrays(arrays))

    function.__doc__ = f"tensorcalc program (JAX):\n{bound.program}"
    return function

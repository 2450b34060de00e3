"""tensorcalc inside JAX: ``to_jax(program)``, a function JAX can differentiate whose
derivatives are tensorcalc's symbolic ones. JAX is imported only when it is called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .frameworks import _Bound
from .program import Program


def to_jax(program: str | Program) -> Callable[..., Any]:
    """A function of keyword arrays that JAX can differentiate (``jax.custom_vjp``),
    also under ``jax.jit``. Its backward pass is tensorcalc's symbolic VJP."""
    import jax

    bound = _Bound(program)

    @jax.custom_vjp
    def run(*arrays: Any) -> Any:
        return bound.program(**dict(zip(bound.names, arrays)))

    def forward(*arrays: Any) -> tuple[Any, tuple[Any, ...]]:
        return run(*arrays), arrays

    def backward(saved: tuple[Any, ...], cotangent: Any) -> tuple[Any, ...]:
        return tuple(bound.backward(list(saved), cotangent, [True] * len(saved)))

    run.defvjp(forward, backward)

    def function(**arrays: Any) -> Any:
        return run(*bound.arrays(arrays))

    function.__doc__ = f"tensorcalc program (JAX):\n{bound.program}"
    return function

"""tensorcalc inside PyTorch and JAX: the backward pass is our own symbolic VJP.

``to_torch(program)`` and ``to_jax(program)`` return a function of keyword arrays.
Its forward pass evaluates the program in the framework's own arrays; its backward
pass evaluates ``vjp(program, X, cotangent)`` for each input ``X`` that needs a
gradient: one program per input, derived once and cached. Both libraries are
imported only when these functions are called.

>>> import torch  # doctest: +SKIP
>>> f = to_torch("L = (X[n,d] w[d] - y[n])^2")  # doctest: +SKIP
>>> f(X=X, w=w.requires_grad_(), y=y).backward()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from .api import compile
from .calculus import vjp
from .errors import DerivativeError, InputError
from .ir import fresh_name
from .program import Program


class _Bound:
    """A program, its inputs in order, and its VJP programs, derived on first use."""

    def __init__(self, program: str | Program):
        self.program = compile(program)
        self.names = self.program.needed_inputs
        taken = set(self.program.accepts) | {st.name for st in self.program.statements}
        self.cotangent = fresh_name("G", taken)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def vjp(self, name: str) -> Program:
        return vjp(self.program, name, cotangent=self.cotangent)

    def arrays(self, given: dict[str, Any]) -> list[Any]:
        unknown = [n for n in given if n not in self.names]
        missing = [n for n in self.names if n not in given]
        if unknown or missing:
            raise InputError(
                f"the function takes exactly {', '.join(self.names)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        return [given[n] for n in self.names]

    def backward(self, values: list[Any], cotangent: Any, wanted: list[bool]) -> list[Any]:
        arrays = dict(zip(self.names, values))
        return [
            self.vjp(name)(**arrays, **{self.cotangent: cotangent}) if want else None
            for name, want in zip(self.names, wanted)
        ]


def to_torch(program: str | Program) -> Callable[..., Any]:
    """A function of keyword tensors that PyTorch can differentiate.

    Its backward pass is tensorcalc's symbolic vector-Jacobian product, run in torch.
    """
    import torch

    bound = _Bound(program)

    class _FirstOrderOnly(torch.autograd.Function):
        """The gradients, tied to what they depend on, refusing to be differentiated:
        torch cannot see inside our VJP, so its derivative would come out zero."""

        @staticmethod
        def forward(ctx: Any, gradient: Any, *depends_on: Any) -> Any:
            return gradient.view_as(gradient)

        @staticmethod
        def backward(ctx: Any, *grad_outputs: Any) -> Any:
            raise DerivativeError(
                "a tc.to_torch function is first-order only for now: torch cannot "
                "differentiate its backward pass (a Hessian would come out zero); for "
                "second derivatives use tc.hessian, or tc.grad of the program and "
                "tc.to_torch of that"
            )

    class _Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *tensors: Any) -> Any:
            ctx.save_for_backward(*tensors)
            return bound.program(**dict(zip(bound.names, tensors)))

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            saved = list(ctx.saved_tensors)
            higher = torch.is_grad_enabled()  # create_graph=True: a derivative may follow
            with torch.no_grad():
                grads = bound.backward(saved, grad_output, list(ctx.needs_input_grad))
            if higher:
                grads = [g if g is None else _FirstOrderOnly.apply(  # type: ignore[no-untyped-call]
                    g, grad_output, *saved) for g in grads]
            return tuple(grads)

    def function(**tensors: Any) -> Any:
        return _Function.apply(*bound.arrays(tensors))  # type: ignore[no-untyped-call]

    function.__doc__ = f"tensorcalc program (torch):\n{bound.program}"
    return function


from .frameworks_jax import to_jax  # noqa: E402 - its own module, re-exported here

__all__ = ["to_jax", "to_torch"]

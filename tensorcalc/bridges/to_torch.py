"""tensorcalc inside PyTorch and JAX: every derivative is our own symbolic one.

``to_torch(program)`` (here) and ``to_jax(program)`` (``to_jax.py``) return a
function of keyword arrays. Its forward pass evaluates the program in the framework's
own arrays. In torch, the backward pass and the forward-mode rule evaluate
``vjp(program, X)`` and ``jvp(program, X)`` for each input ``X`` concerned, each derived
once and run as a ``to_torch`` function itself, so that it differentiates again; a
first-order backward pass under plain autograd runs one merged program for every input
that needs a gradient, from the statement values its forward pass kept. Both libraries
are imported only when these functions are called.

>>> import torch  # doctest: +SKIP
>>> f = to_torch("L = (X[n,d] w[d] - y[n])^2")  # doctest: +SKIP
>>> f(X=X, w=w.requires_grad_(), y=y).backward()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from ..api import compile
from ..errors import DerivativeError
from ..program import Program
from .bound import BoundProgram


def to_torch(program: str | Program) -> Callable[..., Any]:
    """A function of keyword tensors that PyTorch can differentiate, to any order.

    Its backward pass is tensorcalc's symbolic vector-Jacobian product, itself run as a
    ``to_torch`` function: a second derivative (double backward, ``torch.func.hessian``)
    differentiates that VJP symbolically again. It works under ``torch.func`` (``grad``,
    ``vjp``, ``jacrev``, ``hessian``, ``vmap``) and ``torch.compile`` (with graph breaks).
    """
    return _torch_function(compile(program))


def _torch_function(program: Program) -> Callable[..., Any]:
    """The torch function of a program; those of its derivative programs are built once,
    on first use, and kept with it."""
    gradients = _Gradients(BoundProgram(program))
    general, kept = _general_function(gradients), _kept_function(gradients)
    bound = gradients.bound

    def function(**tensors: Any) -> Any:
        arrays = bound.arrays(tensors)
        if not arrays:  # nothing to differentiate: the value itself
            return bound.program()
        if _plain_autograd():
            return kept.apply(*arrays)[0]
        return general.apply(*arrays)

    function.__doc__ = f"tensorcalc program (torch):\n{bound.program}"
    compiled: Callable[..., Any] = _disable()(function)
    return compiled


def _disable() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """torch.compile runs tensorcalc as it is, between graphs (forward and backward alike):
    dynamo cannot trace its planning, and what it runs is already a few BLAS calls."""
    import torch

    found: Callable[[Callable[..., Any]], Callable[..., Any]] | None = \
        getattr(getattr(torch, "compiler", None), "disable", None)
    return found or (lambda f: f)


class _Gradients:
    """The derivatives of one bound program as torch asks for them, each run as the torch
    function of a derivative program (built once, on first use), so that a derivative of
    it is symbolic too."""

    def __init__(self, bound: BoundProgram):
        self.bound = bound
        self.function = cache(_torch_function)  # one per derivative program of bound's
        disable = _disable()
        self.backward = disable(self._backward)
        self.shared = disable(self._shared)
        self.differentiable = disable(self._differentiable)

    def _backward(self, saved: dict[str, Any], needs: tuple[bool, ...], grad_output: Any,
                  of: BoundProgram | None = None) -> Any:
        """The gradients, one VJP program each (``of``: the program whose VJPs these are,
        ``bound`` or one seeded at its kept values)."""
        of = self.bound if of is None else of
        return tuple(_call(of.vjp(name), self.function, saved, of.cotangent, grad_output)
                     if want else None for name, want in zip(self.bound.names, needs))

    def _shared(self, of: BoundProgram, needs: tuple[bool, ...], saved: dict[str, Any],
                cotangent: Any) -> Any:
        """The gradients from one merged program (``BoundProgram.shared_backward``), from
        the kept values; one VJP program each where it cannot be merged."""
        wanted = tuple(n for n, w in zip(self.bound.names, needs) if w)
        merged = of.shared_backward(wanted)
        if merged is None:
            return self._backward(saved, needs, cotangent, of)
        env = {n: saved[n] for n in merged.plan.inputs if n in saved}
        env[of.cotangent] = cotangent
        gradients = dict(zip(wanted, merged(env)))
        return tuple(gradients.get(n) for n in self.bound.names)

    def _differentiable(self, saved: dict[str, Any], needs: tuple[bool, ...],
                        cotangent: Any) -> Any:
        """The gradients as VJP programs of the kept values (``create_graph=True``)."""
        bound = self.bound
        return tuple(_call(bound.backward_program(n), self.function, saved, bound.cotangent,
                           cotangent) if w else None for n, w in zip(bound.names, needs))

    def tangent(self, saved: dict[str, Any], tangents: tuple[Any, ...]) -> Any:
        """Forward mode: the sum of the symbolic JVPs of the inputs with a tangent."""
        _refuse_nested_forward()
        bound, total = self.bound, None
        for name, tangent in zip(bound.names, tangents):
            if tangent is None:
                continue
            value = _call(bound.jvp(name), self.function, saved, bound.tangent, tangent)
            total = value if total is None else total + value
        return total


def _general_function(gradients: _Gradients) -> Any:
    """The autograd.Function for any order, under any torch.func transform."""
    import torch

    bound = gradients.bound

    class _Function(torch.autograd.Function):
        # forward and setup_context apart, and a generated vmap rule: what torch.func needs
        generate_vmap_rule = True

        @staticmethod
        def forward(*tensors: Any) -> Any:
            return bound.program(**dict(zip(bound.names, tensors)))

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            ctx.save_for_backward(*inputs)
            ctx.save_for_forward(*inputs)

        @staticmethod
        def jvp(ctx: Any, *tangents: Any) -> Any:
            return gradients.tangent(dict(zip(bound.names, ctx.saved_tensors)), tangents)

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            saved = dict(zip(bound.names, ctx.saved_tensors))
            return gradients.backward(saved, ctx.needs_input_grad, grad_output)

    return _Function


def _kept_function(gradients: _Gradients) -> Any:
    """The autograd.Function for plain autograd (no torch.func transform, no forward
    mode): the forward pass keeps every statement's value, as outputs beside the result
    (the function returns the result only), and no backward pass computes any of them
    again. A first-order one runs one program for all the gradients wanted; a
    differentiable one (``create_graph=True``) runs each VJP program from the kept values,
    so that its derivative reaches the inputs through them, and cotangents sent to them
    come back here: the gradient of ``sum seed_s s`` over the statements they reach."""
    import torch

    bound = gradients.bound
    result = bound.program.result

    class _Kept(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *tensors: Any) -> Any:
            values = bound.program.statement_values(dict(zip(bound.names, tensors)))
            outputs = [values[result]] + [_apart(values[n], tensors) for n in bound.kept]
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(*tensors, *outputs)
            return tuple(outputs)

        @staticmethod
        def backward(ctx: Any, *grads: Any) -> Any:
            saved = dict(zip(bound.names + (result,) + bound.kept, ctx.saved_tensors))
            needs = ctx.needs_input_grad
            seeds = tuple((n, g) for n, g in zip((result,) + bound.kept, grads)
                          if g is not None)
            if not any(needs) or not seeds:
                return (None,) * len(bound.names)
            if seeds[0][0] != result or len(seeds) > 1:  # kept values too
                seeded, names = bound.seeded(tuple(n for n, _ in seeds))
                given = {**saved, **dict(zip(names, (g for _, g in seeds)))}
                one = seeds[0][1].new_ones(())
                if torch.is_grad_enabled():  # the VJPs of the seeded program, recomputed
                    return gradients.backward(given, needs, one, seeded)
                return gradients.shared(seeded, needs, given, one)
            if torch.is_grad_enabled():  # create_graph=True: a derivative may follow
                return gradients.differentiable(saved, needs, grads[0])
            return gradients.shared(bound, needs, saved, grads[0])

    return _Kept


def _plain_autograd() -> bool:
    """No torch.func transform and no forward-mode level is active."""
    import torch.autograd.forward_ad as forward_ad

    try:
        from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
    except ImportError:  # pragma: no cover - another torch: take the general path
        return False
    return not retrieve_all_functorch_interpreters() and \
        getattr(forward_ad, "_current_level", 0) < 0


def _apart(value: Any, inputs: tuple[Any, ...]) -> Any:
    """A kept value as an output of its own: a copy where it is an input or a view of one
    (``Y[j,i] = X[i,j]``), which torch would otherwise tie to that input."""
    if any(value is t for t in inputs) or getattr(value, "_base", None) is not None:
        return value.clone()
    return value


def _refuse_nested_forward() -> None:
    """torch does not carry an outer forward-mode level through an autograd.Function's
    ``jvp`` (with a plain Function computing x**3, ``jacfwd(jacfwd(f))`` is 0): refuse
    two forward levels at once rather than answer zeros."""
    try:
        from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters
    except ImportError:  # pragma: no cover - another torch: nothing to look at
        return
    levels = sum(str(i.key()).endswith("Jvp") for i in retrieve_all_functorch_interpreters())
    if levels >= 2:
        raise DerivativeError(
            "forward mode over forward mode (torch.func.jacfwd of jacfwd, or of hessian) "
            "through a tc.to_torch function is not supported: torch would answer zeros. "
            "Make the outer derivatives reverse mode (jacrev), e.g. "
            "jacrev(hessian(f)); or derive with tc.derive / tc.hessian")


def _call(derivative: Program, function: Callable[[Program], Callable[..., Any]],
          saved: dict[str, Any], seed_name: str, seed: Any) -> Any:
    """A VJP or JVP program run as its torch function (so it is differentiable again) on
    the saved inputs it needs and its seed (the cotangent or the tangent)."""
    given = {n: saved[n] for n in derivative.needed_inputs if n in saved}
    if seed_name in derivative.needed_inputs:
        given[seed_name] = seed
    value = function(derivative)(**given)
    like = next(iter(saved.values()))
    return value if hasattr(value, "shape") else like.new_tensor(value)


"""Derivatives of whole programs: ``derive``, ``grad``, ``hessian``, ``vjp``, ``jvp``.

Each returns a ``Program``: printable, runnable, and derivable again. A derivative
takes every input of the program it came from.

>>> print(derive("Y[i,j] = X[i,k] W[k,j]", "X"))
dY_dX[i,j,p,q] = delta[i,p] W[q,j]
"""

from __future__ import annotations

import re

from .derive import (
    Derived,
    _Names,
    avoid_indices,
    deltas,
    forward,
    needed_statements,
    reuse_forward,
    reverse,
    sized,
)
from .errors import DerivativeError, ProgramError, refuses_deep_nesting
from .ir import Ref, Statement, Sum, Term, statement_refs
from .program import Program

_WRT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([^\]]*)\]\s*)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _as_program(program: str | Program) -> Program:
    from .api import compile

    return compile(program)


def _parse_wrt(p: Program, wrt: str) -> tuple[str, tuple[str, ...] | None]:
    if not isinstance(wrt, str):
        raise DerivativeError(f"wrt names an input, like 'X' or 'X[p,q]', not {wrt!r}")
    m = _WRT.match(wrt)
    if not m:
        raise DerivativeError(f"wrt must look like 'X' or 'X[p,q]', got {wrt!r}")
    name, axes_text = m.group(1), m.group(2)
    if name not in p.accepts:
        if name in {st.name for st in p.statements}:
            raise DerivativeError(
                f"{name} is computed by the program; derivatives are taken with respect to "
                f"inputs ({', '.join(p.accepts)})"
            )
        raise DerivativeError(
            f"{name} is not an input of the program; its inputs are {', '.join(p.accepts)}"
        )
    if axes_text is None:
        return name, None
    axes = tuple(a.strip() for a in axes_text.split(",")) if axes_text.strip() else ()
    rank = p.accepts[name]
    if len(axes) != rank:
        raise DerivativeError(f"{name} has {rank} axes but wrt names {len(axes)}: {wrt!r}")
    for k, a in enumerate(axes):
        if not _NAME.match(a):
            raise DerivativeError(f"{a!r} in wrt={wrt!r} is not an index name")
        if a in axes[:k]:
            raise DerivativeError(f"index {a} appears twice in wrt={wrt!r}")
    return name, axes


def _target(p: Program, of: str | None) -> Statement:
    name = of if of is not None else p.result
    if not isinstance(name, str):
        raise DerivativeError(f"of names a statement, not {name!r}")
    if name not in {st.name for st in p.statements}:
        raise DerivativeError(f"of={name!r} is not assigned by the program")
    return p.statement(name)


class _Setup:
    """What every derivative needs: the statements, fresh names, the new axes."""

    def __init__(self, program: str | Program, wrt: str, of: str | None, reserve: tuple[str, ...]):
        p = _as_program(program)
        self.program = p
        self.wrt, axes = _parse_wrt(p, wrt)
        self.of = _target(p, of)
        statements = tuple(needed_statements(p.statements, self.of.name))
        if axes:
            statements = tuple(avoid_indices(st, set(axes)) for st in statements)
            self.of = next(st for st in statements if st.name == self.of.name)
        self.statements = statements
        self.names = _Names(statements, tuple(p.accepts))
        for r in reserve:
            if r in self.names.tensors:
                raise DerivativeError(f"{r} is already a name in the program; choose another")
            self.names.tensors.add(r)
        if axes:
            self.names.indices |= set(axes)
            self.axes = axes
        else:
            self.axes = self.names.axes(p.accepts[self.wrt])

    def finish(self, derived: Derived, extra_inputs: dict[str, int] | None = None) -> Program:
        result = _with_sizes(derived.result, self)
        original = {st.name for st in self.statements}
        forward_part = [st for st in derived.statements if st.name in original]
        new_part = reuse_forward(
            forward_part, [st for st in derived.statements if st.name not in original] + [result])
        statements = needed_statements(tuple(forward_part + new_part), result.name)
        produced = {st.name for st in statements}
        inputs: dict[str, None] = {}
        for st in statements:
            for r in statement_refs(st):
                if r.name not in produced:
                    inputs.setdefault(r.name)
        ranks = dict(self.program.ranks)
        ranks.update(extra_inputs or {})
        for st in statements:
            ranks[st.name] = len(st.indices)
        accepts = dict(self.program.accepts)
        accepts.update(extra_inputs or {})
        return Program(statements, tuple(inputs), ranks, result.name, accepts)


def _with_sizes(result: Statement, setup: _Setup) -> Statement:
    """Size every axis of the result: ``wrt[p,q]`` sizes the new axes and the result
    ``Y[i,j]`` its own, where the right-hand side cannot (only shapes are computed)."""
    return sized(result, [Ref(setup.wrt, setup.axes), Ref(setup.of.name, setup.of.indices)])


@refuses_deep_nesting
def derive(program: str | Program, wrt: str, of: str | None = None) -> Program:
    """The derivative of the result (or of ``of``) with respect to the input ``wrt``.

    Its axes are the result's followed by ``wrt``'s (the layout of ``jax.jacobian``);
    for a scalar result it is the gradient. ``wrt="X[p,q]"`` names the new axes.
    """
    s = _Setup(program, wrt, of, ())
    return _derive(s, s.names.tensor(f"d{s.of.name}_d{s.wrt}"))


def _derive(s: _Setup, name: str) -> Program:
    if not s.of.indices:
        derived = reverse(s.statements, (), s.of.name, s.wrt, None, s.axes, name, s.names)
    else:
        def seed(ref: Ref) -> Sum:
            return deltas(ref.indices, s.axes)

        derived = forward(s.statements, (), s.of.name, s.wrt, seed, s.axes, name, s.names)
    return s.finish(derived)


jacobian = derive


@refuses_deep_nesting
def grad(program: str | Program, wrt: str, of: str | None = None) -> Program:
    """The gradient of a scalar result: shaped like ``wrt``."""
    s = _Setup(program, wrt, of, ())
    if s.of.indices:
        raise DerivativeError(
            f"grad needs a scalar result, but {s.of.name} has indices "
            f"[{','.join(s.of.indices)}]; use derive (the Jacobian) or vjp"
        )
    return derive(s.program, wrt, of)


@refuses_deep_nesting
def hessian(program: str | Program, wrt: str, of: str | None = None) -> Program:
    """The Hessian of a scalar result: shaped ``wrt.shape + wrt.shape``."""
    g = grad(program, wrt, of)
    s = _Setup(g, _parse_wrt(g, wrt)[0], None, ())
    name = s.names.tensor(f"d2{_target(_as_program(program), of).name}_d{s.wrt}2")
    return _derive(s, name)


@refuses_deep_nesting
def vjp(program: str | Program, wrt: str, cotangent: str = "G", of: str | None = None) -> Program:
    """``sum_I G[I] d result[I] / d wrt[J]``, without forming the Jacobian.

    ``cotangent`` names a new input shaped like the result; the value is shaped like ``wrt``.
    """
    _check_new_name(cotangent, "cotangent")
    s = _Setup(program, wrt, of, (cotangent,))
    seed = Ref(cotangent, s.of.indices)
    name = s.names.tensor(f"vjp_{s.wrt}")
    derived = reverse(s.statements, (), s.of.name, s.wrt, seed, s.axes, name, s.names)
    return s.finish(derived, {cotangent: len(s.of.indices)})


@refuses_deep_nesting
def jvp(program: str | Program, wrt: str, tangent: str = "V", of: str | None = None) -> Program:
    """``sum_J d result[I] / d wrt[J] V[J]``, without forming the Jacobian.

    ``tangent`` names a new input shaped like ``wrt``; the value is shaped like the result.
    """
    _check_new_name(tangent, "tangent")
    s = _Setup(program, wrt, of, (tangent,))
    name = s.names.tensor(f"jvp_{s.of.name}")

    def seed(ref: Ref) -> Sum:
        return Sum((Term(1.0, (Ref(tangent, ref.indices),)),))

    derived = forward(s.statements, (), s.of.name, s.wrt, seed, (), name, s.names)
    s.axes = ()
    return s.finish(derived, {tangent: s.program.accepts[s.wrt]})


def _check_new_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or name in ("delta", "sum"):
        raise ProgramError(f"{what} must be a tensor name, got {name!r}")



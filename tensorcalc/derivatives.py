"""Derivatives of whole programs: ``derive``, ``grad``, ``hessian``, ``vjp``, ``jvp``.

Each returns a ``Program``: printable, runnable, and derivable again. A derivative
takes every input of the program it came from. The work is done by ``rules``
(one statement), ``modes`` (tangents forward, adjoints in reverse) and ``reuse``
(forward values referenced, not copied); this module picks the mode and runs the
result through ``PASSES`` into a program (``AFTER_DERIVATION`` sees each one).

>>> print(derive("Y[i,j] = X[i,k] W[k,j]", "X"))
input X[p,r], W[q,j]
dY_dX[i,j,p,q] = delta[i,p] W[q,j]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .api import compile as compile_program
from .calculus.adjoints import reverse
from .calculus.modes import Derived, Names, all_indices, forward
from .calculus.ranges import with_ranges
from .calculus.reuse import hoist_repeated, reuse_forward, share_products
from .calculus.rules import deltas
from .calculus.split import split_nested
from .calculus.subexpressions import share_subexpressions
from .errors import DerivativeError, ProgramError, refuses_deep_nesting
from .ir import (
    SIZE_MARK,
    access,
    dependencies,
    fresh_name,
    needed_statements,
    rename_extents,
    rename_sum,
    statement_refs,
)
from .ir.nodes import Ref, Statement, Sum, Term
from .ir.recurrences import recurrence_groups
from .ir.sizes import resolve_extents, sized
from .ops.reductions import RESERVED
from .program import Program

_WRT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([^\]]*)\]\s*)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
                + (f"inputs ({', '.join(p.accepts)})" if p.accepts else
                   "inputs, and it has none")
            )
        raise DerivativeError(
            f"{name} is not an input of the program; "
            + (f"its inputs are {', '.join(p.accepts)}" if p.accepts else "it has no inputs")
        )
    if name in p.index_arrays:
        raise DerivativeError(f"{name} is an index array (a subscript): it picks "
                              "positions and has no derivative")
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
        if a in RESERVED:
            raise DerivativeError(f"{a} in wrt={wrt!r} is a reserved word and cannot name "
                                  "an index")
    return name, axes


def _target(p: Program, of: str | None) -> Statement:
    name = of if of is not None else p.result
    if not isinstance(name, str):
        raise DerivativeError(f"of names a statement, not {name!r}")
    if name not in {st.name for st in p.statements}:
        raise DerivativeError(f"of={name!r} is not assigned by the program")
    return p.statement(name)


@dataclass(frozen=True)
class _Setup:
    """What every derivative needs: the statements, fresh names, the new axes."""

    program: Program
    wrt: str
    of: Statement
    statements: tuple[Statement, ...]  # those ``of`` needs, clear of the named axes
    names: Names
    axes: tuple[str, ...]  # the axes the derivative adds: wrt's, or none (a JVP)

    @classmethod
    def build(cls, program: str | Program, wrt: str, of: str | None,
              reserve: tuple[str, ...] = (), adds_axes: bool = True) -> _Setup:
        """``reserve`` names new inputs (a cotangent, a tangent); a JVP adds no axes."""
        p = compile_program(program)
        wrt_name, named_axes = _parse_wrt(p, wrt)
        target = _target(p, of)
        statements = needed_statements(p.statements, target.name)
        if named_axes:
            statements = tuple(avoid_indices(st, set(named_axes)) for st in statements)
            target = next(st for st in statements if st.name == target.name)
        taken = {st.name for st in statements} | set(p.accepts)
        for r in reserve:
            if r in taken:
                raise DerivativeError(f"{r} is already a name in the program; choose another")
        names = Names(statements, tuple(p.accepts) + reserve, named_axes or ())
        statements = with_ranges(split_nested(statements, names.tensor), names.tensor)
        target = next(st for st in statements if st.name == target.name)
        if not adds_axes:
            axes: tuple[str, ...] = ()
        elif named_axes:
            axes = named_axes
        else:
            axes = names.axes(p.accepts[wrt_name])
        return cls(p, wrt_name, target, statements, names, axes)

    def lineage(self) -> tuple[str, tuple[str, ...]]:
        """What the derivative is of: deriving a derivative again extends its ``wrt``."""
        p = self.program
        if p.of is not None and self.of.name == p.result:
            return p.of, p.wrt + (self.wrt,)
        return self.of.name, (self.wrt,)

    def finish(self, derived: Derived, extra_inputs: dict[str, int] | None = None,
               lineage: tuple[str, tuple[str, ...]] | None = None) -> Program:
        """The derived statements through ``PASSES``, as a program; each function in
        ``AFTER_DERIVATION`` is then given it."""
        result = _with_sizes(derived.result, self)
        original = {st.name for st in self.statements}
        draft = Draft(self, [st for st in derived.statements if st.name in original],
                      [st for st in derived.statements if st.name not in original] + [result],
                      result.name)
        recurrent = bool(recurrence_groups(derived.statements + [result]))
        for step in PASSES:
            draft = _kept_steps(draft, step(draft)) if recurrent else step(draft)
        program = _assemble(draft, extra_inputs or {}, lineage)
        for hook in AFTER_DERIVATION:
            hook(program)
        return program


@dataclass(frozen=True)
class Draft:
    """A derivative on its way to a program: the statements of the program it is taken of
    that it needs (``forward``), and those it adds (``new``), ``result`` the last of them."""

    setup: _Setup
    forward: list[Statement]
    new: list[Statement]
    result: str

    def with_new(self, new: list[Statement]) -> Draft:
        return Draft(self.setup, self.forward, new, self.result)


def reuse_forward_values(d: Draft) -> Draft:
    """Values the forward statements compute are read by name, not computed again."""
    return d.with_new(reuse_forward(d.forward, d.new))


def share_forward_pieces(d: Draft) -> Draft:
    """A piece of an expression computed twice, once at least in the derivative, is
    computed once, by a statement of its own (the forward pass's, where it uses it too)."""
    forward, new = share_subexpressions(d.forward, d.new, d.result, d.setup.names.tensor)
    return Draft(d.setup, forward, new, d.result)


def hoist_repeated_functions(d: Draft) -> Draft:
    """A function of whole axes used more than once is computed once."""
    return d.with_new(hoist_repeated(d.new, d.setup.names.tensor))


def share_repeated_products(d: Draft) -> Draft:
    """A contraction two terms compute is computed once."""
    return d.with_new(share_products(d.new, d.setup.names.tensor))


def keep_given_sizes(d: Draft) -> Draft:
    """Sizes given by name are the program's: its own indices keep those names, but for the
    result's copies of the axes of what it is the derivative of (a size given to ``h[g]``
    is given to ``dh_da[g,p]``); any other index of the derivative so named is renamed."""
    sizes = d.setup.program.sizes
    if not sizes:
        return d
    own = set(sizes)
    return d.with_new([avoid_indices(st, own - (set(d.setup.of.indices)
                                                if st.name == d.result else set()))
                       for st in d.new])


def sizes_from_inputs(d: Draft) -> Draft:
    """Extents that name statements become input axes (nothing is computed for a shape),
    and only the statements the result needs are kept."""
    resolved = resolve_extents(d.forward + d.new, d.setup.statements)
    return Draft(d.setup, [], list(needed_statements(resolved, d.result)), d.result)


Pass = Callable[[Draft], Draft]


def _kept_steps(before: Draft, after: Draft) -> Draft:
    """A pass's work on a derivative with recurrences, where it keeps them recurrences
    that run step by step (docs/recurrences.md); the draft as it was where it does not
    (a piece it named that reads a step of one along another index than its first)."""
    try:
        recurrence_groups(after.forward + after.new)
    except ProgramError:
        return before
    return after

#: The passes every derivative goes through, in order, after the chain rule.
PASSES: tuple[Pass, ...] = (
    reuse_forward_values,
    share_forward_pieces,
    hoist_repeated_functions,
    share_repeated_products,
    keep_given_sizes,
    sizes_from_inputs,
)

#: Functions given every program a derivative function returns (``derive``, ``grad``,
#: ``hessian``, ``vjp``, ``jvp``), in order: a place to check or record them (the tests
#: re-parse every printed derivative). Append to it; what they return is ignored.
AFTER_DERIVATION: list[Callable[[Program], object]] = []


def _assemble(d: Draft, extra_inputs: dict[str, int],
              lineage: tuple[str, tuple[str, ...]] | None) -> Program:
    """The program of a finished draft: its inputs in order of first use."""
    statements = d.forward + d.new
    produced = {st.name for st in statements}
    inputs: dict[str, None] = {}
    for st in statements:
        for name in sorted(dependencies(st), key=_first_use(st)):
            if name not in produced and not name.startswith(SIZE_MARK):
                inputs.setdefault(name)
    program = d.setup.program
    ranks = dict(program.ranks)
    ranks.update(extra_inputs)
    for st in statements:
        ranks[st.name] = len(st.indices)
    accepts = dict(program.accepts)
    accepts.update(extra_inputs)
    of, wrt = lineage if lineage is not None else (None, ())
    return Program(statements, tuple(inputs), ranks, d.result, accepts, of=of, wrt=wrt,
                   sizes=program.sizes)


def avoid_indices(st: Statement, names: set[str]) -> Statement:
    """Rename every index of a statement (left side and bound) that is in ``names``."""
    used = set(st.indices) | all_indices(st.rhs) | names
    mapping: dict[str, str] = {}
    for i in sorted((set(st.indices) | all_indices(st.rhs)) & names):
        mapping[i] = fresh_name(i, used)
        used.add(mapping[i])
    if not mapping:
        return st
    return Statement(st.name, tuple(mapping.get(i, i) for i in st.indices),
                     rename_sum(st.rhs, mapping), rename_extents(st.extents, mapping))


def derivative_name(of: str, wrt: tuple[str, ...]) -> str:
    """``dL_dw``; ``d3f_dx3`` for one input derived by repeatedly; ``d2L_dW1_dW1`` where
    that count would run into a name's own digits, and ``d2L_dW_dV`` for mixed ones.

    >>> derivative_name("L", ("W1", "W1")), derivative_name("f", ("x", "x", "x"))
    ('d2L_dW1_dW1', 'd3f_dx3')
    """
    if len(wrt) == 1:
        return f"d{of}_d{wrt[0]}"
    if len(set(wrt)) == 1 and not wrt[0][-1].isdigit():
        return f"d{len(wrt)}{of}_d{wrt[0]}{len(wrt)}"
    return f"d{len(wrt)}{of}_" + "_".join(f"d{w}" for w in wrt)


def _first_use(st: Statement) -> Callable[[str], int]:
    """Order names as a statement first mentions them (tensors, then extents)."""
    order = {r.name: k for k, r in reversed(list(enumerate(statement_refs(st))))}
    return lambda name: order.get(name, len(order))


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
    s = _Setup.build(program, wrt, of)
    return _derive(s)


def _derive(s: _Setup) -> Program:
    lineage = s.lineage()
    name = s.names.tensor(derivative_name(*lineage))
    if not s.of.indices:
        derived = reverse(s.statements, s.of.name, s.wrt, None, s.axes, name, s.names)
    else:
        def seed(ref: Ref) -> Sum:
            return deltas(ref.axes, s.axes)

        derived = forward(s.statements, s.of.name, s.wrt, seed, s.axes, name, s.names)
    return s.finish(derived, lineage=lineage)


jacobian = derive


def _require_scalar(s: _Setup, what: str, instead: str) -> None:
    if s.of.indices:
        raise DerivativeError(
            f"{what} needs a scalar result, but {s.of.name} has indices "
            f"[{','.join(s.of.indices)}]; {instead}"
        )


@refuses_deep_nesting
def grad(program: str | Program, wrt: str, of: str | None = None) -> Program:
    """The gradient of a scalar result: shaped like ``wrt``."""
    s = _Setup.build(program, wrt, of)
    _require_scalar(s, "grad", "use derive (the Jacobian) or vjp")
    return _derive(s)


@refuses_deep_nesting
def hessian(program: str | Program, wrt: str, of: str | None = None) -> Program:
    """The Hessian of a scalar result: shaped ``wrt.shape + wrt.shape``."""
    s = _Setup.build(program, wrt, of)
    _require_scalar(s, "hessian", "for the Jacobian of the Jacobian, derive twice: "
                                  "derive(derive(program, wrt), wrt)")
    return _derive(_Setup.build(grad(s.program, wrt, of), s.wrt, None))


@refuses_deep_nesting
def vjp(program: str | Program, wrt: str, cotangent: str = "G", of: str | None = None) -> Program:
    """``sum_I G[I] d result[I] / d wrt[J]``, without forming the Jacobian.

    ``cotangent`` names a new input shaped like the result; the value is shaped like ``wrt``.
    """
    _check_new_name(cotangent, "cotangent")
    s = _Setup.build(program, wrt, of, reserve=(cotangent,))
    seed = Ref(cotangent, s.of.indices)
    name = s.names.tensor(f"vjp_{s.wrt}")
    derived = reverse(s.statements, s.of.name, s.wrt, seed, s.axes, name, s.names)
    return s.finish(derived, {cotangent: len(s.of.indices)})


@refuses_deep_nesting
def jvp(program: str | Program, wrt: str, tangent: str = "V", of: str | None = None) -> Program:
    """``sum_J d result[I] / d wrt[J] V[J]``, without forming the Jacobian.

    ``tangent`` names a new input shaped like ``wrt``; the value is shaped like the result.
    """
    _check_new_name(tangent, "tangent")
    s = _Setup.build(program, wrt, of, reserve=(tangent,), adds_axes=False)
    name = s.names.tensor(f"jvp_{s.of.name}")

    def seed(ref: Ref) -> Sum:
        return Sum((Term(1.0, (access(tangent, ref.axes),)),))

    derived = forward(s.statements, s.of.name, s.wrt, seed, s.axes, name, s.names)
    return s.finish(derived, {tangent: s.program.accepts[s.wrt]})


def _check_new_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProgramError(f"{what} must be a tensor name, got {name!r}")
    if name in RESERVED:
        raise ProgramError(f"{what}={name!r} is a reserved word and cannot name a tensor")



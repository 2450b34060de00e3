"""``Program``: a checked program, ready to print, run and differentiate.

>>> import numpy as np
>>> p = Program.from_source("Y[i,j] = X[i,k] W[k,j]")
>>> p.inputs
('X', 'W')
>>> p(X=np.ones((2, 3)), W=np.ones((3, 4))).shape
(2, 4)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend.arrays import bind_inputs, signature
from .backend.compact import Compact
from .backend.export import to_python
from .backend.plan import ProgramPlan, plan_program
from .backend.run import Runner
from .caching import cached_property
from .errors import InputError, MemoryLimitError, ProgramError, refuses_deep_nesting, warn
from .ir import SIZE_MARK, index_tensors, needed_statements, statement_extents, statement_refs
from .ir.nodes import Ref, Statement
from .ir.sizes import checked_sizes, with_given_sizes
from .language.declarations import format_program
from .language.lower import lower
from .language.syntax import parse
from .language.traps import Trap
from .render.diagram import diagram
from .render.printing import Derivative, format_latex, format_statement


class Program:
    """A program of statements; its value is that of its ``result`` statement.

    ``accepts`` names arrays the program takes without needing them: a derivative
    accepts every input of the program it came from. A derivative also records what its
    result is the derivative of: ``of`` (a statement's name) and ``wrt`` (the inputs, in
    the order they were derived by; ``()`` for any other program).

    ``traps`` are the places where the summation convention most likely reads the text
    otherwise than its writer meant (``language/traps.py``): found when text is compiled,
    none in a program tensorcalc writes (a derivative).
    """

    def __init__(self, statements: Iterable[Statement], inputs: Iterable[str],
                 ranks: dict[str, int], result: str | None = None,
                 accepts: dict[str, int] | None = None, *,
                 of: str | None = None, wrt: tuple[str, ...] = (),
                 sizes: Mapping[str, int] | None = None, traps: Iterable[Trap] = ()):
        self.statements: tuple[Statement, ...] = tuple(statements)
        if not self.statements:
            raise ProgramError("a program needs at least one statement")
        self.inputs: tuple[str, ...] = tuple(inputs)
        self.ranks = dict(ranks)
        self.result = result if result is not None else self.statements[-1].name
        self._by_name = {st.name: st for st in self.statements}
        if self.result not in self._by_name:
            known = ", ".join(self._by_name)
            raise ProgramError(f"{self.result} is not assigned by the program (it assigns {known})")
        self.accepts = {n: r for n, r in (accepts or {}).items() if n not in self._by_name}
        for name in self.inputs:
            self.accepts.setdefault(name, self.ranks[name])
        self.of = of if wrt else None
        self.wrt = tuple(wrt) if of is not None else ()
        self._runners_lock = threading.Lock()
        # (names, their shapes and types, the runner) of the last plain NumPy call
        self._last_call: tuple[frozenset[str], tuple[tuple[str, Any, Any], ...], Runner] | None \
            = None
        # Sizes the caller gave for indices no array sizes (docs/index-arithmetic.md), for every
        # call.
        self.sizes: dict[str, int] = checked_sizes(sizes)
        self.traps: tuple[Trap, ...] = tuple(traps)

    # --- construction -------------------------------------------------------

    @classmethod
    def from_source(cls, text: str, result: str | None = None, *, strict: bool = False,
                    warn: bool = True) -> Program:
        """The program the text says. Each of its traps is a ``TensorCalcWarning``
        (``warn=False``: none, for ``explain``, which prints them as notes), or with
        ``strict=True`` a ``ProgramError``."""
        try:
            lowered = lower(parse(text))
        except RecursionError:
            raise ProgramError("the program is nested too deeply to process") from None
        program = cls(lowered.statements, lowered.inputs, lowered.ranks, result,
                      traps=lowered.traps)
        return program.checked(strict) if warn or strict else program

    def checked(self, strict: bool = False) -> Program:
        """This program, after a ``TensorCalcWarning`` for each of its traps; with
        ``strict=True`` a ``ProgramError`` naming them all instead."""
        if strict and self.traps:
            raise ProgramError("refused (strict): the summation convention likely reads this "
                               "program otherwise than meant: "
                               + " ".join(f"({n}) {t.message}."
                                          for n, t in enumerate(self.traps, 1)))
        for t in self.traps:
            warn(t.message)
        return self

    def with_result(self, name: str) -> Program:
        """The same statements, with ``name`` as the result."""
        same = name == self.result
        return Program(self.statements, self.inputs, self.ranks, name, self.accepts,
                       of=self.of if same else None, wrt=self.wrt if same else (),
                       sizes=self.sizes, traps=self.traps)

    def with_sizes(self, sizes: Mapping[str, int] | None) -> Program:
        """The same program, with ``sizes`` given for every call (docs/index-arithmetic.md)."""
        if not sizes:
            return self
        given = checked_sizes(sizes)
        statements = [with_given_sizes(st, given) for st in self.statements]
        return Program(statements, self.inputs, self.ranks, self.result, self.accepts,
                       of=self.of, wrt=self.wrt, sizes={**self.sizes, **given},
                       traps=self.traps)

    def statement(self, name: str) -> Statement:
        try:
            return self._by_name[name]
        except KeyError:
            raise ProgramError(f"{name} is not assigned by the program") from None

    @cached_property
    def needed(self) -> tuple[Statement, ...]:
        """The statements the result depends on (for values or sizes), in program order."""
        return tuple(needed_statements(self.statements, self.result))

    @cached_property
    def plan(self) -> ProgramPlan:
        """What each needed statement computes, decided once: run and exported from here."""
        return plan_program(self.needed, self.needed_inputs, self.result)

    @cached_property
    def _runners(self) -> dict[tuple[Any, ...], Runner]:
        """Execution plans, one per signature of input shapes, dtypes and array types."""
        return {}

    @cached_property
    def _names(self) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset(self.accepts), frozenset(self.needed_inputs)

    @cached_property
    def index_arrays(self) -> frozenset[str]:
        """The inputs used as subscripts (``t`` in ``E[t[n], j]``): integer arrays."""
        return frozenset(g.name for st in self.statements for g in index_tensors(st.rhs))

    @cached_property
    def needed_inputs(self) -> tuple[str, ...]:
        names = {st.name for st in self.statements}
        found: dict[str, None] = {}
        for st in self.needed:
            for r in statement_refs(st):
                if r.name not in names:
                    found.setdefault(r.name)
            for g in index_tensors(st.rhs):
                found.setdefault(g.name)
            for e in statement_extents(st):  # an input whose shape alone is needed
                if e.tensor not in names and not e.tensor.startswith(SIZE_MARK):
                    found.setdefault(e.tensor)
        return tuple(found)

    # --- running ------------------------------------------------------------

    def __call__(self, /, **arrays: Any) -> Any:
        # The fast path: the same NumPy arrays' names, shapes and float types as the last
        # call that took the common route, whose checks they passed: run its runner.
        last = self._last_call
        if last is not None and arrays.keys() == last[0] and not AFTER_EVALUATION:
            for name, shape, dtype in last[1]:
                v = arrays[name]
                if type(v) is not np.ndarray or v.shape != shape or v.dtype != dtype:
                    break
            else:
                return _owned(last[2].dense(dict(arrays)), arrays.values())
        return self._call(arrays)

    @refuses_deep_nesting
    def _call(self, arrays: dict[str, Any]) -> Any:
        value = self._run(arrays, compact=False)
        if not self.sizes and not self.index_arrays and all(
                type(v) is np.ndarray and v.dtype.kind == "f" for v in arrays.values()):
            runner = self._runners.get(self._signature(arrays, self.sizes))
            if runner is not None:
                self._last_call = (frozenset(arrays), tuple(
                    (n, v.shape, v.dtype) for n, v in arrays.items()), runner)
        return value

    @refuses_deep_nesting
    def evaluate(self, arrays: Mapping[str, Any] | None = None, /, *,
                 sizes: Mapping[str, int] | None = None, compact: bool = False,
                 **more: Any) -> Any:
        """The result's value for the arrays (a mapping, or keywords, or both); ``sizes``
        gives sizes of indices no array gives (docs/index-arithmetic.md); with ``compact=True`` a
        ``Compact`` that keeps delta ties.

        The mapping may hold arrays the program does not take (one dict of data can feed
        several programs): they are left out. A keyword is an input or an error, as in a
        call, and so is a name the program computes, in the mapping too."""
        if arrays is not None and not isinstance(arrays, Mapping):
            raise InputError(f"evaluate() takes the arrays as a mapping of names to arrays, "
                             f"not {type(arrays).__name__}")
        given = {**self.sizes, **checked_sizes(sizes)} if sizes else self.sizes
        used = {n: v for n, v in (arrays or {}).items()
                if n in self.accepts or n in self._by_name}
        return self._run({**used, **more}, compact=compact, sizes=given)

    def _runner(self, env: dict[str, Any], sizes: Mapping[str, int] | None = None) -> Runner:
        """The plan bound to the signature of ``env``'s inputs, bound on first use."""
        sizes = self.sizes if sizes is None else sizes
        key = self._signature(env, sizes)
        runner = self._runners.get(key)
        if runner is None:
            runner = Runner(self.plan, env, dict(sizes))
            with self._runners_lock:  # programs are shared between threads
                if len(self._runners) >= _MAX_SIGNATURES:
                    self._runners.pop(next(iter(self._runners)), None)
                self._runners[key] = runner
        return runner

    def _signature(self, env: Mapping[str, Any], sizes: Mapping[str, int]) -> tuple[Any, ...]:
        """What a runner is bound to: the needed inputs' kinds, shapes and types, and the
        sizes given."""
        key: tuple[Any, ...] = tuple([  # NumPy's inline: this runs on every call
            (np.ndarray, v.shape, v.dtype) if type(v) is np.ndarray else signature(v)
            for v in map(env.__getitem__, self.needed_inputs)])
        if sizes:
            key += tuple(sorted(sizes.items()))
        return key

    def statement_values(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """Every statement's value (and the inputs), from one run: what ``to_torch`` keeps
        from its forward pass for the backward one."""
        env = self.bind(arrays)
        self._runner(env).dense(env, every=True)
        return env

    def _run(self, arrays: dict[str, Any], compact: bool,
             sizes: Mapping[str, int] | None = None) -> Any:
        env = self.bind(arrays)
        try:
            runner = self._runner(env, sizes)
            if compact:
                value = runner.compact(env)
            else:
                value = runner.dense(env)
        except MemoryError as err:  # an allocation the limit let through still failed
            raise MemoryLimitError(f"could not evaluate {self.result}: out of memory ({err}); "
                                   "lower tensorcalc.set_memory_limit() to be told earlier, "
                                   "or use compact=True, vjp or jvp") from None
        if AFTER_EVALUATION:
            seen = Evaluation(self, arrays, compact, sizes, value)
            for hook in AFTER_EVALUATION:
                hook(seen)
        if isinstance(value, Compact):
            return value
        return _owned(value, arrays.values())

    def bind(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """The caller's arrays checked against the program and made arrays of one library
        and one float type (index arrays integer), as a call binds them."""
        accepts, needed = self._names
        return bind_inputs(arrays, accepts, needed, self.needed_inputs, self._by_name,
                           self.index_arrays)

    # --- showing ------------------------------------------------------------

    @refuses_deep_nesting
    def __str__(self) -> str:
        return format_program(self.statements, self.accepts, avoid=self.sizes)

    @refuses_deep_nesting
    def source(self) -> str:
        """The same as ``str()``: index notation that compiles to this program again."""
        return str(self)

    def __repr__(self) -> str:
        return f"tensorcalc.Program({str(self)!r})"

    @refuses_deep_nesting
    def latex(self) -> str:
        """The statements in LaTeX, one ``\\\\``-separated line each.

        A derivative's left side is a fraction (``\\frac{\\partial L}{\\partial w_{p}}``).
        The ``input`` line ``str()`` may start with is left out: it sizes indices, it is
        not mathematics (``_repr_markdown_`` shows it, as code).
        """
        return " \\\\\n".join(self._latex_lines())

    def _latex_lines(self) -> list[str]:
        return [format_latex(st, self._derivative() if st.name == self.result else None)
                for st in self.statements]

    def _derivative(self) -> Derivative | None:
        """What the result is the derivative of, with the axes each derivation added."""
        if self.of is None:
            return None
        indices = self.statement(self.result).indices
        ranks = [self.accepts.get(w, 0) for w in self.wrt]
        start = len(indices) - sum(ranks)
        if start < 0:  # pragma: no cover - a derivative always has its wrt axes
            return None
        wrt = []
        for name, rank in zip(self.wrt, ranks):
            wrt.append(Ref(name, indices[start:start + rank]))
            start += rank
        return Ref(self.of, indices[:len(indices) - sum(ranks)]), tuple(wrt)

    @refuses_deep_nesting
    def _repr_latex_(self) -> str:
        """For notebooks: the statements aligned at ``=`` in one display."""
        lines = [line.replace(" = ", " &= ", 1) for line in self._latex_lines()]
        return "$$\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}$$"

    @refuses_deep_nesting
    def _repr_markdown_(self) -> str:
        """For notebooks: the ``input`` line, if ``str()`` has one, as code; then the LaTeX."""
        first = str(self).splitlines()[0]
        head = f"`{first}`\n\n" if first.startswith("input ") else ""
        return head + self._repr_latex_()

    @refuses_deep_nesting
    def to_python(self, name: str | None = None) -> str:
        """Source of one function with the inputs as keyword parameters, computing the
        result with NumPy and opt_einsum only (tensorcalc is not needed to run it)."""
        if name is not None and not (isinstance(name, str) and name.isidentifier()):
            raise ProgramError(f"to_python's name must be a Python identifier, not {name!r}")
        texts = {st.name: format_statement(st) for st in self.needed + self.plan.hoisted}
        return to_python(self.plan, tuple(self.accepts), texts, name, self.sizes,
                         self.index_arrays)

    @refuses_deep_nesting
    def diagram(self, every_statement: bool = False) -> str:
        """SVG text: each term of the result statement drawn as a tensor network (tensors
        as nodes, contractions as edges, free indices as labelled open ends, deltas as
        wires; see ``tensorcalc.render.diagram``); with ``every_statement`` each statement's."""
        return diagram(self.statements if every_statement else self.statement(self.result))

    def _repr_svg_(self) -> str:
        """The result's diagram, for notebooks."""
        return self.diagram()

    @property
    @refuses_deep_nesting
    def einsum(self) -> list[str]:
        """The einsum contractions that run the program, in order."""
        return self.plan.einsum_strings()


_MAX_SIGNATURES = 32


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a program, as ``AFTER_EVALUATION`` sees it: the arrays it was
    given, the sizes it ran with (None: the program's own), and the value."""

    program: Program
    arrays: Mapping[str, Any]
    compact: bool
    sizes: Mapping[str, int] | None
    value: Any


#: Functions given each evaluation of a program (an ``Evaluation``), once its value is
#: computed: a place to check or record them (the tests run every printed derivative again
#: beside the derivative itself). Append to it; what they return is ignored.
AFTER_EVALUATION: list[Callable[[Evaluation], object]] = []


def _owned(value: Any, inputs: Iterable[Any]) -> Any:
    """A result never aliases an input and is never a broadcast view (NumPy, torch)."""
    if isinstance(value, np.ndarray):
        if value.base is None and value.flags.writeable:
            for a in inputs:
                if a is value:  # the input itself (Y[i,j] = X[i,j])
                    return np.array(value)
            return value  # owns its memory, made by this call: no input can share it
        if not value.flags.writeable or any(
            isinstance(a, np.ndarray) and np.may_share_memory(value, a) for a in inputs
        ):
            return np.array(value)
    elif isinstance(value, np.generic):
        return np.asarray(value)
    elif type(value).__module__.startswith("torch"):
        return _owned_torch(value, inputs)
    return value


def _owned_torch(value: Any, inputs: Iterable[Any]) -> Any:
    """A torch result copied where it is an input, shares an input's memory, or repeats
    elements (an expanded view: no in-place update, no ``torch.func.hessian``)."""
    try:
        where = value.untyped_storage().data_ptr()
        shared = any(value is a or (type(a) is type(value)
                                    and a.untyped_storage().data_ptr() == where)
                     for a in inputs)
        repeats = any(s == 0 and n > 1 for s, n in zip(value.stride(), value.shape))
    except (RuntimeError, NotImplementedError):  # a batched tensor (vmap): no storage to
        return value.contiguous()  # compare; an expanded one is copied all the same
    return value.clone() if shared or repeats else value

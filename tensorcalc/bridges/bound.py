"""A program bound for a framework: its inputs in order, the derivative programs that
``to_torch`` and ``to_jax`` run (derived once, on first use), and the merged backward
program of a first-order backward pass.

>>> b = BoundProgram("L = (X[n,d] w[d] - y[n])^2")
>>> b.names, b.cotangent
(('X', 'w', 'y'), 'G')
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from ..api import compile
from ..backend.arrays import signature
from ..backend.operands import ProgramPlan
from ..backend.plan import plan_program
from ..backend.run import Runner
from ..calculus.reuse import elementwise_groups, share_products
from ..derivatives import jvp, vjp
from ..errors import InputError
from ..ir import SIZE_MARK, Ref, Statement, Sum, Term, dependencies, fresh_name
from ..program import Program


class BoundProgram:
    """A program, its inputs in order, and its derivative programs, derived on first use:
    what ``to_torch`` and ``to_jax`` wrap."""

    def __init__(self, program: str | Program):
        self.program = compile(program)
        self.names = self.program.needed_inputs
        taken = set(self.program.accepts) | {st.name for st in self.program.statements}
        self.cotangent = fresh_name("G", taken)
        self.tangent = fresh_name("V", taken)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def vjp(self, name: str) -> Program:
        return vjp(self.program, name, cotangent=self.cotangent)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def jvp(self, name: str) -> Program:
        return jvp(self.program, name, tangent=self.tangent)

    @property
    def computed(self) -> tuple[str, ...]:
        """The statements a forward pass computes: all it needs but those only a size is
        taken from (a range statement, ``ranges.py``, is never computed)."""
        valued = self.program.plan.valued
        return tuple(st.name for st in self.program.needed if not valued or st.name in valued)

    @property
    def kept(self) -> tuple[str, ...]:
        """The statements a forward pass keeps for the backward one: all it computes but
        the result."""
        return tuple(n for n in self.computed if n != self.program.result)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def shared_backward(self, wanted: tuple[str, ...]) -> SharedBackward | None:
        """One program for the gradients of every input in ``wanted``: the VJP programs'
        statements merged (their shared adjoints once), the forward statements left out
        (their values are kept from the forward pass). None where two VJP programs name a
        statement alike but differently computed."""
        forward = set(self.computed)
        merged: dict[str, Statement] = {}
        results = []
        for name in wanted:
            program = self.vjp(name)
            for st in program.needed:
                if st.name in forward:
                    continue
                if merged.get(st.name, st) != st:
                    return None
                merged[st.name] = st
            results.append(program.result)
        # A product two gradients make alike (``G1[k,h] X[b,k]`` for H's and P's, or
        # ``H_bar (1 - H^2)`` for W's and c's) once
        taken = set(merged) | forward | set(self.program.accepts) | {self.cotangent}
        fresh = _Fresh(taken)
        statements = tuple(share_products(share_products(list(merged.values()), fresh),
                                          fresh, elementwise_groups))
        return SharedBackward(plan_program(statements, _inputs(statements),
                                           statements[-1].name), tuple(results),
                              self.program.sizes)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def backward_program(self, name: str) -> Program:
        """``vjp(program, name)`` without its forward statements: their values (``H``,
        ``P``) are inputs, kept from the forward pass. What a differentiable backward
        pass runs (``create_graph=True``): differentiating it again reaches ``W`` through
        those values, so nothing of the forward pass is computed twice."""
        full = self.vjp(name)
        forward = set(self.computed)
        statements = [st for st in full.needed if st.name not in forward]
        inputs = _inputs(statements)
        kept = set(inputs) | {st.name for st in statements}
        ranks = {n: r for n, r in full.ranks.items() if n in kept}
        return Program(statements, inputs, ranks, full.result, sizes=full.sizes)

    @cache  # noqa: B019 - one cache per bound program, kept with it
    def seeded(self, names: tuple[str, ...]) -> tuple[BoundProgram, tuple[str, ...]]:
        """The program with one more statement, ``Z = sum of seed_s[I] s[I]`` over the
        statements ``names`` (the result, kept values), and the seeds' names: the
        gradient of ``Z`` is the backward pass of cotangents given to several statements
        at once (a differentiable backward pass sends them to the values it read)."""
        program = self.program
        taken = set(program.accepts) | {st.name for st in program.statements}
        seeds = []
        for name in names:
            seeds.append(fresh_name(f"{name}_seed", taken))
            taken.add(seeds[-1])
        by_name = {st.name: st for st in program.statements}
        terms = []
        for k, (name, seed) in enumerate(zip(names, seeds)):
            axes = tuple(f"z{k}_{m}" for m in range(len(by_name[name].indices)))
            terms.append(Term(1.0, (Ref(seed, axes), Ref(name, axes)), frozenset(axes)))
        total = Statement(fresh_name("seeded", taken), (), Sum(tuple(terms)))
        ranks = {**program.ranks, total.name: 0}
        ranks.update((seed, len(by_name[n].indices)) for n, seed in zip(names, seeds))
        seeded = Program(program.statements + (total,), program.inputs + tuple(seeds), ranks,
                         total.name, {**program.accepts, **{s: ranks[s] for s in seeds}},
                         sizes=program.sizes)
        return BoundProgram(seeded), tuple(seeds)

    def arrays(self, given: dict[str, Any]) -> list[Any]:
        """The arrays the program needs, in order, bound as a call binds them: of one
        library and float type (a float32 tensor beside a float64 one, a number, a list),
        so that every derivative program runs on what the forward pass ran on. Inputs
        the program accepts but does not need (a derivative's) are left out."""
        unknown = [n for n in given if n not in self.program.accepts]
        missing = [n for n in self.names if n not in given]
        if unknown or missing:
            raise InputError(
                f"the function takes {', '.join(self.names)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        bound = self.program.bind({n: given[n] for n in self.names})
        return [bound[n] for n in self.names]


def _inputs(statements: Sequence[Statement]) -> tuple[str, ...]:
    """What statements read that none of them computes, in order of first use (sizes given
    by name are not arrays)."""
    produced = {st.name for st in statements}
    return tuple(dict.fromkeys(n for st in statements for n in sorted(dependencies(st))
                               if n not in produced and not n.startswith(SIZE_MARK)))


class _Fresh:
    """Fresh statement names, none of them in ``taken``."""

    def __init__(self, taken: set[str]):
        self.taken = taken

    def __call__(self, base: str) -> str:
        name = fresh_name(f"{base}_product", self.taken)
        self.taken.add(name)
        return name


class SharedBackward:
    """The shared backward program, planned once and bound once per input signature."""

    def __init__(self, plan: ProgramPlan, results: tuple[str, ...], sizes: dict[str, int]):
        self.plan = plan
        self.results = results
        self.sizes = sizes  # given by name to the program: the backward pass needs them too
        self.runners: dict[tuple[Any, ...], Runner] = {}

    def __call__(self, env: dict[str, Any]) -> list[Any]:
        key = tuple((n, *signature(v)) for n, v in env.items())
        runner = self.runners.get(key)
        if runner is None:
            runner = self.runners.setdefault(key, Runner(self.plan, dict(env), self.sizes))
        values = runner(env)
        return [values[r] for r in self.results]

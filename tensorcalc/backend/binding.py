"""What the parts of a statement's binding (``matrices``, ``indexing``) use of the binder
that calls them (``binder.StatementBinder``): a Protocol, so that they need not import
the module that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .libraries import ArrayLibrary
from .operands import Operand, SumPlan, TermPlan

Array = Any
Env = dict[Any, Any]
Step = Callable[[Env], Array]


class StatementBinder(Protocol):
    """One statement being bound for fixed sizes."""

    owner: tuple[str, int]  # the statement, and the bytes of one element
    lib: ArrayLibrary
    xp: Any
    dtype: Any
    sizes: dict[str, int]
    where: dict[str, Any]  # the device new arrays go to
    shapes: dict[str, tuple[int, ...]]  # of the tensors read
    fusing: bool  # whether a sum of elementwise work may run as one loop (fused.py)

    def shape(self, indices: tuple[str, ...]) -> tuple[int, ...]: ...

    def sum(self, plan: SumPlan, order: tuple[str, ...]) -> Step: ...

    def term(self, plan: TermPlan, order: tuple[str, ...], shape: tuple[int, ...]) -> Step: ...

    def contraction(self, plan: TermPlan) -> Step: ...

    def scale(self, plan: TermPlan) -> float: ...

    def operand(self, op: Operand) -> Step: ...

    def aligner(self, have: tuple[str, ...], want: tuple[str, ...],
                shape: tuple[int, ...]) -> Callable[[Array], Array] | None: ...

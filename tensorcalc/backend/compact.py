"""A value kept in its delta structure: ``Compact``.

>>> import numpy as np
>>> c = Compact(np.array([1.0, 2.0]), ("i",), ("i", "p"), {"p": "i"}, (2, 2))
>>> c.toarray()
array([[1., 0.],
       [0., 2.]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..limits import check_size
from ..ops import kernels
from ..render.printing import latex_ref
from .arrays import namespace, on_device

Array = Any


@dataclass
class Compact:
    """A value kept in its delta structure.

    The dense value has the axes ``indices`` and ``shape``. Each index in ``ties``
    equals the index it maps to (the dense array is zero off that diagonal).
    ``core`` holds the values on that diagonal over the axes ``core_indices``; an
    untied index missing from ``core_indices`` is one the value does not vary along.
    ``core`` is a new array; where the result has no ties it is the dense value itself.
    """

    core: Array
    core_indices: tuple[str, ...]
    indices: tuple[str, ...]
    ties: dict[str, str]
    shape: tuple[int, ...]

    def toarray(self) -> Array:
        """The dense value; refused (``MemoryLimitError``) above the memory limit."""
        itemsize = getattr(getattr(self.core, "dtype", None), "itemsize", 8)
        check_size("the dense value", self.shape, int(itemsize), compact_hint=False)
        xp = namespace(self.core)
        if not self.ties:
            return kernels.align(self.core, self.core_indices, self.indices, self.shape, xp)
        diagonal = kernels.diagonal_axes(self.indices, self.ties)
        sizes = dict(zip(self.indices, self.shape))
        core = kernels.align(self.core, self.core_indices, diagonal,
                             tuple(sizes[i] for i in diagonal), xp)
        return kernels.on_diagonal(core, self.indices, self.ties, self.shape, xp,
                                   on_device(self.core))

    def latex(self) -> str:
        """``\\mathrm{dense}_{ip} = \\delta_{ip} \\mathrm{core}_{i}``, with both shapes.

        >>> import numpy as np
        >>> c = Compact(np.ones(2), ("i",), ("i", "p"), {"p": "i"}, (2, 2))
        >>> print(c.latex())  # doctest: +NORMALIZE_WHITESPACE
        \\mathrm{dense}_{ip} = \\delta_{ip} \\mathrm{core}_{i}
            \\quad (2 \\times 2\\ \\mathrm{dense},\\ 2\\ \\mathrm{stored})
        """
        deltas = [latex_ref("\\delta", (self.ties[i], i)) for i in self.indices if i in self.ties]
        core = latex_ref("\\mathrm{core}", self.core_indices)
        dense = " \\times ".join(str(n) for n in self.shape) or "1"
        stored = " \\times ".join(str(n) for n in getattr(self.core, "shape", ())) or "1"
        value = latex_ref("\\mathrm{dense}", self.indices)
        return (f"{value} = {' '.join(deltas + [core])} "
                f"\\quad ({dense}\\ \\mathrm{{dense}},\\ {stored}\\ \\mathrm{{stored}})")

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def _repr_markdown_(self) -> str:
        core_shape = tuple(getattr(self.core, "shape", ()))
        return (f"Compact value: dense shape {self.shape}, core shape {core_shape} over "
                f"({', '.join(self.core_indices)})\n\n{self._repr_latex_()}")

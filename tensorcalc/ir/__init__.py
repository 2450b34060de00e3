"""The checked program representation: immutable sums of product terms.

``nodes`` holds the node kinds, ``subscripts`` index arithmetic, ``walk`` the walks over
the tree, ``rename`` renaming and substitution, ``queries`` what passes ask of terms and
statements, ``sizes`` where each index takes its size. This module re-exports them.

>>> from tensorcalc.ir import Ref, Term, Sum
>>> t = Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))), frozenset({"j"}))
>>> t.free
('i',)
"""

# Each module's own names (its ``__all__``), gathered here under one roof.
from . import nodes, queries, rename, subscripts, walk
from .nodes import *  # noqa: F403
from .queries import *  # noqa: F403
from .rename import *  # noqa: F403
from .subscripts import *  # noqa: F403
from .walk import *  # noqa: F403

__all__: list[str] = []
__all__ += nodes.__all__
__all__ += queries.__all__
__all__ += rename.__all__
__all__ += subscripts.__all__
__all__ += walk.__all__

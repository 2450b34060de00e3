"""The checked program representation: immutable sums of product terms.

``nodes`` holds the node kinds, ``subscripts`` index arithmetic, ``walk`` the walks over
the tree, ``rename`` renaming and substitution, ``queries`` what passes ask of terms and
statements, ``sizes`` where each index takes its size. This module re-exports them.

>>> from tensorcalc.ir import Ref, Term, Sum
>>> t = Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))), frozenset({"j"}))
>>> t.free
('i',)
"""

from .nodes import (
    KEEPING,
    MATRIX,
    REDUCTIONS,
    RESERVED,
    SIZE_MARK,
    ZERO,
    Call,
    Delta,
    Extent,
    Factor,
    Power,
    Reduce,
    Ref,
    Shift,
    Statement,
    Sum,
    Term,
    access,
    as_sum,
    children,
    const,
    const_value,
    mentioned,
    power,
    unknown_kind,
)
from .queries import (
    collapses,
    dependencies,
    extents_from,
    needed_extents,
    needed_statements,
    only_contracted,
    read_inside,
    reads,
    sizes_carried,
)
from .rename import (
    fresh_name,
    freshen,
    read_through,
    rename_extents,
    rename_factor,
    rename_sum,
    rename_term,
    substitute,
)
from .subscripts import (
    Affine,
    Arithmetic,
    Gather,
    Subscript,
    affine,
    rename_subscript,
    sub_names,
    subscript_text,
)
from .walk import (
    all_deltas,
    all_factors,
    all_terms,
    arithmetic,
    index_order,
    index_tensors,
    map_factor_sums,
    map_factors,
    reductions,
    refs,
    same_factors,
    same_terms,
    statement_extents,
    statement_refs,
    term_extents,
    walk,
)

__all__ = [
    "KEEPING", "MATRIX", "REDUCTIONS", "RESERVED", "SIZE_MARK", "ZERO",
    "Affine", "Arithmetic", "Call", "Delta", "Extent", "Factor", "Gather", "Power", "Reduce",
    "Ref", "Shift", "Statement", "Subscript", "Sum", "Term",
    "access", "affine", "all_deltas", "all_factors", "all_terms", "arithmetic", "as_sum",
    "children", "collapses", "const", "const_value", "dependencies", "extents_from",
    "fresh_name", "freshen", "index_order", "index_tensors", "map_factor_sums", "map_factors",
    "mentioned", "needed_extents", "needed_statements", "only_contracted", "power",
    "read_inside", "read_through", "reads", "reductions", "refs", "rename_extents",
    "rename_factor", "rename_subscript", "rename_sum", "rename_term", "same_factors",
    "same_terms", "sizes_carried", "statement_extents", "statement_refs", "sub_names",
    "subscript_text", "substitute", "term_extents", "unknown_kind", "walk",
]

"""Functions of whole axes (docs/functions.md): one registry entry each, its value beside its
derivative, as ``functions.py`` has for elementwise functions. The entry is the only list:
the grammar's reserved words, the syntax-error hints, the CLI help, the LaTeX and the
checks of the language and the back end all read ``REDUCERS``, so adding a function is one
entry (``REDUCERS["sumsq"] = Reduction(...)``, even after programs were parsed).

The value is a kernel (``kernels.py``) run along trailing axes. The derivative
takes the factor ``f = fn[indices](arg)``, the derivative ``darg`` of its argument and a
source of fresh index names, and returns ``df`` as an IR sum, written with the forward
value itself (``Y`` for ``inv``, ``s`` for ``softmax``) so that it is computed once
(docs/derivatives.md, 'Functions of whole axes'):

==============  ==============================================================
``max``/``min``  ``sum_j w[j] de[j]``, ``w = hardmax[j](e)`` (``hardmin``): 1/count at the
                 positions that attain the extreme, 0 elsewhere
``hardmax``      0 (constant wherever it has a derivative)
``mean``         ``sum_j de[j] / size(j)``
``logsumexp``    ``sum_j softmax[j](e) de[j]``
``softmax``      ``s[j] de[j] - s[j] sum_k s[k] de[k]``
``inv``          ``-sum_ab Y[i,a] de[a,b] Y[b,j]``
``logdet``       ``sum_ij Minv[j,i] de[i,j]``
``det``          ``det * sum_ij Minv[j,i] de[i,j]``
==============  ==============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass
from typing import Any

from ..ir import Factor, Reduce, Sum, Term, power, rename_factor, rename_term
from ..ir.sizes import count
from . import kernels

Array = Any
Fresh = Callable[[tuple[str, ...]], tuple[str, ...]]  # fresh copies of these indices


@dataclass(frozen=True)
class Reduction:
    """One function of whole axes: its kernel, its derivative, what it is.

    ``kernel(x, axes, xp)`` runs along the trailing ``axes`` of ``x`` (a plain ``def`` that
    uses only its arguments: exported code copies its source). ``derivative(f, darg,
    fresh)`` returns ``df`` as an IR sum (``weighted`` writes the usual
    ``sum_j w[j] de[j]``). ``keeps``: the value keeps the bracketed axes (``softmax``);
    otherwise they are reduced away. ``matrix``: it takes two axes of equal size.
    ``latex(sub, arg)`` writes it in LaTeX, ``\\operatorname{name}_{sub}(arg)`` if not
    given. ``doc`` is its one-line help (the CLI help, the syntax-error hints).
    ``masked``: the value a masked entry takes (``softmax[j | j <= i](e)``), one that takes
    no part in the function (-inf for max, logsumexp and softmax; +inf for min); None where
    the function takes no mask (a matrix function: a masked entry has no meaning there).
    """

    name: str
    kernel: Callable[[Array, tuple[int, ...], Any], Array]
    derivative: Callable[[Reduce, Sum, Fresh], Sum]
    doc: str
    keeps: bool = False
    matrix: bool = False
    latex: Callable[[str, str], str] | None = None
    masked: float | None = None

    @property
    def usage(self) -> str:
        """How it is written: ``max[j](e)``, ``inv[i,j](e)``."""
        return f"{self.name}[{'i,j' if self.matrix else 'j'}](e)"

    def to_latex(self, sub: str, arg: str) -> str:
        if self.latex is not None:
            return self.latex(sub, arg)
        return f"\\operatorname{{{self.name}}}_{{{sub}}}\\left({arg}\\right)"


def _operator(command: str) -> Callable[[str, str], str]:
    """LaTeX with a command of its own: ``\\max_{j}\\left(...\\right)``."""
    return lambda sub, arg: f"{command}_{{{sub}}}\\left({arg}\\right)"


def _of_matrix(command: str) -> Callable[[str, str], str]:
    """LaTeX of a scalar function of a matrix: ``\\det_{ij}\\left[...\\right]``."""
    return lambda sub, arg: f"{command}_{{{sub}}}\\left[{arg}\\right]"


def _inverse_latex(sub: str, arg: str) -> str:
    return f"\\left[{arg}\\right]^{{-1}}_{{{sub}}}"


def weighted(weight: tuple[Factor, ...], darg: Sum, bound: tuple[str, ...],
             coef: float = 1.0) -> Sum:
    """``coef * sum_bound weight * darg``: the indices the function bound are summed now."""
    return Sum(tuple(Term(coef * u.coef, weight + u.factors, u.summed | frozenset(bound),
                          u.extents) for u in darg.terms))


def _renamed(f: Reduce, fresh: Fresh) -> Reduce:
    """``f`` with its own bound indices renamed fresh (to sit where they are free)."""
    new = fresh(f.bound)
    out = rename_factor(f, dict(zip(f.bound, new)))
    assert isinstance(out, Reduce)
    return out


def _minus(a: Sum, b: Sum) -> Sum:
    return Sum(a.terms + tuple(Term(-t.coef, t.factors, t.summed, t.extents) for t in b.terms))


def _extreme(weights: str) -> Callable[[Reduce, Sum, Fresh], Sum]:
    """``max``'s derivative weights each position by ``hardmax`` of the same argument (and
    ``min``'s by ``hardmin``): its kernel compares the argument with its own extreme, so
    some position always attains it. A test of the gap ``m - e[j]`` against zero would
    not: the argument written again may add its terms in another order and miss ``m`` by
    an ulp everywhere, giving 0/0."""
    def derivative(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
        return weighted((Reduce(weights, f.indices, f.arg, True, f.mask),), darg, f.indices)

    return derivative


def _flat(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    """``hardmax`` and ``hardmin`` are constant wherever they have a derivative."""
    return Sum(())


def _mean(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    """``mean[j](e)``'s derivative is ``sum_j de[j] / size(j)``: the size is read from the
    argument (the axis of a tensor it reads plainly with ``j``, or a size given by name)."""
    return weighted((power(count(f.indices, fresh(f.indices), f.arg), -1.0),), darg, f.indices)


def _logsumexp(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return weighted((Reduce("softmax", f.indices, f.arg, True, f.mask),), darg, f.indices)


def _softmax(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    others = fresh(f.indices)
    mapping = dict(zip(f.indices, others))
    f_k = rename_factor(f, mapping)
    spread = Sum(tuple(rename_term(u, mapping) for u in darg.terms))
    return Sum(weighted((f,), darg, ()).terms + weighted((f, f_k), spread, others, -1.0).terms)


def _inv(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    i, j = f.indices
    a, b = fresh((j, i))
    left = rename_factor(f, {j: a})
    right = rename_factor(f, {i: b})
    spread = Sum(tuple(rename_term(u, {i: a, j: b}) for u in darg.terms))
    return weighted((left, right), spread, (a, b), -1.0)


def _inverse_transposed(f: Reduce) -> Factor:
    """``Minv[j,i]`` over the labels ``i, j`` of ``f``'s matrix."""
    i, j = f.indices
    return rename_factor(Reduce("inv", f.indices, f.arg, keeps=True), {i: j, j: i})


def _logdet(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return weighted((_inverse_transposed(f),), darg, f.indices)


def _det(f: Reduce, darg: Sum, fresh: Fresh) -> Sum:
    return weighted((_renamed(f, fresh), _inverse_transposed(f)), darg, f.indices)


_TABLE = [
    Reduction("max", kernels.max_over, _extreme("hardmax"),
              "largest value over the axes; the derivative is shared equally among ties",
              latex=_operator("\\max"), masked=-math.inf),
    Reduction("min", kernels.min_over, _extreme("hardmin"),
              "smallest value over the axes; the derivative is shared equally among ties",
              latex=_operator("\\min"), masked=math.inf),
    Reduction("hardmax", kernels.hardmax, _flat,
              "1/count where the argument is largest over the axes, 0 elsewhere (max's "
              "derivative); keeps the axes", keeps=True, masked=-math.inf),
    Reduction("hardmin", kernels.hardmin, _flat,
              "1/count where the argument is smallest over the axes, 0 elsewhere (min's "
              "derivative); keeps the axes", keeps=True, masked=math.inf),
    Reduction("mean", kernels.mean_over, _mean,
              "the mean over the axes; its derivative divides by their size"),
    Reduction("logsumexp", kernels.logsumexp, _logsumexp,
              "log sum exp over the axes, stable at any magnitude; derivative softmax",
              masked=-math.inf),
    Reduction("softmax", kernels.softmax, _softmax,
              "exp(e_j) / sum_k exp(e_k) over the axes, stable; keeps the axes", keeps=True,
              masked=-math.inf),
    Reduction("inv", kernels.inv, _inv,
              "matrix inverse over two axes of equal size; keeps them; run as a solve "
              "where it is only contracted", keeps=True, matrix=True, latex=_inverse_latex),
    Reduction("det", kernels.det, _det, "determinant over two axes of equal size",
              matrix=True, latex=_of_matrix("\\det")),
    Reduction("logdet", kernels.logdet, _logdet,
              "log |det| over two axes of equal size, from slogdet", matrix=True,
              latex=_of_matrix("\\log\\det")),
]

REDUCERS: dict[str, Reduction] = {r.name: r for r in _TABLE}


class _Names(Set[str]):
    """The names of the entries of ``REDUCERS`` that pass a test, read at each use: an entry
    registered later is among them."""

    def __init__(self, test: Callable[[Reduction], bool], words: tuple[str, ...] = ()):
        self._test, self._words = test, words

    def __contains__(self, name: object) -> bool:
        entry = REDUCERS.get(name) if isinstance(name, str) else None
        return name in self._words or (entry is not None and self._test(entry))

    def __iter__(self) -> Iterator[str]:
        yield from self._words
        yield from (n for n, r in REDUCERS.items() if self._test(r) and n not in self._words)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: Every function of whole axes.
REDUCTIONS: Set[str] = _Names(lambda r: True)
#: Those that keep their bracketed indices (the value has those axes).
KEEPING: Set[str] = _Names(lambda r: r.keeps)
#: Those that take a matrix: two indices of equal size.
MATRIX: Set[str] = _Names(lambda r: r.matrix)
#: The words of the language that can name neither a tensor nor an index.
RESERVED: Set[str] = _Names(lambda r: True, ("delta", "sum", "input"))

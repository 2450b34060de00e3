"""IR back to text: index notation that parses to the same program, and LaTeX.

A term prints bare when the summation convention would sum exactly the indices it
sums; otherwise the indices the convention would miss are written as an explicit
``sum[...]``. A program whose text alone would not size an index (a derivative of
``s = x[i]`` is 1 for every ``p``) starts with a declaration, ``input x[p]``.

>>> from tensorcalc.ir import Ref, Term, Sum, Statement
>>> st = Statement("y", ("i",), Sum((Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))),
...                                          frozenset({"j"})),)))
>>> format_statement(st)
'y[i] = W[i,j] x[j]'
"""

from __future__ import annotations

import math
import re

from ..errors import ProgramError
from ..ir import (
    Call,
    Cond,
    Delta,
    Factor,
    Gather,
    Power,
    Reduce,
    Ref,
    Shift,
    Statement,
    Subscript,
    Sum,
    Term,
    broadcasts,
    children,
    const_value,
    freshen,
    mentioned,
    subscript_text,
    unknown_kind,
)
from ..ir.sizes import counts
from ..ops.functions import FUNCTIONS
from ..ops.reductions import REDUCERS


def format_number(value: float) -> str:
    if not math.isfinite(value):  # constants that multiply past a float's range (1e200*1e200)
        raise ProgramError(f"a constant of the program is {value}: beyond the range of a float")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def factors_with(term: Term, index: str) -> int:
    """How many factors of ``term`` hold ``index``."""
    return sum(1 for f in term.factors if index in f.free)


def grabbed_below(term: Term, index: str) -> bool:
    """Would some product inside ``term``'s factors contract ``index`` by convention?"""
    stack = [s for f in term.factors for s in children(f)]
    while stack:
        s = stack.pop()
        for t in s.terms:
            if index not in t.summed and factors_with(t, index) >= 2:
                return True
            stack += [x for f in t.factors for x in children(f)]
    return False


class _Printer:
    def __init__(self, latex: bool = False, explicit_sums: bool = False):
        self.latex = latex
        # every summed index written as sum[...] on the term that sums it (tc.explain)
        self.explicit_sums = explicit_sums
        # each count (sum[k](1)) of the statement printed: by the index that names it
        self.counts: dict[str, str] = {}

    def statement(self, st: Statement, derivative: Derivative | None = None) -> str:
        if self.latex:
            lhs = (_latex_fraction(derivative) if derivative
                   else self.ref(Ref(st.name, st.indices)))
        else:
            lhs = st.name + (f"[{','.join(st.indices)}]" if st.indices else "")
        expr = st.rhs
        self.counts = counts(st)
        if self.explicit_sums:
            # an inner sum[j] inside an outer one must not reuse its name
            expr = Sum(tuple(freshen(t, set(st.indices)) for t in expr.terms))
        rhs = self.sum(expr, frozenset(st.indices), top=True)
        return f"{lhs} = {rhs}"

    def sum(self, expr: Sum, held: frozenset[str], top: bool = False) -> str:
        if not expr.terms:
            return "0"
        out = ""
        for k, t in enumerate(expr.terms):
            text = self.term(t, held, top)
            if k == 0:
                out = text
            elif text.startswith("-"):
                out += " - " + text[1:]
            else:
                out += " + " + text
        return out

    def term(self, t: Term, held: frozenset[str], top: bool) -> str:
        # A lone parenthesised sum would merge into the sum around it when parsed, and an
        # index that no factor carries cannot be summed by the convention: both are written
        # as an explicit sum[...] (the second then fails to parse, which is honest: its
        # size is not in the text).
        # A parenthesised sum some of whose terms lack an index summed around it is
        # written with that sum explicit too, as the convention's reader would otherwise
        # take it for a trap (language/traps.py; 2 (x[p] + y[k]) adds x[p] size(k) times).
        lone_group = len(t.factors) == 1 and isinstance(t.factors[0], Sum) and abs(t.coef) == 1
        # A summed index that no factor holds and an extent sizes is a count: size(k)
        sized = {e.name for e in t.extents}
        counted = sorted(i for i in t.summed if i in sized
                         and not any(i in mentioned(f) for f in t.factors))
        alone = [i for i in t.summed if factors_with(t, i) == 1]
        spread = {i for _, names in broadcasts(t, alone) for i in names} if top else set()
        explicit = sorted(
            i for i in t.summed if i not in counted and (
                self.explicit_sums or lone_group or factors_with(t, i) == 0 or i in spread
                or (factors_with(t, i) < 2 and (not top or grabbed_below(t, i))))
        )
        inner_held = held | t.summed
        numer = [self._size(self.counts.get(i, i)) for i in counted]
        numer += [self.factor(f, inner_held) for f in t.factors if not _is_reciprocal(f)]
        denom = [self.factor(_reciprocal_base(f), inner_held, as_operand=True)
                 for f in t.factors if _is_reciprocal(f)]
        sign = "-" if t.coef < 0 else ""
        coef = abs(t.coef)
        if self.latex:
            body = self._latex_product(coef, numer, denom)
            # Einstein's convention: an index repeated in a product is summed silently;
            # every other sum (rule 2, sum[...]) is written.
            sums = sorted(i for i in t.summed if i not in counted
                          and (lone_group or factors_with(t, i) < 2))
            written = ",".join(i.replace("_", "\\_") for i in sums)
            prefix = f"\\sum_{{{written}}} " if sums else ""
            return sign + prefix + body
        parts = []
        if coef != 1 or not numer:
            parts.append(format_number(coef))
        if lone_group and explicit and coef == 1:  # sum[k](a + b), not sum[k]((a + b))
            numer = [self.sum(t.factors[0], inner_held)]  # type: ignore[arg-type]
        parts += numer
        body = self._join(parts, t)
        for d in denom:
            body += " / " + d
        if explicit:
            body = f"sum[{','.join(explicit)}]({body})"
        return sign + body

    def _join(self, parts: list[str], t: Term) -> str:
        out = ""
        for p in parts:
            if out and (p.startswith("[") or p.startswith("(") and _ends_with_bare_name(out)):
                out += " * " + p  # a bracket after a factor would read as subscripts
            elif out:
                out += " " + p
            else:
                out = p
        return out

    def _latex_product(self, coef: float, numer: list[str], denom: list[str]) -> str:
        parts = ([_latex_number(coef)] if coef != 1 or not numer else []) + numer
        top = " ".join(parts)
        if denom:
            return f"\\frac{{{top}}}{{{' '.join(denom)}}}"
        return top

    def ref(self, r: Ref) -> str:
        if r.subs is not None:
            if self.latex:
                return latex_ref(r.name, tuple(latex_subscript(s) for s in r.subs))
            return f"{r.name}[{','.join(subscript_text(s) for s in r.subs)}]"
        if self.latex:
            return latex_ref(r.name, r.indices)
        return f"{r.name}[{','.join(r.indices)}]" if r.indices else r.name

    def factor(self, f: Factor, held: frozenset[str], as_operand: bool = False) -> str:
        if isinstance(f, Ref):
            return self.ref(f)
        if isinstance(f, Delta):
            if self.latex:
                return latex_ref("\\delta", (f.i, f.j))
            return f"delta[{f.i},{f.j}]"
        if isinstance(f, Shift):
            if self.latex:
                return latex_ref("\\delta", (f.i, latex_subscript(f.sub)))
            return f"delta[{f.i},{subscript_text(f.sub)}]"
        if isinstance(f, Cond):
            return self.index_condition(f)
        if isinstance(f, Call):
            return self.call(f, held)
        if isinstance(f, Reduce):
            arg = self.sum(f.arg, held | frozenset(f.indices))
            mask = [self.index_condition(c)[1:-1] for c in f.mask]  # without the brackets
            if self.latex:
                sub = latex_indices(f.indices)
                if mask:
                    sub += " \\,:\\, " + ",\\, ".join(mask)
                return REDUCERS[f.fn].to_latex(sub, arg)
            written = " | " + ", ".join(mask) if mask else ""
            return f"{f.fn}[{','.join(f.indices)}{written}]({arg})"
        if isinstance(f, Power):
            base = self.operand(f.base, held)
            value = const_value(f.exponent)
            if value is not None:
                exponent = _latex_number(value) if self.latex else format_number(value)
            else:
                exponent = self.operand(f.exponent, held, exponent=True)
            if self.latex:
                return f"{{{base}}}^{{{exponent}}}"
            return f"{base}^{exponent}"
        if isinstance(f, Sum):
            if as_operand:
                return self.operand(f, held)
            text = self.sum(f, held)
            return f"\\left({text}\\right)" if self.latex else f"({text})"
        unknown_kind(f)

    def _size(self, index: str) -> str:
        """``size(i)``: how many values index i takes."""
        return f"\\left|{index}\\right|" if self.latex else f"size({index})"

    def index_condition(self, c: Cond) -> str:
        """``[j <= i]``; in LaTeX the Iverson bracket ``[j \\le i]``."""
        if self.latex:
            return f"[{latex_subscript(c.a)} {_LATEX_COMPARISONS[c.op]} {latex_subscript(c.b)}]"
        return f"[{subscript_text(c.a)} {c.op} {subscript_text(c.b)}]"

    def call(self, f: Call, held: frozenset[str]) -> str:
        """``tanh(...)``, ``maximum(a, b)``; ``where(x[i] > 0, a, b)`` with its condition
        written as a comparison; a comparison anywhere else (a factor of a derivative) as
        ``where(x[i] > 0, 1, 0)``, the one place the language takes one (in LaTeX the
        Iverson bracket, ``[x_{i} > 0]``)."""
        entry = FUNCTIONS[f.fn]
        if entry.operator is not None:
            test = self.comparison(f, held)
            if self.latex:
                return f"\\left[{test}\\right]"
            return f"where({test}, 1, 0)"
        args = [self.sum(a, held) for a in f.args]
        if entry.condition:
            args[0] = self.condition(f.args[0], held)
        if self.latex:
            return entry.to_latex(*args)
        return f"{f.fn}({', '.join(args)})"

    def comparison(self, f: Call, held: frozenset[str]) -> str:
        left, right = (self.sum(a, held) for a in f.args)
        entry = FUNCTIONS[f.fn]
        return entry.to_latex(left, right) if self.latex else f"{left} {entry.operator} {right}"

    def condition(self, cond: Sum, held: frozenset[str]) -> str:
        """A ``where``'s condition: its comparison, or, for any other value (none that
        lowering makes), ``value != 0``, which is how the kernel reads it."""
        only = cond.terms[0] if len(cond.terms) == 1 else None
        if only is not None and only.coef == 1 and len(only.factors) == 1 and not only.summed:
            test = only.factors[0]
            if isinstance(test, Call) and FUNCTIONS[test.fn].operator is not None:
                return self.comparison(test, held)
        value = self.sum(cond, held)
        return f"{value} \\neq 0" if self.latex else f"{value} != 0"

    def operand(self, s: Sum, held: frozenset[str], exponent: bool = False) -> str:
        """A sum printed where only an atom may stand (a power's base or exponent)."""
        if len(s.terms) == 1 and s.terms[0].coef == 1 and len(s.terms[0].factors) == 1 \
                and not s.terms[0].summed:
            f = s.terms[0].factors[0]
            if isinstance(f, (Ref, Delta, Shift, Cond, Call, Reduce)):
                return self.factor(f, held)
        value = const_value(s)
        if value is not None and value >= 0:
            return format_number(value)
        text = self.sum(s, held)
        if not self.latex and (_is_call_like(text) or re.fullmatch(r"size\(\w+\)", text)):
            return text  # ``sum[k](...)`` is already an atom
        return f"\\left({text}\\right)" if self.latex else f"({text})"


def _is_call_like(text: str) -> bool:
    """``name[...](...)`` whose last parenthesis closes its first one."""
    if not text.startswith("sum[") or not text.endswith(")"):
        return False
    start = text.index("(")
    depth = 0
    for k, c in enumerate(text[start:], start):
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return k == len(text) - 1
    return False


def _is_reciprocal(f: Factor) -> bool:
    return isinstance(f, Power) and const_value(f.exponent) == -1.0


def _reciprocal_base(f: Factor) -> Factor:
    assert isinstance(f, Power)
    base = f.base
    if len(base.terms) == 1 and base.terms[0].coef == 1 and len(base.terms[0].factors) == 1 \
            and not base.terms[0].summed:
        inner = base.terms[0].factors[0]
        if isinstance(inner, (Ref, Delta, Call, Power, Reduce)):
            return inner
    return base


def _ends_with_bare_name(text: str) -> bool:
    """Does ``text`` end in an identifier (so that ``name (`` would read as a call)?"""
    k = len(text)
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "._"):
        k -= 1
    word = text[k:]
    return bool(word) and (word[0].isalpha() or word[0] == "_")


# --- LaTeX pieces ---------------------------------------------------------------------

# What a derivative is of: the result's name and its indices, then each input it was
# derived by, with the result axes that input added (see ``Program.latex``).
Derivative = tuple[Ref, tuple[Ref, ...]]


def latex_name(name: str) -> str:
    """``W``, ``W1`` (a letter and digits: italic, as typed); ``\\bar{H}`` for an adjoint
    ``H_bar``, ``\\dot{H}`` for a tangent ``H_dot``; other names upright, ``\\mathrm{vjp\\_X}``.
    """
    for suffix, accent in (("_bar", "\\bar"), ("_dot", "\\dot")):
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{accent}{{{latex_name(name[:-len(suffix)])}}}"
    if name[:1].isalpha() and name[1:].isdigit() or len(name) == 1:
        return name
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


def latex_indices(indices: tuple[str, ...]) -> str:
    r"""Subscript text: ``ip`` when every index is one letter, else ``batch,feat``
    (``batch\_idx``: an underscore is a letter of the name, not a subscript)."""
    return ("" if all(len(i) == 1 for i in indices) else ",").join(
        i.replace("_", "\\_") if i.isidentifier() else i for i in indices)  # not t_{n}


def latex_subscript(s: Subscript) -> str:
    """A subscript in LaTeX: ``i+k``, ``2i-1``, ``t_{n}``."""
    if isinstance(s, Gather):
        return latex_ref(s.name, s.indices)
    return subscript_text(s).replace("*", "").replace("_", "\\_")


def latex_ref(name: str, indices: tuple[str, ...]) -> str:
    """``X_{ik}``, ``y_{batch,feat}``; ``\\delta`` (or another command) is kept as is."""
    base = name if name.startswith("\\") else latex_name(name)
    return f"{base}_{{{latex_indices(indices)}}}" if indices else base


_LATEX_COMPARISONS = {"!=": "\\neq", "<": "<", "<=": "\\le", ">": ">", ">=": "\\ge"}


def _latex_number(value: float) -> str:
    """``0.5``, ``3``; ``1e-05`` as ``10^{-5}`` (times its mantissa)."""
    text = format_number(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10^{{{int(exponent)}}}"
    return power if float(mantissa) == 1 else f"{mantissa} \\cdot {power}"


def _latex_fraction(derivative: Derivative) -> str:
    """``\\frac{\\partial L}{\\partial w_{p}}``; ``\\partial^{2} L`` over
    ``\\partial w_{p} \\partial w_{q}`` for a second derivative, and so on."""
    of, wrt = derivative
    order = f"^{{{len(wrt)}}}" if len(wrt) > 1 else ""
    texts: list[str] = []
    counts: list[int] = []
    for r in wrt:  # a scalar input derived by twice is written x^{2}
        text = latex_ref(r.name, r.indices)
        if texts and not r.indices and texts[-1] == text:
            counts[-1] += 1
        else:
            texts.append(text)
            counts.append(1)
    denominator = " ".join(f"\\partial {t}" + (f"^{{{n}}}" if n > 1 else "")
                           for t, n in zip(texts, counts))
    return f"\\frac{{\\partial{order} {latex_ref(of.name, of.indices)}}}{{{denominator}}}"


def format_statement(st: Statement, explicit_sums: bool = False) -> str:
    return _Printer(explicit_sums=explicit_sums).statement(st)


def format_term(t: Term) -> str:
    """One term as index notation, its sums where the convention puts them: the part of a
    statement that a note on it quotes (``gam[d] xh[b,d]``)."""
    return _Printer().term(t, frozenset(), top=False)


def format_latex(st: Statement, derivative: Derivative | None = None) -> str:
    """``st`` in LaTeX; ``derivative`` (what ``st`` is the derivative of) writes its left
    side as a fraction of partial derivatives."""
    return _Printer(latex=True).statement(st, derivative)

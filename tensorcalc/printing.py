"""IR back to text: index notation that parses to the same program, and LaTeX.

A term prints bare when the summation convention would sum exactly the indices it
sums; otherwise the indices the convention would miss are written as an explicit
``sum[...]``. A statement whose axes have no size source on the right-hand side
(a derivative of ``s = x[i]`` is 1 for every ``p``) names one as ``x[p]^0``: one,
shaped like ``x``.

>>> from tensorcalc.ir import Ref, Term, Sum, Statement
>>> st = Statement("y", ("i",), Sum((Term(1.0, (Ref("W", ("i", "j")), Ref("x", ("j",))),
...                                          frozenset({"j"})),)))
>>> format_statement(st)
'y[i] = W[i,j] x[j]'
"""

from __future__ import annotations

from .ir import (
    Call,
    Delta,
    Factor,
    Power,
    Ref,
    Statement,
    Sum,
    Term,
    children,
    const_value,
    fresh_name,
)


def format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _count(term: Term, index: str) -> int:
    return sum(1 for f in term.factors if index in f.free)


def _grabbed_below(term: Term, index: str) -> bool:
    """Would some product inside ``term``'s factors contract ``index`` by convention?"""
    stack = [s for f in term.factors for s in children(f)]
    while stack:
        s = stack.pop()
        for t in s.terms:
            if index not in t.summed and _count(t, index) >= 2:
                return True
            stack += [x for f in t.factors for x in children(f)]
    return False


class _Printer:
    def __init__(self, latex: bool = False):
        self.latex = latex

    def statement(self, st: Statement, anchors: tuple[Ref, ...] = ()) -> str:
        if st.rhs.terms:  # anchors with axes of their own ('~') would add sums to a term
            anchors = tuple(a for a in anchors if not any(i.startswith("~") for i in a.indices))
        else:  # ... but times 0 any sum is 0: name those axes so that the text parses
            taken = set(st.indices)
            named = []
            for a in anchors:
                indices = []
                for i in a.indices:
                    if i.startswith("~"):
                        i = fresh_name("k", taken)
                        taken.add(i)
                    indices.append(i)
                named.append(Ref(a.name, tuple(indices)))
            anchors = tuple(named)
        if self.latex:
            lhs = self.ref(Ref(st.name, st.indices))
        else:
            lhs = st.name + (f"[{','.join(st.indices)}]" if st.indices else "")
        rhs = self.sum(st.rhs, frozenset(st.indices), top=True, anchors=anchors)
        return f"{lhs} = {rhs}"

    def sum(self, expr: Sum, held: frozenset[str], top: bool = False,
            anchors: tuple[Ref, ...] = ()) -> str:
        if not expr.terms:
            if anchors:
                return "0 " + " ".join(self.anchor(a) for a in anchors)
            return "0"
        out = ""
        for k, t in enumerate(expr.terms):
            text = self.term(t, held, top, anchors if k == 0 else ())
            if k == 0:
                out = text
            elif text.startswith("-"):
                out += " - " + text[1:]
            else:
                out += " + " + text
        return out

    def anchor(self, ref: Ref) -> str:
        return f"{{{self.ref(ref)}}}^{{0}}" if self.latex else f"{self.ref(ref)}^0"

    def term(self, t: Term, held: frozenset[str], top: bool, anchors: tuple[Ref, ...] = ()) -> str:
        # A lone parenthesised sum would merge into the sum around it when parsed, and an
        # index that no factor carries cannot be summed by the convention: both are written
        # as an explicit sum[...] (the second then fails to parse, which is honest: its
        # size is not in the text).
        lone_group = len(t.factors) == 1 and isinstance(t.factors[0], Sum) and abs(t.coef) == 1
        explicit = sorted(
            i for i in t.summed
            if lone_group or _count(t, i) == 0
            or (_count(t, i) < 2 and (not top or _grabbed_below(t, i)))
        )
        inner_held = held | t.summed
        numer = [self.factor(f, inner_held) for f in t.factors if not _is_reciprocal(f)]
        numer += [self.anchor(a) for a in anchors]
        denom = [self.factor(_reciprocal_base(f), inner_held, as_operand=True)
                 for f in t.factors if _is_reciprocal(f)]
        sign = "-" if t.coef < 0 else ""
        coef = abs(t.coef)
        if self.latex:
            body = self._latex_product(coef, numer, denom)
            sums = sorted(t.summed)
            prefix = f"\\sum_{{{' '.join(sums)}}} " if sums else ""
            return sign + prefix + body
        parts = []
        if coef != 1 or not numer:
            parts.append(format_number(coef))
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
            if out and p.startswith("(") and _ends_with_bare_name(out):
                out += " * " + p
            elif out:
                out += " " + p
            else:
                out = p
        return out

    def _latex_product(self, coef: float, numer: list[str], denom: list[str]) -> str:
        parts = ([format_number(coef)] if coef != 1 or not numer else []) + numer
        top = " ".join(parts)
        if denom:
            return f"\\frac{{{top}}}{{{' '.join(denom)}}}"
        return top

    def ref(self, r: Ref) -> str:
        if self.latex:
            name = _latex_name(r.name)
            return f"{name}_{{{' '.join(r.indices)}}}" if r.indices else name
        return f"{r.name}[{','.join(r.indices)}]" if r.indices else r.name

    def factor(self, f: Factor, held: frozenset[str], as_operand: bool = False) -> str:
        if isinstance(f, Ref):
            return self.ref(f)
        if isinstance(f, Delta):
            if self.latex:
                return f"\\delta_{{{f.i} {f.j}}}"
            return f"delta[{f.i},{f.j}]"
        if isinstance(f, Call):
            arg = self.sum(f.arg, held)
            if self.latex:
                name = f"\\{f.fn}" if f.fn in _LATEX_OPERATORS else f"\\operatorname{{{f.fn}}}"
                return f"{name}\\left({arg}\\right)"
            return f"{f.fn}({arg})"
        if isinstance(f, Power):
            base = self.operand(f.base, held)
            value = const_value(f.exponent)
            if value is not None:
                exponent = format_number(value)
            else:
                exponent = self.operand(f.exponent, held, exponent=True)
            if self.latex:
                return f"{{{base}}}^{{{exponent}}}"
            return f"{base}^{exponent}"
        assert isinstance(f, Sum)
        if as_operand:
            return self.operand(f, held)
        text = self.sum(f, held)
        return f"\\left({text}\\right)" if self.latex else f"({text})"

    def operand(self, s: Sum, held: frozenset[str], exponent: bool = False) -> str:
        """A sum printed where only an atom may stand (a power's base or exponent)."""
        if len(s.terms) == 1 and s.terms[0].coef == 1 and len(s.terms[0].factors) == 1 \
                and not s.terms[0].summed:
            f = s.terms[0].factors[0]
            if isinstance(f, (Ref, Delta, Call)):
                return self.factor(f, held)
        value = const_value(s)
        if value is not None and value >= 0:
            return format_number(value)
        text = self.sum(s, held)
        if not self.latex and _is_call_like(text):
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
        if isinstance(inner, (Ref, Delta, Call, Power)):
            return inner
    return base


def _ends_with_bare_name(text: str) -> bool:
    """Does ``text`` end in an identifier (so that ``name (`` would read as a call)?"""
    k = len(text)
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] in "._"):
        k -= 1
    word = text[k:]
    return bool(word) and (word[0].isalpha() or word[0] == "_")


_LATEX_OPERATORS = {"exp", "log", "sin", "cos", "tan", "tanh", "sinh", "cosh"}


def _latex_name(name: str) -> str:
    return name if len(name) == 1 else "\\mathrm{" + name.replace("_", "\\_") + "}"


def format_statement(st: Statement, anchors: tuple[Ref, ...] = ()) -> str:
    return _Printer().statement(st, anchors)


def format_latex(st: Statement, anchors: tuple[Ref, ...] = ()) -> str:
    return _Printer(latex=True).statement(st, anchors)

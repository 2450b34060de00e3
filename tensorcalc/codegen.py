"""A program as the source of one standalone Python function (NumPy and opt_einsum only).

The function takes the program's inputs as keyword parameters and computes the
statements the result needs in order, one named temporary per term. Every name
in the source comes from the grammar's identifiers (``[A-Za-z_][A-Za-z0-9_]*``),
and any that a Python keyword or a name of the generated code would shadow is
given a trailing underscore, so nothing from the user's text is ever executed.

>>> from tensorcalc.api import compile
>>> print(to_python(compile("y[i] = W[i,j] x[j]")).splitlines()[6])
def y(*, W, x):
"""

from __future__ import annotations

import keyword

from .evaluate import StatementPlan, _SumPlan, _TermPlan
from .ir import Call, Power, Ref, Sum, const_value, statement_refs
from .printing import format_number, format_statement

_RESERVED = {"np", "oe", "n", "inputs", "out"}

_NUMPY = {
    "exp": "np.exp", "log": "np.log", "sqrt": "np.sqrt", "sin": "np.sin", "cos": "np.cos",
    "tan": "np.tan", "tanh": "np.tanh", "sinh": "np.sinh", "cosh": "np.cosh",
    "log1p": "np.log1p", "expm1": "np.expm1", "abs": "np.abs", "sign": "np.sign",
    "square": "np.square",
}

_HELPERS = {
    "sigmoid": '''def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))''',
    "softplus": '''def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))''',
    "relu": '''def _relu(x):
    return np.where(x > 0, x, 0.0 * x)''',
    "step": '''def _step(x):
    return np.where(x > 0, 1.0, 0.0) + 0.0 * x''',
}

_ALIGN = '''def _align(value, have, want, shape):
    """Transpose axes `have` to `want`, broadcasting the ones value lacks."""
    value = np.asarray(value)
    kept = [i for i in want if i in have]
    value = value.transpose([have.index(i) for i in kept])
    value = value.reshape([value.shape[kept.index(i)] if i in kept else 1 for i in want])
    return np.broadcast_to(value, shape)'''

_DIAGONAL = '''def _on_diagonal(core, have, want, ties, shape):
    """A zero array of `shape` (axes `want`) with `core` on the diagonal `ties` name."""
    out = np.zeros(shape, dtype=np.result_type(core, np.float32))
    letters = {i: oe.get_symbol(k) for k, i in enumerate(want)}
    diagonal = list(dict.fromkeys(ties.get(i, i) for i in want))
    view = np.einsum("".join(letters[ties.get(i, i)] for i in want) + "->"
                     + "".join(letters[i] for i in diagonal), out)
    view[...] = _align(core, have, diagonal, view.shape)
    return out'''


class _Writer:
    def __init__(self, taken: set[str]):
        self.lines: list[str] = []
        self.helpers: set[str] = set()
        self.taken = set(taken)
        self.count = 0

    def temp(self, expr: str) -> str:
        self.count += 1
        name = f"t{self.count}"
        while name in self.taken:
            self.count += 1
            name = f"t{self.count}"
        self.lines.append(f"    {name} = {expr}")
        return name

    def sum(self, plan: _SumPlan, order: tuple[str, ...], var: dict[str, str]) -> str:
        shape = "(" + "".join(f"n[{i!r}], " for i in order) + ")"
        if not plan.terms:
            return self.temp(f"np.zeros({shape})")
        parts = []
        for term in plan.terms:
            value = self.term(term, var)
            if term.ties:
                ties = {k: v for k, v in term.ties.items()}
                have = order if set(term.free) == set(order) else term.free
                value = self.temp(
                    f"_on_diagonal({value}, {term.einsum_out!r}, {have!r}, {ties!r}, "
                    "(" + "".join(f"n[{i!r}], " for i in have) + "))")
            else:
                have = term.einsum_out
            self.helpers.add("align")
            if have != order:
                value = f"_align({value}, {have!r}, {order!r}, {shape})"
            parts.append(value)
        if len(parts) == 1 and parts[0].startswith("t") and parts[0][1:].isdigit():
            return parts[0]
        return self.temp(" + ".join(parts))

    def term(self, term: _TermPlan, var: dict[str, str]) -> str:
        operands = [self.operand(f, var) for f in term.core_factors]
        scale = format_number(term.coef) if term.coef != 1 else ""
        for i in term.missing_summed:
            scale = (scale + " * " if scale else "") + f"n[{i!r}]"
        if not operands:
            return self.temp(scale or "1.0")
        inputs, output = term.spec.split("->")
        if len(operands) == 1 and inputs == output:
            expr = operands[0]
        else:
            expr = f"oe.contract({term.spec!r}, {', '.join(operands)})"
        if scale:
            expr = f"{scale} * {expr}"
        return self.temp(expr)

    def operand(self, f: object, var: dict[str, str]) -> str:
        if isinstance(f, Ref):
            return var[f.name]
        if isinstance(f, Call):
            arg = self.sum(_SumPlan(f.arg), f.free, var)
            if f.fn in _NUMPY:
                return self.temp(f"{_NUMPY[f.fn]}({arg})")
            self.helpers.add(f.fn)
            return self.temp(f"_{f.fn}({arg})")
        if isinstance(f, Power):
            base = self.sum(_SumPlan(f.base), f.free, var)
            value = const_value(f.exponent)
            if value is not None:
                if value == 2:
                    return self.temp(f"{base} * {base}")
                if value == -1:
                    return self.temp(f"1.0 / {base}")
                return self.temp(f"{base} ** {format_number(value)}")
            exponent = self.sum(_SumPlan(f.exponent), f.free, var)
            return self.temp(f"{base} ** {exponent}")
        assert isinstance(f, Sum)
        return self.sum(_SumPlan(f), f.free, var)


def _clashes(name: str) -> bool:
    """Would this name, used as it is, shadow Python or a name of the generated code?"""
    return keyword.iskeyword(name) or name in _RESERVED or name.startswith("_") \
        or (name.startswith("t") and name[1:].isdigit())


def _python_names(names: list[str]) -> dict[str, str]:
    """A distinct Python variable for each tensor name: itself where that is safe, else
    the name with underscores added until it is safe and taken by no other tensor."""
    out: dict[str, str] = {}
    taken = set(names)
    for name in dict.fromkeys(names):
        var = "v" + name if name.startswith("_") else name  # _helpers are ours
        while _clashes(var) or (var != name and var in taken):
            var += "_"
        out[name] = var
        taken.add(var)
    return out


def to_python(program: object, function_name: str | None = None) -> str:
    """The source of one function computing ``program``'s result from keyword arrays."""
    from .program import Program

    assert isinstance(program, Program)
    statements = [st for st in program.needed if st.name not in program._shape_only]
    shape_only = [st for st in program.needed if st.name in program._shape_only]
    inputs = list(program.needed_inputs)
    wanted = function_name or program.result
    names = inputs + [st.name for st in program.needed]
    var = _python_names(names + ([wanted] if wanted not in names else []))
    fname = var[wanted]  # the function may share its result's name: that is a local
    writer = _Writer(set(var.values()) | {fname})
    body: list[str] = []
    if any(var[n] != n for n in inputs):  # a name Python or this code needs: take **inputs
        header = f"def {fname}(**inputs):"
        body += [f"    {var[n]} = inputs[{n!r}]" for n in inputs]
    else:
        header = f"def {fname}(*, {', '.join(inputs)}):"
    for st in shape_only + statements:
        plan = StatementPlan(st)
        writer.lines = []
        writer.lines.append(f"    # {format_statement(st)}")
        writer.lines.append("    n = " + _sizes_code(plan, var))
        if st in shape_only:
            shape = "(" + "".join(f"n[{i!r}], " for i in st.indices) + ")"
            writer.lines.append(f"    {var[st.name]} = np.empty({shape})  # only its shape is used")
        else:
            value = writer.sum(plan.rhs, st.indices, var)
            writer.lines.append(f"    {var[st.name]} = np.asarray({value})")
            if st.name == program.result:  # never hand back a read-only broadcast view
                writer.lines.append(f"    if not {var[st.name]}.flags.writeable:")
                writer.lines.append(f"        {var[st.name]} = {var[st.name]}.copy()")
        body += writer.lines
    body.append(f"    return {var[program.result]}")
    helpers = [_HELPERS[h] for h in sorted(writer.helpers) if h in _HELPERS]
    if "align" in writer.helpers or any("_on_diagonal" in line for line in body):
        helpers.append(_ALIGN)
    if any("_on_diagonal" in line for line in body):
        helpers.append(_DIAGONAL)
    doc = "\n".join(format_statement(st) for st in statements)
    head = [
        f'"""Generated by tensorcalc; needs only NumPy and opt_einsum.\n\n{doc}\n"""',
        "import numpy as np",
        "import opt_einsum as oe",
        "",
        "",
        header,
    ]
    tail = ["", ""] + [h + "\n\n" for h in helpers]
    return "\n".join(head + body + tail).rstrip() + "\n"


def _sizes_code(plan: StatementPlan, var: dict[str, str]) -> str:
    """The axis sizes of a statement, read off its references, deltas passing them on."""
    source: dict[str, str] = {}
    for r in statement_refs(plan.statement):
        for axis, i in enumerate(r.indices):
            source.setdefault(i, f"{var[r.name]}.shape[{axis}]")
    changed = True
    while changed:
        changed = False
        for d in plan.deltas:
            if d.i in source and d.j not in source:
                source[d.j] = source[d.i]
                changed = True
            elif d.j in source and d.i not in source:
                source[d.i] = source[d.j]
                changed = True
    return "{" + ", ".join(f"{i!r}: {code}" for i, code in source.items()) + "}"

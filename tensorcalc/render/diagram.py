"""Tensor-network pictures of a statement's terms, as SVG text (no dependency).

Each top-level term of a statement is one panel, drawn as tensorgrad draws a product:

* every factor that is not a delta is a **node**: a tensor is labelled with its name, a
  function of a sum with the function (``tanh``), a power with ``(.)^2`` (``1/(.)`` for
  a division), a parenthesised sum with ``(+)``, a shifted delta as written
  (``delta[p,i+1]``); hovering shows the factor in full;
* an index carried by exactly two places is one line between them: an **edge** between
  two nodes where the term sums it (a contraction), a **leg** from a node to its label
  at the panel's border where it is free;
* an index carried by three or more places (an elementwise product, a diagonal) meets
  at a small dot, the **junction**, with one line to each place;
* a **delta** is a plain **wire**: it joins its two indices into one line, so that
  ``delta[i,p]`` with both indices free is a line from the open end ``i`` to ``p``.

Nodes sit on a circle in the order of the factors; free indices' labels sit outside it.
The layout is deterministic: the same term gives the same text. Every element carries
its meaning as attributes (``class``, ``data-name``, ``data-index``, ``data-from``,
``data-to``), so the picture can be checked by parsing it.

>>> from tensorcalc.api import compile
>>> svg = diagram(compile("y[i] = W[i,j] x[j]").statements[-1])
>>> svg.startswith("<svg") and svg.count('class="node"')
2
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ..ir import const_value, subscript_text, unknown_kind
from ..ir.nodes import Call, Cond, Delta, Factor, Power, Reduce, Ref, Shift, Statement, Sum, Term
from .printing import format_number, format_statement

PANEL_WIDTH = 420
PANEL_HEIGHT = 320
TITLE_HEIGHT = 34
NODE_RADIUS = 22
RING = 78  # radius of the circle the nodes sit on
OUTER = 128  # radius of the circle the free indices' labels sit on

_STYLE = (
    ".node rect{fill:#eef4ff;stroke:#2b4c7e;stroke-width:1.5}"
    ".node text{font:bold 12px sans-serif;fill:#1b2a41}"
    ".edge,.leg,.wire{fill:none;stroke:#333;stroke-width:1.6}"
    ".wire{stroke:#8a1c1c;stroke-dasharray:5 3}"
    ".junction,.sum-end{fill:#333}"
    ".open text,.index text{font:italic 13px serif;fill:#8a1c1c}"
    ".index text{font-size:11px;fill:#444}"
    ".title{font:13px monospace;fill:#111}"
)


def diagram(statements: Statement | Iterable[Statement]) -> str:
    """SVG text drawing every top-level term of each statement given as a tensor network,
    one panel a term, the statements one below the other."""
    if isinstance(statements, Statement):
        statements = (statements,)
    panels: list[str] = []
    y = 0.0
    for st in statements:
        header = format_statement(Statement(st.name, st.indices, Sum(()))).removesuffix(" = 0")
        panels.append(_text(8, y + 22, f"{header} = sum of {len(st.rhs.terms)} term"
                            f"{'' if len(st.rhs.terms) == 1 else 's'}", "title"))
        y += TITLE_HEIGHT
        terms = st.rhs.terms or (Term(0.0, ()),)
        for k, t in enumerate(terms):
            panels.append(_panel(st.name, k, t, y))
            y += PANEL_HEIGHT
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{PANEL_WIDTH}" '
            f'height="{int(y)}" viewBox="0 0 {PANEL_WIDTH} {int(y)}">'
            f"<style>{_STYLE}</style>" + "".join(panels) + "</svg>\n")


# --- one term -----------------------------------------------------------------------


@dataclass
class _Place:
    """Where a line may end: a node, an open end (a free index), or a junction."""

    id: str
    x: float
    y: float


def _panel(name: str, k: int, t: Term, top: float) -> str:
    cx, cy = PANEL_WIDTH / 2, top + 20 + (PANEL_HEIGHT - 20) / 2
    nodes = [f for f in t.factors if not isinstance(f, Delta)]
    deltas = [f for f in t.factors if isinstance(f, Delta)]
    out = [f'<g class="term" data-statement={quoteattr(name)} data-term="{k}">']
    sign = "-" if t.coef < 0 else "+"
    caption = f"term {k + 1}: {sign} {format_number(abs(t.coef))}"
    caption += " \u00d7" if t.factors else ""
    if t.summed:
        caption += f"   summed: {', '.join(sorted(t.summed))}"
    out.append(_text(8, top + 16, caption, "title"))
    places, angle = _node_places(len(nodes), cx, cy)
    uses, members = _index_lines(t, nodes, deltas)
    _outer_places(places, angle, uses, members, t.free, len(nodes), cx, cy)
    out += _lines(t, places, uses, members, cx, cy)
    for n, f in enumerate(nodes):
        p = places[f"n{n}"]
        out.append(f'<g class="node" data-id="n{n}" data-name={quoteattr(_label(f))} '
                   f'data-indices={quoteattr(",".join(_indices(f)))}>'
                   f"<title>{escape(_full_text(f))}</title>"
                   + _box(p, _label(f))
                   + _text(p.x, p.y + 4, _label(f), anchor="middle") + "</g>")
    for i in t.free:
        p = places[f"o:{i}"]
        # the label just beyond the end of its line, away from the centre
        dx, dy = p.x - cx, p.y - cy
        norm = math.hypot(dx, dy) or 1.0
        lx, ly = p.x + 12 * dx / norm, p.y + 12 * dy / norm
        out.append(f'<g class="open" data-index={quoteattr(i)} data-id={quoteattr(p.id)}>'
                   + _text(lx, ly + 4, i, anchor="middle") + "</g>")
    out.append("</g>")
    return "".join(out)


def _node_places(count: int, cx: float, cy: float
                 ) -> tuple[dict[str, _Place], dict[str, float]]:
    """The nodes on a circle, in the order of the factors, with the angle of each."""
    places: dict[str, _Place] = {}
    angle: dict[str, float] = {}
    for n in range(count):
        a = -math.pi / 2 + 2 * math.pi * n / count
        r = RING if count > 1 else 0.0
        places[f"n{n}"] = _Place(f"n{n}", cx + r * math.cos(a), cy + r * math.sin(a))
        angle[f"n{n}"] = a
    return places, angle


def _index_lines(t: Term, nodes: Sequence[Factor], deltas: list[Delta]
                 ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each index, joined with those a delta equates to it, is one line or one junction:
    by the representative of each, the nodes that use it and the index names it joins."""
    group = _delta_groups(deltas)
    uses: dict[str, list[str]] = {}
    for n, f in enumerate(nodes):
        for i in _indices(f):
            uses.setdefault(group.get(i, i), []).append(f"n{n}")
    members: dict[str, list[str]] = {}
    for i in list(t.free) + sorted(t.summed) + [d for pair in deltas for d in (pair.i, pair.j)]:
        root = group.get(i, i)
        if i not in members.setdefault(root, []):
            members[root].append(i)
    return uses, members


def _outer_places(places: dict[str, _Place], angle: dict[str, float],
                  uses: dict[str, list[str]], members: dict[str, list[str]],
                  free: tuple[str, ...], count: int, cx: float, cy: float) -> None:
    """Open ends (and the end of an axis summed on one node alone) sit outside the first
    node of their line; open ends of lines with no node, along the bottom."""
    outward: dict[str, list[str]] = {}
    loose: list[str] = []
    for root, names in members.items():
        holders = uses.get(root, [])
        opens = [f"o:{i}" for i in names if i in free]
        if not opens and len(holders) == 1:
            opens = [f"s:{root}"]  # summed over one axis of one tensor
        for o in opens:
            if holders:
                outward.setdefault(holders[0], []).append(o)
            else:
                loose.append(o)
    for node, ids in outward.items():
        many = count > 1
        step = 0.5 if many else 2 * math.pi / len(ids)
        for m, o in enumerate(ids):
            a = (angle[node] if many else -math.pi / 2) + step * (m - (len(ids) - 1) / 2)
            r = OUTER if o.startswith("o:") else OUTER - 30
            places[o] = _Place(o, cx + r * math.cos(a), cy + r * math.sin(a))
    for m, o in enumerate(loose):
        x = cx + 120 * (m - (len(loose) - 1) / 2)
        places[o] = _Place(o, x, cy + OUTER if count else cy)


def _lines(t: Term, places: dict[str, _Place], uses: dict[str, list[str]],
           members: dict[str, list[str]], cx: float, cy: float) -> list[str]:
    """Each index's line between its two places, or its lines from a junction."""
    lines: list[str] = []
    pair_count: dict[tuple[str, str], int] = {}
    junctions: list[tuple[float, float]] = []
    for root, names in members.items():
        ends = list(uses.get(root, [])) + [f"o:{i}" for i in names if i in t.free]
        if f"s:{root}" in places:
            ends.append(f"s:{root}")
            p = places[f"s:{root}"]
            lines.append(f'<rect class="sum-end" data-index={quoteattr(",".join(names))} '
                         f'x="{p.x - 3:.1f}" y="{p.y - 3:.1f}" width="6" height="6"/>')
        kind = "wire" if len(names) > 1 else ("edge" if names[0] in t.summed else "leg")
        label = ",".join(names)
        if len(ends) == 2:
            a_id, b_id = ends
            key = (min(a_id, b_id), max(a_id, b_id))
            bend = pair_count.get(key, 0)
            pair_count[key] = bend + 1
            lines.append(_line(kind, label, places[a_id], places[b_id], bend, cx, cy))
        elif len(ends) > 2:
            jx = sum(places[e].x for e in ends) / len(ends)
            jy = sum(places[e].y for e in ends) / len(ends)
            while any(math.hypot(jx - x, jy - y) < 12 for x, y in junctions):
                jx, jy = jx + 14, jy + 10  # two junctions at one point would read as one
            junctions.append((jx, jy))
            junction = _Place(f"j:{label}", jx, jy)
            lines.append(f'<circle class="junction" data-index={quoteattr(label)} '
                         f'data-id={quoteattr(junction.id)} cx="{jx:.1f}" cy="{jy:.1f}" r="3.5"/>')
            for e in ends:
                lines.append(_line(kind, label, junction, places[e], 0, cx, cy))
    return lines


def _line(kind: str, label: str, a: _Place, b: _Place, bend: int, cx: float, cy: float) -> str:
    """A line (a loop where both ends are one node, curved where lines run in parallel)."""
    attrs = (f'class="{kind}" data-index={quoteattr(label)} data-from={quoteattr(a.id)} '
             f"data-to={quoteattr(b.id)}")
    if a.id == b.id:  # a trace: a loop outside the node, away from the centre
        dx, dy = a.x - cx, a.y - cy
        norm = math.hypot(dx, dy) or 1.0
        ux, uy = (dx / norm, dy / norm) if math.hypot(dx, dy) else (0.0, -1.0)
        tip_x, tip_y = a.x + ux * 3 * NODE_RADIUS, a.y + uy * 3 * NODE_RADIUS
        d = (f"M{a.x:.1f},{a.y:.1f} C{tip_x - uy * 30:.1f},{tip_y + ux * 30:.1f} "
             f"{tip_x + uy * 30:.1f},{tip_y - ux * 30:.1f} {a.x:.1f},{a.y:.1f}")
        return f'<path {attrs} d="{d}"/>' + _index_label(label, tip_x, tip_y, kind)
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    offset = (bend + 1) // 2 * 22 * (1 if bend % 2 else -1)
    dx, dy = b.x - a.x, b.y - a.y
    norm = math.hypot(dx, dy) or 1.0
    qx, qy = mx - dy / norm * offset, my + dx / norm * offset
    d = f"M{a.x:.1f},{a.y:.1f} Q{qx:.1f},{qy:.1f} {b.x:.1f},{b.y:.1f}"
    lx, ly = (a.x + 2 * qx + b.x) / 4, (a.y + 2 * qy + b.y) / 4
    if a.id.startswith("o:") and b.id.startswith("o:"):
        return f'<path {attrs} d="{d}"/>'  # a wire between two open ends: both are labelled
    return f'<path {attrs} d="{d}"/>' + _index_label(label, lx, ly, kind)


def _box(p: _Place, label: str) -> str:
    width = max(2 * NODE_RADIUS, 8 * len(label) + 14)
    return (f'<rect x="{p.x - width / 2:.1f}" y="{p.y - NODE_RADIUS:.1f}" width="{width}" '
            f'height="{2 * NODE_RADIUS}" rx="{NODE_RADIUS}"/>')


def _index_label(label: str, x: float, y: float, kind: str) -> str:
    if kind == "leg":
        return ""  # the open end's own label names it
    return f'<g class="index">{_text(x + 4, y - 4, label)}</g>'


def _text(x: float, y: float, text: str, cls: str | None = None, anchor: str = "start") -> str:
    c = f' class="{cls}"' if cls else ""
    a = f' text-anchor="{anchor}"' if anchor != "start" else ""
    return f'<text{c} x="{x:.1f}" y="{y:.1f}"{a}>{escape(text)}</text>'


def _delta_groups(deltas: list[Delta]) -> dict[str, str]:
    """Each index a delta mentions, mapped to one representative of those it equates."""
    parent: dict[str, str] = {}

    def root(i: str) -> str:
        while parent.setdefault(i, i) != i:
            i = parent[i]
        return i

    for d in deltas:
        a, b = root(d.i), root(d.j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {i: root(i) for i in parent}


def _indices(f: Factor) -> tuple[str, ...]:
    """The index uses a node has: a tensor's as written (a diagonal uses one twice)."""
    if isinstance(f, Ref):
        return f.indices
    if isinstance(f, (Shift, Cond, Call, Reduce, Power, Sum)):
        return f.free
    unknown_kind(f)


def _label(f: Factor) -> str:
    if isinstance(f, Ref):
        return f.name
    if isinstance(f, Shift):  # a delta that ties an index to arithmetic: not a plain wire
        return f"delta[{f.i},{subscript_text(f.sub)}]"
    if isinstance(f, Cond):  # an index condition, as written
        return f"[{subscript_text(f.a)}{f.op}{subscript_text(f.b)}]"
    if isinstance(f, Call):
        return f.fn
    if isinstance(f, Reduce):
        mask = "|" + ",".join(f"{subscript_text(c.a)}{c.op}{subscript_text(c.b)}"
                              for c in f.mask) if f.mask else ""
        return f"{f.fn}[{','.join(f.indices)}{mask}]"
    if isinstance(f, Power):
        n = const_value(f.exponent)
        if n == -1:
            return "1/(.)"
        return f"(.)^{format_number(n)}" if n is not None else "(.)^(.)"
    if isinstance(f, Sum):
        return "(+)"
    unknown_kind(f)


def _full_text(f: Factor) -> str:
    """The factor in index notation (for hovering)."""
    body = Sum((Term(1.0, (f,)),))
    return format_statement(Statement("_", f.free, body)).partition(" = ")[2]

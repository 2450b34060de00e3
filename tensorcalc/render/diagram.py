"""Tensor-network pictures of a statement's terms, as SVG text (no dependency).

Each top-level term of a statement is one panel, drawn as tensorgrad draws a product:

* every factor that is not a delta is a **node** labelled by what it is: a tensor by its
  name, any other factor by its expression in index notation (``tanh(X[b,d] W[d,h] +
  c[h])``, ``(1 - H[k,q]^2)``, ``softmax[q](Z[p,q])``), cut short with ``…`` past
  ``MAX_LABEL`` characters; hovering shows it in full;
* an index carried by exactly two places is one line between them: an **edge** between
  two nodes where the term sums it (a contraction), a **leg** from a node to its label
  at the panel's border where it is free;
* an index carried by three or more places (an elementwise product, a diagonal) meets
  at a small dot, the **junction**, with one line to each place;
* a **delta** is a plain **wire**: it joins its two indices into one line, so that
  ``delta[i,p]`` with both indices free is a line from the open end ``i`` to ``p``;
* a **shifted delta** is a wire too, labelled by the shift: ``delta[p,k+1]`` is a wire
  from ``p`` to ``k`` through a dot marked ``p=k+1``; a **gather** ``delta[q,t[p]]`` is
  a wire from ``q`` to a node for the index array ``t``, marked ``q=t[p]``, whose own
  index ``p`` is an ordinary line.

Nodes sit on a circle in the order of the factors, spaced by their widths; free
indices' labels sit outside it; each panel is cut to what it draws. The layout is
deterministic: the same term gives the same text. Every element carries its meaning as
attributes (``class``, ``data-name``, ``data-index``, ``data-from``, ``data-to``), so the
picture can be checked by parsing it.

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

from ..ir import subscript_text, unknown_kind
from ..ir.nodes import Call, Cond, Delta, Factor, Power, Reduce, Ref, Shift, Statement, Sum, Term
from ..ir.subscripts import Gather
from .printing import format_number, format_statement

TITLE_HEIGHT = 30
CAPTION_HEIGHT = 22
MARGIN = 14
NODE_RADIUS = 20
RING = 74  # the least radius of the circle the nodes sit on
LEG = 48  # how far beyond the nodes' circle the free indices' labels sit
MAX_LABEL = 24  # a node's label is cut short past this many characters

_STYLE = (
    ".node rect{fill:#eef4ff;stroke:#2b4c7e;stroke-width:1.5}"
    ".node text{font:bold 12px sans-serif;fill:#1b2a41}"
    ".node text.expr{font:11px monospace}"
    ".node.index-array rect{fill:#fff4e0;stroke:#8a5a00;stroke-dasharray:4 2}"
    ".node.shift circle{fill:#8a1c1c}.node.shift text{font:italic 12px serif;fill:#8a1c1c}"
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
    width = 0.0
    for st in statements:
        header = format_statement(Statement(st.name, st.indices, Sum(()))).removesuffix(" = 0")
        title = (f"{header} = sum of {len(st.rhs.terms)} term"
                 f"{'' if len(st.rhs.terms) == 1 else 's'}")
        panels.append(_text(8, y + 20, title, "title"))
        width = max(width, 16 + 7.9 * len(title))
        y += TITLE_HEIGHT
        terms = st.rhs.terms or (Term(0.0, ()),)
        for k, t in enumerate(terms):
            panel, (w, h) = _panel(st.name, k, t, y)
            panels.append(panel)
            width = max(width, w)
            y += h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{math.ceil(width)}" '
            f'height="{math.ceil(y)}" viewBox="0 0 {math.ceil(width)} {math.ceil(y)}">'
            f"<style>{_STYLE}</style>" + "".join(panels) + "</svg>\n")


# --- one term -----------------------------------------------------------------------


@dataclass
class _Place:
    """Where a line may end: a node, an open end (a free index), or a junction."""

    id: str
    x: float
    y: float


class _Bounds:
    """The smallest box around what a panel draws, grown as it is drawn."""

    def __init__(self) -> None:
        self.left = self.top = math.inf
        self.right = self.bottom = -math.inf

    def add(self, x: float, y: float, half_width: float = 0.0, half_height: float = 0.0) -> None:
        self.left = min(self.left, x - half_width)
        self.right = max(self.right, x + half_width)
        self.top = min(self.top, y - half_height)
        self.bottom = max(self.bottom, y + half_height)


def _panel(name: str, k: int, t: Term, top: float) -> tuple[str, tuple[float, float]]:
    """One term's panel, drawn around (0, 0) and moved below ``top``: its SVG and size."""
    nodes = [f for f in t.factors if not isinstance(f, Delta)]
    deltas = [f for f in t.factors if isinstance(f, Delta)]
    bounds = _Bounds()
    widths = [_node_width(f) for f in nodes]
    places, angle, ring = _node_places(widths)
    uses, members = _index_lines(t, nodes, deltas)
    _outer_places(places, angle, uses, members, t, widths, ring)
    shifts = {f"n{n}": f for n, f in enumerate(nodes) if isinstance(f, Shift)}
    out = _lines(t, places, uses, members, shifts, bounds)
    for n, f in enumerate(nodes):
        out.append(_node(f"n{n}", f, places[f"n{n}"], widths[n], bounds))
    for i in t.free:
        p = places[f"o:{i}"]
        # the label just beyond the end of its line, away from the centre
        norm = math.hypot(p.x, p.y) or 1.0
        lx, ly = p.x + 12 * p.x / norm, p.y + 12 * p.y / norm
        bounds.add(lx, ly, 4 + 4 * len(i), 10)
        out.append(f'<g class="open" data-index={quoteattr(i)} data-id={quoteattr(p.id)}>'
                   + _text(lx, ly + 4, i, anchor="middle") + "</g>")
    bounds.add(0.0, 0.0)
    sign = "-" if t.coef < 0 else "+"
    caption = f"term {k + 1}: {sign} {format_number(abs(t.coef))}"
    caption += " \u00d7" if t.factors else ""
    if t.summed:
        caption += f"   summed: {', '.join(sorted(t.summed))}"
    left, upper = bounds.left - MARGIN, bounds.top - MARGIN - CAPTION_HEIGHT
    width = max(bounds.right - bounds.left + 2 * MARGIN, 16 + 7.9 * len(caption))
    height = bounds.bottom - bounds.top + 2 * MARGIN + CAPTION_HEIGHT
    return (f'<g class="term" data-statement={quoteattr(name)} data-term="{k}" '
            f'transform="translate({-left:.1f},{top - upper:.1f})">'
            + _text(left + 8, upper + 16, caption, "title") + "".join(out) + "</g>",
            (width, height))


def _node(node_id: str, f: Factor, p: _Place, width: float, bounds: _Bounds) -> str:
    """A factor's node: a box with its label, or for a shift, a dot with the shift."""
    label = _label(f)
    head = (f'data-id="{node_id}" data-name={quoteattr(label)} '
            f'data-indices={quoteattr(",".join(_indices(f)))}><title>{escape(_full_text(f))}'
            "</title>")
    if isinstance(f, Shift) and not isinstance(f.sub, Gather):
        bounds.add(p.x, p.y + 14, 4 + 3.5 * len(label), 8)
        return (f'<g class="node shift" {head}<circle cx="{p.x:.1f}" cy="{p.y:.1f}" r="4"/>'
                + _text(p.x, p.y + 19, label, anchor="middle") + "</g>")
    bounds.add(p.x, p.y, width / 2, NODE_RADIUS)
    kind = "node index-array" if isinstance(f, Shift) else "node"
    cls = None if isinstance(f, Ref) or isinstance(f, Shift) else "expr"
    return (f'<g class="{kind}" {head}'
            f'<rect x="{p.x - width / 2:.1f}" y="{p.y - NODE_RADIUS:.1f}" width="{width:.1f}" '
            f'height="{2 * NODE_RADIUS}" rx="{NODE_RADIUS}"/>'
            + _text(p.x, p.y + 4, label, cls, anchor="middle") + "</g>")


def _node_width(f: Factor) -> float:
    label = _label(f)
    if isinstance(f, Shift) and not isinstance(f.sub, Gather):
        return 8.0  # a dot on a wire
    per_char = 8.0 if isinstance(f, (Ref, Shift)) else 6.8
    return max(2.0 * NODE_RADIUS, per_char * len(label) + 16)


def _node_places(widths: list[float]
                 ) -> tuple[dict[str, _Place], dict[str, float], float]:
    """The nodes on a circle around (0, 0), in the order of the factors, far enough apart
    for their widths; the angle of each, and the circle's radius."""
    count = len(widths)
    ring = 0.0
    if count == 2:  # side by side
        ring = (widths[0] + widths[1]) / 4 + 40
    elif count > 2:
        widest = max(widths[n] + widths[(n + 1) % count] for n in range(count)) / 2 + 14
        ring = max(RING, widest / (2 * math.sin(math.pi / count)))
    places: dict[str, _Place] = {}
    angle: dict[str, float] = {}
    for n in range(count):
        a = (math.pi if count == 2 else -math.pi / 2) + 2 * math.pi * n / count
        places[f"n{n}"] = _Place(f"n{n}", ring * math.cos(a), ring * math.sin(a))
        angle[f"n{n}"] = a
    return places, angle, ring


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
                  t: Term, widths: list[float], ring: float) -> None:
    """Open ends (and the end of a line summed with one place alone: an axis of one node,
    or a delta to a free index) sit outside the first node of their line; the ends of
    lines with no node, in a row below the rest."""
    count = len(widths)
    outer = ring + LEG if count > 1 else max(72.0, widths[0] / 2 + 36 if widths else 0.0)
    outward: dict[str, list[str]] = {}
    loose: list[str] = []
    for root, names in members.items():
        holders = uses.get(root, [])
        opens = [f"o:{i}" for i in names if i in t.free]
        if len(opens) + len(holders) == 1 and any(i in t.summed for i in names):
            opens.append(f"s:{root}")  # summed over one axis of one tensor, or a delta's
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
            r = outer if o.startswith("o:") else outer - 24
            places[o] = _Place(o, r * math.cos(a), r * math.sin(a))
    below = max((p.y for p in places.values()), default=-40.0) + 40
    for m, o in enumerate(loose):
        places[o] = _Place(o, 56 * (m - (len(loose) - 1) / 2), below)


def _lines(t: Term, places: dict[str, _Place], uses: dict[str, list[str]],
           members: dict[str, list[str]], shifts: dict[str, Shift], bounds: _Bounds
           ) -> list[str]:
    """Each index's line between its two places, or its lines from a junction."""
    lines: list[str] = []
    pair_count: dict[tuple[str, str], int] = {}
    junctions: list[tuple[float, float]] = []
    for root, names in members.items():
        ends = list(uses.get(root, [])) + [f"o:{i}" for i in names if i in t.free]
        if f"s:{root}" in places:
            ends.append(f"s:{root}")
            p = places[f"s:{root}"]
            bounds.add(p.x, p.y, 3, 3)
            lines.append(f'<rect class="sum-end" data-index={quoteattr(",".join(names))} '
                         f'x="{p.x - 3:.1f}" y="{p.y - 3:.1f}" width="6" height="6"/>')
        kind = "wire" if len(names) > 1 else ("edge" if names[0] in t.summed else "leg")
        if len(ends) == 2:
            a_id, b_id = ends
            key = (min(a_id, b_id), max(a_id, b_id))
            bend = pair_count.get(key, 0)
            pair_count[key] = bend + 1
            lines.append(_line(*_shifted(kind, names, ends, shifts), places[a_id],
                               places[b_id], bend, bounds))
        elif len(ends) > 2:
            jx = sum(places[e].x for e in ends) / len(ends)
            jy = sum(places[e].y for e in ends) / len(ends)
            while any(math.hypot(jx - x, jy - y) < 12 for x, y in junctions):
                jx, jy = jx + 14, jy + 10  # two junctions at one point would read as one
            junctions.append((jx, jy))
            junction = _Place(f"j:{','.join(names)}", jx, jy)
            lines.append(f'<circle class="junction" data-index={quoteattr(",".join(names))} '
                         f'data-id={quoteattr(junction.id)} cx="{jx:.1f}" cy="{jy:.1f}" r="3.5"/>')
            for e in ends:
                lines.append(_line(*_shifted(kind, names, [e], shifts), junction, places[e], 0,
                                   bounds))
    return lines


def _shifted(kind: str, names: list[str], ends: list[str], shifts: dict[str, Shift]
             ) -> tuple[str, str]:
    """The kind and label of a line to ``ends``: a wire where it meets a shift (for a
    gather, on the shifted index only, labelled with what it equals: ``q=t[p]``)."""
    label = ",".join(names)
    for e in ends:
        s = shifts.get(e)
        if s is None:
            continue
        if not isinstance(s.sub, Gather):
            return "wire", label
        if s.i in names:
            return "wire", f"{label}={subscript_text(s.sub)}"
    return kind, label


def _line(kind: str, label: str, a: _Place, b: _Place, bend: int, bounds: _Bounds) -> str:
    """A line (a loop where both ends are one node, curved where lines run in parallel)."""
    attrs = (f'class="{kind}" data-index={quoteattr(label.split("=")[0])} '
             f"data-from={quoteattr(a.id)} data-to={quoteattr(b.id)}")
    bounds.add(a.x, a.y)
    bounds.add(b.x, b.y)
    if a.id == b.id:  # a trace: a loop outside the node, away from the centre
        norm = math.hypot(a.x, a.y)
        ux, uy = (a.x / norm, a.y / norm) if norm else (0.0, -1.0)
        tip_x, tip_y = a.x + ux * 3 * NODE_RADIUS, a.y + uy * 3 * NODE_RADIUS
        bounds.add(tip_x, tip_y, 30, 30)
        d = (f"M{a.x:.1f},{a.y:.1f} C{tip_x - uy * 30:.1f},{tip_y + ux * 30:.1f} "
             f"{tip_x + uy * 30:.1f},{tip_y - ux * 30:.1f} {a.x:.1f},{a.y:.1f}")
        return f'<path {attrs} d="{d}"/>' + _index_label(label, tip_x, tip_y, kind, bounds)
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    offset = (bend + 1) // 2 * 22 * (1 if bend % 2 else -1)
    dx, dy = b.x - a.x, b.y - a.y
    norm = math.hypot(dx, dy) or 1.0
    qx, qy = mx - dy / norm * offset, my + dx / norm * offset
    d = f"M{a.x:.1f},{a.y:.1f} Q{qx:.1f},{qy:.1f} {b.x:.1f},{b.y:.1f}"
    lx, ly = (a.x + 2 * qx + b.x) / 4, (a.y + 2 * qy + b.y) / 4
    if a.id.startswith("o:") and b.id.startswith("o:"):
        return f'<path {attrs} d="{d}"/>'  # a wire between two open ends: both are labelled
    return f'<path {attrs} d="{d}"/>' + _index_label(label, lx, ly, kind, bounds)


def _index_label(label: str, x: float, y: float, kind: str, bounds: _Bounds) -> str:
    if kind == "leg":
        return ""  # the open end's own label names it
    bounds.add(x, y - 8, 4 + 3 * len(label), 8)
    return f'<g class="index">{_text(x, y - 5, label, anchor="middle")}</g>'


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
    """What a node shows: a tensor's name, an index array's name, a shift as an equation,
    any other factor as its expression, cut short past ``MAX_LABEL`` characters."""
    if isinstance(f, Ref):
        return f.name
    if isinstance(f, Shift):
        if isinstance(f.sub, Gather):
            return f.sub.name
        return f"{f.i}={subscript_text(f.sub)}"
    if isinstance(f, (Cond, Call, Reduce, Power, Sum)):
        text = _full_text(f)
        return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 1] + "\u2026"
    unknown_kind(f)


def _full_text(f: Factor) -> str:
    """The factor in index notation (for hovering)."""
    body = Sum((Term(1.0, (f,)),))
    return format_statement(Statement("_", f.free, body)).partition(" = ")[2]

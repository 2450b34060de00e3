"""Diagrams that read: every factor labelled by what it is, a shifted delta as a wire
marked with its shift, a gather as a wire to its index array, and panels cut to what
they draw (nothing outside the picture, no empty two thirds)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import tensorcalc as tc
from tensorcalc.render.diagram import MAX_LABEL
from tensorcalc.tools.playground.examples import EXAMPLES

SVG = "{http://www.w3.org/2000/svg}"
MLP = EXAMPLES["MLP"]["program"]


def _nodes(svg: str) -> list[tuple[str, str, str]]:
    """(class, label, indices) of each node."""
    return re.findall(r'class="(node[^"]*)" data-id="n\d+" data-name="([^"]*)" '
                      r'data-indices="([^"]*)"', svg)


def _terms(svg: str) -> list[ET.Element]:
    return [g for g in ET.fromstring(svg).iter(SVG + "g") if g.get("class") == "term"]


def _lines_at(term: ET.Element, node_id: str) -> list[ET.Element]:
    return [p for p in term if p.tag == SVG + "path" and node_id in (p.get("data-from"),
                                                                      p.get("data-to"))]


def test_a_shifted_delta_is_a_wire_marked_with_its_shift() -> None:
    d = tc.derive("d[i] = x[i+1] - x[i]", "x")
    svg = d.diagram()
    assert ("node shift", "p=i+1", "p,i") in _nodes(svg)
    first = _terms(svg)[0]
    (shift,) = [g for g in first if g.get("class") == "node shift"]
    lines = _lines_at(first, shift.get("data-id"))
    assert {p.get("class") for p in lines} == {"wire"}
    assert sorted(p.get("data-index") for p in lines) == ["i", "p"]
    assert "p=i+1" in "".join(shift.itertext())
    # the plain delta of the second term stays a wire between two open ends
    assert re.search(r'class="wire" data-index="[ip],[ip]"', svg)


def test_a_strided_shift_keeps_its_coefficients_and_its_lines() -> None:
    svg = tc.derive("d[i] = x[2*i+1] x[i]", "x").diagram()
    assert ("node shift", "p=2*i+1", "p,i") in _nodes(svg)
    # in the first term, i joins the shift, the tensor and the open end i
    first = svg.split('data-term="1"')[0]
    assert re.search(r'class="junction" data-index="i"', first)


def test_a_gather_is_a_labelled_wire_to_its_index_array() -> None:
    d = tc.grad("L = logsumexp[k](Z[n,k]) - Z[n,t[n]]", "Z")
    svg = d.diagram()
    assert ("node index-array", "t", "q,p") in _nodes(svg)
    second = _terms(svg)[1]
    lines = {p.get("data-index"): p for p in _lines_at(second, "n0")}
    assert lines["q"].get("class") == "wire" and lines["p"].get("class") == "leg"
    labels = ["".join(g.itertext()) for g in second if g.get("class") == "index"]
    assert labels == ["q=t[p]"]


def test_every_factor_is_labelled_by_its_expression() -> None:
    d = tc.grad(MLP, "W")
    svg = d.diagram(every_statement=True)
    labels = {label for _, label, _ in _nodes(svg)}
    assert "(+)" not in labels and "(.)^2" not in labels
    assert {"(1 - H[k,q]^2)", "(P[b,o] - T[b,o])", "H_bar", "X"} <= labels
    cut = "tanh(X[b,d] W[d,h] + c[h])"[:MAX_LABEL - 1] + "\u2026"
    assert cut in labels and len(cut) == MAX_LABEL
    assert "<title>tanh(X[b,d] W[d,h] + c[h])</title>" in svg  # in full on hovering
    reduced = tc.grad("L = logsumexp[k](Z[n,k]) - Z[n,t[n]]", "Z").diagram()
    assert ("node", "softmax[q](Z[p,q])", "p,q") in _nodes(reduced)
    conditions = tc.compile("y[i] = [i != j] A[i,j]").diagram()
    assert ("node", "[i != j]", "i,j") in _nodes(conditions)


def _points(svg: str) -> tuple[float, float, list[tuple[float, float]]]:
    """The picture's size and every point drawn, moved by its panel's translation."""
    root = ET.fromstring(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    points = []
    for term in _terms(svg):
        dx, dy = map(float, re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)",
                                         term.get("transform")).groups())
        for e in term.iter():
            pairs = [(e.get("x"), e.get("y")), (e.get("cx"), e.get("cy"))]
            pairs += re.findall(r"(-?[\d.]+),(-?[\d.]+)", e.get("d") or "")
            points += [(float(x) + dx, float(y) + dy) for x, y in pairs if x is not None]
    return width, height, points


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_nothing_is_drawn_outside_the_picture(name: str) -> None:
    example = EXAMPLES[name]
    d = tc.derive(example["program"], example["wrt"])
    width, height, points = _points(d.diagram(every_statement=True))
    assert points
    assert all(0 <= x <= width and 0 <= y <= height for x, y in points), (width, height)


def test_a_panel_is_cut_to_what_it_draws() -> None:
    # dy_dW[i,p,q] = delta[i,p] x[q]: one node and one wire, in a small picture
    svg = tc.derive("y[i] = W[i,j] x[j]", "W").diagram()
    width, height, points = _points(svg)
    assert width <= 260 and height <= 240, (width, height)  # 420 by 354 before
    xs, ys = [x for x, _ in points], [y for _, y in points]
    # what is drawn (below the titles) fills most of the panel both ways
    assert max(xs) - min(xs) >= 0.25 * width
    assert max(ys) - min(ys) >= 0.5 * height

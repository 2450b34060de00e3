"""The diagram of index arithmetic: a shifted delta is drawn as the delta it is."""

from __future__ import annotations

import re

import tensorcalc as tc


def _nodes(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'class="node" data-id="n\d+" data-name="([^"]*)" data-indices="([^"]*)"',
                      svg)


def test_a_shifted_delta_is_a_node_with_its_subscript() -> None:
    d = tc.derive("d[i] = x[i+1] - x[i]", "x")
    svg = d.diagram()
    nodes = _nodes(svg)
    assert ("delta[p,i+1]", "p,i") in nodes
    assert all(name != "(+)" for name, _ in nodes)
    # the plain delta of the second term stays a wire between two open ends
    assert re.search(r'class="wire" data-index="[ip],[ip]"', svg)


def test_a_strided_shift_keeps_its_coefficients_and_its_lines() -> None:
    svg = tc.derive("d[i] = x[2*i+1] x[i]", "x").diagram()
    assert ("delta[p,2*i+1]", "p,i") in _nodes(svg)
    # in the first term, i joins the shifted delta, the tensor and the open end i
    first = svg.split('data-term="1"')[0]
    assert re.search(r'class="junction" data-index="i"', first)

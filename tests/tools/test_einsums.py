"""The labelled einsums of ``derive --format einsum``: each operand as written, and the
einsums inside an operand named by what holds them (a tensor holds none)."""

from __future__ import annotations

import tensorcalc as tc
from tensorcalc.tools.einsums import labelled_einsums


def test_nested_einsums_are_named_by_their_operand() -> None:
    text = labelled_einsums(tc.compile(
        "y[i] = tanh(W[i,j] x[j]) + max[j](A[i,j] x[j]) + (x[i] + 1)^2 + inv[i,j](S[i,j]) x[j]"))
    rows = [line.split("#", 1)[1].strip() for line in text.splitlines()]
    assert rows == [
        "y: tanh(...)[i]", "y, in tanh: W[i,j], x[j]",
        "y: max[j](...)[i]", "y, in max[j]: A[i,j], x[j]",
        "y: (...)^2[i]", "y, in a power: x[i]",
        "y: solve(inv[i,j](...), ...)[i]",
        "y, in a solve with inv[i,j]: S[i,j]", "y, in a solve with inv[i,j]: x[j]",
    ]


def test_tensors_are_leaves_and_groups_nest() -> None:
    assert ", in " not in labelled_einsums(tc.compile("y[i] = W[i,j] x[j]"))
    text = labelled_einsums(tc.derive("y[i] = tanh(W[i,j] x[j])", "x"))
    assert "# dy_dx, in a parenthesised sum: (...)^2[i]" in text
    assert "# dy_dx, in a parenthesised sum, in a power: y[i]" in text

"""A printed derivative that takes sizes from a statement's value (an axis that index
arithmetic shrank) declares them in one line after that statement, ``input y[b,o,i,j]``,
never one entry per name with the other axes named like tensors."""

from __future__ import annotations

import re

import numpy as np
from fd import numeric_jacobian
from support import close

import tensorcalc as tc

CONV = "y[b,o,i,j] = X[b,c,i+a,j+e] K[o,c,a,e]"


def _arrays():
    rng = np.random.default_rng(7)
    return {"X": rng.normal(size=(2, 2, 5, 5)), "K": rng.normal(size=(3, 2, 2, 2))}


def test_the_convolution_derivative_declares_y_once():
    d = tc.derive(CONV, "X")
    lines = str(d).splitlines()
    declared = [line for line in lines if line.startswith("input y[")]
    assert declared == ["input y[b1,o1,i1,j1]"], str(d)
    assert lines.index(declared[0]) == lines.index(CONV) + 1
    names = {n for line in lines if line.startswith("input ")
             for n in re.findall(r"[\[,]([A-Za-z_]\w*)", line)}
    assert not names & {"X", "K", "y", "dy_dX"}, str(d)


def test_the_printed_derivative_runs_and_agrees_with_central_differences():
    arrays = _arrays()
    printed = tc.compile(str(tc.derive(CONV, "X")))
    close(printed(**arrays), numeric_jacobian(CONV, "X", arrays), rtol=1e-6, atol=1e-8)


def test_its_mixed_second_derivative_agrees_with_central_differences():
    arrays = _arrays()
    first = tc.derive(CONV, "X")
    second = tc.compile(str(tc.derive(first, "K")))
    close(second(**arrays), numeric_jacobian(first, "K", arrays), rtol=1e-6, atol=1e-8)

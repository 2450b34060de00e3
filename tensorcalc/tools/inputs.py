"""The inputs of a command: arrays loaded with ``-i``, sizes given with ``--size``, and the
inputs neither gives drawn at random (uniform in [0.5, 1.5); index arrays as random
positions), within the memory limit.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import numpy as np

from ..errors import InputError
from ..ir import Affine, Gather, Subscript, statement_refs, sub_names, subscript_text
from ..limits import check_size
from ..program import Program
from .files import load_npy, load_npz


def given_sizes(specs: list[str], program: Program) -> dict[str, int]:
    """The --size pairs: each an index of the program, once, with a whole number."""
    indices = {i for st in program.plan.statements for i in st.every_index}
    sizes: dict[str, int] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            name, eq, value = (s.strip() for s in part.partition("="))
            if not eq or not re.fullmatch(r"[0-9]+", value) or not name:
                raise InputError(f"--size expects index=N pairs like i=3,k=4 (N a whole "
                                 f"number, 0-9), got {part!r}")
            if name not in indices:
                raise InputError(f"--size {part.strip()}: {name} is not an index of the "
                                 f"program; its indices are {', '.join(sorted(indices))}")
            if sizes.get(name, int(value)) != int(value):
                raise InputError(f"--size gives {name} twice: {sizes[name]} and {value}")
            sizes[name] = int(value)
    return sizes


def inputs(program: Program, specs: list[str], size_specs: list[str], seed: int,
           given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The arrays of ``-i`` (each ``NAME=FILE.npy`` or an archive ``FILE.npz``) and those
    ``given`` already loaded (the playground's uploads), the others drawn at random for
    the sizes they and ``--size`` give."""
    notes: list[str] = []
    arrays = _loaded(program, specs, notes)
    for name, value in (given or {}).items():
        if name not in program.inputs:
            raise InputError(f"unknown input {name}; the program's inputs are "
                             f"{', '.join(program.inputs) or 'none'}")
        if name in arrays:
            raise InputError(f"input {name} is given twice")
        arrays[name] = value
    sizes = _sizes(program, arrays, given_sizes(size_specs, program))
    rng = np.random.default_rng(seed)
    _draw_numbers(program, arrays, sizes, rng)
    _draw_positions(program, arrays, sizes, rng)
    for note in notes:  # once every input is in hand, so that a failure stays one line
        print(note, file=sys.stderr)
    return arrays


def _loaded(program: Program, specs: list[str], notes: list[str]) -> dict[str, Any]:
    wanted = set(program.inputs)
    arrays: dict[str, Any] = {}
    given_by: dict[str, str] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if eq:
            name = name.strip()
            if name not in wanted:
                raise InputError(f"unknown input {name} (-i {spec}); the program's inputs are "
                                 f"{', '.join(program.inputs) or 'none'}")
            loaded = {name: load_npy(path, name)}
        else:
            ignored: list[str] = []
            loaded = load_npz(spec, wanted, ignored)
            if ignored:
                notes.append(f"tensorcalc: note: {spec}: ignored {', '.join(ignored)} (not "
                             "inputs of the program)")
        for name in loaded:
            if name in given_by:
                raise InputError(f"input {name} is given twice (-i {given_by[name]} and "
                                 f"-i {spec})")
            given_by[name] = spec
        arrays.update(loaded)
    return arrays


def _sizes(program: Program, arrays: dict[str, Any], given: dict[str, int]) -> dict[str, int]:
    """Every index size the arrays and ``--size`` give (``--size`` wins where arithmetic
    lets them differ)."""
    sizes = _known_sizes(program, arrays)
    free_to_differ = arithmetic_sizes(program, given)  # zeros past the ends
    for index, n in given.items():
        if sizes.get(index, n) != n and index not in free_to_differ:
            raise InputError(f"--size {index}={n} contradicts the arrays given, which give "
                             f"{index} the size {sizes[index]}")
    sizes.update(given)
    for st in program.plan.statements:  # a matrix function's two indices have one size
        for i, j, _fn in st.square:
            if i in sizes or j in sizes:
                sizes.setdefault(i, sizes.get(j, 0))
                sizes.setdefault(j, sizes[i])
    return sizes


def _draw_numbers(program: Program, arrays: dict[str, Any], sizes: dict[str, int],
                  rng: np.random.Generator) -> None:
    drawn = 0  # elements drawn so far: the inputs drawn together stay within the limit
    for name in program.inputs:
        if name in arrays or name in program.index_arrays:
            continue
        axes = _indices_of(program, name)
        missing = [i for a in axes for i in sub_names(a) if i not in sizes]
        if missing:
            written = ",".join(subscript_text(a) for a in axes)
            raise InputError(
                f"input {name}[{written}] was not given; give it with -i {name}=FILE.npy "
                f"or give the size of {', '.join(dict.fromkeys(missing))} with --size"
            )
        if any(isinstance(a, Gather) for a in axes):
            written = ",".join(subscript_text(a) for a in axes)
            raise InputError(f"input {name}[{written}] is read through an index array: give it "
                             f"with -i {name}=FILE.npy")
        # An axis read through arithmetic (x[i+k]) is made just long enough for the sizes.
        shape = tuple(sizes[a] if isinstance(a, str) else _reach(a, sizes) + 1 for a in axes)
        check_size(f"random input {name}", shape, np.dtype(float).itemsize, compact_hint=False)
        drawn += math.prod(shape)
        check_size("the random inputs together", (drawn,), np.dtype(float).itemsize,
                   compact_hint=False)
        arrays[name] = rng.uniform(0.5, 1.5, size=shape)


def _draw_positions(program: Program, arrays: dict[str, Any], sizes: dict[str, int],
                    rng: np.random.Generator) -> None:
    """Random positions along the axis each index array indexes."""
    for name in program.index_arrays:
        if name in arrays:
            continue
        tensor, axis, indices = _indexing(program, name)
        missing = [i for i in indices if i not in sizes]
        if missing or tensor not in arrays:
            also = f" or give the size of {', '.join(missing)} with --size" if missing else ""
            raise InputError(f"index array {name} was not given; give it with -i {name}=FILE.npy "
                             f"(integers){also}")
        arrays[name] = rng.integers(0, arrays[tensor].shape[axis],
                                    size=tuple(sizes[i] for i in indices))


def _known_sizes(program: Program, arrays: dict[str, Any]) -> dict[str, int]:
    """Index sizes that the loaded arrays give, by the indices they are written with
    (the first array to give an index its size wins)."""
    sizes: dict[str, int] = {}
    for st in program.statements:
        for r in statement_refs(st):
            value = arrays.get(r.name)
            shape = getattr(value, "shape", None)
            if shape is None or len(shape) != r.rank:
                continue
            for axis, index in r.plain_axes():
                sizes.setdefault(index, int(shape[axis]))
            for a in r.axes:
                value = arrays.get(a.name) if isinstance(a, Gather) else None
                for index, n in zip(a.indices if isinstance(a, Gather) else (),
                                    getattr(value, "shape", ())):
                    sizes.setdefault(index, int(n))
    return sizes


def _indices_of(program: Program, name: str) -> tuple[Subscript, ...]:
    """How a tensor is subscripted: a plain occurrence where there is one."""
    found: tuple[Subscript, ...] | None = None
    for st in program.statements:
        for r in statement_refs(st):
            if r.name == name and (found is None or r.subs is None):
                found = r.axes
    return found or ()


def _reach(sub: Affine | Gather, sizes: dict[str, int]) -> int:
    """The last position an affine subscript reads."""
    assert isinstance(sub, Affine)
    return max(0, sub.offset + sum(max(c * (sizes[n] - 1), 0) for n, c in sub.parts))


def _indexing(program: Program, name: str) -> tuple[str, int, tuple[str, ...]]:
    """Where the index array ``name`` is used: the tensor, the axis, its own indices."""
    for st in program.statements:
        for r in statement_refs(st):
            for axis, a in enumerate(r.axes):
                if isinstance(a, Gather) and a.name == name:
                    return r.name, axis, a.indices
    raise InputError(f"{name} is not used as an index array")  # pragma: no cover


def arithmetic_sizes(program: Program, sizes: dict[str, int]) -> dict[str, int]:
    """The --size values of indices that arithmetic subscripts use: given sizes
    (docs/index-arithmetic.md), for which reads past an array's end are zero."""
    used = {n for st in program.statements for r in statement_refs(st) if r.subs
            for a in r.subs if not isinstance(a, str) for n in sub_names(a)}
    return {i: n for i, n in sizes.items() if i in used}

"""What the playground's page asks for, answered through the public API: a request (a
dict decoded from JSON) in, a dict to send back as JSON out.

``parse`` checks a program as it is typed, ``derive`` gives a derivative as LaTeX, text,
the ``explain`` notes, a diagram (SVG) and Python, and ``check`` compares a derivative
with central differences at random inputs or uploaded ``.npy`` arrays. Nothing from a
request is run as Python: the program is index notation, parsed by the grammar. A bad
request is an answer ``{"error": {...}}`` with the API's message and, where the message
names one, its line and column, never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ...api import compile
from ...derivatives import derive as derive_program
from ...derivatives import grad, hessian, jvp, vjp
from ...errors import (
    InputError,
    MemoryLimitError,
    ParseError,
    TensorCalcError,
    TensorCalcWarning,
)
from ...program import Program
from ..check import compare
from ..explain import explain
from ..files import load_npy_bytes
from ..inputs import arithmetic_sizes, given_sizes, inputs

#: The longest program text a request may carry, in characters.
MAX_PROGRAM = 20_000
#: The most arrays a check may upload.
MAX_UPLOADS = 16
#: The playground's memory limit, in bytes (a lower TENSORCALC_MEMORY_LIMIT wins): inputs,
#: uploaded or drawn, and every value computed from them.
MEMORY_LIMIT = 512 * 2**20

#: The kinds of derivative the page offers, each a function of the public API.
KINDS: dict[str, Callable[[Program, str], Program]] = {
    "derivative": derive_program,
    "jacobian": derive_program,
    "gradient": grad,
    "hessian": hessian,
    "vjp": vjp,
    "jvp": jvp,
}

_WHERE = re.compile(r"line (\d+), column (\d+)")


class RequestError(TensorCalcError):
    """A request the page would never send: a missing field, a value of the wrong type."""


def error_answer(err: BaseException) -> dict[str, Any]:
    """``err`` as the page shows it: the message, the kind, and the line and column
    where the message names them."""
    message = str(err)
    if isinstance(err, MemoryLimitError):
        message += (f" (the playground's limit is {MEMORY_LIMIT // 2**20} MiB, or "
                    "TENSORCALC_MEMORY_LIMIT where that is lower: try smaller sizes)")
    elif isinstance(err, MemoryError):
        message = "out of memory"
    elif isinstance(err, RecursionError):
        message = "the program is nested too deeply"
    line = column = 0
    if isinstance(err, ParseError):
        line, column = err.line, err.column
    elif (found := _WHERE.search(message)) is not None:
        line, column = int(found.group(1)), int(found.group(2))
    return {"error": {"message": message, "kind": type(err).__name__,
                      "line": line, "column": column}}


def _text(request: dict[str, Any], key: str, default: str | None = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str):
        raise RequestError(f"the request's {key!r} must be text")
    if len(value) > MAX_PROGRAM:
        raise RequestError(f"the {key} is {len(value):,} characters long; the playground "
                           f"takes at most {MAX_PROGRAM:,}")
    return value


def _compiled(request: dict[str, Any]) -> tuple[Program, list[str]]:
    """The request's program, compiled, and the warnings compiling it gave."""
    source = _text(request, "program")
    of = _text(request, "of", "").strip() or None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TensorCalcWarning)
        program = compile(source, of)
    notes = [str(w.message) for w in caught if issubclass(w.category, TensorCalcWarning)]
    return program, list(dict.fromkeys(notes))


def parse(request: dict[str, Any]) -> dict[str, Any]:
    """The inputs of the program (with their number of axes) and its warnings."""
    program, notes = _compiled(request)
    return {"inputs": dict(program.accepts), "result": program.result, "warnings": notes}


def _kind(request: dict[str, Any]) -> str:
    kind = _text(request, "kind", "derivative")
    if kind not in KINDS:
        raise RequestError(f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return kind


def derive(request: dict[str, Any]) -> dict[str, Any]:
    """The derivative the request asks for, in every form the page shows."""
    program, notes = _compiled(request)
    wrt = _text(request, "wrt")
    d = KINDS[_kind(request)](program, wrt)
    lines = [line.replace(" = ", " &= ", 1) for line in d.latex().split(" \\\\\n")]
    return {
        "result": d.result,
        "text": str(d),
        "latex": "\\begin{aligned}" + " \\\\\n".join(lines) + "\\end{aligned}",
        "explain": explain(program),
        "diagram": d.diagram(),
        "python": d.to_python(),
        "warnings": notes,
    }


def _uploads(request: dict[str, Any]) -> dict[str, Any]:
    """The uploaded arrays: ``{"arrays": {name: base64 of an .npy file}}``."""
    given = request.get("arrays", {})
    if not isinstance(given, dict) or len(given) > MAX_UPLOADS:
        raise RequestError(f"'arrays' must map at most {MAX_UPLOADS} input names to .npy files")
    arrays = {}
    for name, encoded in given.items():
        if not isinstance(encoded, str):
            raise RequestError(f"the upload for {name} must be base64 text")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"the upload for {name} is not base64 text") from None
        arrays[str(name)] = load_npy_bytes(data, str(name))
    return arrays


def check(request: dict[str, Any]) -> dict[str, Any]:
    """The derivative against central differences; a Hessian is checked as the derivative
    of the gradient, a vjp or jvp as the Jacobian it multiplies by."""
    program, _ = _compiled(request)
    wrt = _text(request, "wrt")
    kind = _kind(request)
    sizes = _text(request, "sizes", "")
    seed = request.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RequestError("the seed must be a whole number >= 0")
    arrays = inputs(program, [], [sizes], seed, _uploads(request))
    program = program.with_sizes(arithmetic_sizes(program, given_sizes([sizes], program)))
    target = grad(program, wrt) if kind == "hessian" else program
    comparison = compare(target, wrt, None, arrays, 1e-5, seed)
    return {
        "verdict": comparison.verdict.split(":")[0],
        "largest_error": comparison.error,
        "summary": comparison.summary,
        "shapes": {name: list(np.shape(value)) for name, value in arrays.items()},
    }


ACTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "parse": parse,
    "derive": derive,
    "check": check,
}


def answer(action: str, request: Any) -> dict[str, Any]:
    """The answer to one request: an action's, or ``{"error": ...}`` for a bad one."""
    try:
        if not isinstance(request, dict):
            raise RequestError("a request is a JSON object")
        if action not in ACTIONS:
            raise RequestError(f"unknown action {action!r}")
        return ACTIONS[action](request)
    except (TensorCalcError, OSError, ValueError, MemoryError, RecursionError) as err:
        return error_answer(err)

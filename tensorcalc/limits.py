"""Limits: the memory limit, and the largest programs tensorcalc takes on.

The memory limit: dense values larger than it are refused before they are allocated.
The default is 4 GiB, or ``TENSORCALC_MEMORY_LIMIT`` (bytes) when it is set to a
positive whole number; a value that is not one is ignored with a warning rather
than breaking ``import tensorcalc``.

The program-size limits (``MAX_*``, at the end) are fixed: a program past one is refused
with a ``ProgramError`` that names the limit, before the work that would take too long.

>>> old = set_memory_limit(1000)
>>> check_size("y", (20, 10), 8, compact_hint=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tensorcalc.errors.MemoryLimitError: y would take 1.56 KiB dense (shape (20, 10)), ...
>>> set_memory_limit(old) == 1000
True
"""

from __future__ import annotations

import math
import numbers
import os
import warnings

from .errors import InputError, MemoryLimitError, ProgramError

DEFAULT = 4 * 2**30


def _parse_limit(value: object) -> int:
    """A limit in bytes from what a caller gave, or ValueError saying what a limit is."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, numbers.Real, str)):
        raise ValueError(f"a memory limit is a whole number of bytes, not {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"a memory limit is a whole number of bytes, not {value!r}") from None
    if isinstance(value, numbers.Integral):
        limit = int(value)
    else:
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"a memory limit is a whole number of bytes, not {value!r}")
        limit = int(number)
    if limit <= 0:
        raise ValueError(f"a memory limit is a positive number of bytes, not {limit}")
    return limit


def _from_environment() -> int:
    text = os.environ.get("TENSORCALC_MEMORY_LIMIT")
    if text is None:
        return DEFAULT
    try:
        return _parse_limit(text)
    except ValueError as err:
        warnings.warn(f"TENSORCALC_MEMORY_LIMIT ignored: {err}; using 4 GiB", stacklevel=2)
        return DEFAULT


_limit = {"bytes": _from_environment()}


def set_memory_limit(nbytes: int) -> int:
    """Refuse, before allocating, any dense value larger than ``nbytes``; returns the old
    limit. The default is 4 GiB, or the environment variable TENSORCALC_MEMORY_LIMIT.

    A limit that is not a positive whole number of bytes is an ``InputError``.
    """
    try:
        limit = _parse_limit(nbytes)
    except ValueError as err:
        raise InputError(str(err)) from None
    old = _limit["bytes"]
    _limit["bytes"] = limit
    return old


def memory_limit() -> int:
    """The limit now in force, in bytes."""
    return _limit["bytes"]


def _amount(nbytes: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes} B"


def check_size(name: str, shape: tuple[int, ...], itemsize: int, compact_hint: bool) -> None:
    """Raise ``MemoryLimitError`` if a dense array of ``shape`` would exceed the limit."""
    nbytes = itemsize
    for n in shape:
        nbytes *= int(n)
    if nbytes > _limit["bytes"]:
        hint = ("evaluate it with compact=True, or contract it with vjp or jvp instead"
                if compact_hint else "use smaller inputs")
        raise MemoryLimitError(
            f"{name} would take {_amount(nbytes)} dense (shape {tuple(shape)}), more than the "
            f"limit of {_amount(_limit['bytes'])}; {hint}, or raise the limit with "
            "tensorcalc.set_memory_limit()"
        )


# --- program size ----------------------------------------------------------------------
#
# Chosen so that whatever is accepted parses, derives and runs in a few seconds on this
# project's 2-core machines (measured in tests/end_to_end/test_size_limits.py and
# docs/limitations.md); past one, the program is refused before the expensive work
# starts.

MAX_PROGRAM_CHARS = 250_000
"""Characters of program text: longer text is refused before it is parsed."""

MAX_TERMS = 10_000
"""Terms in one statement: operands of ``+`` and ``-``, counted at every depth (inside
function calls, powers and parentheses too). Checked on the text before it is lowered;
a derivative's statements are bounded by ``MAX_DERIVATIVE_FACTORS`` instead."""

MAX_FACTORS = 5_000
"""Factors in one product: tensors, deltas, function calls, powers and parenthesised
sums multiplied together (numbers are folded into the coefficient and do not count)."""

MAX_NESTING = 40
"""Function calls, powers, ``sum[]``, divisors and parenthesised sums used as factors,
inside each other (parentheses that only group, as in ``((x[i]))`` or ``(a + b) + c``,
do not nest). Every pass walks these levels recursively, about 12 Python frames a level:
at 40 the deepest takes about 520 of Python's 1000, leaving the rest to the caller. A
derivative can print a level or two deeper than its program."""

MAX_DERIVATIVE_FACTORS = 30_000
"""Factors in all the terms the product rule makes for the derivative of one statement,
before they are simplified (a product of n different factors that all depend on the
variable makes n terms of n factors; a Hessian of a product of n matrices, n cubed)."""


def size_error(what: str, count: int, unit: str, limit: int, advice: str) -> ProgramError:
    """The ``ProgramError`` of a program-size limit, in one wording for all of them:
    what is too large, by how much, the limit, and what to do instead."""
    return ProgramError(f"{what} has {count:,} {unit}; tensorcalc handles up to {limit:,}; "
                        f"{advice}")

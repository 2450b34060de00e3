"""The grammar, filled in from the registry, and the LALR parser built from it (cached).

``grammar/tensorcalc.lark`` (shipped as ``tensorcalc.grammar``) leaves the words of the
functions of whole axes as ``__REDUCTIONS__``; they come from ``REDUCERS`` here, so that
an entry registered after a parser was built gives a parser that knows it: the parser is
kept per grammar text.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Lark

from ..ops.reductions import REDUCTIONS
from .transform import ToSurface, checked_number

#: Where the grammar file takes the words of ``REDUCERS``.
PLACEHOLDER = "__REDUCTIONS__"


def grammar_file() -> str:
    """The grammar as shipped, with its placeholder."""
    # In a source checkout, the checkout's own file: an editable install of another
    # checkout would otherwise answer for ``tensorcalc.grammar``.
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "grammar" / "tensorcalc.lark").is_file():
        return (root / "grammar" / "tensorcalc.lark").read_text("utf-8")
    return resources.files("tensorcalc.grammar").joinpath("tensorcalc.lark").read_text("utf-8")


@lru_cache(maxsize=1)
def _shipped() -> str:
    return grammar_file()


@lru_cache(maxsize=8)
def _filled(words: tuple[str, ...]) -> str:
    for w in words:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", w):
            raise ValueError(f"a function of whole axes is named like an index: {w!r}")
    # longest first, so that no word's prefix is taken for it
    ordered = sorted(words, key=lambda w: (-len(w), w))
    return _shipped().replace(PLACEHOLDER, "|".join(ordered))


def grammar() -> str:
    """The grammar text with the words of every registered function of whole axes."""
    return _filled(tuple(REDUCTIONS))


# The basic lexer (each terminal by its priority, whatever the parser expects there) lexes
# twice as fast as the contextual one, and no terminal of the grammar needs the context:
# reserved words are reserved everywhere, indices included.
_LEXER = "basic"


def parser() -> Lark:
    """The parser of the grammar as the registry now fills it."""
    return _parser_for(grammar())


@lru_cache(maxsize=4)
def _parser_for(text: str) -> Lark:
    # Building the LALR tables takes about 150 ms; Lark can keep them in a cache file, which
    # it loads with pickle. A pickle runs code when loaded, so the cache lives only where no
    # one else can write: a private per-user directory, checked before every use. The file
    # is named by the final grammar text.
    cache = private_cache_file(text)
    # A malformed number is refused as it is lexed, whatever token follows it (1.5.x[i])
    return Lark(text, parser="lalr", lexer=_LEXER, transformer=ToSurface(),
                maybe_placeholders=True, cache=cache if cache is not None else False,
                lexer_callbacks={"NUMBER": checked_number})


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tensorcalc"


def _private(st: os.stat_result, kind: int) -> bool:
    """Owned by this user, of the expected kind (not a link), writable by no one else."""
    return stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid() \
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def private_cache_file(grammar: str) -> str | None:
    """The parser cache's path in a private per-user directory, or None: no cache.

    The directory is made with mode 0700; it, and the file if it exists, must belong to
    this user and be writable by no one else, or nothing is cached or loaded.
    """
    if not hasattr(os, "getuid"):  # no ownership to check (Windows): build the tables
        return None
    folder = _cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.lstat(folder), stat.S_IFDIR) or os.lstat(folder).st_mode & 0o077:
            return None
        key = hashlib.sha256(f"{grammar}{_LEXER}{lark.__version__}{sys.version_info[:2]}".encode())
        path = folder / f"parser-{key.hexdigest()[:16]}.lark"
        try:
            if not _private(os.lstat(path), stat.S_IFREG):
                return None
        except FileNotFoundError:
            pass
        return str(path)
    except OSError:
        return None

"""Arrays from and to files, safely: ``.npy`` and ``.npz`` only, never a pickle.

Only regular files are opened (nothing can block on a FIFO or a device); a header is
read and checked against the memory limit before any data; every failure to read is
one ``InputError`` that names the file; a result is written to exactly the path given.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import zipfile
from collections.abc import Callable, Collection
from typing import IO, Any, BinaryIO

import numpy as np

from ..errors import InputError, TensorCalcError
from ..limits import check_size


def write_npy(path: str, value: np.ndarray[Any, Any]) -> None:
    """Save ``value`` in .npy format to exactly ``path`` (no ``.npy`` is added)."""
    _write(path, lambda f: np.lib.format.write_array(f, value, allow_pickle=False))


def write_text(path: str, text: str) -> None:
    """Save ``text`` and a newline (what ``print`` would show) in UTF-8 to exactly ``path``."""
    data = (text + "\n").encode("utf-8")
    _write(path, lambda f: f.write(data))


def _write(path: str, fill: Callable[[BinaryIO], object]) -> None:
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a directory; -o takes a file name")
    existed = os.path.exists(path)
    try:
        with open(path, "wb") as f:
            fill(f)
    except OSError as err:
        # a partial file that this run created is worse than none
        if not existed and os.path.isfile(path):
            with contextlib.suppress(OSError):
                os.remove(path)
        raise InputError(f"cannot write {path}: {reason(err)}") from None


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str, what: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file; anything else (a FIFO, a device,
    a directory) is refused before it is opened, so nothing can block."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {what} {path}: {reason(err)}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"cannot read {what} {path}: it is {_describe(mode)}; "
                         "only regular files are read")
    nonblock = getattr(os, "O_NONBLOCK", 0)
    try:
        # O_NONBLOCK: should the path have been swapped for a FIFO since the stat, the
        # open does not wait for a writer; the fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {reason(err)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"cannot read {what} {path}: it is {_describe(mode)}; "
                             "only regular files are read")
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def reason(err: BaseException) -> str:
    """A short, one-line reason for a failure to read or write a file."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if isinstance(err, EOFError):
        return "the file is empty or ends too early"
    text = " ".join(str(err).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """The shape and dtype from the header of the .npy data at ``f``'s position."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        # version 3.0 differs from 2.0 only in its text encoding (UTF-8), which matters for
        # field names only; the shape and the size of an item read the same
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    return tuple(int(n) for n in shape), dtype


def _checked_header(f: IO[bytes], name: str, where: str, available: int) -> None:
    """Refuse, from the header alone, an array over the memory limit or one whose data
    is not all there (``available``: bytes of the member or file in all)."""
    try:
        shape, dtype = _header(f)
        start = f.tell()
    except Exception as err:  # a broken header fails in many ways; all are bad input
        raise InputError(f"cannot load {where}: not a valid .npy array ({reason(err)})") \
            from None
    check_size(f"{name} (from {where})", shape, dtype.itemsize, compact_hint=False)
    need = dtype.itemsize * math.prod(shape)
    if not dtype.hasobject and available - start < need:
        raise InputError(f"cannot load {where}: the file is truncated (the header promises "
                         f"{need} bytes of data, there are {max(available - start, 0)})")


def _read_array(f: IO[bytes], where: str) -> Any:
    try:
        return np.lib.format.read_array(f, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as err:  # zipfile, zlib, tokenize, EOF, ValueError...: all bad input
        raise InputError(f"cannot load {where}: {reason(err)}") from None


def _kind(f: IO[bytes], path: str) -> str:
    """'npy' or 'npz' from the first bytes of the file; anything else is refused."""
    try:
        magic = f.read(6)
        f.seek(0)
    except OSError as err:
        raise InputError(f"cannot read {path}: {reason(err)}") from None
    if magic == _NPY_MAGIC:
        return "npy"
    if magic[:4] in _ZIP_MAGICS:
        return "npz"
    if not magic:
        raise InputError(f"cannot load {path}: the file is empty")
    raise InputError(f"cannot load {path}: not an .npy or .npz file")


def load_npy(path: str, name: str) -> Any:
    """The array of the .npy file ``path``, given as input ``name``."""
    with open_regular(path, "input file") as f:
        kind = _kind(f, path)
        if kind == "npz":
            raise InputError(f"{path} is an .npz archive, not an .npy file; give it as "
                             f"-i {path} (its keys are the input names)")
        _checked_header(f, name, path, os.fstat(f.fileno()).st_size)
        f.seek(0)
        return _read_array(f, path)


def load_npy_bytes(data: bytes, name: str) -> Any:
    """The array of the .npy data ``data`` (an upload), given as input ``name``: checked
    against the memory limit from its header, read with ``allow_pickle=False``."""
    where = f"the upload for {name}"
    if not data.startswith(_NPY_MAGIC):
        raise InputError(f"cannot load {where}: not an .npy file")
    f = io.BytesIO(data)
    _checked_header(f, name, where, len(data))
    f.seek(0)
    return _read_array(f, where)


def load_npz(path: str, wanted: Collection[str],
             ignored: list[str] | None = None) -> dict[str, Any]:
    """The arrays of the .npz archive ``path`` whose keys are in ``wanted``; other keys
    are ignored without being read (and appended to ``ignored`` when it is given)."""
    with open_regular(path, "input file") as f:
        if _kind(f, path) == "npy":
            raise InputError(f"{path} is an .npy file, not an .npz archive; give it as "
                             f"-i NAME={path}")
        try:
            archive = zipfile.ZipFile(f)
        except Exception as err:
            raise InputError(f"cannot load {path}: not a valid .npz archive "
                             f"({reason(err)})") from None
        arrays: dict[str, Any] = {}
        with archive:
            for info in archive.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key not in wanted:
                    if ignored is not None:
                        ignored.append(key)
                    continue
                where = f"{path} (key {key})"
                try:
                    with archive.open(info) as member:
                        _checked_header(member, key, where, info.file_size)
                    with archive.open(info) as member:
                        arrays[key] = _read_array(member, where)
                except TensorCalcError:
                    raise
                except MemoryError:
                    raise
                except Exception as err:
                    raise InputError(f"cannot load {where}: {reason(err)}") from None
        return arrays

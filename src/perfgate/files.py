"""Reading files that someone else made (records, artifacts, profiles) without being led astray.

A path can name a FIFO (a read that never ends), a device (/dev/zero: a read that never stops
growing; its st_size is 0, so a size check before reading proves nothing) or a link out of the
folder it is meant to stay in. `read_capped` opens without blocking, looks at what it opened, and
reads at most `limit` bytes within a deadline; `inside` keeps a relative name inside its folder.
"""

from __future__ import annotations

import errno
import json
import os
import select
import stat
import time
from pathlib import Path, PurePosixPath
from typing import Any

from perfgate.errors import ConfigError, ToolError

# One cap for any single file perfgate reads from a record, an artifact or the command line
# (profiles have their own, lower one). docs/security.md.
MAX_INPUT_FILE_BYTES = 256 * 1024 * 1024
MAX_JSON_DOCUMENT_BYTES = 32 * 1024 * 1024  # record.json, verdict.json: parsed whole, so kept smaller
READ_DEADLINE_S = 60.0
_CHUNK = 1024 * 1024


class FileRefused(Exception):
    """A file perfgate will not read; the message says why ("is a FIFO, not a regular file", ...)."""


def read_capped(path: str | os.PathLike[str], limit: int = MAX_INPUT_FILE_BYTES, *, regular_only: bool = True,
                deadline_s: float | None = None) -> bytes:
    """The whole content of `path`, at most `limit` bytes.

    FileNotFoundError when it does not exist; FileRefused when it is not a regular file (unless
    `regular_only` is False: then pipes and devices are read too, bounded by `limit` and `deadline_s`),
    is larger than `limit`, or cannot be read (the OS error's text). `deadline_s` defaults to READ_DEADLINE_S.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as error:
        raise FileRefused(f"cannot be opened: {error.strerror or error}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode) or (regular_only and not stat.S_ISREG(mode)):
            raise FileRefused(f"is {_kind(mode)}, not a regular file")
        size = os.fstat(fd).st_size
        if stat.S_ISREG(mode) and size > limit:  # refused before reading; growing files are caught below
            raise FileRefused(f"is {size} bytes, more than the {_mib(limit)} limit")
        return _read_all(fd, limit, regular=stat.S_ISREG(mode),
                         deadline_s=READ_DEADLINE_S if deadline_s is None else deadline_s)
    except OSError as error:
        raise FileRefused(f"cannot be read: {error.strerror or error}") from None
    finally:
        os.close(fd)


def _read_all(fd: int, limit: int, *, regular: bool, deadline_s: float) -> bytes:
    deadline = time.monotonic() + deadline_s
    chunks: list[bytes] = []
    size = 0
    while True:
        if not regular:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise FileRefused(f"sent no end of data within {deadline_s:g} s")
        try:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise FileRefused(f"holds more than the {_mib(limit)} limit")
        chunks.append(chunk)


def not_regular(path: Path) -> str | None:
    """Why `path` is no regular file ("is a FIFO, not a regular file"), or None when it is one or is absent."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    return None if stat.S_ISREG(mode) else f"is {_kind(mode)}, not a regular file"


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.4g} MiB"


def inside(folder: Path, relative: object) -> Path:
    """`folder / relative` when `relative` is a plain relative name that stays in `folder` (links resolved).

    FileRefused otherwise: not a string, absolute, with `..`, control characters, or a link out.
    """
    if not isinstance(relative, str) or not relative or len(relative) > 4096:
        raise FileRefused("is not a file name")
    if any(ord(char) < 0x20 or char == "\x7f" for char in relative) or "\\" in relative:
        raise FileRefused("holds control characters or a backslash")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise FileRefused("points outside the record folder (absolute, or with '..')")
    path = folder / pure
    root = folder.resolve()
    if not path.resolve().is_relative_to(root):
        raise FileRefused("points outside the record folder (through a symbolic link)")
    return path


def parse_json(data: bytes) -> Any:
    """JSON from untrusted bytes. ValueError with a plain message for anything else: bad syntax,
    invalid UTF-8, nesting deeper than Python's stack, an integer beyond Python's 4300-digit limit."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise ValueError(f"corrupt JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as error:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"unreadable JSON: {error}") from None


def read_json_file(path: Path, name: str, *, missing: str, hint: str) -> Any:
    """`path`'s JSON, or a ConfigError: `missing` (with `hint`) when there is no file, else `name` cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(missing, hint=hint) from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{name} cannot be read: {error}") from error


def unwritable(folder: Path | str, error: OSError) -> ToolError:
    """The exit-3 error for an output folder perfgate cannot write: which folder, the OS's reason and errno."""
    return ToolError(f"cannot write the output folder {folder}: {os_reason(error, with_file=False)}",
                     hint="make it writable and free some space, or choose another with --out (config `output`)")


def os_reason(error: OSError, *, with_file: bool = True) -> str:
    """'No space left on device (ENOSPC)', after the file when the error names one (and `with_file`)."""
    code = errno.errorcode.get(error.errno, "") if error.errno else ""
    text = f"{error.strerror or error}{f' ({code})' if code else ''}"
    return f"{error.filename}: {text}" if error.filename and with_file else text

"""Read ghz's JSON report in one streaming pass: the summary, and the OK calls' latencies as an array.

A report of 1,000,000 calls is ~90 MB, almost all of it `details` (one object per call). `json.load`
builds a dict per call (~450 MB, ~1.3 s CPU); this reads the summary keys ghz writes before `details`
with the standard decoder, then scans `details` in 4 MiB chunks with one regular expression for OK calls,
`{"timestamp":"…","latency":N,"error":"","status":"OK"}`: peak memory is a chunk plus the array.

Why the expression cannot be fooled: inside a JSON string every `"` is escaped as `\\"`, so the unescaped
`"latency":N,"error":"","status":"OK"}` can only be a real detail object's keys, never text inside an
error message; and `details` is the only array ghz writes whose objects have those keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from perfgate.errors import ToolError

if TYPE_CHECKING:
    import numpy as np

CHUNK_BYTES = 4 << 20
MAX_SUMMARY_BYTES = 64 << 20  # everything before `details`: options (with the request data) and the summary
MAX_DETAILS = 1_000_000  # ghz keeps at most this many details (runner/requester.go maxResult)
SUMMARY_KEYS = ("count", "total", "rps", "statusCodeDistribution")
OK_LATENCY = re.compile(rb'"latency":(\d{1,19}),"error":"","status":"OK"\}')
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class GhzReport:
    summary: dict[str, Any]  # every top-level key but `details`
    ok_latencies_ns: np.ndarray  # int64, one per OK call in `details`, in the report's order


class _ShortBuffer(Exception):
    """The buffer ends inside the value being read: read more and try again."""


def read_report(path: Path, *, chunk_bytes: int = CHUNK_BYTES) -> GhzReport:
    """Stream-parse ghz's report at `path`. ToolError (saying what is wrong) if it is not one."""
    try:
        with open(path, "rb") as stream:
            summary, rest = _summary(stream, path, chunk_bytes)
            if rest is not None and not all(key in summary for key in SUMMARY_KEYS):
                return _whole_file(path)
            latencies = _empty() if rest is None else _ok_latencies(rest, stream, path, chunk_bytes)
    except FileNotFoundError as error:
        raise ToolError(f"ghz wrote no report at {path}") from error
    except OSError as error:
        raise ToolError(f"ghz report {path} cannot be read: {error}") from error
    if not _count_matches(summary, latencies):
        return _whole_file(path)  # not ghz's compact form (e.g. -O pretty): json.load decides
    return GhzReport(summary, latencies)


def _summary(stream: IO[bytes], path: Path, chunk_bytes: int) -> tuple[dict[str, Any], bytes | None]:
    """The top-level keys before `details`, and the bytes after `"details":` (None if there is none)."""
    buffer = b""
    while True:
        chunk = stream.read(chunk_bytes)
        buffer += chunk
        try:
            return _Walk(buffer, at_eof=not chunk, path=path).summary()
        except _ShortBuffer:
            if not chunk:
                raise ToolError(f"ghz report {path} is not valid JSON: it ends early") from None
            if len(buffer) > MAX_SUMMARY_BYTES:
                raise ToolError(f"ghz report {path}: no valid JSON summary within its first "
                                f"{MAX_SUMMARY_BYTES >> 20} MiB; not a ghz report") from None


class _Walk:
    """The top-level object's keys up to `details`, over a buffer that may end mid-way (then _ShortBuffer)."""

    def __init__(self, buffer: bytes, *, at_eof: bool, path: Path) -> None:
        # latin-1 maps bytes to characters one to one, so positions in the text are byte offsets; each
        # value's bytes are decoded again as UTF-8.
        self.buffer, self.text, self.at_eof, self.path = buffer, buffer.decode("latin-1"), at_eof, path

    def summary(self) -> tuple[dict[str, Any], bytes | None]:
        position = self._skip(0)
        self._expect(position, "{")
        position, summary = position + 1, {}
        while True:
            position = self._skip(position)
            if self._at(position) == "}":
                return summary, None
            key, position = self._value(position)
            position = self._skip(position)
            self._expect(position, ":")
            position = self._skip(position + 1)
            if key == "details":
                return summary, self.buffer[position:]
            start = position
            _, position = self._value(position)
            summary[str(key)] = self._utf8(self.buffer[start:position])
            position = self._skip(position)
            if self._at(position) == ",":
                position += 1
            else:
                self._expect(position, "}")

    def _skip(self, position: int) -> int:
        return _WHITESPACE.match(self.text, position).end()  # type: ignore[union-attr]

    def _at(self, position: int) -> str:
        if position >= len(self.text):
            raise _ShortBuffer
        return self.text[position]

    def _expect(self, position: int, char: str) -> None:
        if self._at(position) != char:
            if not self.at_eof:
                raise _ShortBuffer  # e.g. a number cut at the buffer's end ("9." of 9.5) decoded short
            raise ToolError(f"ghz report {self.path} is not valid JSON: expected {char!r} at byte {position}")

    def _value(self, position: int) -> tuple[Any, int]:
        try:
            value, end = _DECODER.raw_decode(self.text, position)
        except json.JSONDecodeError as error:
            if not self.at_eof:
                raise _ShortBuffer from None  # it may be whole once more is read
            raise ToolError(f"ghz report {self.path} is not valid JSON at byte {error.pos}: {error.msg}") from None
        if end >= len(self.text) and not self.at_eof:
            raise _ShortBuffer  # a number cut by the chunk's end still decodes
        return value, end

    def _utf8(self, raw: bytes) -> Any:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ToolError(f"ghz report {self.path} is not valid UTF-8 JSON: {error}") from None


def _ok_latencies(rest: bytes, stream: IO[bytes], path: Path, chunk_bytes: int) -> np.ndarray:
    import numpy as np

    head = rest.lstrip()
    if head.startswith(b"null"):
        return _empty()
    if not head.startswith(b"[") and head:
        raise ToolError(f"ghz report {path}: details is neither an array nor null")
    parts = [np.fromiter(map(int, found), dtype=np.int64, count=len(found))
             for found in _scan(rest, stream, chunk_bytes)]
    return np.concatenate(parts) if parts else _empty()


def _scan(first: bytes, stream: IO[bytes], chunk_bytes: int) -> Iterator[list[bytes]]:
    """OK latencies chunk by chunk. Each match ends in the object's only `}`, so cutting after the last `}`
    of a chunk never splits a match: one that runs past the cut lies wholly in what is carried over."""
    carried = first
    while True:
        chunk = stream.read(chunk_bytes)
        buffer = carried + chunk if carried else chunk
        cut = len(buffer) if not chunk else buffer.rfind(b"}") + 1
        found = OK_LATENCY.findall(buffer, 0, cut)
        if found:
            yield found
        if not chunk:
            return
        carried = buffer[cut:]


def _count_matches(summary: dict[str, Any], latencies: np.ndarray) -> bool:
    """Every OK call is in `details` unless ghz capped it at MAX_DETAILS calls."""
    statuses = summary.get("statusCodeDistribution") or {}
    ok = statuses.get("OK", 0) if isinstance(statuses, dict) else 0
    ok = ok if isinstance(ok, int) and not isinstance(ok, bool) else 0
    count = summary.get("count", 0)
    capped = isinstance(count, int) and count > MAX_DETAILS
    return len(latencies) <= ok and (capped or len(latencies) == ok)


def _check_count(summary: dict[str, Any], latencies: np.ndarray, path: Path) -> None:
    if not _count_matches(summary, latencies):
        statuses = summary.get("statusCodeDistribution") or {}
        ok = statuses.get("OK", 0) if isinstance(statuses, dict) else 0
        raise ToolError(f"ghz report {path}: its details hold {len(latencies)} OK calls but its summary "
                        f"counts {ok}; the report is inconsistent (truncated or edited?)")


def _whole_file(path: Path) -> GhzReport:
    """The slow path, for a report not in ghz v0.121's compact form and order (summary first, then details)."""
    import numpy as np

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ToolError(f"ghz report {path} is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ToolError(f"ghz report {path} is not a JSON object")
    details = raw.pop("details", None) or []
    latencies = [d.get("latency") for d in details if isinstance(d, dict) and d.get("status") == "OK"
                 and not d.get("error")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in latencies):
        raise ToolError(f"ghz report {path}: a detail's latency is not a non-negative integer")
    array = np.array(latencies, dtype=np.int64)
    _check_count(raw, array, path)
    return GhzReport(raw, array)


def _empty() -> np.ndarray:
    import numpy as np

    return np.zeros(0, dtype=np.int64)

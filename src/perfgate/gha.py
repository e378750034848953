"""GitHub Actions workflow commands: step outputs, the job summary, annotations, masking.

Pure string builders plus two small file writers; the CLI decides what to print. Formats follow
the runner's file commands and the toolkit's escaping rules (actions/toolkit core: command.ts,
file-command.ts).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

SUMMARY_LIMIT_BYTES = 1024 * 1024  # GitHub rejects a step summary above 1 MiB
SUMMARY_TRUNCATION_NOTE = (
    "\n\n> [!WARNING]\n> perfgate truncated this summary: GitHub shows at most 1 MiB per step. "
    "The full report is in the run's artifact.\n"
)
ANNOTATION_LEVELS = ("error", "warning", "notice", "debug")
_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    """True when running as a step of a GitHub Actions job."""
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def format_outputs(mapping: Mapping[str, str]) -> str:
    """The text to append to $GITHUB_OUTPUT for these name/value pairs.

    Single-line values use `name=value`; multiline ones `name<<ghadelimiter_<uuid4>`. Raises
    ValueError for an invalid output name or a value that contains the delimiter.
    """
    lines: list[str] = []
    for name, value in mapping.items():
        if not _OUTPUT_NAME.match(name):
            raise ValueError(f"invalid output name {name!r}: use letters, digits, '-' and '_'")
        text = str(value)
        if "\n" not in text and "\r" not in text:
            lines.append(f"{name}={text}\n")
            continue
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        if delimiter in text:
            raise ValueError(f"value of output {name!r} contains the delimiter {delimiter!r}")
        lines.append(f"{name}<<{delimiter}\n{text}\n{delimiter}\n")
    return "".join(lines)


def set_outputs(mapping: Mapping[str, str], path: str | Path | None = None) -> bool:
    """Append outputs to `path` (default $GITHUB_OUTPUT). False when there is no such file to write."""
    target = path if path is not None else os.environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    text = format_outputs(mapping)
    with open(target, "a", encoding="utf-8", newline="") as out:
        out.write(text)
    return True


def fit_step_summary(markdown: str, already_written_bytes: int = 0) -> str:
    """Markdown cut to what still fits in the step's 1 MiB summary, with a note when it was cut."""
    budget = SUMMARY_LIMIT_BYTES - already_written_bytes
    encoded = markdown.encode("utf-8")
    if len(encoded) <= budget:
        return markdown
    note = SUMMARY_TRUNCATION_NOTE.encode("utf-8")
    keep = max(0, budget - len(note))
    head = encoded[:keep].decode("utf-8", errors="ignore")
    cut_at = head.rfind("\n")
    if cut_at > 0:  # end on a whole line so a table row or code fence is not split mid-way
        head = head[:cut_at]
    return head + SUMMARY_TRUNCATION_NOTE if keep > 0 else ""


def append_step_summary(markdown: str, path: str | Path | None = None) -> bool:
    """Append Markdown to `path` (default $GITHUB_STEP_SUMMARY), truncated to the 1 MiB cap.

    False when there is no summary file (not in Actions) or no room is left in it.
    """
    target = path if path is not None else os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    existing = Path(target).stat().st_size if Path(target).exists() else 0
    text = fit_step_summary(markdown, existing)
    if not text:
        return False
    with open(target, "a", encoding="utf-8", newline="") as out:
        out.write(text)
    return True


def escape_data(text: str) -> str:
    """Escape a command's message part (toolkit escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command's property value (toolkit escapeProperty)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(
    level: str,
    message: str,
    title: str | None = None,
    *,
    file: str | None = None,
    line: int | None = None,
) -> str:
    """One `::error title=...::message` line (level: error, warning, notice or debug)."""
    if level not in ANNOTATION_LEVELS:
        raise ValueError(f"annotation level must be one of {', '.join(ANNOTATION_LEVELS)}, not {level!r}")
    props = []
    if title is not None:
        props.append(f"title={escape_property(title)}")
    if file is not None:
        props.append(f"file={escape_property(file)}")
    if line is not None:
        props.append(f"line={int(line)}")
    head = f"{level} {','.join(props)}" if props else level
    return f"::{head}::{escape_data(message)}"


def add_mask(value: str) -> str:
    """The `::add-mask::` line that makes the runner hide `value` in all later log output."""
    return f"::add-mask::{escape_data(value)}"


# ---------------------------------------------------------------- no workflow commands from outside text
# The runner reads a workflow command from any line of a step's output (stdout and stderr) that starts
# with `::` once leading whitespace is trimmed, and a legacy `##[command]` from anywhere in a line.
# Lines end at \n, \r or \r\n. External text (function names, error strings, PR fields) reaches the
# log inside perfgate's messages, so every stream perfgate prints to is wrapped (cli.main) and
# neutralised here, in one place; perfgate's own commands go to the wrapped stream's `raw`.
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_INVISIBLE = frozenset("\u180e\u200b\u200c\u200d\u2060\ufeff")
LEGACY_PREFIX = "##["


class _CommandSafeStream:
    """A text stream that passes everything through except what would start a workflow command.

    A second `:` after only whitespace and a first `:` at a line's start becomes `%3A`; the `[` of
    `##[` becomes `%5B` (the runner's own escapes). Works on any split of the text into writes.
    """

    def __init__(self, raw: TextIO | None) -> None:
        self.raw = raw
        self._lock = threading.Lock()
        self._at_start = True  # only whitespace so far on this line
        self._colon = False  # ... followed by one ':'
        self._tail = ""  # the last two characters written on this line

    def write(self, text: str) -> int:
        with self._lock:
            self.raw.write(self.neutralise(text))  # type: ignore[union-attr]
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def neutralise(self, text: str) -> str:
        out: list[str] = []
        for piece in _LINE_BREAK.split(text):
            if _LINE_BREAK.fullmatch(piece):
                self._at_start, self._colon, self._tail = True, False, ""
                out.append(piece)
                continue
            rest = piece[self._line_start(piece, out):]
            if rest:
                emitted = (self._tail + rest).replace(LEGACY_PREFIX, "##%5B")[len(self._tail):]
                out.append(emitted)
                self._tail = (self._tail + emitted)[-2:]
        return "".join(out)

    def _line_start(self, piece: str, out: list[str]) -> int:
        """Pass the blanks and colons that begin a line; returns where its ordinary text begins."""
        index = 0
        while self._at_start and index < len(piece):
            char = piece[index]
            if char == ":" and self._colon:
                char = "%3A"
                self._at_start = self._colon = False
            elif char == ":":
                self._colon = True
            elif self._colon or not (char.isspace() or char in _INVISIBLE):
                self._at_start = self._colon = False
                break
            out.append(char)
            self._tail = (self._tail + char)[-2:]
            index += 1
        return index


def command_safe(text: str) -> str:
    """`text` as it would be printed by perfgate: no line of it starts a workflow command."""
    return _CommandSafeStream(None).neutralise(text)


def raw_stream(stream: TextIO) -> TextIO:
    """Where perfgate's own workflow commands go: the stream under the neutralising wrapper."""
    return stream.raw if isinstance(stream, _CommandSafeStream) else stream


@contextlib.contextmanager
def command_safe_output() -> Iterator[None]:
    """For the duration, everything printed to sys.stdout and sys.stderr is neutralised."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _wrap(sys.stdout)  # type: ignore[assignment]
    sys.stderr = _wrap(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _wrap(stream: TextIO) -> TextIO:
    return stream if isinstance(stream, _CommandSafeStream) else _CommandSafeStream(stream)  # type: ignore[return-value]

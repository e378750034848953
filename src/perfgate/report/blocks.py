"""The report's building blocks, whatever renders them (Markdown, HTML): inline spans, blocks, sections, the
document, and how numbers are written. document.py builds a Document of a Verdict out of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from perfgate.compare.classify import fmt_level
from perfgate.compare.comparison import MetricComparison

NAME_LIMIT = 160  # characters of a function name, rule or metric shown in a table cell
TEXT_LIMIT = 600  # characters of a reason, note or suggestion
HEADLINE_LIMIT = 300


# ---------------------------------------------------------------- inline content
@dataclass(frozen=True)
class Span:
    """A run of text; `style` is "" (plain), "strong", "code" (monospace) or "break" (a line break)."""

    text: str
    style: str = ""
    limit: int | None = None  # clip the text to this many characters before escaping


Inline: TypeAlias = tuple[Span, ...]


def inline(*parts: str | Span | Inline, limit: int | None = TEXT_LIMIT) -> Inline:
    spans: list[Span] = []
    for part in parts:
        if isinstance(part, str):
            spans.append(Span(part, "", limit))
        elif isinstance(part, Span):
            spans.append(part)
        else:
            spans.extend(part)
    return tuple(spans)


def strong(text: str, limit: int | None = NAME_LIMIT) -> Span:
    return Span(text, "strong", limit)


def code(text: str, limit: int | None = NAME_LIMIT) -> Span:
    return Span(text, "code", limit)


BREAK = Span("", "break")


# ---------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Paragraph:
    content: Inline


@dataclass(frozen=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    align: tuple[str, ...] = ()  # "l" or "r" per column; left when missing


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Alert:
    """A GitHub alert (> [!NOTE] / [!WARNING] / [!IMPORTANT]) or a styled box in HTML."""

    kind: str
    content: Inline


@dataclass(frozen=True)
class Chart:
    """Per-repetition values of each side; Markdown draws it with Mermaid, HTML as a table."""

    title: str
    y_label: str
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (side name, values)


@dataclass(frozen=True)
class Figure:
    """A PNG from plots.py by key; only the HTML report shows it (a comment cannot hold images)."""

    key: str
    caption: str


Block: TypeAlias = Paragraph | Bullets | Table | CodeBlock | Alert | Chart | Figure


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    priority: int
    blocks: tuple[Block, ...]
    collapsible: bool = False
    open: bool = False
    rows_total: int = 0  # rows this section could show (list items and table rows)
    rows_shown: int = 0
    row_limit: int = 0  # the most rows any one list or table of the section shows now
    droppable: bool = True  # False: the comment keeps it, cutting its rows if it must


@dataclass(frozen=True)
class Document:
    title: str
    outcome: str
    headline: Inline
    sections: tuple[Section, ...]
    cuts: tuple[str, ...] = field(default=())  # what markdown.py left out to fit, for the reader


# ---------------------------------------------------------------- rows shown
def limited(items: Sequence, limit: int | None) -> tuple[Sequence, int, int]:
    shown = items if limit is None else items[: max(limit, 0)]
    return shown, len(items), len(shown)


def more_note(shown: int, total: int, what: str) -> Paragraph | None:
    if shown >= total:
        return None
    return Paragraph(inline(f"… {total - shown:,} more {what} not shown here; all are in verdict.json."))


# ---------------------------------------------------------------- number formatting
def format_number(value: float) -> str:
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "fraction":
        return f"{format_number(value * 100)} %"
    return f"{format_number(value)} {unit}".rstrip()


def format_us(value: float | None) -> str:
    return format_value(value, "µs")


def _signed(value: float) -> str:
    if not math.isfinite(value):
        return "+∞" if value > 0 else "−∞"
    return f"+{format_number(value)}" if value >= 0 else format_number(value)


def _pct(value: float) -> str:
    if not math.isfinite(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value * 100:+.1f} %"


def format_change(m: MetricComparison) -> str:
    if m.shift is None:
        return "–"
    if m.unit == "fraction":
        absolute = f"{_signed(m.shift * 100)} pp"
    else:
        absolute = f"{_signed(m.shift)} {m.unit}".rstrip()
    if m.rel_change is None:
        return absolute
    return f"{_pct(m.rel_change)} ({absolute})"


def format_ci(m: MetricComparison, *, with_level: bool = False) -> str:
    """The interval; with_level adds the level it was computed at (when no header says it)."""
    level = f" ({fmt_level(m.ci_level).replace('%', ' %')})" if with_level and m.ci_level is not None else ""
    if m.rel_ci is not None:
        return f"[{_pct(m.rel_ci[0])}, {_pct(m.rel_ci[1])}]{level}"
    if m.shift_ci is not None:
        scale = 100 if m.unit == "fraction" else 1
        return f"[{_signed(m.shift_ci[0] * scale)}, {_signed(m.shift_ci[1] * scale)}]{level}"
    return "–"


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def without_prefix(text: str, prefix: str) -> str:
    return text[len(prefix):].lstrip() if text.lower().startswith(prefix) else text


def shown_value(value: object) -> str:
    return "–" if value is None else str(value)

"""The Markdown report: the body of the sticky PR comment (github/comment.py adds its marker line) and step summary.

`render_markdown` renders the Document of a Verdict and makes it fit `max_chars` (GitHub rejects comments
over 65,536 characters): it leaves out the droppable sections first, lowest priority first, then halves
the rows of the largest remaining section until it fits, and says at the end what it cut. All text
from outside goes through report.escape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfgate.report import mermaid
from perfgate.report.blocks import (
    Alert,
    Block,
    Bullets,
    Chart,
    CodeBlock,
    Document,
    Figure,
    Inline,
    Paragraph,
    Section,
    Table,
)
from perfgate.report.document import DEFAULT_MAX_MOVERS, SECTION_BUILDERS, build_document
from perfgate.report.escape import md_code_block, md_text
from perfgate.verdict import Verdict

COMMENT_LIMIT_CHARS = 65_536
DEFAULT_MAX_CHARS = 65_000  # leaves room for github/comment.py's marker line
MIN_MAX_CHARS = 1_000


@dataclass(frozen=True)
class Cuts:
    dropped: tuple[str, ...] = ()
    rows: tuple[tuple[str, int, int], ...] = ()  # (section title, rows shown, rows in total)
    hard_cut: bool = False

    @property
    def any(self) -> bool:
        return bool(self.dropped or self.rows or self.hard_cut)


def render_markdown(verdict: Verdict, *, max_chars: int = DEFAULT_MAX_CHARS, title: str = "perfgate",
                    max_movers: int | None = DEFAULT_MAX_MOVERS) -> str:
    """The report as GitHub-flavoured Markdown of at most max_chars characters."""
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    document = build_document(verdict, title=title, max_movers=max_movers)
    text = render_document(document)
    if len(text) <= max_chars:
        return text
    return _Fitter(verdict, document, max_movers).fit(max_chars)


class _Fitter:
    """Shrinks a document section by section; the sections render independently, so each is rendered once
    per change and the total length is summed rather than re-rendered."""

    def __init__(self, verdict: Verdict, full: Document, max_movers: int | None) -> None:
        self.verdict = verdict
        self.full = full
        self.max_movers = max_movers
        self.sections = list(full.sections)
        self.rendered = {s.key: render_section(s) for s in self.sections}
        self.dropped: list[str] = []

    def document(self) -> Document:
        return replace(self.full, sections=tuple(self.sections))

    def length(self) -> int:
        head = len(render_document(replace(self.full, sections=()))) - 1
        body = sum(len(self.rendered[s.key]) + 2 for s in self.sections if self.rendered[s.key])
        return head + body + len(cut_note(self.cuts())) + 3

    def cuts(self) -> Cuts:
        return _cuts(self.full, self.document(), self.dropped)

    def fit(self, max_chars: int) -> str:
        for section in sorted((s for s in self.full.sections if s.droppable), key=lambda s: s.priority):
            if self.length() <= max_chars:
                break
            self.sections.remove(section)
            self.dropped.append(section.key)
        while self.length() > max_chars:
            cuttable = [s for s in self.sections if s.row_limit > 1]
            if not cuttable:
                cuts = replace(self.cuts(), hard_cut=True)
                return _hard_cut(render_document(self.document()), cuts, max_chars)
            self._halve(max(cuttable, key=lambda s: len(self.rendered[s.key])))
        text = render_document(self.document(), self.cuts())
        assert len(text) <= max_chars, (len(text), self.length())
        return text

    def _halve(self, section: Section) -> None:
        smaller = SECTION_BUILDERS[section.key](self.verdict, section.row_limit // 2, self.max_movers)
        if smaller is None:  # cannot happen for a section that had rows; keep the loop finite anyway
            self.sections.remove(section)
            self.dropped.append(section.key)
            return
        self.sections[self.sections.index(section)] = smaller
        self.rendered[smaller.key] = render_section(smaller)


def _cuts(full: Document, document: Document, dropped: Sequence[str]) -> Cuts:
    titles = {s.key: s.title for s in full.sections}
    rows = tuple((s.title, s.rows_shown, s.rows_total) for s in document.sections
                 if s.rows_shown < s.rows_total and s.rows_shown < _full_rows(full, s.key))
    return Cuts(tuple(titles[key] for key in dropped if key in titles), rows)


def _full_rows(full: Document, key: str) -> int:
    return next((s.rows_shown for s in full.sections if s.key == key), 0)


# ---------------------------------------------------------------- rendering
def render_document(document: Document, cuts: Cuts | None = None) -> str:
    parts = [f"## {md_text(document.title, 80)}", render_inline(document.headline, line_start=True)]
    parts += [render_section(section) for section in document.sections]
    if cuts is not None and cuts.any:
        parts.append(cut_note(cuts))
    return "\n\n".join(part for part in parts if part) + "\n"


def cut_note(cuts: Cuts) -> str:
    what = []
    if cuts.dropped:
        what.append("left out " + ", ".join(md_text(t, 80) for t in cuts.dropped))
    what += [f"showed {shown:,} of {total:,} rows of {md_text(title, 80)}"
             for title, shown, total in cuts.rows]
    if cuts.hard_cut:
        what.append("cut the rest of the text")
    return ("> [!NOTE]\n> Shortened to fit GitHub's comment limit of 65,536 characters: " + "; ".join(what)
            + ". The full report is report.html and verdict.json in the run's artifact.")


def render_section(section: Section) -> str:
    body = "\n\n".join(text for text in (render_block(b) for b in section.blocks) if text)
    if section.collapsible:
        opened = " open" if section.open else ""
        return f"<details{opened}><summary>{md_text(section.title)}</summary>\n\n{body}\n\n</details>"
    if section.key in ("reasons", "records"):
        return body
    return f"### {md_text(section.title)}\n\n{body}"


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return render_inline(block.content, line_start=True)
    if isinstance(block, Bullets):
        return "\n".join(f"- {render_inline(item, line_start=True)}" for item in block.items)
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, CodeBlock):
        return md_code_block(block.text, block.language)
    if isinstance(block, Alert):
        return f"> [!{block.kind}]\n> {render_inline(block.content, line_start=True)}"
    if isinstance(block, Chart):
        return render_chart(block)
    if isinstance(block, Figure):
        return ""  # images live in the HTML report
    raise TypeError(f"unknown block {type(block).__name__}")


def render_chart(chart: Chart) -> str:
    return (md_code_block(mermaid.xychart(chart), "mermaid")
            + f"\n\n<sub>{md_text(mermaid.legend(chart))}</sub>")


def render_table(table: Table) -> str:
    width = len(table.header)
    align = [(table.align[i] if i < len(table.align) else "l") for i in range(width)]
    lines = ["| " + " | ".join(md_text(h) for h in table.header) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    for row in table.rows:
        cells = [render_inline(cell) for cell in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells[:width]) + " |")
    return "\n".join(lines)


def render_inline(content: Inline, *, line_start: bool = False) -> str:
    """Spans as Markdown; line_start when the text opens a paragraph or list item (see md_text)."""
    out: list[str] = []
    for span in content:
        if span.style == "break":
            out.append("<br>")
            continue
        text = md_text(span.text, span.limit, line_start=line_start and not out and span.style == "")
        if not text:
            continue
        if span.style == "strong":
            out.append(f"<strong>{text}</strong>")
        elif span.style == "code":
            out.append(f"<code>{text}</code>")
        else:
            out.append(text)
    return "".join(out)


# ---------------------------------------------------------------- last resort
_FENCE = re.compile(r"^(`{3,})")


def _hard_cut(text: str, cuts: Cuts, max_chars: int) -> str:
    """Cut at a line boundary, close whatever fence or <details> is open, and add the note."""
    note = "\n\n" + cut_note(cuts) + "\n"
    budget = max_chars - len(note) - 200  # room for the closers
    head = text[:budget]
    if "\n" in head:
        head = head[: head.rfind("\n")]
    fence, depth = None, 0
    for line in head.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            depth += line.count("<details") - line.count("</details>")
    closers = ([fence] if fence else []) + ["</details>"] * max(depth, 0)
    closing = "\n\n" + "\n\n".join(closers) if closers else ""
    return (head + closing + note)[:max_chars]

"""Render Markdown the way GitHub parses it (cmark-gfm, raw HTML passed through) and inspect the HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import cmarkgfm
from cmarkgfm.cmark import Options

ZWSP = "\u200b"


def gfm_to_html(markdown: str) -> str:
    """GitHub's cmark-gfm with every extension and *unsafe* raw HTML, so nothing is hidden by a sanitiser."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


@dataclass
class Inspected:
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)  # text outside <pre> and <code>, where GitHub links things
    comments: list[str] = field(default_factory=list)
    tables: list[list[list[str]]] = field(default_factory=list)  # table -> rows -> cell texts

    @property
    def tag_names(self) -> set[str]:
        return {name for name, _ in self.tags}

    @property
    def all_text(self) -> str:
        return "".join(self.text)


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.result = Inspected()
        self._cell: list[str] | None = None
        self._code_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.result.tags.append((tag, dict(attrs)))
        self._code_depth += tag in ("pre", "code")
        if tag == "table":
            self.result.tables.append([])
        elif tag == "tr" and self.result.tables:
            self.result.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self._code_depth -= tag in ("pre", "code")
        if tag in ("td", "th") and self._cell is not None and self.result.tables:
            self.result.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.result.text.append(data)
        if not self._code_depth:
            self.result.prose.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def handle_comment(self, data: str) -> None:
        self.result.comments.append(data)


def inspect_html(html: str) -> Inspected:
    parser = _Inspector()
    parser.feed(html)
    parser.close()
    return parser.result


def rendered(markdown: str) -> Inspected:
    return inspect_html(gfm_to_html(markdown))

"""Escaping of text from outside (function names, error strings, branch names, notes) for each output format.

Markdown (GitHub-flavoured, in a PR comment or step summary): `md_text` turns any string into inert text
that renders as itself in a paragraph, a list item, a table cell and inside raw HTML such as <summary>.
It uses HTML character references rather than backslashes because references are literal text in every
one of those places (CommonMark: "entity and numeric character references are treated as literal text,
not as markup") while backslash escapes are not processed inside HTML blocks. GitHub links @mentions,
#123 references and bare URLs *after* rendering, in the decoded text, so those get a zero-width space
that breaks the pattern instead.

Code blocks (`md_code_block`) take text verbatim: they only need a fence longer than any backtick run in it.
Mermaid (`mermaid_text`) keeps a conservative set of characters. HTML uses `html_text` (the stdlib escape).
"""

from __future__ import annotations

import html
import re

ZWSP = "&#8203;"  # zero-width space as a character reference: invisible, but breaks @mentions and autolinks
ELLIPSIS = "…"
WORD_SLACK = 24  # characters a clipped end may give up to stop between words

# Characters with a meaning in GFM inline syntax, tables or HTML, written as numeric references.
_MD_REFERENCES = {
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "|": "&#124;", "`": "&#96;", "*": "&#42;",
    "_": "&#95;", "[": "&#91;", "]": "&#93;", "\\": "&#92;", "~": "&#126;", "$": "&#36;",
}
# One pass over the raw text: a special character, or a pattern GitHub turns into a ping, a cross-reference
# or a link in the rendered text (@name, #123, scheme://, www.).
_MD_INLINE = re.compile("[" + re.escape("".join(_MD_REFERENCES)) + "]"
                        + r"|@|#(?=\d)|(?<=[A-Za-z]):(?=//)|(?i:(?<![A-Za-z0-9])www(?=\.))")
# At the start of a line, these open a heading, a list, a block quote or a thematic break.
_BLOCK_START = re.compile(r"^([-+#=]|\d+(?=[.)]))")
# Control characters (Unicode category Cc) and text direction overrides ("Trojan source") are made visible.
_BIDI_AND_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\t]")


def clean(text: object) -> str:
    """str(text) on one line: newlines and tabs become spaces, control and bidi characters become U+FFFD."""
    return _BIDI_AND_CONTROL.sub("\ufffd", _LINE_BREAKS.sub(" ", str(text)))


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a longer text keeps its start and end around an ellipsis. Each end stops
    between words when a space lies within WORD_SLACK characters of the cut, so a clipped sentence shows no
    half-words; a name without spaces is cut where it must be."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if len(text) <= limit:
        return text
    if limit < 8:
        return text[: limit - 1] + ELLIPSIS
    head = _head(text, (limit - 1) * 2 // 3)
    return head + ELLIPSIS + _tail(text, limit - 1 - len(head))


def _head(text: str, size: int) -> str:
    """The first `size` characters, or fewer ending in the last space among them (within WORD_SLACK)."""
    space = text.rfind(" ", max(1, size - WORD_SLACK), size)
    return text[: space + 1] if space > 0 else text[:size]


def _tail(text: str, size: int) -> str:
    """The last `size` characters, or fewer starting with the first space among them (within WORD_SLACK)."""
    start = len(text) - size
    space = text.find(" ", start, min(start + WORD_SLACK, len(text) - 1))
    return text[space:] if space >= 0 else text[start:]


def md_text(text: object, limit: int | None = None, *, line_start: bool = False) -> str:
    """Inert GFM text on one line: no markup, HTML, table break, mention, reference or link can come through.

    line_start: the text begins a paragraph or list item, where `-`, `+`, `#`, `=`, `1.` or four spaces
    would open a block (leading spaces are dropped: Markdown does not show them anyway).
    """
    value = clean(text).lstrip(" ") if line_start else clean(text)
    if limit is not None:
        value = clip(value, limit)
    value = _MD_INLINE.sub(_md_replacement, value)
    if not line_start:
        return value
    return _BLOCK_START.sub(lambda m: "".join(f"&#{ord(c)};" for c in m.group()), value)


def _md_replacement(match: re.Match[str]) -> str:
    found = match.group()
    return _MD_REFERENCES.get(found) or found + ZWSP


def md_code_block(text: str, language: str = "") -> str:
    """A fenced code block showing `text` verbatim (control characters aside).

    The fence is one backtick longer than the longest backtick run in the text, so no line can close it.
    `<!--` and `-->` get a zero-width space so that no comment marker can appear in the raw body.
    """
    lines = [_code_line(line) for line in str(text).splitlines()] or [""]
    longest = max((len(run) for run in re.findall("`+", "\n".join(lines))), default=0)
    fence = "`" * max(3, longest + 1)
    language = re.sub(r"[^A-Za-z0-9_+-]", "", language)
    return "\n".join([fence + language, *lines, fence])


def visible_controls(line: str) -> str:
    """One line of verbatim text with tabs as spaces and control/bidi characters as U+FFFD."""
    return _BIDI_AND_CONTROL.sub("\ufffd", line.replace("\t", "    "))


def _code_line(line: str) -> str:
    line = visible_controls(line)
    return line.replace("<!--", "<\u200b!--").replace("-->", "--\u200b>")


def html_text(text: object, limit: int | None = None) -> str:
    """Text for an HTML element or a quoted attribute value, on one line."""
    value = clean(text)
    if limit is not None:
        value = clip(value, limit)
    return html.escape(value, quote=True)


_MERMAID_ALLOWED = re.compile(r"[^\w .,:()/+=-]", re.UNICODE)


def mermaid_text(text: object, limit: int = 80) -> str:
    """Text for a quoted Mermaid string: letters, digits and a few harmless punctuation marks only."""
    value = _MERMAID_ALLOWED.sub(" ", clean(text))
    return clip(re.sub(r"\s+", " ", value).strip(), limit)


def plot_text(text: object, limit: int = 60) -> str:
    """Text for a matplotlib label: one line, clipped, with `$` escaped so it is never read as mathtext."""
    return clip(clean(text), limit).replace("$", r"\$")

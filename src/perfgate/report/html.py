"""One self-contained HTML report: the same Document as the Markdown comment, with the PNG plots inlined.

Nothing is fetched when it opens: styles are inline, images are base64 data: URIs, there is no script,
and a Content-Security-Policy meta tag forbids loading anything else. Text from outside is escaped with
html.escape (report.escape.html_text).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path

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
    format_number,
)
from perfgate.report.document import DEFAULT_MAX_MOVERS, build_document
from perfgate.report.escape import html_text, visible_controls
from perfgate.report.plot_keys import PLOT_SIZE_PX, PLOT_TITLES
from perfgate.verdict import Verdict

REPORT_FILE = "report.html"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
OUTCOME_CLASS = {"PASS": "pass", "WARN": "warn", "INCONCLUSIVE": "inconclusive", "FAIL": "fail"}
STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.6em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.6em; }
.headline { font-size: 1.1em; padding: 8px 12px; border-left: 4px solid #8c959f; background: #f6f8fa; }
.headline.pass { border-color: #1a7f37; } .headline.warn { border-color: #9a6700; }
.headline.inconclusive { border-color: #8250df; } .headline.fail { border-color: #cf222e; }
table { border-collapse: collapse; margin: 8px 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f6f8fa; } td.r, th.r { text-align: right; white-space: nowrap; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
code { background: #eff1f3; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; border-radius: 6px; }
details { margin: 12px 0; } summary { cursor: pointer; font-weight: 600; font-size: 1.1em; }
.alert { border-left: 4px solid #0969da; padding: 6px 12px; margin: 8px 0; background: #f6f8fa; }
.alert.warning { border-color: #9a6700; } .alert.important { border-color: #8250df; }
figure { margin: 12px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption, .skipped, .cuts { color: #59636e; font-size: .92em; }
"""


def write_html(verdict: Verdict, out_dir: Path, plots: Mapping[str, Path] | None = None, *,
               title: str = "perfgate", max_movers: int | None = DEFAULT_MAX_MOVERS) -> Path:
    """Write out_dir/report.html; `plots` is write_plots' result (its `skipped` reasons are shown too)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    document = build_document(verdict, title=title, max_movers=max_movers)
    path.write_text(render_html(document, plots or {}), encoding="utf-8")
    return path


def render_html(document: Document, plots: Mapping[str, Path]) -> str:
    skipped: Mapping[str, str] = getattr(plots, "skipped", {})
    renderer = _Renderer(plots, skipped)
    outcome = OUTCOME_CLASS.get(document.outcome, "")
    body = [f"<h1>{html_text(document.title, 80)}</h1>",
            f'<p class="headline {outcome}">{render_inline(document.headline)}</p>']
    body += [renderer.section(section) for section in document.sections]
    body.append(renderer.remaining_plots())
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html_text(document.title, 80)}: {html_text(document.outcome)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body><main>",
        *[part for part in body if part],
        "</main></body>",
        "</html>",
        "",
    ])


class _Renderer:
    def __init__(self, plots: Mapping[str, Path], skipped: Mapping[str, str]) -> None:
        self.plots = plots
        self.skipped = skipped
        self.placed: set[str] = set()

    def section(self, section: Section) -> str:
        body = "\n".join(part for part in (self.block(b) for b in section.blocks) if part)
        if section.collapsible:
            opened = " open" if section.open else ""
            return f"<details{opened}><summary>{html_text(section.title)}</summary>\n{body}\n</details>"
        if section.key in ("reasons", "records"):
            return body
        return f"<h2>{html_text(section.title)}</h2>\n{body}"

    def block(self, block: Block) -> str:
        if isinstance(block, Paragraph):
            return f"<p>{render_inline(block.content)}</p>"
        if isinstance(block, Bullets):
            return "<ul>" + "".join(f"<li>{render_inline(item)}</li>" for item in block.items) + "</ul>"
        if isinstance(block, Table):
            return render_table(block)
        if isinstance(block, CodeBlock):
            return f"<pre><code>{_code_text(block.text)}</code></pre>"
        if isinstance(block, Alert):
            kind = html_text(block.kind)
            return (f'<div class="alert {kind.lower()}"><strong>{kind.title()}</strong>: '
                    f"{render_inline(block.content)}</div>")
        if isinstance(block, Chart):
            return render_chart_table(block)
        if isinstance(block, Figure):
            return self.figure(block.key, block.caption)
        raise TypeError(f"unknown block {type(block).__name__}")

    def figure(self, key: str, caption: str) -> str:
        self.placed.add(key)
        path = self.plots.get(key)
        if path is None:
            reason = self.skipped.get(key)
            title = PLOT_TITLES.get(key, key)
            if not reason:
                return ""
            return f'<p class="skipped">Plot “{html_text(title)}” not drawn: {html_text(reason)}</p>'
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        width, height = PLOT_SIZE_PX.get(key, (800, 450))
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{html_text(caption)}" width="{width}" '
                f'height="{height}"><figcaption>{html_text(caption)}</figcaption></figure>')

    def remaining_plots(self) -> str:
        keys = [k for k in (*self.plots, *self.skipped) if k not in self.placed]
        parts = [self.figure(key, PLOT_TITLES.get(key, key)) for key in dict.fromkeys(keys)]
        parts = [p for p in parts if p]
        return "<h2>More plots</h2>\n" + "\n".join(parts) if parts else ""


def render_table(table: Table) -> str:
    width = len(table.header)
    align = [(table.align[i] if i < len(table.align) else "l") for i in range(width)]
    head = "".join(f'<th class="{a}">{html_text(h)}</th>' for h, a in zip(table.header, align, strict=True))
    rows = []
    for row in table.rows:
        cells = [*row, *([()] * (width - len(row)))][:width]
        rows.append("<tr>" + "".join(f'<td class="{a}">{render_inline(c)}</td>'
                                     for c, a in zip(cells, align, strict=True)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_chart_table(chart: Chart) -> str:
    """The chart's numbers: one row per repetition, one column per side."""
    length = max((len(values) for _, values in chart.series), default=0)
    header = "".join(f'<th class="r">{html_text(name)} {html_text(chart.y_label)}</th>'
                     for name, _ in chart.series)
    rows = []
    for i in range(length):
        cells = "".join(f'<td class="r">{format_number(values[i]) if i < len(values) else "–"}</td>'
                        for _, values in chart.series)
        rows.append(f'<tr><td class="r">{i + 1}</td>{cells}</tr>')
    return f"<table><thead><tr><th>repetition</th>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_inline(content: Inline) -> str:
    out = []
    for span in content:
        if span.style == "break":
            out.append("<br>")
            continue
        text = html_text(span.text, span.limit)
        if not text:
            continue
        styled = {"strong": f"<strong>{text}</strong>", "code": f"<code>{text}</code>"}
        out.append(styled.get(span.style, text))
    return "".join(out)


def _code_text(text: str) -> str:
    return html.escape("\n".join(visible_controls(line) for line in str(text).splitlines()), quote=False)

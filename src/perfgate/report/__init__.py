"""Renderers of a Verdict: Markdown comment, Mermaid chart, PNG plots, HTML report, Pushgateway metrics.

They read a Verdict (and, for plots, the two record folders it names) and decide nothing.
`render_all` writes the Markdown, the HTML and the PNGs into one folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perfgate.verdict import Verdict

MARKDOWN_FILE = "report.md"
FLAMEGRAPH_FILE = "flamegraph.svg"  # written where the profiles are parsed (report/flamegraph.py)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    plots: dict[str, Path]
    skipped_plots: dict[str, str] = field(default_factory=dict)  # plot key -> why it was not drawn

    def as_dict(self) -> dict[str, Path]:
        """Every file written, by name: "markdown", "html" and each plot's key."""
        return {"markdown": self.markdown, "html": self.html, **self.plots}


def render_all(verdict: Verdict, out_dir: Path, *, title: str = "perfgate", plots: bool = True,
               max_chars: int | None = None) -> ReportFiles:
    """Write report.md (the comment body), report.html and the PNGs into out_dir.

    Imports lazily so that `import perfgate.report` does not load matplotlib.
    """
    from perfgate.report.html import write_html
    from perfgate.report.markdown import DEFAULT_MAX_CHARS, render_markdown
    from perfgate.report.plots import PlotFiles, write_plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / MARKDOWN_FILE
    markdown.write_text(render_markdown(verdict, title=title, max_chars=max_chars or DEFAULT_MAX_CHARS),
                        encoding="utf-8")
    drawn = write_plots(verdict, out_dir) if plots else PlotFiles()
    html = write_html(verdict, out_dir, drawn, title=title)
    return ReportFiles(markdown=markdown, html=html, plots=dict(drawn), skipped_plots=dict(drawn.skipped))

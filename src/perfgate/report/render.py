"""Every report file of a verdict into one folder: report.md (the comment body), report.html and the PNGs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from perfgate.report import MARKDOWN_FILE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perfgate.record import RunRecord
    from perfgate.verdict import Verdict


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
               max_chars: int | None = None, records: Sequence[RunRecord] = ()) -> ReportFiles:
    """Write report.md (the comment body), report.html and the PNGs into out_dir.

    `records`: the verdict's run records when the caller holds them (the plots then do not read them again).

    Imports the renderers here, so that importing this module does not load matplotlib.
    """
    from perfgate.report.html import write_html
    from perfgate.report.markdown import DEFAULT_MAX_CHARS, render_markdown
    from perfgate.report.plots import PlotFiles, write_plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / MARKDOWN_FILE
    markdown.write_text(render_markdown(verdict, title=title, max_chars=max_chars or DEFAULT_MAX_CHARS),
                        encoding="utf-8")
    drawn = write_plots(verdict, out_dir, records) if plots else PlotFiles()
    html = write_html(verdict, out_dir, drawn, title=title)
    return ReportFiles(markdown=markdown, html=html, plots=dict(drawn), skipped_plots=dict(drawn.skipped))

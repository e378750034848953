"""An inline chart for the PR comment without hosting an image: a Mermaid `xychart-beta` block.

GitHub renders ```mermaid fences in comments. xychart-beta has no legend, so the line colours are pinned
with an init directive and named in a caption under the chart. Only numbers and sanitised titles go in.
"""

from __future__ import annotations

import math

from perfgate.report.blocks import Chart
from perfgate.report.escape import mermaid_text

# The PNGs' colours (matplotlib's first two defaults), so the comment's chart matches them.
SIDE_COLOURS = {"baseline": "#1f77b4", "candidate": "#ff7f0e"}
OTHER_COLOURS = ("#2ca02c", "#9467bd")
COLOUR_NAMES = {"#1f77b4": "blue", "#ff7f0e": "orange", "#2ca02c": "green", "#9467bd": "purple"}


def _colours(names: list[str]) -> list[str]:
    others = iter(OTHER_COLOURS * len(names))
    return [SIDE_COLOURS.get(name) or next(others) for name in names]


def mermaid_number(value: float) -> str:
    """A plain decimal (no exponent, which xychart does not read), at most 4 decimals."""
    if not math.isfinite(value):
        raise ValueError(f"cannot chart a non-finite value: {value!r}")
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def xychart(chart: Chart) -> str:
    """The Mermaid source (without the fence) for one line per series over the repetition number."""
    series = [(name, [v for v in values if math.isfinite(v)]) for name, values in chart.series]
    series = [(name, values) for name, values in series if values]
    if not series:
        raise ValueError("a chart needs at least one series with a finite value")
    length = max(len(values) for _, values in series)
    palette = ", ".join(_colours([name for name, _ in series]))
    lines = [
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%',
        "xychart-beta",
        f'    title "{mermaid_text(chart.title)}"',
        '    x-axis "repetition" [' + ", ".join(str(i) for i in range(1, length + 1)) + "]",
        f'    y-axis "{mermaid_text(chart.y_label)}"',
    ]
    lines += ["    line [" + ", ".join(mermaid_number(v) for v in values) + "]" for _, values in series]
    return "\n".join(lines)


def legend(chart: Chart) -> str:
    """Which colour is which side, e.g. 'blue: baseline · orange: candidate' (plain text, our own words)."""
    names = [name for name, values in chart.series if any(math.isfinite(v) for v in values)]
    pairs = zip(_colours(names), names, strict=True)
    return " · ".join(f"{COLOUR_NAMES[colour]}: {mermaid_text(name, 40)}" for colour, name in pairs)

"""Renderers of a Verdict: Markdown comment, Mermaid chart, PNG plots, HTML report, Pushgateway metrics.

They read a Verdict (and, for plots, the two record folders it names) and decide nothing.
`render.render_all` writes the Markdown, the HTML and the PNGs into one folder. This module imports
nothing, so the renderers can read the file names below without a cycle.
"""

MARKDOWN_FILE = "report.md"
FLAMEGRAPH_FILE = "flamegraph.svg"  # written where the profiles are parsed (report/flamegraph.py)

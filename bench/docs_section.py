"""Write a benchmark's figures into docs/benchmarks.md: its own `## ` section, replaced in place or appended."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def replace_section(heading: str, text: str, doc: Path = DOC) -> None:
    """`text` starts with `heading`; it replaces that section (up to the next `## `) or is appended."""
    existing = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    block = text.rstrip("\n") + "\n"
    start = existing.find(heading)
    if start < 0:
        doc.write_text(existing.rstrip("\n") + "\n\n" + block, encoding="utf-8")
        return
    end = existing.find("\n## ", start + len(heading))
    rest = "" if end < 0 else "\n" + existing[end + 1:]
    doc.write_text(existing[:start] + block + rest, encoding="utf-8")

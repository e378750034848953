"""Write a benchmark's figures into docs/benchmarks.md: its own `## ` section, replaced in place or appended."""

from __future__ import annotations

import argparse
from collections.abc import Callable
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


def add_table_options(parser: argparse.ArgumentParser) -> None:
    """--report and --write, as every bench that keeps its results in a file has them."""
    parser.add_argument("--report", action="store_true", help="only print the table from the results file")
    parser.add_argument("--write", action="store_true", help="also write the table into docs/benchmarks.md")


def run_and_report(args: argparse.Namespace, run: Callable[[argparse.Namespace], None], table: Callable[[], str],
                   heading: str, method: str, after: Callable[[], str] = str) -> int:
    """Run the bench (unless --report), print its table, and with --write put it into its section of the docs,
    under its method and followed by `after()`."""
    if not args.report:
        run(args)
    text = table()
    print(text)
    if args.write:
        replace_section(heading, f"{heading}\n\n{method}\n\n{text}{after()}\n")
    return 0

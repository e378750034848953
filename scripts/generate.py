#!/usr/bin/env python3
"""Write the files derived from others (`make generate`); `--check` only says which are stale.

- schema/perfgate.schema.json from perfgate's config model (perfgate.config_schema), with the
  descriptions of docs/configuration.md's key tables;
- README.md's Action "Inputs" and "Outputs" tables from action.yml, between the GENERATED markers.

Run it after adding a config key, or an input or output to action.yml, and commit what it writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from perfgate import config_schema

ROOT = Path(__file__).resolve().parents[1]
README = "README.md"
BEGIN = "<!-- GENERATED from action.yml by `make generate`: edit action.yml, not these tables -->"
END = "<!-- END GENERATED -->"


def schema_text(root: Path) -> str:
    docs = (root / "docs" / "configuration.md").read_text(encoding="utf-8")
    return config_schema.render(config_schema.descriptions_from_docs(docs))


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def action_tables(action: dict) -> str:
    lines = ["### Inputs", "", "| input | default | description |", "|---|---|---|"]
    for name, spec in action["inputs"].items():
        default = spec.get("default", "")
        shown = f"`{_cell(default)}`" if default not in ("", None) else ""
        if spec.get("required"):
            shown = "required"
        lines.append(f"| `{name}` | {shown} | {_cell(spec.get('description', ''))} |")
    lines += ["", "### Outputs", "", "| output | description |", "|---|---|"]
    for name, spec in action["outputs"].items():
        lines.append(f"| `{name}` | {_cell(spec.get('description', ''))} |")
    return "\n".join(lines)


def readme_text(root: Path) -> str:
    readme = (root / README).read_text(encoding="utf-8")
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise SystemExit(f"{README}: expected one {BEGIN!r} line and one {END!r} line around the Action tables")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    action = yaml.safe_load((root / "action.yml").read_text(encoding="utf-8"))
    return f"{head}{BEGIN}\n{action_tables(action)}\n{END}{tail}"


GENERATED: dict[str, Callable[[Path], str]] = {
    config_schema.SCHEMA_PATH: schema_text,
    README: readme_text,
}


def stale(root: Path) -> list[str]:
    """The generated files whose committed text differs from what their sources give."""
    out = []
    for name, make in GENERATED.items():
        path = root / name
        if not path.exists() or path.read_text(encoding="utf-8") != make(root):
            out.append(name)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.root)
        for name in names:
            print(f"{name} is stale: run `make generate` and commit the result", file=sys.stderr)
        return 1 if names else 0
    for name, make in GENERATED.items():
        path = args.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = make(args.root)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

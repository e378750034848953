#!/usr/bin/env python3
"""Release steps (examples/release/release.yml runs them; docs/action.md "Versions" says why).
Standard library only: the release job runs it with the runner's python3, before any install.

  release.py check vX.Y.Z           the tag's form, pyproject's version and CHANGELOG's section agree;
                                    prints that section (the release notes)
  release.py pin-image REF@DIGEST   action.yml runs that image by default (its PERFGATE_DEFAULT_IMAGE line)
  release.py pin-examples SHA vX.Y.Z   examples/, README.md, docs/ and src/perfgate/release.py pin that commit
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"^v(?P<version>(?P<major>0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*))$")
IMAGE = re.compile(r"^ghcr\.io/[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_IMAGE_LINE = re.compile(r'^(?P<indent>\s+)PERFGATE_DEFAULT_IMAGE: "[^"\n]*"', re.MULTILINE)
ACTION_PIN = re.compile(r"perfgate/perfgate@[0-9a-f]{40} # [^\n`]*")
PIN_FILES = ("examples/**/*.yml", "README.md", "docs/*.md")


class ReleaseError(Exception):
    pass


def check(root: Path, tag: str) -> str:
    match = TAG.match(tag)
    if not match:
        raise ReleaseError(f"tag {tag!r}: expected vX.Y.Z (e.g. v1.2.0)")
    version = match.group("version")
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    if project != version:
        raise ReleaseError(f"pyproject.toml says version {project}, the tag {tag}: bump it in the release commit")
    return changelog_section(root, version)


def changelog_section(root: Path, version: str) -> str:
    text = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    heading = re.compile(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", re.MULTILINE)
    match = heading.search(text)
    if not match:
        raise ReleaseError(f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' section: move [Unreleased] there")
    following = re.search(r"^## ", text[match.end():], re.MULTILINE)
    body = text[match.end(): match.end() + following.start() if following else len(text)].strip()
    if not body:
        raise ReleaseError(f"CHANGELOG.md's [{version}] section is empty")
    return body + "\n"


def pin_image(root: Path, image: str) -> None:
    if not IMAGE.match(image):
        raise ReleaseError(f"image {image!r}: expected ghcr.io/OWNER/NAME@sha256:<64 hex> (lower case)")
    path = root / "action.yml"
    text = path.read_text(encoding="utf-8")
    found = DEFAULT_IMAGE_LINE.findall(text)
    if len(found) != 1:
        raise ReleaseError(f"action.yml: expected one PERFGATE_DEFAULT_IMAGE line, found {len(found)}")
    path.write_text(DEFAULT_IMAGE_LINE.sub(lambda m: f'{m.group("indent")}PERFGATE_DEFAULT_IMAGE: "{image}"', text),
                    encoding="utf-8")


def pin_examples(root: Path, sha: str, tag: str) -> list[Path]:
    if not SHA.match(sha) or not TAG.match(tag):
        raise ReleaseError(f"expected a 40-hex commit and vX.Y.Z, got {sha!r} {tag!r}")
    changed = []
    for pattern in PIN_FILES:
        for path in sorted(root.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            pinned = ACTION_PIN.sub(f"perfgate/perfgate@{sha} # {tag}", text)
            if pinned != text:
                path.write_text(pinned, encoding="utf-8")
                changed.append(path)
    source = root / "src" / "perfgate" / "release.py"
    text = source.read_text(encoding="utf-8")
    pinned = re.sub(r'^ACTION_COMMIT = "[0-9a-f]{40}"$', f'ACTION_COMMIT = "{sha}"', text, flags=re.MULTILINE)
    pinned = re.sub(r'^ACTION_VERSION = "[^"\n]*"$', f'ACTION_VERSION = "{tag}"', pinned, flags=re.MULTILINE)
    if pinned.count(sha) != 1 or f'"{tag}"' not in pinned:
        raise ReleaseError(f"{source}: ACTION_COMMIT / ACTION_VERSION lines not found")
    source.write_text(pinned, encoding="utf-8")
    return [*changed, source]


def main(argv: list[str]) -> int:
    commands = {"check": (1, lambda a: print(check(ROOT, a[0]), end="")),
                "pin-image": (1, lambda a: pin_image(ROOT, a[0])),
                "pin-examples": (2, lambda a: print("\n".join(str(p) for p in pin_examples(ROOT, *a))))}
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][0]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        commands[argv[0]][1](argv[1:])
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""builds.json: what the host-side build produced, read back by `perfgate run --builds DIR` in the container.

    DIR/builds.json            this manifest (written last: its presence means every listed build succeeded)
    DIR/base/service           the base ref's executable      DIR/base/build.log   its build output
    DIR/head/service           the working tree's executable  DIR/head/build.log
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from perfgate.errors import ConfigError
from perfgate.files import read_json_file

BUILDS_FILE = "builds.json"
BUILDS_FORMAT = 1
SIDES = ("base", "head")
EXECUTABLE = "service"


@dataclass(frozen=True)
class BuiltSide:
    side: str  # "base" (the --against ref) | "head" (the working tree)
    ref: str | None  # as the user named it; None for the working tree
    commit: str | None
    binary: str  # relative to the builds folder
    build_seconds: float
    interpreter: str | None = None  # ELF loader of a dynamic binary (or a script's #! program); None = static


@dataclass(frozen=True)
class Builds:
    folder: Path
    sides: Mapping[str, BuiltSide]

    def binary(self, side: str) -> Path:
        return self.folder / self.sides[side].binary

    @property
    def has_base(self) -> bool:
        return "base" in self.sides

    def save(self) -> Path:
        path = self.folder / BUILDS_FILE
        data = {"format": BUILDS_FORMAT, "sides": {name: asdict(side) for name, side in self.sides.items()}}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def read_builds(folder: Path) -> Builds:
    """The manifest, checked: known sides, binaries that are regular executable files inside `folder`."""
    path = folder / BUILDS_FILE
    data = read_json_file(path, f"--builds {folder}: {BUILDS_FILE}",
                          missing=f"--builds {folder}: no {BUILDS_FILE} there",
                          hint="build first: python3 -m perfgate.build --plan PLAN --against REF --out DIR")
    if not isinstance(data, dict) or data.get("format") != BUILDS_FORMAT or not isinstance(data.get("sides"), dict):
        raise ConfigError(f"{path}: not a perfgate builds manifest of format {BUILDS_FORMAT}")
    sides = {name: _side(path, name, raw) for name, raw in data["sides"].items()}
    if "head" not in sides:
        raise ConfigError(f"{path}: lists no head build")
    builds = Builds(folder=folder, sides=sides)
    for name in sides:
        _check_binary(builds, name)
    return builds


def _side(path: Path, name: Any, raw: Any) -> BuiltSide:
    if name not in SIDES or not isinstance(raw, dict):
        raise ConfigError(f"{path}: unknown side {name!r} (expected {' or '.join(SIDES)})")
    try:
        side = BuiltSide(**raw)
    except TypeError as error:
        raise ConfigError(f"{path}: side {name}: {error}") from error
    if side.side != name or not isinstance(side.binary, str):
        raise ConfigError(f"{path}: side {name}: inconsistent entry")
    return side


def _check_binary(builds: Builds, name: str) -> None:
    relative = Path(builds.sides[name].binary)
    where = f"{builds.folder / BUILDS_FILE}: the {name} build's executable {str(relative)!r}"
    if relative.is_absolute() or ".." in relative.parts:
        raise ConfigError(f"{where} must be a path inside the builds folder")
    try:
        info = (builds.folder / relative).lstat()
    except OSError as error:
        raise ConfigError(f"{where} is missing: {error.strerror}") from error
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IXUSR:
        raise ConfigError(f"{where} is not an executable regular file")

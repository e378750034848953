"""Guess how to build a Go gRPC service from its go.mod, without running the Go toolchain.

The main package to build is the one that imports google.golang.org/grpc (the shortest path wins when
there are several; the others are reported). Reading is bounded: source files are skipped past a
count, read only up to their import block, and vendor/testdata/hidden folders are not entered.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MAX_FILES = 5000
HEAD_BYTES = 16 << 10
SKIP_DIRS = {"vendor", "testdata", "node_modules", "third_party"}
SAFE_PATH = re.compile(r"^[A-Za-z0-9._/-]+$")  # goes into a workflow's shell script: nothing to quote
PACKAGE = re.compile(rb"^package\s+(\w+)", re.MULTILINE)
GRPC_IMPORT = b'"google.golang.org/grpc"'


@dataclass(frozen=True)
class GoBuild:
    package: str  # ./cmd/server, relative to the folder holding go.mod
    binary: str  # bin/server, relative to the same folder
    others: tuple[str, ...] = ()  # other gRPC main packages that were not chosen

    @property
    def command(self) -> str:
        """service.build: perfgate fills in {output}; build_env sets CGO_ENABLED=0 (see `shell`)."""
        return f"go build -trimpath -o {{output}} {self.package}"

    @property
    def shell(self) -> str:
        """The build, static so it runs inside perfgate's container as well as on the runner."""
        return f"CGO_ENABLED=0 go build -trimpath -o {self.binary} {self.package}"


def guess_go_build(project: Path) -> GoBuild | None:
    if not (project / "go.mod").is_file():
        return None
    grpc_mains, mains = _main_packages(project)
    chosen = grpc_mains or mains
    if not chosen:
        return None
    chosen.sort(key=lambda rel: (rel.count("/"), rel))
    package = "./" + chosen[0] if chosen[0] != "." else "."
    name = Path(chosen[0]).name if chosen[0] != "." else _module_name(project)
    if not SAFE_PATH.match(package) or not SAFE_PATH.match(name):
        return None
    return GoBuild(package=package, binary=f"bin/{name}", others=tuple("./" + rel for rel in chosen[1:]))


def _main_packages(project: Path) -> tuple[list[str], list[str]]:
    grpc_mains, mains = set(), set()
    seen = 0
    for folder, dirs, files in os.walk(project):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith((".", "_")))
        rel = Path(folder).relative_to(project).as_posix()
        for name in sorted(files):
            if not name.endswith(".go") or name.endswith("_test.go"):
                continue
            seen += 1
            if seen > MAX_FILES:
                return sorted(grpc_mains), sorted(mains)
            head = _head(Path(folder, name))
            match = PACKAGE.search(head)
            if match and match.group(1) == b"main":
                mains.add(rel)
                if GRPC_IMPORT in head:
                    grpc_mains.add(rel)
    return sorted(grpc_mains), sorted(mains)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(HEAD_BYTES)
    except OSError:
        return b""


def _module_name(project: Path) -> str:
    text = (project / "go.mod").read_text(encoding="utf-8", errors="replace")
    match = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    last = match.group(1).rstrip("/").rsplit("/", 1)[-1] if match else ""
    return last if SAFE_PATH.match(last or "-") and last else "server"

"""The Action's image with podman on a machine without a Docker engine (scripts/container.sh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.paths import ROOT

CONTAINER_SH = ROOT / "scripts" / "container.sh"


def run_quietly(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)  # noqa: S603


def write_docker_shim(folder: Path) -> Path:
    """`docker` in `folder`: podman with this machine's settings (scripts/container.sh docker). bash, not sh:
    dash drops the runner's INPUT_BASELINE-PATH-style variables (hyphens) from the environment it passes on."""
    shim = folder / "docker"
    shim.write_text(f'#!/usr/bin/env bash\nexec "{CONTAINER_SH}" docker "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return shim

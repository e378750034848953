"""The environment fingerprint stored in every record: where and with what it was measured."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path

from perfgate.errors import ToolError
from perfgate.load.generator import LoadGenerator
from perfgate.procs import run_bounded
from perfgate.record import Environment


def fingerprint(generator: LoadGenerator, environ: Mapping[str, str] | None = None) -> Environment:
    """The machine, the load generator's version (kept under the record's `ghz_version` key) and the commit."""
    environ = os.environ if environ is None else environ
    return Environment(
        kernel=platform.release(),
        cpu_model=cpu_model(),
        nproc=os.cpu_count() or 0,
        os=os_name(),
        python=platform.python_version(),
        ghz_version=generator.version(),
        git_sha=environ.get("GITHUB_SHA") or _git("rev-parse", "HEAD"),
        git_ref=environ.get("GITHUB_REF") or _git("rev-parse", "--abbrev-ref", "HEAD"),
        github_run_id=environ.get("GITHUB_RUN_ID"),
        github_repository=environ.get("GITHUB_REPOSITORY"),
    )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return platform.system()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return match.group(1) if match else platform.system()


def _git(*args: str) -> str | None:
    try:
        result = run_bounded(["git", *args], timeout_s=5, what="git")
    except ToolError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None

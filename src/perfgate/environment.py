"""The environment fingerprint stored in every record: where and with what it was measured."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path

from perfgate.errors import ToolError
from perfgate.procs import run_bounded
from perfgate.record import Environment


def fingerprint(ghz: str, environ: Mapping[str, str] | None = None) -> Environment:
    environ = os.environ if environ is None else environ
    return Environment(
        kernel=platform.release(),
        cpu_model=cpu_model(),
        nproc=os.cpu_count() or 0,
        os=os_name(),
        python=platform.python_version(),
        ghz_version=ghz_version(ghz),
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


def ghz_version(ghz: str) -> str:
    """`ghz -v` says "dev" for `go install` builds; the module version is in the binary's build info."""
    version = _version_from_build_info(ghz)
    if version:
        return version
    try:
        result = run_bounded([ghz, "--version"], timeout_s=10, what="ghz --version")
    except ToolError:
        return "unknown"
    return (result.stdout or result.stderr).strip() or "unknown"


def _version_from_build_info(binary: str) -> str | None:
    """Read the `mod github.com/bojand/ghz vX.Y.Z` line Go embeds in every module-aware build."""
    try:
        data = Path(binary).read_bytes()
    except OSError:
        return None
    match = re.search(rb"mod\tgithub\.com/bojand/ghz\t(v[0-9][^\t\n]*)", data)
    return match.group(1).decode() if match else None


def _git(*args: str) -> str | None:
    try:
        result = run_bounded(["git", *args], timeout_s=5, what="git")
    except ToolError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None

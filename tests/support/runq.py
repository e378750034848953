"""Helpers for the kernel-view tests: a bounded ghz load, CPU hogs, Python run in a changed context."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.greeter import CALL, DATA
from support.paths import GHZ, ROOT

SRC = ROOT / "src"

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="the kernel view needs root (CI runs as root)")


def run_load(address: str, *, seconds: float, rps: int = 300, concurrency: int = 2) -> dict:
    """A short rate-limited ghz run against the greeter; returns ghz's JSON report."""
    argv = [str(GHZ), "--insecure", "--call", CALL, "-d", json.dumps(DATA), "-z", f"{seconds}s",
            "-c", str(concurrency), "--rps", str(rps), "-O", "json", address]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,  # noqa: S603
                               check=True)
    return json.loads(completed.stdout)


@contextmanager
def cpu_hogs(count: int = 1, *, cpu: int | None = None) -> Iterator[list[subprocess.Popen]]:
    """`count` busy-looping processes (pinned to one CPU if given); killed and reaped on exit."""
    hogs: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))  # noqa: S603
            if cpu is not None:
                os.sched_setaffinity(hogs[-1].pid, {cpu})
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)


def python_for(wrapper: Sequence[str]) -> str | None:
    """A Python interpreter that works under `wrapper` (e.g. setpriv as nobody), or None."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and subprocess.run([*wrapper, candidate, "-c", "import json"],  # noqa: S603
                                        capture_output=True, timeout=30).returncode == 0:
            return candidate
    return None


# Runs the collector the way the orchestrator does: a PerfgateError is reported, anything else is a traceback.
COLLECTOR_DRIVER = """
import sys
from pathlib import Path
from perfgate.errors import PerfgateError
from perfgate.capture.runq import RunqCollector
try:
    collector = RunqCollector(service_comm="greeter", raw_path=Path(sys.argv[1]) / "raw.jsonl")
    collector.start(timeout_s=30)
    print("started:", collector.stop().status)
except PerfgateError as error:
    print(error)
    sys.exit(error.exit_code)
"""


def run_collector_driver(wrapper: Sequence[str], python: str, folder: Path,
                         timeout_s: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([*wrapper, python, "-c", COLLECTOR_DRIVER, str(folder)],  # noqa: S603
                          capture_output=True, text=True, timeout=timeout_s, env=env)

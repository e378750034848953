"""The one conftest: the example service as a fixture, the project's tools on PATH, the fake GitHub API's fixtures.

Helpers live in tests/support/ (imported as `support.x`); test modules never import each other.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from support.greeter import Greeter, free_port, greeter_argv, wait_for_port
from support.paths import GREETER, TOOLS_BIN

pytest_plugins = ["support.ghapi.fixture"]

os.environ["PATH"] = f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture
def start_greeter() -> Iterator:
    """start_greeter("-regress-cpu-pct", "30") -> a running Greeter, stopped and reaped after the test."""
    if not GREETER.exists():
        pytest.fail(f"{GREETER} missing: run `scripts/setup.sh --examples` (make test does)")
    processes: list[subprocess.Popen] = []

    def start(*knobs: str) -> Greeter:
        grpc_port, pprof_port = free_port(), free_port()
        process = subprocess.Popen(greeter_argv(grpc_port, pprof_port, *knobs),  # noqa: S603
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        wait_for_port(grpc_port)
        wait_for_port(pprof_port)
        return Greeter(grpc_port, pprof_port, process.pid)

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def greeter(start_greeter) -> Greeter:
    return start_greeter()

"""The one conftest: the example service as a fixture, the project's tools on PATH, the fake GitHub API's fixtures.

Helpers live in tests/support/ (imported as `support.x`); test modules never import each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from support.container import CONTAINER_SH, run_quietly, write_docker_shim
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


@pytest.fixture(scope="session")
def perfgate_image() -> str:
    """The Action's image, built once per test session (scripts/container.sh build; PERFGATE_IMAGE names it)."""
    for needed in ("podman", "runc"):
        if not shutil.which(needed):
            pytest.fail(f"{needed} missing: run `scripts/setup.sh --container` (make test does)")
    done = run_quietly([str(CONTAINER_SH), "build"], timeout=1700)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.split()[-1]


@pytest.fixture(scope="session")
def docker_on_path(tmp_path_factory) -> str:
    """A folder holding a `docker` that is podman, for running the Action's own step script: put it first on PATH."""
    folder = tmp_path_factory.mktemp("docker-bin")
    write_docker_shim(folder)
    return str(folder)

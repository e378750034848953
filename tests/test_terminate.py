"""A cancelled job (SIGTERM to perfgate) stops the service perfgate started and keeps the record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GREETER, base_config, free_port, greeter_argv, write_config

from perfgate.cli import EXIT_TERMINATED

pytestmark = pytest.mark.slow


def greeter_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(entry, "exe").resolve() == GREETER.resolve():
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


def test_sigterm_stops_the_service_and_keeps_the_finished_repetitions(tmp_path):
    grpc, pprof = free_port(), free_port()
    config = base_config(f"127.0.0.1:{grpc}", service={"command": greeter_argv(grpc, pprof)},
                         load={"duration_s": 1.0, "warmup_s": 0, "repetitions": 30}, output=str(tmp_path / "out"))
    before = greeter_pids()
    env = {**os.environ, "PATH": f"{GREETER.parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([sys.executable, "-m", "perfgate", "run", "--baseline",  # noqa: S603
                                "--config", str(write_config(tmp_path, config))],
                               env=env, stderr=subprocess.PIPE, text=True)
    record_path = tmp_path / "out" / "baseline" / "record.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _finished_repetitions(record_path):
            time.sleep(0.2)
        assert _finished_repetitions(record_path), "no repetition finished within 60 s"
        started = greeter_pids() - before
        assert started, "perfgate's greeter is not running"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == EXIT_TERMINATED, stderr
    assert "terminated (SIGTERM)" in stderr
    assert not (started & greeter_pids()), "the service outlived perfgate"
    record = json.loads(record_path.read_text())
    assert record["complete"] is False
    assert len(record["repetitions"]) >= 1
    assert any(note.startswith("run stopped early") for note in record["notes"])


def _finished_repetitions(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["repetitions"])
    except (OSError, ValueError, KeyError):
        return 0

"""A cancelled job (SIGTERM to perfgate) stops the service perfgate started and keeps the record; a killed
perfgate (SIGKILL, where nothing of perfgate runs any more) still takes the service and bpftrace with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.greeter import base_config, free_port, greeter_argv, write_config
from support.paths import GREETER
from support.processes import pids_where

from perfgate.errors import EXIT_TERMINATED

pytestmark = pytest.mark.slow


def greeter_pids() -> set[int]:
    return pids_where(lambda proc: (proc / "exe").resolve() == GREETER.resolve())


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


def bpftrace_pids() -> set[int]:
    """bpftrace processes, whichever program they run (runqlat.bt, or the composed kernel.bt with syscalls on)."""
    return pids_where(lambda proc: (proc / "exe").resolve().name == "bpftrace")


def test_sigkill_still_takes_the_service_and_bpftrace_down(tmp_path):
    grpc, pprof = free_port(), free_port()
    config = base_config(f"127.0.0.1:{grpc}", service={"command": greeter_argv(grpc, pprof)},
                         load={"duration_s": 2.0, "warmup_s": 0, "repetitions": 30}, kernel={"enabled": True},
                         output=str(tmp_path / "out"))
    before_greeters, before_bpftrace = greeter_pids(), bpftrace_pids()
    env = {**os.environ, "PATH": f"{GREETER.parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([sys.executable, "-m", "perfgate", "run", "--baseline",  # noqa: S603
                                "--config", str(write_config(tmp_path, config))],
                               env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (bpftrace_pids() - before_bpftrace):
            time.sleep(0.2)
        started = greeter_pids() - before_greeters, bpftrace_pids() - before_bpftrace
        assert all(started), f"perfgate's greeter and bpftrace are not both running: {started}"
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (started[0] & greeter_pids() or started[1] & bpftrace_pids()):
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    left = (started[0] & greeter_pids()) | (started[1] & bpftrace_pids())
    for pid in left:  # do not leave them behind for the next test, then fail
        os.kill(pid, signal.SIGKILL)
    assert not left, "the service or bpftrace outlived a killed perfgate"


def _finished_repetitions(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["repetitions"])
    except (OSError, ValueError, KeyError):
        return 0


def test_only_resolvable_programs_from_the_main_thread_are_wrapped(tmp_path):
    import threading

    from perfgate.procs import dies_with_perfgate

    wrapped = dies_with_perfgate([str(GREETER), "-h"])
    assert wrapped[-2:] == [str(GREETER), "-h"] and "--pdeathsig" in wrapped
    assert dies_with_perfgate(["no-such-program-here"]) == ["no-such-program-here"]  # Popen names it
    assert dies_with_perfgate(["./server"], cwd=tmp_path) == ["./server"]
    seen = []
    worker = threading.Thread(target=lambda: seen.append(dies_with_perfgate([str(GREETER)])))
    worker.start()
    worker.join()
    assert seen == [[str(GREETER)]]  # the signal would fire when that thread ends

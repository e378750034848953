"""RunqCollector with the real bpftrace around real load on the real example service (root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from support.runq import requires_root, run_load

from perfgate.capture.runq import STATUS_OK, STATUS_PARTIAL, RunqCollector, parse_bpftrace_json

pytestmark = requires_root


def test_load_window_gives_machine_and_service_views(greeter, tmp_path):
    raw = tmp_path / "runq" / "rep-01.jsonl"
    collector = RunqCollector(service_comm=None, service_pids=[greeter.pid], raw_path=raw)  # by pid: the default
    collector.start()
    try:
        report = run_load(greeter.address, seconds=1.5)
        stats = collector.stop()
    finally:
        collector.close()
    assert report["statusCodeDistribution"].get("OK", 0) > 100
    assert stats.status == STATUS_OK, stats.note
    assert collector.returncode == 0
    assert stats.service is not None and stats.service.count >= 100
    assert stats.machine.count > stats.service.count
    assert stats.machine.p99_us is not None and stats.service.p99_us is not None
    assert len(stats.depth) >= 10
    assert all(s.runnable_total >= s.runnable_max >= 0 for s in stats.depth)
    assert stats.service_comm is None and stats.service_pids == (greeter.pid,)
    assert raw.read_text(encoding="utf-8").startswith('{"type": "attached_probes"')
    reparsed = parse_bpftrace_json(raw.read_text(encoding="utf-8").splitlines())
    assert reparsed.machine_buckets == stats.machine.buckets


@pytest.mark.parametrize("by", ["pid", "comm"])
def test_service_filter_excludes_other_processes(greeter, tmp_path, by):
    """By pid: another process's pid sees none of the greeter's waits. By comm: a thread name wins over pids."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # noqa: S603
    try:
        comm, pids = (None, [sleeper.pid]) if by == "pid" else ("no-such-comm", [greeter.pid])
        collector = RunqCollector(service_comm=comm, service_pids=pids, raw_path=tmp_path / "raw.jsonl")
        with collector:
            run_load(greeter.address, seconds=1.0)
    finally:
        sleeper.kill()
        sleeper.wait()
    stats = collector.stats
    assert stats is not None and stats.status == STATUS_OK
    assert stats.machine.count > 100
    assert stats.service is not None and stats.service.count == 0 and stats.service.p99_us is None


def test_context_manager_reaps_bpftrace_on_an_exception(tmp_path):
    collector = RunqCollector(service_comm=None, raw_path=tmp_path / "raw.jsonl")
    with pytest.raises(RuntimeError, match="load failed"), collector:
        pid = collector.pid
        raise RuntimeError("load failed")
    assert collector.returncode is not None  # reaped
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_killed_mid_run_keeps_the_depth_samples(greeter, tmp_path):
    """Histograms print only at marks and at the end (test_runq_windows.py kills one mid-window)."""
    raw = tmp_path / "raw.jsonl"
    collector = RunqCollector(service_comm="greeter", raw_path=raw)
    collector.start()
    try:
        run_load(greeter.address, seconds=1.3)
        os.kill(collector.pid, signal.SIGKILL)
        stats = collector.stop()
    finally:
        collector.close()
    assert stats.status == STATUS_PARTIAL
    assert stats.note.startswith("partial: bpftrace exited with -9 (killed by SIGKILL) before the end of the "
                                 "window")
    assert f"{len(stats.depth)} depth samples kept" in stats.note
    assert len(stats.depth) >= 5
    assert stats.note.endswith("histograms lost") and stats.machine.count == 0
    assert raw.stat().st_size > 0


def test_ended_by_someone_else_is_partial(tmp_path):
    collector = RunqCollector(service_comm=None, raw_path=tmp_path / "raw.jsonl")
    collector.start()
    try:
        os.kill(collector.pid, signal.SIGTERM)  # bpftrace prints its maps and exits 0 on SIGTERM
        deadline = time.monotonic() + 20
        while collector.returncode is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stats = collector.stop()
    finally:
        collector.close()
    assert stats.status == STATUS_PARTIAL
    assert stats.note.startswith("partial: bpftrace exited with 0 before the end of the window")


def test_stop_is_idempotent_and_start_twice_is_an_error(tmp_path):
    collector = RunqCollector(service_comm=None, raw_path=tmp_path / "raw.jsonl")
    with collector:
        with pytest.raises(RuntimeError):
            collector.start()
    assert collector.stop() is collector.stats

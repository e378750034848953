"""One bpftrace for a whole run, cut into load windows by marks (capture/runq_windows.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from support.greeter import base_config, write_config
from support.runq import requires_root, run_load

from perfgate.capture.runq import STATUS_OK, STATUS_PARTIAL, RunqCollector
from perfgate.capture.runq_parse import parse_bpftrace_json
from perfgate.capture.runq_stats import LatencyBucket, add_buckets, subtract_buckets
from perfgate.capture.runq_windows import find_mark, window_stats
from perfgate.cli import main
from perfgate.errors import EXIT_PASS
from perfgate.record import load_record


def hist_line(name: str, data) -> str:
    return json.dumps({"type": "hist", "data": {name: data}})


def printf(text: str) -> str:
    return json.dumps({"type": "printf", "data": text + "\n"})


def buckets(*counts: tuple[int, int, int]) -> list[dict]:
    return [{"min": low, "max": high, "count": count} for low, high, count in counts]


def test_bucket_arithmetic_keeps_bpftrace_order_and_trims_empty_ends():
    early = (LatencyBucket(2, 3, 1), LatencyBucket(4, 7, 5))
    late = (LatencyBucket(1, 1, 2), LatencyBucket(2, 3, 1), LatencyBucket(4, 7, 9), LatencyBucket(8, 15, 1))
    gained = subtract_buckets(late, early)
    assert gained == (LatencyBucket(1, 1, 2), LatencyBucket(2, 3, 0), LatencyBucket(4, 7, 4), LatencyBucket(8, 15, 1))
    assert add_buckets(gained, early) == late
    assert subtract_buckets(late, late) == ()
    with pytest.raises(ValueError, match="went down"):
        subtract_buckets(early, late)


def test_window_is_end_mark_minus_start_mark_by_slot():
    lines = [
        printf("start 2 100"),
        printf("depth 90 1 1"),
        printf("mark pgmark-1 100"),
        hist_line("@usecs", buckets((4, 7, 10))),
        hist_line("@svc_usecs", {"1": buckets((4, 7, 3)), "2": buckets((8, 15, 1))}),
        printf("marked pgmark-1"),
        printf("depth 200 3 2"),
        printf("mark pgmark-2 300"),
        hist_line("@usecs", buckets((4, 7, 15), (8, 15, 6))),
        hist_line("@svc_usecs", {"1": buckets((4, 7, 5), (8, 15, 2)), "2": buckets((8, 15, 4))}),
        printf("marked pgmark-2"),
        printf("depth 400 1 1"),
    ]
    output = parse_bpftrace_json(lines)
    assert [m.name for m in output.marks] == ["pgmark-1", "pgmark-2"] and all(m.complete for m in output.marks)
    side_one = window_stats(output, "pgmark-1", "pgmark-2", slots=frozenset({1}), depth_interval_ms=100,
                            ncpus=2, service_pids=(11,))
    assert side_one.status == STATUS_OK and side_one.window_ms == 200
    assert side_one.machine.buckets == (LatencyBucket(4, 7, 5), LatencyBucket(8, 15, 6))
    assert side_one.service.buckets == (LatencyBucket(4, 7, 2), LatencyBucket(8, 15, 2))
    assert [(s.t_ms, s.runnable_total) for s in side_one.depth] == [(100, 3)]  # rebased to the window start
    both = window_stats(output, "pgmark-1", "pgmark-2", slots=None, depth_interval_ms=100, ncpus=2,
                        service_pids=(11, 12))
    assert both.service.count == side_one.service.count + 3


def test_a_window_without_its_end_mark_is_partial_and_keeps_depth():
    lines = [printf("start 2 100"), printf("mark pgmark-1 100"), hist_line("@usecs", buckets((4, 7, 1))),
             printf("marked pgmark-1"), printf("depth 200 3 2")]
    stats = window_stats(parse_bpftrace_json(lines), "pgmark-1", "", slots=None, depth_interval_ms=100, ncpus=2,
                         problem="bpftrace exited with -9 (killed by SIGKILL) during the run")
    assert stats.status == STATUS_PARTIAL and stats.machine.count == 0 and len(stats.depth) == 1
    assert stats.note.startswith("bpftrace exited with -9") and "histograms lost" in stats.note


@requires_root
def test_ten_windows_one_bpftrace_whose_windows_and_gaps_sum_to_the_whole(greeter, tmp_path):
    whole_file = tmp_path / "runq" / "run.jsonl"
    collector = RunqCollector(service_comm=None, service_pids=[greeter.pid], raw_path=whole_file)
    collector.start()
    windows = []
    try:
        pid = collector.pid
        for index in range(1, 11):
            collector.begin_window()
            run_load(greeter.address, seconds=0.3, rps=200)
            windows.append(collector.end_window(tmp_path / "runq" / f"rep-{index:02d}.jsonl").stats())
            assert collector.pid == pid and collector.returncode is None  # the same bpftrace, still running
        whole = collector.stop()
    finally:
        collector.close()
    assert whole.status == STATUS_OK, whole.note
    for stats in windows:
        assert stats.status == STATUS_OK, stats.note
        assert stats.service.count >= 20 and stats.machine.count > stats.service.count
        assert 250 <= stats.window_ms <= 5000 and len(stats.depth) >= 2
        assert all(0 <= sample.t_ms <= stats.window_ms for sample in stats.depth)
    output = parse_bpftrace_json(whole_file.read_text(encoding="utf-8").splitlines())
    marks = output.marks
    assert [m.name for m in marks] == [f"pgmark-{i}" for i in range(1, 21)]
    # between windows: before the first mark, between an end and the next start, after the last mark
    gaps = [marks[0].machine] + [subtract_buckets(marks[i + 1].machine, marks[i].machine) for i in range(1, 19, 2)]
    gaps.append(subtract_buckets(output.machine_buckets, marks[-1].machine))
    assert add_buckets(*(w.machine.buckets for w in windows), *gaps) == output.machine_buckets
    service_gaps = [marks[0].service_buckets()] + [
        subtract_buckets(marks[i + 1].service_buckets(), marks[i].service_buckets()) for i in range(1, 19, 2)]
    service_gaps.append(subtract_buckets(output.service_buckets, marks[-1].service_buckets()))
    assert add_buckets(*(w.service.buckets for w in windows), *service_gaps) == output.service_buckets
    # each window's own file re-parses to the same figures
    again = parse_bpftrace_json((tmp_path / "runq" / "rep-04.jsonl").read_text(encoding="utf-8").splitlines())
    assert find_mark(again, "pgmark-7") is not None and find_mark(again, "pgmark-8") is not None
    reparsed = window_stats(again, "pgmark-7", "pgmark-8", slots=None, depth_interval_ms=100, ncpus=whole.ncpus,
                            service_pids=(greeter.pid,))
    assert reparsed.machine == windows[3].machine and reparsed.service == windows[3].service


@requires_root
def test_each_side_gets_its_own_service_histogram(greeter, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # noqa: S603
    try:
        collector = RunqCollector(service_comm=None, service_pids=[greeter.pid, sleeper.pid],
                                  raw_path=tmp_path / "run.jsonl")
        with collector:
            collector.begin_window()
            run_load(greeter.address, seconds=0.5)
            loaded = collector.end_window(tmp_path / "a.jsonl").stats([greeter.pid])
            collector.begin_window()
            run_load(greeter.address, seconds=0.5)
            window = collector.end_window(tmp_path / "b.jsonl")
            idle, both = window.stats([sleeper.pid]), window.stats()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert loaded.service.count >= 50 and idle.service.count <= 2 and both.service.count > idle.service.count
    assert loaded.service_pids == (greeter.pid,) and idle.service_pids == (sleeper.pid,)


@requires_root
def test_bpftrace_killed_mid_window_gives_a_partial_window_that_says_why(greeter, tmp_path):
    collector = RunqCollector(service_comm="greeter", raw_path=tmp_path / "run.jsonl")
    collector.start()
    try:
        collector.begin_window()
        run_load(greeter.address, seconds=0.6)
        os.kill(collector.pid, signal.SIGKILL)
        collector._process.wait(timeout=10)
        stats = collector.end_window(tmp_path / "rep-01.jsonl").stats()
    finally:
        collector.close()
    assert stats.status == STATUS_PARTIAL and stats.machine.count == 0
    assert "killed by SIGKILL" in stats.note and "histograms lost" in stats.note and len(stats.depth) >= 3
    collector.begin_window()  # the next repetition: bpftrace is gone, and its window says so
    later = collector.end_window(tmp_path / "rep-02.jsonl").stats()
    assert later.status == STATUS_PARTIAL and "killed by SIGKILL" in later.note and later.machine.count == 0


@requires_root
def test_a_ten_repetition_run_attaches_one_bpftrace_whose_windows_and_gaps_sum_to_the_whole(greeter, tmp_path):
    """`perfgate run`: bpftrace attached once before the warm-up; every repetition is a window of it."""
    config = base_config(greeter.address, kernel={"enabled": True, "required": True, "service_pids": [greeter.pid]},
                         load={"concurrency": 2, "duration_s": 0.4, "warmup_s": 0.3, "repetitions": 10, "rps": 200})
    assert main(["run", "--baseline", "--config", str(write_config(tmp_path, config)), "--out",
                 str(tmp_path / "out")]) == EXIT_PASS
    record = load_record(tmp_path / "out" / "baseline")
    whole_file = record.file("runq/run.jsonl")
    lines = whole_file.read_text(encoding="utf-8").splitlines()
    assert sum('"attached_probes"' in line for line in lines) == 1  # one bpftrace for all ten windows
    assert not list(record.file("runq").glob("rep-*.run.jsonl"))
    output = parse_bpftrace_json(lines)
    marks = output.marks
    assert [m.name for m in marks] == [f"pgmark-{i}" for i in range(1, 21)] and output.ended
    stats = [rep.runq.stats for rep in record.repetitions]
    assert [rep.runq.status for rep in record.repetitions] == ["ok"] * 10
    assert all(s.service.count > 0 and s.service_pids == (greeter.pid,) for s in stats)
    gaps = [marks[0].machine] + [subtract_buckets(marks[i + 1].machine, marks[i].machine) for i in range(1, 19, 2)]
    gaps.append(subtract_buckets(output.machine_buckets, marks[-1].machine))
    assert add_buckets(*(s.machine.buckets for s in stats), *gaps) == output.machine_buckets
    for rep in record.repetitions:  # each window's own file holds its two marks
        window = parse_bpftrace_json(record.file(rep.runq.file).read_text(encoding="utf-8").splitlines())
        assert [m.name for m in window.marks] == [f"pgmark-{2 * rep.index - 1}", f"pgmark-{2 * rep.index}"]
    assert all(rep.latency_file and record.file(rep.latency_file).exists() for rep in record.repetitions)

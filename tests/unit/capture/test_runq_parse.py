"""Parsing real bpftrace output recorded by tests/data/runq/record_runq_outputs.py (no root needed)."""

from __future__ import annotations

import json

import pytest
from support.paths import TEST_DATA

from perfgate.capture.runq_parse import (
    clean_stderr,
    describe_exit,
    parse_bpftrace_json,
    parse_hist_buckets,
    stats_from_output,
)
from perfgate.capture.runq_stats import STATUS_OK, STATUS_PARTIAL, LatencyBucket, RunqStats

DATA = TEST_DATA / "runq"
META = json.loads((DATA / "meta.json").read_text(encoding="utf-8"))


def lines(name: str) -> list[str]:
    return (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def stats_of(name: str, **overrides) -> RunqStats:
    meta = META[name]
    arguments = {"returncode": meta["returncode"], "depth_interval_ms": 100, "ncpus": 2,
                 "service_comm": meta["service_comm"], "service_pids": (meta["service_pid"],)}
    return stats_from_output(parse_bpftrace_json(lines(name)), **{**arguments, **overrides})


def raw_hists(name: str, map_name: str) -> list[list[dict]]:
    found = []
    for line in lines(name):
        if line.strip():
            message = json.loads(line)
            if message["type"] == "hist" and map_name in message["data"]:
                found.append(message["data"][map_name])
    return found


def test_clean_run_parses_every_line_into_ok_stats():
    output = parse_bpftrace_json(lines("greeter_ok"))
    assert output.skipped_lines == ()
    assert output.attached_probes == 8
    assert output.started and output.ended
    assert (output.start_ncpus, output.start_depth_interval_ms) == (2, 100)
    stats = stats_of("greeter_ok")
    assert stats.status == STATUS_OK and stats.note == ""
    assert stats.window_ms == output.end_ms
    assert stats.service is not None
    assert 0 < stats.service.count < stats.machine.count


def test_histograms_are_the_final_print_not_a_snapshot():
    stats = stats_of("greeter_ok")
    final_machine = raw_hists("greeter_ok", "@usecs")[-1]
    assert stats.machine.count == sum(bucket["count"] for bucket in final_machine)
    assert len(raw_hists("greeter_ok", "@usecs")) == 3  # two snapshots, then the final print
    snapshot_total = sum(bucket["count"] for bucket in raw_hists("greeter_ok", "@usecs")[0])
    assert stats.machine.count > snapshot_total


def test_log2_buckets_and_quantiles_from_real_output():
    stats = stats_of("greeter_ok")
    for bucket in stats.machine.buckets:
        assert bucket.low_us is not None and bucket.high_us is not None
        assert bucket.low_us in (0, 1) or bucket.high_us == 2 * bucket.low_us - 1
    p50, p90, p99 = stats.machine.p50_us, stats.machine.p90_us, stats.machine.p99_us
    assert p50 is not None and p90 is not None and p99 is not None
    assert 0 < p50 <= p90 <= p99
    holding = next(b for b in stats.machine.buckets if b.low_us <= p99 < b.high_us + 1)
    assert holding.count > 0


def test_depth_samples_come_every_interval():
    stats = stats_of("greeter_ok")
    times = [sample.t_ms for sample in stats.depth]
    assert len(times) >= 15
    gaps = {later - earlier for earlier, later in zip(times, times[1:], strict=False)}
    assert gaps <= {99, 100, 101}
    assert all(s.runnable_total >= s.runnable_max >= 0 for s in stats.depth)
    assert stats.depth_max_series == tuple(s.runnable_max for s in stats.depth)


def test_pid_only_filter_still_gives_a_service_histogram():
    stats = stats_of("pid_filter_only")
    assert stats.service_comm is None
    assert stats.service is not None and stats.service.count > 0


def test_no_filter_means_no_service_scope():
    stats = stats_of("greeter_ok", service_comm=None, service_pids=())
    assert stats.service is None
    assert stats.runq_p99_us("service") is None
    assert stats.runq_p99_us("machine") == stats.machine.p99_us


def test_killed_mid_window_keeps_depth_and_last_snapshot():
    output = parse_bpftrace_json(lines("killed_mid"))
    assert not output.ended and output.last_snapshot_ms is not None
    stats = stats_of("killed_mid")
    assert stats.status == STATUS_PARTIAL
    assert "bpftrace exited with -9 (killed by SIGKILL) before the end of the window" in stats.note
    assert f"{len(stats.depth)} depth samples kept" in stats.note
    assert f"histograms up to {output.last_snapshot_ms / 1000:.1f} s kept" in stats.note
    assert stats.machine.count == sum(b["count"] for b in raw_hists("killed_mid", "@usecs")[-1])
    assert stats.window_ms == stats.depth[-1].t_ms


def test_killed_before_first_snapshot_loses_histograms_only():
    stats = stats_of("killed_early")
    assert stats.status == STATUS_PARTIAL
    assert stats.note.endswith("histograms lost")
    assert len(stats.depth) >= 1 and stats.machine.count == 0 and stats.machine.p99_us is None


def test_a_line_cut_by_the_kill_is_skipped_not_fatal():
    recorded = lines("killed_mid")
    cut = recorded[:-1] + [recorded[-1][: len(recorded[-1]) // 2]]
    output = parse_bpftrace_json(cut)
    assert len(output.skipped_lines) == 1
    assert len(output.depth) == len(parse_bpftrace_json(recorded).depth) - 1


def test_clean_exit_with_nonzero_code_is_partial():
    stats = stats_of("greeter_ok", returncode=1)
    assert stats.status == STATUS_PARTIAL
    assert stats.note.startswith("partial: bpftrace exited with 1;")
    assert "histograms kept" in stats.note


def test_ended_by_someone_else_is_partial():
    stats = stats_of("greeter_ok", exited_early=True)
    assert stats.status == STATUS_PARTIAL
    assert "before the end of the window" in stats.note


def test_hist_lhist_and_map_shapes():
    output = parse_bpftrace_json(lines("shapes"))
    assert output.skipped_lines == ()
    assert output.machine_buckets[0] == LatencyBucket(None, -1, 1)  # a negative value: no min
    assert output.machine_buckets[1] == LatencyBucket(0, 0, 1)
    assert output.machine_buckets[2] == LatencyBucket(1, 1, 1)
    assert output.service_buckets[0] == LatencyBucket(None, 9, 1)  # lhist underflow
    assert output.service_buckets[-1] == LatencyBucket(50, None, 1)  # lhist overflow
    extra = dict(output.extra_maps)
    assert extra["@m"] == {"a b": 1, 'x"y': 1}
    assert extra["@c"] == 1
    assert extra["@s"] == {"count": 2, "average": 6, "total": 12}
    assert extra["@kh"] == {"k1": [{"min": 2, "max": 3, "count": 1}]}


def test_quantiles_on_open_buckets_use_the_known_bound():
    output = parse_bpftrace_json(lines("shapes"))
    stats = stats_from_output(output, returncode=0, depth_interval_ms=100, ncpus=2, service_comm="x")
    assert stats.service is not None
    assert stats.service.count == 4
    assert stats.service.p99_us == 50.0  # the overflow bucket: only its lower bound is known
    assert stats.machine.p50_us == pytest.approx(2**0.5)  # rank 2.5 of 5, halfway through [1, 2) in log


def test_parse_hist_buckets_rejects_negative_counts():
    with pytest.raises(ValueError):
        parse_hist_buckets([{"min": 1, "max": 1, "count": -1}])


def test_stderr_memlock_noise_is_dropped():
    recorded = (DATA / "greeter_ok.stderr").read_text(encoding="utf-8").splitlines()
    assert any("couldn't set RLIMIT_MEMLOCK" in line for line in recorded)
    assert clean_stderr(recorded) == ""
    assert clean_stderr([*recorded, "ERROR: tracepoint not found: sched:nope"]) == \
        "ERROR: tracepoint not found: sched:nope"


def test_describe_exit():
    assert describe_exit(0) == "exited with 0"
    assert describe_exit(-15) == "exited with -15 (killed by SIGTERM)"
    assert describe_exit(None) == "did not exit"

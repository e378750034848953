"""RunqStats: the quantile estimator, the JSON round trip, and the rule helpers the gate uses."""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.paths import TEST_DATA

from perfgate.capture.runq_parse import parse_bpftrace_json, stats_from_output
from perfgate.capture.runq_stats import (
    DepthSample,
    LatencyBucket,
    RunqLatency,
    RunqStats,
    depth_violation,
    longest_run_above,
    quantile_from_buckets,
)
from perfgate.compare.contention import runq_contention
from perfgate.config import load_config

DATA = TEST_DATA / "runq"


def recorded(name: str, returncode: int = 0) -> RunqStats:
    lines = (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return stats_from_output(parse_bpftrace_json(lines), returncode=returncode, depth_interval_ms=100,
                             ncpus=2, service_comm="greeter", service_pids=(4242,))


LOG2_BOUNDS = [(0, 0), (1, 1)] + [(2**k, 2 ** (k + 1) - 1) for k in range(1, 30)]


def log2_buckets(counts: list[int]) -> tuple[LatencyBucket, ...]:
    """bpftrace's hist() layout: [0,0], [1,1], [2,3], [4,7], ..."""
    pairs = zip(LOG2_BOUNDS, counts, strict=False)
    return tuple(LatencyBucket(low, high, count) for (low, high), count in pairs)


def with_depth(series: list[int], interval_ms: int = 100) -> RunqStats:
    depth = tuple(DepthSample(interval_ms * (i + 1), value * 2, value) for i, value in enumerate(series))
    return RunqStats(status="ok", note="", machine=RunqLatency(), service=None, depth=depth,
                     depth_interval_ms=interval_ms, ncpus=2)


def with_p99(p99_bucket_low: int) -> RunqStats:
    """Stats whose machine p99 lies in the log2 bucket starting at p99_bucket_low."""
    return RunqStats(status="ok", note="", service=None, depth=(), depth_interval_ms=100, ncpus=2,
                     machine=RunqLatency((LatencyBucket(p99_bucket_low, 2 * p99_bucket_low - 1, 100),)))


# ---------------------------------------------------------------- the estimator


def test_interpolates_log_linearly_inside_the_bucket_holding_the_rank():
    buckets = (LatencyBucket(4, 7, 50), LatencyBucket(8, 15, 50))
    assert quantile_from_buckets(buckets, 0.5) == 8.0  # rank 50 = the end of [4, 8)
    assert quantile_from_buckets(buckets, 0.75) == pytest.approx(8 * 2**0.5)  # halfway through [8, 16) in log
    assert quantile_from_buckets(buckets, 0.99) == pytest.approx(8 * 2 ** (49 / 50))
    assert quantile_from_buckets(buckets, 1.0) == 16.0
    assert quantile_from_buckets(buckets, 0.0) == 4.0


def test_lognormal_p99_estimate_beats_the_bucket_edge():
    """The reason for the estimator (docs/statistics.md): simulated lognormal latencies, fixed seed."""
    rng = random.Random(7)
    for median_us, sigma in ((15, 1.2), (300, 1.5)):
        errors, edge_errors = [], []
        for _ in range(20):
            values = sorted(int(rng.lognormvariate(math.log(median_us), sigma)) for _ in range(5000))
            true_p99 = values[int(0.99 * len(values))]
            buckets = log2_buckets([sum(1 for v in values if low <= v <= high) for low, high in LOG2_BOUNDS])
            estimate = quantile_from_buckets(buckets, 0.99)
            holding = next(b for b in buckets if b.low_us <= estimate <= b.high_us + 1)
            errors.append(abs(estimate / true_p99 - 1))
            edge_errors.append(abs((holding.high_us + 1) / true_p99 - 1))
        assert statistics.median(errors) < 0.15
        assert statistics.median(errors) < statistics.median(edge_errors)


def test_empty_histogram_has_no_quantiles():
    assert quantile_from_buckets((), 0.99) is None
    assert quantile_from_buckets((LatencyBucket(4, 7, 0),), 0.5) is None
    assert RunqLatency().p99_us is None and RunqLatency().count == 0


def test_zero_bucket_stays_zero():
    assert quantile_from_buckets((LatencyBucket(0, 0, 10), LatencyBucket(1, 1, 0)), 0.9) == 0.0 + 0.9


def test_quantile_out_of_range_is_an_error():
    with pytest.raises(ValueError):
        quantile_from_buckets((LatencyBucket(1, 1, 1),), 1.5)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=20).filter(any),
       st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_estimate_is_monotone_and_inside_the_holding_bucket(counts, q1, q2):
    buckets = log2_buckets(counts)
    low_q, high_q = sorted((q1, q2))
    low, high = quantile_from_buckets(buckets, low_q), quantile_from_buckets(buckets, high_q)
    assert low is not None and high is not None and low <= high
    occupied = [b for b in buckets if b.count]
    assert occupied[0].low_us <= low <= occupied[-1].high_us + 1


# ---------------------------------------------------------------- serialisation


def test_to_dict_is_json_and_round_trips():
    for name, returncode in (("greeter_ok", 0), ("killed_mid", -9)):
        stats = recorded(name, returncode)
        data = json.loads(json.dumps(stats.to_dict()))
        assert RunqStats.from_dict(data) == stats
        assert data["machine"]["p99_us"] == stats.machine.p99_us
        assert data["machine"]["count"] == stats.machine.count
        assert len(data["depth"]["t_ms"]) == len(stats.depth)


def test_to_dict_shape():
    data = recorded("greeter_ok").to_dict()
    assert set(data) == {"status", "note", "machine", "service", "depth", "lost_events", "window_ms",
                         "service_comm", "service_pids"}
    assert set(data["machine"]) == {"buckets", "count", "p50_us", "p90_us", "p99_us"}
    assert set(data["machine"]["buckets"][0]) == {"low_us", "high_us", "count"}
    assert set(data["depth"]) == {"interval_ms", "ncpus", "t_ms", "runnable_total", "runnable_max"}


def test_from_dict_rejects_broken_data():
    data = recorded("greeter_ok").to_dict()
    with pytest.raises(ValueError):
        RunqStats.from_dict({**data, "status": "great"})
    with pytest.raises(ValueError):
        RunqStats.from_dict({**data, "depth": {**data["depth"], "t_ms": data["depth"]["t_ms"][:-1]}})
    with pytest.raises(ValueError):
        RunqStats.from_dict({key: value for key, value in data.items() if key != "machine"})


# ---------------------------------------------------------------- rules


def test_longest_run_above():
    assert longest_run_above([], 5) == 0
    assert longest_run_above([6, 6, 5, 7, 8, 9, 1], 5) == 3
    assert longest_run_above([5, 5, 5], 5) == 0  # strictly above
    assert longest_run_above([9] * 4, 5) == 4


def test_depth_violation_reports_the_longest_run_as_evidence():
    stats = with_depth([1, 6, 7, 2, 6, 9, 8, 7, 1])
    violation = depth_violation(stats, max_depth=5, consecutive=3)
    assert violation is not None
    assert (violation.longest_run, violation.peak_depth) == (4, 9)
    assert (violation.start_ms, violation.end_ms) == (500, 800)
    assert "above 5 for 4 consecutive samples" in violation.message
    assert depth_violation(stats, max_depth=5, consecutive=5) is None
    assert depth_violation(stats, max_depth=9, consecutive=1) is None
    assert depth_violation(with_depth([]), max_depth=5, consecutive=3) is None


def test_depth_violation_at_the_end_of_the_series():
    violation = depth_violation(with_depth([1, 6, 6, 6]), max_depth=5, consecutive=3)
    assert violation is not None and violation.end_ms == 400


LIMITS = load_config(None, environ={}, require_target=False).compare.contention


def test_machine_p99_contention_in_both_directions():
    base, cand = runq_contention([with_p99(64)] * 3, [with_p99(1024)] * 3, LIMITS)
    assert base is None and cand is not None
    assert cand.startswith("machine-wide run-queue p99 ") and ", x16.0 the baseline's " in cand
    base, cand = runq_contention([with_p99(1024)] * 3, [with_p99(64)] * 3, LIMITS)  # the baseline's runner
    assert cand is None and base is not None and "the candidate's" in base


def test_machine_p99_quiet_and_absolute_limit():
    assert runq_contention([with_p99(64)], [with_p99(128)], LIMITS) == (None, None)  # x2 is within x3
    absolute = replace(LIMITS, max_runq_p99_us=200)  # about 127 µs and 255 µs
    base, cand = runq_contention([with_p99(64)], [with_p99(128)], absolute)
    assert base is None and cand is not None and "(limit 200 µs)" in cand


def test_machine_p99_without_data():
    assert runq_contention([], [with_p99(64)], LIMITS) == (None, None)
    base, cand = runq_contention([], [with_p99(1024)], replace(LIMITS, max_runq_p99_us=1000))
    assert base is None and cand is not None
    assert runq_contention([with_p99(64)], [replace(with_p99(64), machine=RunqLatency())], LIMITS) == (None, None)

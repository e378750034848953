"""The run queue on a contended runner, for real: the example service under load, with and without CPU hogs."""

from __future__ import annotations

import os

import pytest
from support.runq import cpu_hogs, requires_root, run_load

from perfgate.capture.runq import STATUS_OK, RunqCollector, RunqStats
from perfgate.capture.runq_stats import MACHINE, P99_FLOOR_US, depth_violation

pytestmark = [requires_root, pytest.mark.slow]
HOGS = 3 * (os.cpu_count() or 2)  # three busy loops per CPU: every runnable task waits several time slices


def measure(greeter, folder, name: str) -> RunqStats:
    collector = RunqCollector(service_comm="greeter", service_pids=[greeter.pid],
                              raw_path=folder / f"{name}.jsonl")
    with collector:
        run_load(greeter.address, seconds=2.0, rps=300, concurrency=2)
    assert collector.stats is not None and collector.stats.status == STATUS_OK, collector.stats
    return collector.stats


def test_cpu_hogs_raise_machine_runq_p99_by_a_large_factor(greeter, tmp_path):
    quiet = measure(greeter, tmp_path, "quiet")
    with cpu_hogs(HOGS):
        contended = measure(greeter, tmp_path, "contended")

    quiet_p99, contended_p99 = quiet.runq_p99_us(MACHINE), contended.runq_p99_us(MACHINE)
    ratio = contended_p99 / max(quiet_p99, P99_FLOOR_US)
    print(f"machine runq p99 {contended_p99:.0f} µs vs {quiet_p99:.0f} µs quiet, x{ratio:.1f}")
    assert ratio > 3.0, (quiet_p99, contended_p99)
    # The hogs also show up as a deep run queue: HOGS busy loops on os.cpu_count() CPUs.
    assert max(contended.depth_max_series) > max(quiet.depth_max_series)
    assert depth_violation(contended, max_depth=2, consecutive=3) is not None

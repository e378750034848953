"""The run queue on a contended runner, for real: the example service under load, with and without CPU hogs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from support.runq import cpu_hogs, requires_root, run_load

from perfgate.capture.cgroup import cpu_group
from perfgate.capture.runq import STATUS_OK, RunqCollector, RunqStats
from perfgate.capture.runq_stats import depth_violation
from perfgate.compare.contention import runq_contention
from perfgate.config import load_config

pytestmark = [requires_root, pytest.mark.slow]
HOGS = 3 * (os.cpu_count() or 2)  # three busy loops per CPU: every runnable task waits several time slices


def measure(greeter, folder, name: str, beside=contextlib.nullcontext) -> RunqStats:
    """One load window; `beside()` is entered once bpftrace is attached (hogs would slow its start)."""
    collector = RunqCollector(service_comm="greeter", service_pids=[greeter.pid],
                              raw_path=folder / f"{name}.jsonl")
    with collector, beside():
        run_load(greeter.address, seconds=2.0, rps=300, concurrency=2)
    assert collector.stats is not None and collector.stats.status == STATUS_OK, collector.stats
    return collector.stats


def test_cpu_hogs_raise_machine_runq_p99_by_a_large_factor(greeter, tmp_path):
    quiet = measure(greeter, tmp_path, "quiet")
    @contextlib.contextmanager
    def hogs() -> Iterator[None]:
        # in a cgroup of high weight the hogs outweigh whatever else already runs on a shared test machine
        with cpu_hogs(HOGS) as processes, cpu_group([hog.pid for hog in processes], weight=10_000):
            yield

    contended = measure(greeter, tmp_path, "contended", hogs)

    limits = load_config(None, environ={}, require_target=False).compare.contention
    base, cand = runq_contention([quiet], [contended], limits)
    print(cand)
    assert base is None and cand is not None, (quiet.runq_p99_us(), contended.runq_p99_us())
    assert cand.startswith("machine-wide run-queue p99 ") and "the baseline's" in cand
    assert contended.runq_p99_us() > 3 * quiet.runq_p99_us()

    # The same runs read the other way round: now the baseline is the contended one.
    base, cand = runq_contention([contended], [quiet], limits)
    assert cand is None and base is not None
    # The hogs also show up as a deep run queue: HOGS busy loops on os.cpu_count() CPUs.
    assert max(contended.depth_max_series) > max(quiet.depth_max_series)
    assert depth_violation(contended, max_depth=2, consecutive=3) is not None

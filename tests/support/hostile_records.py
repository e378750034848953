"""Run records written to disk by the tests, with real pprof profiles, for the hostile-input tests.

`write_record` saves a record through perfgate's own RunRecord.save, with one CPU profile per
repetition built by SyntheticProfile from {function name: CPU ns}; a test then edits record.json or
the files to make the record hostile.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

from perfgate.load.sample import LoadSample
from perfgate.record import Environment, RunRecord
from perfgate.record_parts import CpuCapture, Repetition, RunqCapture
from support.pprof import SyntheticProfile

ENV = Environment(kernel="6.1", cpu_model="cpu", nproc=2, os="Debian", python="3.11", ghz_version="v0.121.0")
CALLS = 5000
WINDOW_NS = 5 * 10**9


def load_sample(p95_ms: float) -> LoadSample:
    return LoadSample(count=CALLS, ok_count=CALLS, rps=CALLS / 5, total_ns=WINDOW_NS, average_ns=10**6,
                      fastest_ns=10**5, slowest_ns=10**8, p50_ns=int(p95_ms * 5e5), p90_ns=int(p95_ms * 9e5),
                      p95_ns=int(p95_ms * 1e6), p99_ns=int(p95_ms * 1.5e6),
                      status_counts=MappingProxyType({"OK": CALLS}), error_counts=MappingProxyType({}),
                      end_reason="timeout")


def write_profile(path: Path, cpu_ns: dict[str, int]) -> int:
    profile = SyntheticProfile(duration_ns=4 * 10**9)
    for name, ns in cpu_ns.items():
        profile.sample([profile.location(name, "main.main")], [ns // 10_000_000, ns])
    path.parent.mkdir(parents=True, exist_ok=True)
    profile.write(path)
    return sum(cpu_ns.values())


def write_record(folder: Path, role: str, profiles: list[dict[str, int]], *, p95_ms: float = 10.0) -> Path:
    reps = []
    for index, cpu_ns in enumerate(profiles, 1):
        name = f"cpu/rep-{index:02d}.pb.gz"
        total = write_profile(folder / name, cpu_ns)
        reps.append(Repetition(
            index=index, started_at="2026-01-01T00:00:00+00:00", ended_at="2026-01-01T00:00:05+00:00",
            load=load_sample(p95_ms + 0.01 * index), load_file=None,
            cpu=CpuCapture(status="ok", file=name, total_cpu_ns=total, duration_ns=4 * 10**9),
            runq=RunqCapture(status="disabled")))
    record = RunRecord(role=role, created_at=f"2026-01-01T00:00:0{len(role) % 10}+00:00",
                       config_digest="sha256:test", target={"address": "127.0.0.1:1", "call": "a.B/C"},
                       load_settings={"repetitions": len(reps)}, environment=ENV, repetitions=tuple(reps),
                       complete=True)
    record.save(folder)
    return folder


def edit_record(folder: Path, change: Any) -> None:
    """Apply `change(data)` to record.json in place."""
    path = folder / "record.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))

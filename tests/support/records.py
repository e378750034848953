"""Run records built in memory: a side with given per-repetition p95s (and CPU per request); one full sample."""

from __future__ import annotations

from types import MappingProxyType

from perfgate.load.sample import LoadSample
from perfgate.record import Environment, RunRecord
from perfgate.record_parts import CpuCapture, Repetition, RunqCapture

ENV = Environment(kernel="6.1", cpu_model="cpu", nproc=2, os="Debian", python="3.11", ghz_version="v0.121.0")


def record(role: str, p95_ms: list[float], *, rps: float = 1000.0, errors: int = 0,
           cpu_us: list[float] | None = None, env: Environment = ENV) -> RunRecord:
    reps = []
    for index, p95 in enumerate(p95_ms, 1):
        ok = 1000 - errors
        load = LoadSample(count=1000, ok_count=ok, rps=rps, total_ns=int(1e9 * 1000 / rps), average_ns=10**6,
                          fastest_ns=10**5, slowest_ns=10**8, p50_ns=int(p95 * 5e5), p90_ns=int(p95 * 9e5),
                          p95_ns=int(p95 * 1e6), p99_ns=int(p95 * 1.5e6),
                          status_counts=MappingProxyType({"OK": ok, "Unavailable": errors} if errors else {"OK": ok}),
                          error_counts=MappingProxyType({}), end_reason="timeout")
        service_cpu = int(cpu_us[index - 1] * 1e3 * ok) if cpu_us else None
        reps.append(Repetition(index=index, started_at="t", ended_at="t", load=load, load_file=None,
                               cpu=CpuCapture(status="disabled"), runq=RunqCapture(status="disabled"),
                               service_cpu_ns=service_cpu))
    return RunRecord(role=role, created_at="t", config_digest="d", target={}, load_settings={}, environment=env,
                     repetitions=tuple(reps), complete=True)


def sample_record() -> RunRecord:
    load = LoadSample(count=100, ok_count=99, rps=50.5, total_ns=2_000_000_000, average_ns=1_000_000,
                      fastest_ns=500_000, slowest_ns=9_000_000, p50_ns=900_000, p90_ns=1_500_000,
                      p95_ns=2_000_000, p99_ns=5_000_000,
                      status_counts=MappingProxyType({"OK": 99, "Unavailable": 1}),
                      error_counts=MappingProxyType({"rpc error: code = Unavailable": 1}), end_reason="timeout")
    rep = Repetition(index=1, started_at="2026-01-01T00:00:00.000+00:00", ended_at="2026-01-01T00:00:02.000+00:00",
                     load=load, load_file="load/rep-01.json",
                     cpu=CpuCapture(status="ok", file="cpu/rep-01.pb.gz", total_cpu_ns=123, duration_ns=10**9),
                     runq=RunqCapture(status="unavailable", reason="kernel view unavailable: test"))
    env = Environment(kernel="6.1", cpu_model="cpu", nproc=2, os="Debian", python="3.11", ghz_version="v0.121.0")
    return RunRecord(role="baseline", created_at="2026-01-01T00:00:00+00:00", config_digest="sha256:x",
                     target={"address": "127.0.0.1:1", "call": "a.B/C"}, load_settings={"repetitions": 1},
                     environment=env, repetitions=(rep,), complete=True, notes=("a note",))

"""The verdict's system calls and GC: records whose windows hold a real window's figures of the example
service (tests/data/syscalls: one greeter without knobs, one with -regress-syscall-read 2ms), compared
through the gate; the rules, the named call, the report section and the notes when a side lacks them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support.paths import TEST_DATA
from support.records import record

from perfgate.capture.runq_parse import parse_bpftrace_json
from perfgate.capture.syscalls import SyscallStats, window_syscalls
from perfgate.compare.inputs import load_inputs
from perfgate.config import load_config
from perfgate.gate import decide
from perfgate.record import RunRecord
from perfgate.record_parts import GcCapture, SyscallCapture
from perfgate.report.markdown import render_markdown
from perfgate.report.pushgateway import exposition
from perfgate.verdict import Verdict

DATA = TEST_DATA / "syscalls"
META = json.loads((DATA / "meta.json").read_text())["two_greeters"]
WINDOW = parse_bpftrace_json((DATA / "two_greeters.jsonl").read_text().splitlines())
N = 6
GATES = [{"metric": "syscall_time_per_request", "max_increase_pct": 20},
         {"metric": "syscall.p99", "pattern": "read", "max_value": 1},
         {"metric": "gc_pause_per_1k_requests", "max_increase_pct": 50}]


def stats(name: str) -> SyscallStats:
    found = window_syscalls(WINDOW, "pgmark-1", "pgmark-2", slots=frozenset({META["slots"][name]}), machine="x86_64")
    assert isinstance(found, SyscallStats)
    return found


def side(role: str, name: str, *, gc_cycles: int = 12, syscalls: bool = True) -> RunRecord:
    """N windows of the same real figures over slightly different call counts (a spread between windows)."""
    base = record(role, [10.0] * N)
    calls = META["ok_calls"][name]
    reps = []
    for i, rep in enumerate(base.repetitions):
        ok = calls + i - N // 2
        load = replace(rep.load, count=ok, ok_count=ok, status_counts={"OK": ok})
        capture = SyscallCapture(status="ok", file=None, stats=stats(name)) if syscalls else SyscallCapture(
            status="unavailable", reason="system calls unavailable: kernel view unavailable: not root")
        reps.append(replace(rep, load=load, syscalls=capture,
                            gc=GcCapture(status="ok", source="gctrace", cycles=gc_cycles + i % 2,
                                         pause_ns=(gc_cycles + i % 2) * 100_000, cpu_ns=0)))
    return replace(base, repetitions=tuple(reps), load_settings={"pairing_id": "p", "schedule": "duet"})


def gate(baseline: RunRecord, candidate: RunRecord) -> Verdict:
    config = load_config(None, environ={}, set_args=[f"gates={GATES}"], require_target=False)
    return decide(load_inputs(baseline, candidate), config, created_at="now")


def test_the_blocking_read_fails_and_read_is_named_first():
    verdict = gate(side("baseline", "plain"), side("candidate", "knob"))
    outcomes = {rule.metric: rule.outcome for rule in verdict.rules}
    assert outcomes == {"syscall_time_per_request": "FAIL", "syscall.p99": "FAIL", "gc_pause_per_1k_requests": "PASS"}
    view = verdict.syscalls
    assert view.available and view.named[0].name == "read"
    read = view.named[0]
    assert read.candidate_p99_us >= 2000 > 1000 > read.baseline_p99_us
    assert all(m.name not in ("futex", "epoll_pwait", "nanosleep") for m in view.moves)  # waits are apart
    assert view.candidate_wait_us > 0 and verdict.gc.available and verdict.gc.candidate_source == "gctrace"
    names = {m.name for m in verdict.metrics}
    assert {"syscall_time_per_request", "gc_cycles_per_1k_requests", "gc_pause_per_1k_requests"} <= names
    report = render_markdown(verdict)
    assert "<summary>System calls and GC</summary>" in report and "<code>read()</code>" in report
    assert "Significant (Welch" in report and ": read" in report


def test_the_same_figures_on_both_sides_name_nothing():
    verdict = gate(side("baseline", "knob"), side("candidate", "knob"))
    assert {rule.metric: rule.outcome for rule in verdict.rules}["syscall_time_per_request"] == "PASS"
    assert verdict.syscalls.available and verdict.syscalls.named == ()
    assert "No call's time per request rose significantly" in render_markdown(verdict)


def test_a_side_without_syscalls_is_a_note_and_its_rules_skip():
    verdict = gate(side("baseline", "plain", syscalls=False), side("candidate", "knob"))
    assert not verdict.syscalls.available
    assert "baseline: system calls unavailable: kernel view unavailable: not root" in verdict.syscalls.reason
    assert any(note.startswith("system calls not compared: baseline:") for note in verdict.notes)
    assert "System calls not compared: baseline:" in render_markdown(verdict)
    outcomes = {rule.metric: rule.outcome for rule in verdict.rules}
    assert outcomes["syscall_time_per_request"] == "SKIP"  # nothing to compare the candidate with
    assert outcomes["syscall.p99"] == "FAIL"  # an absolute limit needs only the candidate


def test_verdict_round_trips_with_its_syscall_and_gc_views(tmp_path):
    verdict = gate(side("baseline", "plain"), side("candidate", "knob"))
    assert Verdict.load(verdict.save(tmp_path)) == verdict


def test_the_pushgateway_gets_syscall_time_and_gc_in_base_units():
    verdict = gate(side("baseline", "plain"), side("candidate", "knob"))
    text = exposition(verdict)
    metrics = {m.name: m for m in verdict.metrics}

    def sample(name: str) -> float:
        return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))

    assert sample("perfgate_candidate_syscall_seconds_per_request") == pytest.approx(
        metrics["syscall_time_per_request"].candidate_median / 1e6)
    assert sample("perfgate_baseline_gc_cycles_per_1k_requests") == pytest.approx(
        metrics["gc_cycles_per_1k_requests"].baseline_median)
    assert sample("perfgate_candidate_gc_pause_seconds_per_1k_requests") == pytest.approx(
        metrics["gc_pause_per_1k_requests"].candidate_median / 1e3)
    assert "# HELP perfgate_candidate_syscall_seconds_per_request candidate time in system calls that do work" in text

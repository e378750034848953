"""Contention in the gate, on records built in memory: which windows are starved and by what, and which
FAILs a contended runner turns into INCONCLUSIVE. (Real hogs and cgroup limits: test_contention_e2e.py.)"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from perfgate.capture.cgroup import V1, ThrottleCounters
from perfgate.capture.contention import ContentionWindow, OtherProcess
from perfgate.compare.contention import (
    OTHERS,
    RUNQ_WAIT,
    STEAL,
    THROTTLING,
    ContentionView,
    WindowFigures,
    figures_of,
    judge,
    starvation,
)
from perfgate.compare.inputs import load_inputs
from perfgate.config import load_config
from perfgate.gate import decide
from perfgate.load.sample import LoadSample
from perfgate.record import Environment, RunRecord
from perfgate.record_parts import CpuCapture, Repetition, RunqCapture
from perfgate.verdict import Verdict

ENV = Environment(kernel="6.1", cpu_model="cpu", nproc=2, os="Debian", python="3.11", ghz_version="v0.121.0")
S = 1_000_000_000
LIMITS = load_config(None, environ={}, require_target=False).compare.contention
QUIET = ContentionWindow(wall_ns=S, ncpus=2, busy_ns=S, steal_ns=0, idle_ns=S, interrupts_ns=0, service_ns=S // 3,
                         perfgate_ns=S // 2, others_ns=S // 50, service_wait_ns=S // 30, service_run_ns=S // 3,
                         service_switches=1000)  # 33 µs of wait per switch-in: idle CPUs at hand
# a busy loop beside the service: 0.9 CPUs of other work, and the service waits 667 µs each time for a CPU
HOG = replace(QUIET, others_ns=9 * S // 10, idle_ns=S // 10, service_wait_ns=2 * S // 3,
              top_others=(OtherProcess("stress-ng", 4242, 9 * S // 10),))
STEAL_8 = replace(QUIET, steal_ns=16 * S // 100)
LIMITED = replace(QUIET, service_wait_ns=S, throttle=(ThrottleCounters("/svc", V1, 0.2, 10, 9, S // 2),))


def record(role: str, p95_ms: list[float], cpu_us: list[float], windows: list[ContentionWindow | None], *,
           pairing: str | None = None) -> RunRecord:
    reps = []
    for index, (p95, cpu, window) in enumerate(zip(p95_ms, cpu_us, windows, strict=True), 1):
        load = LoadSample(count=1000, ok_count=1000, rps=1000.0, total_ns=S, average_ns=10**6, fastest_ns=10**5,
                          slowest_ns=10**8, p50_ns=int(p95 * 5e5), p90_ns=int(p95 * 9e5), p95_ns=int(p95 * 1e6),
                          p99_ns=int(p95 * 1.5e6), status_counts=MappingProxyType({"OK": 1000}),
                          error_counts=MappingProxyType({}), end_reason="timeout")
        reps.append(Repetition(index=index, started_at="t", ended_at="t", load=load, load_file=None,
                               cpu=CpuCapture(status="disabled"), runq=RunqCapture(status="disabled"),
                               service_cpu_ns=int(cpu * 1e3 * 1000), contention=window))
    settings = {"pairing_id": pairing, "schedule": "duet"} if pairing else {}
    return RunRecord(role=role, created_at="t", config_digest="d", target={}, load_settings=settings,
                     environment=ENV, repetitions=tuple(reps), complete=True)


def gate(baseline: RunRecord, candidate: RunRecord, gates: list[dict], *settings: str) -> Verdict:
    """Records of two runs (unless paired) come with a known 1 % drift between runs, so a FAIL stays a FAIL
    unless contention turns it; without any, the gate could not tell a FAIL from drift (docs/statistics.md)."""
    config = load_config(None, environ={}, set_args=[f"gates={gates}", "compare.run_noise_pct=1", *settings],
                         require_target=False)
    return decide(load_inputs(baseline, candidate), config, created_at="now")


N = 8
STEADY = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1]
SLOWER = [v * 1.5 for v in STEADY]
CPU = [250, 251, 249, 250, 252, 248, 250, 251]
CPU_UP = [c * 1.2 for c in CPU]
LATENCY = [{"metric": "latency.p95", "max_increase_pct": 10}]
CPU_RULE = [{"metric": "cpu_per_request", "max_increase_pct": 5}]


# ---------------------------------------------------------------- windows
def test_each_cause_marks_a_window_with_its_figures():
    def causes(window: ContentionWindow, **kwargs) -> list[str]:
        return [cause for cause, _ in starvation(WindowFigures.of(1, window), LIMITS, **kwargs)]

    assert causes(QUIET) == []
    assert causes(HOG) == [OTHERS]
    assert causes(STEAL_8) == [STEAL]
    assert causes(LIMITED) == [THROTTLING]
    text = starvation(WindowFigures.of(1, HOG), LIMITS)[0][1]
    assert "45 % of CPU time" in text and "stress-ng (4242) 0.90 CPUs" in text and "waiting 667 µs" in text
    # a hog beside the service starves it even when the service's MEAN wait stays small (a few wake-ups land
    # behind the hog: on an idle 2-CPU machine one busy loop cost the p95 +61 % at a mean wait under 100 µs)
    assert causes(replace(HOG, service_wait_ns=S // 30)) == [OTHERS]
    # other work below the limit starves no one; at the limit neither (every limit is a maximum)
    assert causes(replace(HOG, others_ns=3 * S // 10, service_wait_ns=S // 30)) == []  # 15 %
    assert causes(replace(HOG, others_ns=4 * S // 10)) == []  # 20 %: at the limit
    # the build waited 1000 µs per switch-in, 5 times the other side's (its 33 µs counted as 200 µs)
    assert causes(replace(QUIET, service_wait_ns=S), other_wait=33, other_role="baseline") == [RUNQ_WAIT]
    assert causes(replace(QUIET, service_wait_ns=S // 2), other_wait=33) == []  # 500 µs: x2.5 of 200 µs
    assert causes(QUIET, other_wait=1) == []  # a tiny wait is no starvation, whatever the ratio


def test_duet_windows_are_compared_build_by_build_and_a_limit_on_one_build_is_one_sided():
    base = figures_of("baseline", [(i, QUIET) for i in range(1, N + 1)])
    cand = figures_of("candidate", [(i, LIMITED if i > 4 else QUIET) for i in range(1, N + 1)])
    view = judge(cand, base, LIMITS, shared_windows=True)
    assert view.candidate.contended and not view.baseline.contended
    assert [w.repetition for w in view.candidate.starved] == [5, 6, 7, 8]
    assert set(view.candidate.starved[0].causes) == {THROTTLING, RUNQ_WAIT}
    assert view.one_sided == "throttling starved the candidate in 50 % of its windows, the baseline in 0 %"
    assert "candidate starved of CPU in 4 of 8 windows" in view.summary
    # a hog beside both builds of a duet is the same contention for both
    both = judge(figures_of("candidate", [(i, HOG) for i in range(1, N + 1)]),
                 figures_of("baseline", [(i, HOG) for i in range(1, N + 1)]), LIMITS, shared_windows=True)
    assert both.contended and both.one_sided is None
    # one window of one build throttled is no one-sided contention: too few to move a paired comparison
    one = judge(figures_of("candidate", [(i, LIMITED if i == 3 else QUIET) for i in range(1, N + 1)]),
                figures_of("baseline", [(i, QUIET) for i in range(1, N + 1)]), LIMITS, shared_windows=True)
    assert one.candidate.contended and one.one_sided is None
    # in two separate runs, a hog in one of them is one-sided
    apart = judge(figures_of("candidate", [(i, HOG) for i in range(1, N + 1)]),
                  figures_of("baseline", [(i, QUIET) for i in range(1, N + 1)]), LIMITS)
    assert apart.one_sided == "other processes starved the candidate in 100 % of its windows, the baseline in 0 %"


def test_two_separate_runs_never_met_the_same_contention():
    """On a busy machine every window of both runs is starved by other processes, and a hog in one of them
    changes no share: how much each run lost is unknown, so contention in separate runs is never the same."""
    busy = replace(HOG, others_ns=9 * S // 10)  # 45 %
    hogged = replace(HOG, others_ns=18 * S // 10)  # 90 %
    base = figures_of("baseline", [(i, busy) for i in range(1, N + 1)])
    cand = figures_of("candidate", [(i, hogged if i in (3, 4) else busy) for i in range(1, N + 1)])
    view = judge(cand, base, LIMITS)
    assert len(view.candidate.starved) == len(view.baseline.starved) == N
    assert view.one_sided == ("the sides were measured apart (not in the same windows), so their contention "
                              "cannot be shown to be the same")
    # a single starved window in one run is enough, and named by its cause
    one = judge(figures_of("candidate", [(i, HOG if i == 3 else QUIET) for i in range(1, N + 1)]),
                figures_of("baseline", [(i, QUIET) for i in range(1, N + 1)]), LIMITS)
    assert one.one_sided == "other processes starved the candidate in 12 % of its windows, the baseline in 0 %"
    # in duet the windows are shared: the same hog in every window of both builds is the same contention
    assert judge(cand, base, LIMITS, shared_windows=True).one_sided is None
    # and a CPU FAIL between two separate contended runs is INCONCLUSIVE, the same in duet stands
    verdict = gate(record("baseline", STEADY, CPU, [busy] * N), record("candidate", STEADY, CPU_UP, [busy] * N),
                   CPU_RULE)
    assert verdict.outcome == "INCONCLUSIVE" and "measured apart" in verdict.contention.one_sided, verdict.headline
    verdict = gate(record("baseline", STEADY, CPU, [busy] * N, pairing="p"),
                   record("candidate", STEADY, CPU_UP, [busy] * N, pairing="p"), CPU_RULE)
    assert verdict.outcome == "FAIL", verdict.headline


def test_the_view_round_trips_and_old_verdicts_read_as_not_judged():
    view = judge(figures_of("candidate", [(1, HOG)]), figures_of("baseline", [(1, QUIET)]), LIMITS)
    assert ContentionView.from_dict(view.to_dict()) == view
    assert not ContentionView.from_dict(None).available


# ---------------------------------------------------------------- the gate
def test_latency_fail_with_unchanged_cpu_on_a_contended_candidate_is_inconclusive():
    verdict = gate(record("baseline", STEADY, CPU, [QUIET] * N), record("candidate", SLOWER, CPU, [HOG] * N), LATENCY)
    assert verdict.outcome == "INCONCLUSIVE", verdict.headline
    rule = next(r for r in verdict.rules if r.metric == "latency.p95")
    assert "runner was contended" in rule.reason and "did not rise significantly" in rule.reason
    assert verdict.rules[0].rule == "contention" and "runner contended" in verdict.headline
    assert "other processes 45 %" in verdict.headline
    assert any("dedicated runner" in tip for tip in verdict.suggestions)


def test_a_contended_baseline_counts_too():
    verdict = gate(record("baseline", STEADY, CPU, [STEAL_8] * N), record("candidate", SLOWER, CPU, [QUIET] * N),
                   LATENCY)
    assert verdict.outcome == "INCONCLUSIVE"
    assert "baseline starved of CPU in 8 of 8 windows" in verdict.headline and "steal 8.0 %" in verdict.headline


def test_on_a_quiet_runner_a_latency_regression_still_fails():
    verdict = gate(record("baseline", STEADY, CPU, [QUIET] * N), record("candidate", SLOWER, CPU, [QUIET] * N),
                   LATENCY)
    assert verdict.outcome == "FAIL"
    assert not verdict.contention.contended and verdict.contention.available


def test_records_without_figures_judge_nothing():
    verdict = gate(record("baseline", STEADY, CPU, [None] * N), record("candidate", SLOWER, CPU, [None] * N),
                   LATENCY)
    assert verdict.outcome == "FAIL" and not verdict.contention.available


def test_in_duet_a_shared_hog_leaves_a_real_cpu_regression_failing():
    """Both builds met the hog: the paired CPU comparison is fair, CPU per request rose, so both FAILs stand."""
    verdict = gate(record("baseline", STEADY, CPU, [HOG] * N, pairing="p"),
                   record("candidate", SLOWER, CPU_UP, [HOG] * N, pairing="p"), LATENCY + CPU_RULE)
    assert verdict.outcome == "FAIL", verdict.headline
    assert {r.metric: r.outcome for r in verdict.rules} == {"latency.p95": "FAIL", "cpu_per_request": "FAIL"}
    assert verdict.contention.contended and verdict.contention.shared_windows
    assert any(note.startswith("runner contended") for note in verdict.notes)


def test_one_sided_contention_doubts_cpu_per_request_too():
    """A cgroup limit on one build moves its CPU per request by itself: neither FAIL stands."""
    verdict = gate(record("baseline", STEADY, CPU, [QUIET] * N, pairing="p"),
                   record("candidate", SLOWER, CPU_UP, [LIMITED] * N, pairing="p"), LATENCY + CPU_RULE)
    assert verdict.outcome == "INCONCLUSIVE", verdict.headline
    outcomes = {r.metric: r.outcome for r in verdict.rules}
    assert outcomes["latency.p95"] == outcomes["cpu_per_request"] == "INCONCLUSIVE"
    assert "throttling starved the candidate in 100 % of its windows, the baseline in 0 %" in verdict.rules[0].reason
    assert "throttled by a 0.2-CPU limit in 90 % of periods" in verdict.headline
    assert any("CPU limit" in tip for tip in verdict.suggestions)


def test_error_rate_limits_stand_on_a_contended_runner():
    errors = record("candidate", STEADY, CPU, [HOG] * N)
    failing = MappingProxyType({"OK": 900, "Unavailable": 100})
    errors = replace(errors, repetitions=tuple(replace(rep, load=replace(rep.load, ok_count=900, status_counts=failing))
                                               for rep in errors.repetitions))
    verdict = gate(record("baseline", STEADY, CPU, [QUIET] * N), errors, [{"metric": "error_rate", "max_value": 0.01}])
    assert verdict.outcome == "FAIL"


@pytest.mark.parametrize("settings", [("max_others_pct=50", "max_wait_ratio=30"),
                                      ("max_others_pct=100", "min_wait_us=1000")])
def test_thresholds_come_from_the_config(settings):
    verdict = gate(record("baseline", STEADY, CPU, [QUIET] * N), record("candidate", SLOWER, CPU, [HOG] * N),
                   LATENCY, *(f"compare.contention.{setting}" for setting in settings))
    assert verdict.outcome == "FAIL" and not verdict.contention.contended


def test_every_percentage_check_can_be_switched_off_with_100():
    """A build throttled in every period and a machine all taken by others: starved, unless the limits say 100."""
    full = replace(LIMITED, others_ns=2 * S, throttle=(ThrottleCounters("/svc", V1, 0.2, 10, 10, S // 2),))
    assert {cause for cause, _ in starvation(WindowFigures.of(1, full), LIMITS)} == {THROTTLING, OTHERS}
    off = replace(LIMITS, max_throttled_pct=100, max_others_pct=100, max_steal_pct=100)
    assert starvation(WindowFigures.of(1, replace(full, steal_ns=2 * S)), off) == []


def test_a_window_read_back_keeps_no_more_than_perfgate_writes():
    """A record may come from a fork's run: long lists and names are cut to what perfgate itself writes."""
    data = replace(HOG, problems=("x" * 5000,) * 100).to_dict()
    data["top_others"] = [{"comm": "<script>" * 100, "pid": i, "cpu_ns": S} for i in range(10_000)]
    window = ContentionWindow.from_dict(data)
    assert len(window.top_others) == 3 and len(window.top_others[0].comm) <= 32
    assert len(window.problems) <= 8 and all(len(p) <= 500 for p in window.problems)
    # and a record without the figures (perfgate before them) is simply not judged
    assert not judge(figures_of("candidate", [(1, None)]), None, LIMITS).available

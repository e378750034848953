"""gate.decide on records built in memory: fast checks of every rule kind and the run-wide validity checks.
(The real-process versions are in test_gate_e2e.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
from support.records import ENV, record

from perfgate.compare.comparison import Cause
from perfgate.compare.inputs import load_inputs
from perfgate.config import load_config
from perfgate.gate import decide, noise_tip
from perfgate.record import RunRecord
from perfgate.rules import compare_values
from perfgate.verdict import Verdict


def gate(baseline: RunRecord | None, candidate: RunRecord, gates: list[dict], *settings: str,
         drift_pct: float | None = 1.0) -> Verdict:
    """The two records come from two runs: by default the gate is told runs drift by 1 %, so these tests
    speak about the rules; drift_pct=None leaves the drift unknown."""
    drift = [f"compare.run_noise_pct={drift_pct}"] if drift_pct is not None else []
    config = load_config(None, environ={}, set_args=[f"gates={gates}", *drift, *settings], require_target=False)
    return decide(load_inputs(baseline, candidate), config, created_at="now")


def test_without_a_drift_estimate_a_fail_across_runs_is_inconclusive_and_says_how_to_measure_it():
    """The first PRs after adoption: a baseline from another run, no history, no configured drift."""
    rules = [{"metric": "latency.p95", "max_increase_pct": 10}, {"metric": "error_rate", "max_value": 0.01},
             {"metric": "latency.p95", "max_value": 12}]
    verdict = gate(record("baseline", STEADY), record("candidate", SLOWER, errors=30), rules, drift_pct=None)
    outcomes = {(r.metric, r.threshold): r for r in verdict.rules}
    relative = outcomes[("latency.p95", "+10%")]
    assert relative.outcome == "INCONCLUSIVE" and relative.cause == Cause.DRIFT_UNKNOWN
    assert "regression" in relative.reason and "may be the runner, not the code" in relative.reason
    # limits on the candidate alone do not compare two runs: they stand
    assert outcomes[("error_rate", "<= 0.01")].outcome == "FAIL"
    assert outcomes[("latency.p95", "<= 12")].outcome == "FAIL"
    alone = gate(record("baseline", STEADY), record("candidate", SLOWER), rules[:1], drift_pct=None)
    assert alone.outcome == "INCONCLUSIVE" and alone.exit_code == 4
    assert any("baseline.history" in tip and "service.build" in tip for tip in alone.suggestions)
    assert gate(record("baseline", STEADY), record("candidate", SLOWER), rules[:1]).outcome == "FAIL"
    # a configured 0 says the runner does not drift: the within-run test decides alone
    assert gate(record("baseline", STEADY), record("candidate", SLOWER), rules[:1], drift_pct=0).outcome == "FAIL"


STEADY = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1]
SLOWER = [v * 1.3 for v in STEADY]


def test_a_significant_regression_beyond_the_limit_fails():
    verdict = gate(record("baseline", STEADY), record("candidate", SLOWER),
                   [{"metric": "latency.p95", "max_increase_pct": 10}])
    assert verdict.outcome == "FAIL" and verdict.exit_code == 1
    rule = verdict.rules[0]
    assert rule.comparison.rel_change == pytest.approx(0.3, abs=0.02)
    assert "regression" in rule.reason and rule.p_adjusted < 0.05


def test_same_values_pass_and_improvements_pass():
    assert gate(record("baseline", STEADY), record("candidate", STEADY),
                [{"metric": "latency.p95", "max_increase_pct": 10}]).outcome == "PASS"
    assert gate(record("baseline", SLOWER), record("candidate", STEADY),
                [{"metric": "latency.p95", "max_increase_pct": 10}]).outcome == "PASS"


def test_warn_severity_never_fails():
    verdict = gate(record("baseline", STEADY), record("candidate", SLOWER),
                   [{"metric": "latency.p95", "max_increase_pct": 10, "severity": "warn"}])
    assert verdict.outcome == "WARN" and verdict.exit_code == 0


def test_absolute_slo_on_the_candidate():
    verdict = gate(record("baseline", STEADY), record("candidate", SLOWER),
                   [{"metric": "latency.p95", "max_value": 12}])
    assert verdict.outcome == "FAIL"
    assert "candidate median 13" in verdict.rules[0].reason and "above the limit 12 ms" in verdict.rules[0].reason


def test_error_rate_limit_counts_every_call():
    verdict = gate(record("baseline", STEADY), record("candidate", STEADY, errors=30),
                   [{"metric": "error_rate", "max_value": 0.01}])
    assert verdict.outcome == "FAIL" and "0.03" in verdict.rules[0].reason


def test_rps_drop_is_direction_aware():
    verdict = gate(record("baseline", STEADY, rps=1000), record("candidate", STEADY, rps=800),
                   [{"metric": "rps", "max_decrease_pct": 10}])
    assert verdict.outcome == "FAIL"
    up = gate(record("baseline", STEADY, rps=800), record("candidate", STEADY, rps=1000),
              [{"metric": "rps", "max_decrease_pct": 10}])
    assert up.outcome == "PASS"


def test_cpu_per_request_from_process_cpu_time():
    base = record("baseline", STEADY, cpu_us=[250, 251, 249, 250, 252, 248, 250, 251])
    cand = record("candidate", STEADY, cpu_us=[270, 271, 269, 272, 270, 268, 271, 270])
    verdict = gate(base, cand, [{"metric": "cpu_per_request", "max_increase_pct": 5}])
    assert verdict.outcome == "FAIL"
    assert verdict.rules[0].comparison.baseline_median == pytest.approx(250, abs=1)


def test_rules_without_their_data_are_skipped_not_failed():
    verdict = gate(record("baseline", STEADY), record("candidate", STEADY),
                   [{"metric": "function_share", "pattern": "main.*", "max_share_pct": 10},
                    {"metric": "runq.depth", "max_depth": 5},
                    {"metric": "latency.p95", "max_increase_pct": 10}])
    outcomes = {r.metric: r.outcome for r in verdict.rules}
    assert outcomes == {"function_share": "SKIP", "runq.depth": "SKIP", "latency.p95": "PASS"}
    assert verdict.outcome == "PASS"
    assert any("set cpu.pprof_url" in r.reason for r in verdict.rules if r.outcome == "SKIP")


def test_holm_makes_the_family_need_more_repetitions():
    """4 vs 4 can reject one test at 0.05 (min p 0.014), but not at 0.05/4 with four rules."""
    base, cand = record("baseline", STEADY[:4]), record("candidate", SLOWER[:4])
    one = gate(base, cand, [{"metric": "latency.p95", "max_increase_pct": 10}])
    assert one.outcome == "FAIL"
    four = gate(base, cand, [{"metric": m, "max_increase_pct": 10} for m in
                             ("latency.p50", "latency.p90", "latency.p95", "latency.p99")])
    assert four.outcome == "INCONCLUSIVE"
    assert any("raise load.repetitions to at least" in tip for tip in four.suggestions)


def test_a_warn_only_rule_spends_none_of_the_fail_rules_alpha():
    """Four latency rules at 4 vs 4 cannot reach Holm's alpha/4; three fail rules and a warn rule are a family
    of three (alpha/3 = 0.0167 > the smallest p 0.014), and the warn rule is judged at alpha alone."""
    base, cand = record("baseline", STEADY[:4]), record("candidate", SLOWER[:4])
    rules = [{"metric": m, "max_increase_pct": 10} for m in ("latency.p50", "latency.p90", "latency.p95")]
    verdict = gate(base, cand, [*rules, {"metric": "latency.p99", "max_increase_pct": 10, "severity": "warn"}])
    by_metric = {r.metric: r for r in verdict.rules}
    assert {r.comparison.n_tests for m, r in by_metric.items() if m != "latency.p99"} == {3}
    assert by_metric["latency.p99"].comparison.n_tests == 1
    assert by_metric["latency.p99"].p_adjusted == by_metric["latency.p99"].comparison.p_value
    assert by_metric["latency.p99"].outcome == "WARN" and verdict.outcome == "FAIL"


def test_environment_mismatch_turns_fail_into_inconclusive_naming_keys():
    other = replace(ENV, cpu_model="another cpu", kernel="6.9")
    verdict = gate(record("baseline", STEADY, env=other), record("candidate", SLOWER),
                   [{"metric": "latency.p95", "max_increase_pct": 10}])
    assert verdict.outcome == "INCONCLUSIVE" and verdict.exit_code == 4
    assert {d.key for d in verdict.environment_diffs} == {"cpu_model", "kernel"}
    assert "cpu_model ('another cpu' vs 'cpu')" in verdict.headline
    assert [r.cause for r in verdict.rules] == [None, Cause.ENVIRONMENT_DIFFERS]


def test_suggestions_follow_the_cause_and_the_cause_survives_verdict_json(tmp_path):
    noisy = [10.0, 14.0, 9.0, 12.0, 8.0, 13.0, 11.0, 10.0]
    verdict = gate(record("baseline", noisy), record("candidate", [v * 1.02 for v in noisy]),
                   [{"metric": "latency.p95", "max_increase_pct": 5}])
    assert verdict.outcome == "INCONCLUSIVE" and verdict.rules[0].cause == Cause.TOO_NOISY
    assert any(tip.startswith("reduce noise") for tip in verdict.suggestions)
    verdict.save(tmp_path)
    assert Verdict.load(tmp_path).rules[0].cause is Cause.TOO_NOISY


def test_a_run_that_compared_in_one_job_is_not_told_to_compare_in_one_job():
    config = load_config(None, environ={}, set_args=[], require_target=False)
    assert "compare.mode: interleaved" in noise_tip(config)
    interleaved = replace(config, compare=replace(config.compare, mode="interleaved"))
    assert "compare.mode: interleaved" not in noise_tip(interleaved)


def test_environment_keys_are_configurable():
    other = replace(ENV, kernel="6.9")
    verdict = gate(record("baseline", STEADY, env=other), record("candidate", STEADY),
                   [{"metric": "latency.p95", "max_increase_pct": 10}], "compare.environment_keys=[cpu_model]")
    assert verdict.outcome == "PASS"


def test_fail_on_inconclusive():
    verdict = gate(record("baseline", STEADY[:2]), record("candidate", STEADY[:2]),
                   [{"metric": "latency.p95", "max_increase_pct": 10}], "compare.fail_on_inconclusive=true")
    assert verdict.outcome == "INCONCLUSIVE" and verdict.exit_code == 1


def test_first_run_without_baseline():
    verdict = gate(None, record("candidate", STEADY), [{"metric": "latency.p95", "max_increase_pct": 10}])
    assert verdict.outcome == "PASS" and verdict.baseline is None
    assert "first run: no baseline yet" in verdict.headline


def test_verdict_json_round_trip(tmp_path):
    verdict = gate(record("baseline", STEADY), record("candidate", SLOWER),
                   [{"metric": "latency.p95", "max_increase_pct": 10}, {"metric": "latency.p95", "max_value": 100}])
    verdict.save(tmp_path)
    assert Verdict.load(tmp_path) == verdict


@pytest.mark.parametrize(("pairs", "n_tests", "paired"), [(7, 4, True), (6, 4, False), (5, 1, True), (4, 1, False)])
def test_interleaved_values_are_compared_as_pairs_once_enough_pairs_can_reach_significance(pairs, n_tests, paired):
    """Signed-rank needs 1/2^n < alpha/m; below that the two-sample test (which needs fewer) is used instead."""
    base = [100.0 + i for i in range(pairs)]
    cand = [v * 1.05 for v in base]
    result = compare_values("cpu_per_request", base, cand, pairs=pairs, higher_is_worse=True, unit="µs",
                            alpha=0.05, n_tests=n_tests)
    assert result.p_method.startswith("wilcoxon") is paired
    unpaired = compare_values("cpu_per_request", base, cand, pairs=None, higher_is_worse=True, unit="µs",
                              alpha=0.05, n_tests=n_tests)
    assert not unpaired.p_method.startswith("wilcoxon")

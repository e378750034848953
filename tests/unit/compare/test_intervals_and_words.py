"""Intervals that agree with verdicts, and words that match the numbers (issue #12).

compare_metric / compare_paired_metric on synthetic data, then classify: the interval's level is the
one it was computed at, a FAIL's interval lies on the worse side of zero, ratio metrics are compared
as logs (a drop never exceeds 100 %), and every sentence speaks in the metric's own direction.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from perfgate.compare.classify import classify, describe_change, fmt_level
from perfgate.compare.comparison import FAIL, INCONCLUSIVE, PASS
from perfgate.compare.paired import compare_paired_metric
from perfgate.compare.stats import compare_metric

PCT = r"[+-]?\d+\.\d%"


def rps_like(rng: np.random.Generator, n: int, median: float, cv: float) -> np.ndarray:
    return rng.lognormal(math.log(median), cv, n)


def percentages(text: str) -> list[float]:
    return [float(v.rstrip("%")) for v in re.findall(PCT, text)]


def test_a_fail_at_holm_level_never_shows_an_interval_holding_zero():
    """The report this guards against: FAIL with p = 0.028 under an interval [-17 %, +73.6 %]. Every FAIL over
    many noisy samples, at several family sizes, has its interval on the worse side."""
    rng = np.random.default_rng(3)
    fails = 0
    for _ in range(200):
        n_tests = int(rng.integers(1, 5))
        base = rps_like(rng, 8, 10.0, 0.15)
        cand = rps_like(rng, 8, 10.0 * rng.choice([1.0, 1.15, 1.3]), 0.15)
        got = compare_metric("latency.p95", base, cand, higher_is_worse=True, unit="ms", scale="log", n_tests=n_tests)
        p_adjusted = min(1.0, got.p_value * rng.uniform(1, n_tests))  # any Holm step
        verdict = classify(got, p_adjusted=p_adjusted, max_worse_rel=0.05)
        if verdict.outcome == FAIL:
            fails += 1
            lo, hi = got.rel_ci
            assert lo > 0, verdict.reason
            assert f"[{lo:+.1%}, {hi:+.1%}] ({fmt_level(got.ci_level)} CI" in verdict.reason
    assert fails > 20


def test_the_level_shown_is_the_level_computed_and_not_rounded_up():
    rng = np.random.default_rng(4)
    got = compare_metric("x", rps_like(rng, 10, 5, 0.05), rps_like(rng, 10, 5, 0.05), higher_is_worse=True,
                         unit="ms", scale="log")
    assert 0.90 <= got.ci_level < 0.95
    assert fmt_level(got.ci_level) == f"{math.floor(got.ci_level * 1000) / 10:.1f}%"
    assert fmt_level(0.95999) == "95.9%"
    assert f"({fmt_level(got.ci_level)} CI" in describe_change(got)


def test_a_throughput_drop_is_a_ratio_and_its_bounds_stay_below_100_percent():
    """Wildly noisy throughput: on the linear scale the bound on the drop passes 100 %; as ratios it cannot."""
    rng = np.random.default_rng(5)
    base, cand = rps_like(rng, 6, 1000, 0.8), rps_like(rng, 6, 600, 0.8)
    linear = compare_metric("rps", base, cand, higher_is_worse=False, unit="req/s", scale="linear")
    ratio = compare_metric("rps", base, cand, higher_is_worse=False, unit="req/s", scale="log")
    assert linear.worse_bound_rel > 1  # the linear scale's "a drop of up to +78.8 %"-style nonsense
    assert ratio.scale == "log"
    assert 0 < ratio.worse_bound_rel < 1 and 0 < ratio.mde_rel < 1
    assert ratio.rel_ci[0] > -1
    assert ratio.worse_bound_rel == pytest.approx(-ratio.rel_ci[0])
    verdict = classify(ratio, p_adjusted=ratio.p_value, max_worse_rel=0.10)
    assert verdict.outcome == INCONCLUSIVE
    drop = re.search(r"a drop of up to (\d+\.\d)% \(", verdict.reason)
    assert drop and float(drop.group(1)) == pytest.approx(100 * ratio.worse_bound_rel, abs=0.06)
    assert re.search(r"could only have detected drops > (\d+\.\d)%", verdict.reason)
    assert all(v > -100 for v in percentages(verdict.reason))


def test_a_latency_interval_on_the_log_scale_never_goes_below_minus_100_percent():
    base = np.array([2.1, 3.5, 8.5, 30.0, 40.0, 45.0])
    cand = np.array([1.0, 2.0, 8.6, 9.0, 25.0, 40.0])
    got = compare_metric("latency.p95", base, cand, higher_is_worse=True, unit="ms", scale="log")
    assert -1 < got.rel_ci[0] <= got.rel_change <= got.rel_ci[1]
    linear = compare_metric("latency.p95", base, cand, higher_is_worse=True, unit="ms", scale="linear")
    assert linear.rel_ci[0] < -1  # the [-151.6 %, +125.5 %] kind of interval


def test_the_change_in_the_unit_is_the_ratio_at_the_baseline_median_not_a_difference_of_medians():
    """Paired values whose medians barely differ while every pair moved: the sentence states the
    pairs and the ratio applied to the baseline median, nothing that contradicts the estimate."""
    base = np.array([5.0, 6.0, 7.0, 8.0, 8.5, 9.0, 10.0, 11.0, 12.0, 13.0])
    cand = np.array([6.2, 7.4, 8.2, 7.6, 8.6, 10.4, 9.5, 12.7, 13.6, 12.5])
    got = compare_paired_metric("latency.p95", base, cand, higher_is_worse=True, unit="ms", scale="log")
    text = describe_change(got)
    assert got.shift == pytest.approx(np.median(base) * got.rel_change)
    assert f"at the baseline median {np.median(base):.4g} ms" in text
    assert f"worse in {got.pairs_worse} of 10 pairs" in text and got.pairs_worse == 7
    assert "->" not in text  # no candidate median beside an estimate it need not match


def test_linear_metrics_that_can_be_zero_keep_their_differences():
    got = compare_metric("error_rate", [0.0] * 6, [0.0, 0.01, 0.02, 0.01, 0.0, 0.03], higher_is_worse=True,
                         unit="fraction", scale="log")
    assert got.scale == "linear" and any("compared on the linear scale" in n for n in got.notes)


@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_pass_and_inconclusive_speak_in_the_metric_direction(higher_is_worse):
    rng = np.random.default_rng(7)
    base, cand = rps_like(rng, 12, 100, 0.01), rps_like(rng, 12, 100, 0.01)
    got = compare_metric("m", base, cand, higher_is_worse=higher_is_worse, unit="u", scale="log")
    verdict = classify(got, p_adjusted=got.p_value, max_worse_rel=0.05)
    assert verdict.outcome == PASS
    noun = "increase" if higher_is_worse else "drop"
    assert f"{noun} beyond" in verdict.reason and f"could have detected {noun}s >" in verdict.reason
    level = fmt_level((1 + got.ci_level) / 2)
    assert f"({level} one-sided bound)" in verdict.reason


def test_a_cpu_mover_is_named_only_when_its_adjusted_p_is_significant():
    from perfgate.compare.comparison import FunctionMove
    from perfgate.gate import cpu_mover_text
    from perfgate.verdict import CpuView

    def mover(name: str, p_adjusted: float) -> FunctionMove:
        return FunctionMove(function=name, kind="cum", unit="µs", baseline=25.0, candidate=37.5, change=12.5,
                            rel_change=0.5, p_value=p_adjusted / 50, status="changed", p_adjusted=p_adjusted,
                            significant=p_adjusted < 0.05, baseline_share_pct=10.0, candidate_share_pct=13.6)

    noise = CpuView(available=True, risers=(mover("runtime.mcall", 0.4),), functions_tested=212)
    assert cpu_mover_text(noise) == "no function's CPU per request changed significantly (212 tested)"
    real = CpuView(available=True, risers=(mover("runtime.mcall", 0.4), mover("main.checksumPayload", 0.003)),
                   functions_tested=212)
    assert cpu_mover_text(real).startswith("CPU mover main.checksumPayload +12.5 µs/request (adjusted p=0.003)")


def test_the_report_headline_names_no_metric_that_did_not_move_significantly():
    from perfgate.report.document import biggest_mover

    rng = np.random.default_rng(9)
    same = [compare_metric(f"m{i}", rps_like(rng, 10, 10, 0.05), rps_like(rng, 10, 10, 0.05), higher_is_worse=True,
                           unit="ms", scale="log") for i in range(5)]
    assert biggest_mover(same) is None
    moved = compare_metric("latency.p95", rps_like(rng, 10, 10, 0.02), rps_like(rng, 10, 13, 0.02),
                           higher_is_worse=True, unit="ms", scale="log")
    assert biggest_mover([*same, moved]) is moved


def test_an_interval_on_the_worse_side_is_never_called_no_change():
    """Raw p < alpha puts the interval (alpha a tail) on the worse side; if only Holm took the significance
    away, the sentence says so instead of "no significant change" beside that interval."""
    base = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8]
    cand = [10.6, 10.9, 9.85, 10.8, 10.4, 10.7]
    got = compare_paired_metric("latency.p95", base, cand, higher_is_worse=True, unit="ms", scale="log", n_tests=3)
    assert got.excludes_no_change and got.p_value < 0.05
    verdict = classify(got, p_adjusted=min(1.0, 3 * got.p_value), max_worse_rel=0.10)
    assert verdict.outcome in (PASS, INCONCLUSIVE)
    assert "no significant change" not in verdict.reason
    assert "worse, but not significant after the correction over 3 rules" in verdict.reason

"""perfgate.compare.stats: p-values, shift estimate and CI, MDE, repetitions, multiple testing, outcomes.

Synthetic data only, every generator seeded; the simulations are sized to run in a few seconds.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from perfgate.compare.classify import classify
from perfgate.compare.comparison import FAIL, INCONCLUSIVE, PASS, WARN, Cause, MetricComparison
from perfgate.compare.multiple import adjust_pvalues
from perfgate.compare.stats import (
    compare_metric,
    mde_in_sigmas,
    min_p_one_sided,
    min_reps_per_side,
    u_null_cdf,
)


def latency_like(rng: np.random.Generator, n: int, median: float = 10.0, cv: float = 0.04) -> np.ndarray:
    return rng.lognormal(math.log(median), cv, n)


def compare_latency(baseline, candidate, **kwargs):
    return compare_metric("p95_latency", baseline, candidate, higher_is_worse=True, unit="ms", **kwargs)


def gate_single(comparison, **thresholds):
    return classify(comparison, p_adjusted=comparison.p_value, **thresholds)


# --- p-values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n1,n2", [(4, 4), (5, 9), (10, 10), (20, 15), (60, 60)])
@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_p_values_equal_scipy_mannwhitneyu_called_directly(n1, n2, higher_is_worse):
    rng = np.random.default_rng(n1 * 100 + n2)
    for _ in range(5):
        base, cand = rng.normal(100, 5, n1), rng.normal(103, 5, n2)
        got = compare_metric("x", base, cand, higher_is_worse=higher_is_worse, unit="")
        method = "exact" if max(n1, n2) <= 50 else "asymptotic"
        worse = "greater" if higher_is_worse else "less"
        expected_one = stats.mannwhitneyu(cand, base, alternative=worse, method=method).pvalue
        expected_two = stats.mannwhitneyu(cand, base, alternative="two-sided", method=method).pvalue
        assert got.p_method == method
        assert got.p_value == pytest.approx(expected_one, rel=1e-12)
        assert got.p_two_sided == pytest.approx(expected_two, rel=1e-12)


def test_exact_p_value_agrees_with_our_own_null_distribution():
    rng = np.random.default_rng(7)
    base, cand = rng.normal(0, 1, 8), rng.normal(0.8, 1, 11)
    u = int(np.sum(cand[:, None] > base[None, :]))
    p_greater_from_cdf = 1 - u_null_cdf(8, 11)[u - 1]
    got = compare_metric("x", base, cand, higher_is_worse=True, unit="")
    assert got.p_value == pytest.approx(p_greater_from_cdf, rel=1e-9)


@pytest.mark.parametrize("n1,n2", [(1, 1), (3, 4), (5, 5), (6, 3)])
def test_u_null_cdf_matches_enumerating_every_assignment_of_ranks(n1, n2):
    counts = np.zeros(n1 * n2 + 1)
    for candidate_ranks in itertools.combinations(range(n1 + n2), n1):
        # U = pairs (candidate > baseline) = rank sum of the n1 values minus its minimum
        counts[sum(candidate_ranks) - n1 * (n1 - 1) // 2] += 1
    assert np.allclose(u_null_cdf(n1, n2), np.cumsum(counts) / counts.sum())


@pytest.mark.parametrize(
    "base,cand",
    [
        ([10, 10, 11, 11, 12, 12], [11, 12, 12, 13, 13, 14]),
        ([1, 2, 2, 2, 3, 5, 5, 8], [2, 3, 3, 5, 8, 8, 9]),
        ([0, 0, 0, 0, 1], [0, 0, 1, 1, 2, 2, 3, 0, 1]),
    ],
)
@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_tied_values_get_the_exact_permutation_p_values_scipy_enumerates(base, cand, higher_is_worse):
    got = compare_metric("x", base, cand, higher_is_worse=higher_is_worse, unit="")
    every_split = stats.PermutationMethod(n_resamples=10**5)
    worse = "greater" if higher_is_worse else "less"
    expected_one = stats.mannwhitneyu(cand, base, alternative=worse, method=every_split).pvalue
    expected_two = stats.mannwhitneyu(cand, base, alternative="two-sided", method=every_split).pvalue
    assert got.p_method == "exact-ties"
    assert got.p_value == pytest.approx(expected_one, rel=1e-9)
    assert got.p_two_sided == pytest.approx(expected_two, rel=1e-9)


def test_tied_values_in_medium_samples_are_close_to_the_tie_corrected_normal_approximation():
    rng = np.random.default_rng(3)
    base, cand = rng.integers(0, 5, 20).astype(float), rng.integers(1, 6, 20).astype(float)
    got = compare_latency(base, cand)
    approx = stats.mannwhitneyu(cand, base, alternative="greater", method="asymptotic").pvalue
    assert got.p_method == "exact-ties"
    assert got.p_value == pytest.approx(approx, abs=0.01)


def test_tied_values_in_large_samples_use_the_tie_corrected_normal_approximation():
    rng = np.random.default_rng(4)
    base, cand = rng.integers(0, 5, 60).astype(float), rng.integers(0, 6, 60).astype(float)
    got = compare_latency(base, cand)
    expected = stats.mannwhitneyu(cand, base, alternative="greater", method="asymptotic").pvalue
    assert got.p_method == "asymptotic"
    assert got.p_value == pytest.approx(expected, rel=1e-12)
    assert any("tie" in note for note in got.notes)


# --- Hodges-Lehmann shift and CI -------------------------------------------------------------------------


def test_hodges_lehmann_is_the_brute_force_median_of_pairwise_differences():
    rng = np.random.default_rng(11)
    for n1, n2 in [(5, 5), (7, 4), (10, 13)]:
        base, cand = rng.normal(50, 3, n1), rng.normal(52, 3, n2)
        diffs = sorted(c - b for b in base for c in cand)
        middle = len(diffs) // 2
        brute = diffs[middle] if len(diffs) % 2 else (diffs[middle - 1] + diffs[middle]) / 2
        assert compare_latency(base, cand).shift == pytest.approx(brute)


def test_relative_values_are_relative_to_the_baseline_median():
    got = compare_latency([10, 11, 12, 13, 14], [12, 13, 14, 15, 16])
    assert got.baseline_median == 12 and got.candidate_median == 14
    assert got.shift == pytest.approx(2.0)
    assert got.rel_change == pytest.approx(2 / 12)
    assert got.rel_ci == pytest.approx((got.shift_ci[0] / 12, got.shift_ci[1] / 12))


def test_ci_is_the_inversion_of_scipys_two_sided_exact_test():
    """The interval has alpha in each tail: a shift inside it is not rejected by scipy's two-sided test at
    2 alpha, a shift just outside is."""
    rng = np.random.default_rng(5)
    for n1, n2 in [(6, 6), (10, 8), (12, 12)]:
        base, cand = rng.normal(0, 1, n1), rng.normal(0.5, 1, n2)
        got = compare_latency(base, cand, alpha=0.05)
        lo, hi = got.shift_ci
        eps = 1e-9 * (hi - lo)

        def p_two_sided_at(shift, cand=cand, base=base):
            return stats.mannwhitneyu(cand - shift, base, alternative="two-sided", method="exact").pvalue

        assert p_two_sided_at(lo + eps) > 0.10 and p_two_sided_at(hi - eps) > 0.10
        assert p_two_sided_at(lo - eps) <= 0.10 and p_two_sided_at(hi + eps) <= 0.10
        assert 0.90 <= got.ci_level < 0.95
        assert got.bound_level == pytest.approx((1 + got.ci_level) / 2)


@pytest.mark.parametrize("scale", ["linear", "log"])
@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_the_interval_excludes_no_change_exactly_when_the_one_sided_test_rejects(scale, higher_is_worse):
    """The verdict and its interval agree: one-sided p < alpha <=> the interval lies on the worse side of 0."""
    rng = np.random.default_rng(8)
    rejected = 0
    for _ in range(300):
        n1, n2 = rng.integers(4, 13, 2)
        base = rng.lognormal(0, 0.1, n1)
        cand = rng.lognormal(rng.choice([-0.1, 0.0, 0.1]), 0.1, n2)
        got = compare_metric("x", base, cand, higher_is_worse=higher_is_worse, unit="", scale=scale)
        assert got.excludes_no_change == (got.p_value < 0.05), (base, cand)
        rejected += got.excludes_no_change
    assert 30 < rejected < 270  # both answers were exercised


@pytest.mark.parametrize("noise", ["normal", "student_t3"])
def test_ci_coverage_of_a_true_shift_is_close_to_nominal(noise):
    rng = np.random.default_rng(99)
    true_shift, covered, sims = 0.7, 0, 400

    def draw(n):
        return rng.normal(0, 1, n) if noise == "normal" else rng.standard_t(3, n)

    for _ in range(sims):
        got = compare_latency(draw(10), draw(10) + true_shift)
        covered += got.shift_ci[0] <= true_shift <= got.shift_ci[1]
    achieved = got.ci_level  # 0.957 for 10 vs 10: the discrete U distribution overshoots 0.95
    assert achieved - 0.03 <= covered / sims <= min(1.0, achieved + 0.025)


@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_worse_bound_is_the_one_sided_inversion_of_scipys_exact_test(higher_is_worse):
    """'Worse by more than the bound' is rejected by scipy's one-sided test at alpha, 'by a bit less' not."""
    rng = np.random.default_rng(31)
    base, cand = rng.normal(100, 4, 9), rng.normal(102, 4, 11)
    got = compare_metric("x", base, cand, higher_is_worse=higher_is_worse, unit="", alpha=0.05)
    better = "less" if higher_is_worse else "greater"
    sign = 1 if higher_is_worse else -1

    def p_better_than_if_worse_by(amount):
        """One-sided p against H0 'the candidate is worse by `amount`' (alternative: less worse)."""
        return stats.mannwhitneyu(cand - sign * amount, base, alternative=better, method="exact").pvalue

    eps = 1e-9 * abs(got.worse_bound)
    assert p_better_than_if_worse_by(got.worse_bound - eps) > 0.05
    assert p_better_than_if_worse_by(got.worse_bound + eps) <= 0.05
    assert got.worse_bound_rel == pytest.approx(got.worse_bound / got.baseline_median)
    # the one-sided bound is the worse end of the interval (alpha in each tail)
    assert got.worse_bound == (got.shift_ci[1] if higher_is_worse else -got.shift_ci[0])


def test_worse_bound_covers_the_true_worsening_at_about_one_minus_alpha():
    rng = np.random.default_rng(37)
    covered, sims = 0, 400
    for _ in range(sims):
        got = compare_latency(rng.normal(0, 1, 10), rng.normal(0.5, 1, 10))
        covered += 0.5 <= got.worse_bound
    assert 0.92 <= covered / sims <= 0.985


def test_ci_is_unbounded_when_too_few_repetitions_for_the_level():
    assert compare_latency([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]).shift_ci == (-1.0, 3.0)  # 1/C(6, 3) = alpha
    got = compare_latency([1.0, 2.0, 3.0], [2.0, 3.0])
    assert got.shift_ci == (-math.inf, math.inf)
    assert any("unbounded" in note for note in got.notes)
    assert got.to_dict()["shift_ci"] == [None, None]


# --- gate behaviour on synthetic runs --------------------------------------------------------------------


def test_a_a_runs_rarely_fail_with_a_5_percent_threshold():
    false_fails = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        got = compare_latency(latency_like(rng, 10), latency_like(rng, 10))
        false_fails += gate_single(got, max_worse_rel=0.05).outcome == FAIL
    assert false_fails / 200 <= 0.01


def test_a_a_runs_with_a_zero_threshold_fail_at_about_the_one_sided_alpha():
    false_fails = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        got = compare_latency(latency_like(rng, 10), latency_like(rng, 10))
        false_fails += gate_single(got, max_worse_rel=0.0).outcome == FAIL
    # the exact test's real size at 10 vs 10 is 0.045; 200 runs give a binomial spread of about +-1.5 %
    assert 0.015 <= false_fails / 200 <= 0.09


def test_a_10_percent_regression_is_detected_with_10_repetitions_at_3_percent_cv():
    detected = 0
    for seed in range(200):
        rng = np.random.default_rng(2000 + seed)
        got = compare_latency(latency_like(rng, 10, cv=0.03), latency_like(rng, 10, median=11.0, cv=0.03))
        detected += gate_single(got, max_worse_rel=0.05).outcome == FAIL
    assert detected / 200 >= 0.95


def test_throughput_is_worse_when_it_drops():
    rng = np.random.default_rng(8)
    base, dropped = rng.normal(1000, 20, 10), rng.normal(880, 20, 10)
    worse = compare_metric("rps", base, dropped, higher_is_worse=False, unit="rps")
    better = compare_metric("rps", dropped, base, higher_is_worse=False, unit="rps")
    assert worse.rel_change < -0.05 and worse.worse_rel > 0.05 and worse.p_value < 0.001
    assert gate_single(worse, max_worse_rel=0.05).outcome == FAIL
    assert better.p_value > 0.99
    verdict = gate_single(better, max_worse_rel=0.05)
    assert verdict.outcome == PASS and "improved" in verdict.reason


def test_mde_is_calibrated_a_shift_of_1_5_mde_is_detected_most_of_the_time():
    """The MDE is the shift detected with 80 % power; at 1.5x it should be detected nearly always."""
    mdes = []
    for seed in range(100):
        rng = np.random.default_rng(3000 + seed)
        mdes.append(compare_latency(latency_like(rng, 10), latency_like(rng, 10)).mde_rel)
    typical_mde = float(np.median(mdes))
    assert 0.03 < typical_mde < 0.08  # CV 4 %, 10 vs 10 runs

    def detection_rate(relative_shift, offset):
        hits = 0
        for seed in range(200):
            rng = np.random.default_rng(offset + seed)
            shifted = latency_like(rng, 10, median=10.0 * (1 + relative_shift))
            hits += compare_latency(latency_like(rng, 10), shifted).p_value < 0.05
        return hits / 200

    assert detection_rate(1.5 * typical_mde, 4000) >= 0.9
    assert 0.65 <= detection_rate(typical_mde, 5000) <= 0.92


def test_mde_shrinks_with_more_repetitions_and_is_infinite_when_the_test_cannot_reject():
    sizes = [mde_in_sigmas(n, n, 0.05) for n in (4, 6, 10, 20, 40)]
    assert all(a > b for a, b in itertools.pairwise(sizes))
    assert mde_in_sigmas(3, 3, 0.05) == math.inf
    assert mde_in_sigmas(10, 10, 0.05 / 5) > mde_in_sigmas(10, 10, 0.05)


def test_mde_simulation_and_large_sample_formula_agree_at_the_switch():
    assert mde_in_sigmas(50, 50, 0.05) == pytest.approx(mde_in_sigmas(51, 51, 0.05), rel=0.05)


# --- too few repetitions ---------------------------------------------------------------------------------


def test_smallest_p_is_what_scipy_gives_for_completely_separated_samples():
    for n1, n2 in [(3, 3), (4, 4), (3, 5)]:
        separated = stats.mannwhitneyu(
            np.arange(n2) + 100.0, np.arange(n1), alternative="greater", method="exact"
        ).pvalue
        assert min_p_one_sided(n1, n2) == pytest.approx(separated)


def test_minimum_repetitions_per_side_with_holm():
    # alpha 0.05: 1/C(6,3) = 0.05 is not below it, 1/C(8,4) = 0.014 is
    assert [min_reps_per_side(0.05 / m) for m in (1, 2, 3, 4, 12, 13)] == [4, 4, 4, 5, 5, 6]


def test_three_repetitions_are_inconclusive_however_large_the_change():
    got = compare_latency([10.0, 10.1, 10.2], [20.0, 20.1, 20.2])
    assert not got.can_reject and got.min_reps_needed == 4
    verdict = gate_single(got, max_worse_rel=0.05)
    assert verdict.outcome == INCONCLUSIVE
    assert "need >= 4 repetitions per side at alpha 0.05" in verdict.reason and "have 3" in verdict.reason


def test_holm_family_raises_the_repetitions_needed():
    base, cand = [10.0, 10.1, 10.2, 10.3], [20.0, 20.1, 20.2, 20.3]
    alone = compare_latency(base, cand, n_tests=1)
    assert alone.can_reject and gate_single(alone).outcome == FAIL
    in_family = compare_latency(base, cand, n_tests=4)
    assert not in_family.can_reject and in_family.min_reps_needed == 5
    verdict = gate_single(in_family)
    assert verdict.outcome == INCONCLUSIVE and "Holm over 4 metrics" in verdict.reason


def test_empty_side_is_inconclusive():
    got = compare_latency([], [1.0, 2.0, 3.0, 4.0])
    assert got.shift is None and got.p_value == 1.0 and not got.can_reject
    verdict = gate_single(got, max_worse_rel=0.05)
    assert verdict.outcome == INCONCLUSIVE and "no baseline values" in verdict.reason


# --- classify --------------------------------------------------------------------------------------------


def shifted(rel_shift: float, seed: int = 21, n: int = 12, cv: float = 0.01):
    rng = np.random.default_rng(seed)
    base = latency_like(rng, n, cv=cv)
    return compare_latency(base, latency_like(rng, n, median=10 * (1 + rel_shift), cv=cv))


def test_warn_between_the_warn_and_fail_thresholds():
    got = shifted(0.07)
    assert gate_single(got, max_worse_rel=0.10, warn_worse_rel=0.05).outcome == WARN
    assert gate_single(got, max_worse_rel=0.05, warn_worse_rel=0.02).outcome == FAIL
    small = gate_single(got, max_worse_rel=0.10)
    assert small.outcome == PASS and "within 10.0%" in small.reason


def test_fail_needs_every_given_threshold_exceeded():
    got = shifted(0.07)  # about +0.7 ms on 10 ms
    assert gate_single(got, max_worse_rel=0.05, max_worse_abs=0.5).outcome == FAIL
    assert gate_single(got, max_worse_rel=0.05, max_worse_abs=1.0).outcome == PASS


def test_fail_needs_significance_after_adjustment():
    got = shifted(0.07)
    assert got.p_value < 0.001
    assert classify(got, p_adjusted=0.2, max_worse_rel=0.02).outcome != FAIL


def test_too_noisy_run_is_inconclusive_and_reports_the_mde():
    got = shifted(0.02, seed=4, n=6, cv=0.08)
    assert got.p_value > 0.05
    verdict = gate_single(got, max_worse_rel=0.05)
    assert got.worse_bound_rel > 0.05
    assert verdict.outcome == INCONCLUSIVE
    level = f"{math.floor(got.bound_level * 1000) / 10:.1f}%"
    assert (f"an increase of up to {got.worse_bound_rel:+.1%} ({level} one-sided bound) cannot be ruled out"
            in verdict.reason)
    assert f"could only have detected increases > {got.mde_rel:.1%}" in verdict.reason


def test_significant_but_small_worsening_is_inconclusive_when_the_bound_reaches_the_threshold():
    got = shifted(0.04, seed=2, n=10, cv=0.04)
    assert got.p_value < 0.05 and got.worse_rel < 0.05 < got.worse_bound_rel
    verdict = gate_single(got, max_worse_rel=0.05)
    assert verdict.outcome == INCONCLUSIVE
    assert verdict.reason.startswith("p95_latency: too noisy to tell: worse +")
    # a looser rule is answered: the bound is within 10 %
    assert gate_single(got, max_worse_rel=0.10).outcome == PASS


def test_quiet_run_without_change_passes_and_reports_the_mde():
    got = shifted(0.0, seed=6, n=10, cv=0.01)
    verdict = gate_single(got, max_worse_rel=0.05)
    assert got.worse_bound_rel < 0.05
    assert verdict.outcome == PASS
    assert f"an increase beyond {got.worse_bound_rel:+.1%} ruled out" in verdict.reason
    assert f"could have detected increases > {got.mde_rel:.1%}" in verdict.reason


def test_every_classification_names_its_cause():
    """Code reacts to the cause (the gate's suggestions), never to the reason's words."""
    cases = [
        (compare_latency([], [1.0, 2.0, 3.0, 4.0]), {}, INCONCLUSIVE, Cause.NO_DATA),
        (compare_latency([10.0, 10.1, 10.2], [20.0, 20.1, 20.2]), {}, INCONCLUSIVE, Cause.TOO_FEW_REPETITIONS),
        (shifted(0.07), {"max_worse_rel": 0.05}, FAIL, Cause.REGRESSION),
        (shifted(0.02, seed=4, n=6, cv=0.08), {"max_worse_rel": 0.05}, INCONCLUSIVE, Cause.TOO_NOISY),
        (shifted(0.07), {"max_worse_rel": 0.10, "warn_worse_rel": 0.05}, WARN, Cause.WORSE_THAN_WARN),
        (shifted(0.07), {"max_worse_rel": 0.10}, PASS, Cause.WITHIN_LIMIT),
        (shifted(-0.07), {"max_worse_rel": 0.05}, PASS, Cause.IMPROVED),
        (shifted(0.0, seed=6, n=10), {"max_worse_rel": 0.05}, PASS, Cause.NO_CHANGE),
    ]
    for comparison, limits, outcome, cause in cases:
        got = gate_single(comparison, **limits)
        assert (got.outcome, got.cause) == (outcome, cause), got.reason


def test_thresholds_must_be_non_negative():
    with pytest.raises(ValueError, match="must be >= 0"):
        gate_single(shifted(0.0), max_worse_rel=-0.05)


# --- degenerate inputs -----------------------------------------------------------------------------------


def test_all_values_equal_on_both_sides_is_no_change():
    got = compare_latency([5.0] * 6, [5.0] * 6)
    assert got.p_value == 1.0 and got.p_two_sided == 1.0 and got.p_method == "all-equal"
    assert got.shift == 0.0 and got.rel_change == 0.0
    assert gate_single(got, max_worse_rel=0.05).outcome == PASS


def test_zero_baseline_median_leaves_relative_change_undefined():
    got = compare_metric("error_rate", [0.0] * 8, [0.0, 0.0, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1],
                         higher_is_worse=True, unit="")
    assert got.rel_change is None and got.rel_ci is None and got.mde_rel is None
    assert "baseline median is 0: relative change undefined" in got.notes
    assert got.p_value < 0.05
    # any significant increase from zero is beyond a relative threshold; an absolute one still applies
    assert gate_single(got, max_worse_rel=0.5).outcome == FAIL
    assert gate_single(got, max_worse_abs=0.5).outcome == PASS
    assert "relative change undefined" in gate_single(got, max_worse_abs=0.5).reason
    nothing_then_nothing = compare_metric("error_rate", [0.0] * 8, [0.0] * 8, higher_is_worse=True, unit="")
    assert gate_single(nothing_then_nothing, max_worse_rel=0.5).outcome == PASS
    some = [0.0] * 6 + [0.1, 0.2]
    maybe_some = compare_metric("error_rate", [0.0] * 8, some, higher_is_worse=True, unit="")
    assert maybe_some.p_value > 0.05 and maybe_some.worse_bound > 0
    verdict = gate_single(maybe_some, max_worse_rel=0.5)
    assert verdict.outcome == INCONCLUSIVE
    assert f"up to {maybe_some.worse_bound:+.4g} (95.8% one-sided bound)" in verdict.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected_with_the_repetition(bad):
    with pytest.raises(ValueError, match=r"'p95_latency': candidate has non-finite values \(repetition 2"):
        compare_latency([1.0, 2.0, 3.0], [1.0, bad, 3.0])


def test_non_numbers_and_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="not all numbers"):
        compare_latency([1.0, "fast"], [1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        compare_latency([1.0], [2.0], alpha=1.5)
    with pytest.raises(ValueError, match="n_tests"):
        compare_latency([1.0], [2.0], n_tests=0)


def test_numpy_parameters_still_give_plain_json():
    got = compare_metric("x", np.arange(4.0), np.arange(4.0) + 9, higher_is_worse=np.bool_(True), unit="",
                         alpha=np.float64(0.05), n_tests=np.int64(2))
    assert json.loads(json.dumps(got.to_dict(), allow_nan=False))["n_tests"] == 2


def test_from_dict_restores_what_to_dict_wrote():
    cases = [shifted(0.07), compare_latency([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), compare_latency([], [1.0]),
             compare_metric("errors", [0.0] * 5, [0.0, 0.0, 1.0, 2.0, 0.0], higher_is_worse=True, unit="")]
    assert cases[1].mde_abs == math.inf and cases[1].worse_bound < math.inf
    for original in cases:
        text = json.dumps(original.to_dict(), allow_nan=False)
        assert MetricComparison.from_dict(json.loads(text)) == original
    with pytest.raises(ValueError, match="missing"):
        MetricComparison.from_dict({"name": "x"})


def test_to_dict_is_strict_json():
    for got in (shifted(0.07), compare_latency([1.0, 2.0], [3.0]), compare_latency([], [])):
        text = json.dumps(got.to_dict(), allow_nan=False)
        assert json.loads(text)["name"] == "p95_latency"
    assert json.loads(json.dumps(gate_single(shifted(0.07)).to_dict()))["outcome"] == FAIL


# --- multiple testing ------------------------------------------------------------------------------------


def holm_by_definition(pvalues):
    m = len(pvalues)
    ranked = sorted(pvalues)
    adjusted_ranked = [max(min(1.0, (m - k) * ranked[k]) for k in range(i + 1)) for i in range(m)]
    return [adjusted_ranked[ranked.index(p)] for p in pvalues]


def test_holm_matches_the_step_down_definition():
    rng = np.random.default_rng(17)
    cases = [[0.01, 0.04, 0.03, 0.2], [0.01, 0.01], [0.5], [0.0, 1.0, 0.02]]
    cases += [list(rng.uniform(0, 0.1, 7)) for _ in range(20)]
    for pvalues in cases:
        assert adjust_pvalues(pvalues, "holm") == pytest.approx(holm_by_definition(pvalues))


def test_bh_matches_scipy_false_discovery_control():
    rng = np.random.default_rng(19)
    cases = [[0.01, 0.04, 0.03, 0.2], [0.01, 0.01, 0.5], [0.3]]
    cases += [list(rng.uniform(0, 0.2, 9)) for _ in range(20)]
    for pvalues in cases:
        expected = stats.false_discovery_control(pvalues, method="bh")
        assert adjust_pvalues(pvalues, "bh") == pytest.approx(list(expected))


def test_holm_is_between_raw_and_bonferroni_and_never_below_bh():
    pvalues = [0.001, 0.012, 0.02, 0.04, 0.3]
    holm, bh = adjust_pvalues(pvalues, "holm"), adjust_pvalues(pvalues, "bh")
    for p, h, b in zip(pvalues, holm, bh, strict=True):
        assert p <= h <= min(1.0, 5 * p) and b <= h


def test_weighted_bh_rejects_what_its_definition_rejects():
    """Genovese, Roeder & Wasserman: with q_i = p_i / w_i, reject every q_i <= alpha k / m for the largest k with
    q_(k) <= alpha k / m. Unit weights give plain BH."""
    rng = np.random.default_rng(20)
    for _ in range(200):
        m = int(rng.integers(1, 30))
        p = list(rng.uniform(0, 0.05, m) ** rng.uniform(0.5, 2))
        w = rng.uniform(0.2, 5, m)
        w = list(w / w.mean())
        q = sorted(min(1.0, v / x) for v, x in zip(p, w, strict=True))
        k = max((i + 1 for i in range(m) if q[i] <= 0.05 * (i + 1) / m), default=0)
        expected = [min(1.0, v / x) <= 0.05 * k / m for v, x in zip(p, w, strict=True)]
        assert [a <= 0.05 for a in adjust_pvalues(p, "bh", weights=w)] == expected
        assert adjust_pvalues(p, "bh", weights=[1.0] * m) == pytest.approx(adjust_pvalues(p, "bh"))


def test_bh_weights_must_be_positive_average_one_and_match_the_p_values():
    for weights, message in (([1.0], "2 positive"), ([2.0, 0.0], "2 positive"), ([1.5, 1.0], "average 1"),
                             ([1.0, math.inf], "2 positive")):
        with pytest.raises(ValueError, match=message):
            adjust_pvalues([0.01, 0.2], "bh", weights=weights)
    with pytest.raises(ValueError, match="'bh' only"):
        adjust_pvalues([0.01, 0.2], "holm", weights=[1.0, 1.0])


def test_adjust_pvalues_rejects_bad_input():
    assert adjust_pvalues([]) == []
    with pytest.raises(ValueError, match="within"):
        adjust_pvalues([0.1, math.nan])
    with pytest.raises(ValueError, match="unknown"):
        adjust_pvalues([0.1], "bonferroni")



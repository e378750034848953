"""perfgate.compare.paired: signed-rank p-values, Walsh-average shift and CI, MDE, minimum pairs.

Synthetic data only, every generator seeded. The interleaved model: pair i shares a runner-noise term
s_i (both sides of the pair see it), plus a small independent term per measurement.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from perfgate.compare.classify import classify
from perfgate.compare.comparison import FAIL, INCONCLUSIVE, MetricComparison
from perfgate.compare.paired import (
    compare_paired_metric,
    min_p_one_sided_paired,
    min_pairs,
    paired_mde_in_sigmas,
    signed_rank_null_cdf,
    tied_signed_rank_pvalues,
    walsh_averages,
)
from perfgate.compare.stats import compare_metric


def interleaved(
    rng: np.random.Generator, n: int, *, worsening: float, shared_sd: float, own_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Latency-like pairs around 10 ms: a shared log-noise per pair, an independent one per value."""
    shared = rng.normal(0, shared_sd, n)
    base = 10.0 * np.exp(shared + rng.normal(0, own_sd, n))
    cand = 10.0 * (1 + worsening) * np.exp(shared + rng.normal(0, own_sd, n))
    return base, cand


def paired(baseline, candidate, **kwargs) -> MetricComparison:
    return compare_paired_metric("p95_latency", baseline, candidate, higher_is_worse=True, unit="ms", **kwargs)


# ---------------------------------------------------------------------------------------------------------
# p-values against scipy


@pytest.mark.parametrize("n", [5, 8, 12, 20, 60])
@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_pvalues_equal_scipy_wilcoxon_without_ties(n, higher_is_worse):
    rng = np.random.default_rng(n)
    base, cand = interleaved(rng, n, worsening=0.02, shared_sd=0.05, own_sd=0.02)
    got = compare_paired_metric("rps", base, cand, higher_is_worse=higher_is_worse, unit="1/s")
    worse = "greater" if higher_is_worse else "less"
    assert got.p_method == ("wilcoxon-exact" if n <= 50 else "wilcoxon-asymptotic")
    assert got.p_value == pytest.approx(stats.wilcoxon(cand, base, alternative=worse).pvalue, rel=1e-12)
    assert got.p_two_sided == pytest.approx(stats.wilcoxon(cand, base).pvalue, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_exact_tied_pvalues_equal_scipy_permutation_with_pratt(seed):
    rng = np.random.default_rng(seed)
    diffs = rng.integers(-3, 5, size=9).astype(float)  # ties and zeros, like error counts
    method = stats.PermutationMethod(n_resamples=10**4)  # 2^9 sign patterns: scipy enumerates them all
    for alternative, higher_is_worse in (("greater", True), ("less", False)):
        want = stats.wilcoxon(diffs, zero_method="pratt", alternative=alternative, method=method).pvalue
        got_worse, got_two = tied_signed_rank_pvalues(diffs, higher_is_worse=higher_is_worse)
        assert got_worse == pytest.approx(want, rel=1e-9)
    want_two = stats.wilcoxon(diffs, zero_method="pratt", method=method).pvalue
    assert got_two == pytest.approx(want_two, rel=1e-9)


def test_null_distribution_equals_enumerating_every_sign_pattern():
    for n in range(1, 11):
        sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s)
                for signs in itertools.product((0, 1), repeat=n)]
        counts = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
        assert np.allclose(signed_rank_null_cdf(n), np.cumsum(counts) / 2**n, rtol=0, atol=1e-15)


def test_zero_differences_are_handled_monotonically_pratt():
    """Pratt's (1959) example: dropping zeros (zero_method="wilcox") makes a pair that got slightly BETTER
    look like more evidence of a worsening than a pair that did not change. Pratt's ranking does not."""
    rest = [2, 3, 4, 6, 7, 8, 9, 11, 14, 15, 17, -18]
    base = np.full(13, 100.0)
    p = {}
    for first in (-0.5, 0.0, 0.5):
        got = paired(base, base + np.array([first, *rest]))
        p[first] = got.p_value
    assert p[-0.5] > p[0.0] > p[0.5]
    # the anomaly Pratt's method avoids: with the zero dropped (scipy's zero_method="wilcox") the
    # slightly better pair gives the smaller p
    slightly_better, zero_dropped = np.array([-0.5, *rest]), np.array(rest, dtype=float)
    assert (tied_signed_rank_pvalues(slightly_better, higher_is_worse=True)[0]
            < tied_signed_rank_pvalues(zero_dropped, higher_is_worse=True)[0])
    assert tied_signed_rank_pvalues(zero_dropped, higher_is_worse=True)[0] == pytest.approx(
        stats.wilcoxon(rest, alternative="greater").pvalue)  # what zero_method="wilcox" tests


def test_all_pairs_equal_gives_p_one_and_no_change():
    got = paired([5.0, 6.0, 7.0, 8.0, 9.0, 10.0], [5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert (got.p_value, got.p_two_sided, got.p_method) == (1.0, 1.0, "all-equal")
    assert got.shift == 0.0
    assert any("every difference is 0" in note for note in got.notes)


def test_zero_differences_are_noted_with_the_real_smallest_p():
    base = np.arange(10.0, 20.0)
    cand = base + np.array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7.5])
    got = paired(base, cand)
    assert got.p_method == "wilcoxon-exact-ties"
    assert got.p_value == pytest.approx(0.5**7)  # all 7 signed differences positive
    assert any("3 of 10 pairs are equal" in note and "1/2^7" in note for note in got.notes)


# ---------------------------------------------------------------------------------------------------------
# Hodges-Lehmann shift and CI


def test_shift_is_the_median_of_walsh_averages_computed_naively():
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 9, 16):
        base, cand = interleaved(rng, n, worsening=0.03, shared_sd=0.1, own_sd=0.03)
        diffs = [c - b for b, c in zip(base, cand, strict=True)]
        naive = sorted((diffs[i] + diffs[j]) / 2 for i in range(n) for j in range(i, n))
        assert list(walsh_averages(diffs)) == pytest.approx(naive)
        assert paired(base, cand).shift == pytest.approx(float(np.median(naive)))


def test_ci_is_the_dual_of_the_two_sided_test():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(6, 16))
        base, cand = interleaved(rng, n, worsening=rng.choice([0.0, 0.01, 0.03]), shared_sd=0.05, own_sd=0.02)
        got = paired(base, cand)
        lo, hi = got.shift_ci
        excludes_zero = lo > 0 or hi < 0
        assert excludes_zero == (got.p_two_sided <= 1 - got.ci_level + 1e-12)
        assert got.ci_level >= 0.90


@pytest.mark.parametrize("noise", ["normal", "student_t3"])
def test_ci_coverage_is_nominal(noise):
    rng = np.random.default_rng(2024 if noise == "normal" else 2025)
    n, runs, true_shift = 10, 600, 0.3
    covered = bounded_below = 0
    for _ in range(runs):
        shared = rng.normal(0, 1.0, n)
        own = rng.normal(0, 0.2, (2, n)) if noise == "normal" else 0.2 * rng.standard_t(3, (2, n))
        base, cand = 10 + shared + own[0], 10 + true_shift + shared + own[1]
        got = paired(base, cand)
        covered += got.shift_ci[0] <= true_shift <= got.shift_ci[1]
        bounded_below += true_shift <= got.worse_bound
    level = got.ci_level  # alpha 0.05 in each tail: 91.6 % achieved at 10 pairs
    assert level == pytest.approx(1 - 2 * signed_rank_null_cdf(10)[10]) == pytest.approx(1 - 2 * 43 / 1024)
    assert abs(covered / runs - level) < 0.03  # binomial sd 0.009
    assert bounded_below / runs >= (1 + level) / 2 - 0.03


def test_ci_unbounded_with_too_few_pairs_for_the_level():
    got = paired([10, 11, 12, 13], [11, 12, 13, 14.5])  # alpha 0.05 a tail needs 1/2^n <= 0.05: 5 pairs
    assert got.shift_ci == (-math.inf, math.inf)
    assert any("confidence interval unbounded: 4 pairs" in note for note in got.notes)
    assert paired([10, 11, 12, 13, 14], [11, 12, 13, 14, 15.5]).shift_ci[0] > -math.inf


@pytest.mark.parametrize("higher_is_worse", [True, False])
def test_the_paired_interval_excludes_no_change_exactly_when_the_one_sided_test_rejects(higher_is_worse):
    rng = np.random.default_rng(12)
    rejected = 0
    for _ in range(300):
        n = int(rng.integers(5, 16))
        base, cand = interleaved(rng, n, worsening=rng.choice([-0.02, 0.0, 0.02]), shared_sd=0.05, own_sd=0.02)
        got = compare_paired_metric("x", base, cand, higher_is_worse=higher_is_worse, unit="ms", scale="log")
        assert got.excludes_no_change == (got.p_value < 0.05)
        assert got.pairs_worse == int(np.sum(cand > base if higher_is_worse else cand < base))
        rejected += got.excludes_no_change
    assert 30 < rejected < 270


# ---------------------------------------------------------------------------------------------------------
# What pairing buys: shared noise removed


def test_aa_false_reject_rate_is_at_most_alpha():
    rejects = 0
    for seed in range(200):
        base, cand = interleaved(np.random.default_rng(seed), 10, worsening=0.0, shared_sd=0.08, own_sd=0.015)
        rejects += paired(base, cand).p_value < 0.05
    assert rejects / 200 <= 0.05 + 0.03  # binomial sd 0.015 at the test's real size (<= 0.05)


def test_pairing_detects_a_shift_hidden_by_shared_noise():
    detected_paired = detected_unpaired = 0
    for seed in range(200):
        base, cand = interleaved(np.random.default_rng(seed), 10, worsening=0.05, shared_sd=0.08, own_sd=0.015)
        detected_paired += paired(base, cand).p_value < 0.05
        unpaired = compare_metric("p95_latency", base, cand, higher_is_worse=True, unit="ms")
        detected_unpaired += unpaired.p_value < 0.05
    assert detected_paired / 200 >= 0.95
    assert detected_unpaired / 200 <= 0.6
    assert detected_paired - detected_unpaired >= 0.4 * 200


def test_classify_fails_a_paired_regression_the_unpaired_test_cannot_see():
    base, cand = interleaved(np.random.default_rng(3), 12, worsening=0.10, shared_sd=0.15, own_sd=0.01)
    got = paired(base, cand)
    assert classify(got, p_adjusted=got.p_value, max_worse_rel=0.05).outcome == FAIL
    unpaired = compare_metric("p95_latency", base, cand, higher_is_worse=True, unit="ms")
    assert classify(unpaired, p_adjusted=unpaired.p_value, max_worse_rel=0.05).outcome != FAIL


# ---------------------------------------------------------------------------------------------------------
# MDE and minimum pairs


def test_mde_is_calibrated_at_80_percent_power():
    rng = np.random.default_rng(99)
    n, own_sd = 10, 0.03
    mdes = [paired(*interleaved(rng, n, worsening=0.0, shared_sd=0.1, own_sd=own_sd)).mde_rel for _ in range(200)]
    x = float(np.median(mdes))
    assert x == pytest.approx(paired_mde_in_sigmas(n, 0.05) * own_sd * math.sqrt(2), rel=0.15)

    def detection(worsening: float) -> float:
        hits = sum(
            paired(*interleaved(rng, n, worsening=worsening, shared_sd=0.1, own_sd=own_sd)).p_value < 0.05
            for _ in range(300)
        )
        return hits / 300

    assert 0.65 <= detection(x) <= 0.92
    assert detection(1.5 * x) >= 0.9


def test_mde_simulation_agrees_with_the_efficiency_formula_at_the_switch():
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert paired_mde_in_sigmas(50, 0.05) == pytest.approx(z / math.sqrt(50) * math.sqrt(math.pi / 3), rel=0.05)
    assert paired_mde_in_sigmas(51, 0.05) == pytest.approx(z / math.sqrt(51) * math.sqrt(math.pi / 3))


def test_min_pairs_follow_one_over_two_to_the_n():
    assert min_p_one_sided_paired(5) == 1 / 32
    assert [min_pairs(0.05 / m) for m in (1, 2, 3, 4, 6, 7, 12, 13, 25, 26)] == [5, 6, 6, 7, 7, 8, 8, 9, 9, 10]
    for m in range(1, 60):
        n = min_pairs(0.05 / m)
        assert 0.5**n < 0.05 / m <= 0.5 ** (n - 1)


def test_too_few_pairs_cannot_reject_and_say_so():
    base = [10.0, 10.5, 9.8, 10.2, 10.1, 9.9, 10.3]
    cand = [v * 1.5 for v in base]
    got = paired(base[:4], cand[:4])
    assert not got.can_reject and got.mde_abs == math.inf
    assert got.min_p_possible == 1 / 16 and got.min_reps_needed == 5
    assert "too few repetitions: need >= 5 pairs at per-test alpha 0.05; have 4" in got.notes
    assert classify(got, p_adjusted=got.p_value, max_worse_rel=0.05).outcome == INCONCLUSIVE
    with_holm = paired(base, cand, n_tests=4)  # per-test alpha 0.0125: 1/2^7 = 0.0078 is the first below
    assert with_holm.can_reject and with_holm.min_reps_needed == 7
    assert with_holm.p_value == 0.5**7


# ---------------------------------------------------------------------------------------------------------
# Fields, directions, degenerate inputs


def test_direction_relative_values_and_counts():
    base = np.array([1000.0, 980, 1020, 1010, 990, 1005, 995, 1015])
    cand = base * 0.9  # rps dropped 10 % in every pair
    got = compare_paired_metric("rps", base, cand, higher_is_worse=False, unit="1/s")
    assert (got.n_baseline, got.n_candidate) == (8, 8)
    assert got.p_value == pytest.approx(1 / 256) and got.worse_shift > 0
    assert got.rel_change == pytest.approx(got.shift / np.median(base))
    assert got.rel_ci == pytest.approx((got.shift_ci[0] / np.median(base), got.shift_ci[1] / np.median(base)))
    assert got.worse_bound_rel == pytest.approx(got.worse_bound / np.median(base))
    assert got.worse_rel == pytest.approx(0.1, abs=0.01)


def test_zero_baseline_median_leaves_relative_values_undefined():
    got = compare_paired_metric("errors", [0, 0, 0, 0, 0, 1], [1, 2, 1, 3, 1, 1], higher_is_worse=True, unit="")
    assert got.rel_change is None and got.rel_ci is None and got.mde_rel is None and got.worse_bound_rel is None
    assert "baseline median is 0: relative change undefined" in got.notes
    assert got.shift > 0 and got.p_method == "wilcoxon-exact-ties"


def test_json_round_trip():
    got = paired([10, 11, 12, 13, 14], [11, 12, 13, 14, 15.5])
    text = json.dumps(got.to_dict(), allow_nan=False)
    assert MetricComparison.from_dict(json.loads(text)) == got


def test_no_pairs():
    got = paired([], [])
    assert got.shift is None and got.p_value == 1.0 and got.n_baseline == 0
    assert classify(got, p_adjusted=1.0, max_worse_rel=0.05).outcome == INCONCLUSIVE


@pytest.mark.parametrize(
    ("base", "cand", "message"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "'p95_latency'.*3 baseline and 2 candidate"),
        ([1.0, math.nan], [1.0, 2.0], "'p95_latency': baseline has non-finite"),
        ([1.0, 2.0], [1.0, math.inf], "'p95_latency': candidate has non-finite"),
        ([1.0, "x"], [1.0, 2.0], "'p95_latency': baseline values are not all numbers"),
    ],
)
def test_bad_inputs_raise_naming_the_metric(base, cand, message):
    with pytest.raises(ValueError, match=message):
        paired(base, cand)

"""Paired per-metric statistics, for interleaved runs: repetition i of the baseline and repetition i of
the candidate ran at the same time (or back to back) on the same machine, so they share that moment's
noise (a noisy neighbour, CPU frequency, cache state). Testing the differences d_i = candidate_i -
baseline_i removes the shared part; only the noise that differs within a pair remains.

The result is the same MetricComparison as stats.compare_metric, with the same meaning for every field,
so classify(), the gate and the renderers treat both alike. The pieces, explained in docs/statistics.md
("Paired repetitions (interleaved mode)"):

- Wilcoxon signed-rank test on the d_i: one-sided in the worse direction for the gate, two-sided for the
  report. Zero differences are ranked and carry no sign (Pratt); ties and zeros get the exact
  conditional sign-flip distribution up to 50 pairs.
- Hodges-Lehmann shift: the median of the Walsh averages (d_i + d_j) / 2, i <= j, with the
  distribution-free CI from their order statistics (inverting the signed-rank test), alpha in each tail.
- Scale: as for the unpaired comparison, ratio metrics are paired as log ratios log(c_i / b_i).
- MDE: simulated once per (n, alpha) for normal differences, scaled by Shamos' spread of the d_i.
- Minimum pairs: the smallest one-sided p is 1 / 2^n.

scipy is imported inside the functions that test (as in stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from perfgate.compare.assemble import (
    as_finite_array,
    check_parameters,
    common_fields,
    comparison_on_scale,
    comparison_without_shift,
    on_scale,
    usable_scale,
)
from perfgate.compare.comparison import MetricComparison, Scale
from perfgate.compare.stats import (
    FLOAT_SLACK,
    MDE_POWER,
    MDE_SIMULATION_BATCH,
    MDE_SIMULATION_RUNS,
    MDE_SIMULATION_SEED,
    SHAMOS_TO_SIGMA,
)

# Exact p-values and the exact null distribution of W+ up to this many pairs; above, the normal
# approximation (the same bound as scipy's "auto" and as stats.EXACT_MAX_PER_SIDE).
EXACT_MAX_PAIRS = 50
# Asymptotic relative efficiency of the signed-rank test vs the paired t-test under normal noise: 3/pi.
SIGNED_RANK_EFFICIENCY_FACTOR = math.sqrt(math.pi / 3)


def compare_paired_metric(
    name: str,
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    higher_is_worse: bool,
    unit: str,
    alpha: float = 0.05,
    n_tests: int = 1,
    scale: Scale = "linear",
) -> MetricComparison:
    """Compare one metric over n pairs: baseline[i] and candidate[i] were measured together.

    Same parameters and result as stats.compare_metric; n_baseline == n_candidate == n pairs, and
    pairs_worse counts the pairs whose candidate was worse. Raises ValueError (naming the metric) for
    different lengths, NaN/inf/non-numeric values or bad parameters.
    """
    check_parameters(alpha, n_tests)
    alpha, n_tests = float(alpha), int(n_tests)
    higher_is_worse = bool(higher_is_worse)
    base = as_finite_array(name, "baseline", baseline)
    cand = as_finite_array(name, "candidate", candidate)
    if len(base) != len(cand):
        raise ValueError(
            f"metric {name!r}: paired comparison needs as many candidate as baseline repetitions, "
            f"got {len(base)} baseline and {len(cand)} candidate"
        )
    n = len(base)
    per_test_alpha = alpha / n_tests
    needed = min_pairs(per_test_alpha)
    common = common_fields(name, unit, higher_is_worse, base, cand, alpha=alpha, n_tests=n_tests,
                           min_p=min_p_one_sided_paired(n), needed=needed)
    can_reject = common["can_reject"]
    if n == 0:
        return comparison_without_shift(common, base=base, cand=cand, note="no baseline and candidate pairs")

    scale, notes = usable_scale(scale, base, cand)
    diffs = on_scale(cand, scale) - on_scale(base, scale)
    walsh = walsh_averages(diffs)
    shift = float(np.median(walsh))
    lo, hi, ci_level = paired_shift_confidence_interval(walsh, n, alpha)
    if math.isinf(lo) or math.isinf(hi):
        notes.append(f"confidence interval unbounded: {n} pairs are too few at alpha {alpha:g} a tail")
    p_worse, p_two, method = wilcoxon_pvalues(diffs, higher_is_worse=higher_is_worse)
    notes += _tie_notes(diffs, method)
    mde = paired_minimum_detectable_shift(diffs, per_test_alpha) if can_reject else math.inf
    if not can_reject:
        notes.append(
            f"too few repetitions: need >= {needed} pairs at per-test alpha {per_test_alpha:.3g}; have {n}"
        )
    worse = int(np.count_nonzero(diffs > 0 if higher_is_worse else diffs < 0))
    return comparison_on_scale(
        common, scale=scale, base_median=float(np.median(base)), candidate_median=float(np.median(cand)),
        shift=shift, shift_ci=(lo, hi), ci_level=ci_level, p_values=(p_worse, p_two, method), mde=mde,
        notes=notes, pairs_worse=worse)


def _tie_notes(diffs: np.ndarray, method: str) -> list[str]:
    if method == "all-equal":
        return ["all pairs are equal (every difference is 0): no change"]
    notes = []
    zeros = int(np.count_nonzero(diffs == 0))
    if zeros:
        notes.append(
            f"{zeros} of {len(diffs)} pairs are equal (difference 0): ranked but unsigned (Pratt); "
            f"the smallest possible p is 1/2^{len(diffs) - zeros}"
        )
    if method == "wilcoxon-asymptotic" and _has_ties_or_zeros(diffs):
        notes.append("tied differences: p-value from the tie-corrected normal approximation")
    return notes


def _has_ties_or_zeros(diffs: np.ndarray) -> bool:
    magnitudes = np.abs(diffs)
    return bool(np.any(magnitudes == 0)) or len(np.unique(magnitudes)) < len(magnitudes)


# ---------------------------------------------------------------------------------------------------------
# Wilcoxon signed-rank test


def wilcoxon_pvalues(diffs: np.ndarray, *, higher_is_worse: bool) -> tuple[float, float, str]:
    """(one-sided p in the worse direction, two-sided p, method) for the differences candidate - baseline.

    Zero differences: Pratt (ranked with the others, no sign). Method: scipy's exact distribution with
    no ties or zeros and <= 50 pairs ("wilcoxon-exact"); with ties or zeros and <= 50 pairs the exact
    sign-flip distribution given them ("wilcoxon-exact-ties", see tied_signed_rank_pvalues); otherwise
    scipy's normal approximation with the tie and zero correction ("wilcoxon-asymptotic"). Every
    difference 0: p = 1 ("all-equal").
    """
    from scipy import stats
    diffs = np.asarray(diffs, dtype=float)
    if np.all(diffs == 0):
        return 1.0, 1.0, "all-equal"
    small = len(diffs) <= EXACT_MAX_PAIRS
    if small and _has_ties_or_zeros(diffs):
        p_worse, p_two = tied_signed_rank_pvalues(diffs, higher_is_worse=higher_is_worse)
        return p_worse, p_two, "wilcoxon-exact-ties"
    method = "exact" if small else "asymptotic"
    worse = "greater" if higher_is_worse else "less"
    p_worse = stats.wilcoxon(diffs, zero_method="pratt", alternative=worse, method=method).pvalue
    p_two = stats.wilcoxon(diffs, zero_method="pratt", alternative="two-sided", method=method).pvalue
    return min(1.0, float(p_worse)), min(1.0, float(p_two)), f"wilcoxon-{method}"


def tied_signed_rank_pvalues(diffs: np.ndarray, *, higher_is_worse: bool) -> tuple[float, float]:
    """Exact sign-flip p-values of the signed-rank statistic with ties and zeros: (worse one-sided, two-sided).

    Under H0 (differences symmetric about 0) each non-zero difference is equally likely to be + or -,
    given the magnitudes. Midranks of |d| (zeros included, Pratt) are doubled to integers and the 2^k
    sign patterns are counted per W+ by dynamic programming - the distribution scipy's
    PermutationMethod enumerates. Two-sided p is twice the smaller one-sided p, capped at 1.
    """
    from scipy import stats
    doubled_ranks = np.rint(2 * stats.rankdata(np.abs(diffs))).astype(int)
    signed = diffs != 0
    observed = int(doubled_ranks[diffs > 0].sum())
    ways = np.zeros(int(doubled_ranks[signed].sum()) + 1)  # ways[s]: sign patterns with W+ = s
    ways[0] = 1.0
    for rank in doubled_ranks[signed]:
        ways[rank:] = ways[rank:] + ways[:-rank].copy()
    distribution = ways / ways.sum()
    p_greater = float(distribution[observed:].sum())
    p_less = float(distribution[: observed + 1].sum())
    p_worse = p_greater if higher_is_worse else p_less
    return min(1.0, p_worse), min(1.0, 2 * min(p_greater, p_less))


def min_p_one_sided_paired(n_pairs: int) -> float:
    """Smallest one-sided p of the exact signed-rank test with n pairs (no zeros): 1 / 2^n; 1 for none."""
    return 1.0 if n_pairs == 0 else 0.5**n_pairs


def min_pairs(per_test_alpha: float) -> int:
    """Smallest n such that n pairs can give a one-sided p < per_test_alpha."""
    n = 1
    while min_p_one_sided_paired(n) >= per_test_alpha:
        n += 1
    return n


@lru_cache(maxsize=128)
def signed_rank_null_cdf(n_pairs: int) -> np.ndarray:
    """P(W+ <= w) for w = 0..n(n+1)/2 under H0, no ties: exact up to 50 pairs, else normal approximation.

    W+ is the sum of the ranks with a positive sign; each rank is + or - with probability 1/2, so the
    counts are those of the subsets of {1..n} per sum.
    """
    from scipy import stats
    top = n_pairs * (n_pairs + 1) // 2
    if n_pairs > EXACT_MAX_PAIRS:
        sd = math.sqrt(n_pairs * (n_pairs + 1) * (2 * n_pairs + 1) / 24)
        cdf = stats.norm.cdf((np.arange(top + 1) + 0.5 - top / 2) / sd)
    else:
        counts = np.zeros(top + 1)
        counts[0] = 1.0
        for rank in range(1, n_pairs + 1):
            counts[rank:] = counts[rank:] + counts[:-rank].copy()
        cdf = np.cumsum(counts) / counts.sum()
    cdf.setflags(write=False)
    return cdf


# ---------------------------------------------------------------------------------------------------------
# Hodges-Lehmann shift of the differences and its confidence interval


def walsh_averages(diffs: Sequence[float]) -> np.ndarray:
    """Sorted (d_i + d_j) / 2 for all i <= j: n(n+1)/2 values."""
    d = np.asarray(diffs, dtype=float)
    i, j = np.triu_indices(len(d))
    return np.sort((d[i] + d[j]) / 2)


def paired_shift_confidence_interval(
    sorted_walsh: np.ndarray, n_pairs: int, tail: float
) -> tuple[float, float, float]:
    """(lo, hi, achieved level) for the paired shift, from the sorted Walsh averages.

    Inverting the signed-rank test (W+ = number of positive Walsh averages): drop the k smallest and k
    largest, k the largest number with P(W+ <= k-1) <= tail. Each end is a one-sided (1 - tail) bound; the
    achieved two-sided level 1 - 2 P(W+ <= k-1) is >= 1 - 2 tail. If nothing can be dropped the interval
    is (-inf, inf).
    """
    k = _walsh_averages_to_drop(n_pairs, tail)
    if k == 0:
        return -math.inf, math.inf, 1.0
    lo, hi = float(sorted_walsh[k - 1]), float(sorted_walsh[len(sorted_walsh) - k])
    return lo, hi, float(1 - 2 * signed_rank_null_cdf(n_pairs)[k - 1])


def _walsh_averages_to_drop(n_pairs: int, tail: float) -> int:
    """Largest k with P(W+ <= k-1) <= tail."""
    cdf = signed_rank_null_cdf(n_pairs)
    k = int(np.searchsorted(cdf, tail * (1 + FLOAT_SLACK), side="right"))
    return min(k, (len(cdf) - 1) // 2)


# ---------------------------------------------------------------------------------------------------------
# Minimum detectable effect


def robust_sigma_of_differences(diffs: np.ndarray) -> float:
    """Spread of the within-pair differences, robust to outliers: Shamos' estimator
    1.048 * median |d_i - d_k| (i < k), which needs no location estimate. Falls back to the standard
    deviation when more than half of those are 0 (discrete metrics).
    """
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return 0.0
    spreads = np.abs(np.subtract.outer(d, d)[np.triu_indices(len(d), 1)])
    sigma = SHAMOS_TO_SIGMA * float(np.median(spreads))
    if sigma == 0:
        sigma = float(np.std(d, ddof=1))
    return sigma


def paired_minimum_detectable_shift(
    diffs: np.ndarray, per_test_alpha: float, power: float = MDE_POWER
) -> float:
    """Shift this paired run would detect with `power` (one-sided, per_test_alpha), given the spread of its
    differences: paired_mde_in_sigmas(n, ...) * robust_sigma_of_differences(diffs).
    """
    return paired_mde_in_sigmas(len(diffs), per_test_alpha, power) * robust_sigma_of_differences(diffs)


@lru_cache(maxsize=256)
def paired_mde_in_sigmas(n_pairs: int, per_test_alpha: float, power: float = MDE_POWER) -> float:
    """Shift, in units of the sigma of the differences, that the one-sided signed-rank test at
    per_test_alpha detects with probability `power` when the differences are normal.

    Up to 50 pairs: simulated for the discrete test with fixed random numbers. The test rejects when
    W+ >= N - j (N = n(n+1)/2, j the last index with P(W+ <= j) < alpha), which, W+ being the number of
    positive Walsh averages, happens for every shift > -A(j) with A the sorted Walsh averages of the
    simulated noise (0-based). The MDE is the `power` quantile of that critical shift. More pairs:
    (z[1-alpha] + z[power]) / sqrt(n) * sqrt(pi/3), pi/3 the efficiency loss against the paired t-test.
    """
    from scipy import stats
    cdf = signed_rank_null_cdf(n_pairs)
    below = np.flatnonzero(cdf < per_test_alpha)
    if n_pairs == 0 or below.size == 0:
        return math.inf
    if n_pairs > EXACT_MAX_PAIRS:
        z = stats.norm.ppf(1 - per_test_alpha) + stats.norm.ppf(power)
        return float(z / math.sqrt(n_pairs) * SIGNED_RANK_EFFICIENCY_FACTOR)
    j = int(below[-1])
    i, k = np.triu_indices(n_pairs)
    rng = np.random.default_rng(MDE_SIMULATION_SEED)
    critical_shifts = []
    for _ in range(MDE_SIMULATION_RUNS // MDE_SIMULATION_BATCH):
        noise = rng.standard_normal((MDE_SIMULATION_BATCH, n_pairs))
        walsh = (noise[:, i] + noise[:, k]) / 2
        critical_shifts.append(-np.partition(walsh, j, axis=1)[:, j])
    return float(np.quantile(np.concatenate(critical_shifts), power))

"""Per-metric statistics: did ONE metric get worse, not change, or can this run not tell?

Input is one value per repetition on each side (p95 latency of each repetition, rps, CPU per request...).
The pieces, each explained in docs/statistics.md:

- Mann-Whitney U test (scipy) for significance: one-sided in the metric's "worse" direction for the gate,
  two-sided for the report.
- Hodges-Lehmann shift (median of pairwise differences candidate - baseline) with the distribution-free
  confidence interval obtained by inverting the Mann-Whitney test (order statistics of the differences),
  alpha in each tail: its worse end is the one-sided bound that decides PASS, and it excludes zero whenever
  the one-sided test rejects at alpha (so a FAIL's interval never holds zero).
- Scale: ratio metrics (latency, throughput, CPU) are compared as logarithms, so changes are ratios and a
  drop can never exceed 100 %; counts and fractions that can be 0 (error rate, shares) on the linear scale.
- Minimum detectable effect (MDE): the shift this run would detect with 80 % power given its observed noise.
- Minimum repetitions: with the exact U distribution the smallest one-sided p is 1 / C(n1 + n2, n1); when that
  cannot go below the per-test alpha (alpha / m under Holm with m metrics) the outcome is INCONCLUSIVE.
- Multiple testing: Holm (default) or Benjamini-Hochberg adjusted p-values.

Everything here is pure: numbers in, frozen records (compare/comparison.py) out. scipy is imported inside the
functions that test, so importing this module (the gate, the report) costs no scipy until a test runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

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

MDE_POWER = 0.80
# Exact p-values (scipy's U distribution without ties, our permutation distribution with ties) up to
# this many values a side; above, the normal approximation (benchstat uses the same bound without ties).
EXACT_MAX_PER_SIDE = 50
# Shamos' scale estimator: 1.048 * median |x_i - x_k| estimates the standard deviation of normal noise.
SHAMOS_TO_SIGMA = 1.048
# The MDE for small samples is simulated once per (n1, n2, alpha) with fixed random numbers.
MDE_SIMULATION_RUNS = 4000
MDE_SIMULATION_BATCH = 250
MDE_SIMULATION_SEED = 20240605
MDE_SIMULATION_MAX_PAIRS = 2500
# Asymptotic relative efficiency of Mann-Whitney vs the t-test under normal noise is 3/pi: it needs
# pi/3 times the samples, i.e. its detectable shift is sqrt(pi/3) times the t-test's.
MWU_EFFICIENCY_FACTOR = math.sqrt(math.pi / 3)
FLOAT_SLACK = 1e-9  # so that e.g. (1 - 0.9) / 2 == 0.04999... still admits a tail probability of 1/20


# ---------------------------------------------------------------------------------------------------------
# compare_metric


def compare_metric(
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
    """Compare per-repetition values of one metric.

    `n_tests` is the number of metrics gated together (the Holm family): whether this metric can ever be
    significant, and its MDE, are judged at Holm's strictest per-test level alpha / n_tests. The interval
    has alpha in each tail whatever n_tests is (see MetricComparison). `scale` "log" compares ratios
    (every value must be > 0, else the linear scale is used with a note).
    Raises ValueError for NaN/inf/non-numeric values or bad parameters.
    """
    check_parameters(alpha, n_tests)
    # plain Python numbers, so that to_dict() is JSON even when numpy scalars were passed in
    alpha, n_tests = float(alpha), int(n_tests)
    higher_is_worse = bool(higher_is_worse)
    base = as_finite_array(name, "baseline", baseline)
    cand = as_finite_array(name, "candidate", candidate)
    n1, n2 = len(base), len(cand)
    per_test_alpha = alpha / n_tests
    needed = min_reps_per_side(per_test_alpha)
    common = common_fields(name, unit, higher_is_worse, base, cand, alpha=alpha, n_tests=n_tests,
                           min_p=min_p_one_sided(n1, n2), needed=needed)
    can_reject = common["can_reject"]
    if n1 == 0 or n2 == 0:
        return _comparison_with_an_empty_side(common, base, cand)

    scale, notes = usable_scale(scale, base, cand)
    base_w, cand_w = on_scale(base, scale), on_scale(cand, scale)
    diffs = np.sort(np.subtract.outer(cand_w, base_w).ravel())
    shift = float(np.median(diffs))
    lo, hi, ci_level = shift_confidence_interval(diffs, n1, n2, alpha)
    if math.isinf(lo) or math.isinf(hi):
        notes.append(f"confidence interval unbounded: {n1}+{n2} repetitions are too few at alpha {alpha:g} a tail")
    p_worse, p_two, method = mann_whitney_pvalues(base, cand, higher_is_worse=higher_is_worse)
    if method == "all-equal":
        notes.append("all values are equal on both sides: no change")
    elif method == "asymptotic" and _has_ties(base, cand):
        notes.append("tied values: p-value from the tie-corrected normal approximation")
    mde = minimum_detectable_shift(base_w, cand_w, per_test_alpha) if can_reject else math.inf
    if not can_reject:
        notes.append(
            f"too few repetitions: need >= {needed} per side at per-test alpha {per_test_alpha:.3g}; "
            f"have {n1} and {n2}"
        )

    return comparison_on_scale(
        common, scale=scale, base_median=float(np.median(base)), candidate_median=float(np.median(cand)),
        shift=shift, shift_ci=(lo, hi), ci_level=ci_level, p_values=(p_worse, p_two, method), mde=mde,
        notes=notes)


def _comparison_with_an_empty_side(
    common: dict[str, Any], base: np.ndarray, cand: np.ndarray
) -> MetricComparison:
    sides = (("baseline", base), ("candidate", cand))
    empty = " and ".join(side for side, values in sides if not values.size)
    return comparison_without_shift(common, base=base, cand=cand, note=f"no {empty} values")


def _has_ties(base: np.ndarray, cand: np.ndarray) -> bool:
    pooled = np.concatenate([base, cand])
    return len(np.unique(pooled)) < len(pooled)


# ---------------------------------------------------------------------------------------------------------
# Mann-Whitney U


def mann_whitney_pvalues(
    baseline: np.ndarray, candidate: np.ndarray, *, higher_is_worse: bool
) -> tuple[float, float, str]:
    """(one-sided p in the worse direction, two-sided p, method used).

    Method: scipy's exact U distribution when there are no ties and both sides have <= 50 values; with
    ties and <= 50 values a side, the exact permutation distribution given the ties ("exact-ties", see
    tied_permutation_pvalues); otherwise scipy's normal approximation with tie and continuity correction.
    All values equal: p = 1 ("all-equal").
    """
    from scipy import stats
    pooled = np.concatenate([baseline, candidate])
    if np.all(pooled == pooled[0]):
        return 1.0, 1.0, "all-equal"
    small = max(len(baseline), len(candidate)) <= EXACT_MAX_PER_SIDE
    if small and _has_ties(baseline, candidate):
        return (*tied_permutation_pvalues(baseline, candidate, higher_is_worse=higher_is_worse), "exact-ties")
    method = "exact" if small else "asymptotic"
    worse = "greater" if higher_is_worse else "less"
    p_worse = stats.mannwhitneyu(candidate, baseline, alternative=worse, method=method).pvalue
    p_two = stats.mannwhitneyu(candidate, baseline, alternative="two-sided", method=method).pvalue
    return min(1.0, float(p_worse)), min(1.0, float(p_two)), method


def tied_permutation_pvalues(
    baseline: np.ndarray, candidate: np.ndarray, *, higher_is_worse: bool
) -> tuple[float, float]:
    """Exact permutation p-values of the rank-sum (Mann-Whitney) test with ties: (worse one-sided, two-sided).

    Under H0 every split of the pooled values into n1 + n2 is equally likely. With midranks doubled to
    integers, the number of size-n2 subsets per rank sum is counted by dynamic programming over the
    values (the same distribution scipy's PermutationMethod enumerates, without enumerating C(N, n2)
    splits). Two-sided p is twice the smaller one-sided p, capped at 1, as scipy does.
    """
    from scipy import stats
    pooled = np.concatenate([baseline, candidate])
    doubled_ranks = np.rint(2 * stats.rankdata(pooled)).astype(int)
    n2 = len(candidate)
    observed = int(doubled_ranks[len(baseline) :].sum())
    total = int(doubled_ranks.sum())
    ways = np.zeros((n2 + 1, total + 1))  # ways[k, s]: subsets of k values whose doubled ranks sum to s
    ways[0, 0] = 1.0
    for rank in doubled_ranks:
        ways[1:, rank:] += ways[:-1, :-rank].copy()
    distribution = ways[n2] / ways[n2].sum()
    p_greater = float(distribution[observed:].sum())
    p_less = float(distribution[: observed + 1].sum())
    p_worse = p_greater if higher_is_worse else p_less
    return min(1.0, p_worse), min(1.0, 2 * min(p_greater, p_less))


def min_p_one_sided(n1: int, n2: int) -> float:
    """Smallest one-sided p of the exact Mann-Whitney test for n1 vs n2 values (no ties): 1/C(n1+n2, n1).

    A two-sided test's smallest p is twice this. An empty side gives 1.
    """
    if n1 == 0 or n2 == 0:
        return 1.0
    return 1.0 / math.comb(n1 + n2, n1)


def min_reps_per_side(per_test_alpha: float) -> int:
    """Smallest n such that n vs n repetitions can give a one-sided p < per_test_alpha."""
    n = 1
    while min_p_one_sided(n, n) >= per_test_alpha:
        n += 1
    return n


@lru_cache(maxsize=128)
def u_null_cdf(n1: int, n2: int) -> np.ndarray:
    """P(U <= u) for u = 0..n1*n2 under H0, no ties: exact for <= 50 per side, else normal approximation.

    U counts pairs (candidate > baseline). Exact counts come from the recurrence on the largest of all
    values: it is either a candidate value (beats all n2 baseline values) or a baseline value (beats none):
    c(m, n)(u) = c(m-1, n)(u - n) + c(m, n-1)(u).
    """
    from scipy import stats
    if max(n1, n2) > EXACT_MAX_PER_SIDE:
        mean, sd = n1 * n2 / 2, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
        cdf = stats.norm.cdf((np.arange(n1 * n2 + 1) + 0.5 - mean) / sd)
    else:
        previous = [np.ones(1)] * (n2 + 1)  # m = 0: U is always 0
        for m in range(1, n1 + 1):
            current = [np.ones(1)]
            for n in range(1, n2 + 1):
                counts = np.zeros(m * n + 1)
                counts[n:] += previous[n]
                counts[: len(current[n - 1])] += current[n - 1]
                current.append(counts)
            previous = current
        counts = previous[n2]
        cdf = np.cumsum(counts) / counts.sum()
    cdf.setflags(write=False)
    return cdf


# ---------------------------------------------------------------------------------------------------------
# Hodges-Lehmann shift and its confidence interval


def shift_confidence_interval(
    sorted_diffs: np.ndarray, n1: int, n2: int, tail: float
) -> tuple[float, float, float]:
    """(lo, hi, achieved level) for the shift, from the sorted n1*n2 pairwise differences.

    Inverting the Mann-Whitney test: drop the k smallest and k largest differences, k the largest number
    with P(U <= k-1) <= tail. Each end is a one-sided (1 - tail) bound; the achieved two-sided level
    1 - 2 P(U <= k-1) is >= 1 - 2 tail (the U distribution is discrete). If no difference can be dropped
    the interval is (-inf, inf).
    """
    k = _differences_to_drop(n1, n2, tail)
    if k == 0:
        return -math.inf, math.inf, 1.0
    lo, hi = float(sorted_diffs[k - 1]), float(sorted_diffs[len(sorted_diffs) - k])
    return lo, hi, float(1 - 2 * u_null_cdf(n1, n2)[k - 1])


def _differences_to_drop(n1: int, n2: int, tail: float) -> int:
    """Largest k with P(U <= k-1) <= tail: how many extreme differences a `tail`-level bound may skip."""
    cdf = u_null_cdf(n1, n2)
    k = int(np.searchsorted(cdf, tail * (1 + FLOAT_SLACK), side="right"))
    return min(k, (n1 * n2) // 2)


# ---------------------------------------------------------------------------------------------------------
# Minimum detectable effect


def robust_sigma(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Noise level shared by both sides, robust to outliers: Shamos' estimator pooled over both sides,
    1.048 * median |x_i - x_k| over all pairs within the same side (needs no location estimate, so a
    shift between the sides does not inflate it). Falls back to the pooled standard deviation when more
    than half the within-side differences are 0 (discrete metrics such as error counts).
    """
    within = [np.abs(np.subtract.outer(x, x)[np.triu_indices(len(x), 1)]) for x in (baseline, candidate)]
    pairs = np.concatenate(within)
    if pairs.size == 0:
        return 0.0
    sigma = SHAMOS_TO_SIGMA * float(np.median(pairs))
    if sigma == 0:
        residuals = np.concatenate([x - x.mean() for x in (baseline, candidate)])
        dof = len(residuals) - 2
        sigma = math.sqrt(float(np.sum(residuals**2)) / dof) if dof > 0 else 0.0
    return sigma


def minimum_detectable_shift(
    baseline: np.ndarray, candidate: np.ndarray, per_test_alpha: float, power: float = MDE_POWER
) -> float:
    """Absolute shift this run would detect with `power` (one-sided test at per_test_alpha), given its noise.

    mde_in_sigmas(n1, n2, ...) * robust_sigma(...): the noise is modelled as normal with the run's robust
    spread. Infinite when the test cannot reject at all.
    """
    n1, n2 = len(baseline), len(candidate)
    return mde_in_sigmas(n1, n2, per_test_alpha, power) * robust_sigma(baseline, candidate)


@lru_cache(maxsize=256)
def mde_in_sigmas(n1: int, n2: int, per_test_alpha: float, power: float = MDE_POWER) -> float:
    """Shift, in units of the noise sigma, that the one-sided Mann-Whitney test at per_test_alpha detects
    with probability `power` when the noise is normal.

    Small samples (n1*n2 <= 2500): simulated exactly for the discrete test with fixed random numbers. The
    test rejects when U >= n1*n2 - j, j the last index with P(U <= j) < alpha; with d the sorted pairwise
    differences candidate - baseline of one simulated run, that happens for every shift > -d[j]. The MDE is
    the `power` quantile of that critical shift over the simulated runs. Larger samples: the normal
    approximation (z[1-alpha] + z[power]) * sqrt(1/n1 + 1/n2) * sqrt(pi/3), where pi/3 is the efficiency
    loss of Mann-Whitney against the t-test under normal noise.
    """
    from scipy import stats
    cdf = u_null_cdf(n1, n2)
    below = np.flatnonzero(cdf < per_test_alpha)
    if below.size == 0:
        return math.inf
    if n1 * n2 > MDE_SIMULATION_MAX_PAIRS:
        z = stats.norm.ppf(1 - per_test_alpha) + stats.norm.ppf(power)
        return float(z * math.sqrt(1 / n1 + 1 / n2) * MWU_EFFICIENCY_FACTOR)
    j = int(below[-1])
    rng = np.random.default_rng(MDE_SIMULATION_SEED)
    critical_shifts = []
    for _ in range(MDE_SIMULATION_RUNS // MDE_SIMULATION_BATCH):
        base = rng.standard_normal((MDE_SIMULATION_BATCH, n1))
        cand = rng.standard_normal((MDE_SIMULATION_BATCH, n2))
        diffs = (cand[:, :, None] - base[:, None, :]).reshape(MDE_SIMULATION_BATCH, -1)
        critical_shifts.append(-np.partition(diffs, j, axis=1)[:, j])
    return float(np.quantile(np.concatenate(critical_shifts), power))

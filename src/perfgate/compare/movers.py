"""Which functions' cost moved significantly: the test behind naming a "mover" (CPU, allocations, delay).

A profile has hundreds of functions; at p < 0.05 a dozen move in every A/A run, so a name needs a
correction over the family. The per-repetition rank test of the profile diff cannot survive one at the
repetition counts a gate has (its smallest two-sided p is 0.0022 at 6 against 6, while Benjamini-Hochberg
over 150 functions asks 0.0003 of a lone mover), so movers are tested with Welch's t on a transform that
makes a function's sampling variance about the same at every level: a share is a binomial proportion of a
profile's samples, and the arcsine square root gives it variance 1 / 4N for N samples; a cost per request
is a count of samples times the repetition's scale, and the square root does the same for counts (no
equal variances assumed across the sides: a side with shorter profiles is noisier). Benjamini-Hochberg
adjusts over the functions that hold at least MIN_SHARE_PCT of the profile on average over both sides.
That filter uses the pooled level, which says nothing about the difference between the sides, so it
shrinks the family without biasing the test (independent filtering, Bourgon et al. 2010).

CPU profiles are counts of samples, and there a stronger test serves (count_test): a function's samples
pooled over each side's repetitions, compared with a quasi-Poisson score test whose dispersion is
moderated across the functions tested (the empirical Bayes of limma, Smyth 2004). Welch's t at a dozen
repetitions a side pays for estimating each function's spread from a dozen figures (its critical t at
p = 0.0003 is ~4.4 where z is 3.6); the moderated dispersion borrows the spread of all functions alike. The
capacity probes' profiles, taken under another load, add their samples as strata of their own.

The Benjamini-Hochberg adjustment is weighted (compare/multiple.py): the service's own functions
(profile/origin.py) hold OWN_WEIGHT_SHARE (compare/comparison.py) of the weight, the standard library's and the
dependencies' the rest. A change a pull request makes is in the service's code or reached through it, so the
cumulative cost of the service's function that does it carries the change either way. With 10 own functions
among 155, a lone own mover needs p < alpha / 20 where it needed alpha / 155, and a lone library mover
alpha / 290. The weights come from names and source files, never from the counts, so the false discovery rate
stays at alpha.
docs/statistics.md ("Naming a mover") has the figures.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from perfgate.compare.comparison import MIN_SHARE_PCT, own_weight_share
from perfgate.compare.multiple import adjust_pvalues
from perfgate.compare.profile import FunctionDiff

MIN_REPETITIONS = 2  # per side: Welch's t needs a spread on each side
MIN_ROWS_TO_MODERATE = 3  # rows with a dispersion needed to pool them; fewer keep their own, at least Poisson's
OWN_DISPERSION_BOUND = 0.5  # a row keeps at least the median-unbiased estimate of its own dispersion
Transform = Literal["share", "per_request", "linear"]


@dataclass(frozen=True)
class MoverTest:
    """p-values of the functions tested (two-sided, and weighted-Benjamini-Hochberg-adjusted over `tested`, of
    which `own` are the service's own functions)."""

    p_values: dict[str, float]
    p_adjusted: dict[str, float]
    tested: int
    own: int = 0


def mover_family(shares: Sequence[FunctionDiff]) -> frozenset[str]:
    """The functions of a share diff with enough repetitions and at least MIN_SHARE_PCT on average to be tested."""
    return frozenset(f.function for f in shares
                     if min(len(f.baseline_cum), len(f.candidate_cum)) >= MIN_REPETITIONS
                     and _pooled_mean(f) >= MIN_SHARE_PCT)


def mover_test(functions: Sequence[FunctionDiff], *, family: Collection[str] | None = None,
               transform: Transform = "share", own: Collection[str] = frozenset()) -> MoverTest:
    """Welch's t per function on its transformed per-repetition cum figures, weighted BH over the family.

    transform "share": the figures are shares in % (arcsine square root), and the family defaults to
    mover_family(functions); "per_request": costs per request (square root), family from the share diff.
    own: the service's own functions (family_weights).
    """
    chosen = mover_family(functions) if family is None else frozenset(family)
    tested = [f for f in functions if f.function in chosen
              and min(len(f.baseline_cum), len(f.candidate_cum)) >= MIN_REPETITIONS]
    if not tested:
        return MoverTest({}, {}, 0)
    return rows_test([f.function for f in tested], [f.baseline_cum for f in tested],
                     [f.candidate_cum for f in tested], transform, own=own)


def rows_test(names: Sequence[str], baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]],
              transform: Transform, *, own: Collection[str] = frozenset()) -> MoverTest:
    """Welch's t per named row of per-repetition figures (transformed), weighted BH over the rows."""
    if not names:
        return MoverTest({}, {}, 0)
    p_values = _welch(_transformed(baseline, transform), _transformed(candidate, transform))
    return _adjusted(names, p_values, own)


def family_weights(names: Sequence[str], own: Collection[str]) -> list[float]:
    """Weighted BH's weights (averaging 1): the `own` names share OWN_WEIGHT_SHARE of the total, the others the
    rest; all 1 when there is no own name or own names are at least that share of the family, so that own code
    never weighs less than 1."""
    m, k = len(names), sum(name in own for name in names)
    share = own_weight_share(k, m)
    if share is None:
        return [1.0] * m
    return [share * m / k if name in own else (1 - share) * m / (m - k) for name in names]


def _adjusted(names: Sequence[str], p_values: Sequence[float], own: Collection[str]) -> MoverTest:
    adjusted = adjust_pvalues(p_values, "bh", weights=family_weights(names, own))
    return MoverTest(dict(zip(names, p_values, strict=True)), dict(zip(names, adjusted, strict=True)), len(names),
                     sum(name in own for name in names))


def count_test(names: Sequence[str], baseline: SampledRows, candidate: SampledRows, *,
               own: Collection[str] = frozenset(),
               strata: Sequence[tuple[SampledRows, SampledRows]] = ()) -> MoverTest:
    """Per named row: do its samples per unit of exposure differ between the sides? Two-sided, BH over the rows.

    Given a row's K samples over both sides, the candidate's share of them is binomial with p0 = X_c / (X_b + X_c)
    when its rate per exposure did not change. The score z = (K_c - K p0) / sqrt(phi K p0 (1 - p0)) takes the
    row's dispersion phi (1 for pure Poisson sampling: the counts are numbers of samples) from the repetitions'
    Pearson residuals, moderated toward the dispersion common to all rows (_moderated_dispersion), and is read
    on Student's t at the degrees of freedom of that estimate. With one repetition on each side there is no
    dispersion to estimate, and nothing is called a change. own: the service's own rows (family_weights).

    strata: more (baseline, candidate) samples of the same rows taken under another load (the capacity probes'
    profiles). Each stratum has its own p0, since a row's rate per exposure may differ between loads; the
    scores' numerators and variances add up over the strata (a stratified score test, like Cochran-Mantel-
    Haenszel's), and each row's dispersion is estimated from the Pearson residuals of all strata together.
    """
    if not names or _residual_df(baseline, candidate) < 1:
        return _adjusted(names, [1.0] * len(names), own)
    df = sum(_residual_df(b, c) for b, c in ((baseline, candidate), *strata))
    score, information, pearson = np.zeros(len(names)), np.zeros(len(names)), np.zeros(len(names))
    for base_rows, cand_rows in ((baseline, candidate), *strata):
        parts = _stratum(base_rows, cand_rows)
        score, information, pearson = score + parts[0], information + parts[1], pearson + parts[2]
    phi, df_total = _moderated_dispersion(pearson / df, df)
    with np.errstate(all="ignore"):
        from scipy import stats

        z = score / np.sqrt(phi * information)
        p = 2 * stats.t.sf(np.abs(z), df_total)
    p_values = [float(v) if k > 0 and np.isfinite(v) else 1.0 for v, k in zip(p, information, strict=True)]
    return _adjusted(names, p_values, own)


def _residual_df(baseline: SampledRows, candidate: SampledRows) -> int:
    """The degrees of freedom a stratum's Pearson residuals have: its repetitions less one rate per side (none
    when a side has no repetition: such a stratum is left out, _stratum)."""
    if not _has_exposure(baseline) or not _has_exposure(candidate):
        return 0
    return len(baseline.exposure) + len(candidate.exposure) - 2


def _stratum(baseline: SampledRows, candidate: SampledRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of one stratum: the score's numerator K_c - K p0, its Poisson variance K p0 (1 - p0), and the
    Pearson chi-square of both sides' repetitions around their own rates (all 0 for a side without repetitions)."""
    base, cand = np.asarray(baseline.counts, dtype=float), np.asarray(candidate.counts, dtype=float)
    x_base, x_cand = np.asarray(baseline.exposure, dtype=float), np.asarray(candidate.exposure, dtype=float)
    if not _has_exposure(baseline) or not _has_exposure(candidate):
        rows = max(base.shape[0], cand.shape[0])
        return np.zeros(rows), np.zeros(rows), np.zeros(rows)
    k_base, k_cand = base.sum(axis=1), cand.sum(axis=1)
    total, p0 = k_base + k_cand, x_cand.sum() / (x_base.sum() + x_cand.sum())
    return k_cand - total * p0, total * p0 * (1 - p0), _pearson(base, x_base) + _pearson(cand, x_cand)


def _has_exposure(side: SampledRows) -> bool:
    return len(side.exposure) > 0 and float(np.sum(side.exposure)) > 0


@dataclass(frozen=True)
class SampledRows:
    """One side's sample counts (rows x repetitions) and each repetition's exposure (what a rate is per)."""

    counts: Sequence[Sequence[float]]
    exposure: Sequence[float]


def _pearson(counts: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Per row, the Pearson chi-square of its counts around one rate per exposure (0 where it has none)."""
    expected = counts.sum(axis=1, keepdims=True) / exposure.sum() * exposure
    with np.errstate(all="ignore"):
        terms = np.where(expected > 0, (counts - expected) ** 2 / expected, 0.0)
    return terms.sum(axis=1)


def _moderated_dispersion(phi: np.ndarray, df: int) -> tuple[np.ndarray, float]:
    """Each row's dispersion shrunk toward the common one, and the degrees of freedom it then has.

    The rows' estimates are taken as phi0 times a chi-square on df over df, phi0 itself spread as a scaled
    inverse chi-square on d0 degrees of freedom: d0 and phi0 come from the mean and variance of log(phi)
    (limma's fitFDist), the posterior is (d0 phi0 + df phi) / (d0 + df). Alike dispersions give a large d0 and
    every row the common figure. No row gets less than the median-unbiased estimate of its own (df phi over the
    chi-square's median, OWN_DISPERSION_BOUND): the prior assumes one population of dispersions, and shrinking a
    bursty function among steady ones toward them would name its noise (tests/unit/compare/test_movers.py).
    """
    from scipy import stats

    own = np.where(np.isfinite(phi) & (phi > 0), phi, 0.0)
    usable = own[own > 0]
    if len(usable) < MIN_ROWS_TO_MODERATE:
        return np.maximum(own, 1.0), float(df)
    d0, phi0 = _dispersion_prior(usable, df)
    posterior = np.full_like(own, phi0) if np.isinf(d0) else (d0 * phi0 + df * own) / (d0 + df)
    floor = df * own / stats.chi2.ppf(1 - OWN_DISPERSION_BOUND, df)
    return np.maximum(posterior, floor), d0 + df


def _dispersion_prior(phi: np.ndarray, df: int) -> tuple[float, float]:
    """(d0, phi0) from the log dispersions' mean and the variance beyond what df alone would give (limma's
    fitFDist); d0 is infinite when the dispersions vary no more than that."""
    from scipy import optimize, special

    e = np.log(phi) - special.digamma(df / 2) + np.log(df / 2)
    excess = e.var(ddof=1) - special.polygamma(1, df / 2)
    if excess <= 0:
        return np.inf, float(np.exp(e.mean()))
    half_d0 = optimize.brentq(lambda x: special.polygamma(1, x) - excess, 1e-8, 1e8)
    return 2 * half_d0, float(np.exp(e.mean() + special.digamma(half_d0) - np.log(half_d0)))


def _pooled_mean(f: FunctionDiff) -> float:
    values = (*f.baseline_cum, *f.candidate_cum)
    return sum(values) / len(values)


def _transformed(values: Sequence[Sequence[float]], transform: Transform) -> np.ndarray:
    """functions x repetitions: arcsin(sqrt(share)) for shares in %, sqrt for costs per request, as they are
    for "linear" (figures that may be negative, such as goroutines gained)."""
    array = np.asarray(values, dtype=float)
    if transform == "share":
        return np.arcsin(np.sqrt(np.clip(array / 100, 0.0, 1.0)))
    if transform == "linear":
        return array
    return np.sqrt(np.clip(array, 0.0, None))


def _welch(base: np.ndarray, cand: np.ndarray) -> list[float]:
    """Two-sided Welch p per row. Rows with no spread on either side: 1 if equal, else 0 (nothing to doubt).
    A row with no spread on one side only is fine for Welch (the other side's variance carries it), but scipy
    warns of "catastrophic cancellation" on its exactly equal values: that warning is not shown to users."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        from scipy import stats

        p = np.asarray(stats.ttest_ind(cand, base, axis=1, equal_var=False).pvalue, dtype=float)
    flat = (np.ptp(base, axis=1) == 0) & (np.ptp(cand, axis=1) == 0)
    p[flat] = np.where(base[flat, 0] == cand[flat, 0], 1.0, 0.0)
    return [1.0 if np.isnan(v) else float(v) for v in p]

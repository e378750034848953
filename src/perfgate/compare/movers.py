"""Which functions' share of the CPU moved significantly: the test behind naming a "CPU mover".

A profile has hundreds of functions; at p < 0.05 a dozen move in every A/A run, so a name needs a
correction over the family. The per-repetition rank test of the profile diff cannot survive one at the
repetition counts a gate has (its smallest two-sided p is 0.0022 at 6 against 6, while Benjamini-Hochberg
over 150 functions asks 0.0003 of a lone mover), so movers are tested on what a share is: a binomial
proportion of a profile's samples. The arcsine square root makes its variance the same at every level
(1 / 4N for N samples), Welch's t compares the repetitions' transformed shares (no equal variances
assumed: a side with shorter profiles is noisier), and Benjamini-Hochberg adjusts over the functions that
hold at least MIN_SHARE_PCT of the CPU on average over both sides. That filter uses the pooled level,
which says nothing about the difference between the sides, so it shrinks the family without biasing the
test (independent filtering, Bourgon et al. 2010). docs/statistics.md ("Naming a mover") has the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from perfgate.compare.profile import FunctionShareDiff
from perfgate.compare.stats import adjust_pvalues

MIN_SHARE_PCT = 1.0  # average cum share over both sides' repetitions for a function to be tested
MIN_REPETITIONS = 2  # per side: Welch's t needs a spread on each side


@dataclass(frozen=True)
class MoverTest:
    """p-values of the functions tested (two-sided, and Benjamini-Hochberg-adjusted over `tested`)."""

    p_values: dict[str, float]
    p_adjusted: dict[str, float]
    tested: int


def mover_test(functions: Sequence[FunctionShareDiff]) -> MoverTest:
    """Welch's t on arcsine-square-root cum shares per function, BH over those with enough CPU to test."""
    family = [f for f in functions
              if min(len(f.baseline_cum_shares_pct), len(f.candidate_cum_shares_pct)) >= MIN_REPETITIONS
              and _pooled_mean(f) >= MIN_SHARE_PCT]
    if not family:
        return MoverTest({}, {}, 0)
    base = _transformed([f.baseline_cum_shares_pct for f in family])
    cand = _transformed([f.candidate_cum_shares_pct for f in family])
    p_values = _welch(base, cand)
    adjusted = adjust_pvalues(p_values, "bh")
    names = [f.function for f in family]
    return MoverTest(dict(zip(names, p_values, strict=True)), dict(zip(names, adjusted, strict=True)), len(family))


def _pooled_mean(f: FunctionShareDiff) -> float:
    values = (*f.baseline_cum_shares_pct, *f.candidate_cum_shares_pct)
    return sum(values) / len(values)


def _transformed(shares_pct: Sequence[Sequence[float]]) -> np.ndarray:
    """functions x repetitions of arcsin(sqrt(share)); every function has one share per repetition."""
    return np.arcsin(np.sqrt(np.clip(np.asarray(shares_pct, dtype=float) / 100, 0.0, 1.0)))


def _welch(base: np.ndarray, cand: np.ndarray) -> list[float]:
    """Two-sided Welch p per row. Rows with no spread on either side: 1 if equal, else 0 (nothing to doubt)."""
    with np.errstate(all="ignore"):
        p = np.asarray(stats.ttest_ind(cand, base, axis=1, equal_var=False).pvalue, dtype=float)
    flat = (np.ptp(base, axis=1) == 0) & (np.ptp(cand, axis=1) == 0)
    p[flat] = np.where(base[flat, 0] == cand[flat, 0], 1.0, 0.0)
    return [1.0 if np.isnan(v) else float(v) for v in p]

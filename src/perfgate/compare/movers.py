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
docs/statistics.md ("Naming a mover") has the figures.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from perfgate.compare.multiple import adjust_pvalues
from perfgate.compare.profile import FunctionDiff

MIN_SHARE_PCT = 1.0  # average cum share over both sides' repetitions for a function to be tested
MIN_REPETITIONS = 2  # per side: Welch's t needs a spread on each side
Transform = Literal["share", "per_request", "linear"]


@dataclass(frozen=True)
class MoverTest:
    """p-values of the functions tested (two-sided, and Benjamini-Hochberg-adjusted over `tested`)."""

    p_values: dict[str, float]
    p_adjusted: dict[str, float]
    tested: int


def mover_family(shares: Sequence[FunctionDiff]) -> frozenset[str]:
    """The functions of a share diff with enough repetitions and at least MIN_SHARE_PCT on average to be tested."""
    return frozenset(f.function for f in shares
                     if min(len(f.baseline_cum), len(f.candidate_cum)) >= MIN_REPETITIONS
                     and _pooled_mean(f) >= MIN_SHARE_PCT)


def mover_test(functions: Sequence[FunctionDiff], *, family: Collection[str] | None = None,
               transform: Transform = "share") -> MoverTest:
    """Welch's t per function on its transformed per-repetition cum figures, BH over the family.

    transform "share": the figures are shares in % (arcsine square root), and the family defaults to
    mover_family(functions); "per_request": costs per request (square root), family from the share diff.
    """
    chosen = mover_family(functions) if family is None else frozenset(family)
    tested = [f for f in functions if f.function in chosen
              and min(len(f.baseline_cum), len(f.candidate_cum)) >= MIN_REPETITIONS]
    if not tested:
        return MoverTest({}, {}, 0)
    return rows_test([f.function for f in tested], [f.baseline_cum for f in tested],
                     [f.candidate_cum for f in tested], transform)


def rows_test(names: Sequence[str], baseline: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]],
              transform: Transform) -> MoverTest:
    """Welch's t per named row of per-repetition figures (transformed), Benjamini-Hochberg over the rows."""
    if not names:
        return MoverTest({}, {}, 0)
    p_values = _welch(_transformed(baseline, transform), _transformed(candidate, transform))
    adjusted = adjust_pvalues(p_values, "bh")
    return MoverTest(dict(zip(names, p_values, strict=True)), dict(zip(names, adjusted, strict=True)), len(names))


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
    """Two-sided Welch p per row. Rows with no spread on either side: 1 if equal, else 0 (nothing to doubt)."""
    with np.errstate(all="ignore"):
        from scipy import stats

        p = np.asarray(stats.ttest_ind(cand, base, axis=1, equal_var=False).pvalue, dtype=float)
    flat = (np.ptp(base, axis=1) == 0) & (np.ptp(cand, axis=1) == 0)
    p[flat] = np.where(base[flat, 0] == cand[flat, 0], 1.0, 0.0)
    return [1.0 if np.isnan(v) else float(v) for v in p]

"""Run-to-run noise: how far a metric's run median moves between runs of the same code, and its test.

Repetitions of one run share that run's machine state, so their spread understates how much two runs
minutes apart differ. When the baseline record comes from another run, the within-run comparison
(Mann-Whitney or Wilcoxon) is joined by a run-level test: the candidate run's median against the medians
of the baseline build's runs (the baseline record plus its history), on a log scale, with a t prediction
interval when the spread is estimated from those runs, or a normal one from a configured noise level.
A change counts only when both tests call it significant (an intersection-union test, level alpha
without adjustment, whose p-value is the larger of the two). docs/statistics.md explains the choice.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scipy import stats as scipy_stats

if TYPE_CHECKING:
    from perfgate.compare.stats import MetricComparison

MIN_RUNS_TO_ESTIMATE = 3  # two degrees of freedom: fewer and the t quantiles explode (12.7 at df=1)
RUN_LEVEL_POWER = 0.8


@dataclass(frozen=True)
class RunNoise:
    """The spread of log run medians between runs of one build, and where it comes from."""

    sigma_log: float
    df: float  # math.inf when configured rather than estimated
    source: str  # e.g. "5 runs of the baseline build" or "configured run_noise_pct 5"

    @property
    def sigma_rel(self) -> float:
        return math.expm1(self.sigma_log)


@dataclass(frozen=True)
class RunLevelTest:
    """The candidate run's median against the baseline build's runs. Relative values: positive = higher."""

    runs: int  # baseline-build runs whose medians were used (the baseline record included)
    sigma_rel: float
    df: float | None  # None = normal (configured noise)
    source: str
    rel_change: float
    rel_ci: tuple[float, float]  # alpha in each tail, like the within-run interval
    worse_bound_rel: float  # one-sided (1 - alpha) bound on the worsening, positive = worse (a drop for rps)
    p_value: float  # one-sided, towards worse
    p_two_sided: float
    mde_rel: float


def estimate_noise(run_medians: Sequence[float]) -> RunNoise | None:
    """Sample SD of the log medians, or None with fewer than MIN_RUNS_TO_ESTIMATE positive medians."""
    logs = [math.log(m) for m in run_medians if m > 0]
    if len(logs) < MIN_RUNS_TO_ESTIMATE or len(logs) != len(run_medians):
        return None
    return RunNoise(sigma_log=statistics.stdev(logs), df=len(logs) - 1,
                    source=f"{len(logs)} runs of the baseline build")


def configured_noise(pct: float | None) -> RunNoise | None:
    if pct is None or pct <= 0:
        return None
    return RunNoise(sigma_log=math.log1p(pct / 100), df=math.inf, source=f"configured run_noise_pct {pct:g}")


def wider(a: RunNoise | None, b: RunNoise | None) -> RunNoise | None:
    """The noise level that admits more drift (a configured level is a floor under the estimate)."""
    if a is None or b is None:
        return a or b
    return a if a.sigma_log >= b.sigma_log else b


def run_level_test(base_run_medians: Sequence[float], candidate_median: float, noise: RunNoise, *,
                   higher_is_worse: bool, alpha: float, per_test_alpha: float) -> RunLevelTest | None:
    """None when a median is not positive (no log scale): then only the within-run test speaks.

    The interval and the bound have alpha in each tail, as the within-run ones; the MDE is judged at the
    per-test level (Holm), where a FAIL is decided.
    """
    if candidate_median <= 0 or not base_run_medians or min(base_run_medians) <= 0:
        return None
    logs = [math.log(m) for m in base_run_medians]
    centre = statistics.fmean(logs)
    # the candidate run is one new draw; the centre averages k runs: a prediction interval's spread
    se = noise.sigma_log * math.sqrt(1 + 1 / len(logs))
    diff = math.log(candidate_median) - centre
    dist = scipy_stats.t(noise.df) if math.isfinite(noise.df) else scipy_stats.norm()
    worse = diff if higher_is_worse else -diff
    if se > 0:
        p_value = float(dist.sf(worse / se))
        p_two_sided = min(1.0, 2 * min(p_value, 1 - p_value))
    else:  # identical run medians: any difference at all is beyond the noise
        p_value, p_two_sided = (0.0 if worse > 0 else 1.0), (0.0 if diff else 1.0)
    half = float(dist.ppf(1 - alpha)) * se
    bound = worse + half
    mde = (float(dist.ppf(1 - per_test_alpha)) + float(dist.ppf(RUN_LEVEL_POWER))) * se
    return RunLevelTest(runs=len(logs), sigma_rel=noise.sigma_rel,
                        df=noise.df if math.isfinite(noise.df) else None, source=noise.source,
                        rel_change=math.expm1(diff), rel_ci=(math.expm1(diff - half), math.expm1(diff + half)),
                        worse_bound_rel=_worsening(bound, higher_is_worse), p_value=p_value,
                        p_two_sided=p_two_sided, mde_rel=_worsening(mde, higher_is_worse))


def _worsening(log_size: float, higher_is_worse: bool) -> float:
    """A worsening of log_size as a relative change in the metric's direction: +x % up, or a drop of x %."""
    return math.expm1(log_size) if higher_is_worse else -math.expm1(-log_size)


def with_run_level(c: MetricComparison, test: RunLevelTest) -> MetricComparison:
    """The comparison seen through both tests (intersection-union): the larger p-value, the wider bound and
    MDE, and the union of the two intervals - the shifts that not both tests reject. Its level is labelled
    with the lower of the two levels (the union covers at least as often as either interval)."""
    scale = abs(c.baseline_median) if c.baseline_median else None

    def absolute(rel: float | None, current: float | None) -> float | None:
        if rel is None or scale is None or current is None:
            return current
        return max(current, rel * scale)

    rel_ci, shift_ci, ci_level = c.rel_ci, c.shift_ci, c.ci_level
    if rel_ci is not None:
        rel_ci = (min(rel_ci[0], test.rel_ci[0]), max(rel_ci[1], test.rel_ci[1]))
        if scale is not None and shift_ci is not None:
            shift_ci = (min(shift_ci[0], rel_ci[0] * scale), max(shift_ci[1], rel_ci[1] * scale))
        level = 1 - 2 * c.alpha
        ci_level = level if ci_level is None else min(ci_level, level)
    worse_bound_rel = None if c.worse_bound_rel is None else max(c.worse_bound_rel, test.worse_bound_rel)
    mde_rel = None if c.mde_rel is None else max(c.mde_rel, test.mde_rel)
    note = (f"baseline from another run: run-to-run noise ±{test.sigma_rel:.1%} ({test.source}); "
            f"run-level change {test.rel_change:+.1%}, p={test.p_value:.3g}")
    return replace(c, p_value=max(c.p_value, test.p_value), p_two_sided=max(c.p_two_sided, test.p_two_sided),
                   p_method=f"{c.p_method} and run-level {'t' if test.df else 'normal'}",
                   rel_ci=rel_ci, shift_ci=shift_ci, ci_level=ci_level, worse_bound_rel=worse_bound_rel,
                   worse_bound=absolute(worse_bound_rel, c.worse_bound),
                   mde_rel=mde_rel, mde_abs=absolute(mde_rel, c.mde_abs),
                   notes=(*c.notes, note), run_level=test)

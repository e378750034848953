"""Run-to-run noise: how far a metric's run median moves between runs of the same code, and its test.

Repetitions of one run share that run's machine state, so their spread understates how much two runs
minutes apart differ. When the baseline record comes from another run, the within-run comparison
(Mann-Whitney or Wilcoxon) is joined by a run-level test: the candidate run's median against the medians
of the baseline build's runs (the baseline record plus its history), on a log scale, with a t prediction
interval when the spread is estimated from those runs, or a normal one from a configured noise level.
A change counts only when both tests call it significant (an intersection-union test, level alpha
without adjustment, whose p-value is the larger of the two). docs/statistics.md explains the choice.
scipy is imported where the test runs (as in stats.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfgate.compare.comparison import Cause, MetricComparison, RunLevelTest
from perfgate.compare.inputs import ComparisonInputs, SideInputs, same_run
from perfgate.config import Config
from perfgate.metrics import GateRule, fail_stands, metric_values
from perfgate.verdict import RuleOutcome

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
    from scipy import stats as scipy_stats
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


# ---------------------------------------------------------------- the gate's rules across runs
def across_runs(comparison: MetricComparison, rule: GateRule, inputs: ComparisonInputs,
                config: Config) -> MetricComparison:
    """The comparison joined by the run-level test when the baseline came from another run and the drift
    between runs of the baseline build is known (measured on its history, or configured)."""
    assert inputs.baseline is not None
    if not comparison.baseline or not comparison.candidate or same_run(inputs.baseline, inputs.candidate):
        return comparison
    medians = (*history_medians(rule, usable_history(inputs, config)), statistics.median(comparison.baseline))
    configured = rule.run_noise_pct if rule.run_noise_pct is not None else config.compare.run_noise_pct
    noise = wider(estimate_noise(medians), configured_noise(configured))
    if noise is None:
        return comparison
    test = run_level_test(medians, statistics.median(comparison.candidate), noise,
                          higher_is_worse=comparison.higher_is_worse, alpha=comparison.alpha,
                          per_test_alpha=comparison.per_test_alpha)
    return comparison if test is None else with_run_level(comparison, test)


def history_medians(rule: GateRule, history: Sequence[SideInputs]) -> tuple[float, ...]:
    medians = []
    for side in history:
        values = metric_values(side, rule)
        if not isinstance(values, str) and values:
            medians.append(statistics.median(values))
    return tuple(medians)


def usable_history(inputs: ComparisonInputs, config: Config) -> tuple[SideInputs, ...]:
    """History records measured like the baseline: the same target and load settings and environment keys."""
    base = inputs.baseline
    assert base is not None
    return tuple(side for side in inputs.history if history_mismatch(side, base, config) is None)


def history_mismatch(side: SideInputs, base: SideInputs, config: Config) -> str | None:
    if side.record.config_digest != base.record.config_digest:
        return "other target or load settings"
    keys = [k for k in config.compare.environment_keys
            if side.record.environment.value(k) != base.record.environment.value(k)]
    return f"other environment ({', '.join(keys)})" if keys else None


def without_unmeasured_drift(rules: list[RuleOutcome], inputs: ComparisonInputs,
                             config: Config) -> list[RuleOutcome]:
    """A FAIL of a statistical rule across runs with no run-level test (the drift between runs of the
    baseline build is neither measured nor configured; a configured 0 means "this runner does not drift")
    becomes INCONCLUSIVE: perfgate cannot tell the
    change from the runner drifting between the two runs. Error-rate rules stand (failed calls are failed
    calls); PASS stands, with the verdict's note that the drift is unknown (docs/statistics.md)."""
    assert inputs.baseline is not None
    if same_run(inputs.baseline, inputs.candidate):
        return rules
    runs = len(usable_history(inputs, config)) + 1
    why = (f"the baseline came from another run and how far runs drift apart on this runner is unknown "
           f"({runs} run(s) of the baseline build, {MIN_RUNS_TO_ESTIMATE} needed to measure it): this change may "
           "be the runner, not the code")
    configured = {g.label for g in config.gates
                  if (g.run_noise_pct if g.run_noise_pct is not None else config.compare.run_noise_pct) is not None}
    return [replace(r, outcome="INCONCLUSIVE", reason=f"{r.reason} — but {why}", cause=Cause.DRIFT_UNKNOWN)
            if r.outcome == "FAIL" and r.comparison is not None and r.comparison.run_level is None
            and not fail_stands(r.metric) and r.rule not in configured else r for r in rules]


def run_noise_notes(inputs: ComparisonInputs, config: Config) -> tuple[str, ...]:
    """What the gate knew about run-to-run drift: the history it used or skipped, or that it knew nothing."""
    base = inputs.baseline
    assert base is not None
    if same_run(base, inputs.candidate):
        return ()
    notes = [f"earlier baseline record {side.record.path or side.record.created_at} not used: {why}"
             for side in inputs.history if (why := history_mismatch(side, base, config))]
    runs = len(usable_history(inputs, config)) + 1
    configured = config.compare.run_noise_pct is not None or any(r.run_noise_pct is not None for r in config.gates)
    if runs >= MIN_RUNS_TO_ESTIMATE:
        notes.append(f"run-to-run noise measured on {runs} runs of the baseline build (this baseline and "
                     f"{runs - 1} earlier records); changes within it are not called regressions")
    elif not configured:
        notes.append(f"the baseline came from another run and this runner's run-to-run drift is unknown "
                     f"({runs} run(s) of the baseline build; {MIN_RUNS_TO_ESTIMATE} needed): a small FAIL may be "
                     "the runner drifting. Give earlier baseline records (baseline.history, --history) or set "
                     "compare.run_noise_pct, or use compare.mode: interleaved")
    return tuple(notes)

"""Whether a comparison can be trusted, run-wide: a FAIL measured in another environment, or on a runner whose
builds did not get the CPU they needed (compare/contention.py judges that), becomes INCONCLUSIVE, saying why;
error-rate FAILs stand (metrics.fail_stands). gate.decide applies these after the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from perfgate.compare.comparison import Cause, MetricComparison
from perfgate.compare.contention import ContentionView, figures_of, judge
from perfgate.compare.inputs import ComparisonInputs, same_run
from perfgate.config import Config
from perfgate.metrics import BY_NAME, fail_stands
from perfgate.verdict import EnvironmentDiff, RuleOutcome


def environment_diffs(inputs: ComparisonInputs, keys: Sequence[str]) -> tuple[EnvironmentDiff, ...]:
    assert inputs.baseline is not None
    base_env, cand_env = inputs.baseline.record.environment, inputs.candidate.record.environment
    return tuple(EnvironmentDiff(key, base_env.value(key), cand_env.value(key)) for key in keys
                 if base_env.value(key) != cand_env.value(key))




def contention_view(inputs: ComparisonInputs, config: Config) -> ContentionView:
    """Each side's starved windows and whether both sides met the same contention (duet windows only)."""
    base, cand = inputs.baseline, inputs.candidate
    shared = base is not None and same_run(base, cand) and base.record.load_settings.get("schedule") == "duet"
    return judge(figures_of("candidate", cand.contention, cand.runq),
                 figures_of("baseline", base.contention, base.runq) if base else None,
                 config.compare.contention, shared_windows=shared)


def contention_doubt(name: str, view: ContentionView, cpu: MetricComparison | None, alpha: float) -> str | None:
    """Why a FAIL on `metric` cannot be trusted on this contended runner, or None when it can.

    Latency and throughput: unless CPU per request rose significantly (and contention did not bias that
    comparison itself), the change may be the runner's. CPU per request and function shares: only when the
    contention was one-sided, since it moves CPU per request by itself. Run-queue rules measure the
    contention itself. Error rates stand: failed calls failed.
    """
    if not view.contended:
        return None
    contended = f"the runner was contended ({view.summary})"
    measures = BY_NAME[name].measures if name in BY_NAME else None
    if measures == "load":
        if cpu is None:
            return f"{contended}, and no CPU per request was measured to tell a slower service from a busy runner"
        change = f"{cpu.rel_change:+.1%}" if cpu.rel_change is not None else "no change"
        if not (cpu.p_value < alpha and (cpu.worse_shift or 0) > 0):
            return f"{contended}, while CPU per request did not rise significantly ({change}, p={cpu.p_value:.2g})"
        if view.one_sided:
            return f"{contended}; CPU per request rose ({change}), but one-sided contention moves it by itself"
        return None
    if measures == "cpu":
        return f"{contended}; one-sided contention moves CPU per request by itself" if view.one_sided else None
    if measures == "kernel":
        return contended
    return None


def under_contention(outcomes: list[RuleOutcome], view: ContentionView, cpu: MetricComparison | None,
                     alpha: float) -> list[RuleOutcome]:
    """FAILs that contention may explain become INCONCLUSIVE, saying so with the figures."""
    changed = []
    for outcome in outcomes:
        doubt = contention_doubt(outcome.metric, view, cpu, alpha) if outcome.outcome == "FAIL" else None
        changed.append(replace(outcome, outcome="INCONCLUSIVE", reason=f"{outcome.reason} — but {doubt}",
                               cause=Cause.CONTENDED) if doubt else outcome)
    return changed


def invalidate(outcomes: list[RuleOutcome], why: str) -> list[RuleOutcome]:
    """A FAIL measured in another environment becomes INCONCLUSIVE; error-rate limits stand."""
    return [replace(o, outcome="INCONCLUSIVE", reason=f"{o.reason} — but {why}", cause=Cause.ENVIRONMENT_DIFFERS)
            if o.outcome == "FAIL" and not fail_stands(o.metric) else o for o in outcomes]


def validity_rule(name: str, why: str, threshold: str = "same runner and environment as the baseline"
                   ) -> RuleOutcome:
    return RuleOutcome(rule=name, metric=name, severity="fail", outcome="INCONCLUSIVE",
                       reason=f"INCONCLUSIVE: {why}", threshold=threshold)


def contention_notes(view: ContentionView) -> tuple[str, ...]:
    """A contended runner is worth a note even when no verdict changed because of it."""
    return (f"runner contended: {view.summary}",) if view.contended else ()


def contention_tip(view: ContentionView) -> str:
    causes = {cause for side in view.sides for cause in side.causes}
    tips = []
    if "throttling" in causes:
        tips.append("raise or remove the CPU limit on the service's cgroup (cpu.max / cpu.cfs_quota_us), or "
                    "lower load.rps")
    if "steal" in causes:
        tips.append("use a runner whose virtual CPUs are not shared (a larger or dedicated runner)")
    if causes & {"other processes", "run-queue wait"}:
        tips.append("stop other jobs on the runner during the gate, or use a dedicated runner")
    if not view.shared_windows:
        tips.append("compare base and head in one job (compare.mode: interleaved, compare.schedule: duet), "
                    "so both builds meet the same contention")
    return "; ".join(tips)

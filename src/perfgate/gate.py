"""The gate: (baseline inputs, candidate inputs, policy) -> Verdict. Pure: no I/O, no clock.

Per rule (config `gates:`), one of:
  statistical  relative/absolute change limits: Mann-Whitney U on per-repetition values, Holm-adjusted
               over every statistical rule of the run, effect size AND significance (compare/stats.py);
  absolute     limits on the candidate alone (SLO `max_value`, `min_value`, `max_share_pct`, depth runs);
  SKIP         the data the rule needs was not captured (collector disabled or unavailable): said, not failed.
Then run-wide validity checks: a differing environment fingerprint or a contended runner turns
FAILs into INCONCLUSIVE (the comparison itself is not trustworthy), naming the keys or the runq figures.
Verdict = the worst rule outcome.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from perfgate import __version__
from perfgate.capture.runq_stats import depth_violation, longest_run_above
from perfgate.compare.classify import classify
from perfgate.compare.comparison import Cause, MetricComparison
from perfgate.compare.contention import ContentionView
from perfgate.compare.functions import cpu_per_request_sides, moves, share_moves
from perfgate.compare.inputs import ComparisonInputs, SideInputs, capacity_pairs, repetition_pairs
from perfgate.compare.layer_views import layer_views
from perfgate.compare.mode import run_setup
from perfgate.compare.multiple import adjust_pvalues
from perfgate.compare.paired import compare_paired_metric, min_pairs
from perfgate.compare.runs import across_runs, run_noise_notes, without_unmeasured_drift
from perfgate.compare.stats import compare_metric
from perfgate.compare.syscalls import gc_view, syscall_view, unavailable_notes
from perfgate.config import Config
from perfgate.metrics import (
    GateRule,
    Metric,
    compared_values,
    cpu_per_request_pair,
    metric,
    metric_values,
    missing_cpu,
    missing_runq,
)
from perfgate.metrics import (
    table_metrics as table_entries,
)
from perfgate.profile.render import pprof_diff_command
from perfgate.validity import (
    contention_notes,
    contention_tip,
    contention_view,
    environment_diffs,
    invalidate,
    under_contention,
    validity_rule,
)
from perfgate.verdict import (
    CpuView,
    EnvironmentDiff,
    KernelView,
    RecordSummary,
    RuleOutcome,
    Verdict,
    exit_code_for,
    worst,
)

DEFAULT_DEPTH_THRESHOLD = 5
STATISTICAL_KEYS = ("max_increase_pct", "max_increase_abs", "max_decrease_pct", "max_share_increase_pp")

@dataclass(frozen=True)
class StatisticalCheck:
    """A rule that needs a Mann-Whitney comparison; compared together so Holm sees the whole family."""

    rule: GateRule
    name: str
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    higher_is_worse: bool
    unit: str
    max_worse_rel: float | None
    max_worse_abs: float | None
    pairs: int | None = None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- rules
def compare_values(name: str, base: Sequence[float], cand: Sequence[float], *, pairs: int | None, alpha: float,
                   n_tests: int = 1, **options) -> MetricComparison:
    """Wilcoxon signed-rank on pairs when both sides hold one value for each of the run's `pairs` repetition
    pairs (an interleaved run) and that many pairs can reach significance, else Mann-Whitney U on the two
    samples (it needs fewer repetitions at its floor). The choice depends on the design, never on the values
    (docs/statistics.md)."""
    paired = pairs is not None and len(base) == len(cand) == pairs and pairs >= min_pairs(alpha / n_tests)
    compare = compare_paired_metric if paired else compare_metric
    return compare(name, base, cand, alpha=alpha, n_tests=n_tests, **options)


def statistical_check(rule: GateRule, base: tuple[float, ...], cand: tuple[float, ...], pairs: int | None = None
                      ) -> StatisticalCheck:
    rel = None
    if rule.max_increase_pct is not None:
        rel = rule.max_increase_pct / 100
    if rule.max_decrease_pct is not None:
        rel = rule.max_decrease_pct / 100
    absolute = rule.max_share_increase_pp if rule.max_share_increase_pp is not None else rule.max_increase_abs
    entry = metric(rule.metric)
    return StatisticalCheck(rule=rule, name=rule.label, baseline=base, candidate=cand,
                            higher_is_worse=entry.higher_is_worse, unit=entry.unit,
                            max_worse_rel=rel, max_worse_abs=absolute, pairs=pairs)


def threshold_text(rule: GateRule) -> str:
    parts = []
    for key, template in (("max_increase_pct", "+{:g}%"), ("max_decrease_pct", "-{:g}%"),
                          ("max_increase_abs", "+{:g} abs"), ("max_value", "<= {:g}"), ("min_value", ">= {:g}"),
                          ("max_share_pct", "share <= {:g}%"), ("max_share_increase_pp", "+{:g} pp")):
        value = getattr(rule, key)
        if value is not None:
            parts.append(template.format(value))
    if rule.max_depth is not None:
        parts.append(f"depth > {rule.max_depth} for {rule.consecutive} samples in a row")
    return ", ".join(parts) + ("" if rule.severity == "fail" else " (warn)")


def evaluate_statistical(checks: Sequence[StatisticalCheck], inputs: ComparisonInputs,
                         config: Config) -> list[RuleOutcome]:
    """The family of the multiple-testing correction is the rules that can FAIL: a warn-only rule can never
    block a merge, so it spends none of their alpha and is judged at alpha alone (docs/statistics.md)."""
    if not checks:
        return []
    failing = [c for c in checks if c.rule.severity != "warn"]
    family = len(failing) if config.compare.correction == "holm" else 1
    comparisons = [compare_values(c.name, c.baseline, c.candidate, pairs=c.pairs, higher_is_worse=c.higher_is_worse,
                                  unit=c.unit, alpha=config.compare.alpha, scale=metric(c.rule.metric).scale,
                                  n_tests=family if c.rule.severity != "warn" and family > 1 else 1)
                   for c in checks]
    comparisons = [across_runs(comparison, check.rule, inputs, config)
                   for check, comparison in zip(checks, comparisons, strict=True)]
    fail_family = [comparison for check, comparison in zip(checks, comparisons, strict=True)
                   if check.rule.severity != "warn"]
    adjusted_fail = iter(_adjusted_pvalues(fail_family, config.compare.correction))
    adjusted = [c.p_value if check.rule.severity == "warn" else next(adjusted_fail)
                for check, c in zip(checks, comparisons, strict=True)]
    outcomes = []
    for check, comparison, p_adjusted in zip(checks, comparisons, adjusted, strict=True):
        warn_only = check.rule.severity == "warn"
        limits = {"max_worse_rel": math.inf if warn_only else check.max_worse_rel,
                  "max_worse_abs": None if warn_only else check.max_worse_abs,
                  "warn_worse_rel": check.max_worse_rel if warn_only else None,
                  "warn_worse_abs": check.max_worse_abs if warn_only else None}
        if warn_only and limits["warn_worse_rel"] is None and limits["warn_worse_abs"] is None:
            limits["warn_worse_rel"] = 0.0
        result = classify(comparison, p_adjusted=p_adjusted, **limits)
        outcomes.append(RuleOutcome(rule=check.rule.label, metric=check.rule.metric, severity=check.rule.severity,
                                    outcome=result.outcome, reason=result.reason, cause=result.cause,
                                    threshold=threshold_text(check.rule), comparison=comparison,
                                    p_adjusted=p_adjusted))
    return outcomes


def _adjusted_pvalues(comparisons: Sequence[MetricComparison], correction: str) -> list[float]:
    pvalues = [c.p_value for c in comparisons]
    return pvalues if correction == "none" else adjust_pvalues(pvalues, correction)


def evaluate_absolute(rule: GateRule, side: SideInputs, values: tuple[float, ...]) -> RuleOutcome | None:
    """Limits on the candidate alone: SLOs, share caps, error-rate caps, run-queue depth runs."""
    if rule.max_depth is not None:
        return _depth_outcome(rule, side)
    entry = metric(rule.metric)
    limit = rule.max_share_pct if rule.max_share_pct is not None else rule.max_value
    if limit is not None:
        return _limit_outcome(rule, entry, *entry.limit_value(side, values), limit, above=True)
    if rule.min_value is not None:
        return _limit_outcome(rule, entry, *entry.limit_value(side, values), rule.min_value, above=False)
    return None


def _limit_outcome(rule: GateRule, entry: Metric, value: float | None, what: str, limit: float, *,
                   above: bool) -> RuleOutcome:
    unit = entry.value_suffix
    if value is None:
        return _skip(rule, "no values")
    broken = value > limit if above else value < limit
    word = "above" if above else "below"
    reason = f"{rule.label}: {what} {value:.4g}{unit} is {word if broken else 'within'} the limit {limit:g}{unit}"
    outcome = ("FAIL" if rule.severity == "fail" else "WARN") if broken else "PASS"
    return RuleOutcome(rule=rule.label, metric=rule.metric, severity=rule.severity, outcome=outcome, reason=reason,
                       threshold=threshold_text(rule), evidence={"value": value, "limit": limit})


def _depth_outcome(rule: GateRule, side: SideInputs) -> RuleOutcome:
    if not side.runq:
        return _skip(rule, missing_runq(side))
    assert rule.max_depth is not None and rule.consecutive is not None
    violations = [(i, v) for i, s in enumerate(side.runq, 1)
                  if (v := depth_violation(s, rule.max_depth, rule.consecutive)) is not None]
    if not violations:
        return RuleOutcome(rule=rule.label, metric=rule.metric, severity=rule.severity, outcome="PASS",
                           reason=f"runq.depth: never above {rule.max_depth} for {rule.consecutive} samples in a row",
                           threshold=threshold_text(rule))
    index, violation = violations[0]
    outcome = "FAIL" if rule.severity == "fail" else "WARN"
    reason = (f"runq.depth: run-queue depth above {rule.max_depth} for {violation.longest_run} samples in a row "
              f"in repetition {index} ({len(violations)} of {len(side.runq)} repetitions)")
    return RuleOutcome(rule=rule.label, metric=rule.metric, severity=rule.severity, outcome=outcome, reason=reason,
                       threshold=threshold_text(rule), evidence=asdict(violation))


def _skip(rule: GateRule, why: str) -> RuleOutcome:
    return RuleOutcome(rule=rule.label, metric=rule.metric, severity=rule.severity, outcome="SKIP",
                       reason=f"{rule.label}: not evaluated — {why}", threshold=threshold_text(rule))


def evaluate_rules(inputs: ComparisonInputs, config: Config) -> list[RuleOutcome]:
    base, cand = inputs.baseline, inputs.candidate
    assert base is not None
    checks: list[StatisticalCheck] = []
    outcomes: list[RuleOutcome] = []
    for rule in config.gates:
        cand_values = metric_values(cand, rule) if metric(rule.metric).values is not None else ()
        if isinstance(cand_values, str):
            outcomes.append(_skip(rule, cand_values))
            continue
        absolute = evaluate_absolute(rule, cand, cand_values)
        if absolute is not None:
            outcomes.append(absolute)
        if any(getattr(rule, key) is not None for key in STATISTICAL_KEYS):
            base_values, cand_values = compared_values(base, cand, rule)
            if isinstance(base_values, str):
                outcomes.append(_skip(rule, f"baseline: {base_values}"))
            else:
                pairs = pairs_of(metric(rule.metric), base, cand)
                checks.append(statistical_check(rule, base_values, cand_values, pairs))
    return outcomes + evaluate_statistical(_distinct_names(checks), inputs, config)


def pairs_of(entry: Metric, base: SideInputs, cand: SideInputs) -> int | None:
    """How many pairs the sides' values of `entry` form (value i of one side measured beside value i of the other)."""
    return capacity_pairs(base, cand) if entry.pairing == "capacity probes" else repetition_pairs(base, cand)


def _distinct_names(checks: list[StatisticalCheck]) -> list[StatisticalCheck]:
    """Two statistical rules on one metric (say fail at +20 %, warn at +5 %) need names that tell them apart."""
    labels = [c.name for c in checks]
    return [replace(c, name=f"{c.name} ({c.rule.severity} {threshold_text(c.rule)})") if labels.count(c.name) > 1
            else c for c in checks]


# ---------------------------------------------------------------- run-wide validity
def kernel_view(inputs: ComparisonInputs, config: Config) -> KernelView:
    base, cand = inputs.baseline, inputs.candidate
    if base is None or not base.runq or not cand.runq:
        side = cand if not cand.runq else base
        return KernelView(available=False, reason=missing_runq(side) if side else "no baseline")
    depth_rule = next((r for r in config.gates if r.metric == "runq.depth"), None)
    threshold = depth_rule.max_depth if depth_rule and depth_rule.max_depth else DEFAULT_DEPTH_THRESHOLD
    scope = "service" if all(s.service is not None for s in (*base.runq, *cand.runq)) else "machine"
    def p99(side: SideInputs, scope: str) -> float | None:
        return _median([v for s in side.runq if (v := s.runq_p99_us(scope)) is not None])

    return KernelView(
        available=True, scope=scope,
        baseline_runq_p99_us=p99(base, scope), candidate_runq_p99_us=p99(cand, scope),
        baseline_machine_p99_us=p99(base, "machine"), candidate_machine_p99_us=p99(cand, "machine"),
        longest_depth_run=max(longest_run_above(s.depth_max_series, threshold) for s in cand.runq),
        depth_threshold=threshold)


# ---------------------------------------------------------------- CPU view
def cpu_view(inputs: ComparisonInputs, config: Config) -> CpuView:
    """Risers and fallers of the CPU profile diff in µs of CPU per request (compare/functions.py), each
    function's change tested and Benjamini-Hochberg-adjusted over the functions tested; shares beside.
    In shares only when neither side's CPU per request is known."""
    base, cand = inputs.baseline, inputs.candidate
    if base is None or not base.profiles or not cand.profiles:
        side = cand if not cand.profiles else base
        return CpuView(available=False, reason=missing_cpu(side) if side else "no baseline")
    scaled = cpu_per_request_sides(base, cand)
    if scaled is not None:
        found, basis = moves(scaled[0], scaled[1], unit="µs", alpha=config.compare.alpha), scaled[2]
    else:
        found, basis = share_moves(base.profiles, cand.profiles, alpha=config.compare.alpha), None
    return CpuView(available=True, unit=found.unit, per_request_basis=basis, risers=found.risers,
                   fallers=found.fallers, functions_tested=found.tested,
                   pprof_diff_command=pprof_diff_command(base.profile_files[-1], cand.profile_files[-1]))


def cpu_per_request_comparison(inputs: ComparisonInputs, config: Config) -> MetricComparison | None:
    pair = cpu_per_request_pair(inputs.baseline, inputs.candidate) if inputs.baseline else None
    if pair is None:
        return None
    return compare_entry(metric("cpu_per_request"), *pair, pairs=repetition_pairs(inputs.baseline, inputs.candidate),
                         config=config)


# ---------------------------------------------------------------- the verdict's metrics table
def metrics_table(inputs: ComparisonInputs, config: Config) -> tuple[MetricComparison, ...]:
    """The verdict's metrics table: every metric of the table both sides have, seen as a rule on it would be
    (machine scope for the run queue, so that it speaks of the runner)."""
    base, cand = inputs.baseline, inputs.candidate
    assert base is not None
    comparisons = []
    for entry in table_entries():
        rule = GateRule(entry.name, scope="machine")
        both = None
        if entry.compared is not None:
            both = entry.compared(base, cand)
        elif entry.values is not None:
            both = entry.values(base, rule), entry.values(cand, rule)
        if both and all(values and not isinstance(values, str) for values in both):
            comparison = compare_entry(entry, *both, pairs=pairs_of(entry, base, cand), config=config)
            comparisons.append(across_runs(comparison, rule, inputs, config))
    return tuple(comparisons)


def compare_entry(entry: Metric, base: Sequence[float], cand: Sequence[float], *, pairs: int | None,
                  config: Config) -> MetricComparison:
    return compare_values(entry.name, base, cand, pairs=pairs, higher_is_worse=entry.higher_is_worse, unit=entry.unit,
                          alpha=config.compare.alpha, scale=entry.scale)


# ---------------------------------------------------------------- the verdict
def summary_of(side: SideInputs) -> RecordSummary:
    record = side.record
    return RecordSummary(path=str(record.path or ""), role=record.role, created_at=record.created_at,
                         git_sha=record.environment.git_sha, git_ref=record.environment.git_ref,
                         repetitions=len(record.repetitions), ok_repetitions=side.repetitions,
                         p95_ms=_values(side, "latency.p95"), rps=_values(side, "rps"))


def _values(side: SideInputs, name: str) -> tuple[float, ...]:
    values = metric_values(side, GateRule(name))
    return () if isinstance(values, str) else values


def decide(inputs: ComparisonInputs, config: Config, *, created_at: str = "") -> Verdict:
    if inputs.baseline is None:
        return first_run_verdict(inputs, config, created_at)
    rules = evaluate_rules(inputs, config)
    diffs = environment_diffs(inputs, config.compare.environment_keys)
    kernel = kernel_view(inputs, config)
    validity: list[RuleOutcome] = []
    if diffs:
        keys = ", ".join(f"{d.key} ({d.baseline!r} vs {d.candidate!r})" for d in diffs)
        why = f"the environment differs from the baseline's: {keys}"
        rules = invalidate(rules, why)
        validity.append(validity_rule("environment", why))
    contention = contention_view(inputs, config)
    cpu_per_request = cpu_per_request_comparison(inputs, config)
    contended_rules = under_contention(rules, contention, cpu_per_request, config.compare.alpha)
    if contended_rules != rules:
        rules = contended_rules
        validity.append(validity_rule("contention", f"runner contended: {contention.summary}",
                                       threshold="a runner whose builds got the CPU they needed"))
    rules = validity + without_unmeasured_drift(rules, inputs, config)
    cpu = replace(cpu_view(inputs, config), cpu_per_request=cpu_per_request)
    syscalls = syscall_view(inputs.baseline, inputs.candidate, alpha=config.compare.alpha)
    gc = gc_view(inputs.baseline, inputs.candidate)
    outcome = worst([r.outcome for r in rules if r.outcome != "SKIP"])
    return Verdict(
        outcome=outcome, exit_code=exit_code_for(outcome, fail_on_inconclusive=config.compare.fail_on_inconclusive),
        headline=headline(outcome, rules, cpu), reasons=tuple(r.reason for r in rules if r.outcome == outcome
                                                               and outcome != "PASS"),
        suggestions=suggestions(outcome, rules, diffs, contention, config), rules=tuple(rules),
        metrics=metrics_table(inputs, config), cpu=cpu, kernel=kernel, contention=contention,
        environment_diffs=diffs, notes=(*_notes(inputs), *run_noise_notes(inputs, config),
                                        *contention_notes(contention), *unavailable_notes(syscalls, gc)),
        baseline=summary_of(inputs.baseline),
        candidate=summary_of(inputs.candidate),
        created_at=created_at, perfgate_version=__version__, setup=run_setup(inputs),
        layers=layer_views(inputs.baseline, inputs.candidate, alpha=config.compare.alpha),
        syscalls=syscalls, gc=gc)


def first_run_verdict(inputs: ComparisonInputs, config: Config, created_at: str) -> Verdict:
    note = ("first run: no baseline yet — the record saved here can be the next baseline "
            f"({inputs.candidate.record.path})")
    contention = contention_view(inputs, config)
    return Verdict(outcome="PASS", exit_code=0, headline=f"PASS — {note}", reasons=(), suggestions=(), rules=(),
                   metrics=(), cpu=CpuView(available=False, reason="no baseline"),
                   kernel=KernelView(available=False, reason="no baseline"), contention=contention,
                   environment_diffs=(), notes=(note, *_notes(inputs), *contention_notes(contention)),
                   baseline=None, candidate=summary_of(inputs.candidate), created_at=created_at,
                   perfgate_version=__version__, setup=run_setup(inputs))


def _notes(inputs: ComparisonInputs) -> tuple[str, ...]:
    notes = list(inputs.notes)
    for side in (inputs.baseline, inputs.candidate):
        if side is None:
            continue
        notes += [f"{side.record.role}: {n}" for n in side.record.notes]
        notes += [f"{side.record.role}: {p}" for p in (*side.cpu_problems, *side.runq_problems,
                                                         *side.layer_problems)]
    return tuple(dict.fromkeys(notes))


def headline(outcome: str, rules: Sequence[RuleOutcome], cpu: CpuView) -> str:
    deciding = next((r for r in rules if r.outcome == outcome), None)
    text = outcome
    if deciding is not None and outcome != "PASS":
        text += f": {deciding.reason}"
    else:
        text += f": {sum(r.outcome == 'PASS' for r in rules)} rules passed"
    if cpu.available:
        text += "; " + cpu_mover_text(cpu)
    return text


def cpu_mover_text(cpu: CpuView) -> str:
    """The function whose CPU cost rose most among those whose change is significant, or that none is."""
    measure = "CPU per request" if cpu.unit != "%" else "share of CPU"
    if not cpu.significant_risers:
        return f"no function's {measure} changed significantly ({cpu.functions_tested} tested)"
    top = cpu.significant_risers[0]
    return f"CPU mover {top.function} {format_move(top.change, top.unit)} (adjusted p={top.p_adjusted:.2g})"


def format_move(change: float, unit: str) -> str:
    """A function's change: "+12.3 µs/request", "+64.0 kB/request", "+4.1 pp" for shares."""
    if unit == "%":
        return f"{change:+.1f} pp"
    if unit == "B":
        size = abs(change)
        scaled, suffix = next(((size / f, s) for f, s in ((2**30, "GB"), (2**20, "MB"), (2**10, "kB"))
                               if size >= f), (size, "B"))
        return f"{'+' if change >= 0 else '-'}{scaled:.1f} {suffix}/request"
    return f"{change:+.3g} {unit}/request"


def suggestions(outcome: str, rules: Sequence[RuleOutcome], diffs: Sequence[EnvironmentDiff],
                contention: ContentionView, config: Config) -> tuple[str, ...]:
    """What would make the next run conclusive: only for an INCONCLUSIVE verdict. A FAIL was conclusive,
    whatever else a rule could not tell, so it gets no advice about noise."""
    inconclusive = [r for r in rules if r.outcome == "INCONCLUSIVE"]
    if outcome != "INCONCLUSIVE" or not inconclusive:
        return ()
    tips = []
    needed = max((r.comparison.min_reps_needed for r in inconclusive if r.comparison and not r.comparison.can_reject),
                 default=None)
    if needed:
        tips.append(f"raise load.repetitions to at least {needed} (now {config.load.repetitions})")
    if any(r.cause == Cause.DRIFT_UNKNOWN for r in inconclusive):
        tips.append("let perfgate measure the drift between runs: give it earlier baseline records of the base "
                    "branch (baseline.history, --history; in the Action baseline.history_runs), or set "
                    "compare.run_noise_pct if you know it; or build and run base and head in one job "
                    "(service.build), where drift hits both")
    drift_bound = [r for r in inconclusive if r.comparison and r.comparison.limited_by_run_drift]
    if drift_bound:
        tips.append("the baseline came from another run and runs on this runner drift apart more than the rule "
                    "allows: more repetitions cannot fix that; compare base and head in one job "
                    "(compare.mode: interleaved, compare.schedule: duet)")
    if any(r.cause == Cause.TOO_NOISY for r in inconclusive if r not in drift_bound):
        tips.append("reduce noise: more repetitions, longer load.duration_s, or compare.mode: interleaved "
                    "(base and head alternate on the same runner)")
    if diffs:
        tips.append("measure the baseline on the same runner type, or use compare.mode: interleaved")
    if contention.contended:
        tips.append(contention_tip(contention))
    return tuple(tips)

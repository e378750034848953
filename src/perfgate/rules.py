"""The gate's rules (config `gates:`), each evaluated on the comparison inputs into a RuleOutcome:

  statistical  relative/absolute change limits: Mann-Whitney U (or Wilcoxon on the pairs of an interleaved
               run) on per-repetition values, Holm-adjusted over every rule of the run that can FAIL,
               effect size AND significance (compare/stats.py, compare/paired.py, compare/classify.py);
  absolute     limits on the candidate alone (SLO `max_value`, `min_value`, `max_share_pct`, depth runs);
  SKIP         the data the rule needs was not captured (collector disabled or unavailable): said, not failed.
Pure: no I/O, no clock. gate.py turns the outcomes into the Verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from perfgate.capture.runq_stats import depth_violation
from perfgate.compare.classify import classify
from perfgate.compare.comparison import MetricComparison
from perfgate.compare.inputs import ComparisonInputs, SideInputs, capacity_pairs, repetition_pairs
from perfgate.compare.multiple import adjust_pvalues
from perfgate.compare.paired import compare_paired_metric, min_pairs
from perfgate.compare.runs import across_runs
from perfgate.compare.stats import compare_metric
from perfgate.config import Config
from perfgate.metrics import GateRule, Metric, compared_values, metric, metric_values, missing_runq
from perfgate.verdict import RuleOutcome

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


def compare_entry(entry: Metric, base: Sequence[float], cand: Sequence[float], *, pairs: int | None,
                  config: Config) -> MetricComparison:
    return compare_values(entry.name, base, cand, pairs=pairs, higher_is_worse=entry.higher_is_worse, unit=entry.unit,
                          alpha=config.compare.alpha, scale=entry.scale)

"""The gate: (baseline inputs, candidate inputs, policy) -> Verdict. Pure: no I/O, no clock.

Each rule of config `gates:` gives one outcome (rules.py: statistical, absolute, or SKIP when its data was
not captured). Then run-wide validity checks (validity.py): a differing environment fingerprint or a
contended runner turns FAILs into INCONCLUSIVE (the comparison itself is not trustworthy), naming the keys
or the runq figures. Beside the rules: the CPU and kernel views, the metrics table, headline, suggestions.
Verdict = the worst rule outcome.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import replace

from perfgate import __version__
from perfgate.capture.runq_stats import longest_run_above
from perfgate.compare.comparison import Cause, MetricComparison
from perfgate.compare.contention import ContentionView
from perfgate.compare.functions import cpu_per_request_sides, moves, share_moves
from perfgate.compare.inputs import ComparisonInputs, SideInputs, repetition_pairs
from perfgate.compare.layer_views import layer_views
from perfgate.compare.mode import run_setup
from perfgate.compare.runs import across_runs, run_noise_notes, without_unmeasured_drift
from perfgate.compare.syscalls import gc_view, syscall_view, unavailable_notes
from perfgate.compare.trends import trends
from perfgate.config import Config
from perfgate.metrics import (
    GateRule,
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
from perfgate.rules import compare_entry, evaluate_rules, pairs_of
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


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


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
        found = moves(scaled[0], scaled[1], unit="µs", alpha=config.compare.alpha, sampled_cpu=True,
                      probes=(base.probe_cpu, cand.probe_cpu))
        basis = scaled[2]
    else:
        found, basis = share_moves(base.profiles, cand.profiles, alpha=config.compare.alpha), None
    return CpuView(available=True, unit=found.unit, per_request_basis=basis, risers=found.risers,
                   fallers=found.fallers, functions_tested=found.tested, functions_own=found.own,
                   probe_profiles=found.probe_profiles,
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
        syscalls=syscalls, gc=gc, trends=trends(inputs, config))


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
        notes += [f"{side.record.role}: {p}" for p in (*side.cpu_problems, *side.probe_cpu_problems,
                                                         *side.runq_problems, *side.layer_problems)]
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


def noise_tip(config: Config) -> str:
    """How to reduce noise; comparing in one job is advice only for a run that did not."""
    if config.compare.mode == "interleaved":
        return ("reduce noise: more repetitions or a longer load.duration_s; base and head already ran in this "
                "job, so the noise left is the runner's own (a quieter or larger runner helps)")
    return ("reduce noise: more repetitions, longer load.duration_s, or compare.mode: interleaved "
            "(base and head alternate on the same runner)")


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
        tips.append(noise_tip(config))
    if diffs:
        tips.append("measure the baseline on the same runner type, or use compare.mode: interleaved")
    if contention.contended:
        tips.append(contention_tip(contention))
    return tuple(tips)

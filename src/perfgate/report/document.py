"""What a report says, independent of its format: a Verdict turned into sections of blocks.

The Markdown comment and the HTML report render the same Document, so they carry the same content.
Everything here only *presents* the Verdict: outcomes, reasons and suggestions come from gate.py.
Text from outside stays raw in the blocks; each renderer escapes it for its own format.

Sections have a priority (higher = more important): when the Markdown comment must shrink to fit
GitHub's limit, the droppable sections go first, lowest priority first, then rows of the rest (markdown.py).
The sections every comment has (reasons, advice, metrics, CPU movers, kernel view) are not droppable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from perfgate.compare.classify import fmt_level
from perfgate.compare.comparison import MetricComparison
from perfgate.compare.multiple import adjust_pvalues
from perfgate.report import FLAMEGRAPH_FILE
from perfgate.report.blocks import (
    BREAK,
    HEADLINE_LIMIT,
    NAME_LIMIT,
    Alert,
    Block,
    Bullets,
    Chart,
    CodeBlock,
    Document,
    Figure,
    Inline,
    Paragraph,
    Section,
    Span,
    Table,
    code,
    format_change,
    format_ci,
    format_p,
    format_us,
    format_value,
    inline,
    limited,
    more_note,
    shown_value,
    strong,
    without_prefix,
)
from perfgate.report.contention import contention_section
from perfgate.report.layers import layers_section
from perfgate.report.movers import MOVER_ALIGN, MOVER_HEADER, count_test_text, move_row, movers_note, smallest
from perfgate.report.syscalls import syscalls_section
from perfgate.verdict import OUTCOME_ORDER, CpuView, RecordSummary, RuleOutcome, Verdict

OUTCOME_EMOJI = {"SKIP": "⏭️", "PASS": "✅", "WARN": "⚠️", "INCONCLUSIVE": "❓", "FAIL": "❌"}
DEFAULT_MAX_MOVERS = 15
# ---------------------------------------------------------------- building
SectionBuilder = Callable[[Verdict, int | None, int | None], Section | None]


def build_document(verdict: Verdict, *, title: str = "perfgate", max_rows: dict[str, int] | None = None,
                   max_movers: int | None = DEFAULT_MAX_MOVERS, drop: Sequence[str] = ()) -> Document:
    """The report of `verdict`. max_rows limits the rows of a section by key; drop leaves sections out."""
    limits = max_rows or {}
    sections = []
    for key, builder in SECTIONS:
        if key in drop:
            continue
        section = builder(verdict, limits.get(key), max_movers)
        if section is not None:
            sections.append(section)
    return Document(title=title, outcome=verdict.outcome, headline=headline(verdict),
                    sections=tuple(sections))


def headline(verdict: Verdict) -> Inline:
    parts: list[str | Span | Inline] = [strong(f"{OUTCOME_EMOJI.get(verdict.outcome, '')} {verdict.outcome}"),
                                        " — ", _without_outcome(verdict.headline, verdict.outcome)]
    mover = biggest_mover(verdict.metrics)
    if mover is not None:
        parts += [" · biggest mover: ", strong(mover.name), f" {format_change(mover)}"]
    return inline(*parts, limit=HEADLINE_LIMIT)


def _without_outcome(text: str, outcome: str) -> str:
    """gate.py's headline may start with the outcome word, which the report already shows."""
    for separator in (": ", " — ", " - "):
        if text.startswith(outcome + separator):
            return text[len(outcome + separator):]
    return text


def biggest_mover(metrics: Sequence[MetricComparison]) -> MetricComparison | None:
    """Of the metrics that changed significantly in either direction (two-sided p, Holm over the metrics
    shown), the one that moved most in relative terms; None when none did: a report never names noise."""
    if not metrics:
        return None
    adjusted = adjust_pvalues([m.p_two_sided for m in metrics], "holm")
    moved = [m for m, p in zip(metrics, adjusted, strict=True)
             if p < m.alpha and m.rel_change is not None and math.isfinite(m.rel_change) and m.rel_change != 0]
    return max(moved, key=lambda m: abs(m.rel_change or 0.0), default=None)


def reasons_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.reasons:
        return None
    shown, total, count = limited(verdict.reasons, limit)
    blocks: list[Block] = [Bullets(tuple(inline(r) for r in shown))]
    more = more_note(count, total, "reasons")
    blocks += [more] if more else []
    return Section("reasons", "Why", 95, tuple(blocks), rows_total=total, rows_shown=count, row_limit=count,
                   droppable=False)


def advice_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.suggestions:
        return None
    shown, total, count = limited(verdict.suggestions, limit)
    title = "Why inconclusive, and what to do" if verdict.outcome == "INCONCLUSIVE" else "What to do"
    blocks: list[Block] = []
    if verdict.outcome == "INCONCLUSIVE":
        blocks.append(Alert("IMPORTANT", inline(
            "This run could not tell whether performance changed: the gate neither passed nor failed it. "
            "The reasons are listed above; these steps make the next run conclusive.")))
    blocks.append(Bullets(tuple(inline(s) for s in shown)))
    more = more_note(count, total, "suggestions")
    blocks += [more] if more else []
    return Section("advice", title, 90, tuple(blocks), rows_total=total, rows_shown=count, row_limit=count,
                   droppable=False)


def setup_section(verdict: Verdict, _limit: int | None, _movers: int | None) -> Section | None:
    """Which mode produced the verdict (built A/B duet, baseline artifact, ...) and at what request rate."""
    if verdict.setup is None:
        return None
    return Section("setup", "How it was measured", 85,
                   (Paragraph(inline(strong(verdict.setup.mode), ": ", verdict.setup.description)),), droppable=False)


def metrics_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.metrics:
        return None
    shown, total, count = limited(verdict.metrics, limit)
    level = ci_header(verdict.metrics)
    rows = tuple(_metric_row(m, _rules_for(verdict.rules, m.name), with_level=level == "CI") for m in shown)
    table = Table(("Metric", "Baseline", "Candidate", "Change", level, "p", "Rule"), rows,
                  ("l", "r", "r", "r", "r", "r", "l"))
    blocks: list[Block] = [table]
    more = more_note(count, total, "metrics")
    blocks += [more] if more else []
    paired = any(m.paired for m in verdict.metrics)
    test = "Wilcoxon signed-rank test on the pairs" if paired else "Mann-Whitney U test"
    blocks.append(Paragraph(inline(
        "Baseline and candidate: medians over repetitions. Change: Hodges-Lehmann estimate of candidate vs "
        f"baseline{' pair by pair' if paired else ''}, as a ratio for times, throughput and CPU, so it need not "
        "equal the ratio of the two medians. CI: two-sided, at the level shown (alpha in each tail), so it "
        f"lies wholly on the worse side exactly when the one-sided test rejects; p: one-sided {test} in the "
        "worse direction (adj.: after the multiple-testing correction).")))
    drift = run_drift_note(verdict.metrics)
    blocks += [drift] if drift else []
    blocks.append(Figure("latency_cdf", "Latency distribution of all calls, baseline vs candidate"))
    return Section("metrics", "Metrics", 80, tuple(blocks), rows_total=total, rows_shown=count,
                   row_limit=count, droppable=False)


def run_drift_note(metrics: Sequence[MetricComparison]) -> Paragraph | None:
    """Says that p, CI and MDE also allow for run-to-run drift, and how large it was, when they do."""
    drifting = [m for m in metrics if m.run_level is not None]
    if not drifting:
        return None
    spreads = ", ".join(f"{m.name} ±{m.run_level.sigma_rel:.1%}" for m in drifting)
    return Paragraph(inline(
        f"The baseline came from another run, so p and the interval also allow for how far runs of the same "
        f"code drift apart on this runner ({drifting[0].run_level.source}: {spreads}); a change must stand out "
        "from that drift too (docs/statistics.md, run-to-run noise)."))


def ci_header(metrics: Sequence[MetricComparison]) -> str:
    """'90.3 % CI' when every interval shown has that level; else 'CI', and each cell carries its level."""
    levels = {fmt_level(m.ci_level) for m in metrics if m.ci_level is not None}
    return f"{levels.pop().replace('%', ' %')} CI" if len(levels) == 1 else "CI"


def _rules_for(rules: Sequence[RuleOutcome], metric: str) -> list[RuleOutcome]:
    return [r for r in rules if r.metric == metric]


def _metric_row(m: MetricComparison, rules: list[RuleOutcome], *, with_level: bool) -> tuple[Inline, ...]:
    adjusted = [r.p_adjusted for r in rules if r.p_adjusted is not None]
    p_text = format_p(m.p_value) + (f" (adj. {format_p(max(adjusted))})" if adjusted else "")
    outcome: list[str | Span] = []
    for rule in rules:
        if outcome:
            outcome.append(BREAK)
        outcome.append(f"{OUTCOME_EMOJI.get(rule.outcome, '')} {rule.outcome}")
        if rule.threshold:
            outcome.append(Span(f" ({rule.threshold})", "", NAME_LIMIT))
    return (inline(code(m.name)), inline(format_value(m.baseline_median, m.unit)),
            inline(format_value(m.candidate_median, m.unit)), inline(format_change(m)),
            inline(format_ci(m, with_level=with_level)),
            inline(p_text), inline(*outcome) if outcome else inline("–"))


def rules_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.rules:
        return None
    ordered = sorted(verdict.rules, key=lambda r: -OUTCOME_ORDER.get(r.outcome, 0))
    shown, total, count = limited(ordered, limit)
    rows = tuple((inline(code(r.rule)), inline(code(r.metric)), inline(r.severity),
                  inline(f"{OUTCOME_EMOJI.get(r.outcome, '')} {r.outcome}"),
                  inline(Span(r.threshold, "", NAME_LIMIT)), inline(r.reason)) for r in shown)
    blocks: list[Block] = [Table(("Rule", "Metric", "Severity", "Outcome", "Threshold", "Reason"), rows)]
    more = more_note(count, total, "rules")
    blocks += [more] if more else []
    failing = sum(r.outcome in ("FAIL", "WARN", "INCONCLUSIVE") for r in verdict.rules)
    summary = f"Gate rules: {len(verdict.rules)} checked, {failing} not passing"
    return Section("rules", summary, 70, tuple(blocks), collapsible=True, open=failing > 0,
                   rows_total=total, rows_shown=count, row_limit=count)


def chart_section(verdict: Verdict, _limit: int | None, _movers: int | None) -> Section | None:
    series = []
    for summary in (verdict.baseline, verdict.candidate):
        if summary is not None:
            values = tuple(v for v in summary.p95_ms if v is not None and math.isfinite(v))
            if values:
                series.append((summary.role or "candidate", values))
    if not series:
        return None
    blocks: tuple[Block, ...] = (
        Chart("p95 latency per repetition", "p95 (ms)", tuple(series)),
        Figure("percentiles", "p50, p95 and p99 of each repetition, both sides"),
    )
    return Section("chart", "p95 latency per repetition", 50, blocks)


def cpu_section(verdict: Verdict, limit: int | None, max_movers: int | None) -> Section | None:
    cpu = verdict.cpu
    if not cpu.available:
        reason = without_prefix(cpu.reason or "no CPU profiles were captured", "cpu profile unavailable:")
        return Section("cpu", "CPU profile", 60, (Paragraph(inline("CPU profile unavailable: ", reason)),),
                       droppable=False)
    cap = smallest(limit, max_movers)
    blocks: list[Block] = []
    if cpu.cpu_per_request is not None:
        c = cpu.cpu_per_request
        blocks.append(Paragraph(inline(
            strong("CPU per request"), f": {format_value(c.baseline_median, c.unit)} → "
            f"{format_value(c.candidate_median, c.unit)}, {format_change(c)} {format_ci(c, with_level=True)}, "
            f"p {format_p(c.p_value)}")))
    total = shown_total = widest = 0
    for label, moves in (("Functions using more CPU", cpu.risers), ("Functions using less CPU", cpu.fallers)):
        if not moves:
            continue
        shown, count_total, count = limited(moves, cap)
        total, shown_total, widest = total + count_total, shown_total + count, max(widest, count)
        blocks.append(Paragraph(inline(strong(label, None), f" ({count} of {count_total:,})"
                                       if count < count_total else "")))
        blocks.append(Table(MOVER_HEADER, tuple(move_row(m) for m in shown), MOVER_ALIGN))
        more = more_note(count, count_total, "functions")
        blocks += [more] if more else []
    if not cpu.risers and not cpu.fallers:
        blocks.append(Paragraph(inline("No function's CPU cost moved between the sides.")))
    else:
        blocks.append(Paragraph(inline(_costs_note(cpu), " ",
                                       movers_note((*cpu.risers, *cpu.fallers), cpu.functions_tested, "CPU",
                                                   own=cpu.functions_own, per_request_test=count_test_text(cpu),
                                                   total_rose=_cpu_rose(verdict)))))
    blocks.append(Figure("cpu_delta", "Change of each function's CPU per request" if cpu.unit != "%"
                         else "Change of each function's share of CPU, percentage points"))
    if cpu.pprof_diff_command:
        blocks.append(Paragraph(inline(
            "Explore the difference yourself (percentages relative to the baseline):")))
        blocks.append(CodeBlock(cpu.pprof_diff_command, "sh"))
    blocks.append(Paragraph(inline("Flame graph: ", code(FLAMEGRAPH_FILE), " in the run's artifact.")))
    title = "CPU: functions that moved"
    return Section("cpu", title, 60, tuple(blocks), collapsible=True, open=verdict.outcome == "FAIL",
                   rows_total=total, rows_shown=shown_total, row_limit=widest, droppable=False)


def _cpu_rose(verdict: Verdict) -> bool:
    """A rule on CPU per request failed or warned: it rose beyond the threshold."""
    total = verdict.cpu.cpu_per_request
    return total is not None and any(r.metric == total.name and r.outcome in ("FAIL", "WARN") for r in verdict.rules)


def _costs_note(cpu: CpuView) -> str:
    if cpu.unit == "%":
        return "Shares of each profile's CPU (CPU per request was not known on both sides)."
    basis = f" ({cpu.per_request_basis})" if cpu.per_request_basis else ""
    return (f"Costs in µs of CPU per request: each repetition's profile scaled to its measured CPU per request"
            f"{basis}; a function whose work did not change keeps its cost when another grows. "
            "Shares of the profile beside.")


def kernel_section(verdict: Verdict, _limit: int | None, _movers: int | None) -> Section | None:
    k = verdict.kernel
    if not k.available:
        reason = without_prefix(k.reason or "no run-queue data was captured", "kernel view unavailable:")
        return Section("kernel", "Kernel view", 45, (Paragraph(inline("Kernel view unavailable: ", reason)),),
                       droppable=False)
    rows = [(inline(f"run-queue latency p99 ({k.scope})"), inline(format_us(k.baseline_runq_p99_us)),
             inline(format_us(k.candidate_runq_p99_us)))]
    machine = (k.baseline_machine_p99_us, k.candidate_machine_p99_us)
    if k.scope != "machine" and machine != (None, None):
        rows.append((inline("run-queue latency p99 (whole machine)"), inline(format_us(machine[0])),
                     inline(format_us(machine[1]))))
    blocks: list[Block] = [Table(("", "Baseline", "Candidate"), tuple(rows), ("l", "r", "r"))]
    if k.longest_depth_run is not None and k.depth_threshold is not None:
        blocks.append(Paragraph(inline(
            f"Longest run of consecutive run-queue depth samples above {k.depth_threshold} in the candidate: "
            f"{k.longest_depth_run}.")))
    blocks.append(Figure("runq_histogram", "Run-queue latency histogram, baseline vs candidate"))
    return Section("kernel", "Kernel view: run-queue latency", 45, tuple(blocks), collapsible=True,
                   droppable=False)


def environment_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.environment_diffs:
        return None
    shown, total, count = limited(verdict.environment_diffs, limit)
    rows = tuple((inline(code(d.key)), inline(shown_value(d.baseline)), inline(shown_value(d.candidate)))
                 for d in shown)
    blocks: list[Block] = [Table(("Setting", "Baseline", "Candidate"), rows)]
    more = more_note(count, total, "differences")
    blocks += [more] if more else []
    return Section("environment", f"Environment differences ({total})", 30, tuple(blocks), collapsible=True,
                   rows_total=total, rows_shown=count, row_limit=count)


def notes_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.notes:
        return None
    shown, total, count = limited(verdict.notes, limit)
    blocks: list[Block] = [Bullets(tuple(inline(n) for n in shown))]
    more = more_note(count, total, "notes")
    blocks += [more] if more else []
    return Section("notes", f"Notes ({total})", 20, tuple(blocks), collapsible=True,
                   rows_total=total, rows_shown=count, row_limit=count)


def records_section(verdict: Verdict, _limit: int | None, _movers: int | None) -> Section | None:
    parts: list[str | Span | Inline] = []
    for summary in (verdict.baseline, verdict.candidate):
        if summary is not None:
            parts += [*(["; "] if parts else []), _record_line(summary)]
    if verdict.baseline is None:
        parts += ["; no baseline"]
    parts += [f"; perfgate {verdict.perfgate_version}, verdict of {verdict.created_at}"]
    return Section("records", "Records", 10, (Paragraph(inline(*parts)),))


def _record_line(summary: RecordSummary) -> Inline:
    ref = f"({summary.git_ref})" if summary.git_ref else ""
    where = " ".join(x for x in ((summary.git_sha or "")[:12], ref) if x)
    return inline(f"{summary.role}: ", Span(where or "unknown commit", "", NAME_LIMIT),
                  f", {summary.ok_repetitions}/{summary.repetitions} repetitions ok, "
                  f"measured {summary.created_at}")


# its own module (it imports the blocks above), so imported here, below them

SECTIONS: tuple[tuple[str, SectionBuilder], ...] = (
    ("reasons", reasons_section),
    ("advice", advice_section),
    ("setup", setup_section),
    ("metrics", metrics_section),
    ("rules", rules_section),
    ("chart", chart_section),
    ("cpu", cpu_section),
    ("layers", layers_section),
    ("syscalls", syscalls_section),
    ("kernel", kernel_section),
    ("contention", contention_section),
    ("environment", environment_section),
    ("notes", notes_section),
    ("records", records_section),
)
SECTION_BUILDERS: dict[str, SectionBuilder] = dict(SECTIONS)

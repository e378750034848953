"""What a report says, independent of its format: a Verdict turned into sections of blocks.

The Markdown comment and the HTML report render the same Document, so they carry the same content.
Everything here only *presents* the Verdict: outcomes, reasons and suggestions come from gate.py.
Text from outside stays raw in the blocks; each renderer escapes it for its own format.

Sections have a priority (higher = more important): when the Markdown comment must shrink to fit
GitHub's limit, the droppable sections go first, lowest priority first, then rows of the rest (markdown.py).
The sections the issue asks every comment to have (reasons, advice, metrics, CPU movers, kernel view) are
not droppable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from perfgate.compare.classify import fmt_level
from perfgate.compare.comparison import MetricComparison
from perfgate.compare.functions import FunctionMove
from perfgate.compare.stats import adjust_pvalues
from perfgate.report.movers import MOVER_ALIGN, MOVER_HEADER, move_cells, movers_note
from perfgate.verdict import OUTCOME_ORDER, CpuView, RecordSummary, RuleOutcome, Verdict

OUTCOME_EMOJI = {"SKIP": "⏭️", "PASS": "✅", "WARN": "⚠️", "INCONCLUSIVE": "❓", "FAIL": "❌"}
DEFAULT_MAX_MOVERS = 15
NAME_LIMIT = 160  # characters of a function name, rule or metric shown in a table cell
TEXT_LIMIT = 600  # characters of a reason, note or suggestion
HEADLINE_LIMIT = 300


# ---------------------------------------------------------------- inline content
@dataclass(frozen=True)
class Span:
    """A run of text; `style` is "" (plain), "strong", "code" (monospace) or "break" (a line break)."""

    text: str
    style: str = ""
    limit: int | None = None  # clip the text to this many characters before escaping


Inline: TypeAlias = tuple[Span, ...]


def inline(*parts: str | Span | Inline, limit: int | None = TEXT_LIMIT) -> Inline:
    spans: list[Span] = []
    for part in parts:
        if isinstance(part, str):
            spans.append(Span(part, "", limit))
        elif isinstance(part, Span):
            spans.append(part)
        else:
            spans.extend(part)
    return tuple(spans)


def strong(text: str, limit: int | None = NAME_LIMIT) -> Span:
    return Span(text, "strong", limit)


def code(text: str, limit: int | None = NAME_LIMIT) -> Span:
    return Span(text, "code", limit)


BREAK = Span("", "break")


# ---------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Paragraph:
    content: Inline


@dataclass(frozen=True)
class Bullets:
    items: tuple[Inline, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Inline, ...], ...]
    align: tuple[str, ...] = ()  # "l" or "r" per column; left when missing


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Alert:
    """A GitHub alert (> [!NOTE] / [!WARNING] / [!IMPORTANT]) or a styled box in HTML."""

    kind: str
    content: Inline


@dataclass(frozen=True)
class Chart:
    """Per-repetition values of each side; Markdown draws it with Mermaid, HTML as a table."""

    title: str
    y_label: str
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (side name, values)


@dataclass(frozen=True)
class Figure:
    """A PNG from plots.py by key; only the HTML report shows it (a comment cannot hold images)."""

    key: str
    caption: str


Block: TypeAlias = Paragraph | Bullets | Table | CodeBlock | Alert | Chart | Figure


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    priority: int
    blocks: tuple[Block, ...]
    collapsible: bool = False
    open: bool = False
    rows_total: int = 0  # rows this section could show (list items and table rows)
    rows_shown: int = 0
    row_limit: int = 0  # the most rows any one list or table of the section shows now
    droppable: bool = True  # False: the comment keeps it, cutting its rows if it must


@dataclass(frozen=True)
class Document:
    title: str
    outcome: str
    headline: Inline
    sections: tuple[Section, ...]
    cuts: tuple[str, ...] = field(default=())  # what markdown.py left out to fit, for the reader


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


def _limited(items: Sequence, limit: int | None) -> tuple[Sequence, int, int]:
    shown = items if limit is None else items[: max(limit, 0)]
    return shown, len(items), len(shown)


def _more_note(shown: int, total: int, what: str) -> Paragraph | None:
    if shown >= total:
        return None
    return Paragraph(inline(f"… {total - shown:,} more {what} not shown here; all are in verdict.json."))


def reasons_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.reasons:
        return None
    shown, total, count = _limited(verdict.reasons, limit)
    blocks: list[Block] = [Bullets(tuple(inline(r) for r in shown))]
    more = _more_note(count, total, "reasons")
    blocks += [more] if more else []
    return Section("reasons", "Why", 95, tuple(blocks), rows_total=total, rows_shown=count, row_limit=count,
                   droppable=False)


def advice_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.suggestions:
        return None
    shown, total, count = _limited(verdict.suggestions, limit)
    title = "Why inconclusive, and what to do" if verdict.outcome == "INCONCLUSIVE" else "What to do"
    blocks: list[Block] = []
    if verdict.outcome == "INCONCLUSIVE":
        blocks.append(Alert("IMPORTANT", inline(
            "This run could not tell whether performance changed: the gate neither passed nor failed it. "
            "The reasons are listed above; these steps make the next run conclusive.")))
    blocks.append(Bullets(tuple(inline(s) for s in shown)))
    more = _more_note(count, total, "suggestions")
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
    shown, total, count = _limited(verdict.metrics, limit)
    level = ci_header(verdict.metrics)
    rows = tuple(_metric_row(m, _rules_for(verdict.rules, m.name), with_level=level == "CI") for m in shown)
    table = Table(("Metric", "Baseline", "Candidate", "Change", level, "p", "Rule"), rows,
                  ("l", "r", "r", "r", "r", "r", "l"))
    blocks: list[Block] = [table]
    more = _more_note(count, total, "metrics")
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
    shown, total, count = _limited(ordered, limit)
    rows = tuple((inline(code(r.rule)), inline(code(r.metric)), inline(r.severity),
                  inline(f"{OUTCOME_EMOJI.get(r.outcome, '')} {r.outcome}"),
                  inline(Span(r.threshold, "", NAME_LIMIT)), inline(r.reason)) for r in shown)
    blocks: list[Block] = [Table(("Rule", "Metric", "Severity", "Outcome", "Threshold", "Reason"), rows)]
    more = _more_note(count, total, "rules")
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
        reason = _without_prefix(cpu.reason or "no CPU profiles were captured", "cpu profile unavailable:")
        return Section("cpu", "CPU profile", 60, (Paragraph(inline("CPU profile unavailable: ", reason)),),
                       droppable=False)
    cap = _smallest(limit, max_movers)
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
        shown, count_total, count = _limited(moves, cap)
        total, shown_total, widest = total + count_total, shown_total + count, max(widest, count)
        blocks.append(Paragraph(inline(strong(label, None), f" ({count} of {count_total:,})"
                                       if count < count_total else "")))
        blocks.append(Table(MOVER_HEADER, tuple(move_row(m) for m in shown), MOVER_ALIGN))
        more = _more_note(count, count_total, "functions")
        blocks += [more] if more else []
    if not cpu.risers and not cpu.fallers:
        blocks.append(Paragraph(inline("No function's CPU cost moved between the sides.")))
    else:
        blocks.append(Paragraph(inline(_costs_note(cpu), " ",
                                       movers_note((*cpu.risers, *cpu.fallers), cpu.functions_tested, "CPU"))))
    blocks.append(Figure("cpu_delta", "Change of each function's CPU per request" if cpu.unit != "%"
                         else "Change of each function's share of CPU, percentage points"))
    if cpu.pprof_diff_command:
        blocks.append(Paragraph(inline(
            "Explore the difference yourself (percentages relative to the baseline):")))
        blocks.append(CodeBlock(cpu.pprof_diff_command, "sh"))
    if cpu.flamegraph_file:
        blocks.append(Paragraph(inline("Flame graph: ", code(cpu.flamegraph_file),
                                       " in the run's artifact.")))
    title = "CPU: functions that moved"
    return Section("cpu", title, 60, tuple(blocks), collapsible=True, open=verdict.outcome == "FAIL",
                   rows_total=total, rows_shown=shown_total, row_limit=widest, droppable=False)


def _costs_note(cpu: CpuView) -> str:
    if cpu.unit == "%":
        return "Shares of each profile's CPU (CPU per request was not known on both sides)."
    basis = f" ({cpu.per_request_basis})" if cpu.per_request_basis else ""
    return (f"Costs in µs of CPU per request: each repetition's profile scaled to its measured CPU per request"
            f"{basis}; a function whose work did not change keeps its cost when another grows. "
            "Shares of the profile beside.")


def _smallest(*limits: int | None) -> int | None:
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def move_row(m: FunctionMove) -> tuple[Inline, ...]:
    cells = move_cells(m, format_p)
    return (inline(code(cells[0])), *(inline(cell) for cell in cells[1:]))


def kernel_section(verdict: Verdict, _limit: int | None, _movers: int | None) -> Section | None:
    k = verdict.kernel
    if not k.available:
        reason = _without_prefix(k.reason or "no run-queue data was captured", "kernel view unavailable:")
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
    shown, total, count = _limited(verdict.environment_diffs, limit)
    rows = tuple((inline(code(d.key)), inline(_plain(d.baseline)), inline(_plain(d.candidate)))
                 for d in shown)
    blocks: list[Block] = [Table(("Setting", "Baseline", "Candidate"), rows)]
    more = _more_note(count, total, "differences")
    blocks += [more] if more else []
    return Section("environment", f"Environment differences ({total})", 30, tuple(blocks), collapsible=True,
                   rows_total=total, rows_shown=count, row_limit=count)


def notes_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    if not verdict.notes:
        return None
    shown, total, count = _limited(verdict.notes, limit)
    blocks: list[Block] = [Bullets(tuple(inline(n) for n in shown))]
    more = _more_note(count, total, "notes")
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
from perfgate.report.contention import contention_section  # noqa: E402

SECTIONS: tuple[tuple[str, SectionBuilder], ...] = (
    ("reasons", reasons_section),
    ("advice", advice_section),
    ("setup", setup_section),
    ("metrics", metrics_section),
    ("rules", rules_section),
    ("chart", chart_section),
    ("cpu", cpu_section),
    ("kernel", kernel_section),
    ("contention", contention_section),
    ("environment", environment_section),
    ("notes", notes_section),
    ("records", records_section),
)
SECTION_BUILDERS: dict[str, SectionBuilder] = dict(SECTIONS)


# ---------------------------------------------------------------- number formatting
def format_number(value: float) -> str:
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "fraction":
        return f"{format_number(value * 100)} %"
    return f"{format_number(value)} {unit}".rstrip()


def format_us(value: float | None) -> str:
    return format_value(value, "µs")


def _signed(value: float) -> str:
    if not math.isfinite(value):
        return "+∞" if value > 0 else "−∞"
    return f"+{format_number(value)}" if value >= 0 else format_number(value)


def _pct(value: float) -> str:
    if not math.isfinite(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value * 100:+.1f} %"


def format_change(m: MetricComparison) -> str:
    if m.shift is None:
        return "–"
    if m.unit == "fraction":
        absolute = f"{_signed(m.shift * 100)} pp"
    else:
        absolute = f"{_signed(m.shift)} {m.unit}".rstrip()
    if m.rel_change is None:
        return absolute
    return f"{_pct(m.rel_change)} ({absolute})"


def format_ci(m: MetricComparison, *, with_level: bool = False) -> str:
    """The interval; with_level adds the level it was computed at (when no header says it)."""
    level = f" ({fmt_level(m.ci_level).replace('%', ' %')})" if with_level and m.ci_level is not None else ""
    if m.rel_ci is not None:
        return f"[{_pct(m.rel_ci[0])}, {_pct(m.rel_ci[1])}]{level}"
    if m.shift_ci is not None:
        scale = 100 if m.unit == "fraction" else 1
        return f"[{_signed(m.shift_ci[0] * scale)}, {_signed(m.shift_ci[1] * scale)}]{level}"
    return "–"


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _without_prefix(text: str, prefix: str) -> str:
    return text[len(prefix):].lstrip() if text.lower().startswith(prefix) else text


def _plain(value: object) -> str:
    return "–" if value is None else str(value)

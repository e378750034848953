"""PNG plots of a verdict and its two run records (matplotlib's Agg renderer; no pyplot, no GUI).

  latency_cdf      latency CDF of every OK call of every repetition, both sides (load/latencies.record_latency_runs)
  percentiles      p50 / p95 / p99 of each repetition, both sides, as strip plots
  runq_histogram   run-queue latency histogram, both sides (the records' RunqStats buckets)
  cpu_delta        change of CPU per request of each function that moved significantly (verdict.cpu risers
                   and fallers); none drawn when none did: bars of sampling noise would name functions
  trends           latency p95, CPU and allocations per request over the base branch's last baselines and the
                   candidate (verdict.trends)

A plot whose inputs are missing (no record folder, no CPU profile, no kernel data) is skipped with a
reason in `PlotFiles.skipped`; it never fails the report. Every plot has a fixed pixel size (PLOT_SIZE_PX).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perfgate.errors import PerfgateError
from perfgate.load.latencies import order_statistics, record_latency_runs
from perfgate.record import RunRecord, load_record
from perfgate.report.escape import plot_text
from perfgate.report.plot_keys import PLOT_SIZE_PX
from perfgate.verdict import RecordSummary, Verdict

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
# Fixed margins (left, bottom, right, top as figure fractions) instead of matplotlib's constrained layout,
# which measured a third of the drawing time (it lays every text out twice): room for the longest labels each
# plot can have (56-character function names at 7 pt, 45° bucket labels).
PLOT_MARGINS: dict[str, tuple[float, float, float, float]] = {
    "latency_cdf": (0.08, 0.12, 0.98, 0.92),
    "percentiles": (0.08, 0.1, 0.98, 0.85),
    "runq_histogram": (0.08, 0.22, 0.98, 0.92),
    "cpu_delta": (0.40, 0.09, 0.98, 0.94),
    "trends": (0.07, 0.2, 0.98, 0.86),
}
# Titles at a fixed height: matplotlib's automatic placement measures every tick label of the axes to lift the
# title over them (a third of a plot's drawing time), and no plot here has labels above its axes.
TITLE_Y = 1.0
SIDE_COLOURS = {"baseline": "#1f77b4", "candidate": "#ff7f0e"}
RISE_COLOUR, FALL_COLOUR = "#d62728", "#2ca02c"
# zlib level 1 instead of Pillow's 6: the same pixels, ~5 % more bytes, a fifth of the time saving a plot takes.
PNG_OPTIONS = {"compress_level": 1}
# Glyphs unhinted: FreeType's hinting of every label measured a quarter of a text-heavy plot's drawing time, and at
# these sizes the difference is a slightly softer edge.
RC = {"text.hinting": "no_hinting"}
MAX_CDF_POINTS = 2_000
MAX_BARS_PER_DIRECTION = 12
PERCENTILES = ("p50", "p95", "p99")


class PlotFiles(dict[str, Path]):
    """The PNGs written, by key (PLOT_SIZE_PX's keys); `skipped` maps each key not drawn to the reason."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[str, str] = {}


@dataclass(frozen=True)
class Side:
    role: str
    summary: RecordSummary
    record: RunRecord | None
    problem: str | None  # why the record folder could not be read


class Skip(Exception):
    """A plot cannot be drawn from what there is; the message says why."""


def write_plots(verdict: Verdict, out_dir: Path, records: Sequence[RunRecord] = ()) -> PlotFiles:
    """Draw every plot whose inputs exist into out_dir/<key>.png.

    `records`: run records the caller has loaded already (the gate's two sides); a verdict's side whose path is
    one of theirs is drawn from it instead of being read and validated a second time.
    """
    from matplotlib import rc_context  # here: the report's other parts (HTML, sizes, titles) need no matplotlib

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sides = load_sides(verdict, records)
    plots = PlotFiles()
    with rc_context(RC):
        for key, draw in PLOTTERS.items():
            _draw_one(key, draw, verdict, sides, out_dir, plots)
    return plots


def _draw_one(key: str, draw: Callable[[Figure, Verdict, Sequence[Side]], None], verdict: Verdict,
              sides: Sequence[Side], out_dir: Path, plots: PlotFiles) -> None:
    from matplotlib.figure import Figure

    width, height = PLOT_SIZE_PX[key]
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    left, bottom, right, top = PLOT_MARGINS[key]
    figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
    try:
        draw(figure, verdict, sides)
    except Skip as reason:
        plots.skipped[key] = str(reason)
        return
    except (PerfgateError, OSError, ValueError, KeyError, TypeError) as error:
        plots.skipped[key] = f"could not be drawn: {type(error).__name__}: {error}"
        return
    path = out_dir / f"{key}.png"
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs=PNG_OPTIONS)
    plots[key] = path


def load_sides(verdict: Verdict, records: Sequence[RunRecord] = ()) -> list[Side]:
    loaded = {str(record.path): record for record in records if record.path is not None}
    sides = []
    for summary in (verdict.baseline, verdict.candidate):
        if summary is None:
            continue
        if summary.path in loaded:
            sides.append(Side(summary.role, summary, loaded[summary.path], None))
            continue
        try:
            sides.append(Side(summary.role, summary, load_record(Path(summary.path)), None))
        except PerfgateError as error:
            sides.append(Side(summary.role, summary, None, error.message))
    return sides


def _missing_records(sides: Sequence[Side]) -> str:
    problems = [f"{s.role}: {s.problem}" for s in sides if s.problem]
    return "; ".join(problems) or "no run records"


def _colour(role: str) -> str:
    return SIDE_COLOURS.get(role, "#7f7f7f")


# ---------------------------------------------------------------- latency CDF
@dataclass(frozen=True)
class Cdf:
    """One side's latency CDF as drawn: at most MAX_CDF_POINTS points (ms), the call count, the p99.9."""

    role: str
    xs: np.ndarray
    ys: np.ndarray
    calls: int
    p999_ms: float


def side_cdf(role: str, record: RunRecord) -> Cdf | None:
    """The CDF of one record's OK calls. Its repetitions' sorted arrays are read without being merged and reduced
    to the CDF's points before the next side's are read: memory holds one side's latencies once (4 bytes a call)."""
    runs = record_latency_runs(record)
    calls = sum(run.size for run in runs)
    if not calls:
        return None
    xs, ys = ecdf_points(runs, calls)
    p999 = float(order_statistics(runs, _rank(calls, 0.999)))
    return Cdf(role, np.asarray(xs, dtype=np.float64) / 1e6, ys, calls, p999 / 1e6)


def ecdf_points(runs: Sequence[np.ndarray], n: int, max_points: int = MAX_CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)) of the empirical CDF of the n values of sorted runs; above max_points values, the values at evenly
    spaced levels (numpy's "inverted_cdf" quantiles, picked by rank)."""
    if n <= max_points:
        return np.sort(np.concatenate(runs)), np.arange(1, n + 1) / n
    levels = np.linspace(1 / n, 1.0, max_points)
    return order_statistics(runs, _rank(n, levels)), levels


def _rank(n: int, level):  # noqa: ANN001, ANN202 - a float or an array of them
    """The 0-based index of the inverted-CDF quantile at `level` among n sorted values."""
    return np.clip(np.ceil(np.asarray(level) * n - 1e-9).astype(np.int64) - 1, 0, n - 1)


def draw_latency_cdf(figure: Figure, verdict: Verdict, sides: Sequence[Side]) -> None:
    curves = [cdf for cdf in (side_cdf(s.role, s.record) for s in sides if s.record is not None) if cdf]
    if not curves:
        raise Skip(f"no per-call latencies to plot ({_missing_records(sides)})")
    ax = figure.add_subplot()
    for cdf in curves:
        ax.step(cdf.xs, cdf.ys, where="post", color=_colour(cdf.role), label=f"{cdf.role} ({cdf.calls:,} calls)")
    upper = max(cdf.p999_ms for cdf in curves)
    ax.set_xlim(0, upper * 1.05 if upper > 0 else 1)
    ax.set_ylim(0, 1.01)
    for level in (0.5, 0.95, 0.99):
        ax.axhline(level, color="#999999", linewidth=0.6, linestyle=":")
        ax.annotate(f"p{level * 100:g}", (0, level), xytext=(2, 2), textcoords="offset points", fontsize=7,
                    color="#555555")
    ax.set_xlabel("latency (ms), up to the 99.9th percentile")
    ax.set_ylabel("fraction of calls")
    ax.set_title("Latency CDF: OK calls of all repetitions", y=TITLE_Y)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------- per-repetition percentiles
def repetition_percentiles_ms(side: Side) -> dict[str, list[float]]:
    if side.record is None:
        return {"p95": [v for v in side.summary.p95_ms if v is not None and math.isfinite(v)]}
    values: dict[str, list[float]] = {p: [] for p in PERCENTILES}
    for repetition in side.record.ok_repetitions:
        for name in PERCENTILES:
            ns = repetition.load.percentile_ns(name) if repetition.load else None
            if ns is not None:
                values[name].append(ns / 1e6)
    return values


def spread(n: int, width: float = 0.3) -> np.ndarray:
    """Horizontal offsets for n points of a strip: evenly spread, deterministic."""
    return np.zeros(1) if n == 1 else np.linspace(-width / 2, width / 2, n)


def draw_percentiles(figure: Figure, verdict: Verdict, sides: Sequence[Side]) -> None:
    data = [(s.role, repetition_percentiles_ms(s)) for s in sides]
    panels = [p for p in PERCENTILES if any(values.get(p) for _, values in data)]
    if not panels:
        raise Skip("no per-repetition percentiles in the records or the verdict")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, name in zip(axes, panels, strict=True):
        _strip_panel(ax, name, data)
    axes[0].set_ylabel("latency (ms)")
    figure.suptitle("Latency percentiles of each repetition (line: median)")


def _strip_panel(ax: Axes, name: str, data: Sequence[tuple[str, dict[str, list[float]]]]) -> None:
    for position, (role, values) in enumerate(data):
        points = values.get(name) or []
        if not points:
            continue
        ax.scatter(position + spread(len(points)), points, s=20, color=_colour(role), zorder=3)
        ax.hlines(float(np.median(points)), position - 0.25, position + 0.25, color="black", linewidth=1.5)
    ax.set_xticks(range(len(data)), [role for role, _ in data])
    ax.set_xlim(-0.6, len(data) - 0.4)
    ax.set_title(name, y=TITLE_Y)
    ax.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------- run-queue latency histogram
def runq_buckets(record: RunRecord, scope: str) -> Counter[tuple[int | None, int | None]]:
    """Run-queue latency bucket counts of one scope, summed over the record's OK repetitions."""
    merged: Counter[tuple[int | None, int | None]] = Counter()
    for repetition in record.ok_repetitions:
        stats = repetition.runq.stats
        latency = stats.latency(scope) if stats is not None else None
        for bucket in latency.buckets if latency is not None else ():
            merged[(bucket.low_us, bucket.high_us)] += bucket.count
    return merged


def bucket_label(low: int | None, high: int | None) -> str:
    """'4–8' for bpftrace's inclusive bucket 4..7 (the real latencies are [4, 8) µs), '1k–2k' past 1024."""
    if low is None:
        return f"<{_short((high or 0) + 1)}"
    if high is None:
        return f"≥{_short(low)}"
    return _short(low) if low == high else f"{_short(low)}–{_short(high + 1)}"


def _short(value: int) -> str:
    for size, suffix in ((1 << 20, "M"), (1 << 10, "k")):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def draw_runq_histogram(figure: Figure, verdict: Verdict, sides: Sequence[Side]) -> None:
    readable = [s for s in sides if s.record is not None]
    scope = verdict.kernel.scope if verdict.kernel.scope in ("service", "machine") else "machine"
    counts = {s.role: runq_buckets(s.record, scope) for s in readable}  # type: ignore[arg-type]
    if scope != "machine" and not all(sum(c.values()) for c in counts.values()):
        scope = "machine"
        counts = {s.role: runq_buckets(s.record, scope) for s in readable}  # type: ignore[arg-type]
    counts = {role: c for role, c in counts.items() if sum(c.values())}
    if not counts:
        why = verdict.kernel.reason or (_missing_records(sides) if not readable else
                                        "the records hold no run-queue statistics")
        raise Skip(f"no run-queue data ({why})")
    keys = sorted(set().union(*counts.values()),
                  key=lambda k: (-1 if k[0] is None else k[0], math.inf if k[1] is None else k[1]))
    ax = figure.add_subplot()
    positions = np.arange(len(keys))
    width = 0.8 / len(counts)
    for i, (role, merged) in enumerate(counts.items()):
        total = sum(merged.values())
        fractions = [merged.get(k, 0) / total for k in keys]
        offset = (i - (len(counts) - 1) / 2) * width
        ax.bar(positions + offset, fractions, width, color=_colour(role),
               label=f"{role} ({total:,} wake-ups)")
    ax.set_xticks(positions, [bucket_label(*k) for k in keys], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("run-queue latency (µs)")
    ax.set_ylabel("fraction of wake-ups")
    ax.set_title(f"Run-queue latency ({scope}), all repetitions", y=TITLE_Y)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------- CPU function deltas
def draw_cpu_delta(figure: Figure, verdict: Verdict, sides: Sequence[Side]) -> None:
    cpu = verdict.cpu
    if not cpu.available:
        raise Skip(f"no CPU profiles ({cpu.reason or 'not captured'})")
    moves = [*cpu.risers[:MAX_BARS_PER_DIRECTION], *cpu.fallers[:MAX_BARS_PER_DIRECTION]]
    if not [m for m in moves if math.isfinite(m.change)]:
        raise Skip("no function's CPU cost moved")
    moves = [m for m in moves if math.isfinite(m.change) and m.significant]
    if not moves:
        raise Skip("no function's CPU cost moved significantly (the report's table lists the largest changes)")
    moves.sort(key=lambda m: m.change)
    ax = figure.add_subplot()
    positions = np.arange(len(moves))
    ax.barh(positions, [m.change for m in moves],
            color=[RISE_COLOUR if m.change > 0 else FALL_COLOUR for m in moves])
    ax.set_yticks(positions, [plot_text(f"{m.function} ({m.kind})", 56) for m in moves], fontsize=7)
    ax.axvline(0, color="black", linewidth=0.8)
    if cpu.unit == "%":
        ax.set_xlabel("change of CPU share (pp, candidate − baseline)")
        ax.set_title("Functions whose share of CPU moved most", y=TITLE_Y)
    else:
        ax.set_xlabel(f"change of CPU per request ({cpu.unit}, candidate − baseline)")
        ax.set_title("Functions whose CPU per request moved most", y=TITLE_Y)
    ax.grid(axis="x", alpha=0.3)


# ---------------------------------------------------------------- trends
def draw_trends(figure: Figure, verdict: Verdict, sides: Sequence[Side]) -> None:
    if not verdict.trends:
        raise Skip("no earlier baselines measured like this one (baseline.history, baseline.history_runs)")
    for index, trend in enumerate(verdict.trends, 1):
        ax = figure.add_subplot(1, len(verdict.trends), index)
        base = [(i, p) for i, p in enumerate(trend.points) if p.role != "candidate"]
        ax.plot([i for i, _ in base], [p.value for _, p in base], marker="o", color=SIDE_COLOURS["baseline"],
                label="baselines")
        for i, point in enumerate(trend.points):
            if point.role == "candidate":
                ax.plot([i], [point.value], marker="D", markersize=8, linestyle="none",
                        color=SIDE_COLOURS["candidate"], label="candidate")
        ax.set_xticks(range(len(trend.points)), [plot_text(p.label, 16) for p in trend.points], rotation=45,
                      ha="right", fontsize=7)
        ax.set_title(plot_text(f"{trend.metric} ({trend.unit})", 40), fontsize=9, y=TITLE_Y)
        ax.set_ylim(0, 1.1 * max(p.value for p in trend.points) or 1.0)
        ax.grid(axis="y", alpha=0.3)
    figure.axes[0].legend(fontsize=7, loc="lower left")


PLOTTERS: dict[str, Callable[[Figure, Verdict, Sequence[Side]], None]] = {
    "latency_cdf": draw_latency_cdf,
    "percentiles": draw_percentiles,
    "runq_histogram": draw_runq_histogram,
    "cpu_delta": draw_cpu_delta,
    "trends": draw_trends,
}

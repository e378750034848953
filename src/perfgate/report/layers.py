"""The report's "Below the CPU" section: allocations, lock and block contention and goroutines, each with
its figures (from the Metrics table) and the functions, call sites or goroutine start functions that moved.

Function names come from the service's profiles (hostile text): they stay raw in the blocks and each
renderer escapes them.
"""

from __future__ import annotations

from perfgate.compare.comparison import LAYER_METRIC_NAMES, WHAT, MetricComparison
from perfgate.report.blocks import (
    Block,
    Paragraph,
    Section,
    Table,
    format_change,
    format_ci,
    format_p,
    format_value,
    inline,
    limited,
    more_note,
    strong,
)
from perfgate.report.movers import MOVER_ALIGN, MOVER_HEADER, move_row, movers_note, smallest
from perfgate.verdict import Verdict

MOVED = {"allocs": "Functions that allocate more per request", "mutex": "Call sites that made others wait more",
         "block": "Call sites that waited more", "goroutines": "Goroutines gained per window, by start function"}
LESS = {"allocs": "Functions that allocate less per request", "mutex": "Call sites that made others wait less",
        "block": "Call sites that waited less", "goroutines": "Start functions that gained fewer goroutines"}


def layers_section(verdict: Verdict, limit: int | None, max_movers: int | None) -> Section | None:
    if not verdict.layers:
        return None
    cap = smallest(limit, max_movers)
    metrics = {m.name: m for m in verdict.metrics}
    blocks: list[Block] = []
    total = shown_total = widest = 0
    for view in verdict.layers:
        blocks.append(Paragraph(inline(strong(view.title, None))))
        if not view.available:
            blocks.append(Paragraph(inline(f"{view.title} not compared: ", view.reason or "not captured")))
            continue
        blocks += [Paragraph(_figures(metric)) for metric in _layer_metrics(view.layer, metrics)]
        for label, moves in ((MOVED[view.layer], view.risers), (LESS[view.layer], view.fallers)):
            if not moves:
                continue
            shown, count_total, count = limited(moves, cap)
            total, shown_total, widest = total + count_total, shown_total + count, max(widest, count)
            blocks.append(Paragraph(inline(label)))
            blocks.append(Table(MOVER_HEADER, tuple(move_row(m) for m in shown), MOVER_ALIGN))
            more = more_note(count, count_total, "functions")
            blocks += [more] if more else []
        if view.risers or view.fallers:
            blocks.append(Paragraph(inline(movers_note((*view.risers, *view.fallers), view.functions_tested,
                                                       WHAT[view.layer], own=view.functions_own,
                                                       alpha=view.alpha))))
    significant = [view for view in verdict.layers if view.significant_risers]
    return Section("layers", "Below the CPU: allocations, locks, goroutines", 58, tuple(blocks), collapsible=True,
                   open=bool(significant) and verdict.outcome != "PASS", rows_total=total, rows_shown=shown_total,
                   row_limit=widest)


def _layer_metrics(layer: str, metrics: dict[str, MetricComparison]) -> list[MetricComparison]:
    return [metrics[name] for name in LAYER_METRIC_NAMES.get(layer, ()) if name in metrics]


def _figures(c: MetricComparison):
    change = f"{format_change(c)} {format_ci(c, with_level=True)}"
    return inline(strong(c.name, None), f": {format_value(c.baseline_median, c.unit)} → "
                  f"{format_value(c.candidate_median, c.unit)}, {change}, p {format_p(c.p_value)}")


__all__ = ["layers_section"]

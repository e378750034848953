"""The report's "System calls and GC" section: the service's time in system calls per request with the calls
that moved (calls and time per request, p99 of each side's calls), and its garbage collections per 1,000
requests, each with its figures from the Metrics table, or why it is missing.

System call names come from perfgate's own tables; the section still builds blocks of raw text only (each
renderer escapes).
"""

from __future__ import annotations

from perfgate.compare.comparison import MetricComparison
from perfgate.compare.syscalls import MIN_SHARE_PCT, SyscallMove, SyscallView, top_moves
from perfgate.report.blocks import (
    Block,
    Paragraph,
    Section,
    Table,
    code,
    format_change,
    format_ci,
    format_p,
    format_value,
    inline,
    limited,
    more_note,
    strong,
)
from perfgate.report.movers import format_amount, smallest
from perfgate.verdict import Verdict

SYSCALL_METRICS = ("syscall_time_per_request",)
GC_METRICS = ("gc_cycles_per_1k_requests", "gc_pause_per_1k_requests")
HEADER = ("System call", "Calls per request", "Baseline", "Candidate", "Change", "p99 of a call", "p (adj.)")
ALIGN = ("l", "r", "r", "r", "r", "r", "r")
TEST = ("Welch's t on the square root of each repetition's time per request, Benjamini-Hochberg-adjusted over the "
        f"{{tested}} calls with at least {MIN_SHARE_PCT:g} % of their window's time in calls that do work")
SOURCES = {"gctrace": "the runtime's GODEBUG=gctrace=1 lines", "expvar": "expvar's /debug/vars memstats"}


def syscalls_section(verdict: Verdict, limit: int | None, max_movers: int | None) -> Section | None:
    if verdict.syscalls is None and verdict.gc is None:
        return None
    metrics = {m.name: m for m in verdict.metrics}
    blocks: list[Block] = []
    shown = total = 0
    if verdict.syscalls is not None:
        syscall_blocks, shown, total = _syscall_blocks(verdict.syscalls, metrics,
                                                       smallest(limit, max_movers))
        blocks += syscall_blocks
    if verdict.gc is not None:
        blocks += _gc_blocks(verdict, metrics)
    named = verdict.syscalls is not None and bool(verdict.syscalls.named)
    return Section("syscalls", "System calls and GC", 57, tuple(blocks), collapsible=True,
                   open=named and verdict.outcome != "PASS", rows_total=total, rows_shown=shown, row_limit=shown)


def _syscall_blocks(view: SyscallView, metrics: dict[str, MetricComparison],
                    cap: int | None) -> tuple[list[Block], int, int]:
    blocks: list[Block] = [Paragraph(inline(strong("System calls", None)))]
    if not view.available:
        return [*blocks, Paragraph(inline("System calls not compared: ", view.reason or "not captured"))], 0, 0
    blocks += [Paragraph(_figures(metrics[name])) for name in SYSCALL_METRICS if name in metrics]
    moves = top_moves(view)
    shown, total, count = limited(moves, cap)
    if shown:
        blocks.append(Table(HEADER, tuple(_row(m) for m in shown), ALIGN))
    more = more_note(count, total, "system calls")
    blocks += [more] if more else []
    named = view.named
    test = TEST.format(tested=view.tested)
    verdict_text = (f"Significant ({test}): {', '.join(m.name for m in named[:5])}." if named else
                    f"No call's time per request rose significantly ({test}).")
    waits = ""
    if view.baseline_wait_us is not None and view.candidate_wait_us is not None:
        waits = (f" Calls that wait for work (epoll_wait, futex, nanosleep, ...): "
                 f"{format_amount(view.baseline_wait_us, 'µs')} → {format_amount(view.candidate_wait_us, 'µs')} "
                 "per request, not tested (they last as long as the service is idle).")
    blocks.append(Paragraph(inline(verdict_text, waits)))
    return blocks, count, total


def _row(m: SyscallMove) -> tuple:
    p = "–" if m.p_value is None else format_p(m.p_value)
    if m.p_adjusted is not None:
        p += f" ({format_p(m.p_adjusted)})"
    relative = "" if m.rel_change is None else f" ({m.rel_change * 100:+.0f} %)"
    return (inline(code(f"{m.name}()")), inline(f"{m.baseline_calls:.3g} → {m.candidate_calls:.3g}"),
            inline(format_amount(m.baseline_us, "µs")), inline(format_amount(m.candidate_us, "µs")),
            inline(format_amount(m.change_us, "µs", signed=True) + relative),
            inline(f"{format_amount(m.baseline_p99_us, 'µs')} → {format_amount(m.candidate_p99_us, 'µs')}"),
            inline(p))


def _gc_blocks(verdict: Verdict, metrics: dict[str, MetricComparison]) -> list[Block]:
    gc = verdict.gc
    assert gc is not None
    blocks: list[Block] = [Paragraph(inline(strong("Garbage collection", None)))]
    if not gc.available:
        return [*blocks, Paragraph(inline("GC per request not compared: ", gc.reason or "not captured"))]
    blocks += [Paragraph(_figures(metrics[name])) for name in GC_METRICS if name in metrics]
    sources = {SOURCES.get(s or "", s or "?") for s in (gc.baseline_source, gc.candidate_source)}
    blocks.append(Paragraph(inline(f"From {' and '.join(sorted(sources))}; pause = the stop-the-world phases.")))
    return blocks


def _figures(c: MetricComparison):
    change = f"{format_change(c)} {format_ci(c, with_level=True)}"
    return inline(strong(c.name, None), f": {format_value(c.baseline_median, c.unit)} → "
                  f"{format_value(c.candidate_median, c.unit)}, {change}, p {format_p(c.p_value)}")


__all__ = ["syscalls_section"]

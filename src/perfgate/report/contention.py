"""The report's "Runner contention" section: what else used the machine in each side's load windows.

Process names come from the machine (any process may name itself anything): they stay raw text in the
blocks and each renderer escapes them, like every other external text.
"""

from __future__ import annotations

from perfgate.compare.contention import SideContention
from perfgate.report.blocks import (
    Alert,
    Block,
    Bullets,
    Paragraph,
    Section,
    Table,
    inline,
    limited,
    more_note,
)
from perfgate.verdict import Verdict

HEADER = ("", "Starved windows", "Steal", "Other processes", "Run-queue wait (mean)", "Throttled periods")


def contention_section(verdict: Verdict, limit: int | None, _movers: int | None) -> Section | None:
    view = verdict.contention
    if not view.available:
        return None
    sides = view.sides
    rows = tuple(_row(side) for side in sides)
    blocks: list[Block] = [Table(HEADER, rows, ("l", "r", "r", "r", "r", "r")),
                           Paragraph(inline("Medians over each side's load windows; steal and other processes "
                                            "in % of all CPUs' time.", _duet_note(view.shared_windows)))]
    starved = [(side.role, window) for side in sides for window in side.starved]
    if view.contended:
        blocks.insert(0, Alert("WARNING", inline(
            "The runner was contended: the service did not get all the CPU it needed in some load windows, so "
            "latency and throughput there say more about the runner than about the code.",
            f" The contention was one-sided: {view.one_sided}." if view.one_sided else "")))
        shown, total, count = limited(starved, limit)
        items = [inline(f"{role}, repetition {window.repetition}: {window.reason}") for role, window in shown]
        items += [inline(f"{side.role}: {side.runq_reason}") for side in sides if side.runq_reason]
        blocks.append(Bullets(tuple(items)))
        more = more_note(count, total, "starved windows")
        blocks += [more] if more else []
    else:
        shown, total, count = (), 0, 0
    return Section("contention", "Runner contention" + (" ⚠️" if view.contended else ""), 44, tuple(blocks),
                   collapsible=True, open=view.contended, droppable=not view.contended,
                   rows_total=total, rows_shown=count, row_limit=count)


def _row(side: SideContention) -> tuple:
    def pct(name: str, digits: int = 1) -> str:
        value = side.median(name)
        return "–" if value is None else f"{value:.{digits}f} %"

    others = side.median("others_pct")
    cpus = side.median("others_cpus")
    wait = side.median("wait_us")
    return (inline(side.role), inline(f"{len(side.starved)} of {len(side.windows)}"), inline(pct("steal_pct", 2)),
            inline("–" if others is None else f"{others:.0f} % ({cpus:.2f} CPUs)"),
            inline("–" if wait is None else f"{wait:.0f} µs"), inline(pct("throttled_pct", 0)))


def _duet_note(shared: bool) -> str:
    if shared:
        return " Both builds were loaded in the same windows (duet): contention of the machine met both alike."
    return ""

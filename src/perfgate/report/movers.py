"""The table of functions that moved, shared by the CPU section and the layers below it: each function's
cost per request on both sides (µs of CPU, bytes, µs of delay), its change, its share of the profile
beside, and its test. Amounts keep their unit: bytes are scaled to kB/MB, shares are in % and pp."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from perfgate.compare.comparison import MIN_SHARE_PCT, FunctionMove, own_weight_share
from perfgate.report.blocks import Inline, code, format_p, inline

if TYPE_CHECKING:
    from perfgate.verdict import CpuView

MOVER_HEADER = ("Function", "Kind", "Baseline", "Candidate", "Change", "Relative", "Share", "p (adj.)", "Status")
MOVER_ALIGN = ("l", "l", "r", "r", "r", "r", "r", "r", "l")
PER_REQUEST_TEST = "Welch's t on the square root of each repetition's cost per request"
COUNT_TEST = "a quasi-Poisson test of each function's samples per request, dispersion moderated across functions"
SHARE_TEST = "Welch's t on the repetitions' arcsine-square-root shares"
_BYTE_STEPS = ((2.0**30, "GB"), (2.0**20, "MB"), (2.0**10, "kB"))


def format_amount(value: float | None, unit: str, *, signed: bool = False) -> str:
    """12.3 µs, 64.0 kB, 3.2 objects, 20.50 % (signed: +12.3 µs, and pp for a change of a share)."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return ("+∞" if value > 0 else "−∞") if signed else "∞"
    sign = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
    size = abs(value)
    if unit == "%":
        return f"{sign}{size:.2f} {'pp' if signed else '%'}"
    if unit == "B":
        scaled, suffix = next(((size / step, name) for step, name in _BYTE_STEPS if size >= step), (size, "B"))
        return f"{sign}{scaled:.1f} {suffix}" if suffix != "B" else f"{sign}{size:.0f} B"
    text = f"{size:,.0f}" if size >= 10_000 else f"{size:.3g}"
    return f"{sign}{text} {unit}".rstrip()


def share_text(move: FunctionMove) -> str:
    if move.unit == "%" or move.baseline_share_pct is None or move.candidate_share_pct is None:
        return "–"
    return f"{move.baseline_share_pct:.1f} → {move.candidate_share_pct:.1f} %"


def move_cells(move: FunctionMove, format_p) -> tuple[str, ...]:
    """The row's cells as plain text (the renderer escapes them), in MOVER_HEADER order."""
    rel = move.rel_change
    relative = "–" if rel is None or not math.isfinite(rel) else f"{rel * 100:+.1f} %"
    p = "–" if move.p_value is None else format_p(move.p_value)
    if move.p_adjusted is not None:
        p += f" ({format_p(move.p_adjusted)})"
    return (move.function, move.kind, format_amount(move.baseline, move.unit),
            format_amount(move.candidate, move.unit), format_amount(move.change, move.unit, signed=True),
            relative, share_text(move), p, move.status)


def move_row(move: FunctionMove) -> tuple[Inline, ...]:
    """The row's cells as report blocks: the function name in code, the rest as text."""
    cells = move_cells(move, format_p)
    return (inline(code(cells[0])), *(inline(cell) for cell in cells[1:]))


def smallest(*limits: int | None) -> int | None:
    """The tightest of the row limits given (None: no limit)."""
    given = [x for x in limits if x is not None]
    return min(given) if given else None


def count_test_text(cpu: CpuView) -> str:
    """COUNT_TEST, and the capacity probes' profiles it counted beside the load windows' when it did."""
    if not cpu.probe_profiles:
        return COUNT_TEST
    return (f"{COUNT_TEST}, over the load windows' profiles and, as strata of their own, the {cpu.probe_profiles} "
            "capacity probes' profiles")


def movers_note(moves: tuple[FunctionMove, ...], tested: int, what: str, *, own: int = 0,
                alpha: float | None = None, per_request_test: str = PER_REQUEST_TEST, total_rose: bool = False) -> str:
    """Which of the listed changes are significant, and the test that says so (`own` of the `tested` functions
    are the service's; at `alpha` when given: a layer's share of the gate's alpha; per_request_test: the CPU's is
    COUNT_TEST). total_rose: the total these functions share out rose beyond its rule's threshold, so "none
    significant" cannot mean that nothing moved."""
    significant = [m.function for m in moves if m.significant]
    per_request = any(m.unit != "%" for m in moves)
    level = f", significant below {alpha:.3g} (alpha shared by the layers compared)" if alpha is not None else ""
    share = own_weight_share(own, tested)
    weighting = "" if share is None else (f"; the {own} that are the service's own code, not the standard "
                                          f"library's or a dependency's, hold {share * 100:.0f} % of its weight")
    family = (f"{per_request_test if per_request else SHARE_TEST}, {'' if share is None else 'weighted '}"
              f"Benjamini-Hochberg-adjusted over the {tested} functions with at least {MIN_SHARE_PCT:g} % of the "
              f"{what}{weighting}{level}")
    if not significant and total_rose:
        return (f"The total rose, but no single function's change is significant ({family}): a function is "
                "named only when its own change stands out from its sampling noise, which takes more profile "
                "samples than the total needs (docs/statistics.md, \"Naming a mover\"). The lists rank the "
                "estimated changes: a place to start looking, not a finding. More load time (load.repetitions) "
                "brings more samples.")
    if not significant:
        return (f"None of these changes is significant ({family}): no function moved beyond sampling noise; "
                "the lists show where the noise fell.")
    return f"Significant ({family}): {', '.join(significant[:5])}{' …' if len(significant) > 5 else ''}."


__all__ = ["COUNT_TEST", "MOVER_ALIGN", "MOVER_HEADER", "count_test_text", "format_amount", "move_cells", "move_row",
           "movers_note",
           "share_text", "smallest"]

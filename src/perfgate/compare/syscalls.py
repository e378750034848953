"""The service's system calls and garbage collections compared between the sides: which calls moved.

Each repetition's figures per system call (capture/syscalls.py) become per-request figures: calls per
request and time per request (exact totals over the window's OK calls). A call's time per request is
compared like a function's cost per request (compare/movers.py): Welch's t on the square roots of the
repetitions' figures, Benjamini-Hochberg over the calls that do work and hold at least MIN_SHARE_PCT of their
window's time in such calls, on average over both sides' windows (the filter, like the CPU movers', looks at the
pooled level, not at the difference). Calls that wait (capture/syscalls.WAITS) last
as long as the service is idle, so they are summed apart and never tested or named. The rule-facing figures
(time per request, p99 of a call, GC per 1,000 requests) are metrics of the registry (metrics.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perfgate.capture.syscalls import WAITS, SyscallLatency, SyscallStats, merged
from perfgate.metrics import missing_layer

if TYPE_CHECKING:
    from perfgate.compare.inputs import SideInputs

MIN_SHARE_PCT = 1.0  # of a window's time in calls that do work, averaged over both sides' windows, to be tested
MIN_REPETITIONS = 2
TOP_CALLS = 10
TOP_FALLERS = 3


@dataclass(frozen=True)
class SyscallMove:
    """One system call on both sides: medians over repetitions of its calls and time per request, the p99 of
    all its calls (every repetition's histogram added), and its test (p_value None: not tested)."""

    name: str
    baseline_calls: float
    candidate_calls: float
    baseline_us: float
    candidate_us: float
    change_us: float
    rel_change: float | None
    baseline_p99_us: float | None
    candidate_p99_us: float | None
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool = False


@dataclass(frozen=True)
class SyscallView:
    """The system calls compared: available (both sides have them) or why not; the calls that do work, the
    largest rise in time per request first; the waiting calls' time per request, summed, on each side."""

    available: bool
    reason: str | None = None
    moves: tuple[SyscallMove, ...] = ()
    tested: int = 0
    baseline_wait_us: float | None = None
    candidate_wait_us: float | None = None

    @property
    def named(self) -> tuple[SyscallMove, ...]:
        """The calls whose time per request rose significantly, largest rise first: what a report names."""
        return tuple(m for m in self.moves if m.significant and m.change_us > 0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SyscallView | None:
        if data is None:
            return None
        return cls(**{**data, "moves": tuple(SyscallMove(**move) for move in data.get("moves") or ())})


@dataclass(frozen=True)
class GcView:
    """Where each side's GC figures came from ("gctrace" or "expvar"), or why a side has none."""

    available: bool
    reason: str | None = None
    baseline_source: str | None = None
    candidate_source: str | None = None


@dataclass(frozen=True)
class _Side:
    windows: tuple[tuple[SyscallStats, int], ...]  # (the window's calls, its OK requests)

    @classmethod
    def of(cls, side: SideInputs) -> _Side:
        return cls(tuple((rep.syscalls.stats, rep.load.ok_count) for rep in side.record.ok_repetitions
                         if rep.syscalls is not None and rep.syscalls.status == "ok" and rep.syscalls.stats is not None
                         and rep.load is not None and rep.load.ok_count))

    def per_request(self, name: str, figure: str) -> tuple[float, ...]:
        """Per window: calls ("count") or µs ("total_ns") of `name` per OK request; 0 in a window without it."""
        scale = 1e3 if figure == "total_ns" else 1.0
        return tuple(sum(getattr(c, figure) for c in stats.calls if c.name == name) / requests / scale
                     for stats, requests in self.windows)

    def work_shares(self) -> list[dict[str, float]]:
        """Per window: each call's share of the window's time in calls that do work, in %."""
        return [{c.name: 100 * c.total_ns / stats.work_ns for c in stats.calls if not c.waits} if stats.work_ns else {}
                for stats, _ in self.windows]

    def wait_us(self) -> float:
        return statistics.median(sum(c.total_ns for c in stats.calls if c.waits) / requests / 1e3
                                 for stats, requests in self.windows)

    def all_calls(self, name: str) -> SyscallLatency:
        return merged((c for stats, _ in self.windows for c in stats.calls if c.name == name), name)

    def names(self) -> set[str]:
        return {c.name for stats, _ in self.windows for c in stats.calls}


def syscall_view(base: SideInputs, cand: SideInputs, *, alpha: float) -> SyscallView | None:
    """None when neither side tried to time system calls (nothing to show)."""
    from perfgate.compare.movers import rows_test  # scipy: only when comparing, not to read a verdict

    sides = _Side.of(base), _Side.of(cand)
    tried = [side for side in (base, cand) if any(rep.syscalls is not None and rep.syscalls.status != "disabled"
                                                   for rep in side.record.ok_repetitions)]
    if not tried:
        return None
    lacking = [side for side, figures in zip((base, cand), sides, strict=True)
               if len(figures.windows) < MIN_REPETITIONS]
    if lacking:
        return SyscallView(available=False, reason="; ".join(
            f"{side.record.role}: {missing_layer(side, 'syscalls')}" for side in lacking))
    names = sorted(n for n in sides[0].names() | sides[1].names() if n not in WAITS)
    rows = {name: (sides[0].per_request(name, "total_ns"), sides[1].per_request(name, "total_ns")) for name in names}
    shares = [share for figures in sides for share in figures.work_shares()]
    family = [n for n in names if statistics.fmean(window.get(n, 0.0) for window in shares) >= MIN_SHARE_PCT]
    tested = rows_test(family, [rows[n][0] for n in family], [rows[n][1] for n in family], "per_request")
    moves = [_move(name, rows[name], sides, tested.p_values.get(name), tested.p_adjusted.get(name), alpha)
             for name in names]
    moves.sort(key=lambda m: (-m.change_us, m.name))
    return SyscallView(available=True, moves=tuple(moves), tested=tested.tested,
                       baseline_wait_us=sides[0].wait_us(), candidate_wait_us=sides[1].wait_us())


def _move(name: str, times: tuple[Sequence[float], Sequence[float]], sides: tuple[_Side, _Side],
          p_value: float | None, p_adjusted: float | None, alpha: float) -> SyscallMove:
    b, c = statistics.median(times[0]), statistics.median(times[1])
    return SyscallMove(
        name=name, baseline_calls=statistics.median(sides[0].per_request(name, "count")),
        candidate_calls=statistics.median(sides[1].per_request(name, "count")), baseline_us=b, candidate_us=c,
        change_us=c - b, rel_change=c / b - 1 if b else None, baseline_p99_us=sides[0].all_calls(name).p99_us,
        candidate_p99_us=sides[1].all_calls(name).p99_us, p_value=p_value, p_adjusted=p_adjusted,
        significant=p_adjusted is not None and p_adjusted < alpha)


def top_moves(view: SyscallView, limit: int = TOP_CALLS) -> tuple[SyscallMove, ...]:
    """What a report lists: the calls whose time per request rose most (at most `limit`), then the few that
    fell most."""
    risers = [m for m in view.moves if m.change_us > 0][:limit]
    fallers = sorted((m for m in view.moves if m.change_us < 0), key=lambda m: m.change_us)[:TOP_FALLERS]
    return (*risers, *fallers)


def gc_view(base: SideInputs, cand: SideInputs) -> GcView | None:
    """None when neither side tried to read its GC figures."""
    captures = [[rep.gc for rep in side.record.ok_repetitions if rep.gc is not None] for side in (base, cand)]
    if not any(c.status != "disabled" for side in captures for c in side):
        return None
    sources = [next((c.source for c in side if c.status == "ok"), None) for side in captures]
    problems = [f"{side.record.role}: {missing_layer(side, 'gc')}"
                for side, source in zip((base, cand), sources, strict=True) if source is None]
    return GcView(available=not problems, reason="; ".join(problems) or None,
                  baseline_source=sources[0], candidate_source=sources[1])


def unavailable_notes(syscalls: SyscallView | None, gc: GcView | None) -> tuple[str, ...]:
    """The verdict's notes for a layer that was tried but cannot be compared."""
    notes = []
    if syscalls is not None and not syscalls.available:
        notes.append(f"system calls not compared: {syscalls.reason}")
    if gc is not None and not gc.available:
        notes.append(f"GC per request not compared: {gc.reason}")
    return tuple(notes)


__all__ = ["GcView", "SyscallMove", "SyscallView", "gc_view", "syscall_view", "top_moves", "unavailable_notes"]

"""Pure helpers for the gate on RunqStats: depth-rule evidence, p99 per repetition, runner contention."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from perfgate.capture.runq_stats import MACHINE, RunqStats

P99_FLOOR_US = 1.0  # the histograms' resolution; keeps the ratio finite when a baseline p99 is 0


@dataclass(frozen=True)
class DepthViolation:
    """Evidence that the run queue stayed deeper than max_depth for `consecutive` samples or more."""

    max_depth: int
    consecutive: int
    longest_run: int  # samples in the longest run above max_depth
    start_ms: int  # when that run began (bpftrace time, ms since it started)
    end_ms: int  # the run's last sample
    peak_depth: int  # the deepest sample in that run
    interval_ms: int

    @property
    def message(self) -> str:
        return (f"run-queue depth stayed above {self.max_depth} for {self.longest_run} consecutive samples "
                f"(rule: {self.consecutive}; one sample every {self.interval_ms} ms, "
                f"{self.start_ms / 1000:.1f}-{self.end_ms / 1000:.1f} s, "
                f"peak {self.peak_depth} runnable tasks on one CPU)")


def depth_violation(stats: RunqStats, max_depth: int, consecutive: int) -> DepthViolation | None:
    """The longest run of depth samples (deepest CPU's nr_running) above max_depth, if >= consecutive long."""
    if consecutive < 1:
        raise ValueError(f"consecutive must be >= 1, got {consecutive}")
    best: tuple[int, int] | None = None  # (start index, length)
    start = None
    for index, sample in enumerate((*stats.depth, None)):
        if sample is not None and sample.runnable_max > max_depth:
            start = index if start is None else start
            continue
        if start is not None and (best is None or index - start > best[1]):
            best = (start, index - start)
        start = None
    if best is None or best[1] < consecutive:
        return None
    run = stats.depth[best[0]:best[0] + best[1]]
    return DepthViolation(max_depth=max_depth, consecutive=consecutive, longest_run=best[1],
                          start_ms=run[0].t_ms, end_ms=run[-1].t_ms,
                          peak_depth=max(sample.runnable_max for sample in run),
                          interval_ms=stats.depth_interval_ms)


def runq_p99_per_repetition(stats: Sequence[RunqStats | None],
                            scope: str = MACHINE) -> tuple[float | None, ...]:
    """Each repetition's run-queue latency p99 in µs for scope "machine" or "service" (None where missing)."""
    return tuple(s.runq_p99_us(scope) if s is not None else None for s in stats)


@dataclass(frozen=True)
class ContentionSignal:
    contended: bool
    baseline_p99_us: float | None  # median over the baseline's repetitions (machine-wide)
    candidate_p99_us: float | None
    ratio: float | None  # candidate / baseline (baseline floored at 1 µs)
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"contended": self.contended, "baseline_p99_us": self.baseline_p99_us,
                "candidate_p99_us": self.candidate_p99_us, "ratio": self.ratio, "reason": self.reason}


def contention_signal(baseline: Sequence[RunqStats | None], candidate: Sequence[RunqStats | None], *,
                      max_ratio: float = 3.0, max_abs_p99_us: float | None = None) -> ContentionSignal:
    """Was the candidate's runner contended? Compares the median machine-wide run-queue p99 of both runs.

    Machine-wide, not the service's: other tenants' CPU hogs show up there first, and a slower service
    alone does not move the machine's p99 by a factor of 3.
    """
    base = _median_p99(baseline)
    cand = _median_p99(candidate)
    if cand is None:
        return ContentionSignal(False, base, None, None, "no run-queue data for the candidate")
    over_abs = max_abs_p99_us is not None and cand > max_abs_p99_us
    if base is None:
        reason = (f"the runner was contended (runq p99 {cand:.0f} µs > {max_abs_p99_us:g} µs)" if over_abs
                  else "no run-queue data for the baseline")
        return ContentionSignal(over_abs, None, cand, None, reason)
    ratio = cand / max(base, P99_FLOOR_US)
    contended = ratio > max_ratio or over_abs
    verdict = "the runner was contended" if contended else "the runner was not contended"
    limits = f"limit x{max_ratio:g}" + (f" or {max_abs_p99_us:g} µs" if max_abs_p99_us is not None else "")
    reason = f"{verdict} (runq p99 {cand:.0f} µs vs {base:.0f} µs, x{ratio:.1f}; {limits})"
    return ContentionSignal(contended, base, cand, ratio, reason)


def _median_p99(stats: Sequence[RunqStats | None]) -> float | None:
    values = [p99 for p99 in runq_p99_per_repetition(stats, MACHINE) if p99 is not None]
    return statistics.median(values) if values else None

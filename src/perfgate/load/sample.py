"""What a load window is asked to do (LoadWindow) and what it did (LoadSample), whichever generator ran it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SLACK_S = 30.0  # beyond a window's own length, what a generator may take to start and to write its report


@dataclass(frozen=True)
class LoadWindow:
    """How long one load window lasts (a duration, or a number of calls capped by max_run_s) and how hard it pushes."""

    duration_s: float | None
    total: int | None
    concurrency: int
    connections: int
    rps: int
    request_timeout_s: float
    max_run_s: float

    def timeout_s(self) -> float:
        if self.duration_s is not None:
            return self.duration_s + self.request_timeout_s + SLACK_S
        return self.max_run_s + SLACK_S


@dataclass(frozen=True)
class LoadSample:
    """One load window as the load generator reported it, parsed once. Durations are integer nanoseconds."""

    count: int
    ok_count: int
    rps: float
    total_ns: int
    average_ns: int
    fastest_ns: int
    slowest_ns: int
    p50_ns: int | None
    p90_ns: int | None
    p95_ns: int | None
    p99_ns: int | None
    status_counts: Mapping[str, int]
    error_counts: Mapping[str, int]
    end_reason: str

    @property
    def error_count(self) -> int:
        return self.count - self.ok_count

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 1.0

    def percentile_ns(self, name: str) -> int | None:
        return getattr(self, f"{name}_ns")

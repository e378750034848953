"""RunqStats: the kernel view of one load window, as the run record stores it per repetition.

Latency histograms are bpftrace's log2 buckets in µs; quantiles are estimated from them
(`quantile_from_buckets`, docs/statistics.md "Run-queue latency").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATUS_OK = "ok"
STATUS_PARTIAL = "partial"
MACHINE = "machine"
SERVICE = "service"
SCOPES = (MACHINE, SERVICE)
P99_FLOOR_US = 1.0  # the histograms' resolution; keeps a ratio of p99s finite when one is 0


@dataclass(frozen=True)
class LatencyBucket:
    """One histogram bucket with inclusive integer bounds in µs (bpftrace truncates ns/1000).

    low_us is None for an underflow bucket (lhist, or a negative hist value), high_us None for overflow.
    """

    low_us: int | None
    high_us: int | None
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"bucket count must be >= 0, got {self.count}")
        if self.low_us is not None and self.high_us is not None and self.high_us < self.low_us:
            raise ValueError(f"bucket bounds out of order: {self.low_us}..{self.high_us}")


@dataclass(frozen=True)
class RunqLatency:
    """Run-queue latency of one scope: bpftrace's log2 buckets and quantiles estimated from them."""

    buckets: tuple[LatencyBucket, ...] = ()

    @property
    def count(self) -> int:
        return sum(bucket.count for bucket in self.buckets)

    @property
    def p50_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.50)

    @property
    def p90_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.90)

    @property
    def p99_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.99)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": [{"low_us": b.low_us, "high_us": b.high_us, "count": b.count} for b in self.buckets],
            "count": self.count,
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunqLatency:
        # count and the quantiles are derived; they are written for readers of the JSON, not read back.
        return cls(tuple(LatencyBucket(b["low_us"], b["high_us"], int(b["count"])) for b in data["buckets"]))


def add_buckets(*histograms: Sequence[LatencyBucket]) -> tuple[LatencyBucket, ...]:
    """The histogram of the union of the samples: counts added bucket by bucket (same bpftrace bounds)."""
    counts: dict[tuple[int | None, int | None], int] = {}
    for histogram in histograms:
        for bucket in histogram:
            key = (bucket.low_us, bucket.high_us)
            counts[key] = counts.get(key, 0) + bucket.count
    return _trimmed(counts)


def subtract_buckets(later: Sequence[LatencyBucket], earlier: Sequence[LatencyBucket]) -> tuple[LatencyBucket, ...]:
    """What a cumulative histogram gained between two prints: `later` minus `earlier`, bucket by bucket.

    A bucket that shrank means the two prints are not of one cumulative histogram: ValueError.
    """
    counts = {(b.low_us, b.high_us): b.count for b in add_buckets(later)}
    for bucket in earlier:
        key = (bucket.low_us, bucket.high_us)
        left = counts.get(key, 0) - bucket.count
        if left < 0:
            raise ValueError(f"bucket {bucket.low_us}..{bucket.high_us} went down from {bucket.count} to "
                             f"{bucket.count + left} between two prints of a cumulative histogram")
        counts[key] = left
    return _trimmed(counts)


def _trimmed(counts: Mapping[tuple[int | None, int | None], int]) -> tuple[LatencyBucket, ...]:
    """Buckets in order from the first non-empty to the last non-empty, as bpftrace prints them."""
    ordered = sorted(counts.items(), key=lambda item: _bucket_order(*item[0]))
    nonzero = [i for i, (_, count) in enumerate(ordered) if count]
    if not nonzero:
        return ()
    return tuple(LatencyBucket(low, high, count) for (low, high), count in ordered[nonzero[0]:nonzero[-1] + 1])


def _bucket_order(low: int | None, high: int | None) -> tuple[float, float]:
    return (float("-inf") if low is None else low, float("inf") if high is None else high)


def quantile_from_buckets(buckets: Sequence[LatencyBucket], q: float) -> float | None:
    """Estimate the q-quantile in µs by log-linear interpolation inside the bucket that holds rank q*N.

    A bucket [lo, hi] holds the real latencies [lo, hi+1) µs (bpftrace truncates ns/1000). Inside it the
    estimate moves geometrically from lo to hi+1 as the rank moves through the bucket: log2 buckets are
    equal steps in log space, and run-queue latency is spread over decades with a density that falls
    inside each bucket, so log-uniform fits better than uniform (docs/statistics.md, "Run-queue latency").
    The [0, 0] bucket ([0, 1) µs) is interpolated linearly.
    """
    total = sum(bucket.count for bucket in buckets)
    if total == 0:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    rank = q * total
    below = 0
    for bucket in buckets:
        if bucket.count and below + bucket.count >= rank:
            return _interpolate(bucket, (rank - below) / bucket.count)
        below += bucket.count
    return _interpolate(next(b for b in reversed(buckets) if b.count), 1.0)


def _interpolate(bucket: LatencyBucket, fraction: float) -> float:
    if bucket.low_us is None:  # underflow: all we know is the upper bound
        return float(max(bucket.high_us or 0, 0))
    if bucket.high_us is None:  # overflow: all we know is the lower bound
        return float(bucket.low_us)
    low, high, fraction = max(bucket.low_us, 0), bucket.high_us + 1, min(max(fraction, 0.0), 1.0)
    if low == 0:
        return high * fraction
    return low * (high / low) ** fraction


@dataclass(frozen=True)
class DepthSample:
    """One run-queue depth sample: nr_running (queued + running tasks) read from every CPU's run queue."""

    t_ms: int  # since bpftrace started
    runnable_total: int  # summed over CPUs
    runnable_max: int  # the deepest CPU's


@dataclass(frozen=True)
class RunqStats:
    """The kernel view of one load window (one repetition)."""

    status: str  # STATUS_OK | STATUS_PARTIAL
    note: str  # "" when ok; what happened otherwise
    machine: RunqLatency
    service: RunqLatency | None  # None when no service filter (comm or pids) was given
    depth: tuple[DepthSample, ...]
    depth_interval_ms: int
    ncpus: int
    lost_events: int = 0
    window_ms: int | None = None  # bpftrace's running time: to its end, or to the last thing it printed
    service_comm: str | None = None
    service_pids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in (STATUS_OK, STATUS_PARTIAL):
            raise ValueError(f"RunqStats.status must be {STATUS_OK!r} or {STATUS_PARTIAL!r}, "
                             f"got {self.status!r}")

    def latency(self, scope: str) -> RunqLatency | None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        return self.machine if scope == MACHINE else self.service

    def runq_p99_us(self, scope: str = MACHINE) -> float | None:
        latency = self.latency(scope)
        return latency.p99_us if latency is not None else None

    @property
    def depth_max_series(self) -> tuple[int, ...]:
        return tuple(sample.runnable_max for sample in self.depth)

    @property
    def depth_total_series(self) -> tuple[int, ...]:
        return tuple(sample.runnable_total for sample in self.depth)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "machine": self.machine.to_dict(),
            "service": self.service.to_dict() if self.service is not None else None,
            "depth": {
                "interval_ms": self.depth_interval_ms,
                "ncpus": self.ncpus,
                "t_ms": [s.t_ms for s in self.depth],
                "runnable_total": [s.runnable_total for s in self.depth],
                "runnable_max": [s.runnable_max for s in self.depth],
            },
            "lost_events": self.lost_events,
            "window_ms": self.window_ms,
            "service_comm": self.service_comm,
            "service_pids": list(self.service_pids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunqStats:
        try:
            depth = data["depth"]
            columns = zip(depth["t_ms"], depth["runnable_total"], depth["runnable_max"], strict=True)
            return cls(
                status=data["status"],
                note=data["note"],
                machine=RunqLatency.from_dict(data["machine"]),
                service=RunqLatency.from_dict(data["service"]) if data["service"] is not None else None,
                depth=tuple(DepthSample(int(t), int(total), int(peak)) for t, total, peak in columns),
                depth_interval_ms=int(depth["interval_ms"]),
                ncpus=int(depth["ncpus"]),
                lost_events=int(data["lost_events"]),
                window_ms=data["window_ms"],
                service_comm=data["service_comm"],
                service_pids=tuple(int(pid) for pid in data["service_pids"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a RunqStats dict: {error!r}") from error


def longest_run_above(series: Iterable[float], threshold: float) -> int:
    """Length of the longest run of consecutive values strictly above threshold."""
    longest = current = 0
    for value in series:
        current = current + 1 if value > threshold else 0
        longest = max(longest, current)
    return longest


# ---------------------------------------------------------------- the runq.depth rule's evidence
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

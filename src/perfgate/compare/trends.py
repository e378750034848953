"""Headline metrics over the base branch's last baselines: each record's median of latency p95, CPU per request
and allocations per request, oldest first, then the candidate's. The history records are those the run-to-run
noise uses (baseline.history, baseline.history_runs), kept only when measured like the baseline (same target,
load settings and environment keys): a trend across other settings would show the settings, not the code.
"""

from __future__ import annotations

import statistics

from perfgate.compare.comparison import Trend, TrendPoint
from perfgate.compare.inputs import ComparisonInputs, SideInputs
from perfgate.compare.runs import history_mismatch
from perfgate.config import Config
from perfgate.metrics import GateRule, metric, metric_values

TREND_METRICS = ("latency.p95", "cpu_per_request", "alloc_bytes_per_request")
MIN_BASELINES = 2  # the gate's baseline and at least one earlier one: a line, not a point


def trends(inputs: ComparisonInputs, config: Config) -> tuple[Trend, ...]:
    """One Trend per metric with a median in at least MIN_BASELINES baselines; () without history."""
    base = inputs.baseline
    if base is None or not inputs.history:
        return ()
    history = sorted((side for side in inputs.history if history_mismatch(side, base, config) is None),
                     key=lambda side: side.record.created_at)
    sides = [*(("history", side) for side in history), ("baseline", base), ("candidate", inputs.candidate)]
    found = []
    for name in TREND_METRICS:
        points = tuple(point for role, side in sides if (point := _point(role, side, name)) is not None)
        if sum(point.role != "candidate" for point in points) >= MIN_BASELINES:
            found.append(Trend(metric=name, unit=metric(name).unit, points=points))
    return tuple(found)


def _point(role: str, side: SideInputs, name: str) -> TrendPoint | None:
    values = metric_values(side, GateRule(metric=name))
    if isinstance(values, str) or not values:
        return None
    record = side.record
    sha = record.environment.git_sha
    return TrendPoint(role=role, label=sha[:7] if sha else record.created_at[:16], created_at=record.created_at,
                      value=float(statistics.median(values)))

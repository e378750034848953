"""The report's plots by key, for the pages that place them: titles and pixel sizes (plain data, no numpy or
matplotlib; report/plots.py draws them)."""

from __future__ import annotations

PLOT_SIZE_PX: dict[str, tuple[int, int]] = {
    "latency_cdf": (800, 450),
    "percentiles": (800, 450),
    "runq_histogram": (800, 450),
    "cpu_delta": (800, 560),
    "trends": (900, 320),
}
PLOT_TITLES = {
    "latency_cdf": "Latency CDF",
    "percentiles": "Per-repetition percentiles",
    "runq_histogram": "Run-queue latency histogram",
    "cpu_delta": "CPU change by function",
    "trends": "Trends over the last baselines",
}

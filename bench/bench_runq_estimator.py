"""How well does a p99 estimated from bpftrace's log2 buckets match the true p99? (figures for the docs)

Simulated run-queue latencies (µs, truncated like bpftrace's ns/1000) are bucketed as hist() does; the
p99 is then estimated three ways: the bucket's upper edge, linear interpolation inside the bucket, and
log-linear interpolation (perfgate's quantile_from_buckets). Prints the Markdown table that
docs/statistics.md ("Run-queue latency") quotes.

    .venv/bin/python bench/bench_runq_estimator.py
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from perfgate.capture.runq_stats import LatencyBucket, quantile_from_buckets

EVENTS = 20_000  # about one repetition's worth of machine-wide events
RUNS = 200
Estimator = Callable[[tuple[LatencyBucket, ...], float], float | None]


def log2_buckets(values_us: np.ndarray) -> tuple[LatencyBucket, ...]:
    index = np.where(values_us < 1, 0, np.floor(np.log2(np.maximum(values_us, 1))).astype(int) + 1)
    counts = np.bincount(index)
    bounds = [(0, 0)] + [(2 ** (k - 1), 2**k - 1) for k in range(1, len(counts))]
    pairs = zip(bounds, counts, strict=True)
    return tuple(LatencyBucket(low, high, int(count)) for (low, high), count in pairs)


def holding(buckets: tuple[LatencyBucket, ...], q: float) -> tuple[LatencyBucket, float]:
    rank, below = q * sum(b.count for b in buckets), 0
    for bucket in buckets:
        if bucket.count and below + bucket.count >= rank:
            return bucket, (rank - below) / bucket.count
        below += bucket.count
    raise ValueError("empty histogram")


def upper_edge(buckets: tuple[LatencyBucket, ...], q: float) -> float:
    bucket, _ = holding(buckets, q)
    return float(bucket.high_us + 1)


def linear(buckets: tuple[LatencyBucket, ...], q: float) -> float:
    bucket, fraction = holding(buckets, q)
    return bucket.low_us + (bucket.high_us + 1 - bucket.low_us) * fraction


ESTIMATORS: dict[str, Estimator] = {"bucket upper edge": upper_edge, "linear": linear,
                                    "log-linear (perfgate)": quantile_from_buckets}
def lognormal(median_us: float, sigma: float) -> Callable[[np.random.Generator, float], np.ndarray]:
    return lambda rng, scale: rng.lognormal(math.log(median_us * scale), sigma, EVENTS)


def mixture(rng: np.random.Generator, scale: float) -> np.ndarray:
    fast = rng.lognormal(math.log(10 * scale), 0.8, EVENTS)
    slow = rng.lognormal(math.log(3000 * scale), 0.6, EVENTS)
    return np.where(rng.random(EVENTS) < 0.9, fast, slow)


SHAPES: dict[str, Callable[[np.random.Generator, float], np.ndarray]] = {
    "lognormal, median 15 µs, σ 1.2 (idle runner)": lognormal(15, 1.2),
    "lognormal, median 300 µs, σ 1.5 (busy runner)": lognormal(300, 1.5),
    "90 % ~10 µs + 10 % ~3 ms (CPU hogs beside the service)": mixture,
}


def main() -> None:
    rng = np.random.default_rng(20240601)
    print("| latencies | estimator | median abs. error of p99 | worst of 200 | a true +50 % reads as |")
    print("|---|---|---:|---:|---:|")
    for shape, draw in SHAPES.items():
        errors: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
        ratios: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
        for _ in range(RUNS):
            base, shifted = np.floor(draw(rng, 1.0)), np.floor(draw(rng, 1.5))
            base_buckets, shifted_buckets = log2_buckets(base), log2_buckets(shifted)
            true_p99 = float(np.quantile(base, 0.99))
            for name, estimate in ESTIMATORS.items():
                errors[name].append(abs(estimate(base_buckets, 0.99) / true_p99 - 1))
                ratios[name].append(estimate(shifted_buckets, 0.99) / estimate(base_buckets, 0.99))
        for name in ESTIMATORS:
            print(f"| {shape} | {name} | {np.median(errors[name]) * 100:.1f} % | "
                  f"{max(errors[name]) * 100:.0f} % | {(np.median(ratios[name]) - 1) * 100:+.0f} % |")


if __name__ == "__main__":
    main()

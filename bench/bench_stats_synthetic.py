"""Verdict quality of perfgate.compare.stats on synthetic repetitions (not a test: figures for the docs).

For several noise models, repetition counts and true worsenings it simulates baseline/candidate runs,
gates them with a 5 % fail threshold and counts outcomes; it also measures CI coverage, the typical MDE
and the cost of one compare_metric call.

    .venv/bin/python bench/bench_stats_synthetic.py            # print the Markdown section
    .venv/bin/python bench/bench_stats_synthetic.py --write    # also replace it in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from docs_section import replace_section

from perfgate.compare.classify import classify
from perfgate.compare.comparison import FAIL, INCONCLUSIVE, PASS
from perfgate.compare.stats import compare_metric

SECTION = "## Statistics on synthetic data (compare/stats.py)"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
THRESHOLD = 0.05
SIMULATIONS = 400
REPETITIONS = (5, 10, 20)
TRUE_WORSENING = (0.0, 0.025, 0.05, 0.10)

Noise = Callable[[np.random.Generator, int, float], np.ndarray]


def lognormal(cv: float) -> Noise:
    return lambda rng, n, median: rng.lognormal(math.log(median), cv, n)


def with_outliers(cv: float, share: float, jump: float) -> Noise:
    def draw(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
        values = rng.lognormal(math.log(median), cv, n)
        return np.where(rng.random(n) < share, values * (1 + jump), values)

    return draw


NOISE: dict[str, Noise] = {
    "lognormal, CV 2 %": lognormal(0.02),
    "lognormal, CV 4 %": lognormal(0.04),
    "lognormal, CV 8 %": lognormal(0.08),
    "CV 4 % + 10 % outliers at +30 %": with_outliers(0.04, 0.10, 0.30),
}


def simulate(noise: Noise, n: int, worsening: float, seed: int) -> tuple[Counter, float, list[float]]:
    rng = np.random.default_rng(seed)
    outcomes: Counter = Counter()
    covered = 0
    mdes = []
    for _ in range(SIMULATIONS):
        base, cand = noise(rng, n, 10.0), noise(rng, n, 10.0 * (1 + worsening))
        got = compare_metric("p95", base, cand, higher_is_worse=True, unit="ms")
        outcomes[classify(got, p_adjusted=got.p_value, max_worse_rel=THRESHOLD).outcome] += 1
        true_shift = 10.0 * worsening  # medians of the two noise distributions differ by this
        covered += got.shift_ci[0] <= true_shift <= got.shift_ci[1]
        mdes.append(got.mde_rel)
    return outcomes, covered / SIMULATIONS, mdes


def outcome_table() -> list[str]:
    header = "| noise | reps/side | median MDE | " + " | ".join(
        f"true {w:+.1%}: FAIL / INCONCL. / PASS" for w in TRUE_WORSENING
    ) + " | CI coverage (alpha in each tail, >= 90 %) |"
    lines = [header, "|" + "---|" * (4 + len(TRUE_WORSENING))]
    for k, (noise_name, noise) in enumerate(NOISE.items()):
        for n in REPETITIONS:
            cells, coverages, all_mdes = [], [], []
            for i, worsening in enumerate(TRUE_WORSENING):
                outcomes, coverage, mdes = simulate(noise, n, worsening, seed=10_000 * k + 100 * n + i)
                shares = (f"{outcomes[o] / SIMULATIONS:.0%}" for o in (FAIL, INCONCLUSIVE, PASS))
                cells.append(" / ".join(shares))
                coverages.append(coverage)
                all_mdes += mdes
            mde = f"{np.median(all_mdes):.1%}"
            coverage = f"{min(coverages):.0%}-{max(coverages):.0%}"
            lines.append(f"| {noise_name} | {n} | {mde} | " + " | ".join(cells) + f" | {coverage} |")
    return lines


def cost_lines() -> list[str]:
    rng = np.random.default_rng(0)
    lines = []
    for n in (10, 20, 50):
        samples = [(rng.normal(10, 0.4, n), rng.normal(10.2, 0.4, n)) for _ in range(50)]
        compare_metric("warm", *samples[0], higher_is_worse=True, unit="ms")  # fills the MDE cache
        start = time.perf_counter()
        for base, cand in samples:
            compare_metric("p95", base, cand, higher_is_worse=True, unit="ms")
        per_call_ms = (time.perf_counter() - start) / len(samples) * 1000
        lines.append(f"- {n} vs {n} repetitions: {per_call_ms:.1f} ms per compare_metric call")
    return lines


def section() -> str:
    started = time.perf_counter()
    table = outcome_table()
    costs = cost_lines()
    elapsed = time.perf_counter() - started
    return "\n".join(
        [
            SECTION,
            "",
            f"`bench/bench_stats_synthetic.py`: {SIMULATIONS} simulated PRs per cell, latency-like values",
            f"around 10 ms, one metric, fail threshold {THRESHOLD:.0%} (`max_worse_rel`), alpha 0.05.",
            "FAIL at true +0 % is the false-alarm rate; PASS at true +10 % is a missed regression. Coverage",
            "is the share of runs whose two-sided shift CI (alpha 0.05 in each tail, achieved level >= 90 %)",
            "contained the difference of the population medians (lowest-highest over the columns).",
            "",
            *table,
            "",
            "Cost (one process, after the per-(n1, n2) MDE simulation is cached):",
            "",
            *costs,
            "",
            f"Whole benchmark: {elapsed:.0f} s.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the section in {DOC}")
    args = parser.parse_args()
    text = section()
    print(text)
    if args.write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    main()

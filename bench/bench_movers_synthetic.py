"""How often a CPU mover is named, on simulated profile samples (not a test: figures for docs/statistics.md).

A family of 150 functions (the example service's gates test 150-170), 12 repetitions a side of unequal
exposure (±20 %), Poisson sampling. One function holding 8 % of the samples takes +5 % of the CPU; the table
counts the gates that name it (Benjamini-Hochberg adjusted p < 0.05) with compare/movers.py's count test,
with Welch's t on the same repetitions, and with one uncorrected test of that function alone (what no
correction can beat). A/A gates count any name at all.

    .venv/bin/python bench/bench_movers_synthetic.py            # print the Markdown section
    .venv/bin/python bench/bench_movers_synthetic.py --write    # also replace it in docs/benchmarks.md
"""

from __future__ import annotations

import argparse

import numpy as np
from docs_section import replace_section
from scipy import stats

from perfgate.compare.movers import SampledRows, count_test, rows_test

SECTION = "## Naming a CPU mover on simulated samples (compare/movers.py)"
GATES = 200
REPETITIONS = 12
SAMPLES = (1000, 2000, 3000, 6000)
KNOB, RISE_PCT = 3, 5.0
WELCH = "Welch's t"


def family_shares(seed: int = 5) -> np.ndarray:
    """Cum-like shares in % of the samples (a sample counts for every function on its stack: 300 % in all)."""
    rng = np.random.default_rng(seed)
    shares = np.array([16.0, 12.0, 10.0, 9.0, 6.0, *rng.uniform(1.0, 3.0, 145)])
    return shares / shares.sum() * 300


def side(rng: np.random.Generator, shares: np.ndarray, samples: int) -> SampledRows:
    exposure = rng.uniform(0.8, 1.2, REPETITIONS)
    mean = np.outer(shares / 100 * samples / REPETITIONS, exposure)
    return SampledRows(rng.poisson(mean).astype(float), exposure)


def named(samples: int, rise_pct: float) -> dict[str, int]:
    """Gates out of GATES naming the knob (or, at rise 0, any function) per method."""
    shares = family_shares()
    grown = shares.copy()
    grown[KNOB] += rise_pct
    names = [f"f{i}" for i in range(len(shares))]
    rng = np.random.default_rng(samples + int(rise_pct))
    found = {"count test": 0, WELCH: 0, "one test alone": 0}
    for _ in range(GATES):
        base, cand = side(rng, shares, samples), side(rng, grown, samples)
        rates = [np.asarray(s.counts) / np.asarray(s.exposure) for s in (base, cand)]
        for method, result in (("count test", count_test(names, base, cand)),
                               (WELCH, rows_test(names, rates[0], rates[1], "per_request"))):
            adjusted = result.p_adjusted
            found[method] += (adjusted[names[KNOB]] < 0.05 if rise_pct else min(adjusted.values()) < 0.05)
        found["one test alone"] += rise_pct > 0 and _alone(base, cand) < 0.05
    return found


def _alone(base: SampledRows, cand: SampledRows) -> float:
    """The knob's conditional binomial test, exact, Poisson assumed known."""
    k_base, k_cand = (int(np.asarray(s.counts)[KNOB].sum()) for s in (base, cand))
    p0 = np.sum(cand.exposure) / (np.sum(base.exposure) + np.sum(cand.exposure))
    return stats.binomtest(k_cand, k_base + k_cand, p0).pvalue


def section() -> str:
    lines = [SECTION, "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| samples a side | count test | Welch's t | one test alone | A/A, any name: count test "
             "| A/A: Welch's t |",
             "|---|---|---|---|---|---|"]
    for samples in SAMPLES:
        found, null = named(samples, RISE_PCT), named(samples, 0.0)
        lines.append(f"| {samples:,} | {_share(found['count test'])} | {_share(found[WELCH])} "
                     f"| {_share(found['one test alone'])} | {_share(null['count test'])} | {_share(null[WELCH])} |")
    return "\n".join([*lines, ""])


def _share(count: int) -> str:
    return f"{count}/{GATES} ({100 * count / GATES:.0f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    text = section()
    print(text)
    if parser.parse_args().write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    main()

"""compare/movers.py: a CPU mover is named only when its share changed beyond sampling noise, corrected
over the functions tested. Profiles simulated as multinomial samples of a fixed set of function shares."""

from __future__ import annotations

import numpy as np

from perfgate.compare.movers import MIN_SHARE_PCT, mover_test
from perfgate.compare.profile import FunctionShareDiff

SHARES = np.array([16.0, 12.0, 10.0, 8.0, 6.0, *[2.0] * 15, *[0.3] * 36])  # % of the CPU; 56 functions


def profile_shares(rng: np.random.Generator, shares: np.ndarray, samples: int, reps: int) -> np.ndarray:
    """functions x repetitions, in % of each profile's samples (flat-like: the shares add up to 100)."""
    counts = rng.multinomial(samples, shares / shares.sum(), size=reps).T
    return 100.0 * counts / samples


def diffs(base: np.ndarray, cand: np.ndarray) -> list[FunctionShareDiff]:
    out = []
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        bm, cm = float(np.median(b)), float(np.median(c))
        out.append(FunctionShareDiff(
            function=f"f{i}", status="changed", baseline_flat_shares_pct=tuple(b), candidate_flat_shares_pct=tuple(c),
            baseline_cum_shares_pct=tuple(b), candidate_cum_shares_pct=tuple(c), baseline_flat_share_pct=bm,
            candidate_flat_share_pct=cm, baseline_cum_share_pct=bm, candidate_cum_share_pct=cm,
            flat_change_pp=cm - bm, cum_change_pp=cm - bm, flat_rel_change=None, cum_rel_change=None,
            flat_p_value=None, cum_p_value=None))
    return out


def test_a_b_of_the_same_code_names_no_mover_in_more_than_about_alpha_of_runs():
    rng = np.random.default_rng(1)
    named = 0
    for _ in range(200):
        base, cand = profile_shares(rng, SHARES, 150, 10), profile_shares(rng, SHARES, 150, 10)
        result = mover_test(diffs(base, cand))
        assert 20 <= result.tested <= 21  # the 36 functions well under MIN_SHARE_PCT are (almost) never tested
        named += any(p < 0.05 for p in result.p_adjusted.values())
    assert named <= 18  # alpha 0.05 of 200 is 10; binomial sd ~3


def test_a_function_that_took_5_percent_more_of_the_cpu_is_named_with_enough_samples():
    """6,000 samples a side (10 profiles of 600, i.e. 60 CPU-seconds at Go's 100 Hz) name it 95 % of the time
    even alone; 1,000 (what a lightly loaded service gives in a short gate) about 15 %."""
    rng = np.random.default_rng(2)
    slower = SHARES.copy()
    slower[0] += 5.0 * SHARES.sum() / 100  # +5 % of the CPU, all in f0
    found = 0
    for _ in range(50):
        base, cand = profile_shares(rng, SHARES, 600, 10), profile_shares(rng, slower, 600, 10)
        result = mover_test(diffs(base, cand))
        found += result.p_adjusted["f0"] < 0.05
    assert found >= 45


def test_functions_below_the_share_floor_are_not_tested():
    rng = np.random.default_rng(3)
    base, cand = profile_shares(rng, SHARES, 150, 6), profile_shares(rng, SHARES, 150, 6)
    result = mover_test(diffs(base, cand))
    assert {f"f{i}" for i in range(20)} <= set(result.p_values) and len(result.p_values) <= 21
    assert all(s >= MIN_SHARE_PCT for s in SHARES[:20])

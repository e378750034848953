"""compare/movers.py: a CPU mover is named only when its share changed beyond sampling noise, corrected
over the functions tested. Profiles simulated as multinomial samples of a fixed set of function shares."""

from __future__ import annotations

import numpy as np
import pytest

from perfgate.compare.movers import (
    MIN_SHARE_PCT,
    SampledRows,
    count_test,
    family_weights,
    mover_family,
    mover_test,
    rows_test,
)
from perfgate.compare.profile import FunctionDiff

SHARES = np.array([16.0, 12.0, 10.0, 8.0, 6.0, *[2.0] * 15, *[0.3] * 36])  # % of the CPU; 56 functions


def profile_shares(rng: np.random.Generator, shares: np.ndarray, samples: int, reps: int) -> np.ndarray:
    """functions x repetitions, in % of each profile's samples (flat-like: the shares add up to 100)."""
    counts = rng.multinomial(samples, shares / shares.sum(), size=reps).T
    return 100.0 * counts / samples


def diffs(base: np.ndarray, cand: np.ndarray) -> list[FunctionDiff]:
    out = []
    for i, (b, c) in enumerate(zip(base, cand, strict=True)):
        bm, cm = float(np.median(b)), float(np.median(c))
        out.append(FunctionDiff(
            function=f"f{i}", status="changed", baseline_flat=tuple(b), candidate_flat=tuple(c),
            baseline_cum=tuple(b), candidate_cum=tuple(c), baseline_flat_median=bm,
            candidate_flat_median=cm, baseline_cum_median=bm, candidate_cum_median=cm,
            flat_change=cm - bm, cum_change=cm - bm, flat_rel_change=None, cum_rel_change=None,
            flat_p_value=None, cum_p_value=None))
    return out


def per_request(shares: np.ndarray, cpu_us: np.ndarray) -> np.ndarray:
    """Shares (functions x repetitions, in %) as µs per request, given each repetition's CPU per request."""
    return shares / 100 * cpu_us


def test_a_b_of_the_same_code_names_no_mover_in_more_than_about_alpha_of_runs():
    rng = np.random.default_rng(1)
    named = 0
    for _ in range(100):
        base, cand = profile_shares(rng, SHARES, 150, 10), profile_shares(rng, SHARES, 150, 10)
        result = mover_test(diffs(base, cand))
        assert 20 <= result.tested <= 21  # the 36 functions well under MIN_SHARE_PCT are (almost) never tested
        named += any(p < 0.05 for p in result.p_adjusted.values())
    assert named <= 12  # alpha 0.05 of 100 is 5; binomial sd ~2.2


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


def test_per_request_names_only_the_function_that_grew():
    """f0 does 50 % more work per request. In shares every other function falls (their work did not change);
    per request, tested on the square root with the family taken from the shares, only f0 is named, and A/A
    names nothing beyond alpha. CPU per request is measured per repetition with 3 % run-to-run noise."""
    rng = np.random.default_rng(4)
    grown = SHARES.copy()
    grown[0] *= 1.5
    work_us = SHARES.sum()  # µs of CPU per request before; after: grown.sum()
    wrongly_named = {"share": 0, "per_request": 0}
    found = aa_named = 0
    for _ in range(100):
        cpu = {side: total * rng.normal(1.0, 0.03, size=10) for side, total in (("b", work_us), ("c", grown.sum()))}
        base, cand = profile_shares(rng, SHARES, 3000, 10), profile_shares(rng, grown, 3000, 10)
        family = mover_family(diffs(base, cand))
        shares = mover_test(diffs(base, cand))
        costs = mover_test(diffs(per_request(base, cpu["b"]), per_request(cand, cpu["c"])), family=family,
                           transform="per_request")
        found += costs.p_adjusted["f0"] < 0.05
        for view, result in (("share", shares), ("per_request", costs)):
            wrongly_named[view] += any(p < 0.05 for name, p in result.p_adjusted.items() if name != "f0")
        again = per_request(profile_shares(rng, SHARES, 3000, 10), cpu["b"][::-1])
        aa = mover_test(diffs(per_request(base, cpu["b"]), again), family=family, transform="per_request")
        aa_named += any(p < 0.05 for p in aa.p_adjusted.values())
    assert found >= 95
    assert wrongly_named["share"] >= 90  # shares name the unchanged functions that merely lost share
    # Benjamini-Hochberg bounds the share of false names among the names (~5 %), not the chance of any:
    # measured 12 of 100 gates name one unchanged function beside f0 (seed 4), and 6 of 100 A/A gates any.
    assert wrongly_named["per_request"] <= 20 and aa_named <= 12


# ---------------------------------------------------------------- the count test of CPU profiles
COUNT_SHARES = np.array([16.0, 12.0, 10.0, 9.0, 6.0, *[2.0] * 15, *[1.2] * 20])  # % of the CPU; 40 functions
NAMES = [f"f{i}" for i in range(len(COUNT_SHARES))]


def sampled(rng: np.random.Generator, shares: np.ndarray, samples: int, reps: int,
            dispersion: np.ndarray | float = 1.0) -> SampledRows:
    """One side's samples: `samples` over `reps` repetitions of unequal exposure (±20 %), Poisson, or gamma-Poisson
    with variance `dispersion` x mean for the rows whose dispersion is above 1."""
    exposure = rng.uniform(0.8, 1.2, reps)
    mean = np.outer(shares / 100 * samples / reps, exposure)
    phi = np.broadcast_to(np.asarray(dispersion, dtype=float), shares.shape)[:, None] * np.ones_like(mean)
    bursty = phi > 1
    counts = rng.poisson(mean).astype(float)
    counts[bursty] = rng.negative_binomial(mean[bursty] / (phi[bursty] - 1), 1 / phi[bursty])
    return SampledRows(counts, exposure)


def count_named(rng: np.random.Generator, gates: int, reps: int, dispersion: np.ndarray | float = 1.0,
                own: frozenset[str] = frozenset()) -> int:
    named = 0
    for _ in range(gates):
        base, cand = (sampled(rng, COUNT_SHARES, 100 * reps, reps, dispersion) for _ in range(2))
        named += any(p < 0.05 for p in count_test(NAMES, base, cand, own=own).p_adjusted.values())
    return named


def test_count_test_names_no_mover_in_more_than_about_alpha_of_a_a_runs():
    """Poisson sampling, and sampling twice as noisy for every function (the dispersion is estimated, not assumed)."""
    rng = np.random.default_rng(11)
    assert count_named(rng, 300, 12) <= 25  # 5 % of 300 is 15, binomial sd ~3.8; measured 7
    assert count_named(rng, 300, 12, dispersion=2.0) <= 25  # measured 6


def test_a_few_bursty_functions_keep_their_own_noise():
    """Three functions of forty six times noisier than Poisson (GC-like bursts), three repetitions a side: shrunk
    toward the others' dispersion they were named in 56 of 300 A/A gates; keeping at least their own, in 10."""
    dispersion = np.ones_like(COUNT_SHARES)
    dispersion[[1, 6, 9]] = 6.0
    assert count_named(np.random.default_rng(12), 300, 3, dispersion) <= 24


def test_the_count_test_names_a_5_percent_rise_more_often_than_welchs_t():
    """1,200 samples a side over 12 repetitions, +5 % of the CPU in a function holding 9 %: 130 of 200 named by the
    count test, 105 of 200 by Welch's t on the same figures per exposure (seed 13)."""
    rng = np.random.default_rng(13)
    grown = COUNT_SHARES.copy()
    grown[3] += 5.0 * COUNT_SHARES.sum() / 100
    by_count = by_welch = 0
    for _ in range(200):
        base, cand = sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, grown, 1200, 12)
        by_count += count_test(NAMES, base, cand).p_adjusted["f3"] < 0.05
        rates = [np.asarray(side.counts) / np.asarray(side.exposure) for side in (base, cand)]
        by_welch += rows_test(NAMES, rates[0], rates[1], "per_request").p_adjusted["f3"] < 0.05
    assert by_count >= 115 and by_count >= by_welch + 12


def test_pooled_dispersions_make_the_count_test_independent_of_the_counts_unit():
    rng = np.random.default_rng(14)
    base, cand = sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, COUNT_SHARES, 1200, 12)
    in_ns = [SampledRows(np.asarray(s.counts) * 1e7, np.asarray(s.exposure) * 1e7) for s in (base, cand)]
    assert count_test(NAMES, base, cand).p_values == pytest.approx(count_test(NAMES, *in_ns).p_values)


def test_a_function_without_samples_on_either_side_is_not_a_mover():
    base = SampledRows([[5.0, 7.0, 6.0], [0.0, 0.0, 0.0], [3.0, 4.0, 2.0], [9.0, 8.0, 10.0]], [1.0, 1.0, 1.0])
    cand = SampledRows([[6.0, 5.0, 7.0], [0.0, 0.0, 0.0], [2.0, 3.0, 4.0], [8.0, 11.0, 9.0]], [1.0, 1.0, 1.0])
    result = count_test(["a", "b", "c", "d"], base, cand)
    assert result.p_values["b"] == 1.0 and result.tested == 4
    assert count_test([], base, cand).tested == 0


def test_with_too_few_functions_to_pool_each_keeps_its_own_dispersion_at_least_poissons():
    """Two functions: no common dispersion to speak of. The one whose counts went from 5 to 50 a repetition is a
    change even though its repetitions agree exactly (a dispersion of 0 is taken as Poisson's 1)."""
    base = SampledRows([[5.0, 5.0, 5.0], [20.0, 22.0, 18.0]], [1.0, 1.0, 1.0])
    cand = SampledRows([[50.0, 50.0, 50.0], [21.0, 19.0, 20.0]], [1.0, 1.0, 1.0])
    result = count_test(["grew", "same"], base, cand)
    assert result.p_adjusted["grew"] < 0.001 and result.p_adjusted["same"] > 0.5


def test_one_repetition_a_side_names_nothing():
    result = count_test(["a", "b"], SampledRows([[5.0], [9.0]], [1.0]), SampledRows([[50.0], [9.0]], [1.0]))
    assert result.p_values == {"a": 1.0, "b": 1.0} and result.tested == 2


# ---------------------------------------------------------------- the service's own functions weigh more
OWN = frozenset({"f3", "f8", "f25"})  # 3 of the 40 functions are the service's own code


def test_the_weights_average_one_and_give_the_services_own_code_at_least_half():
    weights = family_weights(NAMES, OWN)
    assert sum(weights) / len(NAMES) == pytest.approx(1.0)
    assert weights[3] == weights[8] == pytest.approx(0.5 * 40 / 3) and weights[0] == pytest.approx(0.5 * 40 / 37)
    assert family_weights(NAMES, frozenset()) == family_weights(NAMES, frozenset(NAMES)) == [1.0] * 40
    assert family_weights(NAMES, frozenset(NAMES[:30])) == pytest.approx([1.0] * 40)  # own code never below 1


def test_with_the_weights_a_a_runs_still_name_a_mover_in_about_alpha_of_them():
    assert count_named(np.random.default_rng(15), 300, 12, own=OWN) <= 25  # 5 % of 300 is 15; measured 5


def grown_named(rng: np.random.Generator, grown_row: int, own: frozenset[str], gates: int = 200) -> int:
    """Gates in which +4 % of the CPU in row `grown_row` (holding 9 % or 10 %) is named, 1,200 samples a side."""
    grown = COUNT_SHARES.copy()
    grown[grown_row] += 4.0 * COUNT_SHARES.sum() / 100
    name = NAMES[grown_row]
    return sum(count_test(NAMES, sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, grown, 1200, 12),
                          own=own).p_adjusted[name] < 0.05 for _ in range(gates))


def test_a_rise_in_the_services_own_function_is_named_more_often_and_a_librarys_a_little_less():
    """Seed 16, 200 gates each: the service's function named in 79 unweighted, 130 weighted; a library function
    of about the same size in 76 unweighted, 66 weighted."""
    own_plain, own_weighted = (grown_named(np.random.default_rng(16), 3, own) for own in (frozenset(), OWN))
    lib_plain, lib_weighted = (grown_named(np.random.default_rng(16), 2, own) for own in (frozenset(), OWN))
    assert own_weighted >= own_plain + 30
    assert lib_plain - 25 <= lib_weighted <= lib_plain


def test_a_side_without_spread_is_tested_by_the_other_sides_spread_without_a_warning():
    """Goroutines gained per window are often the same whole number in every window of one side."""
    import warnings

    from scipy import stats

    base, cand = [[2.0] * 8], [[2.0, 3.0, 2.0, 4.0, 3.0, 2.0, 3.0, 5.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rows_test(["start"], base, cand, "linear")
    sd = np.std(cand[0], ddof=1)
    t = (np.mean(cand[0]) - 2.0) / (sd / np.sqrt(8))
    assert result.p_values["start"] == pytest.approx(2 * stats.t.sf(t, 7))


# ---------------------------------------------------------------- strata: the capacity probes' profiles
def probe_stratum(rng: np.random.Generator, shares: np.ndarray, samples: int, profiles: int,
                  per_exposure: float) -> SampledRows:
    """A probe stratum's side: another load, so another rate per exposure (`per_exposure` × the windows')."""
    side = sampled(rng, shares, samples, profiles)
    return SampledRows(side.counts, np.asarray(side.exposure) / per_exposure)


def stratified_named(rng: np.random.Generator, gates: int, grown_row: int | None, *, with_probes: bool,
                     base_per_exposure: float = 2.5, cand_per_exposure: float = 2.5) -> int:
    """Gates naming anything (grown_row None: A/A) or naming row grown_row (+4 % of the CPU), with 1,200 window
    samples a side over 12 repetitions and, with_probes, 400 probe samples a side over 7 profiles."""
    grown = COUNT_SHARES.copy()
    if grown_row is not None:
        grown[grown_row] += 4.0 * COUNT_SHARES.sum() / 100
    named = 0
    for _ in range(gates):
        base, cand = sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, grown, 1200, 12)
        strata = [(probe_stratum(rng, COUNT_SHARES, 400, 7, base_per_exposure),
                   probe_stratum(rng, grown, 400, 7, cand_per_exposure))] if with_probes else []
        adjusted = count_test(NAMES, base, cand, strata=strata).p_adjusted
        named += (any(p < 0.05 for p in adjusted.values()) if grown_row is None
                  else adjusted[NAMES[grown_row]] < 0.05)
    return named


def test_a_probe_stratum_with_its_own_rate_names_nothing_in_more_than_about_alpha_of_a_a_runs():
    """The probes' samples per exposure are 2.5 times the windows' (another load): pooled into the windows' rows
    they would have to agree; as a stratum each side is compared with the other inside it. Seed 21: 8 of 300."""
    assert stratified_named(np.random.default_rng(21), 300, None, with_probes=True) <= 25


def test_a_probe_stratum_names_a_rise_more_often():
    """Seed 22, 200 gates: +4 % of the CPU in a function holding 9 % named in 75 from the windows alone, in 120 with
    a third more samples from the probes."""
    plain, stratified = (stratified_named(np.random.default_rng(22), 200, 3, with_probes=probes)
                         for probes in (False, True))
    assert stratified >= plain + 25


def test_strata_add_up_like_one_when_their_rates_agree():
    """Two strata of one load give the score of the same samples as one stratum (only the dispersion's degrees of
    freedom differ, by one rate per side)."""
    rng = np.random.default_rng(23)
    base, cand = sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, COUNT_SHARES, 1200, 12)
    halves = [SampledRows(np.asarray(s.counts)[:, part], np.asarray(s.exposure)[part])
              for s in (base, cand) for part in (slice(0, 6), slice(6, 12))]
    whole = count_test(NAMES, base, cand).p_values
    split = count_test(NAMES, halves[0], halves[2], strata=[(halves[1], halves[3])]).p_values
    assert [split[n] for n in NAMES] == pytest.approx([whole[n] for n in NAMES], rel=0.25, abs=1e-3)


def test_a_stratum_with_a_side_missing_adds_nothing():
    rng = np.random.default_rng(24)
    base, cand = sampled(rng, COUNT_SHARES, 1200, 12), sampled(rng, COUNT_SHARES, 1200, 12)
    empty = SampledRows(np.zeros((len(NAMES), 0)), [])
    assert count_test(NAMES, base, cand, strata=[(empty, sampled(rng, COUNT_SHARES, 400, 7))]).p_values == \
        pytest.approx(count_test(NAMES, base, cand).p_values)

"""compare/functions.moves: CPU profiles' movers are tested as sample counts (count_test), the layers below
the CPU by Welch's t on square roots (their samples are bytes or delays of unequal size). Real pprof profiles,
written and parsed, with Poisson sample counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.pprof import SyntheticProfile

from perfgate.compare.functions import ScaledProfiles, _sampled, moves, per_request_cpu, service_functions
from perfgate.compare.movers import count_test, mover_family, mover_test
from perfgate.compare.profile import diff_profiles
from perfgate.profile.parse import parse_profile

FUNCTIONS = 30
CALLS = 1000.0


def side(tmp_path: Path, role: str, rng: np.random.Generator, grown: float) -> ScaledProfiles:
    rates = np.linspace(20, 2, FUNCTIONS)
    rates[0] *= grown
    profiles = []
    for rep in range(8):
        synthetic = SyntheticProfile(duration_ns=3 * 10**9)
        for index, count in enumerate(rng.poisson(rates)):
            if count:
                synthetic.sample([synthetic.location(f"f{index}", "main.main")], [int(count), int(count) * 10**7])
        path = tmp_path / f"{role}-{rep}.pb.gz"
        synthetic.write(path)
        profiles.append(parse_profile(path))
    return per_request_cpu(profiles, [CALLS] * len(profiles), [None] * len(profiles), use_process=False)


@pytest.fixture
def sides(tmp_path: Path) -> tuple[ScaledProfiles, ScaledProfiles]:
    rng = np.random.default_rng(21)
    return side(tmp_path, "base", rng, 1.0), side(tmp_path, "cand", rng, 1.6)


def test_cpu_profiles_are_tested_as_counts(sides):
    base, cand = sides
    found = moves(base, cand, unit="µs", alpha=0.05, sampled_cpu=True)
    per_request = diff_profiles(base.profiles, cand.profiles, baseline_scales=base.scales,
                                candidate_scales=cand.scales, unit="µs")
    family = mover_family(diff_profiles(base.profiles, cand.profiles, rank=False).functions)
    rows = [f for f in per_request.functions if f.function in family]
    own = service_functions((*base.profiles, *cand.profiles))
    assert own == {"main.main"}  # f0, f1, ... have no package: not Go functions of the service
    expected = count_test([f.function for f in rows], _sampled(base, [f.baseline_cum for f in rows]),
                          _sampled(cand, [f.candidate_cum for f in rows]), own=own)
    assert found.own == expected.own == 1
    grown = next(m for m in found.risers if m.function == "f0")
    assert grown.significant and grown.p_adjusted == pytest.approx(expected.p_adjusted["f0"])
    counts = np.asarray(_sampled(base, [f.baseline_cum for f in rows]).counts)
    assert np.allclose(counts, np.round(counts))  # the figures went back to whole samples


def test_other_profiles_are_tested_by_welchs_t(sides):
    base, cand = sides
    found = moves(base, cand, unit="µs", alpha=0.05)
    per_request = diff_profiles(base.profiles, cand.profiles, baseline_scales=base.scales,
                                candidate_scales=cand.scales, unit="µs")
    family = mover_family(diff_profiles(base.profiles, cand.profiles, rank=False).functions)
    welch = mover_test(per_request.functions, family=family, transform="per_request",
                       own=service_functions((*base.profiles, *cand.profiles)))
    grown = next(m for m in found.risers if m.function == "f0")
    assert grown.p_adjusted == pytest.approx(welch.p_adjusted["f0"])
    counted = moves(base, cand, unit="µs", alpha=0.05, sampled_cpu=True)
    assert grown.p_adjusted != pytest.approx(next(m for m in counted.risers if m.function == "f0").p_adjusted)

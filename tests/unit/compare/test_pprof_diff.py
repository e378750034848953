"""diff_profiles (shares and per-request views, medians, changes, p-values, risers), rule helpers and
the pprof command line, on real greeter profiles and on profiles built to a known shape."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from scipy import stats
from support.pprof import PPROF_FIXTURES, SyntheticProfile, have_go

from perfgate.compare.profile import APPEARED, CHANGED, VANISHED, diff_profiles
from perfgate.errors import ConfigError
from perfgate.profile.model import Profile
from perfgate.profile.names import match_functions
from perfgate.profile.parse import parse_profile
from perfgate.profile.render import pprof_diff_command

BASE = [PPROF_FIXTURES / f"greeter-base-{i}.pb.gz" for i in (1, 2)]
CAND = [PPROF_FIXTURES / f"greeter-cand-{i}.pb.gz" for i in (1, 2)]


def build(stacks: dict[tuple[str, ...], int]) -> Profile:
    """A profile whose samples are the given stacks (root first, as function names) and weights."""
    profile = SyntheticProfile()
    locations: dict[str, int] = {}
    for stack, weight in stacks.items():
        ids = [locations.setdefault(name, profile.location(name)) for name in reversed(stack)]
        profile.sample(ids, [weight, weight * 10_000_000])
    return parse_profile(profile.serialized())


# ---------------------------------------------------------------- real profiles


def test_real_greeter_diff_is_consistent() -> None:
    base, cand = [parse_profile(p) for p in BASE], [parse_profile(p) for p in CAND]
    diff = diff_profiles(base, cand)
    assert diff.unit == "%" and diff.profile_unit == "nanoseconds"
    assert diff.baseline_totals == tuple(p.total for p in base)
    names = set().union(*(p.functions for p in base + cand))
    assert {f.function for f in diff.functions} == names
    changes = [f.cum_change for f in diff.functions]
    assert changes == sorted(changes, reverse=True)
    for f in diff.functions:
        assert len(f.baseline_cum) == 2 and len(f.candidate_cum) == 2
        for side, profiles in ((f.baseline_cum, base), (f.candidate_cum, cand)):
            assert side == pytest.approx([100 * p.cost(f.function).cum / p.total for p in profiles])
        assert f.cum_change == pytest.approx(f.candidate_cum_median - f.baseline_cum_median)
        assert 0 <= f.cum_p_value <= 1 and 0 <= f.flat_p_value <= 1 and f.p_value == f.cum_p_value
        assert f.status == (VANISHED if not any(f.candidate_cum) else
                            APPEARED if not any(f.baseline_cum) else CHANGED)
    assert set(diff.appeared) == {f.function for f in diff.functions if f.status == APPEARED}
    assert set(diff.vanished) == {f.function for f in diff.functions if f.status == VANISHED}
    assert all(diff.function(name).cum_change < 0 for name in diff.fallers)
    assert [r.function for r in diff.risers] == sorted((r.function for r in diff.risers),
                                                       key=lambda n: -diff.function(n).cum_change)
    json.dumps(diff.to_dict())  # JSON-ready
    root = diff.function("runtime.goexit") or diff.function("google.golang.org/grpc.(*Server).serveStreams.func2.1")
    assert root is not None


# ---------------------------------------------------------------- exact numbers


def test_shares_medians_changes_and_p_values() -> None:
    base = [build({("main", "a"): 30, ("main", "b"): 70}), build({("main", "a"): 20, ("main", "b"): 80}),
            build({("main", "a"): 25, ("main", "b"): 75})]
    cand = [build({("main", "a"): 50, ("main", "c"): 50}), build({("main", "a"): 60, ("main", "c"): 40}),
            build({("main", "a"): 40, ("main", "c"): 60})]
    diff = diff_profiles(base, cand)
    a = diff.function("a")
    assert a.baseline_cum == pytest.approx((30, 20, 25))
    assert a.baseline_cum_median == pytest.approx(25) and a.candidate_cum_median == pytest.approx(50)
    assert a.cum_change == pytest.approx(25) and a.cum_rel_change == pytest.approx(1.0)
    assert a.flat_change == pytest.approx(25)
    expected = stats.mannwhitneyu([50, 60, 40], [30, 20, 25], alternative="two-sided").pvalue
    assert a.cum_p_value == pytest.approx(expected)
    assert diff.function("main").cum_change == 0 and diff.function("main").cum_p_value == 1.0
    b, c = diff.function("b"), diff.function("c")
    assert b.status == VANISHED and c.status == APPEARED and c.cum_rel_change is None
    assert diff.appeared == ("c",) and diff.vanished == ("b",)
    assert diff.fallers == ("b",)
    assert [r.function for r in diff.risers][:1] == ["c"]


def test_per_request_view_keeps_unchanged_work_still() -> None:
    """b's work per request doubles, a's and c's stay: in shares they fall, per request they do not move."""
    base = [build({("main", "a"): 50 + d, ("main", "b"): 50 - d, ("main", "c"): 100}) for d in (0, 2, -2)]
    cand = [build({("main", "a"): 50 + d, ("main", "b"): 100 - 2 * d, ("main", "c"): 100}) for d in (0, 2, -2)]
    # CPU µs per request measured in each repetition, here one µs per sample of 10 ms (build's period)
    per_request = diff_profiles(base, cand, baseline_scales=[1e-7] * 3, candidate_scales=[1e-7] * 3, unit="µs")
    shares = diff_profiles(base, cand)
    assert per_request.unit == "µs" and shares.unit == "%" and per_request.profile_unit == "nanoseconds"
    a, b = per_request.function("a"), per_request.function("b")
    assert a.baseline_cum == pytest.approx((50, 52, 48)) and a.candidate_cum == pytest.approx((50, 52, 48))
    assert a.cum_change == pytest.approx(0) and a.cum_p_value == pytest.approx(1.0)
    assert b.cum_change == pytest.approx(50) and b.cum_rel_change == pytest.approx(1.0)
    assert b.candidate_cum == pytest.approx((100, 96, 104))
    assert per_request.fallers == ()
    assert [(r.function, r.explains) for r in per_request.risers] == [("b", ("main",))]  # main carries b's rise
    assert {"a", "c"} <= set(shares.fallers)  # the misleading view
    with pytest.raises(ValueError, match="3 profiles but 2 scales"):
        diff_profiles(base, cand, baseline_scales=[1, 1])
    with pytest.raises(ValueError, match="finite and >= 0"):
        diff_profiles(base, cand, candidate_scales=[1, float("nan"), 1])


def test_bad_arguments() -> None:
    one = build({("main",): 1})
    with pytest.raises(ValueError, match="at least one profile"):
        diff_profiles([], [one])
    counts = SyntheticProfile(sample_types=(("alloc", "bytes"),))
    counts.sample([counts.location("main")], [5])
    with pytest.raises(ValueError, match="different units"):
        diff_profiles([one], [parse_profile(counts.serialized())])


# ---------------------------------------------------------------- risers


def test_a_helper_and_the_callers_are_attributed_to_the_function_that_grew() -> None:
    """handler -> {work -> helper, other}: work calls helper more. helper's rise is larger than
    work's (smaller base share) and handler rises too; work is reported, explaining both."""
    base = build({("main", "handler", "work", "helper"): 15, ("main", "handler", "work"): 5,
                  ("main", "handler", "other"): 60, ("main", "gc"): 20})
    cand = build({("main", "handler", "work", "helper"): 30, ("main", "handler", "work"): 5,
                  ("main", "handler", "other"): 60, ("main", "gc"): 20})
    diff = diff_profiles([base], [cand])
    assert diff.function("helper").cum_change > diff.function("work").cum_change > 0
    assert diff.risers[0].function == "work"
    assert set(diff.risers[0].explains) == {"helper", "handler"}
    assert [r.function for r in diff.risers] == ["work"]


def test_a_caller_whose_own_code_grew_keeps_its_rise() -> None:
    base = build({("main", "parse"): 20, ("main", "parse", "scan"): 10, ("main", "idle"): 70})
    cand = build({("main", "parse"): 40, ("main", "parse", "scan"): 15, ("main", "idle"): 70})
    diff = diff_profiles([base], [cand])
    assert diff.risers[0].function == "parse"
    assert diff.function("scan").cum_change > 0
    assert "scan" not in diff.risers[0].explains  # scan is a third of parse, not most of it


def test_independent_risers_stay_separate_and_ranked() -> None:
    base = build({("main", "a"): 10, ("main", "b"): 10, ("main", "rest"): 80})
    cand = build({("main", "a"): 30, ("main", "b"): 15, ("main", "rest"): 80})
    diff = diff_profiles([base], [cand])
    assert [r.function for r in diff.risers] == ["a", "b"]
    assert diff.risers[0].cum_change == pytest.approx(diff.function("a").cum_change)


# ---------------------------------------------------------------- rule helpers and commands


def test_match_functions() -> None:
    names = ["main.checksumPayload", "main.(*greeterServer).SayHello", "pkg.Sum[go.shape.int]", "mainly.x"]
    assert match_functions("main.checksumPayload", names) == ("main.checksumPayload",)
    assert match_functions("main.*", names) == ("main.checksumPayload", "main.(*greeterServer).SayHello")
    assert match_functions("pkg.Sum[go.shape.int]", names) == ("pkg.Sum[go.shape.int]",)  # exact, not a class
    assert match_functions("re:^main\\.", names) == ("main.checksumPayload", "main.(*greeterServer).SayHello")
    assert match_functions("re:Say", names) == ("main.(*greeterServer).SayHello",)
    assert match_functions("", names) == () and match_functions("nothing*", names) == ()
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        match_functions("re:(", names)
    diff = diff_profiles([build({("main.a", "main.b"): 1})], [build({("main.a",): 1})])
    assert [f.function for f in diff.select("main.*")] == sorted(["main.a", "main.b"],
                                                                  key=lambda n: -diff.function(n).cum_change)


def test_pprof_diff_command_is_quoted_and_runs(tmp_path: Path) -> None:
    base = tmp_path / "base dir" / "rep-01.pb.gz"
    base.parent.mkdir()
    base.write_bytes(BASE[0].read_bytes())
    command = pprof_diff_command(base, CAND[0])
    assert command == f"go tool pprof '-diff_base={base}' -normalize -top {CAND[0]}"
    assert pprof_diff_command("a.pb.gz", "b.pb.gz", http=True) == (
        "go tool pprof -diff_base=a.pb.gz -normalize -http=localhost:0 b.pb.gz")
    assert pprof_diff_command("x;rm -rf ~", "b") == "go tool pprof '-diff_base=x;rm -rf ~' -normalize -top b"
    if have_go():
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120,  # noqa: S603
                              check=False)
        assert done.returncode == 0, done.stderr
        assert "Showing nodes accounting for" in done.stdout and "main.checksumPayload" in done.stdout

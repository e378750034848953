"""perfgate's CPU profile figures agree with `go tool pprof`, function by function, to the unit.

For each profile: every function's flat and cum equal `go tool pprof -top -nodefraction=0
-unit=ns` (pprof prints exact integers with -unit=ns; names are printed in full, only the
" (inline)"/" (partial-inline)" marks are stripped), and render_top's table equals pprof's
default -top table line by line (same unit choice, percentages, order).

Profiles: a live `go test -bench -cpuprofile` run of tests/data/gobench, the committed real
fixtures, a live profile of the example greeter service under ghz load, and generated
profiles of awkward shapes (hypothesis).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.pprof import (
    PPROF_FIXTURES,
    SyntheticProfile,
    gobench_profile,
    have_go,
    pprof_top_lines,
    pprof_top_ns,
    profile_under_load,
)

from perfgate.capture.layers import DELTA_KINDS, LOCK_MACHINERY, OWN_FRAMES, parse_layer
from perfgate.profile.parse import parse_profile
from perfgate.profile.render import render_top

pytestmark = pytest.mark.skipif(not have_go(), reason="needs Go (go tool pprof)")

_MARK = re.compile(r" \((?:partial-)?inline\)$")


def assert_agrees_with_pprof(path: Path) -> None:
    ours = parse_profile(path)
    theirs = pprof_top_ns(path)
    assert set(ours.functions) == set(theirs), (
        f"only perfgate: {sorted(set(ours.functions) - set(theirs))[:5]}, "
        f"only pprof: {sorted(set(theirs) - set(ours.functions))[:5]}")
    mismatches = {name: ((ours.functions[name].flat, ours.functions[name].cum), expected)
                  for name, expected in theirs.items() if (ours.functions[name].flat, ours.functions[name].cum)
                  != expected}
    assert not mismatches, f"(perfgate, pprof) differ: {dict(list(mismatches.items())[:5])}"
    table = render_top(ours, as_json=False).splitlines()
    ours_rows = table[next(i for i, line in enumerate(table) if line.split()[:2] == ["flat", "flat%"]) + 1:]
    pprof_rows = [_MARK.sub("", line.rstrip()) for line in pprof_top_lines(path)]
    assert [row.rstrip() for row in ours_rows] == pprof_rows


def test_live_go_benchmark_profile(tmp_path: Path) -> None:
    path = gobench_profile(tmp_path)
    profile = parse_profile(path)
    assert any(name.endswith("gobench.fib") for name in profile.functions)
    assert_agrees_with_pprof(path)


@pytest.mark.parametrize("fixture", sorted(PPROF_FIXTURES.glob("*.pb.gz")), ids=lambda p: p.name)
def test_committed_real_profiles(fixture: Path) -> None:
    assert_agrees_with_pprof(fixture)


@pytest.mark.parametrize(("kind", "sample_type"), [(kind.name, sample_type) for kind in DELTA_KINDS.values()
                                                   for sample_type in kind.sample_types])
def test_layer_profiles_by_sample_type_without_perfgates_own_requests(kind: str, sample_type: str) -> None:
    """pprof -sample_index=TYPE -ignore=OWN_FRAMES on the real delta profiles: every function, to the unit."""
    path = PPROF_FIXTURES / f"greeter-layer-{kind}.pb.gz"
    ours = parse_layer(path, DELTA_KINDS[kind], sample_type)
    theirs = pprof_top_ns(path, f"-sample_index={sample_type}", f"-ignore={OWN_FRAMES.pattern}")
    assert {name: (cost.flat, cost.cum) for name, cost in ours.functions.items()} == theirs
    assert not any(name.startswith("net/http/pprof.") for name in ours.functions)
    assert ours.total == sum(flat for flat, _ in theirs.values())


@pytest.mark.parametrize("kind", ["mutex", "block"])
def test_contention_call_sites_agree_with_pprof_hide(kind: str) -> None:
    """The call-site view (lock machinery hidden) is pprof's -hide on top of -ignore, to the unit."""
    path = PPROF_FIXTURES / f"greeter-layer-{kind}.pb.gz"
    ours = parse_layer(path, DELTA_KINDS[kind], call_sites=True)
    theirs = pprof_top_ns(path, f"-ignore={OWN_FRAMES.pattern}", f"-hide={LOCK_MACHINERY.pattern}")
    assert {name: (cost.flat, cost.cum) for name, cost in ours.functions.items()} == theirs
    assert not any(name.startswith(("sync.", "runtime.")) for name in ours.functions)
    leaf = max(ours.functions.items(), key=lambda item: item[1].flat)[0]
    assert leaf in ("main.greetingPrefix", "google.golang.org/grpc/internal/transport.(*controlBuffer).get")


@pytest.mark.slow
def test_live_greeter_profile(start_greeter, tmp_path: Path) -> None:
    from support.paths import GHZ

    greeter = start_greeter()
    body = profile_under_load(GHZ, greeter.address, greeter.pprof_url, load_s=2.0, profile_s=1)
    path = tmp_path / "greeter.pb.gz"
    path.write_bytes(body)
    assert "main.checksumPayload" in parse_profile(path).functions
    assert_agrees_with_pprof(path)


# Names that exercise pprof's naming: generics (the demangle heuristic strips "(...)" inside
# "[...]"), methods of generic types (left alone), C++-looking names, closures, unicode, and
# characters that need escaping elsewhere. Nameless frames become "[binary]".
NAMES = [
    "main.main", "main.work", "runtime.mallocgc", "pkg.(*T).Method", "pkg.f.func1.2",
    "go/ast.walk[go.shape.interface { End() int; Pos() int }]", "pkg.(*Stack[...]).Push",
    "ns::Klass<int>::run(int)", "名前.関数", "weird name with spaces", "a&b<c>\"d'", "",
]


@st.composite
def awkward_profiles(draw) -> SyntheticProfile:
    profile = SyntheticProfile(mapping_file="/nonexistent/bin/service")
    second = profile.message.mapping.add()
    second.id, second.filename, second.has_functions = 2, profile.string("/nonexistent/lib/libc.so.6"), True
    locations = [profile.location(*draw(st.lists(st.sampled_from(NAMES), max_size=3)),
                                  mapping_id=draw(st.sampled_from([1, 1, 2, 0])))
                 for _ in range(draw(st.integers(1, 7)))]
    for _ in range(draw(st.integers(1, 10))):
        count = draw(st.integers(-1, 4))
        profile.sample(draw(st.lists(st.sampled_from(locations), max_size=7)), [count, count * 10_000_000])
    if draw(st.booleans()):
        profile.message.drop_frames = profile.string(draw(st.sampled_from(["runtime\\..*", "main\\.work", "pkg.*"])))
    if draw(st.booleans()):
        profile.message.default_sample_type = profile.string("samples")
    return profile


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(awkward_profiles())
def test_generated_profiles_of_awkward_shapes(profile: SyntheticProfile) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = profile.write(Path(tmp) / "generated.pb.gz")
        parsed = parse_profile(path)
        if not parsed.functions:
            return  # pprof prints no table for a profile without samples
        assert_agrees_with_pprof(path)

"""parse_profile and render_top: real Go profiles, profiles of a chosen shape, and broken inputs."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.pprof import PPROF_FIXTURES, SyntheticProfile, naive_flat_cum

from perfgate.errors import EXIT_USAGE, ProfileError
from perfgate.profile import profile_pb2
from perfgate.profile.model import FunctionCost, Profile
from perfgate.profile.names import pprof_function_name
from perfgate.profile.parse import MAX_PROFILE_BYTES, parse_profile
from perfgate.profile.render import render_top
from perfgate.profile.units import scaled_label

GOBENCH = PPROF_FIXTURES / "gobench.pb.gz"
GREETER = PPROF_FIXTURES / "greeter-base-1.pb.gz"
GOBENCH_PKG = "perfgate.test/gobench."


# ---------------------------------------------------------------- real Go profiles


def test_go_cpu_profile_header_fields() -> None:
    profile = parse_profile(GREETER)
    assert profile.sample_types == (("samples", "count"), ("cpu", "nanoseconds"))
    assert profile.default_sample_index == 1 and profile.sample_type == "cpu"
    assert profile.unit == "nanoseconds"
    assert profile.period == 10_000_000 and profile.period_type == ("cpu", "nanoseconds")
    assert 1.5e9 < profile.duration_ns < 3e9 and profile.time_nanos > 1.6e18
    assert profile.total == profile.total_ns > 0
    assert profile.total % profile.period == 0  # Go writes count * period
    assert profile.sample_count > 0
    assert profile.name == str(GREETER)


def test_go_profile_costs_are_consistent() -> None:
    profile = parse_profile(GOBENCH)
    costs = profile.functions
    assert sum(cost.flat for cost in costs.values()) == profile.total  # every sample has a leaf
    for name, cost in costs.items():
        assert 0 <= cost.flat <= cost.cum <= profile.total, name
    # fib recurses: its cum counts each sample once, so it stays below the total.
    fib = costs[GOBENCH_PKG + "fib"]
    assert fib.cum < profile.total and fib.cum == costs[GOBENCH_PKG + "BenchmarkFib"].cum
    # mutual recursion: every isOdd sample is also an isEven sample and vice versa
    assert costs[GOBENCH_PKG + "isEven"].cum == costs[GOBENCH_PKG + "isOdd"].cum
    # the inlined helper is its own node, under the function it was inlined into
    assert costs[GOBENCH_PKG + "mix"].cum <= costs[GOBENCH_PKG + "hashWords"].cum
    assert profile.cost("no.such.function") == FunctionCost(0, 0)


def test_folded_stacks_add_up_to_the_profile() -> None:
    profile = parse_profile(GOBENCH)
    assert sum(profile.stacks.values()) == profile.total
    leaf_weight: dict[str, int] = {}
    for stack, weight in profile.stacks.items():
        assert stack and all(isinstance(name, str) for name in stack)
        leaf_weight[stack[-1]] = leaf_weight.get(stack[-1], 0) + weight
    assert leaf_weight == {name: cost.flat for name, cost in profile.functions.items() if cost.flat}
    fib_stack = next(stack for stack in profile.stacks if stack[-1] == GOBENCH_PKG + "fib")
    assert fib_stack[0] == "runtime.goexit" or fib_stack.count(GOBENCH_PKG + "fib") >= 1


def test_gzipped_raw_path_and_bytes_give_the_same_profile(tmp_path: Path) -> None:
    data = GREETER.read_bytes()
    raw = tmp_path / "raw.pb"
    raw.write_bytes(gzip.decompress(data))
    from_path, from_raw, from_bytes = parse_profile(GREETER), parse_profile(raw), parse_profile(data, name="x")
    assert from_path.functions == from_raw.functions == from_bytes.functions
    assert from_bytes.name == "x" and from_raw.name == str(raw)
    assert parse_profile(data).name == "<bytes>"
    assert parse_profile(str(GREETER)).functions == from_path.functions


def test_concatenated_gzip_members_are_read_like_go_does(tmp_path: Path) -> None:
    data = gzip.decompress(GREETER.read_bytes())
    half = len(data) // 2
    two_members = gzip.compress(data[:half]) + gzip.compress(data[half:])
    assert parse_profile(two_members).functions == parse_profile(GREETER).functions


# ---------------------------------------------------------------- semantics on chosen shapes


def test_recursion_is_counted_once_per_sample() -> None:
    profile = SyntheticProfile()
    main, rec, leaf = profile.location("main.main"), profile.location("main.rec"), profile.location("main.leaf")
    profile.sample([leaf, rec, rec, rec, main], [1, 10])
    profile.sample([rec, rec, main], [2, 20])
    parsed = parse_profile(profile.serialized())
    assert parsed.functions["main.rec"] == FunctionCost(flat=20, cum=30)
    assert parsed.functions["main.main"] == FunctionCost(flat=0, cum=30)
    assert parsed.functions["main.leaf"] == FunctionCost(flat=10, cum=10)
    assert parsed.stacks == {("main.main", "main.rec", "main.rec", "main.rec", "main.leaf"): 10,
                             ("main.main", "main.rec", "main.rec"): 20}


def test_inlined_frames_expand_with_the_last_line_as_the_caller() -> None:
    profile = SyntheticProfile()
    # one location: helper inlined into worker (line[0] innermost, last line = the caller)
    inlined = profile.location("main.helper", "main.worker")
    main = profile.location("main.main")
    profile.sample([inlined, main], [3, 30])
    parsed = parse_profile(profile.serialized())
    assert parsed.stacks == {("main.main", "main.worker", "main.helper"): 30}
    assert parsed.functions["main.helper"] == FunctionCost(30, 30)
    assert parsed.functions["main.worker"] == FunctionCost(0, 30)


def test_zero_weight_samples_are_skipped_and_the_last_type_is_the_default() -> None:
    profile = SyntheticProfile(sample_types=(("samples", "count"), ("cpu", "nanoseconds")))
    a, b = profile.location("main.a"), profile.location("main.b")
    profile.sample([a], [5, 0])  # counted samples but zero cpu: skipped entirely
    profile.sample([b], [1, 7])
    parsed = parse_profile(profile.serialized())
    assert set(parsed.functions) == {"main.b"} and parsed.total == 7 and parsed.sample_count == 1


def test_default_sample_type_picks_the_named_type() -> None:
    profile = SyntheticProfile(sample_types=(("samples", "count"), ("cpu", "nanoseconds")))
    profile.message.default_sample_type = profile.string("samples")
    profile.sample([profile.location("main.a")], [4, 40])
    parsed = parse_profile(profile.serialized())
    assert parsed.default_sample_index == 0 and parsed.unit == "count" and parsed.total == 4
    assert parsed.total_ns is None  # not a time unit


def test_frames_without_functions_are_named_after_the_binary() -> None:
    profile = SyntheticProfile(mapping_file="/usr/lib/libfoo.so")
    bare = profile.location()
    nameless = profile.location("")
    unmapped = profile.location(mapping_id=0)
    profile.sample([bare, profile.location("main.a")], [1, 1])
    profile.sample([nameless], [1, 2])
    profile.sample([unmapped], [1, 4])
    parsed = parse_profile(profile.serialized())
    assert parsed.functions["[libfoo.so]"] == FunctionCost(3, 3)
    assert parsed.functions["<unknown>"] == FunctionCost(4, 4)


def test_drop_frames_prunes_like_pprof() -> None:
    profile = SyntheticProfile()
    profile.message.drop_frames = profile.string("runtime\\.alloc.*")
    main, work = profile.location("main.main"), profile.location("main.work")
    alloc, inner = profile.location("runtime.allocate"), profile.location("runtime.memclr")
    profile.sample([inner, alloc, work, main], [1, 10])
    parsed = parse_profile(profile.serialized())
    # the dropped frame and everything below it go; the sample's weight lands on main.work
    assert parsed.stacks == {("main.main", "main.work"): 10}
    assert parsed.functions["main.work"] == FunctionCost(10, 10)


@pytest.mark.parametrize(("name", "system_name", "shown"), [
    ("main.f", "main.f", "main.f"),
    ("go/ast.walk[go.shape.interface { End() int }]", None, "go/ast.walk[go.shape.interface { End int }]"),
    ("pkg.(*List[...]).Push", None, "pkg.(*List[...]).Push"),  # "]). ": Go method of a generic type
    ("ns::Klass<int>::run(int)", None, "ns::Klass::run"),
    ("java.lang.Object.<init>", None, "java.lang.Object.<init>"),
    ("readable", "mangled_sym", "readable"),  # an already demangled name is kept
    ("", "sys.only[x(y)]", "sys.only[x]"),
    ("unbalanced[(x", None, "unbalanced[(x"),
])
def test_function_names_follow_pprofs_demangle_step(name: str, system_name: str | None, shown: str) -> None:
    assert pprof_function_name(name, name if system_name is None else system_name) == shown


# ---------------------------------------------------------------- render_top


def test_render_top_json_lists_every_function_in_pprof_order() -> None:
    profile = parse_profile(GOBENCH)
    rows = json.loads(render_top(profile, as_json=True))
    assert {row["function"]: (row["flat"], row["cum"]) for row in rows} == {
        name: (cost.flat, cost.cum) for name, cost in profile.functions.items()}
    keys = [(-row["flat"], row["function"]) for row in rows]
    assert keys == sorted(keys)
    assert all(isinstance(row["flat"], int) and isinstance(row["cum"], int) for row in rows)


def test_render_top_table_shape() -> None:
    profile = parse_profile(GOBENCH)
    lines = render_top(profile, as_json=False).splitlines()
    assert lines[0] == f"Profile: {GOBENCH}" and lines[1] == "Type: cpu"
    assert lines[2].startswith("Duration: ") and "Total samples = " in lines[2]
    assert lines[3].startswith("Showing nodes accounting for ") and lines[3].endswith(" total")
    assert lines[4].split() == ["flat", "flat%", "sum%", "cum", "cum%"]
    assert len(lines) == 5 + len(profile.functions)
    assert lines[-1].split()[2] == "100%"  # sum% reaches the whole profile


def test_scaled_labels_match_pprofs_units() -> None:
    assert scaled_label(1_680_000_000, "nanoseconds", "s") == "1.68s"
    assert scaled_label(10_000_000, "nanoseconds", "ms") == "10ms"
    assert scaled_label(0, "nanoseconds", "ms") == "0"
    assert scaled_label(123, "nanoseconds", "ns") == "123ns"
    assert scaled_label(3 * 1024 * 1024, "bytes", "auto") == "3MB"
    assert scaled_label(42, "count", "count") == "42"


# ---------------------------------------------------------------- broken inputs


def _expect_error(source, *fragments: str) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        parse_profile(source)
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "rep-01.pb.gz"
    path.write_bytes(b"")
    _expect_error(path, str(path), "the file is empty")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pb.gz"
    _expect_error(path, str(path), "No such file")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(7).randbytes(4096))
    _expect_error(path, str(path))


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.pb.gz"
    data = GREETER.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, str(path), "truncated gzip data")


def test_corrupt_gzip_and_trailing_garbage(tmp_path: Path) -> None:
    data = bytearray(GREETER.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _expect_error(bytes(data), "<bytes>", "corrupt gzip data")
    _expect_error(GREETER.read_bytes() + b"junk", "trailing garbage")


def test_valid_gzip_of_junk() -> None:
    _expect_error(gzip.compress(random.Random(3).randbytes(2000)), "<bytes>")
    _expect_error(gzip.compress(b"this is not a profile at all"), "<bytes>")


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (MAX_PROFILE_BYTES + 1024 * 1024), compresslevel=1)
    _expect_error(bomb, "decompresses to more than the 128 MiB limit")


def test_oversized_raw_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.pb"
    with path.open("wb") as handle:
        handle.truncate(MAX_PROFILE_BYTES + 1)  # sparse: costs no disk
    _expect_error(path, str(path), "more than the 128 MiB limit")


def _valid() -> SyntheticProfile:
    profile = SyntheticProfile()
    profile.sample([profile.location("main.a"), profile.location("main.main")], [1, 10])
    return profile


def test_inconsistent_string_table() -> None:
    profile = _valid()
    data = profile.serialized(gzipped=False)
    message = profile_pb2.Profile.FromString(data)
    message.string_table[0] = b"not empty"
    _expect_error(message.SerializeToString(), "string_table[0] is not the empty string")
    del message.string_table[:]
    _expect_error(message.SerializeToString(), "the string table is empty")


def test_string_index_out_of_range_and_negative() -> None:
    profile = _valid()
    profile.message.function[0].name = 10_000
    _expect_error(profile.serialized(), "function 1 refers to string 10000", "string table has")
    profile = _valid()
    profile.message.function[0].name = -1
    _expect_error(profile.serialized(), "refers to string -1")
    profile = _valid()
    profile.message.sample_type[0].unit = 999
    _expect_error(profile.serialized(), "a sample type refers to string 999")


def test_ids_that_point_nowhere() -> None:
    profile = _valid()
    profile.sample([12345], [1, 10])
    _expect_error(profile.serialized(), "a sample refers to location 12345")
    profile = _valid()
    profile.message.location[0].line[0].function_id = 777
    _expect_error(profile.serialized(), "location 1 refers to function 777")
    profile = _valid()
    profile.message.location[0].line[0].function_id = 0
    _expect_error(profile.serialized(), "location 1 refers to function 0")


def test_reserved_and_duplicate_ids() -> None:
    profile = _valid()
    profile.message.location[1].id = 1
    _expect_error(profile.serialized(), "two locations have id 1")
    profile = _valid()
    profile.message.function[0].id = 0
    _expect_error(profile.serialized(), "a function has the reserved id 0")
    profile = _valid()
    profile.message.mapping.add().id = 1
    _expect_error(profile.serialized(), "two mappings have id 1")


def test_value_count_must_match_the_sample_types() -> None:
    profile = _valid()
    profile.sample([1], [1, 2, 3])
    _expect_error(profile.serialized(), "a sample has 3 values for 2 sample types")


def test_no_sample_types() -> None:
    profile = SyntheticProfile(sample_types=())
    _expect_error(profile.serialized(), "no sample types")


def test_huge_string_table_is_cheap_when_unused() -> None:
    """Strings are decoded on use only: a big table of unused strings parses quickly and correctly."""
    profile = _valid()
    for index in range(200_000):
        profile.string(f"unused-{index}")
    assert parse_profile(profile.serialized()).functions["main.a"] == FunctionCost(10, 10)


# ---------------------------------------------------------------- properties


NAMES = ["main.main", "main.a", "main.b", "main.(*T).M", "pkg.f.func1", "", "x y", "名前", "a<b>&'\"c"]


@st.composite
def synthetic_profiles(draw) -> SyntheticProfile:
    """Profiles of random shape: recursion, inlined frames, empty stacks, zero/negative weights."""
    profile = SyntheticProfile()
    locations = []
    for _ in range(draw(st.integers(1, 8))):
        frames = draw(st.lists(st.sampled_from([n for n in NAMES if "<" not in n]), min_size=0, max_size=3))
        locations.append(profile.location(*frames))
    for _ in range(draw(st.integers(0, 12))):
        stack = draw(st.lists(st.sampled_from(locations), max_size=8))
        count = draw(st.integers(-2, 5))
        profile.sample(stack, [count, count * 10_000_000])
    return profile


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(synthetic_profiles())
def test_parser_agrees_with_a_naive_reading(profile: SyntheticProfile) -> None:
    parsed = parse_profile(profile.serialized())
    expected, total = naive_flat_cum(profile.message, 1)
    assert parsed.total == total
    assert {name: (cost.flat, cost.cum) for name, cost in parsed.functions.items()} == expected
    assert sum(parsed.stacks.values()) == sum(cost.flat for cost in parsed.functions.values())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        assert isinstance(parse_profile(data, name="fuzz.pb"), Profile)
    except ProfileError as error:
        assert "fuzz.pb" in error.message


_GREETER_RAW = gzip.decompress(GREETER.read_bytes())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GREETER_RAW) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_real_profiles_fail_cleanly(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_GREETER_RAW)
    for position, value in edits:
        data[position] = value
    try:
        parse_profile(bytes(data), name="mutant")
    except ProfileError as error:
        assert error.message.startswith("cannot read CPU profile mutant: ")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=6, max_size=6),
       st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=3))
def test_wild_indices_and_ids_fail_cleanly(indices: list[int], ids: list[int]) -> None:
    profile = _valid()
    function = profile.message.function[0]
    function.name, function.system_name, function.filename = indices[0], indices[1], indices[2]
    profile.message.drop_frames, profile.message.default_sample_type = indices[3], indices[4]
    profile.message.comment.append(indices[5])
    function.id, profile.message.location[0].id, profile.message.location[0].mapping_id = ids
    try:
        parse_profile(profile.serialized())
    except ProfileError as error:
        assert error.message.startswith("cannot read CPU profile <bytes>: ")

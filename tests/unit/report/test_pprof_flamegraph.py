"""The differential flame graph: a valid, self-contained SVG whose frames, widths and colours
say what moved; hostile function names are escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from support.pprof import PPROF_FIXTURES, SyntheticProfile

from perfgate.compare.functions import ScaledProfiles
from perfgate.profile.model import Profile
from perfgate.profile.parse import parse_profile
from perfgate.report.flamegraph import write_diff_flamegraph

SVG = "{http://www.w3.org/2000/svg}"


def build(stacks: dict[tuple[str, ...], int]) -> Profile:
    profile = SyntheticProfile()
    locations: dict[str, int] = {}
    for stack, weight in stacks.items():
        profile.sample([locations.setdefault(name, profile.location(name)) for name in reversed(stack)],
                       [weight, weight * 10_000_000])
    return parse_profile(profile.serialized())


def frames(path: Path) -> dict[str, tuple[float, str, str]]:
    """frame name -> (width, fill, tooltip) from the SVG."""
    root = ET.parse(path).getroot()
    found = {}
    for group in root.iter(f"{SVG}g"):
        tooltip = group.find(f"{SVG}title").text
        rect = group.find(f"{SVG}rect")
        found[tooltip.split("\n")[0]] = (float(rect.get("width")), rect.get("fill"), tooltip)
    return found


def test_real_profiles_make_a_self_contained_svg(tmp_path: Path) -> None:
    base = [parse_profile(PPROF_FIXTURES / f"greeter-base-{i}.pb.gz") for i in (1, 2)]
    cand = [parse_profile(PPROF_FIXTURES / f"greeter-cand-{i}.pb.gz") for i in (1, 2)]
    out = write_diff_flamegraph(base, cand, tmp_path / "cpu" / "diff.svg", title="greeter: base vs +30 %")
    assert out == tmp_path / "cpu" / "diff.svg"
    text = out.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert "main.checksumPayload" in frames(out)
    # self-contained: no scripts, no links, no URL other than the SVG namespace itself
    assert "<script" not in text and "href" not in text
    assert re.findall(r"https?://[^\s\"']+", text) == ["http://www.w3.org/2000/svg"]


def test_widths_and_colours_follow_the_shares(tmp_path: Path) -> None:
    base = build({("main", "grows"): 20, ("main", "shrinks"): 60, ("main", "same"): 20})
    cand = build({("main", "grows"): 60, ("main", "shrinks"): 20, ("main", "same"): 20})
    found = frames(write_diff_flamegraph([base], [cand], tmp_path / "d.svg", title="t"))
    grows, shrinks, same, main = found["grows"], found["shrinks"], found["same"], found["main"]
    assert grows[0] == shrinks[0] == 2 * same[0]  # width: mean share, 40 % for both movers
    assert abs(grows[0] + shrinks[0] + same[0] - main[0]) < 0.5  # children fill their parent
    red, green, blue = (int(v) for v in re.findall(r"\d+", grows[1]))
    assert red > blue and red > green
    red, green, blue = (int(v) for v in re.findall(r"\d+", shrinks[1]))
    assert blue > red
    assert same[1] == "rgb(255,255,255)"
    assert "baseline 20.00 % of CPU, candidate 60.00 % (+40.00 pp)" in grows[2]


def test_per_request_a_function_whose_work_did_not_change_stays_white(tmp_path: Path) -> None:
    """grows doubles its work per request; same does not. In shares same would turn blue."""
    base = build({("main", "grows"): 20, ("main", "same"): 20})  # 40 samples of 10 ms: 0.4 s
    cand = build({("main", "grows"): 40, ("main", "same"): 20})
    per_sample_us = 1e-7  # each 10 ms sample stands for 1 µs per request
    found = frames(write_diff_flamegraph(ScaledProfiles((base,), (per_sample_us,)),
                                         ScaledProfiles((cand,), (per_sample_us,)), tmp_path / "d.svg",
                                         title="t", unit="µs"))
    assert found["same"][1] == "rgb(255,255,255)"
    assert "baseline 20 µs per request, candidate 20 µs (+0 µs)" in found["same"][2]
    assert "baseline 20 µs per request, candidate 40 µs (+20 µs)" in found["grows"][2]
    assert found["grows"][0] == 1.5 * found["same"][0]  # width: mean of 20 and 40 µs against 20 µs
    shares = frames(write_diff_flamegraph([base], [cand], tmp_path / "s.svg", title="t"))
    red, green, blue = (int(v) for v in re.findall(r"\d+", shares["same"][1]))
    assert blue > red  # the share view blames it


def test_repetitions_count_alike_whatever_their_length(tmp_path: Path) -> None:
    short = build({("main", "a"): 10, ("main", "b"): 10})   # 50 % a
    long = build({("main", "a"): 300, ("main", "b"): 100})  # 75 % a
    found = frames(write_diff_flamegraph([short, long], [short], tmp_path / "d.svg", title="t"))
    assert "baseline 62.50 % of CPU, candidate 50.00 %" in found["a"][2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4))
def test_any_function_name_is_escaped(names: list[str]) -> None:
    import tempfile

    stack = tuple(dict.fromkeys(names))
    profile = build({stack: 5})
    with tempfile.TemporaryDirectory() as tmp:
        out = write_diff_flamegraph([profile], [profile], Path(tmp) / "d.svg", title="<t> & \"q\"")
        ET.parse(out)  # well-formed XML whatever the names
        text = out.read_text(encoding="utf-8")
    assert "<script" not in text

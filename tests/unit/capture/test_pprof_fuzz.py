"""`perfgate profile top|diff` under fuzzing: for any file, exit 0 with output (no line the Actions runner
takes as a command) or exit 2 with a message; never exit 3 "internal error", never a hang."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ
from support.paths import TEST_DATA
from support.pprof import SyntheticProfile

from perfgate.cli import main

GREETER_RAW = gzip.decompress((TEST_DATA / "pprof" / "greeter-base-1.pb.gz").read_bytes())
NAMES = st.text(max_size=30) | st.sampled_from(["main.a", "::add-mask::x", "x\n::error::y", "##[warning]z", "",
                                                "a\r\nb", "main.(*T).M[...]", "\u2028::x"])


@st.composite
def hostile_profiles(draw: st.DrawFn) -> bytes:
    profile = SyntheticProfile(period=draw(st.integers(0, 2**40)), duration_ns=draw(st.integers(-5, 2**62)))
    locations = [profile.location(*draw(st.lists(NAMES, max_size=3))) for _ in range(draw(st.integers(1, 5)))]
    for _ in range(draw(st.integers(0, 8))):
        value = draw(st.integers(-(2**62), 2**62))
        profile.sample(draw(st.lists(st.sampled_from(locations), max_size=6)), [value // 10**7, value])
    return profile.serialized(gzipped=draw(st.booleans()))


@st.composite
def corrupted_real(draw: st.DrawFn) -> bytes:
    data = bytearray(GREETER_RAW)
    for position, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                         min_size=1, max_size=6)):
        data[position] = value
    return bytes(data)


FILES = hostile_profiles() | corrupted_real() | st.binary(max_size=300)


def commands_in(text: str) -> list[str]:
    return [line for line in re.split(r"\r\n|\r|\n", text) if line.lstrip().startswith("::") or "##[" in line]


def exits_0_or_2(argv: list[str], capsys, *, as_json: bool) -> None:
    code = main(argv)
    printed = capsys.readouterr()
    assert code in (0, 2), printed.err
    assert "internal error" not in printed.err
    assert commands_in(printed.out + "\n" + printed.err) == []
    if code == 0 and as_json:
        json.loads(printed.out)
    if code == 2:
        assert printed.err.startswith("perfgate: error: ")


@FUZZ
@given(FILES, st.booleans())
def test_profile_top_exits_0_or_2_for_any_file(capsys, data: bytes, as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.pb.gz"
        path.write_bytes(data)
        exits_0_or_2(["profile", "top", str(path), *(["--json"] if as_json else [])], capsys, as_json=as_json)


@FUZZ
@given(FILES, FILES, st.booleans())
def test_profile_diff_exits_0_or_2_for_any_two_files(capsys, base: bytes, cand: bytes, as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "base.pb.gz", Path(tmp) / "cand.pb.gz"]
        paths[0].write_bytes(base)
        paths[1].write_bytes(cand)
        exits_0_or_2(["profile", "diff", *map(str, paths), *(["--json"] if as_json else [])], capsys,
                     as_json=as_json)

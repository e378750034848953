"""The bpftrace-output parser under fuzzing: whatever lines come out of bpftrace (mangled, cut, foreign),
parsing and summarising them never raises: the kernel view is `partial` with a note, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ, JSON_VALUES, mutations
from support.paths import TEST_DATA

from perfgate.capture.runq_parse import parse_bpftrace_json, stats_from_output
from perfgate.capture.runq_stats import RunqStats
from perfgate.capture.runq_windows import window_stats

FIXTURES = ("greeter_ok", "killed_early", "killed_mid", "pid_filter_only", "shapes")
LINES = [line for name in FIXTURES for line in (TEST_DATA / "runq" / f"{name}.jsonl").read_text().splitlines()]
OBJECTS = [json.loads(line) for line in LINES if line.strip()]
PRINTF = st.sampled_from(["start", "depth", "mark", "marked", "end", "snapshot", "lost"]).flatmap(
    lambda word: st.lists(st.sampled_from(["1", "-1", "99999999999999999999", "x", "pgmark-1", "nan", ""]),
                          max_size=4).map(lambda args: " ".join([word, *args]) + "\n"))


@st.composite
def outputs(draw: st.DrawFn) -> list[str]:
    """A real output with some lines dropped, repeated, mangled, or replaced by foreign ones."""
    lines = list(draw(st.sampled_from([LINES[:40], LINES[40:120], LINES])))
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, max(len(lines) - 1, 0)))
        choice = draw(st.integers(0, 4))
        if choice == 0 and lines:
            del lines[where]
        elif choice == 1:
            lines.insert(where, json.dumps({"type": "printf", "data": draw(PRINTF)}))
        elif choice == 2:
            lines.insert(where, json.dumps(draw(mutations(draw(st.sampled_from(OBJECTS)), count=2))))
        elif choice == 3:
            lines.insert(where, json.dumps(draw(JSON_VALUES)))
        elif lines:
            lines[where] = lines[where][: draw(st.integers(0, len(lines[where])))]
    return lines


def summarise(lines: list[str]) -> None:
    output = parse_bpftrace_json(lines)
    for kwargs in ({"returncode": 0}, {"returncode": -9, "exited_early": True}, {"returncode": None,
                                                                                "killed_after_s": 2.0}):
        stats = stats_from_output(output, depth_interval_ms=100, ncpus=2, service_pids=(7,), **kwargs)
        assert RunqStats.from_dict(json.loads(json.dumps(stats.to_dict()))) is not None
    names = [mark.name for mark in output.marks] or ["pgmark-1"]
    for start, end in zip(names, names[1:] + names[:1], strict=True):
        stats = window_stats(output, start, end, slots=None, depth_interval_ms=100, ncpus=2, service_pids=(7,))
        assert stats.status in ("ok", "partial")


@FUZZ
@given(outputs())
def test_any_bpftrace_output_is_summarised_without_a_crash(lines: list[str]) -> None:
    summarise(lines)


@FUZZ
@given(st.lists(st.text(max_size=80) | JSON_VALUES.map(json.dumps) | PRINTF.map(
    lambda text: json.dumps({"type": "printf", "data": text})), max_size=30))
def test_any_lines_are_summarised_without_a_crash(lines: list[Any]) -> None:
    summarise(lines)

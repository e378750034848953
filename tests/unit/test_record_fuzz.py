"""The record loader under fuzzing: whatever record.json holds, loading it either works or is a RecordError
(exit 2) with a message, and a record that loads can be compared without a crash: never exit 3
"internal error" for bad input, never a hang."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ, JSON_VALUES, mutations
from support.hostile_records import write_record
from support.paths import TEST_DATA

from perfgate.capture.contention import ContentionWindow
from perfgate.capture.runq_parse import parse_bpftrace_json, stats_from_output
from perfgate.compare.inputs import load_inputs
from perfgate.config import load_config
from perfgate.errors import EXIT_USAGE, PerfgateError, RecordError
from perfgate.gate import decide
from perfgate.record import RECORD_FILE, load_record

PROFILES = [{"main.work": 400_000_000 + 10_000_000 * i, "main.other": 300_000_000} for i in range(4)]


@cache
def template() -> tuple[Path, dict[str, Any]]:
    """A valid record with every kind of field (profiles, run-queue stats, a contention window) on disk."""
    folder = Path(tempfile.mkdtemp(prefix="perfgate-fuzz-record-"))
    write_record(folder / "template", "candidate", PROFILES)
    data = json.loads((folder / "template" / RECORD_FILE).read_text())
    lines = (TEST_DATA / "runq" / "greeter_ok.jsonl").read_text().splitlines()
    stats = stats_from_output(parse_bpftrace_json(lines), returncode=0, depth_interval_ms=100, ncpus=2,
                              service_pids=(123,))
    window = ContentionWindow(wall_ns=5 * 10**9, ncpus=2, busy_ns=6 * 10**9, steal_ns=0, idle_ns=4 * 10**9,
                              service_ns=5 * 10**9, others_ns=10**8, problems=("none",))
    for rep in data["repetitions"]:
        rep["runq"] = {"status": "ok", "reason": None, "file": None, "stats": stats.to_dict()}
        rep["contention"] = window.to_dict()
    return folder, data


def check(document: Any, raw: bytes | None = None) -> None:
    """Load `document` as record.json beside the template's profiles; then compare it with the template."""
    folder, data = template()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        target = Path(tmp)
        (target / "cpu").mkdir()
        for profile in (folder / "template" / "cpu").iterdir():
            (target / "cpu" / profile.name).write_bytes(profile.read_bytes())
        (target / RECORD_FILE).write_bytes(raw if raw is not None else json.dumps(document).encode())
        try:
            record = load_record(target)
        except RecordError as error:
            assert error.exit_code == EXIT_USAGE and error.message
            return
        baseline = load_record(folder / "template")
        config = load_config(None, environ={}, require_target=False)
        try:
            decide(load_inputs(baseline, record), config, created_at="now")
            decide(load_inputs(record, record), config, created_at="now")
        except PerfgateError as error:  # a documented error (e.g. a profile that does not parse) is fine
            assert error.message


@FUZZ
@given(mutations(template()[1], count=4))
def test_a_mutated_record_loads_or_is_refused_with_exit_2(document: Any) -> None:
    check(document)


@FUZZ
@given(JSON_VALUES)
def test_any_json_document_is_refused_with_exit_2(document: Any) -> None:
    check(document)


@FUZZ
@given(st.binary(max_size=512) | st.sampled_from([b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b"1e999999"]))
def test_any_bytes_are_refused_with_exit_2(raw: bytes) -> None:
    check(None, raw=raw)

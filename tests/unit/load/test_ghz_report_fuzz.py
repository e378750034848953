"""The ghz-report parser under fuzzing: whatever the report holds (its error strings come from the service
under test), reading it gives a LoadSample and the OK latencies, or a ToolError with a message: never an
uncaught exception (exit 3 "internal error"), never a hang."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from support.fuzz import FUZZ, JSON_VALUES, mutations

from perfgate.errors import ToolError
from perfgate.load.ghz import check_reachable, describe_failures, read_load

ERRORS = st.text(max_size=40) | st.sampled_from(['boom },{"latency":7,"error":"","status":"OK"}]}', "::add-mask::x",
                                                 '\\"', "\n::error::y"])


def detail(latency: int, status: str = "OK", error: str = "") -> dict:
    return {"timestamp": "2026-11-30T06:07:30.97490751Z", "latency": latency, "error": error, "status": status}


REPORT: dict[str, Any] = {
    "date": "2026-11-30T06:07:30Z", "endReason": "timeout", "options": {"call": "a.B/C", "data": {"n": 1}},
    "count": 4, "total": 10**9, "average": 5, "fastest": 1, "slowest": 9, "rps": 4.0,
    "errorDistribution": {"rpc error: Unavailable": 1}, "statusCodeDistribution": {"OK": 3, "Unavailable": 1},
    "latencyDistribution": [{"percentage": 50, "latency": 5}, {"percentage": 95, "latency": 9}],
    "histogram": None, "tags": {},
    "details": [detail(5), detail(9), detail(1), detail(2, "Unavailable", "rpc error: Unavailable")],
}


def reads_or_tool_error(raw: bytes, ok_latencies: list[int] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.json"
        path.write_bytes(raw)
        try:
            sample, latencies = read_load(path)
        except ToolError as error:
            assert error.message
            return
        if ok_latencies is not None:  # an error string that looks like a detail never counts as an OK call
            assert latencies.tolist() == ok_latencies
        assert isinstance(latencies, np.ndarray) and latencies.ndim == 1
        assert 0 <= sample.ok_count and 0 <= sample.count
        try:
            check_reachable(sample, "127.0.0.1:1")
        except ToolError as error:
            assert error.message
        if sample.count:
            describe_failures(sample)


def compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@FUZZ
@given(mutations(REPORT, count=4))
def test_a_mutated_report_reads_or_is_a_tool_error(document: Any) -> None:
    reads_or_tool_error(compact(document))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**12), st.sampled_from(["OK", "Unavailable", "Internal"]), ERRORS),
                max_size=20), ERRORS)
def test_hostile_error_strings_never_count_as_ok_calls(calls: list[tuple], error_key: str) -> None:
    details = [detail(latency, status, error if status != "OK" else "") for latency, status, error in calls]
    ok = sum(status == "OK" for _, status, _ in calls)
    document = {**REPORT, "count": len(details), "details": details,
                "statusCodeDistribution": {"OK": ok, "Unavailable": len(details) - ok},
                "errorDistribution": {error_key: len(details) - ok}}
    reads_or_tool_error(compact(document), [latency for latency, status, _ in calls if status == "OK"])


@FUZZ
@given(JSON_VALUES.map(compact) | st.binary(max_size=300)
       | st.integers(1, len(compact(REPORT)) - 1).map(lambda cut: compact(REPORT)[:cut]))
def test_any_bytes_read_or_are_a_tool_error(raw: bytes) -> None:
    reads_or_tool_error(raw)

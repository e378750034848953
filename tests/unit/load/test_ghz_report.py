"""ghz's report read in one streaming pass (load/ghz_report.py) agrees with json.load on real and hostile reports."""

from __future__ import annotations

import json
import math

import pytest
from support.runq import run_load

from perfgate.errors import ToolError
from perfgate.load.ghz_report import read_report

HOSTILE_ERROR = 'boom },{"latency":7,"error":"","status":"OK"}]}, "details":[ \\ "'


def ok_latencies(report: dict) -> list[int]:
    return [d["latency"] for d in report["details"] or [] if d["status"] == "OK" and not d["error"]]


def nearest_rank(sorted_values: list[int], percent: int) -> int:
    return sorted_values[max(math.ceil(percent / 100 * len(sorted_values)) - 1, 0)]


def write(tmp_path, report: dict, name: str = "report.json") -> object:
    path = tmp_path / name
    path.write_text(json.dumps(report, separators=(",", ":")), encoding="utf-8")
    return path


def detail(latency: int, status: str = "OK", error: str = "") -> dict:
    return {"timestamp": "2026-11-30T06:07:30.97490751Z", "latency": latency, "error": error, "status": status}


def small_report(details: list[dict]) -> dict:
    ok = sum(d["status"] == "OK" for d in details)
    statuses = {"OK": ok} if ok else {}
    if len(details) > ok:
        statuses["Unavailable"] = len(details) - ok
    return {"date": "2026-11-30T06:07:30Z", "endReason": "timeout",
            "options": {"call": "greeter.Greeter/SayHello", "data": {"details": [{"latency": 1}], "ü": "é"},
                        "metadata": {"details": "x"}},
            "count": len(details), "total": 1_000_000_000, "average": 5, "fastest": 1, "slowest": 9, "rps": 9.5,
            "errorDistribution": {HOSTILE_ERROR: len(details) - ok} if len(details) > ok else {},
            "statusCodeDistribution": statuses, "latencyDistribution": None, "histogram": None,
            "details": details, "tags": {"latency": "1"}}


def test_a_real_report_reads_as_json_load_reads_it(greeter, tmp_path):
    report = run_load(greeter.address, seconds=1.0, rps=400)
    path = write(tmp_path, report)
    read = read_report(path)
    assert read.ok_latencies_ns.tolist() == ok_latencies(report) and len(read.ok_latencies_ns) > 20
    assert read.summary == {key: value for key, value in report.items() if key != "details"}
    ordered = sorted(read.ok_latencies_ns.tolist())
    for entry in report["latencyDistribution"]:  # ghz's own nearest-rank percentiles over the OK calls;
        # ghz passes them through float seconds (runner/reporter.go), which can cut a nanosecond off
        assert 0 <= nearest_rank(ordered, entry["percentage"]) - entry["latency"] <= 1


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 101, 4096])
def test_hostile_error_text_and_every_chunk_boundary(tmp_path, chunk_bytes):
    details = [detail(1000 + i) if i % 3 else detail(999_000 + i, "Unknown", HOSTILE_ERROR) for i in range(40)]
    report = small_report(details)
    read = read_report(write(tmp_path, report), chunk_bytes=chunk_bytes)
    assert read.ok_latencies_ns.tolist() == ok_latencies(report)
    assert read.summary["options"]["data"]["ü"] == "é" and read.summary["count"] == 40


def test_pretty_printed_and_reordered_reports(tmp_path):
    report = small_report([detail(5), detail(6)])
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(report, indent=2), encoding="utf-8")  # ghz -O pretty
    assert read_report(pretty).ok_latencies_ns.tolist() == [5, 6]  # by the slow path
    details_first = {"details": report["details"], **{k: v for k, v in report.items() if k != "details"}}
    assert read_report(write(tmp_path, details_first)).ok_latencies_ns.tolist() == [5, 6]


def test_no_calls_means_null_details(tmp_path):
    report = small_report([])
    report["details"] = None
    read = read_report(write(tmp_path, report))
    assert read.ok_latencies_ns.tolist() == [] and read.summary["count"] == 0


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda text: text[: len(text) // 3], "not valid JSON"),
    (lambda text: text[: len(text) - 40], "not valid JSON"),
    (lambda text: text.replace('"count":3', '"count":3,,'), "not valid JSON"),
    (lambda text: text.replace('"OK":3', '"OK":4'), "details hold 3 OK calls but its summary counts 4"),
    (lambda text: "[]", "expected '{'"),
])
def test_broken_reports_are_tool_errors_that_say_why(tmp_path, mangle, message):
    path = write(tmp_path, small_report([detail(1), detail(2), detail(3)]))
    path.write_text(mangle(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ToolError, match=message):
        read_report(path)
    with pytest.raises(ToolError, match="no report"):
        read_report(tmp_path / "missing.json")

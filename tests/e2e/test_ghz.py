"""The load stage against the real ghz and the real example service."""

from __future__ import annotations

import json

import pytest
from support.greeter import CALL, DATA, free_port
from support.paths import GHZ

from perfgate.config import load_config
from perfgate.errors import ToolError
from perfgate.load.ghz import build_argv, parse_report, parse_report_file, run_ghz
from perfgate.load.latencies import load_latencies
from perfgate.load.sample import LoadWindow

WINDOW = LoadWindow(duration_s=1.0, total=None, concurrency=2, connections=1, rps=0, request_timeout_s=5,
                    max_run_s=30)


def target_for(address: str, **extra: str):
    pairs = [f"target.address={address}", f"target.call={CALL}", f"target.data={json.dumps(DATA)}"]
    pairs += [f"{k}={v}" for k, v in extra.items()]
    return load_config(None, environ={}, set_args=pairs).target


def test_argv_is_a_list_with_no_shell(tmp_path):
    target = target_for("127.0.0.1:1", **{"target.metadata": '{"x-user": "a b; rm -rf /"}'})
    argv = build_argv("ghz", target, WINDOW, tmp_path / "r.json", name="rep")
    assert argv[0] == "ghz" and argv[-1] == "127.0.0.1:1"
    assert "--insecure" in argv and argv[argv.index("--duration") + 1] == "1000ms"
    assert json.loads(argv[argv.index("--metadata") + 1]) == {"x-user": "a b; rm -rf /"}


def test_real_report_parses_into_nanosecond_fields(greeter, tmp_path):
    out = tmp_path / "rep.json"
    sample = run_ghz(str(GHZ), target_for(greeter.address), WINDOW, out, name="rep",
                     latencies_to=tmp_path / "rep.latency.npy")
    raw = json.loads(out.read_text())
    stored = load_latencies(tmp_path / "rep.latency.npy")  # read from the same single pass over the report
    assert stored.tolist() == sorted(d["latency"] for d in raw["details"] if d["status"] == "OK")
    assert sample.count == raw["count"] > 0
    assert sample.ok_count == raw["statusCodeDistribution"]["OK"] == sample.count
    assert sample.error_rate == 0.0
    by_pct = {d["percentage"]: d["latency"] for d in raw["latencyDistribution"]}
    assert (sample.p50_ns, sample.p95_ns, sample.p99_ns) == (by_pct[50], by_pct[95], by_pct[99])
    assert 0 < sample.fastest_ns <= sample.p50_ns <= sample.p95_ns <= sample.p99_ns <= sample.slowest_ns
    assert sample.total_ns == raw["total"] and isinstance(sample.total_ns, int)
    assert sample.rps == pytest.approx(raw["rps"])
    assert parse_report_file(out) == sample


def test_unreachable_target_says_so_plainly(tmp_path):
    """With --proto, ghz exits 0 although every call fails; perfgate must notice."""
    from perfgate.load.ghz import health_proto

    address = f"127.0.0.1:{free_port()}"
    target = target_for(address, **{"target.proto": str(health_proto()), "target.call": "grpc.health.v1.Health/Check",
                                    "target.data": "{}"})
    total = LoadWindow(duration_s=None, total=20, concurrency=2, connections=1, rps=0, request_timeout_s=1,
                       max_run_s=20)
    with pytest.raises(ToolError) as caught:
        run_ghz(str(GHZ), target, total, tmp_path / "r.json", name="rep")
    assert f"target {address} unreachable: 100% of 20 calls Unavailable" in caught.value.message


def test_reflection_against_nothing_is_a_tool_error(tmp_path):
    with pytest.raises(ToolError, match="ghz failed against"):
        run_ghz(str(GHZ), target_for(f"127.0.0.1:{free_port()}"), WINDOW, tmp_path / "r.json", name="rep")


def test_partial_errors_are_counted_not_fatal():
    report = {"count": 10, "total": 10**9, "rps": 10.0, "statusCodeDistribution": {"OK": 7, "Unavailable": 3},
              "errorDistribution": {"rpc error: code = Unavailable desc = x": 3},
              "latencyDistribution": [{"percentage": 50, "latency": 1000}, {"percentage": 0, "latency": 0}]}
    sample = parse_report(report)
    assert sample.ok_count == 7 and sample.error_rate == pytest.approx(0.3)
    assert sample.p50_ns == 1000 and sample.p99_ns is None


@pytest.mark.parametrize("bad", [{"count": -1, "total": 1, "rps": 1}, {"total": 1, "rps": 1}, {"count": "x"}])
def test_malformed_report_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_report_file(path)

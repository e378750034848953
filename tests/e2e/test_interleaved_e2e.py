"""Interleaved mode with both builds kept up on their own ports: `alternate` takes turns with the load in
A B B A order, `duet` loads both at once; either way the gate compares the records as pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.greeter import base_config, free_port, greeter_argv, write_config

from perfgate.cli import main
from perfgate.errors import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_REGRESSION

pytestmark = pytest.mark.slow

# main.checksumPayload carries ~10 % of the service's CPU at a fixed moderate rate: tripling its work is
# about +20 % CPU per request, far beyond the 5 % rule below even on a busy runner.
KNOB_PCT = "200"


def interleaved_config(tmp: Path, *, schedule: str, knob_pct: str, pairs: int, profiles: bool) -> dict:
    (head, head_pprof), (base, base_pprof) = (free_port(), free_port()), (free_port(), free_port())
    knob = ["-regress-function", "checksumPayload", "-regress-cpu-pct"]
    compare = {"mode": "interleaved", "schedule": schedule, "baseline_address": f"127.0.0.1:{base}",
               "baseline_service": {"command": greeter_argv(base, base_pprof, *knob, "0")}}
    if profiles:
        compare["baseline_pprof_url"] = f"http://127.0.0.1:{base_pprof}"
    return base_config(
        f"127.0.0.1:{head}", pprof_url=f"http://127.0.0.1:{head_pprof}" if profiles else None,
        service={"command": greeter_argv(head, head_pprof, *knob, knob_pct)},
        load={"duration_s": 1.5, "warmup_s": 0.5, "repetitions": pairs, "rps": 800},
        kernel={"enabled": True}, compare=compare,
        gates=[{"metric": "cpu_per_request", "max_increase_pct": 5}], report={"plots": False},
        output=str(tmp / "out"))


def run(tmp: Path, config: dict) -> tuple[int, dict, dict, dict]:
    code = main(["run", "--config", str(write_config(tmp, config))])
    out = tmp / "out"
    records = [json.loads((out / side / "record.json").read_text()) for side in ("baseline", "candidate")]
    return code, json.loads((out / "verdict.json").read_text()), *records


def starts(folder: Path) -> int:
    return (folder / "service.log").read_text().count("greeter: serving")


def test_duet_loads_both_builds_at_once_and_fails_a_regression_as_pairs(tmp_path):
    config = interleaved_config(tmp_path, schedule="duet", knob_pct=KNOB_PCT, pairs=6, profiles=True)
    code, verdict, baseline, candidate = run(tmp_path, config)

    assert code == EXIT_REGRESSION, verdict["headline"]
    cpu_rule = next(rule for rule in verdict["rules"] if rule["metric"] == "cpu_per_request")
    assert cpu_rule["outcome"] == "FAIL"
    assert cpu_rule["comparison"]["p_method"].startswith("wilcoxon")
    assert "main.checksumPayload" in [riser["function"] for riser in verdict["cpu"]["risers"]]
    assert baseline["load_settings"]["pairing_id"] == candidate["load_settings"]["pairing_id"]
    assert baseline["load_settings"]["schedule"] == "duet"
    for base_rep, cand_rep in zip(baseline["repetitions"], candidate["repetitions"], strict=True):
        # the two load windows of a pair overlap: each started before the other ended
        assert base_rep["started_at"] < cand_rep["ended_at"] and cand_rep["started_at"] < base_rep["ended_at"]
        # one kernel collector watched the shared window; each record folder keeps its own copy
        assert base_rep["runq"]["file"] == cand_rep["runq"]["file"]
    out = tmp_path / "out"
    for side in ("baseline", "candidate"):
        assert starts(out / side) == 1
        for rep in json.loads((out / side / "record.json").read_text())["repetitions"]:
            if rep["runq"]["file"]:
                assert (out / side / rep["runq"]["file"]).is_file()


def test_alternate_keeps_both_builds_up_and_takes_turns_in_abba_order(tmp_path):
    config = interleaved_config(tmp_path, schedule="alternate", knob_pct="0", pairs=4, profiles=False)
    config["kernel"] = {"enabled": False}
    # Two processes of one binary can differ by ~5 % in CPU per request (CI saw +5.6 %, every window of one
    # above every window of the other: p = 1/70 at 4 against 4). This test is about the schedule, so the rule
    # asks a change no such difference reaches.
    config["gates"] = [{"metric": "cpu_per_request", "max_increase_pct": 25}]
    code, verdict, baseline, candidate = run(tmp_path, config)

    assert code in (EXIT_PASS, EXIT_INCONCLUSIVE), verdict["headline"]  # A/A never FAILs; 4 pairs are too few
    assert baseline["load_settings"]["schedule"] == "alternate"
    windows = sorted([(rep["started_at"], "A") for rep in baseline["repetitions"]]
                     + [(rep["started_at"], "B") for rep in candidate["repetitions"]])
    assert "".join(side for _, side in windows) == "ABBAABBA"
    assert starts(tmp_path / "out" / "baseline") == 1 and starts(tmp_path / "out" / "candidate") == 1
    assert all(rep["service_cpu_ns"] > 0 for rep in baseline["repetitions"] + candidate["repetitions"])

"""The capacity metric (paired capacity probes of a duet) and verdict.setup (which mode produced a verdict), on
records built in memory."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from perfgate.compare.inputs import load_inputs
from perfgate.config import DEFAULT_GATES, load_config
from perfgate.gate import decide
from perfgate.load.sample import LoadSample
from perfgate.record import Environment, RunRecord
from perfgate.record_parts import CapacityProbe, CpuCapture, Repetition, RunqCapture
from perfgate.report.markdown import render_markdown
from perfgate.verdict import Verdict

ENV = Environment(kernel="6.1", cpu_model="cpu", nproc=2, os="Debian", python="3.11", ghz_version="v0.121.0")
DUET = {"pairing_id": "interleaved t", "schedule": "duet", "rps": 250, "rps_source": "automatic",
        "rate_fraction": 0.25, "capacity_rps_at_start": {"baseline": 1010.0, "candidate": 1000.0}}


def sample(ok: int, seconds: float = 1.0) -> LoadSample:
    return LoadSample(count=ok, ok_count=ok, rps=ok / seconds, total_ns=int(seconds * 1e9), average_ns=10**6,
                      fastest_ns=10**5, slowest_ns=10**7, p50_ns=10**6, p90_ns=2 * 10**6, p95_ns=3 * 10**6,
                      p99_ns=4 * 10**6, status_counts=MappingProxyType({"OK": ok}),
                      error_counts=MappingProxyType({}), end_reason="timeout")


def record(role: str, capacities: list[float], settings: dict, *, build: dict | None = None) -> RunRecord:
    reps = tuple(Repetition(index=i, started_at="t", ended_at="t", load=sample(1250, 5.0), load_file=None,
                            cpu=CpuCapture(status="disabled"), runq=RunqCapture(status="disabled"))
                 for i in range(1, len(capacities) + 1))
    probes = tuple(CapacityProbe(index=i, phase="rate" if i <= 2 else "pair", started_at="t", ended_at="t",
                                 load=sample(int(c)), load_file=f"load/capacity-{i:02d}.json")
                   for i, c in enumerate([1000.0, 1000.0, *capacities], 1))
    load_settings = {**settings, **({"build": build} if build else {})}
    return RunRecord(role=role, created_at="t", config_digest="d", target={}, load_settings=load_settings,
                     environment=ENV, repetitions=reps, complete=True, capacity_probes=probes)


def gate(base: RunRecord, cand: RunRecord, gates: list[dict] | None = None, source: str | None = None) -> Verdict:
    settings = [f"gates={gates}"] if gates is not None else []
    config = load_config(None, environ={}, set_args=settings, require_target=False)
    return decide(load_inputs(base, cand, baseline_source=source), config, created_at="now")


BASE = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0, 1008.0, 992.0]


def test_capacity_is_a_default_rule_that_warns():
    assert any(rule.metric == "capacity" and rule.max_decrease_pct == 10 and rule.severity == "warn"
               for rule in DEFAULT_GATES)


def test_a_capacity_drop_beyond_the_limit_fails_as_pairs():
    verdict = gate(record("baseline", BASE, DUET), record("candidate", [v * 0.8 for v in BASE], DUET),
                   [{"metric": "capacity", "max_decrease_pct": 10}])
    rule = verdict.rules[0]
    assert rule.outcome == "FAIL", rule.reason
    assert rule.comparison.p_method.startswith("wilcoxon")
    assert any(m.name == "capacity" for m in verdict.metrics)


def test_the_same_capacity_passes_and_a_rise_is_no_regression():
    same = gate(record("baseline", BASE, DUET), record("candidate", list(reversed(BASE)), DUET),
                [{"metric": "capacity", "max_decrease_pct": 10}])
    faster = gate(record("baseline", BASE, DUET), record("candidate", [v * 1.3 for v in BASE], DUET),
                  [{"metric": "capacity", "max_decrease_pct": 10}])
    assert same.rules[0].outcome == "PASS" and faster.rules[0].outcome == "PASS"


def test_too_few_capacity_pairs_is_never_a_verdict():
    verdict = gate(record("baseline", BASE[:3], DUET), record("candidate", [v * 0.5 for v in BASE[:3]], DUET),
                   [{"metric": "capacity", "max_decrease_pct": 10}])
    assert verdict.rules[0].outcome == "INCONCLUSIVE", verdict.rules[0].reason


def test_without_capacity_probes_the_rule_is_skipped_saying_why():
    plain = {"pairing_id": "p", "schedule": "duet", "rps": 800}
    base = record("baseline", BASE, plain)
    base = RunRecord(**{**base.__dict__, "capacity_probes": ()})
    cand = RunRecord(**{**record("candidate", BASE, plain).__dict__, "capacity_probes": ()})
    verdict = gate(base, cand, [{"metric": "capacity", "max_decrease_pct": 10}])
    assert verdict.rules[0].outcome == "SKIP" and "duet with an automatic rate" in verdict.rules[0].reason


@pytest.mark.parametrize(("base_settings", "cand_settings", "build", "source", "mode"), [
    (DUET, DUET, True, None, "built A/B duet"),
    (DUET, DUET, False, None, "hand-configured duet"),
    ({"pairing_id": "p", "schedule": "alternate"}, {"pairing_id": "p", "schedule": "alternate"}, False, None,
     "interleaved, alternating"),
    ({}, {}, False, "artifact", "baseline artifact"),
    ({}, {}, False, "path", "baseline record"),
    ({}, {}, False, "records", "saved records"),
])
def test_the_verdict_and_the_report_say_which_mode_produced_them(base_settings, cand_settings, build, source, mode):
    base = record("baseline", BASE, base_settings,
                  build={"side": "base", "ref": "main", "commit": "a" * 40} if build else None)
    cand = record("candidate", BASE, cand_settings,
                  build={"side": "head", "ref": None, "commit": "b" * 40} if build else None)
    verdict = gate(base, cand, source=source)
    assert verdict.setup.mode == mode
    report = render_markdown(verdict)
    assert "How it was measured" in report and mode in report
    if cand_settings.get("rps_source") == "automatic":
        assert verdict.setup.rps == 250 and "found automatically: 0.25 × the smaller capacity" in report
    if build:
        assert "main at aaaaaaaaaaaa" in verdict.setup.description
        assert "the working tree at bbbbbbbbbbbb" in verdict.setup.description


def test_setup_survives_the_verdict_json_round_trip(tmp_path):
    verdict = gate(record("baseline", BASE, DUET), record("candidate", BASE, DUET))
    verdict.save(tmp_path)
    assert Verdict.load(tmp_path).setup == verdict.setup

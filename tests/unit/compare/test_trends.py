"""Trends (compare/trends.py): headline metrics over the base branch's last baselines and the candidate, in the
verdict (saved and read back) and drawn as the report's trends.png."""

from __future__ import annotations

import statistics
from dataclasses import replace

from support.records import ENV, record

from perfgate.compare.inputs import load_inputs
from perfgate.config import load_config
from perfgate.gate import decide
from perfgate.report.plots import write_plots
from perfgate.verdict import Verdict

CPU_RULE = [{"metric": "cpu_per_request", "max_increase_pct": 3}]


def side(role: str, level: float, *, created_at: str, digest: str = "d", sha: str | None = None):
    """A record whose p95 is `level` ms and CPU per request `level` * 10 µs, with a little spread."""
    spread = [0.99, 1.0, 1.01, 1.02]
    made = record(role, [level * s for s in spread], cpu_us=[10 * level * s for s in spread],
                  env=replace(ENV, git_sha=sha))
    return replace(made, created_at=created_at, config_digest=digest)


def gate(baseline, candidate, history=()) -> Verdict:
    config = load_config(None, environ={}, set_args=[f"gates={CPU_RULE}"], require_target=False)
    return decide(load_inputs(baseline, candidate, tuple(history)), config, created_at="now")


def test_each_headline_metric_over_the_baselines_oldest_first_then_the_candidate():
    history = [side("baseline", 12.0, created_at="2026-01-03", sha="c" * 40),
               side("baseline", 10.0, created_at="2026-01-01", sha="a" * 40),
               side("baseline", 11.0, created_at="2026-01-02")]
    verdict = gate(side("baseline", 13.0, created_at="2026-01-04", sha="d" * 40),
                   side("candidate", 20.0, created_at="2026-01-05", sha="e" * 40), history)
    trends = {trend.metric: trend for trend in verdict.trends}
    assert list(trends) == ["latency.p95", "cpu_per_request"]  # no allocation profiles in these records
    p95 = trends["latency.p95"]
    assert p95.unit == "ms" and [p.role for p in p95.points] == ["history"] * 3 + ["baseline", "candidate"]
    assert [p.label for p in p95.points] == ["aaaaaaa", "2026-01-02", "ccccccc", "ddddddd", "eeeeeee"]
    medians = [statistics.median([level * s for s in (0.99, 1.0, 1.01, 1.02)]) for level in (10, 11, 12, 13, 20)]
    assert all(abs(p.value - m) < 1e-5 for p, m in zip(p95.points, medians, strict=True))  # ns in the record
    cpu = trends["cpu_per_request"]
    assert cpu.unit == "µs" and abs(cpu.points[-1].value - 10 * medians[-1]) < 1e-6


def test_history_measured_otherwise_is_left_out_and_without_history_there_is_no_trend():
    other = side("baseline", 50.0, created_at="2026-01-01", digest="other settings")
    base, cand = side("baseline", 13.0, created_at="2026-01-04"), side("candidate", 13.0, created_at="2026-01-05")
    assert gate(base, cand, [other]).trends == ()  # the only earlier baseline was measured with other settings
    assert gate(base, cand).trends == ()
    kept = gate(base, cand, [other, side("baseline", 12.0, created_at="2026-01-02")]).trends[0]
    assert [p.created_at for p in kept.points] == ["2026-01-02", "2026-01-04", "2026-01-05"]


def test_trends_survive_verdict_json_and_are_drawn(tmp_path):
    history = [side("baseline", 10.0 + i, created_at=f"2026-01-0{i + 1}") for i in range(3)]
    verdict = gate(side("baseline", 13.0, created_at="2026-01-04"),
                   side("candidate", 14.0, created_at="2026-01-05"), history)
    assert Verdict.load(verdict.save(tmp_path / "verdict")).trends == verdict.trends
    plots = write_plots(verdict, tmp_path / "plots")
    assert plots["trends"].read_bytes().startswith(b"\x89PNG")
    without = write_plots(gate(history[0], history[1]), tmp_path / "none")
    assert "trends" not in without
    assert without.skipped["trends"].startswith("no earlier baselines measured like this one")

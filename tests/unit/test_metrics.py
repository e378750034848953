"""The metric registry (metrics.py) is the one place that defines a metric: what reads it agrees with it."""

from __future__ import annotations

import yaml
from support.paths import ROOT
from support.records import record

from perfgate import config, metrics
from perfgate.compare.inputs import side_inputs
from perfgate.config import load_config
from perfgate.metrics import METRICS, GateRule, metric_values
from perfgate.report.pushgateway import EXPORTED_METRICS

ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))


def test_action_yml_declares_exactly_the_registry_outputs():
    declared = {name for name in ACTION["outputs"] if name.endswith("-change-pct")}
    assert declared == set(metrics.outputs())
    for name in metrics.outputs():
        assert ACTION["outputs"][name]["value"] == f"${{{{ steps.perfgate.outputs.{name} }}}}"


def test_config_accepts_a_rule_on_every_metric_with_its_keys_and_no_other():
    assert config.RULE_KEYS == {m.name: m.rule_keys for m in METRICS}
    for entry in METRICS:
        threshold = metrics.rule_thresholds(entry.name)[0]
        rule = {"metric": entry.name, threshold: 1, **({"pattern": "main.*"} if "pattern" in entry.rule_keys else {})}
        gates = load_config(None, environ={}, set_args=[f"gates=[{rule}]"], require_target=False).gates
        assert gates[0].metric == entry.name


def test_every_metric_is_named_once_and_exported_names_are_unique():
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    exported = [m.pushgateway for m in METRICS if m.pushgateway]
    assert len(exported) == len(set(exported)) and set(EXPORTED_METRICS) == {m.name for m in METRICS if m.pushgateway}


def test_extractors_read_one_value_per_finished_repetition():
    side = side_inputs(record("baseline", [10.0, 12.0, 11.0], rps=500.0, errors=10, cpu_us=[200.0, 210.0, 205.0]))
    assert metric_values(side, GateRule("latency.p95")) == (10.0, 12.0, 11.0)
    assert metric_values(side, GateRule("rps")) == (495.0, 495.0, 495.0)  # OK calls: 990 of 1000 in 2 s
    assert metric_values(side, GateRule("error_rate")) == (0.01, 0.01, 0.01)
    assert metric_values(side, GateRule("cpu_per_request")) == (200.0, 210.0, 205.0)
    assert "no CPU profiles" in metric_values(side, GateRule("function_share", pattern="main.*"))

"""Every key of perfgate.yml with its default and checker (SCHEMA), and the `gates:` rules on the metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perfgate.build.plan import DEFAULT_BUILD_TIMEOUT_S
from perfgate.config.checks import (
    Field,
    boolean,
    choice_list,
    command,
    describe,
    did_you_mean,
    integer,
    number,
    pid_list,
    request_data,
    string_list,
    string_map,
    text,
)
from perfgate.config.model import (
    LAYER_NAMES,
    MAX_CONCURRENCY,
    MAX_HISTORY_RUNS,
    MAX_REPETITIONS,
    MAX_RPS,
    MAX_SECONDS,
    MAX_TOTAL_CALLS,
    REQUIRED,
)
from perfgate.load.generator import GENERATORS
from perfgate.metrics import METRICS, GateRule, rule_thresholds
from perfgate.patterns import compile_function_pattern


def _service_schema(command_default: Any) -> dict[str, Any]:
    return {
        "command": Field(command_default, command()),
        "env": Field(None, string_map()),
        "pass_env": Field(None, string_list()),
        "cwd": Field(None, text(optional=True)),
        "ready": Field("grpc_health", text(choices=("grpc_health", "port", "none"))),
        "start_timeout_s": Field(30.0, number(0, maximum=MAX_SECONDS, exclusive_min=True)),
    }


SCHEMA: dict[str, Any] = {
    "target": {
        "address": Field(None, text(optional=True)),  # required unless service.command uses {address}
        "call": Field(REQUIRED, text()),
        "proto": Field(None, text(optional=True)),
        "import_paths": Field(None, string_list()),
        "data": Field(None, request_data()),
        "metadata": Field(None, string_map()),
        "insecure": Field(True, boolean()),
        "tls": {
            "cacert": Field(None, text(optional=True)),
            "cert": Field(None, text(optional=True)),
            "key": Field(None, text(optional=True)),
            "server_name": Field(None, text(optional=True)),
            "skip_verify": Field(False, boolean()),
        },
    },
    "load": {
        "generator": Field("ghz", text(choices=tuple(GENERATORS))),
        "concurrency": Field(8, integer(1, maximum=MAX_CONCURRENCY)),
        "connections": Field(1, integer(1, maximum=MAX_CONCURRENCY)),
        "duration_s": Field(None, number(0, maximum=MAX_SECONDS, exclusive_min=True, optional=True)),
        "total": Field(None, integer(1, maximum=MAX_TOTAL_CALLS, optional=True)),
        "rps": Field(0, integer(0, maximum=MAX_RPS)),
        "warmup_s": Field(2.0, number(0, maximum=MAX_SECONDS)),
        "repetitions": Field(5, integer(1, maximum=MAX_REPETITIONS)),
        "request_timeout_s": Field(20.0, number(0, maximum=MAX_SECONDS, exclusive_min=True)),
        "max_run_s": Field(600.0, number(0, maximum=MAX_SECONDS, exclusive_min=True)),
    },
    "service": {
        **_service_schema(None),
        "build": Field(None, command()),
        "build_env": Field(None, string_map()),
        "build_timeout_s": Field(DEFAULT_BUILD_TIMEOUT_S, number(0, maximum=2 * MAX_SECONDS, exclusive_min=True)),
    },
    "cpu": {
        "enabled": Field(True, boolean()),
        "pprof_url": Field(None, text(optional=True)),
        "required": Field(False, boolean()),
        "start_offset_s": Field(None, number(0, maximum=MAX_SECONDS, optional=True)),
    },
    "layers": {
        "enabled": Field(LAYER_NAMES, choice_list(LAYER_NAMES)),
        "required": Field((), choice_list(LAYER_NAMES)),
    },
    "kernel": {
        "enabled": Field(True, boolean()),
        "required": Field(False, boolean()),
        "service_comm": Field(None, text(optional=True)),
        "service_pids": Field(None, pid_list()),
        "depth_interval_ms": Field(100, integer(10, maximum=60_000)),
    },
    "compare": {
        "mode": Field("baseline", text(choices=("baseline", "interleaved"))),
        "alpha": Field(0.05, number(0, maximum=0.49, exclusive_min=True)),
        "correction": Field("holm", text(choices=("holm", "bh", "none"))),
        "fail_on_inconclusive": Field(False, boolean()),
        "environment_keys": Field(["cpu_model", "nproc", "kernel"], string_list()),
        "contention": {
            "max_runq_p99_ratio": Field(3.0, number(1)),
            "max_runq_p99_us": Field(None, number(0, exclusive_min=True, optional=True)),
            "max_steal_pct": Field(5.0, number(0, maximum=100, exclusive_min=True)),
            "max_others_pct": Field(20.0, number(0, maximum=100, exclusive_min=True)),
            "min_wait_us": Field(200.0, number(0)),
            "max_throttled_pct": Field(5.0, number(0, maximum=100, exclusive_min=True)),
            "max_wait_ratio": Field(3.0, number(1)),
        },
        "baseline_service": _service_schema(None),
        "baseline_address": Field(None, text(optional=True)),
        "baseline_pprof_url": Field(None, text(optional=True)),
        "schedule": Field("alternate", text(choices=("alternate", "duet"))),
        "run_noise_pct": Field(None, number(0, maximum=100, optional=True)),
    },
    "baseline": {
        "path": Field(None, text(optional=True)),
        "missing": Field("error", text(choices=("error", "pass"))),
        "artifact": Field("perfgate-baseline", text()),
        "branch": Field(None, text(optional=True)),
        "workflow": Field(None, text(optional=True)),
        "history": Field([], string_list()),
        "history_runs": Field(5, integer(0, maximum=MAX_HISTORY_RUNS)),
    },
    "gates": Field(None, lambda value: (value, None)),  # validated by _check_gates
    "report": {
        "comment": Field("auto", text(choices=("auto", "always", "never"))),
        "plots": Field(True, boolean()),
        "title": Field("perfgate", text()),
        "pushgateway": {
            "url": Field(None, text(optional=True)),
            "job": Field("perfgate", text()),
            "instance": Field(None, text(optional=True)),
        },
    },
    "output": Field("perfgate-out", text()),
}

# ---------------------------------------------------------------- gate rules
RULE_KEYS: dict[str, tuple[str, ...]] = {m.name: m.rule_keys for m in METRICS}  # metric -> keys a rule may set
RULE_CHECKS: dict[str, Callable] = {
    "severity": text(choices=("fail", "warn")),
    "max_increase_pct": number(0), "max_decrease_pct": number(0, maximum=100),
    "max_increase_abs": number(0), "max_value": number(0), "min_value": number(0),
    "pattern": text(), "kind": text(choices=("flat", "cum")), "max_share_pct": number(0, maximum=100),
    "max_share_increase_pp": number(0, maximum=100), "scope": text(choices=("service", "machine")),
    "max_depth": integer(1), "consecutive": integer(1), "run_noise_pct": number(0, maximum=100),
}
DEFAULT_GATES: tuple[GateRule, ...] = (
    GateRule("latency.p95", max_increase_pct=10.0),
    GateRule("latency.p99", severity="warn", max_increase_pct=20.0),
    GateRule("rps", max_decrease_pct=10.0),
    # capacity probes run one build at a time, so a neighbour's noise is not shared by the pair: on a busy runner
    # their spread would make a fail-level rule INCONCLUSIVE in many unchanged PRs (docs/statistics.md); it warns
    GateRule("capacity", severity="warn", max_decrease_pct=10.0),
    GateRule("error_rate", max_value=0.01),
    GateRule("cpu_per_request", max_increase_pct=10.0),
    GateRule("runq.depth", severity="warn", max_depth=5, consecutive=3),
)


def check_gates(value: Any, problems: list[str]) -> tuple[GateRule, ...]:
    if value is None:
        return DEFAULT_GATES
    if not isinstance(value, list):
        problems.append(f"gates: expected a list of rules, got {describe(value)}")
        return ()
    return tuple(rule for i, raw in enumerate(value) if (rule := _check_rule(f"gates[{i}]", raw, problems)))


def _check_rule(path: str, raw: Any, problems: list[str]) -> GateRule | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping with a `metric` key, got {describe(raw)}")
        return None
    metric = raw.get("metric")
    if not isinstance(metric, str) or metric not in RULE_KEYS:
        problems.append(f"{path}.metric: expected one of {', '.join(RULE_KEYS)}, got {describe(metric)}"
                        + did_you_mean(metric, RULE_KEYS))
        return None
    allowed = ("metric", "severity", *RULE_KEYS[metric])
    fields: dict[str, Any] = {"metric": metric}
    for key, value in raw.items():
        if key == "metric":
            continue
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown key for metric {metric} (allowed: "
                            f"{', '.join(allowed[1:])}){did_you_mean(key, allowed)}")
            continue
        checked, problem = RULE_CHECKS[key](value)
        if problem:
            problems.append(f"{path}.{key}: {problem}")
        fields[key] = checked
    thresholds = rule_thresholds(metric)
    if not any(fields.get(k) is not None for k in thresholds):
        problems.append(f"{path}: rule for {metric} sets no threshold (set one of: {', '.join(thresholds)})")
    if metric == "function_share" and not fields.get("pattern"):
        problems.append(f"{path}.pattern: required for function_share (a glob like 'encoding/json.*' or 're:REGEX')")
    elif isinstance(fields.get("pattern"), str):
        try:
            compile_function_pattern(fields["pattern"])  # now, not after minutes of load
        except ValueError as error:
            problems.append(f"{path}.pattern: {error}")
    if metric == "runq.depth" and fields.get("max_depth") is not None:
        fields.setdefault("consecutive", 3)
    return GateRule(**fields)

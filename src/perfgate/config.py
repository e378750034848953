"""perfgate.yml -> one frozen Config.

Precedence, highest first: command line (`--set key=value`, dedicated flags) > environment
(`PERFGATE_SECTION__KEY=value`) > the YAML file > defaults. Validation walks the merged tree once
and reports every problem at once, each naming its key path (and where the value came from when it
was not the file), e.g. `load.concurrency: expected an integer >= 1, got "ten"`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from perfgate import placeholders
from perfgate.build.plan import DEFAULT_BUILD_TIMEOUT_S, command_problem
from perfgate.errors import ConfigError
from perfgate.files import FileRefused, read_capped
from perfgate.load.generator import GENERATORS
from perfgate.metrics import METRICS, GateRule, rule_thresholds
from perfgate.patterns import compile_function_pattern
from perfgate.plain import plain

DEFAULT_CONFIG_FILE = "perfgate.yml"
ENV_PREFIX = "PERFGATE_"
REQUIRED = object()
DEFAULT_DURATION_S = 5.0
MAX_SERVICE_PIDS = 8
# Upper bounds, checked before anything runs (docs/configuration.md): beyond them a value is a typo or an
# attempt to make the job run (or allocate) without end, not a measurement.
MAX_REPETITIONS = 1000
MAX_CONCURRENCY = 10_000
MAX_SECONDS = 3600.0  # one load window, warm-up, timeout or start-up; a whole run is bounded by the job
MAX_TOTAL_CALLS = 100_000_000
MAX_RPS = 1_000_000
MAX_HISTORY_RUNS = 20  # the baseline lookup scans at most 20 runs
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_VALUES = 100_000  # scalars, lists and mappings after YAML aliases are expanded


# ---------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class TlsConfig:
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    skip_verify: bool = False


@dataclass(frozen=True)
class TargetConfig:
    address: str  # "" until perfgate picks it, when service.command uses {address}
    call: str
    proto: str | None
    import_paths: tuple[str, ...]
    data_json: str | None
    metadata: Mapping[str, str]
    insecure: bool
    tls: TlsConfig
    address_picked: bool = False  # a free port perfgate chose: not part of what was measured (Config.digest)


@dataclass(frozen=True)
class LoadConfig:
    generator: str
    concurrency: int
    connections: int
    duration_s: float | None
    total: int | None
    rps: int
    warmup_s: float
    repetitions: int
    request_timeout_s: float
    max_run_s: float
    given: frozenset[str] = frozenset()  # the keys the user set (file, environment, --set): the rest are defaults


@dataclass(frozen=True)
class ServiceConfig:
    command: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str | None
    ready: str
    start_timeout_s: float
    pass_env: tuple[str, ...] = ()
    build: tuple[str, ...] = ()  # argv with {output}; only `service` has it (the base is built from the same command)
    build_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S

    def uses(self, placeholder: str) -> bool:
        return placeholders.uses(self.command, placeholder)


@dataclass(frozen=True)
class CpuConfig:
    enabled: bool
    pprof_url: str | None
    required: bool
    start_offset_s: float | None


LAYER_NAMES = ("allocs", "mutex", "block", "goroutines")  # the profiles below the CPU (capture/layers.py)


@dataclass(frozen=True)
class LayersConfig:
    """Which profiles below the CPU are captured from cpu.pprof_url, and which of them must be there."""

    enabled: tuple[str, ...] = LAYER_NAMES
    required: tuple[str, ...] = ()

    def captured(self, name: str) -> bool:
        """A required layer is captured even when `enabled` leaves it out."""
        return name in self.enabled or name in self.required


@dataclass(frozen=True)
class KernelConfig:
    enabled: bool
    required: bool
    service_comm: str | None
    service_pids: tuple[int, ...]
    depth_interval_ms: int


@dataclass(frozen=True)
class ContentionConfig:
    """When a load window counts as starved of CPU (docs/statistics.md "Contended runner")."""

    max_runq_p99_ratio: float
    max_runq_p99_us: float | None
    max_steal_pct: float = 5.0
    max_others_pct: float = 20.0
    min_wait_per_cpu: float = 0.25
    max_throttled_pct: float = 5.0
    max_wait_ratio: float = 3.0


@dataclass(frozen=True)
class CompareConfig:
    mode: str
    alpha: float
    correction: str
    fail_on_inconclusive: bool
    environment_keys: tuple[str, ...]
    contention: ContentionConfig
    baseline_service: ServiceConfig | None
    baseline_address: str | None = None
    baseline_pprof_url: str | None = None
    schedule: str = "alternate"
    run_noise_pct: float | None = None

    @property
    def concurrent_builds(self) -> bool:
        """Interleaved mode with the base build on its own address: both builds stay up for the whole run."""
        return self.mode == "interleaved" and self.baseline_address is not None


@dataclass(frozen=True)
class BaselineConfig:
    path: str | None
    missing: str
    artifact: str
    branch: str | None
    workflow: str | None
    history: tuple[str, ...] = ()
    history_runs: int = 5


@dataclass(frozen=True)
class PushgatewayConfig:
    url: str
    job: str
    instance: str | None


@dataclass(frozen=True)
class ReportConfig:
    comment: str
    plots: bool
    title: str
    pushgateway: PushgatewayConfig | None


@dataclass(frozen=True)
class Config:
    target: TargetConfig
    load: LoadConfig
    service: ServiceConfig | None
    cpu: CpuConfig
    kernel: KernelConfig
    compare: CompareConfig
    baseline: BaselineConfig
    gates: tuple[GateRule, ...]
    report: ReportConfig
    output: str
    layers: LayersConfig = LayersConfig()
    source: str = field(default="defaults", compare=False)

    def digest(self) -> str:
        """A stable fingerprint of what was measured and how (not of where results go)."""
        target = plain(self.target)
        if self.target.address_picked:
            target["address"] = placeholders.ADDRESS
        load = plain(self.load)
        load.pop("given")  # which keys were typed does not change what was measured
        if load["generator"] == "ghz":  # digests from before load.generator existed stay the same
            load.pop("generator")
        essentials = {"target": target, "load": load}
        text = json.dumps(essentials, sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- schema
@dataclass(frozen=True)
class Field:
    """A leaf key: its default and a checker returning (value, problem or None)."""

    default: Any
    check: Callable[[Any], tuple[Any, str | None]]


def with_schema(check: Callable, schema: dict[str, Any], *, optional: bool = False) -> Callable:
    """Attach the JSON Schema of what `check` accepts: schema/perfgate.schema.json is generated from these
    (perfgate.config_schema; `make generate`). Every checker needs one."""
    if optional:
        schema = {"anyOf": [schema, {"type": "null"}]}
    check.json_schema = schema  # type: ignore[attr-defined]
    return check


def _describe(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value) if value is not None else "null"
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(value: int | float) -> bool:
    """NaN and infinities (YAML's .nan, .inf) are no thresholds; nor is an integer beyond a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def integer(minimum: int | None = None, *, maximum: int | None = None, optional: bool = False) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        low = "" if minimum is None else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        expected = f"expected an integer{low}{' and' if low and high else ''}{high}, got {_describe(value)}"
        if isinstance(value, bool) or not isinstance(value, int):
            return value, expected
        too_low = minimum is not None and value < minimum
        too_high = maximum is not None and value > maximum
        return value, expected if too_low or too_high else None

    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return with_schema(check, schema, optional=optional)


def number(minimum: float | None = None, *, maximum: float | None = None, optional: bool = False,
           exclusive_min: bool = False) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        low = "" if minimum is None else (f" > {minimum:g}" if exclusive_min else f" >= {minimum:g}")
        high = "" if maximum is None else f" <= {maximum:g}"
        expected = f"expected a finite number{low}{' and' if low and high else ''}{high}, got {_describe(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            return value, expected
        too_low = minimum is not None and (value <= minimum if exclusive_min else value < minimum)
        too_high = maximum is not None and value > maximum
        return (float(value), expected if too_low or too_high else None)

    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive_min else "minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return with_schema(check, schema, optional=optional)


def boolean() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, bool):
            return value, f"expected true or false, got {_describe(value)}"
        return value, None

    return with_schema(check, {"type": "boolean"})


def text(*, optional: bool = False, choices: tuple[str, ...] = ()) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        if choices and value not in choices:
            return value, f"expected one of {', '.join(choices)}, got {_describe(value)}"
        if not isinstance(value, str) or not value:
            return value, f"expected a non-empty string, got {_describe(value)}"
        return value, None

    return with_schema(check, {"enum": list(choices)} if choices else {"type": "string", "minLength": 1},
                       optional=optional)


def string_list() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return value, f"expected a list of strings, got {_describe(value)}"
        return tuple(value), None

    return with_schema(check, {"type": ["string", "array", "null"], "items": {"type": "string"}})


def choice_list(choices: tuple[str, ...]) -> Callable:
    """A list of names, each one of `choices` (a single name is a list of one); no repeats."""

    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return value, f"expected a list of names from {', '.join(choices)}, got {_describe(value)}"
        unknown = [v for v in value if v not in choices]
        if unknown:
            return value, (f"unknown name {_describe(unknown[0])} (expected names from {', '.join(choices)})"
                           + _did_you_mean(unknown[0], choices))
        return tuple(dict.fromkeys(value)), None

    return with_schema(check, {"anyOf": [{"enum": list(choices)}, {"type": "null"},
                                         {"type": "array", "items": {"enum": list(choices)}}]})


def command() -> Callable:
    """A command as an argv list, or a string split like a POSIX shell would (no shell runs it)."""

    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value)), None
            except ValueError as error:
                return value, f"cannot split the command: {error}"
        if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
            return tuple(str(v) for v in value), None
        if _unquoted_placeholder(value):
            return value, ("YAML read a placeholder such as {binary} as a mapping: quote the command, e.g. "
                           "command: \"{binary} -grpc-addr {address}\"")
        return value, f"expected a command (a string or a list of strings), got {_describe(value)}"

    return with_schema(check, {"type": ["string", "array", "null"], "minItems": 1,
                               "items": {"type": ["string", "number", "boolean"]}})


def _unquoted_placeholder(value: Any) -> bool:
    """`{binary}` unquoted in YAML is a mapping {"binary": None}, alone or as an item of an argv list."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, dict) and any(f"{{{key}}}" in (*placeholders.SERVICE_PLACEHOLDERS, placeholders.OUTPUT)
                                              for key in item) for item in items)


def string_map() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return MappingProxyType({}), None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return value, f"expected a mapping of names to strings, got {_describe(value)}"
        bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool)]
        if bad:
            return value, f"expected string values, got a nested value under {bad[0]!r}"
        return MappingProxyType({k: str(v) for k, v in value.items()}), None

    return with_schema(check, {"type": ["object", "null"],
                               "additionalProperties": {"type": ["string", "number", "boolean"]}})


def request_data() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return None, None
        if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            try:
                return json.dumps(value, sort_keys=True, allow_nan=False), None
            except ValueError:
                return value, "numbers in the request must be finite (no .nan or .inf)"
        return value, ("expected a mapping (one request message) or a non-empty list of mappings, "
                       f"got {_describe(value)}")

    return with_schema(check, {"type": ["object", "array", "null"], "minItems": 1, "items": {"type": "object"}})


def pid_list() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                  for v in value):
            return value, f"expected a list of process ids, got {_describe(value)}"
        if len(value) > MAX_SERVICE_PIDS:
            return value, (f"expected at most {MAX_SERVICE_PIDS} process ids (the kernel script's limit), "
                           f"got {len(value)}")
        return tuple(value), None

    return with_schema(check, {"type": ["array", "null"], "maxItems": MAX_SERVICE_PIDS,
                               "items": {"type": "integer", "minimum": 1}})


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
            "min_wait_per_cpu": Field(0.25, number(0)),
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


def _check_gates(value: Any, problems: list[str]) -> tuple[GateRule, ...]:
    if value is None:
        return DEFAULT_GATES
    if not isinstance(value, list):
        problems.append(f"gates: expected a list of rules, got {_describe(value)}")
        return ()
    return tuple(rule for i, raw in enumerate(value) if (rule := _check_rule(f"gates[{i}]", raw, problems)))


def _check_rule(path: str, raw: Any, problems: list[str]) -> GateRule | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a mapping with a `metric` key, got {_describe(raw)}")
        return None
    metric = raw.get("metric")
    if not isinstance(metric, str) or metric not in RULE_KEYS:
        problems.append(f"{path}.metric: expected one of {', '.join(RULE_KEYS)}, got {_describe(metric)}"
                        + _did_you_mean(metric, RULE_KEYS))
        return None
    allowed = ("metric", "severity", *RULE_KEYS[metric])
    fields: dict[str, Any] = {"metric": metric}
    for key, value in raw.items():
        if key == "metric":
            continue
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown key for metric {metric} (allowed: "
                            f"{', '.join(allowed[1:])}){_did_you_mean(key, allowed)}")
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


# ---------------------------------------------------------------- loading
def _did_you_mean(word: Any, candidates: Any) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = read_capped(path, MAX_CONFIG_BYTES, regular_only=False)  # `--config <(...)` works, a FIFO ends
    except FileNotFoundError as error:
        raise ConfigError(f"config file {path}: not found", hint="pass --config FILE or create perfgate.yml "
                          "(see examples/perfgate.yml)") from error
    except FileRefused as error:
        raise ConfigError(f"config file {path}: cannot be read: it {error}") from None
    try:
        data = safe_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path}: cannot be read: {error}") from None
    except ValueError as error:
        raise ConfigError(f"config file {path}: {error}".rstrip()) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections at the top level, "
                          f"got {type(data).__name__}")
    return data


def safe_yaml(text_: str) -> Any:
    """YAML with bounds: ValueError for invalid YAML, nesting deeper than the parser's stack, or a document
    whose aliases expand it to more than MAX_CONFIG_VALUES values (the "billion laughs")."""
    try:
        # libyaml's parser (PyYAML wheels ship it) refuses deep nesting at once; the pure-Python one takes
        # seconds over 100,000 brackets before its recursion gives up.
        data = yaml.load(text_, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise ValueError(f"invalid YAML: {error}") from None
    except RecursionError:
        raise ValueError("invalid YAML: nested too deeply") from None
    _check_expanded_size(data)
    return data


def _check_expanded_size(data: Any) -> None:
    """Count values as a reader of the tree meets them (an alias counts each time it is used); stop early."""
    stack, seen = [data], 0
    while stack:
        seen += 1
        if seen > MAX_CONFIG_VALUES:
            raise ValueError(f"the YAML expands to more than {MAX_CONFIG_VALUES} values (anchors and aliases "
                             "used over and over?); a perfgate configuration is far smaller")
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_scalar(raw: str) -> Any:
    """A value from the environment or `--set`: YAML scalar rules, so 8 is an int and true a bool."""
    try:
        return safe_yaml(raw) if raw.strip() else ""
    except ValueError:
        return raw


def overrides_from_env(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """PERFGATE_LOAD__CONCURRENCY=8 -> {"load.concurrency": (8, "PERFGATE_LOAD__CONCURRENCY")}."""
    found = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            path = ".".join(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
            found[path] = (parse_scalar(raw), name)
    return found


def overrides_from_cli(assignments: list[str], problems: list[str] | None = None) -> dict[str, tuple[Any, str]]:
    """`--set KEY=VALUE` arguments; a malformed one is a problem appended to `problems` (all are named at
    once, with the others' problems), or a ConfigError when no list is given."""
    found, malformed = {}, []
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            malformed.append(f"--set {item}: expected KEY=VALUE, e.g. --set load.repetitions=10")
            continue
        found[key.strip()] = (parse_scalar(raw), f"--set {key.strip()}")
    if malformed and problems is None:
        raise ConfigError(malformed)
    (problems if problems is not None else []).extend(malformed)
    return found


def load_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None,
                cli_overrides: Mapping[str, Any] | None = None, set_args: list[str] | None = None,
                require_target: bool = True) -> Config:
    """Read, merge and validate. `cli_overrides` maps dotted keys to values from dedicated flags.

    require_target=False is for commands that measure nothing (compare, publish): target.* may be absent.
    """
    environ = os.environ if environ is None else environ
    file_path = Path(path) if path else Path(DEFAULT_CONFIG_FILE)
    data = read_config_file(file_path) if path or file_path.exists() else {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    layers = [overrides_from_env(environ), overrides_from_cli(set_args or [], problems),
              {k: (v, "command line") for k, v in (cli_overrides or {}).items() if v is not None}]
    for layer in layers:
        for key, (value, source) in layer.items():
            _assign(data, key, value, problems, source)
            sources[key] = source
    try:
        config = build_config(data, sources=sources, problems=problems, require_target=require_target)
    except ConfigError as error:
        if not file_path.exists() and any(p.startswith("target.address: required") for p in error.problems):
            raise ConfigError([f"no {file_path} in the current folder, and nothing sets target.address",
                               *error.problems], hint=INIT_HINT) from None
        raise
    return replace(config, source=str(file_path) if file_path.exists() else "defaults")


def _assign(data: dict[str, Any], dotted: str, value: Any, problems: list[str], source: str) -> None:
    node: Any = SCHEMA
    target = data
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            options = node if isinstance(node, dict) else {}
            problems.append(f"{dotted} (from {source}): unknown key{_did_you_mean(part, options)}")
            return
        node = node[part]
        if depth == len(parts) - 1:
            if isinstance(node, dict):
                problems.append(f"{dotted} (from {source}): is a section; set one of its keys "
                                f"({', '.join(node)})")
                return
            target[part] = value
        else:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = target[part] = {}
            target = existing


INIT_HINT = ("with your gRPC service running, `perfgate init HOST:PORT` writes a starter perfgate.yml and PR "
             "workflow (pip install 'perfgate[init]'); or pass --config FILE. Every key: docs/configuration.md")


def build_config(data: dict[str, Any], *, sources: Mapping[str, str] | None = None,
                 problems: list[str] | None = None, require_target: bool = True) -> Config:
    """Validate a merged tree against SCHEMA; raise one ConfigError listing every problem."""
    problems = [] if problems is None else problems
    sources = sources or {}
    values = _walk(SCHEMA, data, "", problems, sources, require=require_target)
    gates = _check_gates(data.get("gates"), problems)
    _check_cross_field(values, problems)
    _check_placeholders(values, problems, require_target=require_target)
    if problems:
        target_missing = any(p.startswith("target.address: required") for p in problems)
        raise ConfigError(problems, hint=INIT_HINT if target_missing else
                          "see docs/configuration.md for every key, its type and default")
    return _to_config(values, gates)


# Keys that once existed: say why they went and what to set instead.
REMOVED_KEYS = {
    "compare.confidence": "removed: intervals are computed at the level of the test (alpha in each tail, "
                          "so 90 % for compare.alpha 0.05) so that they agree with the verdict; set compare.alpha",
}


def _walk(schema: dict[str, Any], data: Any, prefix: str, problems: list[str],
          sources: Mapping[str, str], *, require: bool = True) -> dict[str, Any]:
    section = prefix.rstrip(".") or "top level"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{section}: expected a mapping, got {_describe(data)}")
        data = {}
    for key in data:
        if f"{prefix}{key}" in REMOVED_KEYS:
            problems.append(f"{prefix}{key}: {REMOVED_KEYS[f'{prefix}{key}']}")
        elif key not in schema:
            problems.append(f"{prefix}{key}: unknown key{_did_you_mean(key, schema)}")
    values: dict[str, Any] = {}
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            values[key] = _walk(spec, data.get(key), f"{path}.", problems, sources, require=require)
            values[key]["__given__"] = key in data and data[key] is not None
            continue
        if key not in data:
            if spec.default is REQUIRED and require:
                problems.append(f"{path}: required, but not set")
            values[key] = spec.check(spec.default)[0] if spec.default is not REQUIRED else ""
            continue
        value, problem = spec.check(data[key])
        if problem:
            where = f" (from {sources[path]})" if path in sources else ""
            problems.append(f"{path}{where}: {problem}")
        values[key] = value
    values["__keys__"] = frozenset(k for k in data if k in schema and not isinstance(schema[k], dict))
    return values


def _check_cross_field(values: dict[str, Any], problems: list[str]) -> None:
    load = values["load"]
    if load["total"] is not None and load["duration_s"] is not None:
        problems.append("load: set either duration_s or total, not both")
    counts = (load["connections"], load["concurrency"])
    if all(isinstance(c, int) for c in counts) and counts[0] > counts[1]:
        problems.append(f"load.connections: must be <= load.concurrency ({load['concurrency']}), "
                        f"got {load['connections']}")
    compare = values["compare"]
    if compare["mode"] == "interleaved":
        if not compare["baseline_service"]["command"]:
            problems.append("compare.baseline_service.command: required when compare.mode is interleaved "
                            "(the command that starts the base build)")
        if not values["service"]["command"]:
            problems.append("service.command: required when compare.mode is interleaved "
                            "(the command that starts the head build)")
    _check_baseline_address(values, problems)
    tls = values["target"]["tls"]
    if values["target"]["insecure"] and any(tls[k] for k in ("cacert", "cert", "key")):
        problems.append("target.tls: certificates are set but target.insecure is true; set insecure: false")


def _check_placeholders(values: dict[str, Any], problems: list[str], *, require_target: bool) -> None:
    service, target, cpu = values["service"], values["target"], values["cpu"]
    command, build = service["command"], service["build"]

    def used(placeholder: str) -> bool:
        return isinstance(command, tuple) and placeholders.uses(command, placeholder)

    if build and (problem := command_problem(list(build))):
        problems.append(f"service.build: {problem}")
    if build and not used(placeholders.BINARY):
        problems.append("service.command: must start what service.build built: use {binary} for its path, e.g. "
                        "command: {binary} -grpc-addr {address}")
    if used(placeholders.BINARY) and not build:
        problems.append("service.command: uses {binary}, so service.build must say how to build it "
                        "(e.g. build: go build -o {output} ./cmd/server)")
    if used(placeholders.ADDRESS) and target["address"]:
        problems.append("target.address: perfgate picks the address when service.command uses {address}; "
                        "remove target.address (or the placeholder)")
    elif require_target and not target["address"] and not used(placeholders.ADDRESS):
        problems.append("target.address: required, but not set (or let perfgate pick a free port: "
                        "put {address} in service.command)")
    if used(placeholders.PPROF_ADDRESS) and cpu["pprof_url"]:
        problems.append("cpu.pprof_url: perfgate sets it when service.command uses {pprof_address}; remove it "
                        "(or the placeholder)")
    base_command = values["compare"]["baseline_service"]["command"]
    if isinstance(base_command, tuple) and any(placeholders.uses(base_command, p)
                                               for p in placeholders.SERVICE_PLACEHOLDERS):
        problems.append("compare.baseline_service.command: placeholders are filled in service.command only; "
                        "to have perfgate build and start the base too, use `perfgate run --against REF`")


def _check_baseline_address(values: dict[str, Any], problems: list[str]) -> None:
    compare, target, cpu = values["compare"], values["target"], values["cpu"]
    address = compare["baseline_address"]
    if address is None:
        if compare["schedule"] == "duet":
            problems.append("compare.schedule: duet loads both builds at once, so it needs "
                            "compare.baseline_address (the base build's own gRPC address)")
        if compare["baseline_pprof_url"] is not None:
            problems.append("compare.baseline_pprof_url: only used with compare.baseline_address "
                            "(set both, or neither)")
        return
    if compare["mode"] != "interleaved":
        problems.append("compare.baseline_address: only used when compare.mode is interleaved; remove it "
                        "or set compare.mode: interleaved")
    if address == target["address"]:
        problems.append(f"compare.baseline_address: must differ from target.address ({address}); both builds "
                        "run at once, each on its own port (leave it unset to restart them in turn)")
    if cpu["enabled"] and cpu["pprof_url"] and not compare["baseline_pprof_url"]:
        problems.append("compare.baseline_pprof_url: required when compare.baseline_address and cpu.pprof_url "
                        "are set (the base build's net/http/pprof address, e.g. http://127.0.0.1:6061)")
    elif compare["baseline_pprof_url"] is not None and compare["baseline_pprof_url"] == cpu["pprof_url"]:
        problems.append("compare.baseline_pprof_url: must differ from cpu.pprof_url, or the base build's "
                        "profile would be the head build's")


def _service(values: dict[str, Any]) -> ServiceConfig | None:
    if not values["command"]:
        return None
    build = {key: values[key] for key in ("build", "build_env", "build_timeout_s") if key in values}
    return ServiceConfig(command=values["command"], env=values["env"], cwd=values["cwd"],
                         ready=values["ready"], start_timeout_s=values["start_timeout_s"],
                         pass_env=values["pass_env"], **build)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not k.startswith("__") and not isinstance(v, dict)}


def _to_config(values: dict[str, Any], gates: tuple[GateRule, ...]) -> Config:
    target, compare, report = values["target"], values["compare"], values["report"]
    load = _plain(values["load"])
    if load["total"] is None and load["duration_s"] is None:
        load["duration_s"] = DEFAULT_DURATION_S
    push = report["pushgateway"]
    return Config(
        target=TargetConfig(address=target["address"] or "", call=target["call"], proto=target["proto"],
                            import_paths=target["import_paths"], data_json=target["data"],
                            metadata=target["metadata"], insecure=target["insecure"],
                            tls=TlsConfig(**_plain(target["tls"]))),
        load=LoadConfig(**load, given=values["load"]["__keys__"]),
        service=_service(values["service"]),
        cpu=CpuConfig(**_plain(values["cpu"])),
        kernel=KernelConfig(**_plain(values["kernel"])),
        layers=LayersConfig(**_plain(values["layers"])),
        compare=CompareConfig(**_plain(compare), contention=ContentionConfig(**_plain(compare["contention"])),
                              baseline_service=_service(compare["baseline_service"])),
        baseline=BaselineConfig(**_plain(values["baseline"])),
        gates=gates,
        report=ReportConfig(comment=report["comment"], plots=report["plots"], title=report["title"],
                            pushgateway=PushgatewayConfig(**_plain(push)) if push["url"] else None),
        output=values["output"],
    )


def config_keys() -> list[str]:
    """Every dotted key the schema knows (for the Action's input mapping and the docs)."""
    keys: list[str] = []

    def visit(node: dict[str, Any], prefix: str) -> None:
        for key, spec in node.items():
            if isinstance(spec, dict):
                visit(spec, f"{prefix}{key}.")
            else:
                keys.append(f"{prefix}{key}")

    visit(SCHEMA, "")
    return keys

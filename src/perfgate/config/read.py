"""perfgate.yml, the environment and --set -> one frozen Config.

Precedence, highest first: command line (`--set key=value`, dedicated flags) > environment
(`PERFGATE_SECTION__KEY=value`) > the YAML file > defaults. Validation walks the merged tree once
and reports every problem at once, each naming its key path (and where the value came from when it
was not the file), e.g. `load.concurrency: expected an integer >= 1, got "ten"`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from perfgate import placeholders
from perfgate.build.plan import command_problem
from perfgate.config.checks import describe, did_you_mean
from perfgate.config.keys import SCHEMA, check_gates
from perfgate.config.model import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_DURATION_S,
    ENV_PREFIX,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_VALUES,
    REQUIRED,
    BaselineConfig,
    CompareConfig,
    Config,
    ContentionConfig,
    CpuConfig,
    KernelConfig,
    LayersConfig,
    LoadConfig,
    PushgatewayConfig,
    ReportConfig,
    ServiceConfig,
    TargetConfig,
    TlsConfig,
)
from perfgate.errors import ConfigError
from perfgate.files import FileRefused, read_capped
from perfgate.metrics import GateRule


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
            problems.append(f"{dotted} (from {source}): unknown key{did_you_mean(part, options)}")
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
    gates = check_gates(data.get("gates"), problems)
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
        problems.append(f"{section}: expected a mapping, got {describe(data)}")
        data = {}
    for key in data:
        if f"{prefix}{key}" in REMOVED_KEYS:
            problems.append(f"{prefix}{key}: {REMOVED_KEYS[f'{prefix}{key}']}")
        elif key not in schema:
            problems.append(f"{prefix}{key}: unknown key{did_you_mean(key, schema)}")
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
    required = values["layers"]["required"]
    if isinstance(required, tuple | list) and "syscalls" in required and values["kernel"]["enabled"] is False:
        problems.append("layers.required: syscalls are timed by the kernel view's bpftrace, but kernel.enabled "
                        "is false; enable it or drop syscalls from layers.required")
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


def _leaf_values(values: dict[str, Any]) -> dict[str, Any]:
    """A section's own keys with their values: no nested sections, no bookkeeping (__keys__)."""
    return {k: v for k, v in values.items() if not k.startswith("__") and not isinstance(v, dict)}


def _to_config(values: dict[str, Any], gates: tuple[GateRule, ...]) -> Config:
    target, compare, report = values["target"], values["compare"], values["report"]
    load = _leaf_values(values["load"])
    if load["total"] is None and load["duration_s"] is None:
        load["duration_s"] = DEFAULT_DURATION_S
    push = report["pushgateway"]
    return Config(
        target=TargetConfig(address=target["address"] or "", call=target["call"], proto=target["proto"],
                            import_paths=target["import_paths"], data_json=target["data"],
                            metadata=target["metadata"], insecure=target["insecure"],
                            tls=TlsConfig(**_leaf_values(target["tls"]))),
        load=LoadConfig(**load, given=values["load"]["__keys__"]),
        service=_service(values["service"]),
        cpu=CpuConfig(**_leaf_values(values["cpu"])),
        kernel=KernelConfig(**_leaf_values(values["kernel"])),
        layers=LayersConfig(**_leaf_values(values["layers"])),
        compare=CompareConfig(**_leaf_values(compare),
                              contention=ContentionConfig(**_leaf_values(compare["contention"])),
                              baseline_service=_service(compare["baseline_service"])),
        baseline=BaselineConfig(**_leaf_values(values["baseline"])),
        gates=gates,
        report=ReportConfig(comment=report["comment"], plots=report["plots"], title=report["title"],
                            pushgateway=PushgatewayConfig(**_leaf_values(push)) if push["url"] else None),
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

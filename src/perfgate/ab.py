"""Built A/B: perfgate builds the service (service.build), fills service.command's placeholders and picks the ports.

`prepare_run` turns the user's config and what was built into the config one run measures:
  - `perfgate run --against REF`: builds REF (in a git worktree) and the working tree, then both run in duet,
    each on its own free loopback ports;
  - `perfgate run --builds DIR`: the same with builds made before (the Action builds on the runner with
    `python3 -m perfgate.build`, then runs perfgate in its container);
  - `perfgate run` with {binary} in service.command: builds the working tree and measures it alone;
  - `perfgate run` with {address} / {pprof_address}: picks the ports for the one service it starts.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from perfgate import capacity, placeholders
from perfgate.build.manifest import Builds, BuiltSide, read_builds
from perfgate.build.plan import BuildPlan
from perfgate.config import Config, LoadConfig, ServiceConfig
from perfgate.errors import ConfigError, ToolError
from perfgate.measure.budget import duet_load

LOOPBACK = "127.0.0.1"
BUILDS_FOLDER = "builds"
STATIC_HINT = ("build it self-contained: perfgate's container has none of the runner's shared libraries (Go: "
               "service.build_env: {CGO_ENABLED: \"0\"})")


@dataclass(frozen=True)
class PreparedRun:
    """The config to measure with; `built` = (base, head) when the run is a built A/B duet."""

    config: Config
    built: tuple[BuiltSide, BuiltSide] | None = None


def build_plan(config: Config) -> BuildPlan | None:
    """What `perfgate build-plan` writes: service.build resolved, or None when the config builds nothing."""
    service = config.service
    if service is None or not service.build:
        return None
    return BuildPlan(command=service.build, env=service.build_env, timeout_s=service.build_timeout_s,
                     pass_env=service.pass_env)


def prepare_run(config: Config, *, against: str | None, builds_dir: Path | None, as_baseline: bool,
                say: Callable[[str], None]) -> PreparedRun:
    if against and builds_dir:
        raise ConfigError("--against and --builds cannot be combined: --against builds, --builds uses builds made "
                          "before")
    service = config.service
    needs_build = service is not None and service.uses(placeholders.BINARY)
    if (against or builds_dir) and not needs_build:
        raise ConfigError(f"{'--against' if against else '--builds'} needs service.build (how to build the service) "
                          "and service.command starting it as {binary}",
                          hint="e.g. service: {build: go build -o {output} ./cmd/server, command: "
                               "{binary} -grpc-addr {address} -pprof-addr {pprof_address}}")
    if not needs_build:
        return PreparedRun(with_picked_ports(config) if service else config)
    assert service is not None
    if builds_dir is not None:
        builds = read_builds(builds_dir)
    else:
        from perfgate.build.sources import build_sources

        plan = build_plan(config)
        assert plan is not None
        builds = build_sources(plan, Path(config.output) / BUILDS_FOLDER, against=against, say=say)
    check_runnable(builds)
    if not builds.has_base:
        return PreparedRun(side_config(config, builds.binary("head"), service, free_ports(2)))
    check_ab_config(config, as_baseline=as_baseline)
    return PreparedRun(duet_config(config, builds), built=(builds.sides["base"], builds.sides["head"]))


def check_runnable(builds: Builds) -> None:
    """A dynamically linked build whose loader is not here cannot start (the Action's container); say why."""
    for name, side in builds.sides.items():
        loader = side.interpreter
        if loader and loader.startswith("/") and not Path(loader).exists():
            raise ToolError(f"the {name} build ({builds.binary(name)}) needs {loader} to start, which is not on "
                            "this machine", hint=STATIC_HINT)


def check_ab_config(config: Config, *, as_baseline: bool) -> None:
    """What a built A/B duet configures itself must not be configured by hand as well."""
    problems = []
    if as_baseline:
        problems.append("--baseline: a built A/B run measures both sides in this job; to record a baseline, run "
                        "without --against (perfgate builds the working tree)")
    compare = config.compare
    if compare.mode == "interleaved" or compare.baseline_service or compare.baseline_address:
        problems.append("compare.mode / compare.baseline_service / compare.baseline_address: a built A/B run "
                        "starts both builds itself; remove them")
    if config.baseline.path:
        problems.append("baseline.path (--compare-to): a built A/B run compares with the base it built; remove it")
    service = config.service
    assert service is not None
    if not service.uses(placeholders.ADDRESS):
        problems.append("service.command: both builds run at once, each on its own port: use {address} for the "
                        "gRPC address perfgate picks")
    if config.cpu.enabled and config.cpu.pprof_url:
        problems.append("cpu.pprof_url: both builds run at once: use {pprof_address} in service.command instead, "
                        "so each build gets its own")
    if config.kernel.service_pids:
        problems.append("kernel.service_pids: a built A/B run knows the pids of the builds it started; remove it")
    if problems:
        raise ConfigError(problems)


def duet_config(config: Config, builds: Builds) -> Config:
    """Both builds from the one service section: the head as `service`, the base as compare.baseline_service."""
    service = config.service
    assert service is not None
    ports = free_ports(4)
    head = side_config(config, builds.binary("head"), service, ports[:2])
    base = side_config(config, builds.binary("base"), service, ports[2:])
    compare = replace(config.compare, mode="interleaved", schedule="duet", baseline_service=base.service,
                      baseline_address=base.target.address,
                      baseline_pprof_url=base.cpu.pprof_url if service.uses(placeholders.PPROF_ADDRESS) else None)
    return replace(head, compare=compare, load=default_flow_load(config))


def default_flow_load(config: Config) -> LoadConfig:
    """The pairs and window length of the default flow where the user set neither (measure/budget.py): the
    capacity probes of an automatic rate take their share of the minute first."""
    fixed_s, per_pair_s = capacity.probe_seconds() if not config.load.rps else (0.0, 0.0)
    return duet_load(config.load, fixed_s=fixed_s, per_pair_s=per_pair_s)


def with_picked_ports(config: Config) -> Config:
    """One service whose command uses {address} / {pprof_address}: the ports filled in."""
    assert config.service is not None
    return side_config(config, None, config.service, free_ports(2))


def side_config(config: Config, binary: Path | None, service: ServiceConfig, ports: list[int]) -> Config:
    """`config` for one build: its command filled in, target.address and cpu.pprof_url pointing at its ports."""
    grpc_port, pprof_port = ports
    address, pprof_address = f"{LOOPBACK}:{grpc_port}", f"{LOOPBACK}:{pprof_port}"
    values = {placeholders.ADDRESS: address, placeholders.PPROF_ADDRESS: pprof_address}
    if binary is not None:
        values[placeholders.BINARY] = str(binary.resolve())
    side = replace(config, service=replace(service, command=placeholders.fill(service.command, values)))
    if service.uses(placeholders.ADDRESS):
        side = replace(side, target=replace(side.target, address=address, address_picked=True))
    if service.uses(placeholders.PPROF_ADDRESS):
        side = replace(side, cpu=replace(side.cpu, pprof_url=f"http://{pprof_address}"))
    return side


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (held open together, so never the same one)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]

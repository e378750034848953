"""ghz, the load generator perfgate drives (load/generator.py): its argv, a run with a timeout, its JSON report
parsed once, its version, and the gRPC health probe it makes.

ghz exits 0 even when every call failed, so the status distribution is
checked here: a run with no OK call is a ToolError that says what the calls returned.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from perfgate.config import TargetConfig
from perfgate.errors import ToolError
from perfgate.load.generator import GeneratorCrashed
from perfgate.load.ghz_report import read_report
from perfgate.load.latencies import write_latencies
from perfgate.load.sample import LoadSample, LoadWindow
from perfgate.procs import run_bounded

if TYPE_CHECKING:
    import numpy as np

GHZ_INSTALL_HINT = ("install the pinned ghz with `scripts/setup.sh --ghz` (puts it in .tools/bin) or "
                    "`go install github.com/bojand/ghz/cmd/ghz@v0.121.0`, then put it on PATH")
PERCENTILES = {50: "p50_ns", 90: "p90_ns", 95: "p95_ns", 99: "p99_ns"}


# ghz itself crashed (a Go panic), e.g. v0.121.0's race when a short window ends before its workers start
# ("send on closed channel" in ConstWorkerTicker.Run on a starved machine): the run, not the target, failed.
GO_PANIC = "panic: "
HEALTH_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Ghz:
    """The ghz binary at `path`, as a LoadGenerator."""

    path: str
    name: ClassVar[str] = "ghz"

    @classmethod
    def find(cls, explicit: str | None = None) -> Ghz:
        path = shutil.which(explicit or "ghz")
        if path is None:
            raise ToolError(f"ghz not found on PATH{f' (looked for {explicit!r})' if explicit else ''}",
                            hint=GHZ_INSTALL_HINT)
        return cls(path)

    def version(self) -> str:
        """`ghz -v` says "dev" for `go install` builds; the module version is in the binary's build info."""
        version = _version_from_build_info(self.path)
        if version:
            return version
        try:
            result = run_bounded([self.path, "--version"], timeout_s=10, what="ghz --version")
        except ToolError:
            return "unknown"
        return (result.stdout or result.stderr).strip() or "unknown"

    def run(self, target: TargetConfig, window: LoadWindow, output: Path, *, name: str,
            latencies_to: Path | None = None) -> LoadSample:
        return run_ghz(self.path, target, window, output, name=name, latencies_to=latencies_to)

    def parse(self, report: Path) -> tuple[LoadSample, np.ndarray]:
        return read_load(report)

    def ready(self, address: str) -> str | None:
        return probe_grpc_health(self.path, address)

    def check(self) -> tuple[bool, str]:
        """Whether this binary runs here (`ghz --version`), and what `perfgate doctor` says about it."""
        try:
            completed = run_bounded([self.path, "--version"], timeout_s=10.0, what="ghz --version")
        except ToolError as error:
            return False, f"{self.path} does not run: {error.message}"
        if completed.returncode != 0:
            return False, (f"{self.path} --version exited with {completed.returncode}: "
                           f"{completed.stderr_tail(3) or completed.stdout.strip()}")
        version = (completed.stdout.strip() or completed.stderr.strip()).splitlines()[-1:] or ["?"]
        if version[0] == "dev":
            return True, f"{self.path} (version 'dev': a go install build, which does not embed its version)"
        return True, f"{self.path} version {version[0]}"


def build_argv(ghz: str, target: TargetConfig, window: LoadWindow, output: Path, *, name: str) -> list[str]:
    argv = [ghz, "--call", target.call, "--format", "json", "--output", str(output), "--name", name,
            "--concurrency", str(window.concurrency), "--connections", str(window.connections),
            "--timeout", _go_duration(window.request_timeout_s)]
    if window.duration_s is not None:
        argv += ["--duration", _go_duration(window.duration_s), "--duration-stop", "wait"]
    else:
        argv += ["--total", str(window.total)]
    if window.rps:
        argv += ["--rps", str(window.rps)]
    argv += _target_flags(target)
    return [*argv, target.address]


def _target_flags(target: TargetConfig) -> list[str]:
    flags: list[str] = []
    if target.proto:
        flags += ["--proto", target.proto]
    if target.import_paths:
        flags += ["--import-paths", ",".join(target.import_paths)]
    if target.data_json is not None:
        flags += ["--data", target.data_json]
    if target.metadata:
        flags += ["--metadata", json.dumps(dict(target.metadata), sort_keys=True)]
    if target.insecure:
        return [*flags, "--insecure"]
    tls = target.tls
    for flag, value in (("--cacert", tls.cacert), ("--cert", tls.cert), ("--key", tls.key),
                        ("--cname", tls.server_name)):
        if value:
            flags += [flag, value]
    return [*flags, "--skipTLS"] if tls.skip_verify else flags


def _go_duration(seconds: float) -> str:
    return f"{int(round(seconds * 1000))}ms"


def run_ghz(ghz: str, target: TargetConfig, window: LoadWindow, output: Path, *, name: str,
            latencies_to: Path | None = None) -> LoadSample:
    """Run one load window; the raw report stays at `output` whatever happens next.

    latencies_to: where to write the OK calls' latencies (load/latencies.py), read in the same single pass
    over the report as the summary, so nothing has to parse the raw report again.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = build_argv(ghz, target, window, output, name=name)
    result = run_bounded(argv, timeout_s=window.timeout_s(), what="ghz")
    if result.returncode != 0:
        error = GeneratorCrashed if GO_PANIC in result.stderr else ToolError
        raise error(f"ghz failed against {target.address} (exit {result.returncode}): "
                    f"{result.stderr_tail() or 'no message'}", hint=_hint_for(result.stderr))
    sample, latencies = read_load(output)
    check_reachable(sample, target.address)
    if latencies_to is not None:
        write_latencies(latencies_to, latencies)
    return sample


def _hint_for(stderr: str) -> str | None:
    lowered = stderr.lower()
    if "server does not support the reflection api" in lowered or "reflection" in lowered:
        return "the service has no gRPC server reflection: set target.proto to its .proto file"
    if "connection refused" in lowered or "deadline exceeded" in lowered or "unavailable" in lowered:
        return "is the service running at target.address? perfgate can start it: set service.command"
    return None


def parse_report_file(path: Path) -> LoadSample:
    return read_load(path)[0]


def read_load(path: Path) -> tuple[LoadSample, np.ndarray]:
    """The report's LoadSample and its OK calls' latencies (ns), from one streaming pass (load/ghz_report.py)."""
    report = read_report(path)
    try:
        return parse_report(report.summary), report.ok_latencies_ns
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ToolError(f"ghz report {path} has an unexpected shape: {error}") from error


def parse_report(raw: dict[str, Any]) -> LoadSample:
    """ghz JSON -> LoadSample. Every time.Duration in the report is an integer of nanoseconds."""
    statuses = {str(k): _count(v) for k, v in (raw.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): _count(v) for k, v in (raw.get("errorDistribution") or {}).items()}
    count = _count(raw["count"])
    percentiles: dict[str, int | None] = dict.fromkeys(PERCENTILES.values())
    for entry in raw.get("latencyDistribution") or []:
        field_name = PERCENTILES.get(entry.get("percentage"))
        if field_name:
            percentiles[field_name] = _count(entry["latency"])
    return LoadSample(
        count=count,
        ok_count=statuses.get("OK", 0),
        rps=float(raw["rps"]),
        total_ns=_count(raw["total"]),
        average_ns=_count(raw.get("average", 0)),
        fastest_ns=_count(raw.get("fastest", 0)),
        slowest_ns=_count(raw.get("slowest", 0)),
        status_counts=MappingProxyType(statuses),
        error_counts=MappingProxyType(errors),
        end_reason=str(raw.get("endReason", "")),
        **percentiles,
    )


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a non-negative number, got {value!r}")
    return int(value)


def check_reachable(sample: LoadSample, address: str) -> None:
    """No OK call at all means the target is down or misconfigured, not slow."""
    if sample.count == 0:
        raise ToolError(f"target {address}: ghz completed no calls at all",
                        hint="check target.call and that the service answers; try a longer load.duration_s")
    if sample.ok_count == 0:
        raise ToolError(f"target {address} unreachable: {describe_failures(sample)}",
                        hint=_unreachable_hint(sample))


def describe_failures(sample: LoadSample) -> str:
    failed = {k: v for k, v in sample.status_counts.items() if k != "OK"} or {"unknown": sample.error_count}
    parts = [f"{100 * n / sample.count:.0f}% of {sample.count} calls {code}"
             for code, n in sorted(failed.items(), key=lambda kv: -kv[1])]
    top_error = max(sample.error_counts.items(), key=lambda kv: kv[1])[0] if sample.error_counts else ""
    return ", ".join(parts) + (f" (first error: {top_error[:200]})" if top_error else "")


def _unreachable_hint(sample: LoadSample) -> str:
    if "Unavailable" in sample.status_counts:
        return "nothing answers at target.address: start the service first or set service.command"
    if "Unimplemented" in sample.status_counts:
        return "the service does not implement target.call: check the package.Service/Method name"
    return "see the status counts above; check target.data matches the request message"


def _version_from_build_info(binary: str) -> str | None:
    """Read the `mod github.com/bojand/ghz vX.Y.Z` line Go embeds in every module-aware build."""
    try:
        data = Path(binary).read_bytes()
    except OSError:
        return None
    match = re.search(rb"mod\tgithub\.com/bojand/ghz\t(v[0-9][^\t\n]*)", data)
    return match.group(1).decode() if match else None


def health_proto() -> Path:
    """perfgate's copy of grpc/health/v1/health.proto (the service needs no reflection to be probed)."""
    return Path(str(resources.files("perfgate") / "proto" / "health.proto"))


def probe_grpc_health(ghz: str, address: str) -> str | None:
    """grpc.health.v1.Health/Check answered OK (using our copy of health.proto, so no reflection needed)."""
    proto = health_proto()
    argv = [ghz, "--insecure", "--proto", str(proto), "--import-paths", str(proto.parent),
            "--call", "grpc.health.v1.Health/Check", "--data", "{}", "--total", "1", "--concurrency", "1",
            "--connections", "1", "--timeout", "2s", "--format", "json", address]
    try:
        result = run_bounded(argv, timeout_s=HEALTH_PROBE_TIMEOUT_S, what="gRPC health check")
    except ToolError as error:
        return error.message
    if result.returncode != 0:
        return result.stderr_tail(2) or f"ghz exit {result.returncode}"
    if '"OK"' not in result.stdout:
        return "Health/Check did not answer OK"
    return None

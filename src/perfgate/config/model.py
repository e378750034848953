"""The Config and its sections: frozen dataclasses, one per section of perfgate.yml, and the limits on values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from perfgate import placeholders
from perfgate.build.plan import DEFAULT_BUILD_TIMEOUT_S
from perfgate.jsonable import jsonable
from perfgate.metrics import GateRule

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


# Below the CPU: pprof profiles (capture/layers.py), GC (capture/gc.py), system calls (capture/syscalls.py)
LAYER_NAMES = ("allocs", "mutex", "block", "goroutines", "gc", "syscalls")


@dataclass(frozen=True)
class LayersConfig:
    """Which layers below the CPU are captured, and which of them must be there: the profiles from
    cpu.pprof_url, the GC (gctrace or expvar), the system calls (with the kernel view's bpftrace)."""

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
    min_wait_us: float = 200.0
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
        target = jsonable(self.target)
        if self.target.address_picked:
            target["address"] = placeholders.ADDRESS
        load = jsonable(self.load)
        load.pop("given")  # which keys were typed does not change what was measured
        if load["generator"] == "ghz":  # digests from before load.generator existed stay the same
            load.pop("generator")
        essentials = {"target": target, "load": load}
        text = json.dumps(essentials, sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

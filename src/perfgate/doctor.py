"""`perfgate doctor`: which collectors work on this machine, and what to do about the ones that don't."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from perfgate.capture.cgroup import CgroupUnavailable, cgroup_dir, locate
from perfgate.capture.procfs import read_machine_times, read_thread_waits
from perfgate.capture.runq import RunqCollector, RunqUnavailable, check_prerequisites
from perfgate.config import LAYER_NAMES, Config, LayersConfig
from perfgate.doctor_layers import check_layers
from perfgate.doctor_syscalls import check_gc, check_syscalls
from perfgate.errors import PerfgateError, ToolError
from perfgate.load.generator import find_generator
from perfgate.procs import run_bounded

VERSION_TIMEOUT_S = 10.0
PPROF_TIMEOUT_S = 3.0
ATTACH_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CollectorStatus:
    available: bool
    reason: str


def check_collectors(*, generator: str, pprof_url: str | None, bpftrace: str, generator_path: str | None = None,
                     config: Config | None = None) -> dict[str, CollectorStatus]:
    """One status per collector, as `config` would run them: the load generator (named as in
    load.generator: "ghz"), "pprof" (CPU profile), the profile layers below the CPU (allocs, mutex, block,
    goroutines; checked only when the CPU profile's endpoint answers), "gc" (GC per request), "bpftrace"
    (kernel view), "syscalls" (system call latency, in the kernel view's program), "contention" (what else
    used the machine: /proc and cgroups)."""
    layers = config.layers if config is not None else LayersConfig()
    statuses = {generator: check_load_generator(generator, generator_path), "pprof": check_pprof(pprof_url)}
    wanted = tuple(name for name in LAYER_NAMES if layers.captured(name))
    found = check_layers(pprof_url if statuses["pprof"].available else None, wanted, why_not=statuses["pprof"].reason)
    statuses.update({name: CollectorStatus(*status) for name, status in found.items()})
    statuses["gc"] = CollectorStatus(*check_gc(config, pprof_url)) if layers.captured("gc") else \
        CollectorStatus(False, "layers.enabled leaves out gc")
    statuses["bpftrace"] = check_bpftrace(bpftrace)
    statuses["syscalls"] = _syscalls_status(bpftrace, statuses["bpftrace"], config)
    statuses["contention"] = check_contention()
    return statuses


def _syscalls_status(bpftrace: str, kernel: CollectorStatus, config: Config | None) -> CollectorStatus:
    if config is not None and not config.layers.captured("syscalls"):
        return CollectorStatus(False, "layers.enabled leaves out syscalls")
    if config is not None and not config.kernel.enabled:
        return CollectorStatus(False, "kernel.enabled is false: system calls are timed by the kernel view's bpftrace")
    if not kernel.available:
        return CollectorStatus(False, f"needs the kernel view: {kernel.reason}")
    return CollectorStatus(*check_syscalls(shutil.which(bpftrace) or bpftrace))


def check_load_generator(name: str, explicit: str | None = None) -> CollectorStatus:
    """The configured load generator (load.generator): found, and runs here."""
    try:
        generator = find_generator(name, explicit)
    except PerfgateError as error:
        return CollectorStatus(False, f"{error.message}; {error.hint}" if error.hint else error.message)
    available, reason = generator.check()
    return CollectorStatus(available, reason)


def check_pprof(pprof_url: str | None) -> CollectorStatus:
    if not pprof_url:
        return CollectorStatus(False, "no pprof URL configured (cpu.pprof_url); the CPU view is off")
    index = pprof_url.rstrip("/")
    if not index.endswith("/debug/pprof"):
        index += "/debug/pprof"
    index += "/"
    if not index.lower().startswith(("http://", "https://")):
        return CollectorStatus(False, f"cpu.pprof_url {pprof_url!r} is not an http:// or https:// URL")
    try:
        # urllib, not requests: doctor starts fast and needs one GET (measure fetches profiles with requests).
        with urllib.request.urlopen(index, timeout=PPROF_TIMEOUT_S) as response:  # noqa: S310 - http(s) only, checked above
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError, ValueError) as error:
        return CollectorStatus(False, f"{index} is not reachable ({_reason(error)}); start the service "
                                      "first, and check cpu.pprof_url and that it imports net/http/pprof")
    if status != 200:
        return CollectorStatus(False, f"GET {index} answered HTTP {status}; the service must "
                                      "serve net/http/pprof there")
    return CollectorStatus(True, f"{index} answers")


def _reason(error: Exception) -> str:
    inner = getattr(error, "reason", None)
    return type(inner if isinstance(inner, BaseException) else error).__name__


def check_bpftrace(bpftrace: str) -> CollectorStatus:
    """Found, privileged, tracefs, BTF, then a real run of runqlat.bt (attach, one depth sample, stop)."""
    try:
        path = check_prerequisites(bpftrace)
    except RunqUnavailable as error:
        return CollectorStatus(False, error.reason)
    try:
        version = run_bounded([path, "--version"], timeout_s=VERSION_TIMEOUT_S, what="bpftrace --version")
    except ToolError as error:
        return CollectorStatus(False, f"{path} does not run: {error.message}")
    with tempfile.TemporaryDirectory(prefix="perfgate-doctor-") as folder:
        runq = RunqCollector(service_comm=None, bpftrace=path, raw_path=Path(folder) / "runq.jsonl")
        try:
            runq.start(timeout_s=ATTACH_TIMEOUT_S)
            stats = runq.stop(timeout_s=STOP_TIMEOUT_S)
        except RunqUnavailable as error:
            return CollectorStatus(False, error.reason)
        finally:
            runq.close()
    if stats.status != "ok":
        return CollectorStatus(False, f"runqlat.bt attached but did not finish cleanly: {stats.note}")
    return CollectorStatus(True, f"{path} ({version.stdout.strip()}): runqlat.bt attached, "
                                 f"{stats.machine.count} run-queue events in {stats.window_ms} ms")


def check_contention() -> CollectorStatus:
    """/proc/stat (steal), schedstat (run-queue wait) and the cpu controller's cgroup hierarchy (throttling),
    read for perfgate's own process; a missing cgroup view still leaves the rest."""
    try:
        machine = read_machine_times()
    except (OSError, ValueError) as error:
        return CollectorStatus(False, f"/proc/stat cannot be read ({error}); mount /proc")
    if not read_thread_waits([os.getpid()]):
        return CollectorStatus(False, "/proc/PID/task/*/schedstat cannot be read (a kernel without "
                                      "CONFIG_SCHED_INFO?); run-queue wait per build is unknown")
    total = machine.busy_ns + machine.idle_ns + machine.iowait_ns + machine.steal_ns
    steal = f"steal {100 * machine.steal_ns / total:.2f} % since boot" if total else "steal unknown"
    try:
        hierarchy, path = locate(os.getpid())
        cgroups = f"CPU limits from cgroup {hierarchy.version} at {cgroup_dir(hierarchy, path)}"
    except CgroupUnavailable as error:
        cgroups = f"no CPU throttling view ({error})"
    return CollectorStatus(True, f"/proc/stat ({steal}), run-queue wait from schedstat, {cgroups}")


def render_doctor(statuses: dict[str, CollectorStatus], *, as_json: bool) -> str:
    if as_json:
        table = {name: {"available": status.available, "reason": status.reason}
                 for name, status in statuses.items()}
        return json.dumps(table, indent=2, ensure_ascii=False)
    width = max((len(name) for name in statuses), default=0)
    return "\n".join(f"{name:<{width}}  {'ok' if status.available else 'no'}  {status.reason}"
                     for name, status in statuses.items())

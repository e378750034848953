"""The measure stage: warm-up, then N repetitions, each a load window with its CPU and kernel captures.

Capture alignment inside one repetition of D seconds (docs/architecture.md "Capture windows"):
    t=0            bpftrace already attached (we wait for its attached_probes line first)
    t=0            ghz starts
    t=o            CPU profile request starts: o = cpu.start_offset_s, default min(1 s, D/10)
    t=o+N          profile ends: N = floor(D - 2·o) whole seconds (pprof takes integer seconds)
    t=D            ghz ends; bpftrace is stopped (SIGINT) right after
so the profile lies inside the load window and one profile request at a time reaches the service.
The record is saved after every repetition: a failure midway keeps what was measured.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from perfgate.capture.pprof import ProfileUnavailable, fetch_cpu_profile, parse_profile
from perfgate.capture.runq import RunqCollector, RunqUnavailable
from perfgate.config import Config, ServiceConfig
from perfgate.environment import fingerprint
from perfgate.errors import PerfgateError, ProfileError
from perfgate.load.ghz import LoadWindow, run_ghz
from perfgate.progress import Progress
from perfgate.record import CpuCapture, Repetition, RunqCapture, RunRecord
from perfgate.service import ManagedService, RunningService

MIN_PROFILE_SECONDS = 1


@dataclass(frozen=True)
class Collectors:
    """Who the kernel view filters on and where CPU profiles come from, for one service instance."""

    pprof_url: str | None
    service_comm: str | None
    service_pids: tuple[int, ...] = ()


@dataclass
class Session:
    """Mutable state of one side's measurement: the record grows and is saved after each repetition."""

    config: Config
    folder: Path
    ghz: str
    progress: Progress
    record: RunRecord
    next_index: int = 1
    profile_lock: threading.Lock = field(default_factory=threading.Lock)

    def save(self) -> None:
        self.record = self.record.save(self.folder)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def load_window(config: Config) -> LoadWindow:
    load = config.load
    return LoadWindow(duration_s=load.duration_s, total=load.total, concurrency=load.concurrency,
                      connections=load.connections, rps=load.rps, request_timeout_s=load.request_timeout_s,
                      max_run_s=load.max_run_s)


def new_session(config: Config, folder: Path, *, role: str, ghz: str, progress: Progress) -> Session:
    load = config.load
    record = RunRecord(
        role=role, created_at=utc_now(), config_digest=config.digest(),
        target={"address": config.target.address, "call": config.target.call},
        load_settings={"concurrency": load.concurrency, "connections": load.connections,
                       "duration_s": load.duration_s, "total": load.total, "rps": load.rps,
                       "warmup_s": load.warmup_s, "repetitions": load.repetitions},
        environment=fingerprint(ghz), repetitions=(), complete=False)
    session = Session(config, folder, ghz, progress, record)
    session.save()
    return session


def measure(config: Config, folder: Path, *, role: str, ghz: str, progress: Progress) -> RunRecord:
    """Baseline-or-candidate mode: one service (started here if configured), warm-up, N repetitions."""
    session = new_session(config, folder, role=role, ghz=ghz, progress=progress)
    with _failure_recorded(session), running_service(config.service, config, folder, ghz) as service:
        collectors = collectors_for(config, service)
        warm_up(session)
        for _ in range(config.load.repetitions):
            run_repetition(session, collectors)
    return finish(session)


def measure_interleaved(config: Config, folder: Path, *, ghz: str, progress: Progress
                        ) -> tuple[RunRecord, RunRecord]:
    """Same-runner mode: base and head builds take turns, A B A B …, each started fresh."""
    assert config.compare.baseline_service is not None and config.service is not None
    sides = [(new_session(config, folder / "baseline", role="baseline", ghz=ghz, progress=progress),
              config.compare.baseline_service),
             (new_session(config, folder / "candidate", role="candidate", ghz=ghz, progress=progress),
              config.service)]
    for _ in range(config.load.repetitions):
        for session, service_config in sides:
            with _failure_recorded(session), \
                    running_service(service_config, config, session.folder, ghz) as service:
                warm_up(session)
                run_repetition(session, collectors_for(config, service))
    return finish(sides[0][0]), finish(sides[1][0])


def finish(session: Session) -> RunRecord:
    session.record = replace(session.record, complete=True)
    session.save()
    return session.record


@contextlib.contextmanager
def _failure_recorded(session: Session) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        reason = error.message if isinstance(error, PerfgateError) else f"{type(error).__name__}: {error}"
        session.record = session.record.with_note(f"run stopped early: {reason}")
        session.save()
        raise


@contextlib.contextmanager
def running_service(service_config: ServiceConfig | None, config: Config, folder: Path,
                    ghz: str) -> Iterator[RunningService | None]:
    if service_config is None:
        yield None
        return
    with ManagedService(service_config, config.target.address, folder / "service.log", ghz=ghz) as service:
        yield service


def collectors_for(config: Config, service: RunningService | None) -> Collectors:
    comm = config.kernel.service_comm or (service.comm if service else None)
    pids = config.kernel.service_pids or ((service.pid,) if service else ())
    return Collectors(pprof_url=config.cpu.pprof_url if config.cpu.enabled else None,
                      service_comm=comm, service_pids=tuple(pids))


def warm_up(session: Session) -> None:
    seconds = session.config.load.warmup_s
    if seconds <= 0:
        return
    window = replace(load_window(session.config), duration_s=seconds, total=None)
    session.progress.info(f"warm-up: {seconds:g} s of load, discarded")
    run_ghz(session.ghz, session.config.target, window, session.folder / "load" / "warmup.json", name="warm-up")


def run_repetition(session: Session, collectors: Collectors) -> Repetition:
    index, config = session.next_index, session.config
    session.next_index += 1
    names = RepetitionFiles(index)
    session.progress.begin(f"repetition {index}/{config.load.repetitions}")
    started = utc_now()
    load, failure = None, None
    runq_collector, runq_capture = start_runq(config, collectors, session.folder / names.runq)
    cpu_capture_thread = CpuCaptureThread(session, collectors, names)
    cpu_before = process_cpu_ns(collectors.service_pids)
    service_cpu = None
    try:
        cpu_capture_thread.start()
        load = run_ghz(session.ghz, config.target, load_window(config), session.folder / names.load,
                       name=f"perfgate repetition {index}")
        service_cpu = _delta(cpu_before, process_cpu_ns(collectors.service_pids))
    except PerfgateError as error:
        failure = error.message
        raise
    finally:
        cpu = cpu_capture_thread.finish()
        runq = stop_runq(runq_collector, runq_capture)
        repetition = Repetition(index=index, started_at=started, ended_at=utc_now(), load=load,
                                load_file=names.load, cpu=cpu, runq=runq, failure=failure,
                                service_cpu_ns=service_cpu)
        session.record = session.record.with_repetition(repetition)
        session.save()
    session.progress.end(f"{load.rps:.0f} rps, p95 {load.p95_ns / 1e6:.2f} ms" if load and load.p95_ns else "")
    _require_collectors(config, repetition)
    return repetition


@dataclass(frozen=True)
class RepetitionFiles:
    index: int

    @property
    def load(self) -> str:
        return f"load/rep-{self.index:02d}.json"

    @property
    def cpu(self) -> str:
        return f"cpu/rep-{self.index:02d}.pb.gz"

    @property
    def runq(self) -> str:
        return f"runq/rep-{self.index:02d}.jsonl"


def _require_collectors(config: Config, repetition: Repetition) -> None:
    """cpu.required / kernel.required turn a missing capture into a tool failure (exit 3)."""
    if config.cpu.required and repetition.cpu.status != "ok":
        raise ProfileUnavailable(repetition.cpu.reason or "no profile")
    if config.kernel.required and repetition.runq.status not in ("ok",):
        raise RunqUnavailable(repetition.runq.reason or "no kernel data")


# ---------------------------------------------------------------- CPU time of the service
def process_cpu_ns(pids: tuple[int, ...]) -> int | None:
    """utime + stime of the service's processes (all threads), from /proc/PID/stat; None if unreadable.

    Exact to a clock tick, so CPU per request from it is far less noisy than from 100 Hz profile samples.
    """
    if not pids:
        return None
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _delta(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None and after >= before else None


# ---------------------------------------------------------------- CPU profile capture
def profile_plan(config: Config) -> tuple[float, int] | str:
    """(start offset, whole seconds) of the profile inside the load window, or why there is none."""
    duration = config.load.duration_s
    if duration is None:
        return "load.total is set; CPU profiles need a timed window (set load.duration_s)"
    offset = config.cpu.start_offset_s if config.cpu.start_offset_s is not None else min(1.0, duration / 10)
    seconds = math.floor(duration - 2 * offset)
    if seconds < MIN_PROFILE_SECONDS:
        return (f"load.duration_s {duration:g} s leaves no whole second for a profile after a {offset:g} s offset "
                f"at each end; use at least {2 * offset + 1:g} s")
    return offset, seconds


class CpuCaptureThread:
    """Fetches one CPU profile inside the load window, off the main thread; never two at once."""

    def __init__(self, session: Session, collectors: Collectors, names: RepetitionFiles) -> None:
        self.session = session
        self.url = collectors.pprof_url
        self.names = names
        self.result: CpuCapture = CpuCapture(status="disabled", reason=self._disabled_reason())
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def _disabled_reason(self) -> str:
        if not self.session.config.cpu.enabled:
            return "cpu.enabled is false"
        return "set cpu.pprof_url to the service's net/http/pprof address to capture CPU profiles"

    def start(self) -> None:
        if self.url is None:
            return
        plan = profile_plan(self.session.config)
        if isinstance(plan, str):
            self.result = CpuCapture(status="unavailable", reason=f"cpu profile unavailable: {plan}")
            return
        self.thread = threading.Thread(target=self._capture, args=plan, daemon=True)
        self.thread.start()

    def _capture(self, offset: float, seconds: int) -> None:
        if self.cancel.wait(offset):
            self.result = CpuCapture(status="unavailable", reason="cpu profile unavailable: load window ended early")
            return
        with self.session.profile_lock:
            try:
                body = fetch_cpu_profile(self.url, seconds)
                path = self.session.folder / self.names.cpu
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)
                profile = parse_profile(path)
                self.result = CpuCapture(status="ok", file=self.names.cpu, total_cpu_ns=profile.total,
                                         duration_ns=profile.duration_ns)
            except (ProfileUnavailable, ProfileError) as error:
                self.result = CpuCapture(status="unavailable", reason=_unavailable(error.message))
            except (OSError, ValueError) as error:  # e.g. the record folder vanished; never a silent "disabled"
                self.result = CpuCapture(status="unavailable", reason=_unavailable(f"{type(error).__name__}: {error}"))

    def finish(self) -> CpuCapture:
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout=(self.session.config.load.duration_s or 0) + 30)
        return self.result


def _unavailable(message: str) -> str:
    prefix = "cpu profile unavailable: "
    return message if message.startswith(prefix) else prefix + message


# ---------------------------------------------------------------- kernel view capture
def start_runq(config: Config, collectors: Collectors, raw_path: Path) -> tuple[RunqCollector | None, RunqCapture]:
    if not config.kernel.enabled:
        return None, RunqCapture(status="disabled", reason="kernel.enabled is false")
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    collector = RunqCollector(service_comm=collectors.service_comm, service_pids=collectors.service_pids,
                              depth_interval_ms=config.kernel.depth_interval_ms, raw_path=raw_path)
    try:
        collector.start()
    except RunqUnavailable as error:
        if config.kernel.required:
            raise
        return None, RunqCapture(status="unavailable", reason=error.message)
    return collector, RunqCapture(status="ok", file=str(raw_path.relative_to(raw_path.parent.parent)))


def stop_runq(collector: RunqCollector | None, capture: RunqCapture) -> RunqCapture:
    if collector is None:
        return capture
    try:
        stats = collector.stop()
    except RunqUnavailable as error:
        return replace(capture, status="unavailable", reason=error.message)
    status = "ok" if stats.status == "ok" else "partial"
    return replace(capture, status=status, stats=stats, reason=None if status == "ok" else stats.note)

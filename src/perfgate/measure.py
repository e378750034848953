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
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from perfgate.build.manifest import BuiltSide
from perfgate.capacity import probe_pair, set_automatic_rate
from perfgate.capture.pprof import ProfileUnavailable, fetch_cpu_profile, parse_profile
from perfgate.capture.runq import RunqCollector, RunqUnavailable
from perfgate.config import Config, ServiceConfig
from perfgate.environment import fingerprint
from perfgate.errors import PerfgateError, ProfileError
from perfgate.load.ghz import LoadWindow, run_ghz
from perfgate.progress import Progress
from perfgate.record import CpuCapture, LoadSample, Repetition, RunqCapture, RunRecord
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
    label: str = ""
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


def measure_interleaved(config: Config, folder: Path, *, ghz: str, progress: Progress,
                        built: tuple[BuiltSide, BuiltSide] | None = None) -> tuple[RunRecord, RunRecord]:
    """Same-runner mode: both builds measured in this job, so the runner's own noise hits both sides.

    Without compare.baseline_address each repetition starts its build fresh on target.address, in A B B A
    order (see `pair_order`), and stops it after. With it both builds stay up on their own addresses for the
    whole run: `compare.schedule: alternate` takes turns with the load, `duet` loads both at once.
    """
    assert config.compare.baseline_service is not None and config.service is not None
    sides = (new_session(baseline_side_config(config), folder / "baseline", role="baseline", ghz=ghz,
                         progress=progress),
             new_session(config, folder / "candidate", role="candidate", ghz=ghz, progress=progress))
    pairing = {"pairing_id": f"interleaved {sides[0].record.created_at}", "schedule": interleave_schedule(config)}
    for index, session in enumerate(sides):
        session.label = f"{session.record.role} "
        session.record = replace(session.record, load_settings={**session.record.load_settings, **pairing})
        if built is not None:
            session.record = with_build(session.record, built[index])
        session.save()
    if not config.compare.concurrent_builds:
        _alternate_fresh_builds(sides)
    else:
        _with_running_builds(sides, duet=config.compare.schedule == "duet")
    return finish(sides[0]), finish(sides[1])


def with_build(record: RunRecord, side: BuiltSide) -> RunRecord:
    """A record of a build perfgate made: which side and commit it is, in its settings and its environment."""
    build = {"side": side.side, "ref": side.ref, "commit": side.commit}
    environment = replace(record.environment, git_sha=side.commit or record.environment.git_sha,
                          git_ref=side.ref or record.environment.git_ref)
    return replace(record, load_settings={**record.load_settings, "build": build}, environment=environment)


def interleave_schedule(config: Config) -> str:
    """restart (each build started per repetition), alternate (both up, load takes turns), duet (both loaded)."""
    return config.compare.schedule if config.compare.concurrent_builds else "restart"


def baseline_side_config(config: Config) -> Config:
    """The config the base build is measured with: its own command, and its own addresses when it has them."""
    compare = config.compare
    side = replace(config, service=compare.baseline_service)
    if compare.concurrent_builds:
        side = replace(side, target=replace(config.target, address=compare.baseline_address),
                       cpu=replace(config.cpu, pprof_url=compare.baseline_pprof_url))
    return side


def pair_order(pair_index: int) -> tuple[int, int]:
    """A B, then B A, …: a steady drift of the runner adds the same to both sides over every two pairs."""
    return (0, 1) if pair_index % 2 == 0 else (1, 0)


def _alternate_fresh_builds(sides: tuple[Session, Session]) -> None:
    for pair in range(sides[0].config.load.repetitions):
        for session in (sides[i] for i in pair_order(pair)):
            with _failure_recorded(session), \
                    running_service(session.config.service, session.config, session.folder, session.ghz) as service:
                warm_up(session)
                run_repetition(session, collectors_for(session.config, service))


def _with_running_builds(sides: tuple[Session, Session], *, duet: bool) -> None:
    with contextlib.ExitStack() as stack:
        collectors = []
        for session in sides:
            stack.enter_context(_failure_recorded(session))
            service = stack.enter_context(
                running_service(session.config.service, session.config, session.folder, session.ghz))
            collectors.append(collectors_for(session.config, service))
        for session in sides:
            warm_up(session)
        automatic_rate = duet and not sides[0].config.load.rps
        if automatic_rate:
            set_automatic_rate(sides, load_window(sides[0].config))
        for pair in range(sides[0].config.load.repetitions):
            if duet:
                if automatic_rate:
                    probe_pair(sides, load_window(sides[0].config), pair_order(pair))
                run_together(sides, tuple(collectors))
                continue
            for i in pair_order(pair):
                run_repetition(sides[i], collectors[i])


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
    """kernel.service_comm, when set, filters the service-only run-queue histogram by thread name (e.g. for a
    wrapper script); otherwise the service's pids do, which also tells two builds with one name apart."""
    pids = config.kernel.service_pids or ((service.pid,) if service else ())
    return Collectors(pprof_url=config.cpu.pprof_url if config.cpu.enabled else None,
                      service_comm=config.kernel.service_comm, service_pids=tuple(pids))


def warm_up(session: Session) -> None:
    seconds = session.config.load.warmup_s
    if seconds <= 0:
        return
    window = replace(load_window(session.config), duration_s=seconds, total=None)
    session.progress.info(f"warm-up: {seconds:g} s of load, discarded")
    run_ghz(session.ghz, session.config.target, window, session.folder / "load" / "warmup.json", name="warm-up")


def run_repetition(session: Session, collectors: Collectors) -> Repetition:
    return run_together((session,), (collectors,))[0]


def run_together(sessions: tuple[Session, ...], collectors: tuple[Collectors, ...]) -> tuple[Repetition, ...]:
    """One repetition of each session, their load windows at the same time (one session: the usual case).

    Several sessions share one kernel collector, filtering on all their pids, so the machine-wide view is
    one measurement of the window they shared; its raw output is copied into every record folder.
    """
    runs = [_RepetitionRun.begin(session, side) for session, side in zip(sessions, collectors, strict=True)]
    first = runs[0]
    progress = first.session.progress
    label = first.session.label if len(runs) == 1 else "both builds: "
    progress.begin(f"{label}repetition {first.names.index}/{first.session.config.load.repetitions}")
    runq_collector, runq_capture = start_runq(first.session.config, _merged(collectors),
                                              first.session.folder / first.names.runq)
    try:
        for run in runs:
            run.start_load()
        _run_loads(runs)
    finally:
        runq = stop_runq(runq_collector, runq_capture)
        for run in runs:
            run.finish(runq, copy_runq_from=first.session.folder)
    progress.end("; ".join(filter(None, (run.summary() for run in runs))))
    for run in runs:
        _require_collectors(run.session.config, run.repetition)
    return tuple(run.repetition for run in runs)


def _merged(collectors: tuple[Collectors, ...]) -> Collectors:
    if len(collectors) == 1:
        return collectors[0]
    comms = {c.service_comm for c in collectors}
    pids = tuple(pid for c in collectors for pid in c.service_pids)
    return Collectors(pprof_url=None, service_comm=comms.pop() if len(comms) == 1 else None, service_pids=pids)


def _run_loads(runs: list[_RepetitionRun]) -> None:
    if len(runs) == 1:
        runs[0].run_load()
        return
    with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="perfgate-load") as pool:
        futures = [pool.submit(run.run_load) for run in runs]
    for future in futures:
        future.result()  # re-raises the first side's failure once every side has finished


@dataclass
class _RepetitionRun:
    """One side's repetition while it is measured: started, loaded, then written into its record."""

    session: Session
    collectors: Collectors
    names: RepetitionFiles
    started: str
    cpu_thread: CpuCaptureThread
    load: LoadSample | None = None
    failure: str | None = None
    cpu_before: int | None = None
    service_cpu: int | None = None
    repetition: Repetition | None = None

    @classmethod
    def begin(cls, session: Session, collectors: Collectors) -> _RepetitionRun:
        names = RepetitionFiles(session.next_index)
        session.next_index += 1
        return cls(session, collectors, names, utc_now(), CpuCaptureThread(session, collectors, names))

    def start_load(self) -> None:
        self.cpu_before = process_cpu_ns(self.collectors.service_pids)
        self.cpu_thread.start()

    def run_load(self) -> None:
        session = self.session
        try:
            self.load = run_ghz(session.ghz, session.config.target, load_window(session.config),
                                session.folder / self.names.load, name=f"perfgate repetition {self.names.index}")
            self.service_cpu = _delta(self.cpu_before, process_cpu_ns(self.collectors.service_pids))
        except PerfgateError as error:
            self.failure = error.message
            raise

    def finish(self, runq: RunqCapture, *, copy_runq_from: Path) -> None:
        if self.session.folder != copy_runq_from and runq.file:
            _copy_if_present(copy_runq_from / runq.file, self.session.folder / runq.file)
        self.repetition = Repetition(index=self.names.index, started_at=self.started, ended_at=utc_now(),
                                     load=self.load, load_file=self.names.load, cpu=self.cpu_thread.finish(),
                                     runq=runq, failure=self.failure, service_cpu_ns=self.service_cpu)
        self.session.record = self.session.record.with_repetition(self.repetition)
        self.session.save()

    def summary(self) -> str:
        load = self.load
        if load is None or not load.p95_ns:
            return ""
        side = f"{self.session.record.role} " if self.session.label else ""
        return f"{side}{load.rps:.0f} rps, p95 {load.p95_ns / 1e6:.2f} ms"


def _copy_if_present(source: Path, destination: Path) -> None:
    if source.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


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
    """CPU time of the service's processes (all threads, exited ones too) in ns; None if any is unreadable.

    Read from each process's CPU-time clock (the scheduler's own nanosecond count), so CPU per request from
    it is exact, unlike 100 Hz profile samples or /proc/PID/stat's 10 ms clock ticks.
    """
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            total += time.clock_gettime_ns(process_cpu_clock(pid))
        except OSError:
            return None
    return total


def process_cpu_clock(pid: int) -> int:
    """The clock id clock_getcpuclockid(3) returns for `pid`: glibc's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)."""
    cpuclock_sched = 2
    return (~pid << 3) | cpuclock_sched


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

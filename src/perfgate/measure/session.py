"""One side's measurement session: the record that grows and is saved after every repetition.

A failure midway keeps what was measured: `failure_recorded` notes why the run stopped, saves, and re-raises.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from perfgate.config import Config, ServiceConfig
from perfgate.environment import fingerprint
from perfgate.errors import PerfgateError
from perfgate.files import unwritable
from perfgate.load.generator import LoadGenerator
from perfgate.load.latencies import latency_file_for
from perfgate.load.sample import LoadWindow
from perfgate.progress import Progress
from perfgate.record import RunRecord
from perfgate.service import ManagedService, RunningService


@dataclass(frozen=True)
class Collectors:
    """Who the kernel view filters on and where CPU profiles come from, for one service instance."""

    pprof_url: str | None
    service_comm: str | None
    service_pids: tuple[int, ...] = ()
    gc_log: Path | None = None  # where the service's GODEBUG=gctrace=1 lines go (perfgate started it)


@dataclass
class Session:
    """Mutable state of one side's measurement: the record grows and is saved after each repetition."""

    config: Config
    folder: Path
    generator: LoadGenerator
    progress: Progress
    record: RunRecord
    next_index: int = 1
    label: str = ""
    profile_lock: threading.Lock = field(default_factory=threading.Lock)

    def save(self) -> None:
        try:
            self.record = self.record.save(self.folder)
        except OSError as error:
            raise unwritable(self.folder, error) from None


@dataclass(frozen=True)
class RepetitionFiles:
    """Where one repetition's raw captures live, relative to the record folder."""

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

    @property
    def latency(self) -> str:
        return latency_file_for(self.load)


def merged_collectors(collectors: tuple[Collectors, ...]) -> Collectors:
    """What one kernel collector shared by several sides filters on: every side's pids."""
    if len(collectors) == 1:
        return collectors[0]
    comms = {c.service_comm for c in collectors}
    pids = tuple(pid for c in collectors for pid in c.service_pids)
    return Collectors(pprof_url=None, service_comm=comms.pop() if len(comms) == 1 else None, service_pids=pids)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def load_window(config: Config) -> LoadWindow:
    load = config.load
    return LoadWindow(duration_s=load.duration_s, total=load.total, concurrency=load.concurrency,
                      connections=load.connections, rps=load.rps, request_timeout_s=load.request_timeout_s,
                      max_run_s=load.max_run_s)


def new_session(config: Config, folder: Path, *, role: str, generator: LoadGenerator, progress: Progress) -> Session:
    load = config.load
    record = RunRecord(
        role=role, created_at=utc_now(), config_digest=config.digest(),
        target={"address": config.target.address, "call": config.target.call},
        load_settings={"concurrency": load.concurrency, "connections": load.connections,
                       "duration_s": load.duration_s, "total": load.total, "rps": load.rps,
                       "warmup_s": load.warmup_s, "repetitions": load.repetitions},
        environment=fingerprint(generator), repetitions=(), complete=False)
    session = Session(config, folder, generator, progress, record)
    session.save()
    return session


def finish(session: Session) -> RunRecord:
    session.record = replace(session.record, complete=True)
    session.save()
    return session.record


@contextlib.contextmanager
def failure_recorded(session: Session) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        reason = error.message if isinstance(error, PerfgateError) else f"{type(error).__name__}: {error}"
        session.record = session.record.with_note(f"run stopped early: {reason}")
        try:
            session.save()
        except PerfgateError as unsaved:  # the first error is the one to see; this one comes along
            if isinstance(error, PerfgateError):
                error.message += f"\n(and the record could not be saved: {unsaved.message})"
        raise


@contextlib.contextmanager
def running_service(service_config: ServiceConfig | None, config: Config, folder: Path,
                    generator: LoadGenerator) -> Iterator[RunningService | None]:
    if service_config is None:
        yield None
        return
    if config.layers.captured("gc"):
        from perfgate.capture.gc import traced_service

        service_config = traced_service(service_config, os.environ)
    with ManagedService(service_config, config.target.address, folder / "service.log", generator=generator) as service:
        yield service


def collectors_for(config: Config, service: RunningService | None) -> Collectors:
    """kernel.service_comm, when set, filters the service-only run-queue histogram by thread name (e.g. for a
    wrapper script); otherwise the service's pids do, which also tells two builds with one name apart."""
    pids = config.kernel.service_pids or ((service.pid,) if service else ())
    traced = service is not None and config.layers.captured("gc")
    return Collectors(pprof_url=config.cpu.pprof_url if config.cpu.enabled else None,
                      service_comm=config.kernel.service_comm, service_pids=tuple(pids),
                      gc_log=service.log_path if traced else None)


def warm_up(session: Session) -> None:
    seconds = session.config.load.warmup_s
    if seconds <= 0:
        return
    window = replace(load_window(session.config), duration_s=seconds, total=None)
    session.progress.info(f"warm-up: {seconds:g} s of load, discarded")
    session.generator.run(session.config.target, window, session.folder / "load" / "warmup.json", name="warm-up")

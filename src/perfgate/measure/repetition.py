"""One repetition: the load window with its captures (kernel view marked first, CPU profile inside it).

Capture alignment inside one repetition of D seconds (docs/architecture.md "Capture windows"):
    t<0            bpftrace attached once for the run, before the warm-up (measure/kernel.py)
    t<0            goroutine snapshot (measure/layers.py)
    t=0            the window's start mark (a few ms), then ghz starts
    t=o            CPU profile request starts (see measure/cpu.py), with the allocs/mutex/block delta profiles
    t=D            ghz ends; the window's end mark
The repetition is written into the record, and the record saved, as soon as its window ends.
"""

from __future__ import annotations

import contextlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from perfgate.capture.contention import ContentionWindow
from perfgate.capture.pprof import ProfileUnavailable
from perfgate.capture.runq import RunqUnavailable
from perfgate.config import Config
from perfgate.errors import PerfgateError
from perfgate.load.sample import LoadSample
from perfgate.measure.contention import starved_text, watch_window
from perfgate.measure.cpu import CpuCaptureThread, RequestsSent, cpu_delta, process_cpu_ns
from perfgate.measure.gc import GcCollector
from perfgate.measure.kernel import KernelView
from perfgate.measure.layers import LayerCaptures, require_layers
from perfgate.measure.session import Collectors, RepetitionFiles, Session, load_window, utc_now
from perfgate.record_parts import Repetition, RunqCapture, SyscallCapture


def run_repetition(session: Session, collectors: Collectors, kernel: KernelView | None = None) -> Repetition:
    return run_together((session,), (collectors,), kernel)[0]


def run_together(sessions: tuple[Session, ...], collectors: tuple[Collectors, ...],
                 kernel: KernelView | None = None) -> tuple[Repetition, ...]:
    """One repetition of each session, their load windows at the same time (one session: the usual case).

    kernel: the run's collector, attached before the warm-up; the window is cut out of it by two marks.
    Without one (the `restart` schedule: a fresh build, new pids) a collector is attached for this window.
    Several sessions share the window: the machine-wide view is one measurement of it, each side's service
    view its own pids'; its raw output is copied into every record folder.
    """
    runs = [_RepetitionRun.begin(session, side) for session, side in zip(sessions, collectors, strict=True)]
    first = runs[0]
    progress = first.session.progress
    label = first.session.label if len(runs) == 1 else "both builds: "
    progress.begin(f"{label}repetition {first.names.index}/{first.session.config.load.repetitions}")
    with contextlib.ExitStack() as stack:
        if kernel is None:
            run_file = first.session.folder / first.names.runq.replace(".jsonl", ".run.jsonl")
            kernel = stack.enter_context(KernelView.open(first.session.config, collectors, run_file))
        watch = watch_window(collectors, kernel.collector)
        windows: tuple[ContentionWindow | None, ...] = (None,) * len(runs)
        kernel.begin()
        try:
            watch.start()
            for run in runs:
                run.start_load()
            _run_loads(runs)
            windows = watch.stop()
        finally:
            window = kernel.end(first.session.folder / first.names.runq)
            for run, contention in zip(runs, windows, strict=True):
                syscalls = kernel.syscalls_off(run.session.config, run.collectors) or window.syscalls(run.collectors)
                run.finish(window.capture(run.collectors), syscalls, copy_runq_from=first.session.folder,
                           contention=contention)
    progress.end("; ".join(filter(None, (run.summary() for run in runs))))
    for run in runs:
        _require_collectors(run.session.config, run.repetition)
        require_layers(run.session, run.repetition)
    return tuple(run.repetition for run in runs)


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
    layers: LayerCaptures
    gc: GcCollector
    sent: RequestsSent
    load: LoadSample | None = None
    failure: str | None = None
    cpu_before: int | None = None
    service_cpu: int | None = None
    repetition: Repetition | None = None
    contention: ContentionWindow | None = None

    @classmethod
    def begin(cls, session: Session, collectors: Collectors) -> _RepetitionRun:
        names = RepetitionFiles(session.next_index)
        session.next_index += 1
        sent = RequestsSent()
        return cls(session, collectors, names, utc_now(), CpuCaptureThread(session, collectors, names, sent),
                   LayerCaptures(session, collectors, names.index, sent), GcCollector(session, collectors, names.index),
                   sent)

    def start_load(self) -> None:
        self.layers.start()  # its goroutine snapshot first: the service's CPU clock is read after it
        self.gc.start()
        self.cpu_before = process_cpu_ns(self.collectors.service_pids)
        self.cpu_thread.start()
        self.sent.wait()  # profiles that cover the whole window are on the wire before its first call

    def run_load(self) -> None:
        session = self.session
        try:
            self.load = session.generator.run(session.config.target, load_window(session.config),
                                session.folder / self.names.load, name=f"perfgate repetition {self.names.index}",
                                latencies_to=session.folder / self.names.latency)
            self.service_cpu = cpu_delta(self.cpu_before, process_cpu_ns(self.collectors.service_pids))
            self.gc.stop()
            self.layers.load_done()
        except PerfgateError as error:
            self.failure = error.message
            raise

    def finish(self, runq: RunqCapture, syscalls: SyscallCapture, *, copy_runq_from: Path,
               contention: ContentionWindow | None = None) -> None:
        if self.session.folder != copy_runq_from and runq.file:
            _copy_if_present(copy_runq_from / runq.file, self.session.folder / runq.file)
        self.contention = contention
        repetition = Repetition(index=self.names.index, started_at=self.started, ended_at=utc_now(),
                                load=self.load, load_file=self.names.load, cpu=self.cpu_thread.finish(),
                                runq=runq, failure=self.failure, service_cpu_ns=self.service_cpu,
                                latency_file=self.names.latency if self.load is not None else None,
                                contention=contention, syscalls=syscalls, gc=self.gc.capture())
        self.repetition = self.layers.finish(repetition)
        self.session.record = self.session.record.with_repetition(self.repetition)
        self.session.save()

    def summary(self) -> str:
        load = self.load
        if load is None or not load.p95_ns:
            return ""
        side = f"{self.session.record.role} " if self.session.label else ""
        starved = starved_text(self.contention, self.names.index, self.session.config)
        return f"{side}{load.rps:.0f} rps, p95 {load.p95_ns / 1e6:.2f} ms{starved}"


def _copy_if_present(source: Path, destination: Path) -> None:
    if source.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)


def _require_collectors(config: Config, repetition: Repetition) -> None:
    """cpu.required / kernel.required turn a missing capture into a tool failure (exit 3)."""
    if config.cpu.required and repetition.cpu.status != "ok":
        raise ProfileUnavailable(repetition.cpu.reason or "no profile")
    if config.kernel.required and repetition.runq.status not in ("ok",):
        raise RunqUnavailable(repetition.runq.reason or "no kernel data")

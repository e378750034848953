"""The kernel view of a run: one run-queue collector attached before the warm-up and cut into load windows.

bpftrace costs 0.5-1.3 s to attach and 0.2-0.4 s to stop, all outside the load window; started once per
run, a repetition pays only its two window marks (capture/runq_windows.py). Each side of a duet takes its
own service scope from the shared window. The `restart` schedule starts a fresh build every repetition,
so its pids are new each time: `run_together` opens a view for that one window.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from perfgate.capture.runq import CutWindow, RunqCollector, RunqUnavailable
from perfgate.config import Config
from perfgate.measure.session import Collectors, merged_collectors
from perfgate.record_parts import RunqCapture, SyscallCapture

SYSCALLS = "syscalls"

RUN_FILE = "runq/run.jsonl"  # everything bpftrace printed over the run; each window's lines also go to its own file


class KernelView:
    """One bpftrace for many load windows, or why there is none (`unavailable`)."""

    def __init__(self, collector: RunqCollector | None, unavailable: RunqCapture | None = None, *,
                 required: bool = False) -> None:
        self.collector = collector
        self.unavailable = unavailable
        self.required = required
        self.attached = collector is None

    @classmethod
    def open(cls, config: Config, collectors: tuple[Collectors, ...], raw_path: Path) -> KernelView:
        """Start bpftrace now (before the warm-up), filtering on every side's service. It compiles and
        attaches while the warm-up runs; the first window waits for it. kernel.required makes a failure raise."""
        merged = merged_collectors(collectors)
        if not config.kernel.enabled:
            return cls(None, RunqCapture(status="disabled", reason="kernel.enabled is false"))
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        collector = RunqCollector(service_comm=merged.service_comm, service_pids=merged.service_pids,
                                  depth_interval_ms=config.kernel.depth_interval_ms, raw_path=raw_path,
                                  syscalls=config.layers.captured(SYSCALLS))
        try:
            collector.start(wait=False)
        except RunqUnavailable as error:
            if config.kernel.required:
                raise
            return cls(None, RunqCapture(status="unavailable", reason=error.message))
        return cls(collector, required=config.kernel.required)

    def begin(self) -> None:
        if not self.attached:
            self._wait_attached()
        if self.collector is not None:
            self.collector.begin_window()

    def _wait_attached(self) -> None:
        assert self.collector is not None
        self.attached = True
        try:
            self.collector.wait_started()
        except RunqUnavailable as error:
            self.collector = None  # wait_started reaped it
            if self.required:
                raise
            self.unavailable = RunqCapture(status="unavailable", reason=error.message)

    def end(self, raw_path: Path) -> Window:
        if self.collector is None:
            return Window(None, None, self.unavailable)
        return Window(self.collector.end_window(raw_path), raw_path, None)

    def syscalls_off(self, config: Config, collectors: Collectors) -> SyscallCapture | None:
        """Why this view times no system calls for a side (a capture that says so), or None when it does."""
        if not config.layers.captured(SYSCALLS):
            return SyscallCapture(status="disabled", reason="layers.enabled leaves out syscalls")
        if self.collector is None:
            why = self.unavailable.reason if self.unavailable is not None else "no kernel view"
            return SyscallCapture(status="unavailable", reason=f"system calls unavailable: {why}")
        if not collectors.service_pids or collectors.service_comm:
            return SyscallCapture(status="unavailable", reason=(
                "system calls unavailable: they are timed for the service's process ids, and perfgate knows "
                "none (let perfgate start the service, or set kernel.service_pids; kernel.service_comm alone "
                "is not enough)"))
        return None

    def close(self) -> None:
        """Detach bpftrace (SIGINT, its final maps into the run file); always reaped."""
        if self.collector is None:
            return
        if not self.attached:  # no window ever waited for it: nothing to keep, just reap it
            self.collector.close()
            return
        try:
            self.collector.stop()
        except RunqUnavailable:
            pass  # every window already has its own figures; the run's total is only for the raw file
        finally:
            self.collector.close()

    def __enter__(self) -> KernelView:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Window:
    """One load window of a KernelView; each side takes its capture with its own service pids."""

    def __init__(self, cut: CutWindow | None, raw_path: Path | None, unavailable: RunqCapture | None) -> None:
        self.cut, self.raw_path, self.unavailable = cut, raw_path, unavailable

    def capture(self, collectors: Collectors) -> RunqCapture:
        if self.cut is None or self.raw_path is None:
            assert self.unavailable is not None
            return self.unavailable
        stats = self.cut.stats(collectors.service_pids or None)
        status = "ok" if stats.status == "ok" else "partial"
        return RunqCapture(status=status, file=self._relative(), stats=stats,
                           reason=None if status == "ok" else stats.note)

    def syscalls(self, collectors: Collectors) -> SyscallCapture:
        """This side's system calls in the window (call after KernelView.syscalls_off said they are timed)."""
        assert self.cut is not None and self.raw_path is not None
        stats = self.cut.syscalls(collectors.service_pids)
        if isinstance(stats, str):
            return SyscallCapture(status="unavailable", reason=f"system calls unavailable: {stats}",
                                  file=self._relative())
        return SyscallCapture(status="ok", file=self._relative(), stats=stats)

    def _relative(self) -> str:
        assert self.raw_path is not None
        return str(Path(self.raw_path.parent.name) / self.raw_path.name)

"""Kernel view: run bpftrace/runqlat.bt once for a whole run and cut its output into load windows (RunqStats).

Whether bpftrace can run here (runq_access.py) raises RunqUnavailable with the fix in the message. The
parsing lives in runq_parse.py and the stats types in runq_stats.py; the names other stages use are
re-exported here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from perfgate.capture.runq_access import RunqUnavailable, bundled_script, check_prerequisites
from perfgate.capture.runq_parse import (
    BpftraceOutput,
    clean_stderr,
    describe_exit,
    parse_bpftrace_json,
    stats_from_output,
)
from perfgate.capture.runq_stats import (
    MACHINE,
    SERVICE,
    STATUS_OK,
    STATUS_PARTIAL,
    DepthSample,
    LatencyBucket,
    RunqLatency,
    RunqStats,
    longest_run_above,
)
from perfgate.capture.runq_windows import MARK_PREFIX, mark_window, window_stats
from perfgate.capture.syscalls import SyscallStats, kernel_program, window_syscalls
from perfgate.errors import ConfigError
from perfgate.procs import child_env, dies_with_perfgate

__all__ = ["MACHINE", "SERVICE", "STATUS_OK", "STATUS_PARTIAL", "DepthSample", "LatencyBucket",
           "RunqCollector", "RunqLatency", "RunqStats", "RunqUnavailable", "check_prerequisites",
           "longest_run_above", "parse_bpftrace_json", "stats_from_output"]

PROGRAM_FILE = "kernel.bt"  # the composed program, beside the run's raw output, when syscalls are timed too
MAX_SERVICE_PIDS = 8  # TGID slots in runqlat.bt ($4 .. $11)
MARK_TIMEOUT_S = 5.0  # bpftrace answers a mark within milliseconds; this long means it is stuck or gone
COMM_MAX_BYTES = 15  # the kernel's TASK_COMM_LEN - 1


def _printf_words(line: str) -> list[str]:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return []
    if isinstance(message, dict) and message.get("type") == "printf":
        return str(message.get("data", "")).split()
    return []


def possible_cpus() -> int:
    """Number of CPU ids to sample: highest id in /sys/devices/system/cpu/possible, plus one."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
        return max(int(part.split("-")[-1]) for part in text.split(",")) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def service_comm_arg(comm: str | None) -> str:
    """The comm as the kernel stores it: at most 15 bytes (longer names are truncated the same way)."""
    if not comm:
        return ""
    return comm.encode()[:COMM_MAX_BYTES].decode(errors="ignore")


# ---------------------------------------------------------------- the collector


class RunqCollector:
    """Run runqlat.bt for a whole run and cut its output into load windows.

        collector = RunqCollector(service_comm=None, service_pids=[pid], raw_path=folder / "runq" / "run.jsonl")
        collector.start()                    # returns once the probes are attached; before the warm-up
        for each repetition:
            collector.begin_window()
            ...load...
            stats = collector.end_window(folder / "runq" / "rep-01.jsonl").stats()   # that window's RunqStats
        collector.stop()                     # SIGINT; the whole run's RunqStats; bpftrace is always reaped

    or `with RunqCollector(...) as collector: ...load...` then `collector.stats` (the whole run).
    raw_path gets everything bpftrace printed; each window's lines also go to the file end_window is given.
    """

    def __init__(self, *, service_comm: str | None, service_pids: Sequence[int] = (),
                 depth_interval_ms: int = 100, bpftrace: str = "bpftrace", raw_path: Path,
                 script: Path | None = None, ncpus: int | None = None, syscalls: bool = False) -> None:
        problems = []
        if len(service_pids) > MAX_SERVICE_PIDS:
            problems.append(f"kernel.service_pids: at most {MAX_SERVICE_PIDS} pids, got {len(service_pids)}")
        if any(not isinstance(pid, int) or pid <= 0 for pid in service_pids):
            problems.append(f"kernel.service_pids: pids must be positive integers, got {list(service_pids)}")
        if depth_interval_ms < 1:
            problems.append(f"kernel.depth_interval_ms must be >= 1, got {depth_interval_ms}")
        if problems:
            raise ConfigError(problems)
        self.service_comm = service_comm_arg(service_comm) or None
        self.service_pids = tuple(service_pids)
        self.depth_interval_ms = depth_interval_ms
        self.bpftrace = bpftrace
        self.raw_path = Path(raw_path)
        self.script = Path(script) if script is not None else bundled_script()
        self.ncpus = ncpus or possible_cpus()
        # syscalls.bt's probes composed in (capture/syscalls.py); they need the service's pids
        self.syscalls = syscalls and bool(self.service_pids) and not self.service_comm
        self.stats: RunqStats | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stdout_lines: list[str] = []
        self._stderr_lines: list[str] = []
        self._readers: list[threading.Thread] = []
        self._started = threading.Event()
        self._marked: set[str] = set()
        self._mark_seen = threading.Condition()
        self._marks = 0
        # (start mark, index of the first line that may be its, why the window cannot be whole)
        self._window: tuple[str, int, str | None] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """bpftrace's exit code once it has exited (and been reaped), else None."""
        return self._process.poll() if self._process is not None else None

    def argv(self, executable: str | None = None) -> list[str]:
        """A thread name, when given, filters the service histogram; else the pids do (runqlat.bt's usage)."""
        by_pid = () if self.service_comm else self.service_pids
        pids = [str(pid) for pid in by_pid] + ["0"] * (MAX_SERVICE_PIDS - len(by_pid))
        return [executable or self.bpftrace, "-f", "json", str(self.script), str(self.ncpus),
                str(self.depth_interval_ms), self.service_comm or "", *pids, str(os.getpid())]

    def start(self, timeout_s: float = 30.0, *, wait: bool = True) -> None:
        """Launch bpftrace; return once its probes are attached and its BEGIN probe has run.

        wait=False returns at once (bpftrace compiles and attaches meanwhile, e.g. during the warm-up);
        `wait_started` or the first `begin_window` then waits for it."""
        if self._process is not None:
            raise RuntimeError("RunqCollector.start() called twice")
        executable = check_prerequisites(self.bpftrace)
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        if self.syscalls:
            self.script = self.raw_path.parent / PROGRAM_FILE
            self.script.write_text(kernel_program(syscalls=True), encoding="utf-8")
        raw = open(self.raw_path, "w", encoding="utf-8")  # closed by the stdout reader thread
        try:
            self._process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                dies_with_perfgate(self.argv(executable)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1, start_new_session=True,
                env=child_env())
        except OSError as error:
            raw.close()
            raise RunqUnavailable(f"cannot start {executable}: {error}") from error
        try:
            self._readers = [
                threading.Thread(target=self._read_stdout, args=(self._process.stdout, raw), daemon=True),
                threading.Thread(target=self._read_stderr, args=(self._process.stderr,), daemon=True),
            ]
            for reader in self._readers:
                reader.start()
            if wait:
                self.wait_started(timeout_s)
        except BaseException:
            self.close()
            raise

    def wait_started(self, timeout_s: float = 30.0) -> None:
        """Wait until the probes are attached; RunqUnavailable (bpftrace reaped) if they never are."""
        if self._process is None:
            raise RuntimeError("RunqCollector.wait_started() called before start()")
        try:
            self._wait_started(timeout_s)
        except BaseException:
            self.close()
            raise

    def _wait_started(self, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while not self._started.wait(0.05):
            if self._process.poll() is not None:
                self._readers[0].join(timeout=2)
                if self._started.is_set():
                    return  # it started and then died: stop() reports it as partial
                self._readers[1].join(timeout=2)
                raise RunqUnavailable(f"bpftrace could not attach runqlat.bt's probes "
                                      f"({describe_exit(self._process.returncode)}): {self.stderr_tail()}")
            if time.monotonic() >= deadline:
                raise RunqUnavailable(f"bpftrace did not attach its probes within {timeout_s:g} s "
                                      f"(stderr: {self.stderr_tail() or 'empty'}); the machine may be "
                                      "overloaded, or raise the start timeout")

    def _read_stdout(self, stream: Any, raw: Any) -> None:
        with raw:
            for line in stream:
                raw.write(line)
                raw.flush()
                self._stdout_lines.append(line)
                if not self._started.is_set() and _printf_words(line)[:1] == ["start"]:
                    self._started.set()
                elif '"marked ' in line:
                    self._note_marked(_printf_words(line))
        with self._mark_seen:  # wake a waiting mark: no more output will come
            self._mark_seen.notify_all()

    def _note_marked(self, words: list[str]) -> None:
        if len(words) == 2 and words[0] == "marked":
            with self._mark_seen:
                self._marked.add(words[1])
                self._mark_seen.notify_all()

    def _read_stderr(self, stream: Any) -> None:
        for line in stream:
            self._stderr_lines.append(line)

    @property
    def stderr_lines(self) -> tuple[str, ...]:
        return tuple(self._stderr_lines)

    def stderr_tail(self) -> str:
        return clean_stderr(self._stderr_lines)

    # ------------------------------------------------------------ windows
    def begin_window(self) -> None:
        """Mark the start of a load window (waits the few ms until bpftrace has printed its histograms)."""
        if self._window is not None:
            raise RuntimeError("RunqCollector.begin_window() called twice without end_window()")
        first_line = len(self._stdout_lines)
        try:
            self._window = (self._mark(), first_line, None)
        except RunqUnavailable as error:  # bpftrace died since the last window: this one says so, partial
            self._window = ("", first_line, error.reason)

    def end_window(self, raw_path: Path) -> CutWindow:
        """Mark the end of the window; its lines go to raw_path, and `.stats(pids)` gives its RunqStats.

        A dead or stuck bpftrace gives partial stats that say so; never raises for that.
        """
        if self._window is None:
            raise RuntimeError("RunqCollector.end_window() called before begin_window()")
        (start, first_line, problem), self._window = self._window, None
        try:
            end = self._mark() if problem is None else ""
        except RunqUnavailable as error:
            end, problem = "", error.reason
            if self._process is not None and self._process.poll() is not None and self._readers:
                self._readers[0].join(timeout=5)  # it is gone: take everything it printed before it went
        lines = self._stdout_lines[first_line:]
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text("".join(lines), encoding="utf-8")
        return CutWindow(self, parse_bpftrace_json(lines), start, end, problem)

    def _slots(self, service_pids: Sequence[int] | None) -> frozenset[int] | None:
        if service_pids is None or self.service_comm:
            return None
        return frozenset(i + 1 for i, pid in enumerate(self.service_pids) if pid in service_pids)

    def _mark(self) -> str:
        """Mark now; wait for bpftrace's answer. RunqUnavailable if it is gone or does not answer."""
        if self._process is None:
            raise RuntimeError("RunqCollector: mark before start()")
        self._marks += 1
        name = f"{MARK_PREFIX}{self._marks}"
        if self._process.poll() is not None:
            raise RunqUnavailable(f"bpftrace {describe_exit(self._process.returncode)} during the run "
                                  f"(stderr: {self.stderr_tail() or 'empty'})")
        try:
            mark_window(name)
        except OSError as error:
            raise RunqUnavailable(f"cannot mark a load window by renaming a thread: {error}") from error
        with self._mark_seen:
            answered = self._mark_seen.wait_for(
                lambda: name in self._marked or self._process.poll() is not None, timeout=MARK_TIMEOUT_S)
        if name not in self._marked:
            how = describe_exit(self._process.poll()) if answered else f"did not answer within {MARK_TIMEOUT_S:g} s"
            raise RunqUnavailable(f"bpftrace {how} when a load window was marked "
                                  f"(stderr: {self.stderr_tail() or 'empty'})")
        return name

    def stop(self, timeout_s: float = 10.0) -> RunqStats:
        """SIGINT bpftrace, wait for its final histograms (kill after timeout_s), parse. Always reaps."""
        if self.stats is not None:
            return self.stats
        if self._process is None:
            raise RuntimeError("RunqCollector.stop() called before start()")
        exited_early = self._process.poll() is not None
        killed_after_s = None
        try:
            if not exited_early:
                self._process.send_signal(signal.SIGINT)
                try:
                    self._process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    killed_after_s = timeout_s
        finally:
            self.close()
        output = parse_bpftrace_json(self._stdout_lines)
        self.stats = stats_from_output(
            output, returncode=self._process.returncode, depth_interval_ms=self.depth_interval_ms,
            ncpus=self.ncpus, service_comm=self.service_comm, service_pids=self.service_pids,
            exited_early=exited_early, killed_after_s=killed_after_s, stderr=self.stderr_tail())
        return self.stats

    def close(self) -> None:
        """Kill and reap bpftrace if it still runs, and finish reading its output. Idempotent."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                process.kill()
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> RunqCollector:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.close()


class CutWindow:
    """One load window cut out of a collector's output; each side of a duet takes its own service scope."""

    def __init__(self, collector: RunqCollector, output: BpftraceOutput, start: str, end: str,
                 problem: str | None) -> None:
        self.collector, self.output, self.start, self.end, self.problem = collector, output, start, end, problem

    def stats(self, service_pids: Sequence[int] | None = None) -> RunqStats:
        """service_pids: whose service histogram this side gets (one side of a duet); default all of them."""
        collector = self.collector
        return window_stats(self.output, self.start, self.end, slots=collector._slots(service_pids),
                            depth_interval_ms=collector.depth_interval_ms, ncpus=collector.ncpus,
                            service_comm=collector.service_comm,
                            service_pids=collector.service_pids if service_pids is None else tuple(service_pids),
                            problem=self.problem)

    def syscalls(self, service_pids: Sequence[int] | None = None) -> SyscallStats | str:
        """The service's system calls in this window (one side's pids), or why they are not known."""
        if not self.collector.syscalls:
            return "the kernel program did not time system calls"
        if self.problem:
            return self.problem
        return window_syscalls(self.output, self.start, self.end, slots=self.collector._slots(service_pids))

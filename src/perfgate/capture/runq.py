"""Kernel view: run bpftrace/runqlat.bt over a load window and parse its JSON output into RunqStats.

The script (src/perfgate/bpftrace/runqlat.bt) prints, one JSON object per line (`bpftrace -f json`):
  printf "start NCPUS DEPTH_MS"      once, from BEGIN: the probes are attached and SIGINT is handled
  printf "depth T_MS TOTAL MAX"      every DEPTH_MS: nr_running summed over CPUs, and of the deepest CPU
  printf "snapshot T_MS" + 2 hists   every second: the cumulative histograms so far
  printf "end T_MS" + 2 hists        on SIGINT/SIGTERM: the final histograms
`parse_bpftrace_json` reads those lines (and bpftrace's own: attached_probes, lost_events, blank lines);
`stats_from_output` turns them into the frozen `RunqStats` the run record stores per repetition.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from perfgate.errors import EXIT_TOOL, ConfigError, PerfgateError

STATUS_OK = "ok"
STATUS_PARTIAL = "partial"
MACHINE = "machine"
SERVICE = "service"
SCOPES = (MACHINE, SERVICE)
MACHINE_MAP = "@usecs"
SERVICE_MAP = "@svc_usecs"
MAX_SERVICE_PIDS = 8  # TGID slots in runqlat.bt ($4 .. $11)
COMM_MAX_BYTES = 15  # the kernel's TASK_COMM_LEN - 1
MEMLOCK_NOISE = "couldn't set RLIMIT_MEMLOCK"
STDERR_TAIL_LINES = 8
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")


class RunqUnavailable(PerfgateError):
    """The kernel view cannot run here; `reason` says why and how to fix it."""

    exit_code = EXIT_TOOL

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"kernel view unavailable: {reason}")


# ---------------------------------------------------------------- stats


@dataclass(frozen=True)
class LatencyBucket:
    """One histogram bucket with inclusive integer bounds in µs (bpftrace truncates ns/1000).

    low_us is None for an underflow bucket (lhist, or a negative hist value), high_us None for overflow.
    """

    low_us: int | None
    high_us: int | None
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"bucket count must be >= 0, got {self.count}")
        if self.low_us is not None and self.high_us is not None and self.high_us < self.low_us:
            raise ValueError(f"bucket bounds out of order: {self.low_us}..{self.high_us}")


@dataclass(frozen=True)
class RunqLatency:
    """Run-queue latency of one scope: bpftrace's log2 buckets and quantiles estimated from them."""

    buckets: tuple[LatencyBucket, ...] = ()

    @property
    def count(self) -> int:
        return sum(bucket.count for bucket in self.buckets)

    @property
    def p50_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.50)

    @property
    def p90_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.90)

    @property
    def p99_us(self) -> float | None:
        return quantile_from_buckets(self.buckets, 0.99)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": [{"low_us": b.low_us, "high_us": b.high_us, "count": b.count} for b in self.buckets],
            "count": self.count,
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunqLatency:
        # count and the quantiles are derived; they are written for readers of the JSON, not read back.
        return cls(tuple(LatencyBucket(b["low_us"], b["high_us"], int(b["count"])) for b in data["buckets"]))


def quantile_from_buckets(buckets: Sequence[LatencyBucket], q: float) -> float | None:
    """Estimate the q-quantile in µs: linear interpolation inside the bucket that holds rank q*N.

    A bucket [lo, hi] holds the real latencies [lo, hi+1) µs (bpftrace truncates), so the estimate
    moves smoothly from lo to hi+1 as the rank moves through the bucket (docs/statistics.md).
    """
    total = sum(bucket.count for bucket in buckets)
    if total == 0:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    rank = q * total
    below = 0
    for bucket in buckets:
        if bucket.count and below + bucket.count >= rank:
            return _interpolate(bucket, (rank - below) / bucket.count)
        below += bucket.count
    return _interpolate(next(b for b in reversed(buckets) if b.count), 1.0)


def _interpolate(bucket: LatencyBucket, fraction: float) -> float:
    if bucket.low_us is None:  # underflow: all we know is the upper bound
        return float(max(bucket.high_us or 0, 0))
    if bucket.high_us is None:  # overflow: all we know is the lower bound
        return float(bucket.low_us)
    low = max(bucket.low_us, 0)
    return low + (bucket.high_us + 1 - low) * max(fraction, 0.0)


@dataclass(frozen=True)
class DepthSample:
    """One run-queue depth sample: nr_running (queued + running tasks) read from every CPU's run queue."""

    t_ms: int  # since bpftrace started
    runnable_total: int  # summed over CPUs
    runnable_max: int  # the deepest CPU's


@dataclass(frozen=True)
class RunqStats:
    """The kernel view of one load window (one repetition)."""

    status: str  # STATUS_OK | STATUS_PARTIAL
    note: str  # "" when ok; what happened otherwise
    machine: RunqLatency
    service: RunqLatency | None  # None when no service filter (comm or pids) was given
    depth: tuple[DepthSample, ...]
    depth_interval_ms: int
    ncpus: int
    lost_events: int = 0
    window_ms: int | None = None  # bpftrace's running time: to its end, or to the last thing it printed
    service_comm: str | None = None
    service_pids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in (STATUS_OK, STATUS_PARTIAL):
            raise ValueError(f"RunqStats.status must be {STATUS_OK!r} or {STATUS_PARTIAL!r}, "
                             f"got {self.status!r}")

    def latency(self, scope: str) -> RunqLatency | None:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        return self.machine if scope == MACHINE else self.service

    def runq_p99_us(self, scope: str = MACHINE) -> float | None:
        latency = self.latency(scope)
        return latency.p99_us if latency is not None else None

    @property
    def depth_max_series(self) -> tuple[int, ...]:
        return tuple(sample.runnable_max for sample in self.depth)

    @property
    def depth_total_series(self) -> tuple[int, ...]:
        return tuple(sample.runnable_total for sample in self.depth)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "note": self.note,
            "machine": self.machine.to_dict(),
            "service": self.service.to_dict() if self.service is not None else None,
            "depth": {
                "interval_ms": self.depth_interval_ms,
                "ncpus": self.ncpus,
                "t_ms": [s.t_ms for s in self.depth],
                "runnable_total": [s.runnable_total for s in self.depth],
                "runnable_max": [s.runnable_max for s in self.depth],
            },
            "lost_events": self.lost_events,
            "window_ms": self.window_ms,
            "service_comm": self.service_comm,
            "service_pids": list(self.service_pids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunqStats:
        try:
            depth = data["depth"]
            columns = zip(depth["t_ms"], depth["runnable_total"], depth["runnable_max"], strict=True)
            return cls(
                status=data["status"],
                note=data["note"],
                machine=RunqLatency.from_dict(data["machine"]),
                service=RunqLatency.from_dict(data["service"]) if data["service"] is not None else None,
                depth=tuple(DepthSample(int(t), int(total), int(peak)) for t, total, peak in columns),
                depth_interval_ms=int(depth["interval_ms"]),
                ncpus=int(depth["ncpus"]),
                lost_events=int(data["lost_events"]),
                window_ms=data["window_ms"],
                service_comm=data["service_comm"],
                service_pids=tuple(int(pid) for pid in data["service_pids"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a RunqStats dict: {error!r}") from error


def longest_run_above(series: Iterable[float], threshold: float) -> int:
    """Length of the longest run of consecutive values strictly above threshold."""
    longest = current = 0
    for value in series:
        current = current + 1 if value > threshold else 0
        longest = max(longest, current)
    return longest


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class BpftraceOutput:
    """What runqlat.bt printed, read line by line; histograms are the last (cumulative) print of each."""

    attached_probes: int | None = None
    started: bool = False
    ended: bool = False
    start_ncpus: int | None = None
    start_depth_interval_ms: int | None = None
    end_ms: int | None = None
    last_snapshot_ms: int | None = None
    machine_buckets: tuple[LatencyBucket, ...] = ()
    service_buckets: tuple[LatencyBucket, ...] = ()
    histograms_printed: bool = False
    depth: tuple[DepthSample, ...] = ()
    lost_events: int = 0
    skipped_lines: tuple[str, ...] = ()  # not JSON or not understood (e.g. a line cut short by a kill)
    extra_maps: tuple[tuple[str, Any], ...] = field(default=())  # other maps/stats, by name, last print wins

    @property
    def last_ms(self) -> int | None:
        times = [t for t in (self.end_ms, self.last_snapshot_ms, self.depth[-1].t_ms if self.depth else None)
                 if t is not None]
        return max(times) if times else None


class _OutputBuilder:
    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.depth: list[DepthSample] = []
        self.skipped: list[str] = []
        self.extra: dict[str, Any] = {}
        self.lost_events = 0

    def line(self, raw: str) -> None:
        text = raw.strip()
        if not text:
            return
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self.skipped.append(text)
            return
        if not isinstance(message, dict) or not self._message(message.get("type"), message.get("data")):
            self.skipped.append(text)

    def _message(self, kind: Any, data: Any) -> bool:
        if kind == "attached_probes" and isinstance(data, dict):
            self.fields["attached_probes"] = int(data.get("probes", 0))
        elif kind == "lost_events" and isinstance(data, dict):
            self.lost_events += int(data.get("events", 0))
        elif kind == "printf" and isinstance(data, str):
            return all(self._printf(line.split()) for line in data.splitlines() if line.strip())
        elif kind == "hist" and isinstance(data, dict):
            for name, buckets in data.items():
                self._hist(name, buckets)
        elif kind in ("map", "stats") and isinstance(data, dict):
            self.extra.update(data)
        else:
            return False
        return True

    def _printf(self, words: list[str]) -> bool:
        try:
            numbers = [int(word) for word in words[1:]]
        except ValueError:
            return False
        match words[0], numbers:
            case "start", [ncpus, interval_ms]:
                self.fields.update(started=True, start_ncpus=ncpus, start_depth_interval_ms=interval_ms)
            case "depth", [t_ms, total, peak]:
                self.depth.append(DepthSample(t_ms, total, peak))
            case "snapshot", [t_ms]:
                self.fields["last_snapshot_ms"] = t_ms
            case "end", [t_ms]:
                self.fields.update(ended=True, end_ms=t_ms)
            case _:
                return False
        return True

    def _hist(self, name: str, buckets: Any) -> None:
        parsed = parse_hist_buckets(buckets) if isinstance(buckets, list) else None
        if name == MACHINE_MAP and parsed is not None:
            self.fields.update(machine_buckets=parsed, histograms_printed=True)
        elif name == SERVICE_MAP and parsed is not None:
            self.fields.update(service_buckets=parsed, histograms_printed=True)
        else:
            self.extra[name] = buckets

    def build(self) -> BpftraceOutput:
        return BpftraceOutput(**self.fields, depth=tuple(self.depth), lost_events=self.lost_events,
                              skipped_lines=tuple(self.skipped), extra_maps=tuple(self.extra.items()))


def parse_hist_buckets(buckets: Sequence[Mapping[str, Any]]) -> tuple[LatencyBucket, ...]:
    """bpftrace hist/lhist JSON buckets -> LatencyBucket (inclusive bounds; a missing min/max = open end)."""
    parsed = []
    for bucket in buckets:
        low, high = bucket.get("min"), bucket.get("max")
        parsed.append(LatencyBucket(None if low is None else int(low), None if high is None else int(high),
                                    int(bucket["count"])))
    return tuple(parsed)


def parse_bpftrace_json(lines: Iterable[str]) -> BpftraceOutput:
    """Parse runqlat.bt's `-f json` stdout. Blank lines and lines that are not bpftrace JSON are tolerated."""
    builder = _OutputBuilder()
    for line in lines:
        builder.line(line)
    return builder.build()


def stats_from_output(output: BpftraceOutput, *, returncode: int | None, depth_interval_ms: int, ncpus: int,
                      service_comm: str | None = None, service_pids: Sequence[int] = (),
                      exited_early: bool = False, killed_after_s: float | None = None,
                      stderr: str = "") -> RunqStats:
    """Turn parsed output into RunqStats; anything short of a clean end is `partial` with a note saying why.

    exited_early: bpftrace ended before perfgate stopped it; killed_after_s: it ignored SIGINT that long.
    """
    complete = output.ended and returncode == 0 and not exited_early and killed_after_s is None
    notes = [] if complete else [_partial_note(output, returncode, exited_early, killed_after_s, stderr)]
    if output.lost_events:
        notes.append(f"bpftrace lost {output.lost_events} events (depth samples may be missing)")
    has_filter = bool(service_comm) or bool(service_pids)
    return RunqStats(
        status=STATUS_OK if complete else STATUS_PARTIAL,
        note="; ".join(notes),
        machine=RunqLatency(output.machine_buckets),
        service=RunqLatency(output.service_buckets) if has_filter else None,
        depth=output.depth,
        depth_interval_ms=output.start_depth_interval_ms or depth_interval_ms,
        ncpus=output.start_ncpus or ncpus,
        lost_events=output.lost_events,
        window_ms=output.last_ms,
        service_comm=service_comm or None,
        service_pids=tuple(service_pids),
    )


def _partial_note(output: BpftraceOutput, returncode: int | None, exited_early: bool,
                  killed_after_s: float | None, stderr: str) -> str:
    if killed_after_s is not None:
        how = f"bpftrace did not exit within {killed_after_s:g} s of SIGINT and was killed"
    else:
        how = f"bpftrace {describe_exit(returncode)}"
        if exited_early or not output.ended:
            how += " before the end of the window"
    if stderr:
        how += f" (stderr: {stderr})"
    kept = f"{len(output.depth)} depth samples kept"
    if output.ended and output.histograms_printed:
        histogram = "histograms kept"
    elif output.last_snapshot_ms is not None:
        histogram = f"histograms up to {output.last_snapshot_ms / 1000:.1f} s kept"
    else:
        histogram = "histograms lost"
    return f"partial: {how}; {kept}, {histogram}"


def clean_stderr(lines: Iterable[str], keep: int = STDERR_TAIL_LINES) -> str:
    """bpftrace's stderr for a message: without the harmless RLIMIT_MEMLOCK warning, last lines joined."""
    kept = [line.strip() for line in lines if line.strip() and MEMLOCK_NOISE not in line]
    return " | ".join(kept[-keep:])


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"exited with {returncode} (killed by {name})"
    return f"exited with {returncode}"


def _is_start_line(line: str) -> bool:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return False
    return (isinstance(message, dict) and message.get("type") == "printf"
            and str(message.get("data", "")).startswith("start "))


# ---------------------------------------------------------------- availability


def bundled_script() -> Path:
    return Path(str(resources.files("perfgate").joinpath("bpftrace", "runqlat.bt")))


def find_bpftrace(bpftrace: str) -> str:
    """The bpftrace executable's path, or RunqUnavailable saying how to get one."""
    path = shutil.which(bpftrace)
    if path is None:
        raise RunqUnavailable(f"bpftrace not found ({bpftrace!r} is not an executable on PATH); install it "
                              "(Debian/Ubuntu: apt-get install bpftrace; scripts/setup.sh --system does) "
                              "and put it on PATH")
    return path


def privilege_problem() -> str | None:
    """Why this process cannot load BPF programs, or None. bpftrace 0.17 insists on euid 0."""
    if os.geteuid() != 0:
        return (f"perfgate is not running as root (euid {os.geteuid()}), and bpftrace runs only as root; "
                "run perfgate with sudo, or in CI as root / in a --privileged container")
    caps = effective_capabilities()
    def has(cap: int) -> bool:
        return caps is None or bool(caps >> cap & 1)

    if not (has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON))):
        return ("running as root but without CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON (a confined container?); "
                "run the container with --privileged, or add those capabilities")
    return None


def effective_capabilities() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        return None
    return None


def tracefs_problem() -> str | None:
    if any((directory / "events" / "sched" / "sched_switch").is_dir() for directory in TRACEFS_DIRS):
        return None
    return ("tracefs is not mounted (no sched tracepoints under /sys/kernel/tracing or "
            "/sys/kernel/debug/tracing); mount it: mount -t tracefs nodev /sys/kernel/tracing "
            "(in a container also bind-mount /sys/kernel/tracing or /sys/kernel/debug)")


def btf_problem() -> str | None:
    if BTF_VMLINUX.exists():
        return None
    return ("the kernel has no BTF (/sys/kernel/btf/vmlinux is missing) and runqlat.bt reads the run queue "
            "through it; use a kernel built with CONFIG_DEBUG_INFO_BTF=y "
            "(most distribution kernels since 2020 are)")


def check_prerequisites(bpftrace: str) -> str:
    """The bpftrace path if everything the kernel view needs is here; RunqUnavailable otherwise."""
    path = find_bpftrace(bpftrace)
    for problem in (privilege_problem(), tracefs_problem(), btf_problem()):
        if problem is not None:
            raise RunqUnavailable(problem)
    return path


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
    """Run runqlat.bt around one load window.

        collector = RunqCollector(service_comm="greeter", raw_path=folder / "runq" / "rep-01.jsonl")
        collector.start()          # returns once the probes are attached
        ...load...
        stats = collector.stop()   # SIGINT, parse; bpftrace is always reaped

    or `with RunqCollector(...) as collector: ...load...` then `collector.stats`.
    """

    def __init__(self, *, service_comm: str | None, service_pids: Sequence[int] = (),
                 depth_interval_ms: int = 100, bpftrace: str = "bpftrace", raw_path: Path,
                 script: Path | None = None, ncpus: int | None = None) -> None:
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
        self.stats: RunqStats | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stdout_lines: list[str] = []
        self._stderr_lines: list[str] = []
        self._readers: list[threading.Thread] = []
        self._started = threading.Event()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def argv(self, executable: str | None = None) -> list[str]:
        pids = [str(pid) for pid in self.service_pids] + ["0"] * (MAX_SERVICE_PIDS - len(self.service_pids))
        return [executable or self.bpftrace, "-f", "json", str(self.script), str(self.ncpus),
                str(self.depth_interval_ms), self.service_comm or "", *pids]

    def start(self, timeout_s: float = 30.0) -> None:
        """Launch bpftrace; return once its probes are attached and its BEGIN probe has run."""
        if self._process is not None:
            raise RuntimeError("RunqCollector.start() called twice")
        executable = check_prerequisites(self.bpftrace)
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw = open(self.raw_path, "w", encoding="utf-8")  # closed by the stdout reader thread
        try:
            self._process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                self.argv(executable), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1, start_new_session=True)
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
                if not self._started.is_set() and _is_start_line(line):
                    self._started.set()

    def _read_stderr(self, stream: Any) -> None:
        for line in stream:
            self._stderr_lines.append(line)

    @property
    def stderr_lines(self) -> tuple[str, ...]:
        return tuple(self._stderr_lines)

    def stderr_tail(self) -> str:
        return clean_stderr(self._stderr_lines)

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

"""Parse runqlat.bt's `bpftrace -f json` stdout into BpftraceOutput, then RunqStats.

The script (src/perfgate/bpftrace/runqlat.bt) prints, one JSON object per line:
  printf "start NCPUS DEPTH_MS"      once, from BEGIN: the probes are attached and SIGINT is handled
  printf "depth T_MS TOTAL MAX"      every DEPTH_MS: nr_running summed over CPUs, and of the deepest CPU
  printf "mark NAME T_MS" + hists    when perfgate marks a window's edge: the cumulative histograms so far
  printf "marked NAME"               after them (capture/runq_windows.py cuts windows out of the marks)
  printf "end T_MS" + 2 hists        on SIGINT/SIGTERM: the final histograms
  (older versions printed "snapshot T_MS" + 2 hists every second; those lines still parse)
The service histogram is keyed by the TGID slot (1..8; 0 when told by thread name); an unkeyed one (older
versions) counts as slot 0. bpftrace adds its own lines: attached_probes, lost_events, and blank lines
before the exit-time maps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perfgate.capture.runq_stats import (
    STATUS_OK,
    STATUS_PARTIAL,
    DepthSample,
    LatencyBucket,
    RunqLatency,
    RunqStats,
    add_buckets,
)
from perfgate.procs import describe_exit

MACHINE_MAP = "@usecs"
SERVICE_MAP = "@svc_usecs"
MEMLOCK_NOISE = "couldn't set RLIMIT_MEMLOCK"
STDERR_TAIL_LINES = 8


SlotHistograms = tuple[tuple[int, tuple[LatencyBucket, ...]], ...]  # (TGID slot, buckets), by slot


@dataclass(frozen=True)
class Mark:
    """The cumulative histograms printed when perfgate marked a window's edge (see runqlat.bt)."""

    name: str
    t_ms: int
    machine: tuple[LatencyBucket, ...] = ()
    service: SlotHistograms = ()
    complete: bool = False  # its "marked" line came: both histograms were printed (an empty one prints nothing)
    maps: tuple[tuple[str, Any], ...] = ()  # other maps printed inside the mark (e.g. syscalls.bt's), by name

    def map(self, name: str) -> Any:
        return next((data for key, data in self.maps if key == name), None)

    def service_buckets(self, slots: frozenset[int] | None = None) -> tuple[LatencyBucket, ...]:
        """The service histogram of the given TGID slots (all when None); slot 0 (by thread name) always."""
        return add_buckets(*(buckets for slot, buckets in self.service
                             if slots is None or slot == 0 or slot in slots))


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
    service_buckets: tuple[LatencyBucket, ...] = ()  # every slot's, added
    histograms_printed: bool = False
    marks: tuple[Mark, ...] = ()
    depth: tuple[DepthSample, ...] = ()
    lost_events: int = 0
    skipped_lines: tuple[str, ...] = ()  # not JSON or not understood (e.g. a line cut short by a kill)
    extra_maps: tuple[tuple[str, Any], ...] = ()  # other maps/stats, by name, last print wins

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
        self.marks: list[Mark] = []
        self.open_mark: dict[str, Any] | None = None

    def line(self, raw: str) -> None:
        """One line of bpftrace's stdout; a line that is not understood is kept in `skipped`, never raised."""
        text = raw.strip()
        if not text:
            return
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self.skipped.append(text)
            return
        try:
            understood = isinstance(message, dict) and self._message(message.get("type"), message.get("data"))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):  # e.g. a bucket cut short
            understood = False
        if not understood:
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
            for name, value in data.items():
                self._other_map(name, value)
        else:
            return False
        return True

    def _printf(self, words: list[str]) -> bool:
        if words[0] in ("mark", "marked"):
            return self._mark(words)
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
                self._close_mark(complete=False)
            case _:
                return False
        return True

    def _mark(self, words: list[str]) -> bool:
        match words:
            case ["mark", name, t_ms] if t_ms.isdigit():
                self._close_mark(complete=False)
                self.open_mark = {"name": name, "t_ms": int(t_ms)}
            case ["marked", name] if self.open_mark is not None and self.open_mark["name"] == name:
                self._close_mark(complete=True)
            case _:
                return False
        return True

    def _close_mark(self, *, complete: bool) -> None:
        if self.open_mark is not None:
            self.marks.append(_mark_of(self.open_mark, complete=complete))
            self.open_mark = None

    def _hist(self, name: str, buckets: Any) -> None:
        if name == MACHINE_MAP and isinstance(buckets, list):
            self._histogram("machine", parse_hist_buckets(buckets))
        elif name == SERVICE_MAP and isinstance(buckets, list | dict):
            self._histogram("service", parse_slot_histograms(buckets))
        else:
            self._other_map(name, buckets)

    def _other_map(self, name: str, data: Any) -> None:
        """A map of another script's probes in the same program: kept with the mark it was printed in."""
        if self.open_mark is not None:
            self.open_mark.setdefault("maps", {})[name] = data
        else:
            self.extra[name] = data

    def _histogram(self, scope: str, parsed: Any) -> None:
        if self.open_mark is not None:
            self.open_mark[scope] = parsed
        elif scope == "machine":
            self.fields.update(machine_buckets=parsed, histograms_printed=True)
        else:
            self.fields.update(service_buckets=add_buckets(*(b for _, b in parsed)), histograms_printed=True)

    def build(self) -> BpftraceOutput:
        marks = [*self.marks, _mark_of(self.open_mark)] if self.open_mark is not None else self.marks
        return BpftraceOutput(**self.fields, depth=tuple(self.depth), lost_events=self.lost_events,
                              skipped_lines=tuple(self.skipped), extra_maps=tuple(self.extra.items()),
                              marks=tuple(marks))


def _mark_of(fields: dict[str, Any], *, complete: bool = False) -> Mark:
    maps = tuple(fields.get("maps", {}).items())
    return Mark(**{**fields, "maps": maps}, complete=complete)


def parse_hist_buckets(buckets: Sequence[Mapping[str, Any]]) -> tuple[LatencyBucket, ...]:
    """bpftrace hist/lhist JSON buckets -> LatencyBucket (inclusive bounds; a missing min/max = open end)."""
    parsed = []
    for bucket in buckets:
        low, high = bucket.get("min"), bucket.get("max")
        parsed.append(LatencyBucket(None if low is None else int(low), None if high is None else int(high),
                                    int(bucket["count"])))
    return tuple(parsed)


def parse_slot_histograms(data: list[Any] | dict[str, Any]) -> SlotHistograms:
    """@svc_usecs: keyed by TGID slot, or (older versions) one unkeyed histogram, which counts as slot 0."""
    if isinstance(data, list):
        return ((0, parse_hist_buckets(data)),)
    return tuple(sorted((int(slot), parse_hist_buckets(buckets)) for slot, buckets in data.items()))


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



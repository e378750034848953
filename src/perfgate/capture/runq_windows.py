"""Cut one long bpftrace run into load windows.

One bpftrace runs for a whole perfgate run (attached before the warm-up, detached at the end), so what a
repetition pays outside its load window is two marks, not a bpftrace start and stop. perfgate marks a
window's edge by renaming one of its own threads `pgmark-N` (`mark_window`): the `task:task_rename`
tracepoint fires only on renames, so the scheduler's hot path pays nothing for it, and the mark is exact in
perfgate's own sequence of events. runqlat.bt answers each mark with the cumulative histograms
(`mark NAME T_MS`, the histograms, `marked NAME`), so a window's histograms are its end mark's minus its
start mark's, and its depth samples are the ones printed between the two.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from perfgate.capture.runq_parse import BpftraceOutput, Mark
from perfgate.capture.runq_stats import (
    STATUS_OK,
    STATUS_PARTIAL,
    DepthSample,
    RunqLatency,
    RunqStats,
    subtract_buckets,
)

MARK_PREFIX = "pgmark-"
THREAD_COMM = Path("/proc/thread-self/comm")
_mark_lock = threading.Lock()


def mark_window(name: str) -> None:
    """Rename this thread `name` and back: runqlat.bt prints its histograms on the rename. OSError if /proc
    is missing. A lock keeps two threads' marks (the two sides of a duet) from renaming at once."""
    if not name.startswith(MARK_PREFIX) or len(name.encode()) > 15:
        raise ValueError(f"a mark is {MARK_PREFIX}N in at most 15 bytes, got {name!r}")
    with _mark_lock:
        original = THREAD_COMM.read_text(encoding="utf-8", errors="replace").rstrip("\n")
        THREAD_COMM.write_text(name, encoding="utf-8")
        THREAD_COMM.write_text(original, encoding="utf-8")


def find_mark(output: BpftraceOutput, name: str) -> Mark | None:
    return next((mark for mark in output.marks if mark.name == name), None)


def window_stats(output: BpftraceOutput, start: str, end: str, *, slots: frozenset[int] | None,
                 depth_interval_ms: int, ncpus: int, service_comm: str | None = None,
                 service_pids: Sequence[int] = (), problem: str | None = None) -> RunqStats:
    """The kernel view of the window between marks `start` and `end` of one bpftrace's output.

    slots: the TGID slots (1..8, runqlat.bt's argument order) whose service histogram this side gets; None
    for all. problem: why the collector may have missed part of the window (e.g. bpftrace died), if known.
    Without both marks complete the histograms are lost (depth samples are kept) and the stats are partial.
    """
    first, last = find_mark(output, start), find_mark(output, end)
    start_ms = first.t_ms if first is not None else 0
    end_ms = last.t_ms if last is not None else output.last_ms
    depth = tuple(DepthSample(s.t_ms - start_ms, s.runnable_total, s.runnable_max) for s in output.depth
                  if s.t_ms >= start_ms and (end_ms is None or s.t_ms <= end_ms))
    notes = [problem] if problem else []
    has_filter = bool(service_comm) or bool(service_pids)
    if first is not None and first.complete and last is not None and last.complete:
        machine = RunqLatency(subtract_buckets(last.machine, first.machine))
        service = RunqLatency(subtract_buckets(last.service_buckets(slots), first.service_buckets(slots)))
    else:
        edge = "start" if first is None or not first.complete else "end"
        notes.append(f"partial: bpftrace printed no histograms for the {edge} "
                     f"of the window; {len(depth)} depth samples kept, histograms lost")
        machine = service = RunqLatency()
    if output.lost_events:
        notes.append(f"bpftrace lost {output.lost_events} events (depth samples may be missing)")
    complete = first is not None and last is not None and first.complete and last.complete and not problem
    return RunqStats(
        status=STATUS_OK if complete else STATUS_PARTIAL,
        note="; ".join(notes),
        machine=machine,
        service=service if has_filter else None,
        depth=depth,
        depth_interval_ms=output.start_depth_interval_ms or depth_interval_ms,
        ncpus=output.start_ncpus or ncpus,
        lost_events=output.lost_events,
        window_ms=None if end_ms is None else end_ms - start_ms,
        service_comm=service_comm or None,
        service_pids=tuple(service_pids),
    )

"""What else used the machine during a load window, read from /proc and the service's cgroup.

Two snapshots, one when the load starts and one when it ends, and the difference between them:

  the machine (/proc/stat)     busy, idle and steal time over all CPUs. Steal is time a VM's host gave this
                               machine's virtual CPUs to someone else: nothing inside the VM (not even
                               bpftrace) sees it as waiting, but every process got less CPU.
  every visible process        CPU time, split into the measured builds (each build's process tree),
  (/proc/PID/stat)             perfgate's own (perfgate, ghz, bpftrace: its descendants) and the others.
  the build's threads          time they waited, runnable, in a run queue (schedstat run_delay): how much
  (/proc/PID/task/*/schedstat) this build, by its own pids, was kept from a CPU.
  the build's cgroup           CPU bandwidth throttling (v2 cpu.stat/cpu.max, v1 cpu controller).

Nothing here judges; compare/contention.py decides which windows were starved, and of what.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfgate.capture.cgroup import CgroupUnavailable, ThrottleCounters, counters_between, throttle_counters
from perfgate.capture.procfs import (
    COMM_MAX,
    MachineTimes,
    ProcessTimes,
    clock_tick_ns,
    process_tree,
    read_machine_times,
    read_process,
    read_processes,
    read_thread_waits,
    waits_between,
)

TOP_OTHERS = 3
MAX_LEVELS = 16  # cgroup levels with a CPU limit kept per window
MAX_PROBLEMS, MAX_PROBLEM = 8, 500


@dataclass(frozen=True)
class OtherProcess:
    """One of the other processes that used the most CPU in the window (name as the kernel has it)."""

    comm: str
    pid: int
    cpu_ns: int


@dataclass(frozen=True)
class ContentionWindow:
    """One load window of one build, as the record stores it per repetition. Times in ns over the window.

    Machine-wide figures (busy, steal, idle, others) are the same in both records of a duet window; the
    build's own figures (service, wait, throttle) are this record's build alone.
    """

    wall_ns: int
    ncpus: int
    busy_ns: int | None = None  # all CPUs ran something (processes or interrupts)
    steal_ns: int | None = None  # the hypervisor ran something else on this VM's CPUs
    idle_ns: int | None = None  # idle + iowait
    interrupts_ns: int | None = None  # irq + softirq (inside busy)
    service_ns: int | None = None  # this build's processes
    peer_ns: int = 0  # the other build's processes (duet), neither this build's nor "others"
    perfgate_ns: int | None = None  # perfgate, the load generator(s), its collectors
    others_ns: int | None = None  # every other visible process
    top_others: tuple[OtherProcess, ...] = ()
    service_wait_ns: int | None = None  # this build's threads, runnable but waiting for a CPU
    service_run_ns: int | None = None  # those threads' time on a CPU (the same accounting as the wait)
    service_switches: int | None = None  # how often those threads got onto a CPU (each ends one wait)
    service_threads: int | None = None
    throttle: tuple[ThrottleCounters, ...] = ()  # cgroup levels over this build that have a CPU limit
    problems: tuple[str, ...] = ()  # what could not be read, and why

    @property
    def capacity_ns(self) -> int:
        return self.wall_ns * self.ncpus

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["top_others"] = [vars(p) | {} for p in self.top_others]
        data["throttle"] = [vars(t) | {} for t in self.throttle]
        data["problems"] = list(self.problems)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContentionWindow:
        # a record may come from a fork's run: no more entries than perfgate writes, names as short
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        fields["top_others"] = tuple(OtherProcess(**{**p, "comm": str(p["comm"])[:COMM_MAX]})
                                     for p in list(data.get("top_others", ()))[:TOP_OTHERS])
        fields["throttle"] = tuple(ThrottleCounters(**t) for t in list(data.get("throttle", ()))[:MAX_LEVELS])
        fields["problems"] = tuple(str(p)[:MAX_PROBLEM] for p in list(data.get("problems", ()))[:MAX_PROBLEMS])
        window = cls(**fields)
        if not isinstance(window.wall_ns, int) or window.wall_ns < 0 or not isinstance(window.ncpus, int):
            raise ValueError(f"contention window needs wall_ns and ncpus as integers, got {dict(data)!r}")
        return window


@dataclass(frozen=True)
class Build:
    """The processes of one measured build: the root pids (the service perfgate started, or the configured
    ones); its process tree is found at each snapshot."""

    pids: tuple[int, ...]


@dataclass(frozen=True)
class Snapshot:
    taken_ns: int
    ncpus: int
    machine: MachineTimes | None
    processes: Mapping[int, ProcessTimes]
    trees: tuple[frozenset[int], ...]  # per build
    perfgate_tree: frozenset[int]  # perfgate and its helpers
    waits: tuple[Mapping[tuple[int, int], tuple[int, int, int]], ...]  # per build, per thread
    throttle: tuple[tuple[ThrottleCounters, ...] | str, ...]  # per build: counters, or why none
    problems: tuple[str, ...] = field(default=())


def take_snapshot(builds: Sequence[Build], helpers: Sequence[int] = (), *, start: Snapshot | None = None
                  ) -> Snapshot:
    """Everything the window's figures need, read at one moment: the window's start, or (given the start's
    snapshot) its end.

    perfgate's own share is this process (with the children it waited for: the load generator) and the
    `helpers` it keeps running beside the load (bpftrace): not every descendant, since perfgate may run
    inside a test runner or script whose other children are exactly the "other work" to be seen.
    Scanning every process can take a while on a busy machine, so the machine's times, the measured
    processes' and their threads' are read together, next to the load: at the start after the scan that
    finds the builds' process trees, at the end before the scan (which then only adds processes a build
    started meanwhile, and names the others).
    """
    scanned = read_processes() if start is None else {}
    trees = tuple(process_tree(build.pids, scanned) for build in builds) if start is None else start.trees
    perfgate_tree = frozenset((os.getpid(), *helpers)) - frozenset().union(*trees)
    problems = []
    taken_ns = time.monotonic_ns()
    try:
        machine = read_machine_times()
    except (OSError, ValueError) as error:
        machine, problems = None, [f"/proc/stat unreadable: {error}"]
    tick_ns = clock_tick_ns()
    measured = {pid: process for pid in sorted(perfgate_tree.union(*trees))
                if (process := read_process(pid, tick_ns=tick_ns)) is not None}
    waits = tuple(read_thread_waits(sorted(tree)) for tree in trees)
    throttle = tuple(_throttle(build) for build in builds)
    if start is not None:
        scanned = read_processes()
        trees = tuple(process_tree(build.pids, scanned) | tree for build, tree in zip(builds, trees, strict=True))
    return Snapshot(taken_ns=taken_ns, ncpus=os.cpu_count() or 1, machine=machine,
                    processes={**scanned, **measured}, trees=trees, perfgate_tree=perfgate_tree, waits=waits,
                    throttle=throttle, problems=tuple(problems))


def _throttle(build: Build) -> tuple[ThrottleCounters, ...] | str:
    if not build.pids:
        return "the service's pids are unknown"
    try:
        return throttle_counters(build.pids[0])
    except CgroupUnavailable as error:
        return str(error)


def window_between(start: Snapshot, end: Snapshot, own: int) -> ContentionWindow:
    """The figures of build number `own` (an index into the builds both snapshots were taken for)."""
    problems = list(dict.fromkeys((*start.problems, *end.problems)))
    machine = _machine_delta(start.machine, end.machine)
    shares = _cpu_by_owner(start, end, machine)
    known_pids = bool(start.trees[own] | end.trees[own])
    if not known_pids:
        problems.append("the service's processes are unknown (perfgate did not start it and kernel.service_pids "
                        "is not set): other processes cannot be told from the service")
    waits = waits_between(start.waits[own], end.waits[own]) if known_pids else None
    throttle = end.throttle[own]
    if isinstance(throttle, str):
        problems.append(f"cgroup CPU throttling unknown: {throttle}")
        throttle = ()
    elif not isinstance(start.throttle[own], str):
        throttle = counters_between(start.throttle[own], throttle)  # type: ignore[arg-type]
    return ContentionWindow(
        wall_ns=end.taken_ns - start.taken_ns, ncpus=end.ncpus,
        busy_ns=machine.busy_ns if machine else None, steal_ns=machine.steal_ns if machine else None,
        idle_ns=machine.idle_ns + machine.iowait_ns if machine else None,
        interrupts_ns=machine.interrupts_ns if machine else None,
        service_ns=shares.builds[own] if known_pids else None,
        peer_ns=sum(ns for i, ns in enumerate(shares.builds) if i != own),
        perfgate_ns=shares.perfgate, others_ns=shares.others if known_pids else None,
        top_others=shares.top_others if known_pids else (),
        service_wait_ns=waits.wait_ns if waits else None, service_run_ns=waits.run_ns if waits else None,
        service_switches=waits.switches if waits else None, service_threads=waits.threads if waits else None,
        throttle=tuple(throttle), problems=tuple(problems))


def _machine_delta(start: MachineTimes | None, end: MachineTimes | None) -> MachineTimes | None:
    if start is None or end is None:
        return None
    values = [max(getattr(end, name) - getattr(start, name), 0) for name in MachineTimes.__dataclass_fields__]
    return MachineTimes(*values)


@dataclass(frozen=True)
class _Shares:
    builds: tuple[int, ...]
    perfgate: int
    others: int | None
    top_others: tuple[OtherProcess, ...]


def _cpu_by_owner(start: Snapshot, end: Snapshot, machine: MachineTimes | None) -> _Shares:
    """CPU over the window by owner: each build's process tree, perfgate's, and everything else.

    A process alive at both snapshots counts its difference, one born in between everything it has. The
    builds and perfgate also count the children they waited for in between (the load generator perfgate ran,
    a helper the service forked). "Others" is the rest of the machine's process time (user + nice + system
    of /proc/stat): that includes processes too short-lived to be seen and those in other pid namespaces, and
    never the time of children some other process reaped in the window (which they may have used long
    before it). Interrupt time is left out of it: where the kernel accounts it apart from processes it is
    mostly the load's own network traffic. The named top others are the visible processes' own time.
    """
    trees = [a | b for a, b in zip(start.trees, end.trees, strict=True)]
    perfgate = start.perfgate_tree | end.perfgate_tree
    builds = [0] * len(trees)
    perfgate_ns = 0
    per_other: list[OtherProcess] = []
    before = {process.identity: process for process in start.processes.values()}
    for process in end.processes.values():
        earlier = before.get(process.identity)
        owner = next((i for i, tree in enumerate(trees) if process.pid in tree), None)
        own_ns = process.cpu_ns - (earlier.cpu_ns if earlier else 0)
        children_ns = process.children_ns - (earlier.children_ns if earlier else 0)
        if owner is not None:
            builds[owner] += max(own_ns + children_ns, 0)
        elif process.pid in perfgate:
            perfgate_ns += max(own_ns + children_ns, 0)
        elif own_ns > 0:
            per_other.append(OtherProcess(comm=process.comm, pid=process.pid, cpu_ns=own_ns))
    others_ns = None
    if machine is not None:
        process_time = machine.user_ns + machine.nice_ns + machine.system_ns
        others_ns = max(process_time - sum(builds) - perfgate_ns, 0)
    top = tuple(sorted(per_other, key=lambda p: -p.cpu_ns)[:TOP_OTHERS])
    return _Shares(tuple(builds), perfgate_ns, others_ns, top)


class ContentionWatch:
    """The contention view of one load window shared by one or more builds (duet: two).

        watch = ContentionWatch(builds, helpers=(bpftrace_pid,))
        watch.start()              # right before the load starts
        ...load...                 # every load generator run and reaped
        windows = watch.stop()     # one ContentionWindow per build, in the order of `builds`

    Reading /proc never fails a run: what cannot be read is a problem noted in the window.
    """

    def __init__(self, builds: Sequence[Build], helpers: Sequence[int] = ()) -> None:
        self.builds = tuple(builds)
        self.helpers = tuple(pid for pid in helpers if pid)
        self.started: Snapshot | None = None

    def start(self) -> None:
        self.started = take_snapshot(self.builds, self.helpers)

    def stop(self) -> tuple[ContentionWindow, ...]:
        if self.started is None:
            raise RuntimeError("ContentionWatch.stop() called before start()")
        end = take_snapshot(self.builds, self.helpers, start=self.started)
        return tuple(window_between(self.started, end, own) for own in range(len(self.builds)))

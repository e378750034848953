"""Reading the kernel's CPU accounting under /proc: the machine's CPU times and every visible process's.

What the contention view (capture/contention.py) needs, and nothing else:
  /proc/stat                      the machine's user, system, idle, steal... times (clock ticks)
  /proc/PID/stat                  a process's CPU time (its threads, exited ones too), its waited-for
                                  children's, its parent, session and start time (to notice a reused pid)
  /proc/PID/task/TID/schedstat    a thread's time on a CPU and time spent runnable in a run queue (ns)

Every reader tolerates processes that exit while it reads: a vanished pid is simply not there. The text of
these files comes from the kernel, but a process's name (comm) is chosen by whoever started it: it is kept
as data, capped, and escaped by whoever prints it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
COMM_MAX = 32  # the kernel caps comm at 15 bytes; a stat line is parsed from its last ')' anyway


def clock_tick_ns() -> int:
    """Nanoseconds per clock tick (USER_HZ, the unit of /proc/stat and /proc/PID/stat times)."""
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        hz = 100
    return 1_000_000_000 // max(int(hz), 1)


@dataclass(frozen=True)
class MachineTimes:
    """The `cpu` line of /proc/stat, summed over CPUs, in ns. guest time is already inside user and nice."""

    user_ns: int
    nice_ns: int
    system_ns: int
    idle_ns: int
    iowait_ns: int
    irq_ns: int
    softirq_ns: int
    steal_ns: int

    @property
    def busy_ns(self) -> int:
        """Time the CPUs ran anything, processes or interrupts (steal and idle excluded)."""
        return self.user_ns + self.nice_ns + self.system_ns + self.irq_ns + self.softirq_ns

    @property
    def interrupts_ns(self) -> int:
        return self.irq_ns + self.softirq_ns


def parse_machine_times(text: str, tick_ns: int) -> MachineTimes:
    """The aggregate `cpu ` line of /proc/stat. Kernels before 2.6.11 lack steal: it reads as 0."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(value) for value in line.split()[1:9]]
            fields += [0] * (8 - len(fields))
            return MachineTimes(*(value * tick_ns for value in fields))
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def read_machine_times(proc: Path = PROC) -> MachineTimes:
    return parse_machine_times((proc / "stat").read_text(encoding="ascii", errors="replace"), clock_tick_ns())


@dataclass(frozen=True)
class ProcessTimes:
    """One process as /proc/PID/stat shows it; times in ns (clock ticks converted)."""

    pid: int
    comm: str
    ppid: int
    session: int
    start_ticks: int  # since boot: with the pid, identifies the process across two readings
    cpu_ns: int  # utime + stime: all its threads, exited ones included
    children_ns: int  # cutime + cstime: its children that exited and that it waited for

    @property
    def identity(self) -> tuple[int, int]:
        return self.pid, self.start_ticks


def parse_process_stat(text: str, tick_ns: int) -> ProcessTimes:
    """A /proc/PID/stat line. comm may hold spaces and parentheses: the fields start after the last ')'."""
    open_paren, close_paren = text.index("("), text.rindex(")")
    pid = int(text[:open_paren])
    comm = text[open_paren + 1:close_paren][:COMM_MAX]
    rest = text[close_paren + 2:].split()
    # rest[0] is field 3 (state): ppid is field 4, session 6, utime 14, stime 15, cutime 16, cstime 17, start 22
    ppid, session = int(rest[1]), int(rest[3])
    utime, stime, cutime, cstime = (int(value) for value in rest[11:15])
    return ProcessTimes(pid=pid, comm=comm, ppid=ppid, session=session, start_ticks=int(rest[19]),
                        cpu_ns=(utime + stime) * tick_ns, children_ns=(cutime + cstime) * tick_ns)


def read_process(pid: int, proc: Path = PROC, tick_ns: int | None = None) -> ProcessTimes | None:
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        return parse_process_stat(text, tick_ns or clock_tick_ns())
    except (OSError, ValueError, IndexError):
        return None  # exited meanwhile, or not a process we may read


def read_processes(proc: Path = PROC) -> dict[int, ProcessTimes]:
    """Every process visible here (the whole machine unless perfgate runs in its own pid namespace)."""
    tick_ns = clock_tick_ns()
    processes = {}
    try:
        entries = os.listdir(proc)
    except OSError:
        return {}
    for name in entries:
        if name.isdigit() and (process := read_process(int(name), proc, tick_ns)) is not None:
            processes[process.pid] = process
    return processes


def process_tree(roots: Iterable[int], processes: Mapping[int, ProcessTimes]) -> frozenset[int]:
    """The roots, their descendants, and every process in a session a root leads (a service started in its
    own session keeps helpers it spawned there even after their parent exits)."""
    roots = set(roots)
    tree = {pid for pid in roots if pid in processes}
    tree |= {pid for pid, process in processes.items() if process.session in roots}
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.ppid, []).append(pid)
    stack = list(tree)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in tree:
                tree.add(child)
                stack.append(child)
    return frozenset(tree)


@dataclass(frozen=True)
class ThreadWaits:
    """Summed over a process tree's threads: time on a CPU, time runnable but waiting in a run queue, and how
    many times a thread got onto a CPU after being queued (each such switch-in ends one wait)."""

    run_ns: int
    wait_ns: int
    switches: int
    threads: int


def parse_schedstat(text: str) -> tuple[int, int, int]:
    """(time on CPU ns, time waiting in a run queue ns, switch-ins) from a schedstat line `run wait count`."""
    fields = text.split()
    return int(fields[0]), int(fields[1]), int(fields[2])


def read_thread_waits(pids: Iterable[int], proc: Path = PROC) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Per thread (pid, tid): (run ns, wait ns, switch-ins). A thread that exits between two readings drops out
    of both sums when the caller subtracts only threads seen twice."""
    threads = {}
    for pid in pids:
        try:
            tids = os.listdir(proc / str(pid) / "task")
        except OSError:
            continue
        for tid in tids:
            try:
                threads[(pid, int(tid))] = parse_schedstat((proc / str(pid) / "task" / tid / "schedstat").read_text())
            except (OSError, ValueError, IndexError):
                continue
    return threads


def waits_between(before: Mapping[tuple[int, int], tuple[int, int, int]],
                  after: Mapping[tuple[int, int], tuple[int, int, int]]) -> ThreadWaits:
    """What the threads present at both readings did in between; threads born in between count from zero."""
    run = wait = switches = 0
    for key, now in after.items():
        then = before.get(key, (0, 0, 0))
        if all(a >= b for a, b in zip(now, then, strict=True)):
            run, wait, switches = run + now[0] - then[0], wait + now[1] - then[1], switches + now[2] - then[2]
    return ThreadWaits(run_ns=run, wait_ns=wait, switches=switches, threads=len(after))

"""The service's system calls in each load window: how many, how long in total, and their latency histograms.

bpftrace/syscalls.bt times every system call of the service's processes from entry to return. perfgate does
not run it as a second bpftrace: its probes are composed into the run's one kernel program with runqlat.bt
(`compose_program`; one compile, one process, one set of window marks: capture/runq.py), and each mark
prints its two maps, so a window's figures are its end mark's minus its start mark's, per syscall and per
service process (TGID slot), as for the run-queue histograms.

A syscall is reported by its number, which depends on the architecture: bpftrace/syscalls.ARCH.tsv name
them (scripts/gen_syscall_tables.py). Calls that wait for something to happen rather than do work
(`WAITS`: epoll_wait, futex, nanosleep, ...) take as long as the service is idle; they are listed but left
out of the time per request and of the default p99, which are about the calls that do work.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from perfgate.capture.runq_parse import BpftraceOutput, parse_hist_buckets
from perfgate.capture.runq_stats import LatencyBucket, add_buckets, quantile_from_buckets, subtract_buckets
from perfgate.capture.runq_windows import find_mark
from perfgate.patterns import compile_function_pattern

SCRIPT = "syscalls.bt"
HIST_MAP = "@sys_usecs"
TOTAL_MAP = "@sys_ns"
PROBES_BEGIN, PROBES_END = "/* perfgate: probes begin */", "/* perfgate: probes end */"
MARK_PRINTS = "/* perfgate: more mark prints */"  # in runqlat.bt: composed probes print their maps here
END_CLEARS = "/* perfgate: more end clears */"  # and clear their scratch maps here
PARAM_SHIFT = 3  # syscalls.bt's $1..$9 (TGID1..8, MARKER) are runqlat.bt's $4..$12
UNNUMBERED = -1  # a return whose number the kernel reset: rt_sigreturn (after a signal handler)
WAITS = frozenset({
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6", "_newselect",
    "futex", "futex_waitv", "futex_wait", "nanosleep", "clock_nanosleep", "sched_yield", "pause", "rt_sigsuspend",
    "rt_sigtimedwait", "wait4", "waitid", "io_getevents", "io_pgetevents", "accept", "accept4",
    "semop", "semtimedop", "msgrcv", "mq_timedreceive",
})


# ---------------------------------------------------------------- names
@cache
def syscall_names(machine: str | None = None) -> Mapping[int, str]:
    """number -> name on `machine` (platform.machine() by default); empty when perfgate has no table for it."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine or platform.machine(), machine or platform.machine())
    try:
        text = resources.files("perfgate").joinpath("bpftrace", f"syscalls.{arch}.tsv").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}
    names = {}
    for line in text.splitlines():
        number, _, name = line.partition("\t")
        if number.isdigit() and name:
            names[int(number)] = name
    return names


def syscall_name(number: int, names: Mapping[int, str]) -> str:
    if number == UNNUMBERED:
        return "rt_sigreturn"
    return names.get(number, f"syscall_{number}")


# ---------------------------------------------------------------- figures
@dataclass(frozen=True)
class SyscallLatency:
    """One system call's figures over a window: calls, their exact total time, their latency histogram (µs)."""

    name: str
    count: int
    total_ns: int
    buckets: tuple[LatencyBucket, ...] = ()

    @property
    def waits(self) -> bool:
        return self.name in WAITS

    def quantile_us(self, q: float) -> float | None:
        return quantile_from_buckets(self.buckets, q)

    @property
    def p99_us(self) -> float | None:
        return self.quantile_us(0.99)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "total_ns": self.total_ns, "p99_us": self.p99_us,
                "buckets": [{"low_us": b.low_us, "high_us": b.high_us, "count": b.count} for b in self.buckets]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyscallLatency:
        # no coercion: the record loader checks every field's type (typed.type_problems)
        buckets = tuple(LatencyBucket(b["low_us"], b["high_us"], b["count"]) for b in _listed(data, "buckets"))
        return cls(name=data["name"], count=data["count"], total_ns=data["total_ns"], buckets=buckets)


def merged(calls: Iterable[SyscallLatency], name: str) -> SyscallLatency:
    """Several calls' figures as one (their histograms added)."""
    calls = list(calls)
    return SyscallLatency(name, sum(c.count for c in calls), sum(c.total_ns for c in calls),
                          add_buckets(*(c.buckets for c in calls)))


@dataclass(frozen=True)
class SyscallStats:
    """The service's system calls in one window, most total time first; `machine` names the number table."""

    calls: tuple[SyscallLatency, ...] = ()
    machine: str = ""

    def matching(self, pattern: str | None) -> tuple[SyscallLatency, ...]:
        """The calls a rule's pattern names (a name, a glob such as "*read*", or "re:REGEX" as for functions);
        without one, every call that does work (not a WAITS call)."""
        if not pattern:
            return tuple(c for c in self.calls if not c.waits)
        matches = compile_function_pattern(pattern)
        return tuple(c for c in self.calls if matches(c.name))

    @property
    def work_ns(self) -> int:
        return sum(c.total_ns for c in self.calls if not c.waits)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "calls": [c.to_dict() for c in self.calls]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyscallStats:
        return cls(calls=tuple(SyscallLatency.from_dict(c) for c in _listed(data, "calls")), machine=data["machine"])


def _listed(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise TypeError(f"field 'syscalls.stats' {key} should be a list of objects, got {str(value)[:40]!r}")
    return value


# ---------------------------------------------------------------- a window out of the kernel program's output
def window_syscalls(output: BpftraceOutput, start: str, end: str, *, slots: frozenset[int] | None,
                    machine: str | None = None) -> SyscallStats | str:
    """The calls of the given TGID slots (all when None) between two marks, or why they are not known."""
    first, last = find_mark(output, start), find_mark(output, end)
    if first is None or last is None or not first.complete or not last.complete:
        return "bpftrace printed no system call maps for an edge of the window (see the run-queue note)"
    names = syscall_names(machine)
    later: dict[int, tuple[LatencyBucket, ...]] = {}
    earlier: dict[int, tuple[LatencyBucket, ...]] = {}
    totals: dict[int, int] = {}
    for mark, histograms, sign in ((last, later, 1), (first, earlier, -1)):
        for (slot, number), buckets in _keyed(mark.map(HIST_MAP)).items():
            if slots is None or slot in slots:
                histograms[number] = add_buckets(histograms.get(number, ()), parse_hist_buckets(buckets))
        for (slot, number), total in _keyed(mark.map(TOTAL_MAP)).items():
            if slots is None or slot in slots:
                totals[number] = totals.get(number, 0) + sign * int(total)
    calls = []
    for number, buckets in later.items():
        try:
            window = subtract_buckets(buckets, earlier.get(number, ()))
        except ValueError as error:
            return f"the system call maps of the window do not add up ({error})"
        count = sum(b.count for b in window)
        if count:
            calls.append(SyscallLatency(syscall_name(number, names), count, max(0, totals.get(number, 0)), window))
    calls.sort(key=lambda c: (-c.total_ns, c.name))
    return SyscallStats(tuple(calls), machine or platform.machine())


def _keyed(data: Any) -> dict[tuple[int, int], Any]:
    """{"SLOT,NR": value} as bpftrace prints a map with two keys -> {(slot, nr): value}; other keys are skipped."""
    if not isinstance(data, Mapping):
        return {}
    keyed = {}
    for key, value in data.items():
        slot, _, number = str(key).partition(",")
        try:
            keyed[int(slot), int(number)] = value
        except ValueError:
            continue
    return keyed


# ---------------------------------------------------------------- one program with runqlat.bt
def script_text(name: str) -> str:
    return resources.files("perfgate").joinpath("bpftrace", name).read_text(encoding="utf-8")


def compose_program(runqlat: str, syscalls: str) -> str:
    """runqlat.bt with syscalls.bt's probes added: its parameters renumbered to runqlat.bt's, its maps printed
    by runqlat.bt's mark probe and its scratch map cleared at END (bpftrace allows one BEGIN and one END)."""
    for text, anchors in ((runqlat, (MARK_PRINTS, END_CLEARS)), (syscalls, (PROBES_BEGIN, PROBES_END))):
        for anchor in anchors:
            if text.count(anchor) != 1:
                raise ValueError(f"a bpftrace script must hold {anchor} exactly once")
    probes = syscalls.split(PROBES_BEGIN, 1)[1].split(PROBES_END, 1)[0]
    probes = re.sub(r"\$(\d+)\b", lambda m: f"${int(m.group(1)) + PARAM_SHIFT}", probes)
    program = runqlat.replace(MARK_PRINTS, f"print({HIST_MAP});\n\tprint({TOTAL_MAP});")
    program = program.replace(END_CLEARS, "clear(@entered);")
    return f"{program}\n/* from syscalls.bt (parameters renumbered) */\n{probes}"


def kernel_program(syscalls: bool) -> str:
    runqlat = script_text("runqlat.bt")
    return compose_program(runqlat, script_text(SCRIPT)) if syscalls else runqlat

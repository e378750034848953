"""A process's CPU bandwidth limit and how often it was throttled, from its cgroup, v2 or v1.

cgroup v2 (one unified hierarchy): `cpu.max` ("QUOTA PERIOD" in µs, or "max PERIOD") and `cpu.stat`
(nr_periods, nr_throttled, throttled_usec) in the process's cgroup directory, when the cpu controller is
enabled there. cgroup v1: the `cpu` controller's own hierarchy (often mounted as cpu,cpuacct) with
`cpu.cfs_quota_us` (-1: none), `cpu.cfs_period_us` and `cpu.stat` (nr_periods, nr_throttled,
throttled_time in ns). Hybrid hosts mount both; the cpu controller lives in only one of them, and that is
the one read. A limit anywhere above the process's cgroup throttles it too, so every level from the
process's cgroup up to the hierarchy's root is read, and those with a limit are kept.

`CpuGroup` imposes such a limit (a new cgroup holding the given processes): the tests and benches use it to
starve a service on purpose, or to give a process its CPU on a busy machine.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

V1, V2 = "v1", "v2"
MOUNTINFO = Path("/proc/self/mountinfo")
PROC = Path("/proc")


class CgroupUnavailable(Exception):
    """The cgroup of a process cannot be read from here; the message says why."""


@dataclass(frozen=True)
class CpuHierarchy:
    """Where the cpu controller is mounted, and which cgroup path its mount root stands for."""

    version: str
    mountpoint: Path
    root: str  # the cgroup path the mountpoint shows (not "/" inside some containers)


@dataclass(frozen=True)
class ThrottleCounters:
    """One cgroup level's CPU bandwidth limit and throttling counters at one moment."""

    cgroup: str  # the cgroup path, as /proc/PID/cgroup names it
    version: str
    quota_cpus: float | None  # quota / period (0.5 = half a CPU); None: no limit at this level
    periods: int  # enforcement periods that had runnable tasks
    throttled_periods: int
    throttled_ns: int


def parse_mountinfo(text: str) -> list[CpuHierarchy]:
    """The hierarchies that hold the cpu controller: v1 mounts whose options name `cpu`, and cgroup2 mounts."""
    found = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        mountpoint = Path(_unescape(fields[4]))
        if fstype == "cgroup2":
            found.append(CpuHierarchy(V2, mountpoint, _unescape(fields[3])))
        elif fstype == "cgroup" and "cpu" in options:
            found.append(CpuHierarchy(V1, mountpoint, _unescape(fields[3])))
    return found


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_proc_cgroup(text: str) -> tuple[str | None, str | None]:
    """(the v1 cpu controller's path, the v2 path) from /proc/PID/cgroup lines `ID:CONTROLLERS:PATH`."""
    v1 = v2 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v1, v2


def cgroup_dir(hierarchy: CpuHierarchy, path: str) -> Path:
    """The directory of cgroup `path` under the hierarchy's mountpoint; CgroupUnavailable when it is not
    below what this mount shows (a cgroup outside this container's cgroup namespace)."""
    if "/.." in f"/{path}/" or not path.startswith("/"):
        raise CgroupUnavailable(f"cgroup {path!r} is outside this cgroup namespace (perfgate runs in a container "
                                "that does not see the service's cgroup)")
    root = hierarchy.root.rstrip("/")
    # A mount of a sub-tree (root "/docker/ID") under the host's cgroup namespace shows full paths: strip the
    # root. Under a private cgroup namespace paths are relative to the namespace, which the mount shows.
    relative = path[len(root):] if root and (path == root or path.startswith(root + "/")) else path
    return hierarchy.mountpoint / relative.lstrip("/")


def locate(pid: int, *, proc: Path = PROC, mountinfo: Path = MOUNTINFO) -> tuple[CpuHierarchy, str]:
    """The hierarchy holding the cpu controller for `pid`, and its cgroup path there."""
    try:
        v1_path, v2_path = parse_proc_cgroup((proc / str(pid) / "cgroup").read_text())
        hierarchies = parse_mountinfo(mountinfo.read_text())
    except OSError as error:
        raise CgroupUnavailable(f"cannot read the cgroup of pid {pid}: {error.strerror or error}") from error
    v1 = next((h for h in hierarchies if h.version == V1), None)
    if v1_path is not None and v1 is not None:
        return v1, v1_path
    v2 = next((h for h in hierarchies if h.version == V2), None)
    if v2_path is not None and v2 is not None:
        return v2, v2_path
    raise CgroupUnavailable("no cgroup hierarchy with the cpu controller is mounted here")


def read_counters(hierarchy: CpuHierarchy, path: str) -> tuple[ThrottleCounters, ...]:
    """Every level from `path` up to the hierarchy's root that has a CPU limit, or has throttled (a limit
    removed since still left its counters)."""
    levels = []
    directory, cgroup = cgroup_dir(hierarchy, path), path
    while True:
        counters = _level(hierarchy.version, directory, cgroup)
        if counters is not None and (counters.quota_cpus is not None or counters.throttled_periods):
            levels.append(counters)
        if directory == hierarchy.mountpoint or cgroup in ("/", ""):
            break
        directory, cgroup = directory.parent, cgroup.rsplit("/", 1)[0] or "/"
    return tuple(levels)


def _level(version: str, directory: Path, cgroup: str) -> ThrottleCounters | None:
    stat = _read_keyed(directory / "cpu.stat")
    if stat is None or "nr_periods" not in stat:
        return None  # the root cgroup, or v2 without the cpu controller enabled at this level
    if version == V2:
        throttled_ns = stat.get("throttled_usec", 0) * 1000
        quota = _v2_quota(directory / "cpu.max")
    else:
        throttled_ns = stat.get("throttled_time", 0)
        quota = _v1_quota(directory)
    return ThrottleCounters(cgroup=cgroup, version=version, quota_cpus=quota, periods=stat["nr_periods"],
                            throttled_periods=stat.get("nr_throttled", 0), throttled_ns=throttled_ns)


def _read_keyed(path: Path) -> dict[str, int] | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


def _v2_quota(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota < 0 or period <= 0 else quota / period


def throttle_counters(pid: int, **paths: Path) -> tuple[ThrottleCounters, ...]:
    """The limits over `pid` and their counters now; CgroupUnavailable says why they cannot be read."""
    hierarchy, path = locate(pid, **paths)
    return read_counters(hierarchy, path)


def counters_between(before: Iterable[ThrottleCounters], after: Iterable[ThrottleCounters]
                     ) -> tuple[ThrottleCounters, ...]:
    """Each level's counters over a window (the limit as it stood at the end); a level that appeared in
    between (a limit imposed meanwhile) counts from zero."""
    earlier: Mapping[str, ThrottleCounters] = {c.cgroup: c for c in before}
    window = []
    for end in after:
        start = earlier.get(end.cgroup)
        base = (start.periods, start.throttled_periods, start.throttled_ns) if start else (0, 0, 0)
        if (end.periods, end.throttled_periods, end.throttled_ns) < base:
            base = (0, 0, 0)  # the cgroup was recreated: its counters restarted
        window.append(ThrottleCounters(
            cgroup=end.cgroup, version=end.version, quota_cpus=end.quota_cpus, periods=end.periods - base[0],
            throttled_periods=end.throttled_periods - base[1], throttled_ns=end.throttled_ns - base[2]))
    return tuple(window)


# ---------------------------------------------------------------- imposing a limit (tests, benches)
class CpuGroup:
    """A new cgroup with a CPU bandwidth limit and/or a scheduling weight; `move(pid)` puts a process (all
    its threads) in it.

        with CpuGroup(cpus=0.3) as group:   # at most 0.3 of one CPU per 100 ms period
            group.move(service_pid)
            ...                             # the service is throttled here
        # on exit its processes go back to where they came from and the cgroup is removed

    `weight` is cgroup v2's cpu.weight (default 100; v1 cpu.shares = weight × 1024 / 100): a group with a
    high weight gets its CPU before everything else on a busy machine. Needs root and a writable cpu
    hierarchy (v1 `cpu`, or v2 where the root can enable the cpu controller for its children).
    """

    PERIOD_US = 100_000

    def __init__(self, *, cpus: float | None = None, weight: int | None = None, proc: Path = PROC,
                 mountinfo: Path = MOUNTINFO) -> None:
        if cpus is not None and cpus <= 0:
            raise ValueError(f"cpus must be > 0, got {cpus}")
        if weight is not None and not 1 <= weight <= 10_000:
            raise ValueError(f"weight must be within 1..10000, got {weight}")
        self.cpus, self.weight = cpus, weight
        self.proc, self.mountinfo = proc, mountinfo
        self.directory: Path | None = None
        self.hierarchy: CpuHierarchy | None = None
        self.moved: dict[int, Path] = {}  # pid -> the cgroup it came from

    def __enter__(self) -> CpuGroup:
        self.hierarchy, _ = locate(os.getpid(), proc=self.proc, mountinfo=self.mountinfo)
        root = self.hierarchy.mountpoint
        if self.hierarchy.version == V2 and "cpu" not in (root / "cgroup.subtree_control").read_text().split():
            (root / "cgroup.subtree_control").write_text("+cpu\n")
        # directly under the root: v2 allows no processes in a cgroup whose children have controllers
        self.directory = root / f"perfgate-{uuid.uuid4().hex[:8]}"
        self.directory.mkdir()
        try:
            self._configure()
        except BaseException:
            self.directory.rmdir()
            raise
        return self

    def _configure(self) -> None:
        assert self.directory is not None and self.hierarchy is not None
        quota = None if self.cpus is None else max(int(self.cpus * self.PERIOD_US), 1000)
        if self.hierarchy.version == V2:
            if quota is not None:
                (self.directory / "cpu.max").write_text(f"{quota} {self.PERIOD_US}\n")
            if self.weight is not None:
                (self.directory / "cpu.weight").write_text(f"{self.weight}\n")
            return
        if quota is not None:
            (self.directory / "cpu.cfs_period_us").write_text(f"{self.PERIOD_US}\n")
            (self.directory / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        if self.weight is not None:
            (self.directory / "cpu.shares").write_text(f"{max(self.weight * 1024 // 100, 2)}\n")

    def move(self, pid: int) -> None:
        assert self.directory is not None and self.hierarchy is not None
        v1_path, v2_path = parse_proc_cgroup((self.proc / str(pid) / "cgroup").read_text())
        origin = cgroup_dir(self.hierarchy, (v1_path if self.hierarchy.version == V1 else v2_path) or "/")
        (self.directory / "cgroup.procs").write_text(f"{pid}\n")
        self.moved.setdefault(pid, origin)

    def release(self) -> None:
        """Every moved process back to its original cgroup (the limit no longer applies to it)."""
        for pid, origin in self.moved.items():
            with contextlib.suppress(OSError):
                (origin / "cgroup.procs").write_text(f"{pid}\n")
        self.moved.clear()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        if self.directory is None:
            return
        for leftover in _procs(self.directory):
            with contextlib.suppress(OSError):
                (self.directory.parent / "cgroup.procs").write_text(f"{leftover}\n")
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def _procs(directory: Path) -> list[int]:
    try:
        return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


@contextlib.contextmanager
def cpu_group(pids: Iterable[int], *, cpus: float | None = None, weight: int | None = None) -> Iterator[CpuGroup]:
    with CpuGroup(cpus=cpus, weight=weight) as group:
        for pid in pids:
            group.move(pid)
        yield group

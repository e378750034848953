"""Whether the kernel view can run here: bpftrace found, root with the capabilities BPF needs, tracefs
mounted, a kernel with BTF. Each problem says how to fix it; RunqUnavailable carries it."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from perfgate.errors import EXIT_TOOL, PerfgateError

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
TRACEFS_DIRS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
BTF_VMLINUX = Path("/sys/kernel/btf/vmlinux")


class RunqUnavailable(PerfgateError):
    """The kernel view cannot run here; `reason` says why and how to fix it."""

    exit_code = EXIT_TOOL

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"kernel view unavailable: {reason}")


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
    for directory in TRACEFS_DIRS:
        try:
            if (directory / "events" / "sched" / "sched_switch").is_dir():
                return None
        except PermissionError:
            return f"cannot read {directory} (permission denied); run perfgate as root"
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
    for check in (privilege_problem, tracefs_problem, btf_problem):
        problem = check()
        if problem is not None:
            raise RunqUnavailable(problem)
    return path

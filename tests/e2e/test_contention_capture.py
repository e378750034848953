"""The contention view's capture: /proc readings, cgroup throttling, and what a window says, on real processes.

Real CPU hogs and a real cgroup CPU limit (the v1 cpu controller here, cpu.max on a cgroup v2 host: the
limit helper and the readers support both; the parsers are checked on both formats).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from support.runq import cpu_hogs

from perfgate.capture.cgroup import (
    V1,
    V2,
    CgroupUnavailable,
    CpuHierarchy,
    ThrottleCounters,
    cgroup_dir,
    counters_between,
    cpu_group,
    parse_mountinfo,
    parse_proc_cgroup,
    throttle_counters,
)
from perfgate.capture.contention import Build, ContentionWindow, take_snapshot, window_between
from perfgate.capture.procfs import (
    parse_machine_times,
    parse_process_stat,
    process_tree,
    read_machine_times,
    read_processes,
)

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroup limits need root (CI runs as root)")
def window(build_pids: tuple[int, ...], seconds: float) -> ContentionWindow:
    start = take_snapshot([Build(build_pids)])
    time.sleep(seconds)
    return window_between(start, take_snapshot([Build(build_pids)], start=start), 0)


# ---------------------------------------------------------------- parsers
def test_proc_stat_line_in_ns_with_steal():
    text = "cpu  100 2 30 400 5 6 7 8 0 0\ncpu0 50 1 15 200 2 3 3 4 0 0\nintr 1 2 3\n"
    times = parse_machine_times(text, tick_ns=10_000_000)
    assert (times.user_ns, times.steal_ns, times.idle_ns) == (1_000_000_000, 80_000_000, 4_000_000_000)
    assert times.busy_ns == (100 + 2 + 30 + 6 + 7) * 10_000_000
    real = read_machine_times()
    assert real.busy_ns > 0 and real.steal_ns >= 0


def test_process_stat_with_a_hostile_name():
    # comm is chosen by the process: spaces and parentheses must not shift the fields
    line = ("4242 (evil) 1 2 (x) S 77 4242 4242 0 -1 4194560 10 0 0 0 150 50 3 4 20 0 5 0 987654 0 0 "
            "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")
    process = parse_process_stat(line, tick_ns=10_000_000)
    assert (process.pid, process.comm, process.ppid, process.session) == (4242, "evil) 1 2 (x", 77, 4242)
    assert process.cpu_ns == 200 * 10_000_000 and process.children_ns == 7 * 10_000_000
    assert process.start_ticks == 987654


def test_process_tree_follows_children_and_the_session():
    # a shell (new session) that starts a child which outlives nothing: both belong to the tree
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)  # noqa: S603, S607
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            processes = read_processes()
            children = [p for p in processes.values() if p.ppid == shell.pid]
            if children:
                break
            time.sleep(0.02)
        tree = process_tree([shell.pid], processes)
        assert shell.pid in tree and children and children[0].pid in tree
        assert os.getpid() not in tree
    finally:
        os.killpg(shell.pid, 9)
        shell.wait(timeout=10)


MOUNTINFO_HYBRID = """\
25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset
"""
MOUNTINFO_V2 = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def test_mountinfo_finds_the_cpu_controller_in_v1_hybrid_and_v2_layouts():
    hybrid = parse_mountinfo(MOUNTINFO_HYBRID)
    assert CpuHierarchy(V1, Path("/sys/fs/cgroup/cpu,cpuacct"), "/") in hybrid  # cpuset is not "cpu"
    assert [h.version for h in hybrid] == [V2, V1]
    assert parse_mountinfo(MOUNTINFO_V2) == [CpuHierarchy(V2, Path("/sys/fs/cgroup"), "/")]
    # and this machine's own mounts parse
    assert parse_mountinfo(Path("/proc/self/mountinfo").read_text()) is not None


def test_proc_cgroup_lines_and_paths_outside_the_namespace():
    v1, v2 = parse_proc_cgroup("12:cpu,cpuacct:/system.slice/x.service\n3:cpuset:/\n0::/system.slice/x.service\n")
    assert (v1, v2) == ("/system.slice/x.service", "/system.slice/x.service")
    assert parse_proc_cgroup("0::/user.slice\n") == (None, "/user.slice")
    hierarchy = CpuHierarchy(V2, Path("/sys/fs/cgroup"), "/")
    assert cgroup_dir(hierarchy, "/a/b") == Path("/sys/fs/cgroup/a/b")
    assert cgroup_dir(CpuHierarchy(V1, Path("/c"), "/docker/1"), "/docker/1/svc") == Path("/c/svc")
    with pytest.raises(CgroupUnavailable, match="outside this cgroup namespace"):
        cgroup_dir(hierarchy, "/../../system.slice/runner.service")


def test_counters_between_counts_a_new_limit_from_zero():
    before = (ThrottleCounters("/a", V2, 0.5, 100, 10, 5_000),)
    after = (ThrottleCounters("/a", V2, 0.5, 130, 16, 9_000), ThrottleCounters("/b", V2, 0.2, 7, 3, 1_000))
    assert counters_between(before, after) == (ThrottleCounters("/a", V2, 0.5, 30, 6, 4_000),
                                              ThrottleCounters("/b", V2, 0.2, 7, 3, 1_000))


def test_window_round_trips_through_a_dict():
    window_ = window((os.getpid(),), 0.05)
    assert ContentionWindow.from_dict(window_.to_dict()) == window_
    with pytest.raises(ValueError):
        ContentionWindow.from_dict({"wall_ns": "soon", "ncpus": 2})


# ---------------------------------------------------------------- real contention
# On the shared machine the tests run on, other work can take most of the CPUs; the processes under test get
# theirs from a cgroup with a high weight (each in its own, so that they compete with each other as equals).
PRIORITY = 10_000


@requires_root
def test_a_busy_loop_beside_the_build_shows_as_other_processes_and_is_named():
    # perfgate (this process) too, so that its snapshots are quick: it reads a process's times while scanning
    # /proc, before the machine's, and a slow scan would widen the hog's interval beyond the window's
    with cpu_hogs() as (service,), cpu_hogs() as (hog,), cpu_group([service.pid], weight=PRIORITY), \
            cpu_group([hog.pid], weight=PRIORITY), cpu_group([os.getpid()], weight=PRIORITY):
        start = take_snapshot([Build((service.pid,))])
        time.sleep(1.0)
        end = take_snapshot([Build((service.pid,))], start=start)
    contended = window_between(start, end, 0)
    service_used = end.processes[service.pid].cpu_ns - start.processes[service.pid].cpu_ns
    hog_used = end.processes[hog.pid].cpu_ns - start.processes[hog.pid].cpu_ns
    print(contended, f"service {service_used / 1e6:.0f} ms, hog {hog_used / 1e6:.0f} ms", sep="\n")
    tick = 10_000_000  # the clock tick: process times are rounded to it
    assert hog_used > 0.5 * contended.wall_ns and service_used > 0.5 * contended.wall_ns
    assert contended.service_ns == service_used
    # the hog is other work: the machine's process time beside the build and perfgate, never less than the
    # hog's, less the machine counters' sampling error (each timer tick, 250 Hz here, is charged whole to
    # whatever runs then: over 2 CPU-seconds that is a few tens of ms either way)
    assert contended.others_ns >= hog_used - 15 * tick
    top = [p.pid for p in contended.top_others]
    assert hog.pid in top or hog_used <= contended.top_others[-1].cpu_ns + tick
    assert service.pid not in top and os.getpid() not in top
    assert 0 <= contended.steal_ns <= contended.capacity_ns
    assert contended.busy_ns <= contended.capacity_ns * 1.1


@requires_root
def test_a_hog_on_the_same_cpu_makes_the_build_wait_in_the_run_queue():
    cpu = sorted(os.sched_getaffinity(0))[0]
    with cpu_hogs(cpu=cpu) as (service,), cpu_group([service.pid], weight=PRIORITY) as group:
        time.sleep(0.2)
        alone = window((service.pid,), 1.0)
        with cpu_hogs(cpu=cpu) as (hog,):
            group.move(hog.pid)  # the same group: an equal share of the CPU for each
            shared = window((service.pid,), 1.0)
    print(alone, shared, sep="\n")
    # sharing its CPU with an equal busy loop it gets about half of what it got there alone, and waits the rest
    def waiting(w: ContentionWindow) -> float:
        return w.service_wait_ns / (w.service_wait_ns + w.service_run_ns)

    assert shared.service_threads == alone.service_threads == 1
    assert shared.service_run_ns / shared.wall_ns < 0.75 * alone.service_run_ns / alone.wall_ns
    assert waiting(shared) > waiting(alone) + 0.15
    assert shared.service_wait_ns > 0.25 * shared.wall_ns


@requires_root
def test_a_cgroup_cpu_limit_is_seen_as_throttling_and_goes_away_with_it():
    with cpu_hogs() as (service,):
        assert throttle_counters(service.pid) == ()  # no limit over this process
        with cpu_group([service.pid], cpus=0.2, weight=PRIORITY):
            limited = window((service.pid,), 1.0)
        after = window((service.pid,), 0.3)
    print(limited)
    (level,) = limited.throttle
    assert level.version in (V1, V2) and level.quota_cpus == pytest.approx(0.2)
    assert level.periods >= 5 and level.throttled_periods >= 0.5 * level.periods
    assert level.throttled_ns > 0
    assert limited.service_ns < 0.35 * limited.wall_ns  # it got about 0.2 CPU
    assert after.throttle == ()


def test_unknown_service_pids_say_so_instead_of_calling_the_service_other_work():
    unknown = window((), 0.05)
    assert unknown.others_ns is None and unknown.service_ns is None
    assert any("service's processes are unknown" in p for p in unknown.problems)
    assert unknown.steal_ns is not None

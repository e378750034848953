"""syscalls.bt's figures cut out of a real kernel program's output (tests/data/syscalls, recorded by
record_syscall_outputs.py: two example services in one window, one with -regress-syscall-read 2ms), the
program composition, and the system call names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT, TEST_DATA

from perfgate.capture.runq_parse import parse_bpftrace_json
from perfgate.capture.syscalls import (
    END_CLEARS,
    MARK_PRINTS,
    PROBES_BEGIN,
    SyscallStats,
    compose_program,
    kernel_program,
    merged,
    script_text,
    syscall_name,
    syscall_names,
    window_syscalls,
)

DATA = TEST_DATA / "syscalls"
META = json.loads((DATA / "meta.json").read_text(encoding="utf-8"))["two_greeters"]
OUTPUT = parse_bpftrace_json((DATA / "two_greeters.jsonl").read_text(encoding="utf-8").splitlines())


def side(name: str) -> SyscallStats:
    stats = window_syscalls(OUTPUT, "pgmark-1", "pgmark-2", slots=frozenset({META["slots"][name]}),
                            machine=META["machine"])
    assert isinstance(stats, SyscallStats), stats
    return stats


def call(stats: SyscallStats, name: str):
    return next(c for c in stats.calls if c.name == name)


def test_the_blocking_read_knob_shows_as_more_and_slower_reads():
    plain, knob = side("plain"), side("knob")
    reads = {name: call(stats, "read") for name, stats in (("plain", plain), ("knob", knob))}
    calls = META["ok_calls"]
    assert reads["knob"].count / calls["knob"] >= reads["plain"].count / calls["plain"] + 0.9  # one more per call
    assert reads["plain"].p99_us < 1000 <= 2000 <= reads["knob"].p99_us  # the knob's reads wait >= 2 ms
    assert reads["knob"].total_ns / calls["knob"] > 2e6 * 0.9 > 100 * reads["plain"].total_ns / calls["plain"]
    work = [c.name for c in knob.calls if not c.waits]
    assert work[0] == "read"  # the most time in calls that do work


def test_each_call_s_exact_total_lies_within_its_histogram_s_bounds():
    for stats in (side("plain"), side("knob")):
        for c in stats.calls:
            assert c.count == sum(b.count for b in c.buckets) > 0
            low = sum(b.count * (b.low_us or 0) for b in c.buckets) * 1000
            high = sum(b.count * (b.high_us + 1) for b in c.buckets if b.high_us is not None) * 1000
            assert low <= c.total_ns <= high, c.name


def test_all_slots_together_are_the_sum_of_each():
    both = window_syscalls(OUTPUT, "pgmark-1", "pgmark-2", slots=None, machine=META["machine"])
    for name in ("read", "write", "futex"):
        assert call(both, name).count == call(side("plain"), name).count + call(side("knob"), name).count
    assert [c.total_ns for c in both.calls] == sorted((c.total_ns for c in both.calls), reverse=True)


def test_waits_are_set_apart_from_the_calls_that_do_work():
    knob = side("knob")
    waits = {c.name for c in knob.calls if c.waits}
    assert {"futex", "epoll_pwait", "nanosleep"} <= waits
    assert knob.work_ns == sum(c.total_ns for c in knob.calls if c.name not in waits)
    assert {c.name for c in knob.matching(None)} == {c.name for c in knob.calls} - waits
    assert [c.name for c in knob.matching("read")] == ["read"]
    assert {c.name for c in knob.matching("re:^(read|write)$")} == {"read", "write"}
    assert {c.name for c in knob.matching("futex")} == {"futex"}  # a wait named on purpose counts
    both = merged(knob.matching("re:^(read|write)$"), "io")
    assert both.count == call(knob, "read").count + call(knob, "write").count


def test_a_window_without_both_marks_says_why():
    why = window_syscalls(OUTPUT, "pgmark-1", "pgmark-9", slots=None)
    assert isinstance(why, str) and "no system call maps" in why


def test_stats_round_trip_through_the_record_format():
    knob = side("knob")
    assert SyscallStats.from_dict(json.loads(json.dumps(knob.to_dict()))) == knob


def test_syscall_numbers_are_named_per_architecture():
    x86, arm = syscall_names("x86_64"), syscall_names("aarch64")
    assert (x86[0], x86[1], x86[74], x86[202], x86[281]) == ("read", "write", "fsync", "futex", "epoll_pwait")
    assert (arm[63], arm[64], arm[82], arm[98], arm[22]) == ("read", "write", "fsync", "futex", "epoll_pwait")
    assert syscall_names("amd64") == x86 and syscall_names("riscv64") == {}
    assert syscall_name(-1, x86) == "rt_sigreturn" and syscall_name(4242, x86) == "syscall_4242"


@pytest.mark.skipif(shutil.which("cpp") is None or not Path("/usr/include/asm-generic/unistd.h").exists(),
                    reason="needs cpp and the Linux UAPI headers (linux-libc-dev)")
def test_the_tables_match_the_installed_kernel_headers():
    script = ROOT / "scripts" / "gen_syscall_tables.py"
    completed = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True,  # noqa: S603
                               timeout=60)
    assert completed.returncode == 0, completed.stderr


def test_the_program_is_runqlat_with_the_syscall_probes_renumbered():
    runqlat, syscalls = script_text("runqlat.bt"), script_text("syscalls.bt")
    program = kernel_program(syscalls=True)
    assert program == compose_program(runqlat, syscalls) and kernel_program(syscalls=False) == runqlat
    assert program.count("BEGIN") == runqlat.count("BEGIN") and program.count("\nEND") == 1
    probes = program.split("/* from syscalls.bt")[1]
    assert re.findall(r"\$\d+", probes) and all(4 <= int(n) <= 11 for n in re.findall(r"\$(\d+)", probes))
    mark = program[program.index("tracepoint:task:task_rename"):]
    assert mark.index("print(@sys_usecs)") < mark.index("print(@sys_ns)") < mark.index('printf("marked')
    assert "clear(@entered);" in program[program.index("\nEND"):]
    # the standalone script keeps its own usage: TGIDs are $1..$8, the marker $9
    assert "pid == $1 ||" in syscalls and "$9 != 0 && pid == $9" in syscalls


@pytest.mark.parametrize("anchor", [MARK_PRINTS, END_CLEARS, PROBES_BEGIN])
def test_a_script_without_its_anchor_is_refused(anchor):
    runqlat, syscalls = script_text("runqlat.bt"), script_text("syscalls.bt")
    with pytest.raises(ValueError, match="exactly once"):
        compose_program(runqlat.replace(anchor, ""), syscalls.replace(anchor, ""))

"""perfgate doctor's collector checks against the real tools and the real example service."""

from __future__ import annotations

import json
import re
import shutil

from support.greeter import base_config, free_port, write_config
from support.paths import GHZ, GREETER
from support.runq import requires_root

from perfgate.config import load_config
from perfgate.doctor import (
    CollectorStatus,
    check_collectors,
    check_load_generator,
    check_pprof,
    render_doctor,
)


@requires_root
def test_everything_available_with_the_example_service(greeter):
    statuses = check_collectors(generator="ghz", generator_path=str(GHZ), pprof_url=greeter.pprof_url,
                                bpftrace="bpftrace")
    assert list(statuses) == ["ghz", "pprof", "allocs", "mutex", "block", "goroutines", "gc", "bpftrace", "syscalls",
                              "contention"]
    assert all(status.available for status in statuses.values()), statuses
    assert statuses["mutex"].reason == (f"{greeter.pprof_url}/debug/pprof/mutex?seconds=1 serves delta profiles, "
                                        "sampling period 10")
    assert statuses["goroutines"].reason.startswith(f"{greeter.pprof_url}/debug/pprof/goroutine answers: ")
    assert "version 'dev'" in statuses["ghz"].reason  # go install builds don't embed a version
    assert statuses["pprof"].reason == f"{greeter.pprof_url}/debug/pprof/ answers"
    assert "runqlat.bt attached" in statuses["bpftrace"].reason
    assert "bpftrace v0." in statuses["bpftrace"].reason
    assert "steal" in statuses["contention"].reason and "CPU limits from cgroup v" in statuses["contention"].reason
    assert re.search(r"syscalls.bt's probes \(in the kernel program\) timed \d+ of perfgate's own calls \(\w+ \d+",
                     statuses["syscalls"].reason), statuses["syscalls"]
    assert statuses["gc"].reason.startswith(f"{greeter.pprof_url}/debug/vars serves memstats: NumGC ")


@requires_root
def test_gc_and_syscalls_say_where_they_come_from_or_why_not(greeter, tmp_path):
    def config(**sections):
        return load_config(write_config(tmp_path, base_config(greeter.address, **sections)))

    def check(config, pprof_url=None, bpftrace="bpftrace"):
        return check_collectors(generator="ghz", generator_path=str(GHZ), pprof_url=pprof_url, bpftrace=bpftrace,
                                config=config)

    started = config(service={"command": [str(GREETER), "-grpc-addr", greeter.address]}, kernel={"enabled": True})
    statuses = check(started)
    assert statuses["gc"].available and "GODEBUG=gctrace=1" in statuses["gc"].reason
    assert statuses["gc"].reason.endswith(f"{GREETER} is a Go program")
    assert statuses["syscalls"].available, statuses["syscalls"]
    shell = config(service={"command": ["/bin/sh", "-c", "exec sleep 1"]})
    gc = check(shell)["gc"]
    assert not gc.available and "'/bin/sh' is not a Go program" in gc.reason
    no_expvar = check(config(kernel={"enabled": False}), f"{greeter.pprof_url}/nothing", "nope")
    assert not no_expvar["gc"].available and "HTTP 404" in no_expvar["gc"].reason
    assert no_expvar["syscalls"].reason.startswith("kernel.enabled is false")
    left_out = config(layers={"enabled": ["allocs"]})
    statuses = check(left_out, bpftrace="nope")
    assert statuses["gc"].reason == "layers.enabled leaves out gc"
    assert statuses["syscalls"].reason == "layers.enabled leaves out syscalls"


def test_missing_tools_say_how_to_install_them(tmp_path):
    statuses = check_collectors(generator="ghz", generator_path=str(tmp_path / "ghz"), pprof_url=None,
                                bpftrace=str(tmp_path / "bpftrace"))
    assert not any(status.available for name, status in statuses.items() if name != "contention")
    assert "scripts/setup.sh --ghz" in statuses["ghz"].reason
    assert statuses["pprof"].reason.startswith("no pprof URL configured")
    assert statuses["allocs"].reason == f"needs the CPU profile's endpoint: {statuses['pprof'].reason}"
    assert statuses["bpftrace"].reason.startswith("bpftrace not found")
    assert "apt-get install bpftrace" in statuses["bpftrace"].reason
    assert statuses["syscalls"].reason.startswith("needs the kernel view: bpftrace not found")
    assert statuses["gc"].reason.startswith("perfgate does not start the service (service.command) and no "
                                            "cpu.pprof_url is set")


def test_a_ghz_path_that_is_not_ghz():
    false = shutil.which("false")
    assert false is not None
    status = check_load_generator("ghz", false)
    assert not status.available
    assert status.reason.startswith(f"{false} --version exited with 1")


def test_pprof_unreachable_and_wrong_endpoint(greeter):
    unreachable = check_pprof(f"http://127.0.0.1:{free_port()}")
    assert not unreachable.available and "is not reachable" in unreachable.reason
    not_pprof = check_pprof(f"{greeter.pprof_url}/debug/pprof/nothing-here")
    assert not not_pprof.available and "answered HTTP 404" in not_pprof.reason
    trailing = check_pprof(f"{greeter.pprof_url}/debug/pprof/")
    assert trailing.available and trailing.reason == f"{greeter.pprof_url}/debug/pprof/ answers"


def test_render_json_and_text():
    statuses = {"ghz": CollectorStatus(True, "ghz 1.0"), "bpftrace": CollectorStatus(False, "not root")}
    assert json.loads(render_doctor(statuses, as_json=True)) == {
        "ghz": {"available": True, "reason": "ghz 1.0"},
        "bpftrace": {"available": False, "reason": "not root"},
    }
    assert render_doctor(statuses, as_json=False).splitlines() == [
        "ghz       ok  ghz 1.0",
        "bpftrace  no  not root",
    ]


def test_layers_with_the_profiling_rates_off_say_what_the_service_must_call(start_greeter, tmp_path):
    greeter = start_greeter("-mutex-profile-fraction", "0", "-block-profile-rate", "0")
    config = load_config(write_config(tmp_path, base_config(greeter.address, layers={"enabled": ["mutex", "block"]})))
    statuses = check_collectors(generator="ghz", generator_path=str(GHZ), pprof_url=greeter.pprof_url,
                                bpftrace="bpftrace", config=config)
    assert [name for name in statuses if name in ("allocs", "mutex", "block", "goroutines")] == ["mutex", "block"]
    assert not statuses["mutex"].available and "runtime.SetMutexProfileFraction(N)" in statuses["mutex"].reason
    assert not statuses["block"].available and "runtime.SetBlockProfileRate(NS)" in statuses["block"].reason

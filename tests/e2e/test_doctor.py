"""perfgate doctor's collector checks against the real tools and the real example service."""

from __future__ import annotations

import json
import shutil

from support.greeter import free_port
from support.paths import GHZ
from support.runq import requires_root

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
    assert list(statuses) == ["ghz", "pprof", "allocs", "mutex", "block", "goroutines", "bpftrace", "contention"]
    assert all(status.available for status in statuses.values()), statuses
    assert statuses["mutex"].reason == (f"{greeter.pprof_url}/debug/pprof/mutex?seconds=1 serves delta profiles, "
                                        "sampling period 10")
    assert statuses["goroutines"].reason.startswith(f"{greeter.pprof_url}/debug/pprof/goroutine answers: ")
    assert "version 'dev'" in statuses["ghz"].reason  # go install builds don't embed a version
    assert statuses["pprof"].reason == f"{greeter.pprof_url}/debug/pprof/ answers"
    assert "runqlat.bt attached" in statuses["bpftrace"].reason
    assert "bpftrace v0." in statuses["bpftrace"].reason
    assert "steal" in statuses["contention"].reason and "CPU limits from cgroup v" in statuses["contention"].reason


def test_missing_tools_say_how_to_install_them(tmp_path):
    statuses = check_collectors(generator="ghz", generator_path=str(tmp_path / "ghz"), pprof_url=None,
                                bpftrace=str(tmp_path / "bpftrace"))
    assert not any(status.available for name, status in statuses.items() if name != "contention")
    assert "scripts/setup.sh --ghz" in statuses["ghz"].reason
    assert statuses["pprof"].reason.startswith("no pprof URL configured")
    assert statuses["allocs"].reason == f"needs the CPU profile's endpoint: {statuses['pprof'].reason}"
    assert statuses["bpftrace"].reason.startswith("bpftrace not found")
    assert "apt-get install bpftrace" in statuses["bpftrace"].reason


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


def test_layers_with_the_profiling_rates_off_say_what_the_service_must_call(start_greeter):
    greeter = start_greeter("-mutex-profile-fraction", "0", "-block-profile-rate", "0")
    statuses = check_collectors(generator="ghz", generator_path=str(GHZ), pprof_url=greeter.pprof_url,
                                bpftrace="bpftrace", layers=("mutex", "block"))
    assert [name for name in statuses if name in ("allocs", "mutex", "block", "goroutines")] == ["mutex", "block"]
    assert not statuses["mutex"].available and "runtime.SetMutexProfileFraction(N)" in statuses["mutex"].reason
    assert not statuses["block"].available and "runtime.SetBlockProfileRate(NS)" in statuses["block"].reason

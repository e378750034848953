"""GC figures of a window: a real example service's GODEBUG=gctrace=1 output (tests/data/syscalls/gctrace.log,
recorded by record_syscall_outputs.py) cut by byte offsets, memstats differences, the service's environment."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest
from support.paths import GREETER, TEST_DATA

from perfgate.capture.gc import (
    GCTRACE_LINE,
    GcUnavailable,
    is_go_binary,
    memstats_window,
    read_gctrace,
    traced_service,
    vars_url,
    with_gctrace,
)
from perfgate.config import ServiceConfig

LOG = TEST_DATA / "syscalls" / "gctrace.log"
TEXT = LOG.read_bytes()
LINES = [line for line in TEXT.decode().splitlines() if line.startswith("gc ")]


def offset_of(line_index: int) -> int:
    return TEXT.index(LINES[line_index].encode())


def test_every_gctrace_line_of_the_window_is_one_collection():
    window = read_gctrace(LOG, 0, len(TEXT))
    assert window.cycles == len(LINES) > 10
    assert window.raw.splitlines() == LINES
    pauses = [float(m.group(1)) + float(m.group(3)) for m in
              (re.search(r": ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock", line) for line in LINES)]
    assert window.pause_ns == round(sum(pauses) * 1e6)
    assert 0 < window.pause_ns < window.cpu_ns


def test_a_window_is_the_lines_between_its_byte_offsets():
    window = read_gctrace(LOG, offset_of(3), offset_of(8))
    assert window.cycles == 5 and window.raw.splitlines() == LINES[3:8]


def test_no_collection_in_a_window_is_zero_once_the_service_has_traced_before():
    end = len(TEXT)
    assert read_gctrace(LOG, end, end).cycles == 0


def test_a_service_that_never_traced_is_not_a_go_program(tmp_path):
    log = tmp_path / "service.log"
    log.write_text("listening on :8080\nrequest served\n")
    with pytest.raises(GcUnavailable, match="not a Go program, or it overrides GODEBUG"):
        read_gctrace(log, 0, log.stat().st_size)


def test_the_line_format_of_older_and_forced_collections_parses():
    older = "gc 7 @1.203s 0%: 0.010+0.45+0.002 ms clock, 0.041+0.10/0.31/0.61+0.009 ms cpu, 4->4->0 MB, 5 MB goal, 4 P"
    forced = LINES[0] + " (forced)"
    assert GCTRACE_LINE.search(older) and GCTRACE_LINE.search(forced)


def test_gctrace_is_added_to_the_service_s_godebug_and_never_overrides_one_set():
    assert with_gctrace({}) == {"GODEBUG": "gctrace=1"}
    assert with_gctrace({"GODEBUG": "madvdontneed=1", "A": "b"}) == {"GODEBUG": "madvdontneed=1,gctrace=1", "A": "b"}
    assert with_gctrace({"GODEBUG": "gctrace=2"}) == {"GODEBUG": "gctrace=2"}
    service = ServiceConfig(command=("svc",), env=MappingProxyType({}), cwd=None, ready="port", start_timeout_s=5,
                            pass_env=("GODEBUG",))
    assert traced_service(service, {"GODEBUG": "x=1"}).env == {"GODEBUG": "x=1,gctrace=1"}
    assert traced_service(service, {}).env == {"GODEBUG": "gctrace=1"}


def test_memstats_of_a_window_are_the_differences():
    window = memstats_window({"NumGC": 10, "PauseTotalNs": 5_000, "NumForcedGC": 0},
                             {"NumGC": 14, "PauseTotalNs": 9_500, "NumForcedGC": 0})
    assert (window.cycles, window.pause_ns, window.cpu_ns) == (4, 4_500, None)
    with pytest.raises(GcUnavailable, match="went backwards"):
        memstats_window({"NumGC": 10, "PauseTotalNs": 5_000}, {"NumGC": 3, "PauseTotalNs": 9_000})


@pytest.mark.parametrize("pprof_url", ["http://h:1", "http://h:1/", "http://h:1/debug/pprof",
                                       "http://h:1/debug/pprof/profile"])
def test_expvar_is_served_beside_net_http_pprof(pprof_url):
    assert vars_url(pprof_url) == "http://h:1/debug/vars"


def test_a_go_binary_is_told_from_another_program(tmp_path):
    assert is_go_binary(GREETER) is True
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexec true\n")
    assert is_go_binary(script) is False
    assert is_go_binary(tmp_path / "missing") is None

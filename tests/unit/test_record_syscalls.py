"""The record's system calls and GC: written and reloaded equal (figures from a real window of the example
service, tests/data/syscalls), absent in older records, files and figures checked like the rest of a record
written by a pull request."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support.paths import TEST_DATA
from support.records import sample_record

from perfgate.capture.runq_parse import parse_bpftrace_json
from perfgate.capture.syscalls import window_syscalls
from perfgate.errors import RecordError
from perfgate.record import load_record
from perfgate.record_parts import GcCapture, SyscallCapture

WINDOW = parse_bpftrace_json((TEST_DATA / "syscalls" / "two_greeters.jsonl").read_text().splitlines())


def with_syscalls(record):
    stats = window_syscalls(WINDOW, "pgmark-1", "pgmark-2", slots=frozenset({2}), machine="x86_64")
    rep = replace(record.repetitions[0],
                  syscalls=SyscallCapture(status="ok", file="runq/rep-01.jsonl", stats=stats),
                  gc=GcCapture(status="ok", source="gctrace", file="gc/rep-01.gctrace.log", cycles=12,
                               pause_ns=1_500_000, cpu_ns=9_000_000))
    return replace(record, repetitions=(rep,))


def test_syscalls_and_gc_reload_equal(tmp_path):
    saved = with_syscalls(sample_record()).save(tmp_path / "rec")
    loaded = load_record(tmp_path / "rec")
    assert loaded == saved
    rep = loaded.repetitions[0]
    assert rep.syscalls.stats.calls[0].name == "futex" and rep.gc.cycles == 12
    reads = next(c for c in rep.syscalls.stats.calls if c.name == "read")
    assert reads.p99_us > 2000  # the blocking-read knob's window


def test_a_record_from_before_them_reads_as_without_them(tmp_path):
    folder = sample_record().save(tmp_path / "rec").path
    data = json.loads((folder / "record.json").read_text())
    for rep in data["repetitions"]:
        del rep["syscalls"], rep["gc"]
    (folder / "record.json").write_text(json.dumps(data))
    rep = load_record(folder).repetitions[0]
    assert rep.syscalls is None and rep.gc is None


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda rep: rep["syscalls"].update(file="../../etc/passwd"), "syscalls.file"),
    (lambda rep: rep["gc"].update(file="/etc/passwd"), "gc.file"),
    (lambda rep: rep["gc"].update(cycles="many"), "cycles"),
    (lambda rep: rep["gc"].update(pause_ns=1.5), "pause_ns"),
    (lambda rep: rep["syscalls"]["stats"]["calls"][0].update(total_ns=10**30), "total_ns"),
    (lambda rep: rep["syscalls"]["stats"]["calls"][0].update(name=7), "name"),
    (lambda rep: rep["syscalls"]["stats"]["calls"][0]["buckets"][0].update(count=-1), "count must be >= 0"),
    (lambda rep: rep["syscalls"]["stats"].update(calls="all"), "syscalls"),
    (lambda rep: rep.update(syscalls=["read"]), "field 'syscalls' should be an object"),
    (lambda rep: rep.update(gc=3), "field 'gc' should be an object"),
])
def test_a_damaged_capture_is_refused_naming_the_field(tmp_path, mutate, expected):
    folder = with_syscalls(sample_record()).save(tmp_path / "rec").path
    data = json.loads((folder / "record.json").read_text())
    mutate(data["repetitions"][0])
    (folder / "record.json").write_text(json.dumps(data))
    with pytest.raises(RecordError, match=expected.replace(".", r"\.")):
        load_record(folder)

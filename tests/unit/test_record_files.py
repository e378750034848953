"""A record cannot reach outside itself: every file record.json names stays in the folder, is a regular
file and is read size-capped; `perfgate profile top` reads a pipe or a device with the same kind of cap."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.hostile_records import edit_record, write_profile, write_record
from support.paths import ROOT

from perfgate import files
from perfgate.cli import main
from perfgate.errors import EXIT_USAGE

PROFILES = [{"main.work": 400_000_000 + 10_000_000 * i, "main.other": 300_000_000} for i in range(3)]


def compare(tmp_path: Path, capsys) -> tuple[int, str]:
    code = main(["compare", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand"),
                 "--out", str(tmp_path / "out"), "--set", "report.plots=false"])
    return code, capsys.readouterr().err


@pytest.fixture
def records(tmp_path: Path) -> Path:
    write_record(tmp_path / "base", "baseline", PROFILES)
    write_record(tmp_path / "cand", "candidate", PROFILES)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "service.log").write_text("GITHUB_TOKEN=ghs_from_another_record\n")
    return tmp_path


def set_field(rep: int, field: str, value: str):
    def change(data: dict) -> None:
        node = data["repetitions"][rep]
        *parents, leaf = field.split(".")
        for name in parents:
            node = node[name]
        node[leaf] = value

    return change


@pytest.mark.parametrize(("field", "value"), [
    ("cpu.file", "/etc/passwd"),
    ("load_file", "../other/service.log"),
    ("cpu.file", "cpu/../../other/service.log"),
    ("runq.file", "/dev/zero"),
    ("latency_file", "../../other/service.log"),
])
def test_a_file_outside_the_record_is_refused_naming_the_field(records: Path, capsys, field: str,
                                                              value: str) -> None:
    edit_record(records / "base", set_field(1, field, value))
    code, err = compare(records, capsys)
    assert code == EXIT_USAGE
    assert f"repetitions[1].{field}" in err and "outside the record folder" in err
    assert "ghs_from_another_record" not in err and "root:" not in err


def test_a_link_out_of_the_record_is_refused(records: Path, capsys) -> None:
    link = records / "cand" / "cpu" / "rep-02.pb.gz"
    link.unlink()
    link.symlink_to(records / "other" / "service.log")
    code, err = compare(records, capsys)
    assert code == EXIT_USAGE and "repetitions[1].cpu.file" in err and "symbolic link" in err


@pytest.mark.timeout(20)
def test_a_fifo_in_the_record_is_refused_at_once(records: Path, capsys) -> None:
    fifo = records / "cand" / "cpu" / "rep-03.pb.gz"
    fifo.unlink()
    os.mkfifo(fifo)
    code, err = compare(records, capsys)
    assert code == EXIT_USAGE and "repetitions[2].cpu.file" in err and "FIFO" in err


@pytest.mark.timeout(20)
def test_record_json_itself_as_a_fifo_is_refused_at_once(records: Path, capsys) -> None:
    (records / "cand" / "record.json").unlink()
    os.mkfifo(records / "cand" / "record.json")
    code, err = compare(records, capsys)
    assert code == EXIT_USAGE and "record.json" in err and "FIFO" in err


def test_profile_top_on_dev_zero_ends_at_the_cap_in_bounded_memory() -> None:
    def limit_memory() -> None:  # the old reader grew until MemoryError; now it stops at 128 MiB
        resource.setrlimit(resource.RLIMIT_AS, (1536 * 1024**2, 1536 * 1024**2))

    done = subprocess.run([sys.executable, "-m", "perfgate", "profile", "top", "/dev/zero"],  # noqa: S603
                          capture_output=True, text=True, timeout=60, preexec_fn=limit_memory, check=False,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "/dev/zero" in done.stderr and "more than the 128 MiB limit" in done.stderr


@pytest.mark.timeout(20)
def test_profile_top_on_a_fifo_that_never_ends_stops_at_the_deadline(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(files, "READ_DEADLINE_S", 1.0)
    fifo = tmp_path / "profile.pb.gz"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that never closes
    try:
        assert main(["profile", "top", str(fifo)]) == EXIT_USAGE
    finally:
        os.close(writer)
    assert "sent no end of data within 1 s" in capsys.readouterr().err


def test_profile_top_reads_a_pipe(tmp_path: Path, capsys) -> None:
    path = write_record(tmp_path / "rec", "candidate", PROFILES[:1]) / "cpu" / "rep-01.pb.gz"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(path.read_bytes()), daemon=True)
    feeder.start()
    assert main(["profile", "top", str(fifo)]) == 0
    feeder.join(timeout=5)
    assert "main.work" in capsys.readouterr().out


def test_a_profile_named_in_the_record_is_capped(records: Path, capsys, monkeypatch) -> None:
    from perfgate.compare import inputs

    monkeypatch.setattr(inputs, "MAX_PROFILE_BYTES", 64)
    write_profile(records / "cand" / "cpu" / "rep-01.pb.gz", {"main.work": 10**9})
    code, err = compare(records, capsys)
    assert code == EXIT_USAGE and "repetitions[0].cpu.file" in err and "more than the" in err

"""The capacity probes' CPU profiles: kept in the record, read back only where they cover probes of their phase,
refused when they point outside the record, and counted by the movers' test as strata of their own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from support.hostile_records import edit_record, load_sample, write_profile, write_record

from perfgate.cli import main
from perfgate.compare.functions import cpu_per_request_sides, moves
from perfgate.compare.inputs import load_inputs, side_inputs
from perfgate.config import load_config
from perfgate.errors import EXIT_USAGE
from perfgate.gate import decide
from perfgate.measure.probe_profile import profile_seconds, spans
from perfgate.record import load_record
from perfgate.record_parts import CapacityProbe, CpuCapture, ProbeProfile
from perfgate.report.movers import COUNT_TEST, count_test_text
from perfgate.verdict import CpuView

WINDOWS = [{"main.work": 400_000_000 + 10_000_000 * (i % 3), "main.other": 300_000_000,
            "runtime.gc": 200_000_000 + 10_000_000 * (i % 2)} for i in range(8)]


def with_probes(folder: Path, probe_cpu: list[dict[str, int]], entries: list[tuple[str, tuple[int, ...]]]) -> Path:
    """Add capacity probes 1..N (the first two "rate", the rest "pair") and probe profiles `entries`, the k-th
    written from probe_cpu[k]."""
    record = load_record(folder)
    count = max((i for _, probes in entries for i in probes), default=0)
    probes = tuple(CapacityProbe(index=i, phase="rate" if i <= 2 else "pair", started_at="2026-01-01T00:00:00+00:00",
                                 ended_at="2026-01-01T00:00:01+00:00", load=load_sample(10.0),
                                 load_file=f"load/capacity-{i:02d}.json") for i in range(1, count + 1))
    profiles = []
    for k, ((phase, covered), cpu_ns) in enumerate(zip(entries, probe_cpu, strict=True), 1):
        name = f"cpu/probes-{k:02d}.pb.gz"
        total = write_profile(folder / name, cpu_ns)
        profiles.append(ProbeProfile(phase=phase, probes=covered, cpu=CpuCapture(
            status="ok", file=name, total_cpu_ns=total, duration_ns=10**9)))
    replace(record, capacity_probes=probes, probe_profiles=tuple(profiles)).save(folder)
    return folder


PAIRS = [("rate", (1, 2))] + [("pair", (i,)) for i in range(3, 9)]


def probe_cpu(work_ns: int) -> list[dict[str, int]]:
    return [{"main.work": work_ns * (2 if phase == "rate" else 1), "main.other": 300_000_000,
             "runtime.gc": 200_000_000} for phase, _ in PAIRS]


def test_probe_profiles_survive_the_record_and_are_read_with_the_calls_of_their_probes(tmp_path):
    folder = with_probes(write_record(tmp_path / "rec", "baseline", WINDOWS), probe_cpu(400_000_000), PAIRS)
    record = load_record(folder)
    assert [(p.phase, p.probes) for p in record.probe_profiles] == PAIRS
    side = side_inputs(record)
    assert [p.phase for p in side.probe_cpu] == [phase for phase, _ in PAIRS]
    calls = load_sample(10.0).ok_count
    assert [p.ok_calls for p in side.probe_cpu] == [len(probes) * calls for _, probes in PAIRS]
    assert side.probe_cpu[0].profile.functions["main.work"].cum == 800_000_000


@pytest.mark.parametrize("entries", [
    [("pair", (9,))],  # a probe the record does not have
    [("rate", (3,))],  # a probe of the other phase
    [("pair", (3,)), ("pair", (3,))],  # one probe claimed twice: the second is left out
])
def test_a_probe_profile_that_does_not_match_its_probes_is_left_out(tmp_path, entries):
    folder = write_record(tmp_path / "rec", "baseline", WINDOWS)
    with_probes(folder, probe_cpu(400_000_000)[:1], [("pair", (3,))])  # probes 1..3 exist
    record = load_record(folder)
    profiles = tuple(ProbeProfile(phase, probes, record.probe_profiles[0].cpu) for phase, probes in entries)
    side = side_inputs(replace(record, probe_profiles=profiles))
    assert len(side.probe_cpu) == (1 if len(entries) == 2 else 0)
    left_out = "2 of 2" if len(entries) == 2 else "1 of 1"
    assert side.probe_cpu_problems == (f"capacity probes' profile {left_out} left out: it does not name probes of "
                                       "its phase that no other profile names",)


def test_unreadable_probe_profiles_are_left_out_and_the_verdict_says_so(tmp_path):
    folders = {role: with_probes(write_record(tmp_path / role, role, WINDOWS), probe_cpu(400_000_000), PAIRS)
               for role in ("baseline", "candidate")}
    (folders["candidate"] / load_record(folders["candidate"]).probe_profiles[0].cpu.file).write_bytes(b"not gzip")
    (folders["candidate"] / load_record(folders["candidate"]).probe_profiles[1].cpu.file).unlink()
    cand = side_inputs(load_record(folders["candidate"]))
    assert len(cand.probe_cpu) == len(PAIRS) - 2
    assert [p.split(" left out: ")[0] for p in cand.probe_cpu_problems] == [
        f"capacity probes' profile 1 of {len(PAIRS)}", f"capacity probes' profile 2 of {len(PAIRS)}"]
    assert "missing from the record" in cand.probe_cpu_problems[1]
    verdict = decide(load_inputs(load_record(folders["baseline"]), load_record(folders["candidate"])),
                     load_config(None, environ={}, require_target=False))
    assert [n for n in verdict.notes if "capacity probes' profile" in n] == [
        f"candidate: {p}" for p in cand.probe_cpu_problems]


@pytest.mark.parametrize(("change", "field"), [
    (lambda data: data["probe_profiles"][0]["cpu"].update(file="../other/service.log"), "probe_profiles[0].cpu.file"),
    (lambda data: data["capacity_probes"][0].update(load_file="/etc/passwd"), "capacity_probes[0].load_file"),
])
def test_a_probe_file_outside_the_record_is_refused_naming_the_field(tmp_path, capsys, change, field):
    for role, folder in (("baseline", "base"), ("candidate", "cand")):
        with_probes(write_record(tmp_path / folder, role, WINDOWS), probe_cpu(400_000_000), PAIRS)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "service.log").write_text("GITHUB_TOKEN=ghs_from_another_record\n")
    edit_record(tmp_path / "cand", change)
    code = main(["compare", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand"),
                 "--out", str(tmp_path / "out"), "--set", "report.plots=false"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and field in err and "outside the record folder" in err
    assert "ghs_from_another_record" not in err


def test_probe_indexes_that_are_not_integers_are_a_schema_error(tmp_path, capsys):
    folder = with_probes(write_record(tmp_path / "rec", "baseline", WINDOWS), probe_cpu(400_000_000), PAIRS)
    edit_record(folder, lambda data: data["probe_profiles"][0].update(probes=["1; rm -rf /"]))
    assert main(["profile", "diff", str(folder), str(folder)]) == EXIT_USAGE
    assert "integer probe indexes" in capsys.readouterr().err


def test_the_probes_samples_name_a_rise_the_windows_alone_leave_in_doubt(tmp_path):
    """The windows: main.work +2.5 % of its cost, within their noise. The probes: +25 % in every profile."""
    base = with_probes(write_record(tmp_path / "base", "baseline", WINDOWS), probe_cpu(400_000_000), PAIRS)
    grown = [{**cpu, "main.work": cpu["main.work"] + 10_000_000} for cpu in WINDOWS]
    cand = with_probes(write_record(tmp_path / "cand", "candidate", grown), probe_cpu(500_000_000), PAIRS)
    sides = [side_inputs(load_record(folder)) for folder in (base, cand)]
    scaled = cpu_per_request_sides(*sides)
    assert scaled is not None
    alone = moves(scaled[0], scaled[1], unit="µs", alpha=0.05, sampled_cpu=True)
    both = moves(scaled[0], scaled[1], unit="µs", alpha=0.05, sampled_cpu=True,
                 probes=(sides[0].probe_cpu, sides[1].probe_cpu))
    work = {found: next(m for m in found.risers if m.function == "main.work") for found in (alone, both)}
    assert not work[alone].significant and work[both].significant
    assert alone.probe_profiles == 0 and both.probe_profiles == 2 * len(PAIRS)


def test_a_profile_covers_each_builds_probes_in_whole_seconds():
    assert spans((0, 1, 1, 0)) == {0: 4, 1: 2} and spans((1, 0)) == {1: 1, 0: 1}
    assert profile_seconds(4, 1.0) == 5 and profile_seconds(2, 1.0) == 3 and profile_seconds(1, 0.5) == 1


def test_the_report_names_the_probe_profiles_only_when_the_test_counted_them():
    assert count_test_text(CpuView(available=True)) == COUNT_TEST
    text = count_test_text(CpuView(available=True, probe_profiles=14))
    assert "as strata of their own, the 14 capacity probes' profiles" in text

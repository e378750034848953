"""`perfgate profile diff` against the real `go tool pprof -diff_base -normalize` on real profiles."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from support.pprof import PPROF_FIXTURES, gobench_profile, have_go, pprof_top_ns
from support.records import sample_record

from perfgate.cli import main
from perfgate.compare.functions import per_request_changes
from perfgate.compare.inputs import calls_during_profile
from perfgate.errors import EXIT_USAGE
from perfgate.profile.aggregate import go_round
from perfgate.profile.diff import normalized_diff
from perfgate.profile.parse import parse_profile
from perfgate.record import load_record
from perfgate.record_parts import CpuCapture

pytestmark = pytest.mark.skipif(not have_go(), reason="needs Go (go tool pprof)")

BASE = [PPROF_FIXTURES / f"greeter-base-{i}.pb.gz" for i in (1, 2)]
CAND = [PPROF_FIXTURES / f"greeter-cand-{i}.pb.gz" for i in (1, 2)]


def pprof_diff_ns(base: Path, candidate: Path) -> dict[str, tuple[int, int]]:
    return pprof_top_ns(candidate, f"-diff_base={base}", "-normalize")


@pytest.fixture(scope="module")
def other_program(tmp_path_factory) -> Path:
    return gobench_profile(tmp_path_factory.mktemp("gobench"))


@pytest.mark.parametrize(("base", "candidate"), [(BASE[0], CAND[0]), (BASE[1], CAND[1]), (CAND[1], BASE[0]),
                                                 (BASE[0], BASE[1])], ids=["1", "2", "reversed", "same build"])
def test_normalized_diff_equals_pprof_to_the_nanosecond(base, candidate):
    ours = normalized_diff(base, candidate)
    theirs = pprof_diff_ns(base, candidate)
    assert theirs and {name for name, cost in ours.functions.items()} == set(theirs)
    for name, (flat, cum) in theirs.items():
        assert (ours.functions[name].flat, ours.functions[name].cum) == (flat, cum), name
    assert ours.total == parse_profile(base).total  # percentages are of the base's total, as pprof's


def test_two_different_programs_diff_like_pprof(other_program):
    ours = normalized_diff(other_program, BASE[0])
    theirs = pprof_diff_ns(other_program, BASE[0])
    assert {name: (c.flat, c.cum) for name, c in ours.functions.items()} == theirs


def test_a_profile_against_itself_lists_nothing_like_pprof():
    """Functions whose flat and cum both net to zero are left out, as pprof's graph leaves them out."""
    assert pprof_diff_ns(BASE[0], BASE[0]) == {}
    assert dict(normalized_diff(BASE[0], BASE[0]).functions) == {}


def test_cli_json_and_table(capsys):
    assert main(["profile", "diff", "--json", str(BASE[0]), str(CAND[0])]) == 0
    rows = json.loads(capsys.readouterr().out)
    theirs = pprof_diff_ns(BASE[0], CAND[0])
    assert {row["function"]: (row["flat"], row["cum"]) for row in rows} == theirs
    assert [abs(row["flat"]) for row in rows] == sorted((abs(row["flat"]) for row in rows), reverse=True)
    assert main(["profile", "diff", str(BASE[0]), str(CAND[0])]) == 0
    table = capsys.readouterr().out
    assert "flat  flat%   sum%        cum   cum%" in table and rows[0]["function"] in table


def test_go_round_is_halves_away_from_zero():
    assert [go_round(x) for x in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4999999, 7.0)] == [1, 2, 3, -1, -3, 2, 7]


def record_with_profiles(folder: Path, profiles: list[Path], ok_count: int) -> Path:
    """A run record whose OK repetitions hold these real profiles (10 s windows, ok_count calls each)."""
    template = sample_record().repetitions[0]
    repetitions = []
    for index, profile in enumerate(profiles, start=1):
        name = f"cpu/rep-{index:02d}.pb.gz"
        (folder / "cpu").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(profile, folder / name)
        load = replace(template.load, count=ok_count, ok_count=ok_count, total_ns=10_000_000_000,
                       status_counts={"OK": ok_count}, error_counts={})
        repetitions.append(replace(template, index=index, load=load, cpu=CpuCapture(status="ok", file=name)))
    replace(sample_record(), repetitions=tuple(repetitions)).save(folder)
    return folder


def test_records_give_cpu_per_request_from_every_repetition(tmp_path):
    base = load_record(record_with_profiles(tmp_path / "base", BASE, ok_count=3000))
    candidate = load_record(record_with_profiles(tmp_path / "cand", CAND, ok_count=2000))
    rows = {row.function: row for row in per_request_changes(base, candidate)}

    def expected(record, files) -> dict[str, float]:
        calls = sum(calls_during_profile(rep, parse_profile(record.file(rep.cpu.file))) for rep in record.repetitions)
        merged = pprof_top_ns(files[-1], *files[:-1])  # pprof adds up the profiles it is given
        return {name: cum / calls / 1e3 for name, (_, cum) in merged.items()}

    for name, cum_us in expected(base, BASE).items():
        assert rows[name].base_cum_us == pytest.approx(cum_us, rel=1e-12)
    for name, cum_us in expected(candidate, CAND).items():
        assert rows[name].candidate_cum_us == pytest.approx(cum_us, rel=1e-12)
    some = next(iter(rows.values()))
    assert some.cum_change_us == some.candidate_cum_us - some.base_cum_us


def test_a_record_and_a_profile_is_a_usage_error(tmp_path, capsys):
    folder = record_with_profiles(tmp_path / "rec", BASE[:1], ok_count=100)
    assert main(["profile", "diff", str(folder), str(CAND[0])]) == EXIT_USAGE
    assert "two profiles or two run record folders" in capsys.readouterr().err


def test_records_diff_starts_without_statistics_plotting_or_http(tmp_path):
    """`profile diff` of two records reads compare/functions.py, whose statistics import scipy only to test."""
    from support.imports import imports_of

    base = record_with_profiles(tmp_path / "base", BASE, ok_count=3000)
    candidate = record_with_profiles(tmp_path / "cand", CAND, ok_count=2000)
    result = imports_of(["profile", "diff", "--json", str(base), str(candidate)], tmp_path)
    assert result["code"] == 0 and json.loads(result["stdout"])
    assert not {"scipy", "matplotlib", "github", "requests", "urllib3"} & set(result["modules"])

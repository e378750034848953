"""No line perfgate prints can start a GitHub Actions workflow command, whatever external text it holds."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from support.hostile_records import write_profile, write_record

from perfgate.cli import main
from perfgate.gha import _CommandSafeStream, annotation, command_safe, raw_stream

HOSTILE = "main.evil\n::add-mask::FAIL\r::error::forged ##[warning]legacy"
BASE = [{"main.work": 400_000_000, "main.other": 400_000_000 + 10_000_000 * i} for i in range(5)]
CAND = [{HOSTILE: 700_000_000 + 10_000_000 * i, "main.work": 200_000_000, "main.other": 200_000_000}
        for i in range(5)]


def commands_in(log: str) -> list[str]:
    """The lines GitHub's runner would take as workflow commands (`::` after leading blanks, `##[` anywhere)."""
    return [line for line in re.split(r"\r\n|\r|\n", log) if line.lstrip().startswith("::") or "##[" in line]


def test_the_headline_naming_a_hostile_cpu_mover_is_no_command(tmp_path: Path, capsys) -> None:
    base = write_record(tmp_path / "base", "baseline", BASE)
    cand = write_record(tmp_path / "cand", "candidate", CAND)
    main(["compare", "--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "out"),
          "--set", "report.plots=false"])
    printed = capsys.readouterr()
    assert "main.evil" in printed.err and "add-mask" in printed.err  # the mover is named...
    assert commands_in(printed.out + "\n" + printed.err) == []  # ...but commands nothing


@pytest.mark.parametrize("as_json", [False, True])
def test_profile_top_prints_hostile_function_names_as_text(tmp_path: Path, capsys, as_json: bool) -> None:
    path = tmp_path / "p.pb.gz"
    write_profile(path, {HOSTILE: 50_000_000, "main.ok": 10_000_000})
    assert main(["profile", "top", str(path), *(["--json"] if as_json else [])]) == 0
    printed = capsys.readouterr().out
    assert "main.evil" in printed and commands_in(printed) == []
    if as_json:
        import json

        assert json.loads(printed)[0]["function"] == HOSTILE  # the JSON still holds the exact name


def test_error_messages_with_outside_text_are_no_command(capsys) -> None:
    assert main(["compare", "--baseline", "x", "--candidate", "y", "--set", "a\n::stop-commands::t=1",
                 "--set", "b=##[error]x"]) == 2
    err = capsys.readouterr().err
    assert "stop-commands" in err and commands_in(err) == []


def test_perfgates_own_commands_still_reach_the_runner() -> None:
    buffer = io.StringIO()
    wrapped = _CommandSafeStream(buffer)
    wrapped.write("perfgate: ok\n")
    print(annotation("error", "x\n::add-mask::y", "t"), file=raw_stream(wrapped))  # type: ignore[arg-type]
    assert buffer.getvalue() == "perfgate: ok\n::error title=t::x%0A::add-mask::y\n"


@pytest.mark.parametrize("text", ["::a::b", "  ::a::b", "\t\u200b::a::b", "x\n::a::b", "x\r::a::b", "x ##[a]b",
                                  "#", "##", "::"])
def test_any_split_into_writes_is_neutralised(text: str) -> None:
    for cut in range(len(text) + 1):
        buffer = io.StringIO()
        wrapped = _CommandSafeStream(buffer)
        wrapped.write(text[:cut])
        wrapped.write(text[cut:] + "[z]::y")
        assert commands_in(buffer.getvalue()) == [], (cut, buffer.getvalue())
        assert buffer.getvalue() == command_safe(text + "[z]::y")

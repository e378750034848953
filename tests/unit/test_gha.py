"""perfgate.gha: workflow-command strings and the $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY writers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from perfgate import gha


def parse_output_file(text: str) -> dict[str, str]:
    """Read $GITHUB_OUTPUT the way the runner does (name=value, or name<<DELIM ... DELIM)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1:end])
            i = end + 1
        else:
            name, value = line.split("=", 1)
            values[name] = value
            i += 1
    return values


def test_outputs_round_trip_through_the_runner_format(tmp_path: Path) -> None:
    target = tmp_path / "output"
    outputs = {"verdict": "regression", "report-path": "perfgate-out/report.md",
               "summary": "p99 +12.0%\nthroughput -3.1%\n", "odd": "a=b<<c"}
    assert gha.set_outputs(outputs, target)
    assert gha.set_outputs({"exit-code": "1"}, target)  # appends
    text = target.read_text(encoding="utf-8")
    assert "summary<<ghadelimiter_" in text
    assert parse_output_file(text) == {**outputs, "exit-code": "1"}


def test_set_outputs_uses_github_output_and_is_a_no_op_outside_actions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert gha.set_outputs({"verdict": "pass"}) is False
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    assert gha.set_outputs({"verdict": "pass"}) is True
    assert (tmp_path / "out").read_text() == "verdict=pass\n"


def test_outputs_refuse_bad_names_and_the_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="invalid output name"):
        gha.format_outputs({"bad name": "x"})
    with pytest.raises(ValueError, match="invalid output name"):
        gha.format_outputs({"evil\nname": "x"})
    fixed = uuid.UUID("12345678-1234-5678-1234-567812345678")
    monkeypatch.setattr(gha.uuid, "uuid4", lambda: fixed)
    with pytest.raises(ValueError, match="contains the delimiter"):
        gha.format_outputs({"summary": f"line one\nghadelimiter_{fixed}\ninjected=1"})


def test_step_summary_appends_and_respects_the_1_mib_cap(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    assert gha.append_step_summary("# perfgate\n\nall good\n", target)
    assert target.read_text() == "# perfgate\n\nall good\n"
    row = "| handler | +1.0% | ✅ |\n"
    huge = row * (2 * gha.SUMMARY_LIMIT_BYTES // len(row.encode()))
    assert gha.append_step_summary(huge, target)
    data = target.read_bytes()
    assert len(data) <= gha.SUMMARY_LIMIT_BYTES
    text = data.decode("utf-8")  # the cut never splits a multi-byte character
    assert text.startswith("# perfgate\n")
    assert text.endswith(gha.SUMMARY_TRUNCATION_NOTE)
    assert text[: -len(gha.SUMMARY_TRUNCATION_NOTE)].endswith("✅ |")  # cut at a whole line
    assert gha.append_step_summary("more", target) is False  # nothing fits any more


def test_step_summary_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert gha.append_step_summary("x") is False
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "s.md"))
    assert gha.append_step_summary("x\n") is True
    assert (tmp_path / "s.md").read_text() == "x\n"


def test_annotation_escaping_follows_the_toolkit() -> None:
    line = gha.annotation("error", "p99 50% slower\r\nsee report", title="latency: p99, regression")
    assert line == "::error title=latency%3A p99%2C regression::p99 50%25 slower%0D%0Asee report"
    assert gha.annotation("notice", "ok") == "::notice::ok"
    assert gha.annotation("warning", "x", title="t", file="perfgate.yml", line=3) == (
        "::warning title=t,file=perfgate.yml,line=3::x")
    with pytest.raises(ValueError, match="annotation level"):
        gha.annotation("fatal", "x")


def test_add_mask_and_detection() -> None:
    assert gha.add_mask("s3cr%t\nline2") == "::add-mask::s3cr%25t%0Aline2"
    assert gha.in_github_actions({"GITHUB_ACTIONS": "true"})
    assert not gha.in_github_actions({"GITHUB_ACTIONS": "false"})
    assert not gha.in_github_actions({})

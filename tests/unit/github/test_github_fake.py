"""The fake GitHub API itself: it must reject what GitHub's OpenAPI description rejects.

If these fail, every other test_github_* test proves less than it claims.
"""

from __future__ import annotations

import requests
from support.ghapi.server import TEST_TOKEN, FakeGitHub
from support.ghapi.spec import GitHubSpec

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}", "Accept": "application/vnd.github+json"}


def test_spec_comes_from_the_installed_octokit_package(github_spec: GitHubSpec) -> None:
    ids = {op.operation_id for op in github_spec.operations}
    assert {"issues/create-comment", "issues/update-comment", "issues/delete-comment",
            "actions/list-workflow-runs-for-repo", "actions/download-artifact"} <= ids
    assert github_spec.version.count(".") == 2
    schema = github_spec.document["components"]["schemas"]["issue-comment"]
    assert "body" in schema["properties"]  # GitHub's schema, copied, not written here


def test_valid_requests_pass_and_answers_validate(fake_github: FakeGitHub) -> None:
    url = f"{fake_github.base_url}/repos/acme/svc/issues/3/comments"
    created = requests.post(url, json={"body": "hi"}, headers=AUTH, timeout=10)
    assert created.status_code == 201
    listed = requests.get(url, params={"per_page": 5}, headers=AUTH, timeout=10)
    assert listed.status_code == 200
    assert [c["body"] for c in listed.json()] == ["hi"]
    assert fake_github.responses_checked == 2
    assert fake_github.violations == []


def test_invalid_requests_answer_400_and_are_recorded(fake_github: FakeGitHub) -> None:
    base = f"{fake_github.base_url}/repos/acme/svc"
    cases = [
        ("POST", f"{base}/issues/3/comments", {"json": {"text": "wrong field"}}, 400, "'body' is a required"),
        ("POST", f"{base}/issues/3/comments", {"json": {"body": 42}}, 400, "42"),
        ("GET", f"{base}/issues/3/comments", {"params": {"per_page": "many"}}, 400, "per_page"),
        ("GET", f"{base}/issues/3/comments", {"params": {"sort": "created"}}, 400, "undeclared query"),
        ("GET", f"{base}/actions/runs", {"params": {"status": "succeeded"}}, 400, "succeeded"),
        ("GET", f"{base}/issues/abc/comments", {}, 400, "issue_number"),
        ("GET", f"{base}/pulls/3/files", {}, 404, "no such path"),
        ("PUT", f"{base}/issues/comments/1", {"json": {"body": "x"}}, 405, "method not allowed"),
    ]
    for method, url, kwargs, status, needle in cases:
        answer = requests.request(method, url, headers=AUTH, timeout=10, **kwargs)
        assert answer.status_code == status, (method, url, answer.text)
        recorded = fake_github.take_violations()
        assert len(recorded) == 1 and needle in recorded[0], (needle, recorded)


def test_missing_authorization_is_a_violation(fake_github: FakeGitHub) -> None:
    answer = requests.get(f"{fake_github.base_url}/repos/acme/svc/actions/runs", timeout=10)
    assert answer.status_code == 401
    assert fake_github.take_violations() == ["GET /repos/acme/svc/actions/runs: no Authorization header"]
    wrong = requests.get(f"{fake_github.base_url}/repos/acme/svc/actions/runs",
                         headers={"Authorization": "token nope"}, timeout=10)
    assert wrong.status_code == 401 and fake_github.violations == []


def test_storage_host_flags_a_forwarded_token(fake_github: FakeGitHub) -> None:
    run = fake_github.add_run("acme/svc")
    artifact = fake_github.add_artifact(run, "perfgate-baseline", b"PK")
    redirect = requests.get(f"{fake_github.base_url}/repos/acme/svc/actions/artifacts/{artifact.id}/zip",
                            headers=AUTH, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(fake_github.storage_url)
    assert requests.get(location, timeout=10).content == b"PK"
    leaked = requests.get(location, headers=AUTH, timeout=10)
    assert leaked.status_code == 400
    assert fake_github.take_violations() == [
        f"storage host received an Authorization header on GET /blobs/{artifact.id}.zip"]


def test_pagination_links(fake_github: FakeGitHub) -> None:
    for i in range(7):
        fake_github.add_comment("acme/svc", 9, f"comment {i}")
    url = f"{fake_github.base_url}/repos/acme/svc/issues/9/comments"
    seen, pages = [], 0
    next_url: str | None = url + "?per_page=3"
    while next_url:
        answer = requests.get(next_url, headers=AUTH, timeout=10)
        seen += [c["body"] for c in answer.json()]
        next_url = answer.links.get("next", {}).get("url")
        pages += 1
    assert pages == 3
    assert seen == [f"comment {i}" for i in range(7)]

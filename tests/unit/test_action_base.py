"""The pull request's base commit on the runner (perfgate.action_base): read from the event, fetched into a
shallow checkout from its origin (real git repositories), refused with a clear message when it cannot be had."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from perfgate.action_base import _auth_env, base_sha, ensure_commit, main
from perfgate.errors import ConfigError, ToolError

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True,  # noqa: S603
                          timeout=60).stdout.strip()


@pytest.fixture
def shallow(tmp_path: Path) -> tuple[Path, str, str]:
    """A shallow clone (as actions/checkout makes) of an origin whose base commit it therefore lacks."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git("init", "-q", "-b", "main", cwd=origin)
    git("commit", "-q", "--allow-empty", "-m", "base", cwd=origin)
    base = git("rev-parse", "HEAD", cwd=origin)
    git("commit", "-q", "--allow-empty", "-m", "head", cwd=origin)
    head = git("rev-parse", "HEAD", cwd=origin)
    git("clone", "-q", "--depth=1", f"file://{origin}", str(tmp_path / "checkout"), cwd=tmp_path)
    return tmp_path / "checkout", base, head


def event(tmp_path: Path, payload: object) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def test_a_base_missing_from_a_shallow_checkout_is_fetched_once(shallow):
    checkout, base, head = shallow
    assert subprocess.run(["git", "-C", str(checkout), "cat-file", "-e", f"{base}^{{commit}}"],  # noqa: S603, S607
                          capture_output=True).returncode != 0
    assert ensure_commit(base, str(checkout), {}) is True
    assert git("rev-parse", f"{base}^{{commit}}", cwd=checkout) == base
    assert ensure_commit(base, str(checkout), {}) is False  # present now: no second fetch
    assert ensure_commit(head, str(checkout), {}) is False


def test_a_base_that_cannot_be_fetched_is_a_tool_error_with_gits_words(shallow):
    checkout, _, _ = shallow
    with pytest.raises(ToolError, match=r"base commit 0{40} is not in the checkout and `git fetch origin") as info:
        ensure_commit("0" * 40, str(checkout), {})
    assert "fetch-depth: 0" in (info.value.hint or "")


@pytest.mark.parametrize("payload", [
    {"ref": "refs/heads/main"},  # a push
    {"pull_request": {"base": {"sha": "main"}}},
    {"pull_request": {"base": {"sha": "$(rm -rf /)" + "0" * 30}}},
    {"pull_request": {"base": "x"}},
    [],
])
def test_only_a_commit_id_in_pull_request_base_sha_is_taken(tmp_path, payload):
    with pytest.raises(ConfigError, match="no pull_request.base.sha"):
        base_sha(event(tmp_path, payload))


def test_the_token_goes_to_git_as_checkouts_extra_header_in_the_environment():
    env = _auth_env({"INPUT_GITHUB-TOKEN": "ghs_abc", "GITHUB_SERVER_URL": "https://ghe.example.com/"})
    assert env["GIT_CONFIG_COUNT"] == "1" and env["GIT_CONFIG_KEY_0"] == "http.https://ghe.example.com/.extraheader"
    assert env["GIT_CONFIG_VALUE_0"] == "AUTHORIZATION: basic " + base64.b64encode(b"x-access-token:ghs_abc").decode()
    assert _auth_env({}) == {}
    assert _auth_env({"INPUT_GITHUB-TOKEN": "t", "GITHUB_SERVER_URL": "http://plain.example"}) == {}


def test_main_prints_the_base_sha_or_one_error_annotation(shallow, tmp_path, capsys):
    checkout, base, _ = shallow
    environ = {"GITHUB_EVENT_PATH": event(tmp_path, {"pull_request": {"base": {"sha": base}}})}
    assert main([str(checkout)], environ) == 0
    assert capsys.readouterr().out == f"{base}\n"
    environ = {"GITHUB_EVENT_PATH": event(tmp_path, {"ref": "refs/heads/main"})}
    assert main([str(checkout)], environ) == 2
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("::error title=perfgate%3A the pull request's base::")

"""The token never shows up in results, exceptions, logs (PyGithub and urllib3 at DEBUG) or output."""

from __future__ import annotations

import io
import logging
import traceback
import zipfile
from pathlib import Path

import pytest
from support.ghapi.server import TEST_TOKEN, FakeGitHub

from perfgate.errors import PerfgateError
from perfgate.github import BaselineSource, RetryPolicy, download_baseline_artifact, upsert_sticky_comment

FAST = RetryPolicy(backoff_factor_s=0.0, max_wait_s=1.0, max_retries=1, seconds_between_requests=0.0,
                   seconds_between_writes=0.0, sleep=lambda _: None)


def every_text(exc: BaseException) -> str:
    """The exception as a traceback would print it, plus any suppressed context."""
    texts = ["".join(traceback.format_exception(exc)), repr(exc)]
    inner = exc.__cause__ or exc.__context__
    while inner is not None:
        texts.append("".join(traceback.format_exception(inner)))
        inner = inner.__cause__ or inner.__context__
    return "\n".join(texts)


def test_token_never_leaks(fake_github: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                           capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub pins its logger to INFO
    seen: list[str] = []

    def comment(body: str, **kwargs: object) -> None:
        result = upsert_sticky_comment(repo="acme/greeter", pr_number=5, body=body, token=TEST_TOKEN,
                                       api_url=fake_github.base_url, retry=FAST, **kwargs)
        seen.extend([repr(result), result.message])

    def baseline(dest: str) -> None:
        try:
            source = BaselineSource(repo="acme/greeter", artifact_name="perfgate-baseline", branch="main",
                                    token=TEST_TOKEN, api_url=fake_github.base_url, retry=FAST)
            seen.append(repr(source))
            download_baseline_artifact(source, tmp_path / dest)
        except PerfgateError as exc:
            seen.append(every_text(exc))

    comment("created")
    comment("updated")
    fake_github.add_fault(502, times=None, method="PATCH")
    comment("gave up after retries")
    fake_github.add_fault(429, times=3, method="GET", headers={"Retry-After": "1"},
                          message="secondary rate limit")
    comment("rate limited")
    fake_github.forbid_writes()
    comment("fork", is_fork=True)
    upsert_sticky_comment(repo="acme/greeter", pr_number=5, body="x", token=TEST_TOKEN,
                          api_url="http://127.0.0.1:9", retry=FAST)

    baseline("none")  # no runs yet
    run = fake_github.add_run("acme/greeter")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("record.json", "{}")
    fake_github.add_artifact(run, "perfgate-baseline", buffer.getvalue())
    baseline("ok")
    fake_github.add_fault(403, times=None, path_contains="/actions/",
                          message="Resource not accessible by integration")
    baseline("denied")

    captured = capsys.readouterr()
    texts = {"results and errors": "\n".join(seen), "logs": caplog.text, "stdout": captured.out,
             "stderr": captured.err}
    for where, text in texts.items():
        assert TEST_TOKEN not in text, f"the token leaked into {where}"
        assert TEST_TOKEN[8:24] not in text, f"part of the token leaked into {where}"
    # The checks above looked at real material: PyGithub logged requests, the errors were raised.
    assert "oauth token removed" in caplog.text
    assert "permission denied" in texts["results and errors"]
    assert "no successful run" in texts["results and errors"]
    assert (tmp_path / "ok" / "record.json").is_file()
    assert any(r.headers.get("authorization") == f"token {TEST_TOKEN}" for r in fake_github.api_requests())
    assert all("authorization" not in r.headers for r in fake_github.storage_requests())

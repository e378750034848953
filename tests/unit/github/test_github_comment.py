"""The sticky PR comment against the fake GitHub API (every request checked against GitHub's spec)."""

from __future__ import annotations

import threading
import time

from support.ghapi.server import TEST_TOKEN, FakeGitHub
from support.ghapi.spec import GitHubSpec

from perfgate.github import (
    COMMENT_LIMIT_CHARS,
    COMMENT_TRUNCATION_NOTE,
    STICKY_MARKER,
    CommentResult,
    RetryPolicy,
    fit_comment_body,
    upsert_sticky_comment,
)

REPO = "acme/greeter"
PR = 42


class Sleeps(list[float]):
    """Records the waits perfgate asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(sleeps: Sleeps | None = None, **overrides: float) -> RetryPolicy:
    settings = {"backoff_factor_s": 0.0, "max_wait_s": 30.0, "seconds_between_requests": 0.0,
                "seconds_between_writes": 0.0, "timeout_s": 10.0, "max_retries": 3, **overrides}
    return RetryPolicy(sleep=sleeps if sleeps is not None else Sleeps(), **settings)


def upsert(fake: FakeGitHub, body: str, **kwargs: object) -> CommentResult:
    options = {"retry": policy(), **kwargs}
    return upsert_sticky_comment(repo=REPO, pr_number=PR, body=body, token=TEST_TOKEN,
                                 api_url=fake.base_url, **options)


def bodies(fake: FakeGitHub) -> list[str]:
    return [c.body for c in fake.issue_comments(REPO, PR)]


def test_create_then_update_in_place_then_skip(fake_github: FakeGitHub) -> None:
    fake_github.add_comment(REPO, PR, "LGTM, but is it fast?")
    first = upsert(fake_github, "## perfgate: PASS")
    assert first.action == "created" and first.ok
    assert bodies(fake_github) == ["LGTM, but is it fast?", f"{STICKY_MARKER}\n## perfgate: PASS"]
    comment_id = fake_github.issue_comments(REPO, PR)[1].id
    assert first.url == f"https://github.com/{REPO}/pull/{PR}#issuecomment-{comment_id}"

    second = upsert(fake_github, "## perfgate: REGRESSION")
    assert second.action == "updated" and second.url == first.url
    assert bodies(fake_github) == ["LGTM, but is it fast?", f"{STICKY_MARKER}\n## perfgate: REGRESSION"]
    assert fake_github.issue_comments(REPO, PR)[1].id == comment_id

    writes_before = len(fake_github.api_requests("PATCH"))
    third = upsert(fake_github, "## perfgate: REGRESSION")
    assert third.action == "skipped"
    assert len(fake_github.api_requests("PATCH")) == writes_before
    assert fake_github.responses_checked > 0


def test_marker_is_only_ours_at_the_start_and_found_on_a_later_page(fake_github: FakeGitHub) -> None:
    fake_github.add_comment(REPO, PR, f"> {STICKY_MARKER}\n> quoting the bot")
    for i in range(130):
        fake_github.add_comment(REPO, PR, f"chatter {i}")
    ours = fake_github.add_comment(REPO, PR, f"{STICKY_MARKER}\nold verdict", user="github-actions[bot]")
    result = upsert(fake_github, "new verdict")
    assert result.action == "updated"
    assert fake_github.comments[ours.id].body == f"{STICKY_MARKER}\nnew verdict"
    assert fake_github.issue_comments(REPO, PR)[0].body.startswith(f"> {STICKY_MARKER}")  # untouched
    pages = [dict(r.query).get("page") for r in fake_github.api_requests("GET")]
    assert "2" in pages  # followed the Link header


def test_leftover_duplicates_are_cleaned_up(fake_github: FakeGitHub) -> None:
    bot = fake_github.bot_login
    oldest = fake_github.add_comment(REPO, PR, f"{STICKY_MARKER}\nfirst", user=bot)
    fake_github.add_comment(REPO, PR, f"{STICKY_MARKER}\nsecond", user=bot)
    fake_github.add_comment(REPO, PR, f"{STICKY_MARKER}\nthird", user=bot)
    result = upsert(fake_github, "fresh")
    assert result.action == "updated" and "removed 2 duplicate comments" in result.message
    assert [c.id for c in fake_github.issue_comments(REPO, PR)] == [oldest.id]
    assert bodies(fake_github) == [f"{STICKY_MARKER}\nfresh"]


def test_a_comment_by_anyone_else_carrying_the_marker_is_never_touched(fake_github: FakeGitHub) -> None:
    forged = fake_github.add_comment(REPO, PR, f"{STICKY_MARKER}\n## perfgate: PASS (forged)", user="mallory")
    result = upsert(fake_github, "## perfgate: FAIL")
    assert result.action == "created"
    assert bodies(fake_github) == [f"{STICKY_MARKER}\n## perfgate: PASS (forged)",
                                   f"{STICKY_MARKER}\n## perfgate: FAIL"]
    assert fake_github.comments[forged.id].user == "mallory"
    assert not fake_github.api_requests("PATCH") and not fake_github.api_requests("DELETE")
    again = upsert(fake_github, "## perfgate: FAIL, still")
    assert again.action == "updated" and fake_github.comments[forged.id].body.endswith("(forged)")


def test_with_a_users_token_only_that_users_comment_is_ours(github_spec: GitHubSpec) -> None:
    with FakeGitHub(github_spec, token=TEST_TOKEN, token_user="perf-ci") as fake:
        fake.add_comment(REPO, PR, f"{STICKY_MARKER}\nby the Actions bot", user=fake.bot_login)
        mine = fake.add_comment(REPO, PR, f"{STICKY_MARKER}\nold", user="perf-ci")
        result = upsert(fake, "new")
        assert result.action == "updated" and fake.comments[mine.id].body == f"{STICKY_MARKER}\nnew"
        assert bodies(fake) == [f"{STICKY_MARKER}\nby the Actions bot", f"{STICKY_MARKER}\nnew"]
        assert [r.path for r in fake.api_requests("GET")][0] == "/user"
    assert not fake.violations, fake.violations


def test_two_racing_runs_leave_one_comment(fake_github: FakeGitHub) -> None:
    # Both runs list the (empty) comments before either creates one: the worst interleaving.
    fake_github.rendezvous("GET", f"/issues/{PR}/comments", parties=2)
    results: dict[str, CommentResult] = {}

    def run(name: str) -> None:
        results[name] = upsert(fake_github, f"verdict from {name}")

    threads = [threading.Thread(target=run, args=(name,)) for name in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(r.ok for r in results.values()), results
    assert len(fake_github.api_requests("POST")) == 2  # both really created one
    remaining = fake_github.issue_comments(REPO, PR)
    assert len(remaining) == 1
    assert remaining[0].body in {f"{STICKY_MARKER}\nverdict from {name}" for name in results}
    assert len({r.url for r in results.values()}) == 1
    assert sorted(r.action for r in results.values()) == ["created", "updated"], results


def test_three_free_running_racers_leave_one_comment(fake_github: FakeGitHub) -> None:
    threads = [threading.Thread(target=upsert, args=(fake_github, f"verdict {i}")) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(fake_github.issue_comments(REPO, PR)) == 1


def test_fork_pr_403_returns_failed_with_the_workflow_run_advice(fake_github: FakeGitHub) -> None:
    fake_github.forbid_writes()
    result = upsert(fake_github, "verdict", is_fork=True)
    assert result.action == "failed" and not result.ok and result.url is None
    assert "HTTP 403: Resource not accessible by integration" in result.message
    assert "workflow_run" in result.message and "job summary" in result.message
    assert "pull-requests: write" in result.message
    assert bodies(fake_github) == []

    same_repo = upsert(fake_github, "verdict", is_fork=False)
    assert same_repo.action == "failed"
    assert "add `pull-requests: write`" in same_repo.message and "workflow_run" not in same_repo.message


def test_502_once_then_success(fake_github: FakeGitHub) -> None:
    fault = fake_github.add_fault(502, method="POST", times=1, message="Bad Gateway")
    result = upsert(fake_github, "verdict")
    assert result.action == "created"
    assert fault.used == 1
    assert len(fake_github.api_requests("POST")) == 2
    assert len(fake_github.issue_comments(REPO, PR)) == 1


def test_lost_answer_to_a_create_does_not_leave_a_duplicate(fake_github: FakeGitHub) -> None:
    # GitHub created the comment but the proxy answered 502; the retried POST creates a second one.
    fake_github.add_fault(502, method="POST", times=1, serve_anyway=True)
    result = upsert(fake_github, "verdict")
    assert result.ok
    assert bodies(fake_github) == [f"{STICKY_MARKER}\nverdict"]


def test_persistent_5xx_fails_without_raising_and_bounded(fake_github: FakeGitHub) -> None:
    fake_github.add_fault(503, times=None, message="Service Unavailable")
    result = upsert(fake_github, "verdict", retry=policy(max_retries=2))
    assert result.action == "failed"
    assert "job summary" in result.message
    assert len(fake_github.api_requests()) == 3  # first try + 2 retries, then it gives up


def test_secondary_rate_limit_honours_retry_after(fake_github: FakeGitHub) -> None:
    sleeps = Sleeps()
    fake_github.add_fault(403, method="GET", times=1, headers={"Retry-After": "7"},
                          message="You have exceeded a secondary rate limit. Please wait a few minutes "
                                  "before you try again.")
    result = upsert(fake_github, "verdict", retry=policy(sleeps))
    assert result.action == "created"
    assert sleeps == [7]


def test_rate_limit_reset_header_is_waited_for_and_capped(fake_github: FakeGitHub) -> None:
    sleeps = Sleeps()
    reset = int(time.time()) + 20
    fake_github.add_fault(429, method="GET", times=1, message="API rate limit exceeded",
                          headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset),
                                   "x-ratelimit-limit": "5000"})
    fake_github.add_fault(429, method="POST", times=1, headers={"Retry-After": "3600"},
                          message="You have exceeded a secondary rate limit.")
    result = upsert(fake_github, "verdict", retry=policy(sleeps, max_wait_s=12.0))
    assert result.action == "created"
    assert sleeps == [12.0, 12.0]  # 20 s to the reset and 3600 s Retry-After, each capped at 12 s

    sleeps.clear()
    fake_github.add_fault(429, method="GET", times=1, message="API rate limit exceeded",
                          headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
    upsert(fake_github, "verdict 2", retry=policy(sleeps, max_wait_s=60.0))
    assert len(sleeps) == 1 and 15 < sleeps[0] <= 22  # until the reset, plus a second of margin


def test_ghes_base_url_with_api_v3_prefix(fake_ghes: FakeGitHub) -> None:
    assert fake_ghes.base_url.endswith("/api/v3")
    created = upsert(fake_ghes, "on GHES")
    updated = upsert(fake_ghes, "on GHES, again")
    assert (created.action, updated.action) == ("created", "updated")
    assert all(r.path.startswith("/api/v3/") for r in fake_ghes.api_requests())
    assert [c.body for c in fake_ghes.issue_comments(REPO, PR)] == [f"{STICKY_MARKER}\non GHES, again"]


def test_oversized_body_is_cut_to_the_github_limit(fake_github: FakeGitHub) -> None:
    huge = "\n".join(f"| func_{i} | +{i}% |" for i in range(10_000))
    assert len(huge) > COMMENT_LIMIT_CHARS
    result = upsert(fake_github, huge)
    assert result.action == "created"
    stored = bodies(fake_github)[0]
    assert len(stored) <= COMMENT_LIMIT_CHARS
    assert stored.startswith(STICKY_MARKER) and stored.endswith(COMMENT_TRUNCATION_NOTE)
    assert fit_comment_body("short") == f"{STICKY_MARKER}\nshort"
    assert fit_comment_body(f"{STICKY_MARKER}\nalready marked") == f"{STICKY_MARKER}\nalready marked"


def test_bad_token_and_bad_arguments_fail_softly(fake_github: FakeGitHub) -> None:
    wrong = upsert_sticky_comment(repo=REPO, pr_number=PR, body="x", token="ghs_wrong",
                                  api_url=fake_github.base_url, retry=policy())
    assert wrong.action == "failed" and "token was rejected" in wrong.message
    bad_pr = upsert_sticky_comment(repo=REPO, pr_number=0, body="x", token=TEST_TOKEN,
                                   api_url=fake_github.base_url, retry=policy())
    assert bad_pr.action == "failed" and "pr_number must be a positive integer" in bad_pr.message
    unreachable = upsert_sticky_comment(repo=REPO, pr_number=PR, body="x", token=TEST_TOKEN,
                                        api_url="http://127.0.0.1:9", retry=policy(max_retries=0))
    assert unreachable.action == "failed" and "job summary" in unreachable.message

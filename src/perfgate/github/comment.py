"""perfgate's one sticky comment on a pull request.

Commenting never raises and never changes the gate's exit code: `upsert_sticky_comment` returns
a CommentResult the caller reports (and falls back to the job summary on failure).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from github import Github, GithubException
from github.GithubException import RateLimitExceededException, UnknownObjectException

from perfgate.github.client import (
    RetryPolicy,
    check_pr_number,
    check_repo_name,
    describe_error,
    make_client,
    redact_token,
)

STICKY_MARKER = "<!-- perfgate:sticky -->"
# Who GITHUB_TOKEN writes as. GitHub answers GET /user with 403 for such an installation token.
ACTIONS_BOT_LOGIN = "github-actions[bot]"
COMMENT_LIMIT_CHARS = 65_536
COMMENT_TRUNCATION_NOTE = (
    "\n\n---\n_perfgate cut this comment to fit GitHub's 65,536-character limit; "
    "the full report is in the job summary and the run's artifact._\n"
)

FORK_COMMENT_HINT = (
    "The token cannot write to this pull request (HTTP 403). Pull requests from forks (and Dependabot) "
    "get a read-only GITHUB_TOKEN, so perfgate cannot comment from their `pull_request` run; the verdict "
    "is in the job summary instead. To get the PR comment, use the workflow_run pattern: the "
    "`pull_request` workflow runs perfgate and uploads its output folder (it contains pr.json) as an "
    "artifact; a second workflow `on: workflow_run` (types: [completed]) with `permissions: "
    "pull-requests: write, actions: read` downloads that artifact and posts the comment, without "
    "checking out or running the pull request's code."
)
SAME_REPO_COMMENT_HINT = (
    "The token cannot write to this pull request (HTTP 403): add `pull-requests: write` to the "
    "workflow's `permissions`. The verdict is in the job summary."
)

CommentAction = Literal["created", "updated", "skipped", "failed"]


@dataclass(frozen=True)
class CommentResult:
    action: CommentAction
    url: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.action != "failed"


def fit_comment_body(body: str, marker: str = STICKY_MARKER) -> str:
    """The comment text: starts with the marker and fits GitHub's 65,536-character limit."""
    text = body if body.startswith(marker) else f"{marker}\n{body}"
    if len(text) <= COMMENT_LIMIT_CHARS:
        return text
    keep = COMMENT_LIMIT_CHARS - len(COMMENT_TRUNCATION_NOTE)
    head = text[:keep]
    cut_at = head.rfind("\n")
    if cut_at > len(marker):
        head = head[:cut_at]
    return head + COMMENT_TRUNCATION_NOTE


def upsert_sticky_comment(
    *,
    repo: str,
    pr_number: int,
    body: str,
    token: str,
    api_url: str,
    marker: str = STICKY_MARKER,
    is_fork: bool | None = None,
    retry: RetryPolicy | None = None,
) -> CommentResult:
    """Create or edit perfgate's one comment on the pull request; never raises.

    Ours is the oldest comment whose body starts with `marker` and that the token's own user wrote
    (`GET /user`, or the Actions bot for GITHUB_TOKEN): anyone can post a comment starting with the
    marker, and such a comment is never edited or deleted. Two runs racing on the same PR
    may both create one; each re-lists after creating, keeps the oldest, moves its body there
    and deletes the newer ones, so one comment survives. On failure the result says why and
    what to do (`is_fork` picks the advice for a 403).
    """
    policy = retry or RetryPolicy()
    try:
        check_repo_name(repo, "repo")
        check_pr_number(pr_number, "pr_number")
        text = fit_comment_body(body, marker)
        with make_client(token, api_url, policy) as gh:
            result = _upsert(gh, repo, pr_number, text, marker)
    except Exception as exc:  # whatever went wrong, a failed comment must never fail the gate
        message = _comment_failure(exc, repo, pr_number, is_fork)
        return CommentResult("failed", None, redact_token(message, token))
    return CommentResult(result.action, result.url, redact_token(result.message, token))


def _upsert(gh: Github, repo: str, pr_number: int, text: str, marker: str) -> CommentResult:
    issue = gh.get_repo(repo).get_issue(pr_number)
    where = f"{repo}#{pr_number}"
    me = own_login(gh)
    ours = _sticky_comments(issue.get_comments(), marker, me)
    if ours:
        keep = ours[0]
        removed = _delete_quietly(ours[1:])
        if keep.body == text:
            return CommentResult("skipped", keep.html_url,
                                 f"the perfgate comment on {where} is up to date{removed}")
        keep.edit(text)
        return CommentResult("updated", keep.html_url, f"updated the perfgate comment on {where}{removed}")
    created = issue.create_comment(text)
    ours = _sticky_comments(issue.get_comments(), marker, me)
    keep = ours[0] if ours else created
    if keep.id != created.id:
        # A concurrent run commented first: its comment keeps the slot, ours goes.
        keep.edit(text)
        removed = _delete_quietly(c for c in ours if c.id != keep.id)
        return CommentResult("updated", keep.html_url, f"updated the perfgate comment on {where}{removed}")
    removed = _delete_quietly(ours[1:])
    return CommentResult("created", created.html_url, f"created the perfgate comment on {where}{removed}")


def own_login(gh: Github) -> str:
    """The login the token writes comments as: its user's (a PAT), or the Actions bot's (GITHUB_TOKEN)."""
    try:
        return gh.get_user().login
    except GithubException as exc:
        if exc.status == 403:  # an installation token has no user: GITHUB_TOKEN writes as the Actions bot
            return ACTIONS_BOT_LOGIN
        raise


def _sticky_comments(comments: Iterable[Any], marker: str, author: str) -> list[Any]:
    ours = [c for c in comments if (c.body or "").lstrip().startswith(marker) and _login(c).lower() == author.lower()]
    return sorted(ours, key=lambda c: c.id)  # comment ids grow with creation time


def _login(comment: Any) -> str:
    user = comment.user
    return (user.login if user is not None else "") or ""


def _delete_quietly(comments: Iterable[Any]) -> str:
    count = 0
    for comment in comments:
        try:
            comment.delete()
            count += 1
        except UnknownObjectException:
            pass  # a concurrent run deleted it first
    return f" (removed {count} duplicate comment{'s' if count != 1 else ''})" if count else ""


def _comment_failure(exc: Exception, repo: str, pr_number: int, is_fork: bool | None) -> str:
    what = f"perfgate could not comment on {repo}#{pr_number}: {describe_error(exc)}."
    if isinstance(exc, RateLimitExceededException) or isinstance(exc, requests.exceptions.RetryError):
        return f"{what} GitHub kept refusing (rate limit or outage); the verdict is in the job summary."
    if isinstance(exc, GithubException):
        if exc.status == 403:
            hint = FORK_COMMENT_HINT if is_fork is not False else SAME_REPO_COMMENT_HINT
            if is_fork is None:
                hint += " For pull requests from this repository, add `pull-requests: write` to the " \
                        "workflow's `permissions`."
            return f"{what} {hint}"
        if exc.status == 401:
            return f"{what} The token was rejected; pass a valid `github-token`."
        if exc.status == 404:
            return f"{what} The pull request does not exist or the token cannot see the repository."
    return f"{what} The verdict is in the job summary."

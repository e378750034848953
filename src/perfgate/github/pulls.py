"""The workflow_run pattern's one trust check: is the PR an artifact names the PR the run built?

pr.json comes from the artifact of a `pull_request` run, which a fork controls entirely: it can name
any PR number. Only the `workflow_run` event (written by GitHub) and the API are trusted, so the PR
is fetched and its head commit and head repository must be the run's.
"""

from __future__ import annotations

from dataclasses import replace

import requests
from github import GithubException

from perfgate.errors import ConfigError, ToolError
from perfgate.github.client import RetryPolicy, describe_error, make_client, redact_token
from perfgate.github.context import PrContext, WorkflowRunEvent


def verify_pr_for_run(pr: PrContext, run: WorkflowRunEvent, *, token: str, api_url: str,
                      retry: RetryPolicy | None = None) -> PrContext:
    """`pr` as GitHub knows it, when it is the PR `run` built; else ConfigError (exit 2), nothing posted.

    GitHub unreachable or refusing is a ToolError (exit 3).
    """
    where = f"{run.repo}#{pr.pr_number}"
    if not token:
        raise ConfigError(f"cannot check that {where} is the pull request the workflow run built: no GITHUB_TOKEN",
                          hint="pass the github-token input; the job needs `pull-requests: read` (or write)")
    if run.head_repo is None:
        raise ConfigError(f"the workflow_run event names no head repository, so {where} cannot be checked "
                          "(was the fork deleted?); nothing was posted")
    try:
        with make_client(token, api_url, retry or RetryPolicy()) as gh:
            pull = gh.get_repo(run.repo).get_pull(pr.pr_number)
            head_sha, head_repo = pull.head.sha, pull.head.repo.full_name if pull.head.repo else None
    except GithubException as exc:
        if exc.status == 404:
            raise ConfigError(f"pr.json names pull request {where}, which does not exist; nothing was posted") from None
        raise ToolError(redact_token(f"cannot read pull request {where} to check it: {describe_error(exc)}", token),
                        hint="the job needs `pull-requests: read` (or write) in its permissions") from None
    except requests.RequestException as exc:
        raise ToolError(redact_token(f"GitHub API unreachable while checking pull request {where}: {exc}", token)) \
            from None
    problems = []
    if head_sha != run.head_sha:
        problems.append(f"its head commit is {head_sha}, the workflow run built {run.head_sha} (if the pull request "
                        "was pushed to since, the newer run publishes its own verdict)")
    if (head_repo or "").lower() != run.head_repo.lower():
        problems.append(f"its head repository is {head_repo or 'deleted'}, the workflow run's is {run.head_repo}")
    if problems:
        raise ConfigError([f"pr.json names pull request {where}, which is not the one the workflow run built: "
                           + "; ".join(problems) + "; nothing was posted"])
    return replace(pr, repo=run.repo, head_sha=head_sha, is_fork=head_repo.lower() != run.repo.lower())

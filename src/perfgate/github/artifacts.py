"""perfgate's GitHub side through PyGithub: the sticky PR comment, PR context, baseline artifacts.

Three rules shape this module:
- Commenting never raises and never changes the gate's exit code: `upsert_sticky_comment`
  returns a CommentResult the caller reports (and falls back to the job summary on failure).
- The token is never printed: every message that leaves this module is passed through
  `_redact`, and PyGithub masks it in its own debug log.
- Anything read from an artifact (pr.json, the zip) is untrusted input from a possibly
  hostile pull request: validated, size-bounded, extracted by perfgate.archive.

The API base URL comes from GITHUB_API_URL (https://api.github.com, or https://HOST/api/v3 on
GitHub Enterprise Server); see `api_url_from_env`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import RateLimitExceededException, UnknownObjectException
from urllib3.exceptions import InvalidHeader

from perfgate.archive import safe_extract_zip
from perfgate.errors import BaselineError, BaselineMissing, ConfigError, ToolError

DEFAULT_API_URL = "https://api.github.com"
STICKY_MARKER = "<!-- perfgate:sticky -->"
COMMENT_LIMIT_CHARS = 65_536
COMMENT_TRUNCATION_NOTE = (
    "\n\n---\n_perfgate cut this comment to fit GitHub's 65,536-character limit; "
    "the full report is in the job summary and the run's artifact._\n"
)
PR_CONTEXT_FILE = "pr.json"
PR_CONTEXT_SCHEMA = "perfgate.pr-context/1"
RECORD_FILE = "record.json"
DEFAULT_ARTIFACT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_RUNS_SCANNED = 20
_EVENT_MAX_BYTES = 16 * 1024 * 1024
_PR_CONTEXT_MAX_BYTES = 64 * 1024
_DOWNLOAD_CHUNK_BYTES = 256 * 1024

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
ACTIONS_READ_HINT = "permission denied — add `actions: read` to the workflow's permissions"

CommentAction = Literal["created", "updated", "skipped", "failed"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try against the GitHub API. Tests pass a recording `sleep` and zero spacing."""

    max_retries: int = 3
    backoff_factor_s: float = 1.0
    max_wait_s: float = 60.0  # cap on any single wait: Retry-After, rate-limit reset or backoff
    seconds_between_requests: float = 0.25  # PyGithub's spacing, as GitHub's best practices ask
    seconds_between_writes: float = 1.0
    timeout_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def backoff_s(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_factor_s * (2**attempt))


@dataclass(frozen=True)
class CommentResult:
    action: CommentAction
    url: str | None
    message: str

    @property
    def ok(self) -> bool:
        return self.action != "failed"


@dataclass(frozen=True)
class PrContext:
    repo: str  # the base repository, where the comment goes ("owner/name")
    pr_number: int
    head_sha: str
    base_ref: str
    is_fork: bool


@dataclass(frozen=True)
class WorkflowRunEvent:
    """The trusted parts of a `workflow_run` event (the run that uploaded the artifact)."""

    repo: str
    run_id: int
    head_sha: str
    head_branch: str | None
    event: str
    conclusion: str | None
    head_repo: str | None


@dataclass(frozen=True)
class ArtifactRef:
    artifact_id: int
    name: str
    size_bytes: int
    download_url: str
    created_at: datetime | None
    expires_at: datetime | None
    run_id: int
    run_url: str | None
    head_sha: str | None


# ---------------------------------------------------------------------------------------------
# Client


def api_url_from_env(env: Mapping[str, str] | None = None) -> str:
    """GITHUB_API_URL, or https://api.github.com outside Actions."""
    value = (os.environ if env is None else env).get("GITHUB_API_URL", "").strip()
    return (value or DEFAULT_API_URL).rstrip("/")


class _BoundedRetry(GithubRetry):
    """PyGithub's retry (5xx, rate-limit 403s) with every wait capped and the sleep injectable.

    Waits follow GitHub's documented order: Retry-After, then X-RateLimit-Reset when
    X-RateLimit-Remaining is 0, then PyGithub's secondary-limit wait or exponential backoff.
    """

    def __init__(self, *, sleep_fn: Callable[[float], None] = time.sleep, max_wait_s: float = 60.0,
                 **kwargs: Any) -> None:
        self.sleep_fn = sleep_fn
        self.max_wait_s = max_wait_s
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> _BoundedRetry:
        kw.update(sleep_fn=self.sleep_fn, max_wait_s=self.max_wait_s)
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        wait = min(self._required_wait(response), self.max_wait_s)
        if wait > 0:
            self.sleep_fn(wait)

    def _required_wait(self, response: Any) -> float:
        if response is not None:
            try:
                after = self.get_retry_after(response) if self.respect_retry_after_header else None
            except InvalidHeader:
                after = None
            if after is not None:
                return after
            reset = str(response.headers.get("x-ratelimit-reset", ""))
            if response.headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
                return max(0.0, int(reset) - time.time()) + 1
        return self.get_backoff_time()


def _client(token: str, api_url: str, policy: RetryPolicy, per_page: int = 100) -> Github:
    retry = _BoundedRetry(
        sleep_fn=policy.sleep,
        max_wait_s=policy.max_wait_s,
        total=policy.max_retries,
        backoff_factor=policy.backoff_factor_s,
        backoff_max=policy.max_wait_s,
        secondary_rate_wait=policy.max_wait_s,
        status_forcelist=[429, *range(500, 600)],
        allowed_methods=frozenset({"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"}),
    )
    return Github(
        auth=Auth.Token(token),
        base_url=api_url.rstrip("/"),
        timeout=max(1, math.ceil(policy.timeout_s)),  # PyGithub insists on an int
        per_page=per_page,
        retry=retry,
        seconds_between_requests=policy.seconds_between_requests or None,
        seconds_between_writes=policy.seconds_between_writes or None,
        lazy=True,
    )


def _redact(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        message = exc.message or (exc.data.get("message") if isinstance(exc.data, dict) else None)
        return f"HTTP {exc.status}: {message}" if message else f"HTTP {exc.status}"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"gave up after retries ({exc})"
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# Sticky comment


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

    Ours is the oldest comment whose body starts with `marker`. Two runs racing on the same PR
    may both create one; each re-lists after creating, keeps the oldest, moves its body there
    and deletes the newer ones, so one comment survives. On failure the result says why and
    what to do (`is_fork` picks the advice for a 403).
    """
    policy = retry or RetryPolicy()
    try:
        _check_repo_name(repo, "repo")
        _check_pr_number(pr_number, "pr_number")
        text = fit_comment_body(body, marker)
        with _client(token, api_url, policy) as gh:
            result = _upsert(gh, repo, pr_number, text, marker)
    except Exception as exc:  # whatever went wrong, a failed comment must never fail the gate
        message = _comment_failure(exc, repo, pr_number, is_fork)
        return CommentResult("failed", None, _redact(message, token))
    return CommentResult(result.action, result.url, _redact(result.message, token))


def _upsert(gh: Github, repo: str, pr_number: int, text: str, marker: str) -> CommentResult:
    issue = gh.get_repo(repo).get_issue(pr_number)
    where = f"{repo}#{pr_number}"
    ours = _sticky_comments(issue.get_comments(), marker)
    if ours:
        keep = ours[0]
        removed = _delete_quietly(ours[1:])
        if keep.body == text:
            return CommentResult("skipped", keep.html_url,
                                 f"the perfgate comment on {where} is up to date{removed}")
        keep.edit(text)
        return CommentResult("updated", keep.html_url, f"updated the perfgate comment on {where}{removed}")
    created = issue.create_comment(text)
    ours = _sticky_comments(issue.get_comments(), marker)
    keep = ours[0] if ours else created
    if keep.id != created.id:
        # A concurrent run commented first: its comment keeps the slot, ours goes.
        keep.edit(text)
        removed = _delete_quietly(c for c in ours if c.id != keep.id)
        return CommentResult("updated", keep.html_url, f"updated the perfgate comment on {where}{removed}")
    removed = _delete_quietly(ours[1:])
    return CommentResult("created", created.html_url, f"created the perfgate comment on {where}{removed}")


def _sticky_comments(comments: Iterable[Any], marker: str) -> list[Any]:
    ours = [c for c in comments if (c.body or "").lstrip().startswith(marker)]
    return sorted(ours, key=lambda c: c.id)  # comment ids grow with creation time


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
    what = f"perfgate could not comment on {repo}#{pr_number}: {_describe(exc)}."
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


# ---------------------------------------------------------------------------------------------
# Pull request context (pull_request events, and pr.json for the workflow_run pattern)

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def read_pr_context(event_path: str | Path) -> PrContext:
    """The PR context of a `pull_request` / `pull_request_target` event ($GITHUB_EVENT_PATH)."""
    payload = _read_json(Path(event_path), _EVENT_MAX_BYTES, "event payload")
    pr = payload.get("pull_request")
    if not isinstance(pr, dict):
        raise ConfigError(
            f"{event_path}: not a pull_request event, so there is no pull request to comment on",
            hint="in a workflow_run workflow, read the PR from the artifact's pr.json (read_pr_context_file)",
        )
    try:
        base_repo = pr["base"]["repo"]["full_name"]
        head_repo = (pr["head"].get("repo") or {}).get("full_name")  # None when the fork was deleted
        raw = {
            "repo": base_repo,
            "pr_number": payload.get("number", pr.get("number")),
            "head_sha": pr["head"]["sha"],
            "base_ref": pr["base"]["ref"],
            "is_fork": head_repo != base_repo,
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{event_path}: pull_request payload lacks {exc}") from None
    return _pr_context_from(raw, str(event_path))


def write_pr_context(path: str | Path, ctx: PrContext) -> Path:
    """Write pr.json for the workflow_run pattern; returns the path written."""
    target = Path(path)
    data = {"schema": PR_CONTEXT_SCHEMA, "repo": ctx.repo, "pr_number": ctx.pr_number,
            "head_sha": ctx.head_sha, "base_ref": ctx.base_ref, "is_fork": ctx.is_fork}
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def read_pr_context_file(
    path: str | Path,
    *,
    expected_repo: str | None = None,
    expected_head_sha: str | None = None,
) -> PrContext:
    """Read pr.json from an artifact. It is untrusted: every field is validated.

    In a workflow_run workflow pass the trusted event's repository and `workflow_run.head_sha`
    (see read_workflow_run_event): a mismatch means the artifact claims another PR.
    """
    raw = _read_json(Path(path), _PR_CONTEXT_MAX_BYTES, "PR context")
    if raw.get("schema") != PR_CONTEXT_SCHEMA:
        raise ConfigError(f"{path}: not a perfgate PR context (schema {raw.get('schema')!r}, "
                          f"expected {PR_CONTEXT_SCHEMA!r})")
    ctx = _pr_context_from(raw, str(path))
    if expected_repo is not None and ctx.repo.lower() != expected_repo.lower():
        raise ConfigError(f"{path}: names repository {ctx.repo!r}, but the workflow run belongs to "
                          f"{expected_repo!r}")
    if expected_head_sha is not None and ctx.head_sha != expected_head_sha:
        raise ConfigError(f"{path}: head_sha {ctx.head_sha} does not match the workflow run's "
                          f"head_sha {expected_head_sha}")
    return ctx


def read_workflow_run_event(event_path: str | Path) -> WorkflowRunEvent:
    """The triggering run of a `workflow_run` event: where to fetch the artifact, what to trust."""
    payload = _read_json(Path(event_path), _EVENT_MAX_BYTES, "event payload")
    run = payload.get("workflow_run")
    if not isinstance(run, dict):
        raise ConfigError(f"{event_path}: not a workflow_run event")
    try:
        repo = payload["repository"]["full_name"]
        event = WorkflowRunEvent(
            repo=repo,
            run_id=run["id"],
            head_sha=run["head_sha"],
            head_branch=run.get("head_branch"),
            event=run.get("event", ""),
            conclusion=run.get("conclusion"),
            head_repo=(run.get("head_repository") or {}).get("full_name"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{event_path}: workflow_run payload lacks {exc}") from None
    _check_repo_name(event.repo, "repository.full_name")
    _check_positive_int(event.run_id, "workflow_run.id")
    if not isinstance(event.head_sha, str) or not _SHA.match(event.head_sha):
        raise ConfigError(f"{event_path}: workflow_run.head_sha is not a commit id")
    return event


def _pr_context_from(raw: Mapping[str, Any], source: str) -> PrContext:
    problems = []
    for check in (
        lambda: _check_repo_name(raw.get("repo"), "repo"),
        lambda: _check_pr_number(raw.get("pr_number"), "pr_number"),
        lambda: _check_sha(raw.get("head_sha"), "head_sha"),
        lambda: _check_ref(raw.get("base_ref"), "base_ref"),
        lambda: _check_bool(raw.get("is_fork"), "is_fork"),
    ):
        try:
            check()
        except ConfigError as exc:
            problems.append(f"{source}: {exc.message}")
    if problems:
        raise ConfigError(problems)
    return PrContext(repo=raw["repo"], pr_number=raw["pr_number"], head_sha=raw["head_sha"],
                     base_ref=raw["base_ref"], is_fork=raw["is_fork"])


def _check_repo_name(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _REPO_NAME.match(value) or ".." in value:
        raise ConfigError(f"{name} must look like 'owner/name', got {_short(value)}")


def _check_pr_number(value: Any, name: str) -> None:
    _check_positive_int(value, name)


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise ConfigError(f"{name} must be a positive integer, got {_short(value)}")


def _check_sha(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _SHA.match(value):
        raise ConfigError(f"{name} must be a 40-character hex commit id, got {_short(value)}")


def _check_ref(value: Any, name: str) -> None:
    ok = (isinstance(value, str) and 0 < len(value) <= 255 and ".." not in value
          and not value.startswith("-") and not any(ch.isspace() or ord(ch) < 0x20 for ch in value))
    if not ok:
        raise ConfigError(f"{name} must be a branch name, got {_short(value)}")


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _read_json(path: Path, max_bytes: int, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: the {what} is larger than {max_bytes} bytes")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: the {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: the {what} is not a JSON object")
    return value


# ---------------------------------------------------------------------------------------------
# Artifacts: the baseline from the base branch, and a given run's artifact (workflow_run mode)


def locate_baseline_artifact(
    *,
    repo: str,
    artifact_name: str,
    branch: str,
    token: str,
    api_url: str,
    workflow: str | None = None,
    max_runs: int = DEFAULT_MAX_RUNS_SCANNED,
    retry: RetryPolicy | None = None,
) -> ArtifactRef:
    """The newest `artifact_name` from the latest successful run on `branch` that has one.

    Runs of pull requests (whose head branch may also be called `branch`, from a fork) are
    skipped: a baseline must come from the repository's own branch.
    """
    policy = retry or RetryPolicy()
    _check_repo_name(repo, "repo")
    _check_positive_int(max_runs, "max_runs")
    with _client(token, api_url, policy, per_page=min(100, max_runs)) as gh:
        try:
            return _find_baseline(gh, repo, artifact_name, branch, workflow, max_runs)
        except GithubException as exc:
            raise _artifact_api_error(exc, repo, token) from None
        except requests.RequestException as exc:
            raise ToolError(_redact(f"GitHub API unreachable while looking for the baseline: {exc}",
                                    token)) from None


def _find_baseline(gh: Github, repo: str, artifact_name: str, branch: str, workflow: str | None,
                   max_runs: int) -> ArtifactRef:
    repository = gh.get_repo(repo)
    if workflow:
        runs = repository.get_workflow(workflow).get_runs(branch=branch, status="success")
    else:
        runs = repository.get_workflow_runs(branch=branch, status="success")
    scanned = 0
    of_workflow = f" of workflow {workflow}" if workflow else ""
    for run in itertools.islice(runs, max_runs):
        if run.event in ("pull_request", "pull_request_target") or (
                run.head_repository is not None and run.head_repository.full_name.lower() != repo.lower()):
            continue
        scanned += 1
        artifact = _newest_named(run.get_artifacts(), artifact_name)
        if artifact is None:
            continue
        ref = _artifact_ref(artifact, run)
        if artifact.expired:
            raise _expired_error(ref)
        return ref
    if scanned == 0:
        raise BaselineMissing(
            f"no successful run on {branch}{of_workflow} yet, so there is no baseline to compare against",
            hint=f"run the baseline workflow on {branch} once (push or workflow_dispatch), or pass a "
                 "baseline folder or file",
        )
    raise BaselineMissing(
        f"no artifact named {artifact_name!r} in the last {scanned} successful runs on {branch}{of_workflow}",
        hint="check the artifact name and that the baseline job uploads it (actions/upload-artifact)",
    )


def download_baseline_artifact(
    *,
    repo: str,
    artifact_name: str,
    branch: str,
    token: str,
    api_url: str,
    dest: Path,
    workflow: str | None = None,
    max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES,
    max_runs: int = DEFAULT_MAX_RUNS_SCANNED,
    retry: RetryPolicy | None = None,
) -> Path:
    """Download and safely extract the baseline artifact into `dest` (absent or empty).

    Returns the folder inside `dest` that holds record.json; the record loader checks the rest.
    """
    ref = locate_baseline_artifact(repo=repo, artifact_name=artifact_name, branch=branch, token=token,
                                   api_url=api_url, workflow=workflow, max_runs=max_runs, retry=retry)
    root = fetch_artifact(ref, repo=repo, token=token, api_url=api_url, dest=dest, max_bytes=max_bytes,
                          retry=retry)
    return find_record_folder(root, source=f"artifact {ref.name!r} of run {ref.run_id}")


def download_run_artifact(
    *,
    repo: str,
    run_id: int,
    artifact_name: str,
    token: str,
    api_url: str,
    dest: Path,
    max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES,
    retry: RetryPolicy | None = None,
) -> Path:
    """Download and safely extract one run's artifact (workflow_run mode); returns `dest`."""
    policy = retry or RetryPolicy()
    _check_repo_name(repo, "repo")
    _check_positive_int(run_id, "run_id")
    with _client(token, api_url, policy) as gh:
        try:
            run = gh.get_repo(repo).get_workflow_run(run_id)
            artifact = _newest_named(run.get_artifacts(), artifact_name)
            if artifact is None:
                raise BaselineError(f"run {run_id} has no artifact named {artifact_name!r}",
                                    hint="check the artifact name used by the pull_request workflow")
            ref = _artifact_ref(artifact, run)
        except GithubException as exc:
            raise _artifact_api_error(exc, repo, token) from None
        except requests.RequestException as exc:
            raise ToolError(_redact(f"GitHub API unreachable while listing artifacts: {exc}",
                                    token)) from None
    if artifact.expired:
        raise _expired_error(ref)
    return fetch_artifact(ref, repo=repo, token=token, api_url=api_url, dest=dest, max_bytes=max_bytes,
                          retry=retry)


def fetch_artifact(
    ref: ArtifactRef,
    *,
    repo: str,
    token: str,
    api_url: str,
    dest: Path,
    max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES,
    retry: RetryPolicy | None = None,
) -> Path:
    """Download `ref`'s zip (GitHub answers 302 to a storage URL) and extract it into `dest`."""
    if ref.size_bytes > max_bytes:
        raise BaselineError(f"artifact {ref.name!r} is {ref.size_bytes} bytes, over the limit of {max_bytes}")
    policy = retry or RetryPolicy()
    with tempfile.TemporaryDirectory(prefix="perfgate-artifact-") as tmp:
        zip_path = Path(tmp) / f"{re.sub(r'[^A-Za-z0-9._-]', '_', ref.name)[:100]}.zip"
        with _client(token, api_url, policy) as gh:
            _download_zip(gh, ref, repo, zip_path, max_bytes, policy, token)
        safe_extract_zip(zip_path, dest, max_total_bytes=max_bytes)
    return Path(dest)


def find_record_folder(root: Path, *, source: str = "the baseline") -> Path:
    """The shallowest folder under `root` that holds record.json (it must be unambiguous)."""
    found = sorted(root.rglob(RECORD_FILE), key=lambda p: (len(p.parts), str(p)))
    found = [p for p in found if p.is_file() and not p.is_symlink()]
    if not found:
        raise BaselineError(f"{source} has no {RECORD_FILE}",
                            hint="upload perfgate's output folder (the run record) as the baseline artifact")
    shallowest = [p for p in found if len(p.parts) == len(found[0].parts)]
    if len(shallowest) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in shallowest)
        raise BaselineError(f"{source} holds several run records ({names}); which one is the baseline?")
    return found[0].parent


def _newest_named(artifacts: Iterable[Any], name: str) -> Any | None:
    named = [a for a in artifacts if a.name == name]
    return max(named, key=lambda a: a.id) if named else None


def _artifact_ref(artifact: Any, run: Any) -> ArtifactRef:
    return ArtifactRef(
        artifact_id=artifact.id,
        name=artifact.name,
        size_bytes=artifact.size_in_bytes or 0,
        download_url=artifact.archive_download_url,
        created_at=artifact.created_at,
        expires_at=artifact.expires_at,
        run_id=run.id,
        run_url=run.html_url,
        head_sha=run.head_sha,
    )


def _expired_error(ref: ArtifactRef) -> BaselineMissing:
    when = f" on {ref.expires_at.date().isoformat()}" if ref.expires_at else ""
    return BaselineMissing(
        f"artifact {ref.name} expired{when} (run {ref.run_url or ref.run_id})",
        hint="re-run the baseline workflow on the base branch, or raise its upload-artifact retention-days",
    )


def _artifact_api_error(exc: GithubException, repo: str, token: str) -> BaselineError | ToolError:
    detail = _redact(_describe(exc), token)
    if exc.status in (401, 403) and not isinstance(exc, RateLimitExceededException):
        return BaselineError(f"{ACTIONS_READ_HINT} ({detail})")
    if exc.status == 404:
        return BaselineError(f"repository {repo} or its workflow not found ({detail})",
                             hint="check the repository and workflow names; a token without access "
                                  "to a private repository also gets 404")
    return ToolError(f"GitHub API error while fetching the baseline: {detail}")


def _download_zip(gh: Github, ref: ArtifactRef, repo: str, zip_path: Path, max_bytes: int,
                  policy: RetryPolicy, token: str) -> None:
    """GET .../zip with the token, then the 302's storage URL WITHOUT it, bounded in size."""
    last_problem = ""
    for attempt in range(policy.max_retries + 1):
        if attempt:
            policy.sleep(policy.backoff_s(attempt))
        try:
            headers, _ = gh.requester.requestJsonAndCheck("GET", ref.download_url)
        except GithubException as exc:
            if exc.status == 410:
                raise _expired_error(ref) from None
            raise _artifact_api_error(exc, repo, token) from None
        except requests.RequestException as exc:
            raise ToolError(_redact(f"GitHub API unreachable while downloading {ref.name}: {exc}",
                                    token)) from None
        location = headers.get("location")
        if not location:
            raise ToolError(f"GitHub did not redirect the download of artifact {ref.name} (no Location)")
        _check_storage_url(location, gh.requester.base_url)
        try:
            _stream_to_file(location, zip_path, max_bytes, policy.timeout_s, ref.name)
            return
        except _TransientDownloadError as exc:
            last_problem = str(exc)
    raise ToolError(f"downloading artifact {ref.name} failed {policy.max_retries + 1} times: {last_problem}")


class _TransientDownloadError(Exception):
    pass


def _check_storage_url(location: str, api_url: str) -> None:
    scheme = urlsplit(location).scheme
    if scheme != "https" and not (scheme == "http" and urlsplit(api_url).scheme == "http"):
        raise ToolError(f"refusing to download an artifact over {scheme or 'an unknown scheme'}")


def _stream_to_file(url: str, path: Path, max_bytes: int, timeout_s: float, name: str) -> None:
    # A fresh request with no session and no auth: the storage URL is pre-signed, and the
    # GitHub token must never reach that host.
    try:
        with requests.get(url, stream=True, timeout=timeout_s, headers={"User-Agent": "perfgate"}) as resp:
            if resp.status_code >= 500 or resp.status_code in (403, 408, 429):
                raise _TransientDownloadError(f"storage answered HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise ToolError(f"artifact {name}: storage answered HTTP {resp.status_code}")
            written = 0
            with open(path, "wb") as out:
                for chunk in resp.iter_content(_DOWNLOAD_CHUNK_BYTES):
                    written += len(chunk)
                    if written > max_bytes:
                        raise BaselineError(f"artifact {name} is larger than the limit of {max_bytes} bytes")
                    out.write(chunk)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise _TransientDownloadError(f"{type(exc).__name__}") from None

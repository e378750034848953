"""PR context: from a `pull_request` event, or from pr.json in the workflow_run pattern.

Event payloads and pr.json are read size-bounded; pr.json comes from an artifact a possibly
hostile pull request uploaded, so every field is validated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfgate.errors import ConfigError
from perfgate.files import FileRefused, parse_json, read_capped
from perfgate.github.client import check_positive_int, check_pr_number, check_repo_name, shorten

PR_CONTEXT_FILE = "pr.json"
PR_CONTEXT_SCHEMA = "perfgate.pr-context/1"
_EVENT_MAX_BYTES = 16 * 1024 * 1024
_PR_CONTEXT_MAX_BYTES = 64 * 1024
_SHA = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


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
    check_repo_name(event.repo, "repository.full_name")
    check_positive_int(event.run_id, "workflow_run.id")
    if not isinstance(event.head_sha, str) or not _SHA.match(event.head_sha):
        raise ConfigError(f"{event_path}: workflow_run.head_sha is not a commit id")
    return event


def _pr_context_from(raw: Mapping[str, Any], source: str) -> PrContext:
    problems = []
    for check in (
        lambda: check_repo_name(raw.get("repo"), "repo"),
        lambda: check_pr_number(raw.get("pr_number"), "pr_number"),
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


def _check_sha(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _SHA.match(value):
        raise ConfigError(f"{name} must be a 40-character hex commit id, got {shorten(value)}")


def _check_ref(value: Any, name: str) -> None:
    ok = (isinstance(value, str) and 0 < len(value) <= 255 and ".." not in value
          and not value.startswith("-") and not any(ch.isspace() or ord(ch) < 0x20 for ch in value))
    if not ok:
        raise ConfigError(f"{name} must be a branch name, got {shorten(value)}")


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {shorten(value)}")


def _read_json(path: Path, max_bytes: int, what: str) -> dict[str, Any]:
    try:
        data = read_capped(path, max_bytes)
    except FileNotFoundError:
        raise ConfigError(f"cannot read the {what} {path}: No such file or directory") from None
    except FileRefused as exc:
        raise ConfigError(f"cannot read the {what} {path}: it {exc}") from None
    try:
        value = parse_json(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: the {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: the {what} is not a JSON object")
    return value

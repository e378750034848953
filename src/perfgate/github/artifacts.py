"""Artifacts: the baseline from the base branch, and a given run's artifact (workflow_run mode).

An artifact's zip is untrusted input from a possibly hostile pull request: size-bounded, and
extracted by perfgate.archive.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from github import Github, GithubException
from github.GithubException import RateLimitExceededException

from perfgate.archive import EXTRACTION_CAP_BYTES, discarded_on_failure, safe_extract_zip
from perfgate.errors import BaselineError, BaselineMissing, ToolError
from perfgate.github.client import (
    RetryPolicy,
    check_positive_int,
    check_repo_name,
    describe_error,
    make_client,
    redact_token,
)
from perfgate.record import find_record_folder

DEFAULT_ARTIFACT_MAX_BYTES = EXTRACTION_CAP_BYTES  # the zip as downloaded; extraction has the same cap
DEFAULT_MAX_RUNS_SCANNED = 20
_DOWNLOAD_CHUNK_BYTES = 256 * 1024
ACTIONS_READ_HINT = "permission denied — add `actions: read` to the workflow's permissions"


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


@dataclass(frozen=True)
class DownloadedArtifact:
    ref: ArtifactRef
    folder: Path  # the folder holding record.json


@dataclass(frozen=True)
class BaselineSource:
    """Where baseline records come from: the `artifact_name` artifacts of the newest `max_runs` successful
    runs on `branch` of `repo` (of `workflow` only, when given), through the API at `api_url`."""

    repo: str
    artifact_name: str
    branch: str
    token: str = field(repr=False)
    api_url: str
    workflow: str | None = None
    max_runs: int = DEFAULT_MAX_RUNS_SCANNED
    retry: RetryPolicy | None = None

    def api(self, doing: str) -> contextlib.AbstractContextManager[Github]:
        check_positive_int(self.max_runs, "max_runs")
        return _artifact_api(self.repo, self.token, self.api_url, self.retry, doing,
                             per_page=min(100, self.max_runs))

    def fetch(self, ref: ArtifactRef, dest: Path, max_bytes: int) -> Path:
        return fetch_artifact(ref, repo=self.repo, token=self.token, api_url=self.api_url, dest=dest,
                              max_bytes=max_bytes, retry=self.retry)


def locate_baseline_artifact(source: BaselineSource) -> ArtifactRef:
    """The newest `artifact_name` from the latest successful run on `branch` that has one.

    Runs of pull requests (whose head branch may also be called `branch`, from a fork) are
    skipped: a baseline must come from the repository's own branch.
    """
    with source.api("looking for the baseline") as gh:
        return _find_baseline(gh, source)


@contextlib.contextmanager
def _artifact_api(repo: str, token: str, api_url: str, retry: RetryPolicy | None, doing: str, *,
                  per_page: int = 100) -> Iterator[Github]:
    """A client for the artifact endpoints; API errors become perfgate's, with the token redacted."""
    check_repo_name(repo, "repo")
    with make_client(token, api_url, retry or RetryPolicy(), per_page=per_page) as gh:
        try:
            yield gh
        except GithubException as exc:
            raise _artifact_api_error(exc, repo, token) from None
        except requests.RequestException as exc:
            raise ToolError(redact_token(f"GitHub API unreachable while {doing}: {exc}", token)) from None


def _branch_artifacts(gh: Github, source: BaselineSource, scanned: list[int]) -> Iterable[tuple[Any, ArtifactRef]]:
    """(artifact, ref) of the newest `artifact_name` of each of the branch's own successful runs, newest first.

    Runs of pull requests (whose head branch may also be called `branch`, from a fork) are skipped: a
    baseline must come from the repository's own branch. `scanned[0]` counts the runs looked at.
    """
    repository = gh.get_repo(source.repo)
    if source.workflow:
        runs = repository.get_workflow(source.workflow).get_runs(branch=source.branch, status="success")
    else:
        runs = repository.get_workflow_runs(branch=source.branch, status="success")
    for run in itertools.islice(runs, source.max_runs):
        if not _own_run(run, source.repo):
            continue
        scanned[0] += 1
        artifact = _newest_named(run.get_artifacts(), source.artifact_name)
        if artifact is not None:
            yield artifact, _artifact_ref(artifact, run)


def _own_run(run: Any, repo: str) -> bool:
    """A run of the repository's own branch, not of a pull request (whose branch may have the same name)."""
    return run.event not in ("pull_request", "pull_request_target") and (
        run.head_repository is None or run.head_repository.full_name.lower() == repo.lower())


def _find_baseline(gh: Github, source: BaselineSource) -> ArtifactRef:
    counter = [0]
    branch = source.branch
    of_workflow = f" of workflow {source.workflow}" if source.workflow else ""
    for artifact, ref in _branch_artifacts(gh, source, counter):
        if artifact.expired:
            raise _expired_error(ref)
        return ref
    scanned = counter[0]
    if scanned == 0:
        raise BaselineMissing(
            f"no successful run on {branch}{of_workflow} yet, so there is no baseline to compare against",
            hint=f"run the baseline workflow on {branch} once (push or workflow_dispatch), or pass a "
                 "baseline folder or file",
        )
    raise BaselineMissing(
        f"no artifact named {source.artifact_name!r} in the last {scanned} successful runs on "
        f"{branch}{of_workflow}",
        hint="check the artifact name and that the baseline job uploads it (actions/upload-artifact)",
    )


def download_baseline_artifact(source: BaselineSource, dest: Path, *,
                               max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES) -> DownloadedArtifact:
    """Download and safely extract the baseline artifact into `dest` (absent or empty).

    Returns which artifact it was (so history need not fetch it again) and the folder inside `dest` that
    holds record.json; the record loader checks the rest.
    """
    ref = locate_baseline_artifact(source)
    root = source.fetch(ref, dest, max_bytes)
    with discarded_on_failure(root):
        return DownloadedArtifact(ref, find_record_folder(root, f"artifact {ref.name!r} of run {ref.run_id}"))


def locate_baseline_history(source: BaselineSource, count: int) -> list[ArtifactRef]:
    """Up to `count` newest unexpired artifacts, one per run, newest first.

    The same runs as locate_baseline_artifact looks at; history is best effort, so expired artifacts are
    skipped and none at all is an empty list, not an error.
    """
    check_positive_int(count, "count")
    with source.api("looking for earlier baselines") as gh:
        found = _branch_artifacts(gh, source, [0])
        return list(itertools.islice((ref for artifact, ref in found if not artifact.expired), count))


def download_baseline_history(source: BaselineSource, dest: Path, count: int, *,
                              max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES,
                              skip_artifact_ids: frozenset[int] = frozenset()) -> list[Path]:
    """Download and safely extract each of locate_baseline_history's artifacts into dest/<run id>/.

    Returns the folders holding record.json, newest first. Artifacts in `skip_artifact_ids` (the baseline,
    already downloaded) count towards `count` but are not downloaded again. An artifact without a (single)
    record, a hostile or oversized one, or one that expired since the listing, is skipped; API and network
    failures (a permission problem included) raise as for the baseline.
    """
    folders = []
    for ref in (ref for ref in locate_baseline_history(source, count) if ref.artifact_id not in skip_artifact_ids):
        try:
            root = source.fetch(ref, dest / str(ref.run_id), max_bytes)
            with discarded_on_failure(root):
                folders.append(find_record_folder(root, f"artifact {ref.name!r} of run {ref.run_id}"))
        except _AccessDenied:
            raise
        except BaselineError:
            continue
    return folders


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
    check_positive_int(run_id, "run_id")
    with _artifact_api(repo, token, api_url, retry, "listing artifacts") as gh:
        run = gh.get_repo(repo).get_workflow_run(run_id)
        artifact = _newest_named(run.get_artifacts(), artifact_name)
        if artifact is None:
            raise BaselineError(f"run {run_id} has no artifact named {artifact_name!r}",
                                hint="check the artifact name used by the pull_request workflow")
        ref = _artifact_ref(artifact, run)
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
        with make_client(token, api_url, policy) as gh:
            _download_zip(gh, ref, repo, zip_path, max_bytes, policy, token)
        safe_extract_zip(zip_path, dest, max_total_bytes=max_bytes)
    return Path(dest)


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


class _AccessDenied(BaselineError):
    """A token without `actions: read`: a configuration problem, never skipped as one bad artifact."""


def _artifact_api_error(exc: GithubException, repo: str, token: str) -> BaselineError | ToolError:
    detail = redact_token(describe_error(exc), token)
    if exc.status in (401, 403) and not isinstance(exc, RateLimitExceededException):
        return _AccessDenied(f"{ACTIONS_READ_HINT} ({detail})")
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
            raise ToolError(redact_token(f"GitHub API unreachable while downloading {ref.name}: {exc}",
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

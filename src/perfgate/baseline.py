"""Where a baseline record comes from: a folder, a .tgz/.zip of one, or a GitHub Actions artifact.

A baseline that exists but cannot be read is always an error (exit 2) that says what is wrong —
never silently "no baseline". Only a baseline that is absent can be waved through, and only with
`baseline.missing: pass`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from perfgate.archive import discarded_on_failure
from perfgate.config import Config
from perfgate.errors import BaselineError, BaselineMissing, PerfgateError, RecordError
from perfgate.record import RunRecord, find_record_folder, load_record

if TYPE_CHECKING:
    from perfgate.github.artifacts import BaselineSource

ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".zip")


@dataclass(frozen=True)
class BaselineHistory:
    """Earlier records of the baseline build, and what could not be had (notes for the verdict)."""

    records: tuple[RunRecord, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineSource:
    kind: str  # "path" | "artifact" | "none"
    description: str


def resolve_source(config: Config, environ: Mapping[str, str]) -> BaselineSource:
    if config.baseline.path:
        return BaselineSource("path", config.baseline.path)
    in_pull_request = bool(environ.get("GITHUB_BASE_REF"))
    if config.baseline.branch or in_pull_request:
        branch = config.baseline.branch or environ.get("GITHUB_BASE_REF", "")
        return BaselineSource("artifact", f"artifact {config.baseline.artifact!r} from branch {branch!r}")
    return BaselineSource("none", "no baseline configured")


def open_baseline_path(source: str, workdir: Path) -> RunRecord:
    """A record folder, or an archive holding one (extracted safely into workdir)."""
    path = Path(source)
    if not path.exists():
        raise BaselineError(f"baseline {source}: no such file or folder",
                            hint="pass the folder a `perfgate run --baseline` wrote (OUT/baseline), or its .tgz")
    if path.is_dir():
        return load_record(path)
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise BaselineError(f"baseline {source}: not a record folder or an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    with discarded_on_failure(extract_archive(path, workdir)) as extracted:
        try:
            return load_record(find_record_folder(extracted, f"baseline {source}"))
        except RecordError as error:  # name the archive, not the folder that is removed now
            raise RecordError(error.message.replace(str(extracted), source), hint=error.hint) from None


def extract_archive(path: Path, workdir: Path) -> Path:
    """Extract within archive.EXTRACTION_CAP_BYTES into a new folder of `workdir` (nothing left if refused)."""
    from perfgate import archive

    workdir.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix="baseline-", dir=workdir))
    try:
        if path.name.endswith(".zip"):
            archive.safe_extract_zip(path, dest)
        else:
            archive.safe_extract_tar(path, dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def download_artifact_baseline(config: Config, environ: Mapping[str, str], workdir: Path) -> RunRecord:
    return _download_artifact_baseline(config, environ, workdir)[0]


def _download_artifact_baseline(config: Config, environ: Mapping[str, str],
                                workdir: Path) -> tuple[RunRecord, int]:
    """The base branch's baseline record and the id of the artifact it came from."""
    from perfgate import github

    source = _artifact_source(config, environ)
    if source is None:
        raise BaselineError("cannot download the baseline artifact: GITHUB_TOKEN and GITHUB_REPOSITORY must be set",
                            hint="pass the github-token input (or set baseline.path to a local record)")
    downloaded = github.download_baseline_artifact(source, workdir / "baseline-artifact")
    with discarded_on_failure(workdir / "baseline-artifact"):
        return load_record(downloaded.folder), downloaded.ref.artifact_id


def _artifact_source(config: Config, environ: Mapping[str, str]) -> BaselineSource | None:
    """The base branch's baseline artifacts as this job sees them; None without a token and a repository."""
    from perfgate import github

    token = environ.get("GITHUB_TOKEN") or environ.get("INPUT_GITHUB-TOKEN")
    repo = environ.get("GITHUB_REPOSITORY")
    if not token or not repo:
        return None
    return github.BaselineSource(repo=repo, artifact_name=config.baseline.artifact,
                                 branch=config.baseline.branch or environ.get("GITHUB_BASE_REF") or "main",
                                 token=token, api_url=github.api_url_from_env(environ),
                                 workflow=config.baseline.workflow)


def open_history(config: Config, baseline: RunRecord, environ: Mapping[str, str] | None = None,
                 workdir: Path | None = None, *, from_artifacts: bool = False,
                 skip_artifact_ids: frozenset[int] = frozenset()) -> BaselineHistory:
    """Earlier records of the baseline build, from which the gate measures run-to-run drift.

    baseline.history paths are read like a baseline (a named record that cannot be read is an error);
    with an artifact baseline (`from_artifacts`), up to baseline.history_runs newest artifacts of the base branch are
    downloaded too, best effort: a history that cannot be had leaves the gate without it, not failed.
    The baseline record itself is dropped wherever it shows up; `skip_artifact_ids` (the baseline's own
    artifact) are not downloaded again.
    """
    environ = os.environ if environ is None else environ
    workdir = workdir or Path(config.output)
    records = [open_baseline_path(path, workdir / "history") for path in config.baseline.history]
    notes: list[str] = []
    if from_artifacts and config.baseline.history_runs > 1:
        downloaded, notes = download_artifact_history(config, environ, workdir, skip_artifact_ids)
        records += downloaded
    unique: dict[tuple, RunRecord] = {}
    for record in records:
        unique.setdefault(_identity(record), record)
    unique.pop(_identity(baseline), None)
    return BaselineHistory(tuple(unique.values()), tuple(notes))


def _identity(record: RunRecord) -> tuple:
    return record.created_at, record.config_digest, record.environment.git_sha


def download_artifact_history(config: Config, environ: Mapping[str, str], workdir: Path,
                              skip_artifact_ids: frozenset[int] = frozenset()) -> tuple[list[RunRecord], list[str]]:
    from perfgate import github

    source = _artifact_source(config, environ)
    if source is None:
        return [], ["earlier baseline artifacts not downloaded: GITHUB_TOKEN and GITHUB_REPOSITORY are not set"]
    try:
        folders = github.download_baseline_history(source, workdir / "baseline-history",
                                                   config.baseline.history_runs, skip_artifact_ids=skip_artifact_ids)
    except PerfgateError as error:
        return [], [f"earlier baseline artifacts not downloaded: {error.message}"]
    records, notes = [], []
    history = workdir / "baseline-history"
    for folder in folders:
        try:
            records.append(load_record(folder))
        except PerfgateError as error:
            notes.append(f"an earlier baseline artifact was not used: {error.message}")
            shutil.rmtree(history / folder.relative_to(history).parts[0], ignore_errors=True)
    return records, notes


def open_baseline(config: Config, environ: Mapping[str, str] | None = None,
                  workdir: Path | None = None) -> RunRecord | None:
    """The baseline record, or None when there is none and `baseline.missing: pass` allows that."""
    environ = os.environ if environ is None else environ
    workdir = workdir or Path(config.output)
    workdir.mkdir(parents=True, exist_ok=True)
    source = resolve_source(config, environ)
    if source.kind == "path":
        return open_baseline_path(source.description, workdir)
    try:
        if source.kind == "artifact":
            return download_artifact_baseline(config, environ, workdir)
    except BaselineMissing:
        if config.baseline.missing == "pass":
            return None
        raise
    return None


def open_baseline_and_history(config: Config, environ: Mapping[str, str] | None = None,
                              workdir: Path | None = None) -> tuple[RunRecord | None, BaselineHistory]:
    """open_baseline, then open_history: an artifact baseline brings its branch's history, and its own
    zip is downloaded once (not again as the newest history artifact)."""
    environ = os.environ if environ is None else environ
    workdir = workdir or Path(config.output)
    workdir.mkdir(parents=True, exist_ok=True)
    if resolve_source(config, environ).kind != "artifact":
        baseline = open_baseline(config, environ, workdir)
        history = BaselineHistory() if baseline is None else open_history(config, baseline, environ, workdir)
        return baseline, history
    try:
        baseline, artifact_id = _download_artifact_baseline(config, environ, workdir)
    except BaselineMissing:
        if config.baseline.missing == "pass":
            return None, BaselineHistory()
        raise
    return baseline, open_history(config, baseline, environ, workdir, from_artifacts=True,
                                  skip_artifact_ids=frozenset({artifact_id}))

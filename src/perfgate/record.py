"""The run record: what one `perfgate run` measured, and the baseline artifact of later runs.

On disk a record is a folder:
    record.json              this module's schema (below)
    load/rep-NN.json         each repetition's raw ghz JSON report
    load/rep-NN.latency.npy  its OK calls' latencies in ns, compact (load/latencies.py)
    load/capacity-NN.json    each capacity probe's raw ghz JSON report (duet with an automatic rate)
    cpu/rep-NN.pb.gz         each repetition's raw pprof CPU profile (when captured)
    runq/rep-NN.jsonl        the bpftrace lines of each repetition's window (start mark to end mark)
    runq/run.jsonl           everything bpftrace printed over the run (one collector per run)
    layers/rep-NN.KIND.pb.gz each repetition's delta profile of KIND = allocs, mutex, block (when captured)
    layers/rep-NN.goroutine-{start,end}.pb.gz  goroutine snapshots before and after its load window
    runq/kernel.bt           the kernel program, when syscalls.bt's probes were composed into runqlat.bt's
                             (each window's system call maps are in runq/rep-NN.jsonl with its histograms)
    gc/rep-NN.gctrace.log    the service's GODEBUG=gctrace=1 lines of each window (or gc/rep-NN.vars.json:
                             its /debug/vars memstats before and after the window)
                             (the repetition's `contention` figures are in record.json itself)
    service.log              stdout/stderr of the service perfgate started (when it started one)

record.json is rewritten (atomically) after every repetition, so a run that fails midway leaves
every finished repetition and the failure on disk.

Format history (bump SCHEMA_VERSION on any change a reader of the old version would misread,
and add a migration from the previous version to MIGRATIONS):
  1  perfgate 0.1.0: first format.
  2  each repetition names its latency array (`latency_file`); a schema-1 record has none, and its
     latencies are streamed from the raw ghz report when a chart needs them.
     A repetition's `contention` (what else used the machine in its load window) is optional: records
     written before it was added read as None.
     So are its `layers` (allocation, mutex, block delta profiles) and `goroutines` (snapshots):
     records written before them read as {} and None; and its `syscalls` and `gc`, None before them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from perfgate import __version__
from perfgate.errors import RecordError
from perfgate.files import (
    MAX_INPUT_FILE_BYTES,
    MAX_JSON_DOCUMENT_BYTES,
    FileRefused,
    inside,
    not_regular,
    parse_json,
    read_capped,
)
from perfgate.jsonable import jsonable
from perfgate.record_parts import (
    CapacityProbe,
    ProbeProfile,
    Repetition,
    probe_from,
    probe_profile_from,
    repetition_dict,
    repetition_files,
    repetition_from,
    require,
)
from perfgate.typed import type_problems

if TYPE_CHECKING:
    pass

SCHEMA_VERSION = 2
RECORD_FILE = "record.json"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    repetitions = data.get("repetitions")
    if isinstance(repetitions, list):
        repetitions = [{**rep, "latency_file": None} if isinstance(rep, dict) else rep for rep in repetitions]
    return {**data, "schema_version": 2, "repetitions": repetitions}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


@dataclass(frozen=True)
class Environment:
    """Where the record was measured; compare() checks the keys the config names."""

    kernel: str
    cpu_model: str
    nproc: int
    os: str
    python: str
    ghz_version: str
    git_sha: str | None = None
    git_ref: str | None = None
    github_run_id: str | None = None
    github_repository: str | None = None

    def value(self, key: str) -> Any:
        return getattr(self, key, None)


@dataclass(frozen=True)
class RunRecord:
    role: str  # "baseline" | "candidate"
    created_at: str
    config_digest: str
    target: Mapping[str, str]
    load_settings: Mapping[str, Any]
    environment: Environment
    repetitions: tuple[Repetition, ...]
    complete: bool
    notes: tuple[str, ...] = ()
    capacity_probes: tuple[CapacityProbe, ...] = ()
    probe_profiles: tuple[ProbeProfile, ...] = ()
    perfgate_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)

    @property
    def ok_repetitions(self) -> tuple[Repetition, ...]:
        return tuple(r for r in self.repetitions if r.ok)

    def with_repetition(self, repetition: Repetition) -> RunRecord:
        return replace(self, repetitions=(*self.repetitions, repetition))

    def with_capacity_probe(self, probe: CapacityProbe) -> RunRecord:
        return replace(self, capacity_probes=(*self.capacity_probes, probe))

    def with_probe_profile(self, profile: ProbeProfile) -> RunRecord:
        return replace(self, probe_profiles=(*self.probe_profiles, profile))

    def with_note(self, note: str) -> RunRecord:
        return replace(self, notes=(*self.notes, note))

    def file(self, relative: str, *, field: str = "file") -> Path:
        """The path of a file this record names; RecordError when it would lead outside the folder."""
        if self.path is None:
            raise RecordError("this record has not been saved or loaded from a folder")
        try:
            return inside(self.path, relative)
        except FileRefused as error:
            raise RecordError(f"{self.path / RECORD_FILE}: {field} {_short(relative)} {error}",
                              hint="a record names only files inside its own folder") from None

    def read_file(self, relative: str, *, field: str, limit: int = MAX_INPUT_FILE_BYTES) -> bytes:
        """The content of a file this record names, size-capped; RecordError naming `field` when it is
        outside the folder or not a regular file, FileNotFoundError when it is missing."""
        path = self.file(relative, field=field)
        try:
            return read_capped(path, limit)
        except FileRefused as error:
            raise RecordError(f"{self.path / RECORD_FILE}: {field} {_short(relative)} {error}") from None

    def save(self, folder: Path) -> RunRecord:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / RECORD_FILE, json.dumps(to_dict(self), indent=2, sort_keys=True) + "\n")
        return replace(self, path=folder)

    @staticmethod
    def load(folder: Path) -> RunRecord:
        return load_record(folder)


# ---------------------------------------------------------------- serialisation
def to_dict(record: RunRecord) -> dict[str, Any]:
    return {
        "schema_version": record.schema_version,
        "perfgate_version": record.perfgate_version,
        "role": record.role,
        "created_at": record.created_at,
        "config_digest": record.config_digest,
        "target": dict(record.target),
        "load_settings": dict(record.load_settings),
        "environment": jsonable(record.environment),
        "complete": record.complete,
        "notes": list(record.notes),
        "repetitions": [repetition_dict(r) for r in record.repetitions],
        "capacity_probes": [jsonable(p) for p in record.capacity_probes],
        "probe_profiles": [jsonable(p) for p in record.probe_profiles],
    }


def find_record_folder(root: Path, source: str) -> Path:
    """The shallowest folder under `root` holding a record.json file (archives often wrap it in a folder).

    Symlinks do not count; two records at the same shallowest depth are ambiguous and an error.
    """
    from perfgate.errors import BaselineError

    found = sorted((p for p in root.rglob(RECORD_FILE) if p.is_file() and not p.is_symlink()),
                   key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise BaselineError(f"{source} has no {RECORD_FILE}: it is not a perfgate record",
                            hint="upload or pass perfgate's output folder (the run record)")
    shallowest = [p for p in found if len(p.parts) == len(found[0].parts)]
    if len(shallowest) > 1:
        names = ", ".join(str(p.parent.relative_to(root)) for p in shallowest[:3])
        raise BaselineError(f"{source} holds several run records ({names}); keep one")
    return found[0].parent


def load_record(folder: Path) -> RunRecord:
    """Read a record folder; every problem is a RecordError that says what is wrong and where.

    A record may come from a fork's run: record.json is read size-capped, every value must have its
    field's type (finite numbers, 64-bit integers), and every file it names must stay inside the folder.
    """
    path = Path(folder) / RECORD_FILE
    if not Path(folder).is_dir():
        raise RecordError(f"{folder}: not a folder (a run record is a folder holding {RECORD_FILE})")
    try:
        data = parse_json(read_capped(path, MAX_JSON_DOCUMENT_BYTES))
    except FileNotFoundError as error:
        raise RecordError(f"{path}: missing — {folder} is not a perfgate run record") from error
    except (FileRefused, ValueError) as error:
        raise RecordError(f"{path}: {error}", hint="the file was truncated or edited; produce a new baseline with "
                                                   "`perfgate run --baseline`") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object at the top level")
    data = _migrate(data, path)
    try:
        record = replace(from_dict(data), path=Path(folder))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RecordError(f"{path}: does not match record schema {SCHEMA_VERSION}: {_field_problem(error)}",
                          hint="produce a new baseline with `perfgate run --baseline`") from error
    problems = type_problems(record, _type_namespace()) + _file_problems(record)
    if problems:
        raise RecordError(f"{path}: " + "; ".join(problems),
                          hint="the record was edited or damaged; produce a new one with `perfgate run`")
    return record


def _type_namespace() -> dict[str, Any]:
    """The types record.py names only for type checkers, for typed.type_problems."""
    from perfgate.capture.contention import ContentionWindow
    from perfgate.capture.runq import RunqStats
    from perfgate.capture.syscalls import SyscallStats

    return {"RunqStats": RunqStats, "ContentionWindow": ContentionWindow, "SyscallStats": SyscallStats}


def file_fields(record: RunRecord) -> list[tuple[str, str]]:
    """(field, relative name) of every file record.json names (record_parts.repetition_files says a repetition's)."""
    probes = [(f"capacity_probes[{i}].load_file", probe.load_file) for i, probe in enumerate(record.capacity_probes)]
    profiles = [(f"probe_profiles[{i}].cpu.file", profile.cpu.file) for i, profile in enumerate(record.probe_profiles)
                if profile.cpu.file is not None]
    return [(f"repetitions[{i}].{field_name}", name) for i, rep in enumerate(record.repetitions)
            for field_name, name in repetition_files(rep)] + probes + profiles


def _file_problems(record: RunRecord) -> list[str]:
    """Every named file stays inside the folder and, where it exists, is a regular file."""
    assert record.path is not None
    problems = []
    for field_name, relative in file_fields(record):
        try:
            target = inside(record.path, relative)
        except FileRefused as error:
            problems.append(f"{field_name} {_short(relative)} {error}")
            continue
        problem = not_regular(target)
        if problem:
            problems.append(f"{field_name} {_short(relative)} {problem}")
    return problems


def _field_problem(error: Exception) -> str:
    return f"missing field {error}" if isinstance(error, KeyError) else str(error)


def _migrate(data: dict[str, Any], path: Path) -> dict[str, Any]:
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(f"{path}: schema_version is {version!r}; expected an integer from 1 to {SCHEMA_VERSION}")
    if version > SCHEMA_VERSION:
        made_by = data.get("perfgate_version", "a newer perfgate")
        raise RecordError(
            f"{path}: record schema_version {version} is newer than this perfgate understands "
            f"(it reads up to {SCHEMA_VERSION}); it was written by perfgate {made_by}",
            hint=f"upgrade perfgate to a version that reads schema_version {version} (>= {made_by})")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


def from_dict(data: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        schema_version=require(data, "schema_version", int),
        perfgate_version=require(data, "perfgate_version", str),
        role=require(data, "role", str),
        created_at=require(data, "created_at", str),
        config_digest=require(data, "config_digest", str),
        target=MappingProxyType(dict(require(data, "target", dict))),
        load_settings=MappingProxyType(dict(require(data, "load_settings", dict))),
        environment=Environment(**require(data, "environment", dict)),
        complete=require(data, "complete", bool),
        notes=tuple(require(data, "notes", list)),
        repetitions=tuple(repetition_from(r) for r in require(data, "repetitions", list)),
        capacity_probes=tuple(probe_from(p) for p in data.get("capacity_probes") or ()),
        probe_profiles=tuple(probe_profile_from(p) for p in data.get("probe_profiles") or ()),
    )


def _atomic_write(path: Path, content: str) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

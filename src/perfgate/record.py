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
     records written before them read as {} and None.
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
from perfgate.load.sample import LoadSample
from perfgate.plain import plain
from perfgate.typed import type_problems

if TYPE_CHECKING:
    from perfgate.capture.contention import ContentionWindow
    from perfgate.capture.runq import RunqStats

SCHEMA_VERSION = 2
RECORD_FILE = "record.json"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    repetitions = data.get("repetitions")
    if isinstance(repetitions, list):
        repetitions = [{**rep, "latency_file": None} if isinstance(rep, dict) else rep for rep in repetitions]
    return {**data, "schema_version": 2, "repetitions": repetitions}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


@dataclass(frozen=True)
class CpuCapture:
    """The CPU profile of one repetition: the file in the record, or why there is none."""

    status: str  # "ok" | "unavailable" | "disabled"
    reason: str | None = None
    file: str | None = None
    total_cpu_ns: int | None = None
    duration_ns: int | None = None


@dataclass(frozen=True)
class RunqCapture:
    """The kernel view of one repetition: bpftrace's parsed stats, or why there are none."""

    status: str  # "ok" | "partial" | "unavailable" | "disabled"
    reason: str | None = None
    file: str | None = None
    stats: RunqStats | None = None


@dataclass(frozen=True)
class LayerCapture:
    """One repetition's delta profile below the CPU (allocs, mutex or block): its raw file and totals,
    or why there is none. totals: each sample type's sum over the window (e.g. alloc_space bytes,
    delay ns), without perfgate's own requests (capture/layers.py)."""

    status: str  # "ok" | "unavailable" | "disabled"
    reason: str | None = None
    file: str | None = None
    totals: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    duration_ns: int | None = None


@dataclass(frozen=True)
class GoroutineCapture:
    """The service's goroutines just before and just after one load window, or why they are not known."""

    status: str  # "ok" | "unavailable" | "disabled"
    reason: str | None = None
    start_file: str | None = None
    end_file: str | None = None
    start_count: int | None = None
    end_count: int | None = None

    @property
    def growth(self) -> int | None:
        """Goroutines gained over the window (negative: lost)."""
        if self.start_count is None or self.end_count is None:
            return None
        return self.end_count - self.start_count


@dataclass(frozen=True)
class Repetition:
    index: int
    started_at: str
    ended_at: str
    load: LoadSample | None
    load_file: str | None
    cpu: CpuCapture
    runq: RunqCapture
    failure: str | None = None
    service_cpu_ns: int | None = None  # the service's CPU time (all its threads) over the load window
    latency_file: str | None = None  # the OK calls' latencies (load/latencies.py), None in schema-1 records
    contention: ContentionWindow | None = None  # what else used the machine in the window (None before 0.2)
    layers: Mapping[str, LayerCapture] = field(default_factory=lambda: MappingProxyType({}))  # by kind
    goroutines: GoroutineCapture | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.load is not None


@dataclass(frozen=True)
class CapacityProbe:
    """One short load run without a rate limit against one build alone: what it serves at load.concurrency.

    `phase` is "rate" (the probes that set the automatic rate, before the first repetition) or "pair" (one per
    repetition pair and side, in A B B A order: the samples the `capacity` metric compares).
    """

    index: int
    phase: str
    started_at: str
    ended_at: str
    load: LoadSample
    load_file: str

    @property
    def ok_rps(self) -> float:
        return self.load.ok_count / (self.load.total_ns / 1e9) if self.load.total_ns else 0.0


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
        "environment": plain(record.environment),
        "complete": record.complete,
        "notes": list(record.notes),
        "repetitions": [_repetition_dict(r) for r in record.repetitions],
        "capacity_probes": [plain(p) for p in record.capacity_probes],
    }


def _repetition_dict(rep: Repetition) -> dict[str, Any]:
    return {
        "index": rep.index,
        "started_at": rep.started_at,
        "ended_at": rep.ended_at,
        "load": plain(rep.load),
        "load_file": rep.load_file,
        "cpu": plain(rep.cpu),
        "runq": plain(rep.runq),
        "failure": rep.failure,
        "service_cpu_ns": rep.service_cpu_ns,
        "latency_file": rep.latency_file,
        "contention": plain(rep.contention),
        "layers": {kind: plain(capture) for kind, capture in rep.layers.items()},
        "goroutines": plain(rep.goroutines),
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

    return {"RunqStats": RunqStats, "ContentionWindow": ContentionWindow}


def file_fields(record: RunRecord) -> list[tuple[str, str]]:
    """(field, relative name) of every file record.json names. A new file field belongs here."""
    named = []
    for i, rep in enumerate(record.repetitions):
        layer_files = [(f"layers.{kind}.file", capture.file) for kind, capture in rep.layers.items()]
        goroutines = rep.goroutines
        if goroutines is not None:
            layer_files += [("goroutines.start_file", goroutines.start_file),
                            ("goroutines.end_file", goroutines.end_file)]
        for field_name, value in (("load_file", rep.load_file), ("latency_file", rep.latency_file),
                                  ("cpu.file", rep.cpu.file), ("runq.file", rep.runq.file), *layer_files):
            if value is not None:
                named.append((f"repetitions[{i}].{field_name}", value))
    return named


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


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise TypeError(f"field {key!r} should be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def from_dict(data: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        schema_version=_require(data, "schema_version", int),
        perfgate_version=_require(data, "perfgate_version", str),
        role=_require(data, "role", str),
        created_at=_require(data, "created_at", str),
        config_digest=_require(data, "config_digest", str),
        target=MappingProxyType(dict(_require(data, "target", dict))),
        load_settings=MappingProxyType(dict(_require(data, "load_settings", dict))),
        environment=Environment(**_require(data, "environment", dict)),
        complete=_require(data, "complete", bool),
        notes=tuple(_require(data, "notes", list)),
        repetitions=tuple(_repetition_from(r) for r in _require(data, "repetitions", list)),
        capacity_probes=tuple(_probe_from(p) for p in data.get("capacity_probes") or ()),
    )


def _probe_from(data: Mapping[str, Any]) -> CapacityProbe:
    return CapacityProbe(index=_require(data, "index", int), phase=_require(data, "phase", str),
                         started_at=_require(data, "started_at", str), ended_at=_require(data, "ended_at", str),
                         load=_load_from(_require(data, "load", dict)), load_file=_require(data, "load_file", str))


def _repetition_from(data: Mapping[str, Any]) -> Repetition:
    load = data.get("load")
    return Repetition(
        index=_require(data, "index", int),
        started_at=_require(data, "started_at", str),
        ended_at=_require(data, "ended_at", str),
        load=_load_from(load) if load is not None else None,
        load_file=data.get("load_file"),
        cpu=CpuCapture(**_require(data, "cpu", dict)),
        runq=_runq_from(_require(data, "runq", dict)),
        failure=data.get("failure"),
        service_cpu_ns=data.get("service_cpu_ns"),
        latency_file=_optional_text(data, "latency_file"),
        contention=_contention_from(data.get("contention")),
        layers=_layers_from(data.get("layers")),
        goroutines=_goroutines_from(data.get("goroutines")),
    )


def _layers_from(data: Any) -> Mapping[str, LayerCapture]:
    if data is None:
        return MappingProxyType({})
    if not isinstance(data, Mapping):
        raise TypeError(f"field 'layers' should be an object, got {data!r}")
    captures = {}
    for kind, capture in data.items():
        if not isinstance(capture, Mapping):
            raise TypeError(f"field 'layers.{kind}' should be an object, got {capture!r}")
        totals = capture.get("totals") or {}
        if not isinstance(totals, Mapping):
            raise TypeError(f"field 'layers.{kind}.totals' should be an object, got {totals!r}")
        captures[kind] = LayerCapture(**{**capture, "totals": MappingProxyType(dict(totals))})
    return MappingProxyType(captures)


def _goroutines_from(data: Any) -> GoroutineCapture | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"field 'goroutines' should be an object, got {data!r}")
    return GoroutineCapture(**data)


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"field {key!r} should be a string or null, got {value!r}")
    return value


def _load_from(data: Mapping[str, Any]) -> LoadSample:
    fields = dict(data)
    fields["status_counts"] = MappingProxyType(dict(fields["status_counts"]))
    fields["error_counts"] = MappingProxyType(dict(fields["error_counts"]))
    sample = LoadSample(**fields)
    if sample.ok_count > sample.count or sample.count < 0:
        raise ValueError(f"load sample has ok_count {sample.ok_count} > count {sample.count}")
    return sample


def _runq_from(data: Mapping[str, Any]) -> RunqCapture:
    stats = data.get("stats")
    if stats is not None:
        from perfgate.capture.runq import RunqStats

        stats = RunqStats.from_dict(stats)
    return RunqCapture(status=data["status"], reason=data.get("reason"), file=data.get("file"), stats=stats)


def _contention_from(data: Any) -> ContentionWindow | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"field 'contention' should be an object, got {data!r}")
    from perfgate.capture.contention import ContentionWindow

    return ContentionWindow.from_dict(data)


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

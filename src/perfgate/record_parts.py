"""The parts of a run record: one repetition (its load and what each collector captured in its window) and a
capacity probe, each with how it is written to and read back from record.json (record.py holds the record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from perfgate.jsonable import jsonable
from perfgate.load.sample import LoadSample

if TYPE_CHECKING:
    from perfgate.capture.contention import ContentionWindow
    from perfgate.capture.runq import RunqStats
    from perfgate.capture.syscalls import SyscallStats


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
class SyscallCapture:
    """The service's system calls in one repetition's window (capture/syscalls.py), or why they are not known.
    file: the window's raw bpftrace lines, shared with the run-queue view (one kernel program prints both)."""

    status: str  # "ok" | "unavailable" | "disabled"
    reason: str | None = None
    file: str | None = None
    stats: SyscallStats | None = None


@dataclass(frozen=True)
class GcCapture:
    """The service's garbage collections in one repetition's window (capture/gc.py), or why they are not known.
    source: "gctrace" (GODEBUG=gctrace=1 lines on its stderr) or "expvar" (memstats from /debug/vars)."""

    status: str  # "ok" | "unavailable" | "disabled"
    reason: str | None = None
    source: str | None = None
    file: str | None = None
    cycles: int | None = None
    pause_ns: int | None = None  # stop-the-world time
    cpu_ns: int | None = None  # the collector's CPU time (gctrace only)


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
    syscalls: SyscallCapture | None = None
    gc: GcCapture | None = None

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
class ProbeProfile:
    """The CPU profile one build gave over a run of its capacity probes (measure/probe_profile.py): `probes` are the
    indexes of the probes it covers, all of one `phase`; `cpu.file` holds it, or `cpu.reason` says why there is none.
    """

    phase: str
    probes: tuple[int, ...]
    cpu: CpuCapture


# ---------------------------------------------------------------- to and from record.json
def repetition_files(rep: Repetition) -> list[tuple[str, str]]:
    """(field, relative name) of every file a repetition names: a new file field belongs here, so that the
    record's reader checks it stays inside the record (record.file_fields)."""
    layer_files = [(f"layers.{kind}.file", capture.file) for kind, capture in rep.layers.items()]
    if rep.goroutines is not None:
        layer_files += [("goroutines.start_file", rep.goroutines.start_file),
                        ("goroutines.end_file", rep.goroutines.end_file)]
    below = [(f"{name}.file", capture.file) for name, capture in (("syscalls", rep.syscalls), ("gc", rep.gc))
             if capture is not None]
    named = (("load_file", rep.load_file), ("latency_file", rep.latency_file), ("cpu.file", rep.cpu.file),
             ("runq.file", rep.runq.file), *layer_files, *below)
    return [(field_name, value) for field_name, value in named if value is not None]


def repetition_dict(rep: Repetition) -> dict[str, Any]:
    return {
        "index": rep.index,
        "started_at": rep.started_at,
        "ended_at": rep.ended_at,
        "load": jsonable(rep.load),
        "load_file": rep.load_file,
        "cpu": jsonable(rep.cpu),
        "runq": jsonable(rep.runq),
        "failure": rep.failure,
        "service_cpu_ns": rep.service_cpu_ns,
        "latency_file": rep.latency_file,
        "contention": jsonable(rep.contention),
        "layers": {kind: jsonable(capture) for kind, capture in rep.layers.items()},
        "goroutines": jsonable(rep.goroutines),
        "syscalls": jsonable(rep.syscalls),
        "gc": jsonable(rep.gc),
    }


def require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise TypeError(f"field {key!r} should be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def probe_from(data: Mapping[str, Any]) -> CapacityProbe:
    return CapacityProbe(index=require(data, "index", int), phase=require(data, "phase", str),
                         started_at=require(data, "started_at", str), ended_at=require(data, "ended_at", str),
                         load=_load_from(require(data, "load", dict)), load_file=require(data, "load_file", str))


def probe_profile_from(data: Mapping[str, Any]) -> ProbeProfile:
    probes = require(data, "probes", list)
    if not all(isinstance(index, int) and not isinstance(index, bool) for index in probes):
        raise TypeError("field 'probes' should be a list of integer probe indexes")
    return ProbeProfile(phase=require(data, "phase", str), probes=tuple(probes),
                        cpu=CpuCapture(**require(data, "cpu", dict)))


def repetition_from(data: Mapping[str, Any]) -> Repetition:
    load = data.get("load")
    return Repetition(
        index=require(data, "index", int),
        started_at=require(data, "started_at", str),
        ended_at=require(data, "ended_at", str),
        load=_load_from(load) if load is not None else None,
        load_file=data.get("load_file"),
        cpu=CpuCapture(**require(data, "cpu", dict)),
        runq=_runq_from(require(data, "runq", dict)),
        failure=data.get("failure"),
        service_cpu_ns=data.get("service_cpu_ns"),
        latency_file=_optional_text(data, "latency_file"),
        contention=_contention_from(data.get("contention")),
        layers=_layers_from(data.get("layers")),
        goroutines=_goroutines_from(data.get("goroutines")),
        syscalls=_syscalls_from(data.get("syscalls")),
        gc=_object_or_none(GcCapture, data, "gc"),
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


def _syscalls_from(data: Any) -> SyscallCapture | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"field 'syscalls' should be an object, got {data!r}")
    stats = data.get("stats")
    if stats is not None:
        from perfgate.capture.syscalls import SyscallStats

        if not isinstance(stats, Mapping):
            raise TypeError(f"field 'syscalls.stats' should be an object, got {stats!r}")
        stats = SyscallStats.from_dict(stats)
    return SyscallCapture(**{**data, "stats": stats})


def _object_or_none(kind: type, data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"field {key!r} should be an object, got {value!r}")
    return kind(**value)


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

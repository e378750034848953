"""The layers below the CPU, read out of one record: per repetition the allocations and the lock and
block delay per request (delta profiles over the window divided by the OK calls served meanwhile),
the goroutines gained over the load window and counted at its end; per function or goroutine start
function, the same figures for naming who moved.

The I/O half, like compare/inputs.py: it reads the profile files of the record once; the gate
compares what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from perfgate.capture.layers import DELTA_KINDS, LayerKind, goroutine_starts, parse_layer
from perfgate.errors import ProfileError
from perfgate.profile.model import Profile
from perfgate.profile.parse import MAX_PROFILE_BYTES
from perfgate.record import RunRecord
from perfgate.record_parts import LayerCapture, Repetition

# The figure each sample type gives per request, in the unit reports show: bytes and objects as counted,
# delays in µs (profiles count ns).
PER_REQUEST_FACTOR = {"alloc_space": 1.0, "alloc_objects": 1.0, "contentions": 1.0, "delay": 1e-3}
PER_REQUEST_UNIT = {"alloc_space": "B", "alloc_objects": "objects", "contentions": "events", "delay": "µs"}


@dataclass(frozen=True)
class LayerSide:
    """One side's delta profiles of one kind, for the repetitions that have one (in record order).

    per_request: each sample type's total per OK call, per repetition (PER_REQUEST_UNIT);
    profiles: each repetition's profile on the kind's main sample type, and scales: what turns its
    values into that figure per request (for naming the functions that moved).
    """

    kind: str
    per_request: Mapping[str, tuple[float, ...]]
    profiles: tuple[Profile, ...]
    scales: tuple[float, ...]
    problems: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return any(self.per_request.values())


@dataclass(frozen=True)
class GoroutineSide:
    """One side's goroutine snapshots: counts at each window's end, growth over each window, and the growth
    per start function (the outermost frame of a goroutine's stack: where it was started)."""

    end_counts: tuple[int, ...]
    growth: tuple[int, ...]
    growth_by_start: tuple[Mapping[str, int], ...]
    problems: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        return bool(self.growth)


def layer_side(record: RunRecord, reps: tuple[Repetition, ...], kind: LayerKind, *,
               with_profiles: bool = True) -> LayerSide:
    """The kind's figures per request from the record's totals; its profiles too (for movers) when asked."""
    values: dict[str, list[float]] = {sample_type: [] for sample_type in kind.sample_types}
    profiles, scales, problems = [], [], set()
    main_type = kind.sample_types[-1]
    for rep in reps:
        capture = rep.layers.get(kind.name)
        if capture is None or capture.status != "ok" or not capture.file:
            if capture is not None and capture.reason and capture.status != "disabled":
                problems.add(capture.reason)
            continue
        calls = calls_in_window(rep, capture)
        if calls <= 0:
            continue
        if with_profiles:
            try:
                profiles.append(_read(record, rep, capture.file, kind, f"layers.{kind.name}.file"))
            except ProfileError as error:
                problems.add(f"{kind.name} profile unavailable: {error.message}")
                continue
            scales.append(PER_REQUEST_FACTOR[main_type] / calls)
        for sample_type in kind.sample_types:
            values[sample_type].append(capture.totals.get(sample_type, 0) / calls * PER_REQUEST_FACTOR[sample_type])
    return LayerSide(kind=kind.name, per_request=MappingProxyType({t: tuple(v) for t, v in values.items()}),
                     profiles=tuple(profiles), scales=tuple(scales), problems=tuple(sorted(problems)))


def goroutine_side(record: RunRecord, reps: tuple[Repetition, ...], *, with_profiles: bool = True) -> GoroutineSide:
    """Counts and growth from the record; the growth per start function from the snapshots when asked."""
    end_counts, growth, by_start, problems = [], [], [], set()
    for rep in reps:
        capture = rep.goroutines
        if capture is None or capture.status != "ok" or capture.growth is None:
            if capture is not None and capture.reason and capture.status != "disabled":
                problems.add(capture.reason)
            continue
        end_counts.append(capture.end_count)
        growth.append(capture.growth)
        if with_profiles:
            by_start.append(_growth_by_start(record, rep, capture.start_file, capture.end_file, problems))
    return GoroutineSide(end_counts=tuple(end_counts), growth=tuple(growth), growth_by_start=tuple(by_start),
                         problems=tuple(sorted(problems)))


def _growth_by_start(record: RunRecord, rep: Repetition, start_file: str | None, end_file: str | None,
                     problems: set[str]) -> Mapping[str, int]:
    counts = []
    for name, file in (("start_file", start_file), ("end_file", end_file)):
        if not file:
            return MappingProxyType({})
        try:
            counts.append(goroutine_starts(_read_bytes(record, rep, file, f"goroutines.{name}"),
                                           name=str(record.file(file))))
        except ProfileError as error:
            problems.add(f"goroutine profile unavailable: {error.message}")
            return MappingProxyType({})
    start, end = counts
    return MappingProxyType({name: end[name] - start[name] for name in start.keys() | end.keys()
                             if end[name] != start[name]})


def _read(record: RunRecord, rep: Repetition, file: str, kind: LayerKind, field: str) -> Profile:
    return parse_layer(_read_bytes(record, rep, file, field), kind, name=str(record.file(file)), call_sites=True)


def _read_bytes(record: RunRecord, rep: Repetition, file: str, field: str) -> bytes:
    where = f"repetitions[{record.repetitions.index(rep)}].{field}"
    try:
        return record.read_file(file, field=where, limit=MAX_PROFILE_BYTES)
    except FileNotFoundError:
        raise ProfileError(f"{file} is missing from the record") from None


def calls_in_window(rep: Repetition, capture: LayerCapture) -> float:
    """OK calls served while the delta profile ran: the load's OK rate times the profile's duration."""
    if rep.load is None or not rep.load.total_ns or not capture.duration_ns:
        return 0.0
    return rep.load.ok_count * min(capture.duration_ns / rep.load.total_ns, 1.0)


def all_layer_sides(record: RunRecord, reps: tuple[Repetition, ...], *,
                    with_profiles: bool = True) -> Mapping[str, LayerSide]:
    return MappingProxyType({name: layer_side(record, reps, kind, with_profiles=with_profiles)
                             for name, kind in DELTA_KINDS.items()})


__all__ = ["PER_REQUEST_FACTOR", "PER_REQUEST_UNIT", "GoroutineSide", "LayerSide", "all_layer_sides",
           "calls_in_window", "goroutine_side", "layer_side"]

"""Read what the gate needs out of two records, once: parsed profiles, run-queue stats, derived per-repetition
values (CPU per request), and how the two sides pair up. metrics.py reads each metric's values from these.

This is the I/O half of comparing (profiles are files in the record folders); gate.decide is the
pure half that turns these inputs and the policy into a Verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from perfgate.capture.contention import ContentionWindow
from perfgate.capture.runq import RunqStats
from perfgate.compare.layers import GoroutineSide, LayerSide, all_layer_sides, goroutine_side
from perfgate.errors import ProfileError
from perfgate.profile.model import Profile
from perfgate.profile.parse import MAX_PROFILE_BYTES, parse_profile
from perfgate.record import RunRecord
from perfgate.record_parts import Repetition


@dataclass(frozen=True)
class ProbeCpu:
    """A CPU profile over capacity probes of one phase, and the OK calls those probes served (all inside it)."""

    phase: str
    profile: Profile
    ok_calls: int


@dataclass(frozen=True)
class SideInputs:
    """One side's per-repetition values (only repetitions whose load finished count)."""

    record: RunRecord
    calls: int
    errors: int
    cpu_per_request_us: tuple[float, ...]  # from the profiles: 100 Hz samples over the profile window
    process_cpu_per_request_us: tuple[float, ...]  # from /proc CPU time over the whole window: exact
    profiles: tuple[Profile, ...]
    profile_files: tuple[str, ...]
    profile_ok_calls: tuple[float, ...]
    profile_process_cpu_us: tuple[float | None, ...]  # per profile: its repetition's process CPU per request
    runq: tuple[RunqStats, ...]
    contention: tuple[tuple[int, ContentionWindow | None], ...] = ()  # (repetition index, its figures)
    capacity_rps: tuple[float, ...] = ()  # the capacity probes of the repetition pairs, in order (duet, automatic rate)
    probe_cpu: tuple[ProbeCpu, ...] = ()  # the capacity probes' CPU profiles (duet, automatic rate)
    cpu_problems: tuple[str, ...] = ()
    probe_cpu_problems: tuple[str, ...] = ()  # why a probe profile was left out (the movers' test goes on without)
    runq_problems: tuple[str, ...] = ()
    layers: Mapping[str, LayerSide] = field(default_factory=dict)  # allocs, mutex, block (compare/layers.py)
    goroutines: GoroutineSide = GoroutineSide((), (), ())

    @property
    def layer_problems(self) -> tuple[str, ...]:
        return tuple(p for side in (*self.layers.values(), self.goroutines) for p in side.problems)

    @property
    def repetitions(self) -> int:
        """Repetitions whose load finished with a measured duration."""
        return sum(1 for rep in self.record.ok_repetitions if rep.load.total_ns)


def repetition_pairs(base: SideInputs, cand: SideInputs) -> int | None:
    """How many repetition pairs the sides form, or None when their values are not paired.

    Paired: both records come from one interleaved run (same pairing_id) and every repetition finished on
    both sides, so value i of a metric on one side was measured next to (or, in duet, with) value i on the other.
    """
    if not same_run(base, cand):
        return None
    indices = [rep.index for rep in base.record.repetitions]
    same_repetitions = indices == [rep.index for rep in cand.record.repetitions]
    all_finished = base.repetitions == cand.repetitions == len(indices)
    return len(indices) if same_repetitions and all_finished else None


def capacity_pairs(base: SideInputs, cand: SideInputs) -> int | None:
    """How many capacity pairs the sides form (probe i of one side was taken next to probe i of the other), or None."""
    if not same_run(base, cand) or len(base.capacity_rps) != len(cand.capacity_rps) or not base.capacity_rps:
        return None
    return len(base.capacity_rps)


def same_run(base: SideInputs, cand: SideInputs) -> bool:
    """Both records come from one interleaved run (they share its pairing_id)."""
    pairing = base.record.load_settings.get("pairing_id")
    return pairing is not None and pairing == cand.record.load_settings.get("pairing_id")


@dataclass(frozen=True)
class ComparisonInputs:
    baseline: SideInputs | None
    candidate: SideInputs
    notes: tuple[str, ...] = field(default=())
    history: tuple[SideInputs, ...] = ()  # earlier records of the baseline build (run-to-run noise)
    baseline_source: str | None = None  # "artifact", "path" or "records" when the baseline came from another run


def load_inputs(baseline: RunRecord | None, candidate: RunRecord, history: tuple[RunRecord, ...] = (), *,
                notes: tuple[str, ...] = (), baseline_source: str | None = None) -> ComparisonInputs:
    return ComparisonInputs(baseline=side_inputs(baseline) if baseline else None, candidate=side_inputs(candidate),
                            notes=notes, history=tuple(side_inputs(record, detail=False) for record in history),
                            baseline_source=baseline_source)


def side_inputs(record: RunRecord, *, detail: bool = True) -> SideInputs:
    """detail=False (history records: only their medians count) leaves out the layers' profiles."""
    reps = record.ok_repetitions
    profiles, files, ok_calls, profile_process, cpu_per_request, cpu_problems = _cpu(record, reps)
    process_cpu_per_request = tuple(value for rep in reps if (value := process_cpu_us(rep)) is not None)
    runq = tuple(rep.runq.stats for rep in reps if rep.runq.stats is not None)
    runq_problems = tuple(sorted({rep.runq.reason for rep in reps if rep.runq.reason}))
    probe_cpu, probe_cpu_problems = _probe_cpu(record) if detail else ((), ())
    return SideInputs(
        record=record, calls=sum(rep.load.count for rep in reps), errors=sum(rep.load.error_count for rep in reps),
        cpu_per_request_us=cpu_per_request, process_cpu_per_request_us=process_cpu_per_request,
        profiles=profiles, profile_files=files, profile_ok_calls=ok_calls, profile_process_cpu_us=profile_process,
        runq=runq, contention=tuple((rep.index, rep.contention) for rep in reps),
        cpu_problems=cpu_problems, runq_problems=runq_problems,
        capacity_rps=tuple(probe.ok_rps for probe in record.capacity_probes if probe.phase == "pair"),
        probe_cpu=probe_cpu, probe_cpu_problems=probe_cpu_problems,
        layers=all_layer_sides(record, reps, with_profiles=detail),
        goroutines=goroutine_side(record, reps, with_profiles=detail))


def process_cpu_us(rep: Repetition) -> float | None:
    """The service's CPU per OK call over the repetition's load window, from its CPU clock; None unknown."""
    if not rep.service_cpu_ns or not rep.load or not rep.load.ok_count:
        return None
    return rep.service_cpu_ns / rep.load.ok_count / 1e3


def _cpu(record: RunRecord, reps: tuple[Repetition, ...]) -> tuple:
    profiles, files, ok_calls, process, per_request, problems = [], [], [], [], [], set()
    for rep in reps:
        if rep.cpu.status != "ok" or not rep.cpu.file:
            if rep.cpu.reason and rep.cpu.status != "disabled":
                problems.add(rep.cpu.reason)
            continue
        profile = _read_profile(record, rep.cpu.file, f"repetitions[{record.repetitions.index(rep)}].cpu.file")
        if isinstance(profile, str):
            problems.add(f"cpu profile unavailable: {profile}")
            continue
        calls = calls_during_profile(rep, profile)
        profiles.append(profile)
        files.append(str(record.file(rep.cpu.file)))
        ok_calls.append(calls)
        process.append(process_cpu_us(rep))
        if (own := profile_cpu_per_request_us(profile, calls)) is not None:
            per_request.append(own)
    return (tuple(profiles), tuple(files), tuple(ok_calls), tuple(process), tuple(per_request),
            tuple(sorted(problems)))


def _read_profile(record: RunRecord, file: str, field: str) -> Profile | str:
    """A profile of the record's, or why it cannot be read (`field` names it in an error about its path)."""
    try:
        return parse_profile(record.read_file(file, field=field, limit=MAX_PROFILE_BYTES), name=str(record.file(file)))
    except FileNotFoundError:
        return f"{file} is missing from the record"
    except ProfileError as error:
        return error.message


def _probe_cpu(record: RunRecord) -> tuple[tuple[ProbeCpu, ...], tuple[str, ...]]:
    """The record's usable probe profiles (status ok, naming probes of their phase that no other profile names),
    and why the others were left out: these only add samples to the movers' test."""
    probes = {probe.index: probe for probe in record.capacity_probes}
    claimed: set[int] = set()
    found, left_out = [], defaultdict(list)
    for i, entry in enumerate(record.probe_profiles):
        covered = [probes.get(index) for index in entry.probes]
        if entry.cpu.status != "ok" or not entry.cpu.file:
            if entry.cpu.reason and entry.cpu.status != "disabled":
                left_out[entry.cpu.reason].append(i + 1)
            continue
        if not covered or claimed.intersection(entry.probes) or any(
                probe is None or probe.phase != entry.phase for probe in covered):
            left_out["it does not name probes of its phase that no other profile names"].append(i + 1)
            continue
        claimed.update(entry.probes)
        profile = _read_profile(record, entry.cpu.file, f"probe_profiles[{i}].cpu.file")
        if isinstance(profile, str):
            left_out[profile].append(i + 1)
        else:
            found.append(ProbeCpu(entry.phase, profile, sum(probe.load.ok_count for probe in covered if probe)))
    problems = tuple(f"capacity probes' profile{'s' * (len(n) > 1)} {', '.join(map(str, n))} of "
                     f"{len(record.probe_profiles)} left out: {reason}" for reason, n in left_out.items())
    return tuple(found), problems


def calls_during_profile(rep: Repetition, profile: Profile) -> float:
    """OK calls served while the profile ran: the load's OK rate times the profile's duration."""
    if not rep.load.total_ns or not profile.duration_ns:
        return 0.0
    return rep.load.ok_count * min(profile.duration_ns / rep.load.total_ns, 1.0)


def profile_cpu_per_request_us(profile: Profile, calls: float) -> float | None:
    """The CPU time a profile recorded per OK call served while it ran, in µs (the one place that divides
    a profile by its calls); None without calls or when its samples are not a time."""
    total_ns = profile.total_ns
    return None if total_ns is None or calls <= 0 else total_ns / calls / 1e3

"""`perfgate profile diff BASE CAND`: where the CPU moved, per function.

Two profiles: the figures of `go tool pprof -diff_base=BASE -normalize -top CAND` (google/pprof's
fetch.go): the candidate's samples are scaled one by one to the base's total (Profile.Normalize then
ScaleN: round(value * base_sum / cand_sum), halves away from zero), the base's are subtracted, and
percentages are of the base's total. tests check it against the real `go tool pprof` on real profiles.

Two run records: CPU per request, per function, on each side and the change: the profiles of the OK
repetitions added up, divided by the OK calls served while each profile ran (compare/inputs.py
`calls_during_profile`). Work per request needs no normalizing: it is what a regression changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from perfgate.capture.pprof import CpuProfile, FunctionCost, parse_profile, render_top, time_unit_ns
from perfgate.errors import ProfileError
from perfgate.record import RunRecord


def normalized_diff(base_file: Path, candidate_file: Path) -> CpuProfile:
    """CAND - BASE like pprof's -diff_base -normalize: a CpuProfile whose costs are the (signed) changes."""
    base = parse_profile(base_file)
    candidate = parse_profile(candidate_file)
    if base.sample_types != candidate.sample_types or base.period_type != candidate.period_type:
        raise ProfileError(f"{candidate_file} and {base_file} are not the same kind of profile "
                           f"({candidate.sample_types} vs {base.sample_types}); pprof refuses to diff them too")
    ratio = base.value_sum / candidate.value_sum if candidate.value_sum else 0.0
    if ratio != 1.0:
        candidate = parse_profile(candidate_file, scale=ratio)
    functions = {}
    for name in base.functions.keys() | candidate.functions.keys():
        before, after = base.cost(name), candidate.cost(name)
        functions[name] = FunctionCost(after.flat - before.flat, after.cum - before.cum)
    return replace(base, name=f"{candidate.name} - {base.name} (candidate scaled by {ratio:.4g})",
                   functions=MappingProxyType(functions), duration_ns=0)


def render_profile_diff(base_file: Path, candidate_file: Path, *, as_json: bool) -> str:
    """pprof's -top table of the change (percentages of the base's total), or JSON [{function, flat, cum}]."""
    return render_top(normalized_diff(base_file, candidate_file), as_json=as_json)


@dataclass(frozen=True)
class PerRequestChange:
    """One function's CPU per request (µs) on each side; flat and cum as in `profile top`."""

    function: str
    base_flat_us: float
    base_cum_us: float
    candidate_flat_us: float
    candidate_cum_us: float

    @property
    def flat_change_us(self) -> float:
        return self.candidate_flat_us - self.base_flat_us

    @property
    def cum_change_us(self) -> float:
        return self.candidate_cum_us - self.base_cum_us


def per_request_changes(base: RunRecord, candidate: RunRecord) -> tuple[PerRequestChange, ...]:
    """Per function, CPU per request on both sides, sorted like pprof -top (|flat change|, name, |cum change|)."""
    before, after = _per_request(base), _per_request(candidate)
    rows = [PerRequestChange(name, *before.get(name, (0.0, 0.0)), *after.get(name, (0.0, 0.0)))
            for name in before.keys() | after.keys()]
    return tuple(sorted(rows, key=lambda r: (-abs(r.flat_change_us), r.function, -abs(r.cum_change_us))))


def _per_request(record: RunRecord) -> dict[str, tuple[float, float]]:
    from perfgate.compare.inputs import side_inputs

    side = side_inputs(record)
    calls = sum(side.profile_ok_calls)
    if not side.profiles or calls <= 0:
        raise ProfileError(f"{record.path}: no CPU profile of an OK repetition with OK calls during it "
                           f"({'; '.join(side.cpu_problems) or 'none captured'})",
                           hint="measure with cpu.pprof_url set (see `perfgate doctor`)")
    flat: dict[str, float] = {}
    cum: dict[str, float] = {}
    for profile in side.profiles:
        factor = time_unit_ns(profile.unit)
        if factor is None:
            raise ProfileError(f"{profile.name}: sample unit {profile.unit!r} is not a time; not a CPU profile")
        for name, cost in profile.functions.items():
            flat[name] = flat.get(name, 0.0) + cost.flat * factor
            cum[name] = cum.get(name, 0.0) + cost.cum * factor
    return {name: (flat[name] / calls / 1e3, cum[name] / calls / 1e3) for name in flat}


def render_per_request(rows: tuple[PerRequestChange, ...], *, as_json: bool) -> str:
    if as_json:
        return json.dumps([{"function": r.function, "flat_us": r.flat_change_us, "cum_us": r.cum_change_us,
                            "base_flat_us": r.base_flat_us, "base_cum_us": r.base_cum_us,
                            "candidate_flat_us": r.candidate_flat_us, "candidate_cum_us": r.candidate_cum_us}
                           for r in rows], indent=2, ensure_ascii=False)
    lines = ["CPU per request by function, µs (candidate - baseline; flat and cum as in `go tool pprof -top`)",
             f"{'flat Δ':>10s} {'cum Δ':>10s} {'base cum':>10s} {'cand cum':>10s}  function"]
    lines += [f"{r.flat_change_us:>+10.2f} {r.cum_change_us:>+10.2f} {r.base_cum_us:>10.2f} "
              f"{r.candidate_cum_us:>10.2f}  {r.function}" for r in rows]
    return "\n".join(lines)

"""Functions that moved, for the report: a profile diff per request, tested and ranked, shares beside.

The CPU's functions are compared in µs of CPU per request: each repetition's profile is scaled so its
total is that repetition's measured CPU per request (the service's CPU clock over the load window, or
the profile's own samples when the clock is not known on both sides). A function whose work did not
change keeps its cost per request however much another one grows, where its share would fall. The
delta profiles below the CPU (allocations, lock and block delay) are scaled by the OK calls of their
window. Shares stay as the secondary view. A mover is named only when compare/movers.py finds its
change significant over the family of functions tested, in which the service's own functions (profile/origin.py)
carry more of the weight.

`perfgate profile diff` of two run records prints CPU per request by function on each side: the profiles
of the OK repetitions added up, divided by the OK calls served while each profile ran
(compare/inputs.py `calls_during_profile`). Work per request needs no normalizing: it is what a
regression changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from perfgate.compare.comparison import FunctionMove
from perfgate.compare.inputs import ProbeCpu, SideInputs, profile_cpu_per_request_us, side_inputs
from perfgate.compare.movers import MoverTest, SampledRows, count_test, mover_family, mover_test
from perfgate.compare.profile import SHARE_UNIT, FunctionDiff, ProfileDiff, diff_profiles
from perfgate.errors import ProfileError
from perfgate.profile.model import Profile
from perfgate.profile.origin import is_service_code
from perfgate.profile.units import time_unit_ns
from perfgate.record import RunRecord

TOP_MOVERS = 10
PROCESS_CPU, PROFILE_SAMPLES = "process CPU time", "CPU profile samples"


@dataclass(frozen=True)
class Moves:
    """Risers and fallers (largest change first, at most TOP_MOVERS each), the family size tested and how many of
    it are the service's own functions."""

    unit: str
    risers: tuple[FunctionMove, ...]
    fallers: tuple[FunctionMove, ...]
    tested: int
    own: int = 0
    probe_profiles: int = 0  # capacity probe profiles (both sides) the count test added as strata


@dataclass(frozen=True)
class ScaledProfiles:
    """One side's profiles with each one's scale to the view's unit per request (see diff_profiles)."""

    profiles: tuple[Profile, ...]
    scales: tuple[float, ...]


def per_request_cpu(profiles: Sequence[Profile], ok_calls: Sequence[float],
                    process_cpu_us: Sequence[float | None], *, use_process: bool) -> ScaledProfiles:
    """Scales that make each profile's total its repetition's CPU µs per request: the process CPU clock's
    figure (use_process) or the profile's own time divided by the OK calls it saw. Profiles without calls,
    without a time unit or with an empty total are left out."""
    kept, scales = [], []
    for profile, calls, process in zip(profiles, ok_calls, process_cpu_us, strict=True):
        own = profile_cpu_per_request_us(profile, calls)
        if not profile.total or own is None:
            continue
        per_request_us = process if use_process else own
        if per_request_us is None:
            continue
        kept.append(profile)
        scales.append(per_request_us / profile.total)
    return ScaledProfiles(tuple(kept), tuple(scales))


def cpu_per_request_sides(base: SideInputs, cand: SideInputs) -> tuple[ScaledProfiles, ScaledProfiles, str] | None:
    """Both sides' CPU profiles scaled to µs of CPU per request from one source (the process CPU clock when
    every profiled repetition of both sides has it, else the profiles' own samples), and that source; None
    when a side has no profile with calls."""
    use_process = all(v is not None for v in (*base.profile_process_cpu_us, *cand.profile_process_cpu_us))
    sides = [per_request_cpu(s.profiles, s.profile_ok_calls, s.profile_process_cpu_us, use_process=use_process)
             for s in (base, cand)]
    if not sides[0].profiles or not sides[1].profiles:
        return None
    return sides[0], sides[1], PROCESS_CPU if use_process else PROFILE_SAMPLES


def moves(baseline: ScaledProfiles, candidate: ScaledProfiles, *, unit: str, alpha: float,
          sampled_cpu: bool = False, probes: tuple[Sequence[ProbeCpu], Sequence[ProbeCpu]] = ((), ())) -> Moves:
    """The per-request diff's risers and fallers, each with its shares beside and its significance: by the count
    test for CPU profiles (sampled_cpu: their values are samples times the sampling period), by Welch's t on
    square roots for the layers below the CPU (bytes and delays, whose samples differ in size).
    probes: both sides' capacity probe profiles, which the count test adds as one stratum per phase."""
    per_request = diff_profiles(baseline.profiles, candidate.profiles, baseline_scales=baseline.scales,
                                candidate_scales=candidate.scales, unit=unit)
    shares = diff_profiles(baseline.profiles, candidate.profiles, rank=False)
    family = mover_family(shares.functions)
    own = service_functions((*baseline.profiles, *candidate.profiles))
    if not sampled_cpu:
        return moves_of(per_request, mover_test(per_request.functions, family=family, transform="per_request",
                                                own=own), alpha, shares=shares)
    rows = [f for f in per_request.functions if f.function in family]
    names = [f.function for f in rows]
    strata = probe_strata(names, *probes)
    tested = count_test(names, _sampled(baseline, [f.baseline_cum for f in rows]),
                        _sampled(candidate, [f.candidate_cum for f in rows]), own=own, strata=strata)
    found = moves_of(per_request, tested, alpha, shares=shares)
    return replace(found, probe_profiles=sum(len(b.exposure) + len(c.exposure) for b, c in strata))


def probe_strata(names: Sequence[str], baseline: Sequence[ProbeCpu], candidate: Sequence[ProbeCpu]
                 ) -> list[tuple[SampledRows, SampledRows]]:
    """Per phase both sides profiled: each named function's samples in each probe profile, whose exposure is its
    OK calls per sampling period (so that counts / exposure is CPU time per call)."""
    phases = sorted({p.phase for p in baseline} & {p.phase for p in candidate})
    return [tuple(_probe_rows(names, [p for p in side if p.phase == phase]) for side in (baseline, candidate))
            for phase in phases]


def _probe_rows(names: Sequence[str], profiles: Sequence[ProbeCpu]) -> SampledRows:
    kept = [(p, unit_ns) for p in profiles
            if p.ok_calls > 0 and p.profile.period > 0 and (unit_ns := time_unit_ns(p.profile.unit))]
    counts = [[_cum(p.profile, name) / p.profile.period for p, _ in kept] for name in names]
    return SampledRows(counts, [p.ok_calls / (p.profile.period * unit_ns) for p, unit_ns in kept])


def _cum(profile: Profile, name: str) -> float:
    cost = profile.functions.get(name)
    return float(cost.cum) if cost is not None else 0.0


def service_functions(profiles: Sequence[Profile]) -> frozenset[str]:
    """The functions some profile names a source file of the service's own code for (profile/origin.py)."""
    return frozenset(name for profile in profiles for name, file in profile.files.items()
                     if is_service_code(name, file))


def _sampled(side: ScaledProfiles, per_request: Sequence[Sequence[float]]) -> SampledRows:
    """Per-request figures back as the profiles' sample counts; a repetition's exposure is its samples per µs of
    CPU per request (1 / (scale x sampling period)), so that counts / exposure is the per-request figure."""
    exposure = [1.0 / (scale * (profile.period or 1)) for profile, scale in zip(side.profiles, side.scales,
                                                                                 strict=True)]
    return SampledRows([[value * x for value, x in zip(row, exposure, strict=True)] for row in per_request],
                       exposure)


def share_moves(baseline: Sequence[Profile], candidate: Sequence[Profile], *, alpha: float) -> Moves:
    """The same in shares of each profile, when no per-request figure is known."""
    shares = diff_profiles(baseline, candidate)
    return moves_of(shares, mover_test(shares.functions, own=service_functions((*baseline, *candidate))), alpha)


def moves_of(diff: ProfileDiff, tested: MoverTest, alpha: float, *, shares: ProfileDiff | None = None) -> Moves:
    """The diff's risers and fallers as FunctionMoves with their test; `shares`: the share view beside."""
    by_name = {f.function: f for f in diff.functions}
    share_of = {f.function: f for f in shares.functions} if shares is not None and shares is not diff else {}

    def move(name: str) -> FunctionMove:
        return _move(by_name[name], share_of.get(name), diff.unit, tested, alpha)

    return Moves(unit=diff.unit, risers=tuple(move(r.function) for r in diff.risers[:TOP_MOVERS]),
                 fallers=tuple(move(name) for name in diff.fallers[:TOP_MOVERS]), tested=tested.tested,
                 own=tested.own)


def _move(diff: FunctionDiff, share: FunctionDiff | None, unit: str, tested: MoverTest, alpha: float
          ) -> FunctionMove:
    p_adjusted = tested.p_adjusted.get(diff.function)
    return FunctionMove(function=diff.function, kind="cum", unit=unit, baseline=diff.baseline_cum_median,
                        candidate=diff.candidate_cum_median, change=diff.cum_change, rel_change=diff.cum_rel_change,
                        p_value=tested.p_values.get(diff.function), status=diff.status, p_adjusted=p_adjusted,
                        significant=p_adjusted is not None and p_adjusted < alpha,
                        baseline_share_pct=share.baseline_cum_median if share else None,
                        candidate_share_pct=share.candidate_cum_median if share else None)


# ---------------------------------------------------------------- `perfgate profile diff BASE_RECORD CAND_RECORD`
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


__all__ = ["PROCESS_CPU", "PROFILE_SAMPLES", "SHARE_UNIT", "TOP_MOVERS", "FunctionMove", "Moves", "ScaledProfiles",
           "PerRequestChange", "cpu_per_request_sides", "moves", "moves_of", "per_request_changes", "per_request_cpu",
           "render_per_request", "service_functions", "share_moves"]

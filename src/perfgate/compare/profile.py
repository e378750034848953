"""Baseline vs candidate CPU profiles: how each function's share of the CPU moved.

Each repetition's profile gives every function a share of that repetition's CPU (flat and cum,
in % of the profile's total). Per function this module reports the per-repetition shares, their
medians on each side, the change in percentage points and relative, and a two-sided
Mann-Whitney U p-value over the per-repetition shares (docs/statistics.md, "CPU profile diff",
explains the choices). It also names the functions that appeared or vanished, ranks the
risers, and computes CPU per request when the OK call counts are given.

Pure: CpuProfile records in, a frozen ProfileDiff out (to_dict() for JSON).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from perfgate.capture.pprof import CpuProfile, match_functions

CHANGED, APPEARED, VANISHED = "changed", "appeared", "vanished"

# Attribution of risers (see rank_risers): a function is folded into a caller that is on the
# stack in at least DOMINANCE of its CPU time and of which it makes up at least CORE_FRACTION;
# a caller is explained by a descendant riser carrying at least EXPLAINED_FRACTION of its rise.
DOMINANCE = 0.95
CORE_FRACTION = 0.5
EXPLAINED_FRACTION = 0.5
# Risers examined for attribution (the rest are ranked without it: it needs the stacks).
ATTRIBUTION_CANDIDATES = 40


@dataclass(frozen=True)
class FunctionShareDiff:
    """One function's share of CPU (% of each profile's total) on both sides.

    *_shares_pct hold one value per repetition, in the order the profiles were given (0 where
    the function was not sampled). *_share_pct are their medians; change_pp is candidate minus
    baseline median in percentage points; rel_change is candidate/baseline - 1 (a fraction, None
    when the baseline median is 0); p-values are two-sided Mann-Whitney U over the per-repetition
    shares (None with fewer than one repetition a side).
    """

    function: str
    status: str  # "changed" (sampled on both sides) | "appeared" | "vanished"
    baseline_flat_shares_pct: tuple[float, ...]
    candidate_flat_shares_pct: tuple[float, ...]
    baseline_cum_shares_pct: tuple[float, ...]
    candidate_cum_shares_pct: tuple[float, ...]
    baseline_flat_share_pct: float
    candidate_flat_share_pct: float
    baseline_cum_share_pct: float
    candidate_cum_share_pct: float
    flat_change_pp: float
    cum_change_pp: float
    flat_rel_change: float | None
    cum_rel_change: float | None
    flat_p_value: float | None
    cum_p_value: float | None

    @property
    def p_value(self) -> float | None:
        """The cum share's p-value (cum is what the risers are ranked by)."""
        return self.cum_p_value

    def to_dict(self) -> dict:
        return {name: _json_number(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Riser:
    """A function whose cum share rose, with the rises attributed to it.

    explains lists the other rising functions whose rise is this one's: helpers it calls that
    make up most of it (their CPU is its CPU) and callers whose rise it carries.
    """

    function: str
    cum_change_pp: float
    explains: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"function": self.function, "cum_change_pp": self.cum_change_pp, "explains": list(self.explains)}


@dataclass(frozen=True)
class CpuPerRequest:
    """Profile CPU time divided by the OK calls served in the same window, per repetition."""

    baseline_ns: tuple[float, ...]
    candidate_ns: tuple[float, ...]
    baseline_median_ns: float
    candidate_median_ns: float
    rel_change: float | None
    p_value: float | None

    def to_dict(self) -> dict:
        return {name: _json_number(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ProfileDiff:
    """Everything the report and the gate need about how the CPU moved between the sides.

    functions: every function sampled on either side, sorted by cum_change_pp (largest rise
    first), then name. risers: rising functions after attribution, largest rise first.
    fallers: functions whose median cum share fell, largest fall first.
    """

    unit: str
    baseline_totals: tuple[int, ...]
    candidate_totals: tuple[int, ...]
    functions: tuple[FunctionShareDiff, ...]
    appeared: tuple[str, ...]
    vanished: tuple[str, ...]
    risers: tuple[Riser, ...]
    fallers: tuple[str, ...]
    cpu_per_request: CpuPerRequest | None

    def function(self, name: str) -> FunctionShareDiff | None:
        return next((diff for diff in self.functions if diff.function == name), None)

    def select(self, pattern: str) -> tuple[FunctionShareDiff, ...]:
        """The functions a rule pattern names (glob, or re:REGEX; see match_functions)."""
        chosen = set(match_functions(pattern, [diff.function for diff in self.functions]))
        return tuple(diff for diff in self.functions if diff.function in chosen)

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "baseline_totals": list(self.baseline_totals),
            "candidate_totals": list(self.candidate_totals),
            "functions": [diff.to_dict() for diff in self.functions],
            "appeared": list(self.appeared),
            "vanished": list(self.vanished),
            "risers": [riser.to_dict() for riser in self.risers],
            "fallers": list(self.fallers),
            "cpu_per_request": self.cpu_per_request.to_dict() if self.cpu_per_request else None,
        }


def diff_profiles(baseline: Sequence[CpuProfile], candidate: Sequence[CpuProfile], *,
                  ok_calls_baseline: Sequence[float] | None = None,
                  ok_calls_candidate: Sequence[float] | None = None) -> ProfileDiff:
    """Compare per-function CPU shares of two sets of repetitions (one profile per repetition).

    ok_calls_* (one count per profile, the OK calls served while it was recorded) turn on the
    CPU-per-request metric; repetitions with no OK calls are left out of it.
    """
    if not baseline or not candidate:
        raise ValueError("diff_profiles needs at least one profile on each side")
    units = {profile.unit for profile in (*baseline, *candidate)}
    if len(units) != 1:
        raise ValueError(f"profiles with different units cannot be compared: {sorted(units)}")
    names = sorted(set().union(*(profile.functions for profile in (*baseline, *candidate))))
    shares = {side: {kind: _share_matrix(profiles, names, kind) for kind in ("flat", "cum")}
              for side, profiles in (("baseline", baseline), ("candidate", candidate))}
    p_values = {kind: _mann_whitney(shares["baseline"][kind], shares["candidate"][kind]) for kind in ("flat", "cum")}
    diffs = [_function_diff(name, row, shares, p_values) for row, name in enumerate(names)]
    diffs.sort(key=lambda diff: (-diff.cum_change_pp, diff.function))
    return ProfileDiff(
        unit=units.pop(),
        baseline_totals=tuple(profile.total for profile in baseline),
        candidate_totals=tuple(profile.total for profile in candidate),
        functions=tuple(diffs),
        appeared=tuple(sorted(diff.function for diff in diffs if diff.status == APPEARED)),
        vanished=tuple(sorted(diff.function for diff in diffs if diff.status == VANISHED)),
        risers=rank_risers(diffs, (*baseline, *candidate)),
        fallers=tuple(diff.function for diff in sorted(diffs, key=lambda d: (d.cum_change_pp, d.function))
                      if diff.cum_change_pp < 0),
        cpu_per_request=cpu_per_request(baseline, candidate, ok_calls_baseline, ok_calls_candidate),
    )


def _share_matrix(profiles: Sequence[CpuProfile], names: Sequence[str], kind: str) -> np.ndarray:
    """functions x repetitions, in % of each profile's total (0 for an empty profile)."""
    matrix = np.zeros((len(names), len(profiles)))
    index = {name: row for row, name in enumerate(names)}
    for column, profile in enumerate(profiles):
        if not profile.total:
            continue
        for name, cost in profile.functions.items():
            matrix[index[name], column] = 100.0 * getattr(cost, kind) / profile.total
    return matrix


def _mann_whitney(baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney U p-value per row; 1 where both sides are all equal.

    scipy's method="auto" picks one method for a whole 2-D call (asymptotic as soon as any row
    has ties), so rows are split the way "auto" decides for a single row: the exact
    distribution without ties when a side has at most 8 values, else the normal approximation.
    """
    p_values = np.ones(baseline.shape[0])
    if baseline.shape[0] == 0:
        return p_values
    ordered = np.sort(np.concatenate([baseline, candidate], axis=1), axis=1)
    has_ties = (np.diff(ordered, axis=1) == 0).any(axis=1)
    small = min(baseline.shape[1], candidate.shape[1]) <= 8
    for rows, method in ((~has_ties, "exact" if small else "asymptotic"), (has_ties, "asymptotic")):
        if rows.any():
            with np.errstate(all="ignore"):
                result = stats.mannwhitneyu(candidate[rows], baseline[rows], alternative="two-sided", axis=1,
                                            method=method)
            p_values[rows] = np.nan_to_num(np.asarray(result.pvalue, dtype=float), nan=1.0)
    return p_values


def _function_diff(name: str, row: int, shares: Mapping[str, Mapping[str, np.ndarray]],
                   p_values: Mapping[str, np.ndarray]) -> FunctionShareDiff:
    base_flat, cand_flat = shares["baseline"]["flat"][row], shares["candidate"]["flat"][row]
    base_cum, cand_cum = shares["baseline"]["cum"][row], shares["candidate"]["cum"][row]
    in_base, in_cand = bool(base_cum.any() or base_flat.any()), bool(cand_cum.any() or cand_flat.any())
    status = CHANGED if in_base and in_cand else (APPEARED if in_cand else VANISHED)
    medians = {key: float(np.median(values)) for key, values in
               (("bf", base_flat), ("cf", cand_flat), ("bc", base_cum), ("cc", cand_cum))}
    return FunctionShareDiff(
        function=name, status=status,
        baseline_flat_shares_pct=_rounded(base_flat), candidate_flat_shares_pct=_rounded(cand_flat),
        baseline_cum_shares_pct=_rounded(base_cum), candidate_cum_shares_pct=_rounded(cand_cum),
        baseline_flat_share_pct=medians["bf"], candidate_flat_share_pct=medians["cf"],
        baseline_cum_share_pct=medians["bc"], candidate_cum_share_pct=medians["cc"],
        flat_change_pp=medians["cf"] - medians["bf"], cum_change_pp=medians["cc"] - medians["bc"],
        flat_rel_change=_relative(medians["bf"], medians["cf"]),
        cum_rel_change=_relative(medians["bc"], medians["cc"]),
        flat_p_value=float(p_values["flat"][row]), cum_p_value=float(p_values["cum"][row]))


def _rounded(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


def _relative(baseline: float, candidate: float) -> float | None:
    return None if baseline == 0 else candidate / baseline - 1.0


# --------------------------------------------------------------------------------------------
# Risers


def rank_risers(diffs: Sequence[FunctionShareDiff], profiles: Iterable[CpuProfile]) -> tuple[Riser, ...]:
    """Rising functions (median cum share up), largest rise first, with rises attributed.

    A cum share rise shows on a whole call chain at once: the function that got costlier, the
    helpers it calls more (often with a slightly larger rise, as their base share is smaller),
    and every caller up to main (with a smaller, noisier rise, diluted by their other callees).
    Attribution folds that chain into one entry, using the call stacks of all repetitions:

    1. a rising function whose CPU happens at least 95 % of the time under one rising caller,
       and makes up at least half of that caller's CPU, is part of the caller (a helper): it
       is listed in the caller's `explains` instead of on its own;
    2. a rising caller with a rising descendant that is under it 95 % of the time and carries
       at least half of its rise is explained by that descendant and listed in its `explains`,
       unless the caller's own code (its flat share) accounts for half of its rise or more.

    The conditions rest mostly on sizes and call structure, which noise moves little, not on
    the small differences between rises. See docs/statistics.md, "CPU profile diff".
    """
    rising = [diff for diff in diffs if diff.cum_change_pp > 0]
    rising.sort(key=lambda diff: (-diff.cum_change_pp, diff.function))
    candidates = {diff.function: diff for diff in rising[:ATTRIBUTION_CANDIDATES]}
    if len(candidates) < 2:
        return tuple(Riser(diff.function, diff.cum_change_pp) for diff in rising)
    graph = _AncestryTable(profiles, candidates)
    owner: dict[str, str] = {}  # function -> the riser its rise is attributed to
    for name in candidates:  # step 1: helpers into the caller they are part of
        caller = _enclosing_caller(name, candidates, graph)
        if caller is not None:
            owner[name] = caller
    for name in candidates:  # step 2: callers into the descendant that carries their rise
        if name in owner:
            continue
        carrier = _carrying_descendant(name, candidates, owner, graph)
        if carrier is not None:
            owner[name] = carrier
    explained: dict[str, list[str]] = defaultdict(list)
    for name in candidates:
        root = _root(name, owner)
        if root != name:
            explained[root].append(name)
    return tuple(Riser(diff.function, diff.cum_change_pp, tuple(explained.get(diff.function, ())))
                 for diff in rising if diff.function not in owner)


def _root(name: str, owner: Mapping[str, str]) -> str:
    seen = {name}
    while name in owner and owner[name] not in seen:
        name = owner[name]
        seen.add(name)
    return name


def _enclosing_caller(name: str, candidates: Mapping[str, FunctionShareDiff],
                      graph: _AncestryTable) -> str | None:
    """The largest rising ancestor that is on the stack in >= DOMINANCE of `name`'s CPU and
    of whose CPU `name` makes up >= CORE_FRACTION."""
    best = None
    for ancestor in candidates:
        if ancestor == name or graph.dominance(ancestor, name) < DOMINANCE:
            continue
        if graph.cum(name) < CORE_FRACTION * graph.cum(ancestor):
            continue
        if best is None or graph.cum(ancestor) > graph.cum(best):
            best = ancestor
    return best


def _carrying_descendant(name: str, candidates: Mapping[str, FunctionShareDiff], owner: Mapping[str, str],
                         graph: _AncestryTable) -> str | None:
    """The rising descendant (not itself folded away) under `name` >= DOMINANCE of its CPU that
    carries >= EXPLAINED_FRACTION of `name`'s rise; the one with the largest rise."""
    rise = candidates[name].cum_change_pp
    if candidates[name].flat_change_pp >= EXPLAINED_FRACTION * rise:
        return None  # the caller's own code got costlier: its rise is its own
    best = None
    for descendant, diff in candidates.items():
        if descendant == name or descendant in owner or graph.dominance(name, descendant) < DOMINANCE:
            continue
        if diff.cum_change_pp < EXPLAINED_FRACTION * rise:
            continue
        if best is None or diff.cum_change_pp > candidates[best].cum_change_pp:
            best = descendant
    return best


class _AncestryTable:
    """For the candidate functions, pooled over all profiles: cum weight, and how much of each
    one's weight is spent with another candidate above it on the stack.

    Profiles are pooled with each one's weights divided by its total, so every repetition
    counts alike whatever its length.
    """

    def __init__(self, profiles: Iterable[CpuProfile], candidates: Iterable[str]) -> None:
        wanted = frozenset(candidates)
        self._cum: Counter[str] = Counter()
        self._under: dict[str, Counter[str]] = defaultdict(Counter)
        for profile in profiles:
            if not profile.total:
                continue
            scale = 1.0 / profile.total
            for stack, weight in profile.stacks.items():
                present = wanted.intersection(stack)
                if not present:
                    continue
                share = weight * scale
                for name in present:
                    self._cum[name] += share
                    # Frames above the deepest occurrence count as its ancestors (recursion).
                    deepest = len(stack) - 1 - stack[::-1].index(name)
                    for ancestor in wanted.intersection(stack[:deepest]) - {name}:
                        self._under[name][ancestor] += share

    def cum(self, name: str) -> float:
        return self._cum[name]

    def dominance(self, ancestor: str, name: str) -> float:
        """The fraction of `name`'s CPU spent with `ancestor` above it on the stack."""
        total = self._cum[name]
        return self._under[name][ancestor] / total if total else 0.0


# --------------------------------------------------------------------------------------------
# CPU per request


def cpu_per_request(baseline: Sequence[CpuProfile], candidate: Sequence[CpuProfile],
                    ok_calls_baseline: Sequence[float] | None,
                    ok_calls_candidate: Sequence[float] | None) -> CpuPerRequest | None:
    """CPU ns per OK call for each repetition of both sides (None without call counts or a time unit)."""
    if ok_calls_baseline is None or ok_calls_candidate is None:
        return None
    base = _per_request(baseline, ok_calls_baseline, "baseline")
    cand = _per_request(candidate, ok_calls_candidate, "candidate")
    if not base or not cand:
        return None
    base_median, cand_median = statistics.median(base), statistics.median(cand)
    with np.errstate(all="ignore"):
        p_value = float(stats.mannwhitneyu(cand, base, alternative="two-sided").pvalue)
    return CpuPerRequest(baseline_ns=base, candidate_ns=cand, baseline_median_ns=base_median,
                         candidate_median_ns=cand_median, rel_change=_relative(base_median, cand_median),
                         p_value=None if math.isnan(p_value) else p_value)


def _per_request(profiles: Sequence[CpuProfile], ok_calls: Sequence[float], side: str) -> tuple[float, ...]:
    if len(profiles) != len(ok_calls):
        raise ValueError(f"{side}: {len(profiles)} profiles but {len(ok_calls)} OK call counts")
    values = []
    for profile, calls in zip(profiles, ok_calls, strict=True):
        total_ns = profile.total_ns
        if total_ns is not None and calls > 0:
            values.append(total_ns / calls)
    return tuple(values)


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["CpuPerRequest", "FunctionShareDiff", "ProfileDiff", "Riser", "cpu_per_request", "diff_profiles",
           "match_functions", "rank_risers"]

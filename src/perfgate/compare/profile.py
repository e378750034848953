"""Baseline vs candidate profiles: how each function's cost moved, per repetition and in a chosen unit.

Each repetition's profile gives every function a cost (flat and cum) in the profile's sample unit.
A *view* turns that into a figure comparable across repetitions and sides by one scale per profile:
its share of the profile's total (%, the default: scale = 100 / total), or its cost per request
(scale = the repetition's measured CPU µs per request / total for CPU profiles, 1 / calls for the
bytes or delay of a delta profile over the window). Per request is what a change of code moves;
shares move for every function when one grows (the others' shares fall although their work did not
change), so the gate ranks movers per request and keeps shares as a secondary view.

Per function this module reports the per-repetition figures, their medians on each side, the change
and the relative change, and a two-sided Mann-Whitney U p-value over the per-repetition figures
(docs/statistics.md, "CPU profile diff", explains the choices). It also names the functions that
appeared or vanished and ranks the risers, attributing helpers and callers to the function that grew.

Pure: profiles and scales in, a frozen ProfileDiff out (to_dict() for JSON).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from perfgate.profile.model import Profile
from perfgate.profile.names import match_functions

CHANGED, APPEARED, VANISHED = "changed", "appeared", "vanished"
SHARE_UNIT = "%"

# Attribution of risers (see rank_risers): a function is folded into a caller that is on the
# stack in at least DOMINANCE of its cost and of which it makes up at least CORE_FRACTION;
# a caller is explained by a descendant riser carrying at least EXPLAINED_FRACTION of its rise.
DOMINANCE = 0.95
CORE_FRACTION = 0.5
EXPLAINED_FRACTION = 0.5
# Risers examined for attribution (the rest are ranked without it: it needs the stacks).
ATTRIBUTION_CANDIDATES = 40


@dataclass(frozen=True)
class FunctionDiff:
    """One function's cost on both sides, in the view's unit (ProfileDiff.unit).

    baseline_flat .. candidate_cum hold one value per repetition, in the order the profiles were
    given (0 where the function was not sampled); the *_median fields are their medians; the
    changes are candidate minus baseline median; rel_change is candidate/baseline - 1 (None when
    the baseline median is 0); p-values are two-sided Mann-Whitney U over the per-repetition values.
    """

    function: str
    status: str  # "changed" (sampled on both sides) | "appeared" | "vanished"
    baseline_flat: tuple[float, ...]
    candidate_flat: tuple[float, ...]
    baseline_cum: tuple[float, ...]
    candidate_cum: tuple[float, ...]
    baseline_flat_median: float
    candidate_flat_median: float
    baseline_cum_median: float
    candidate_cum_median: float
    flat_change: float
    cum_change: float
    flat_rel_change: float | None
    cum_rel_change: float | None
    flat_p_value: float | None
    cum_p_value: float | None

    @property
    def p_value(self) -> float | None:
        """The cum figure's p-value (cum is what the risers are ranked by)."""
        return self.cum_p_value

    def to_dict(self) -> dict:
        return {name: _json_number(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Riser:
    """A function whose cum cost rose, with the rises attributed to it.

    explains lists the other rising functions whose rise is this one's: helpers it calls that
    make up most of it (their cost is its cost) and callers whose rise it carries.
    """

    function: str
    cum_change: float
    explains: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"function": self.function, "cum_change": self.cum_change, "explains": list(self.explains)}


@dataclass(frozen=True)
class ProfileDiff:
    """Everything the report and the gate need about how a profile's costs moved between the sides.

    unit: the view's unit ("%" for shares, "µs" per request, ...); profile_unit: the profiles'
    sample unit. functions: every function sampled on either side, sorted by cum_change (largest
    rise first), then name. risers: rising functions after attribution, largest rise first.
    fallers: functions whose median cum fell, largest fall first.
    """

    unit: str
    profile_unit: str
    baseline_totals: tuple[int, ...]
    candidate_totals: tuple[int, ...]
    functions: tuple[FunctionDiff, ...]
    appeared: tuple[str, ...]
    vanished: tuple[str, ...]
    risers: tuple[Riser, ...]
    fallers: tuple[str, ...]

    def function(self, name: str) -> FunctionDiff | None:
        return next((diff for diff in self.functions if diff.function == name), None)

    def select(self, pattern: str) -> tuple[FunctionDiff, ...]:
        """The functions a rule pattern names (glob, or re:REGEX; see match_functions)."""
        chosen = set(match_functions(pattern, [diff.function for diff in self.functions]))
        return tuple(diff for diff in self.functions if diff.function in chosen)

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "profile_unit": self.profile_unit,
            "baseline_totals": list(self.baseline_totals),
            "candidate_totals": list(self.candidate_totals),
            "functions": [diff.to_dict() for diff in self.functions],
            "appeared": list(self.appeared),
            "vanished": list(self.vanished),
            "risers": [riser.to_dict() for riser in self.risers],
            "fallers": list(self.fallers),
        }


def share_scales(profiles: Sequence[Profile]) -> tuple[float, ...]:
    """The share view: each profile's costs in % of its own total (0 for an empty profile)."""
    return tuple(100.0 / profile.total if profile.total else 0.0 for profile in profiles)


def diff_profiles(baseline: Sequence[Profile], candidate: Sequence[Profile], *,
                  baseline_scales: Sequence[float] | None = None, candidate_scales: Sequence[float] | None = None,
                  unit: str = SHARE_UNIT, rank: bool = True) -> ProfileDiff:
    """Compare per-function costs of two sets of repetitions (one profile per repetition).

    *_scales (one per profile) turn a profile's sample values into the view's `unit`; without
    them the view is shares of each profile's total. rank=False skips the attribution of risers
    (it reads every stack) and leaves the risers unattributed.
    """
    if not baseline or not candidate:
        raise ValueError("diff_profiles needs at least one profile on each side")
    units = {profile.unit for profile in (*baseline, *candidate)}
    if len(units) != 1:
        raise ValueError(f"profiles with different units cannot be compared: {sorted(units)}")
    scales = {"baseline": _scales(baseline, baseline_scales, "baseline"),
              "candidate": _scales(candidate, candidate_scales, "candidate")}
    names = sorted(set().union(*(profile.functions for profile in (*baseline, *candidate))))
    values = {side: {kind: _value_matrix(profiles, scales[side], names, kind) for kind in ("flat", "cum")}
              for side, profiles in (("baseline", baseline), ("candidate", candidate))}
    p_values = {kind: _mann_whitney(values["baseline"][kind], values["candidate"][kind]) for kind in ("flat", "cum")}
    medians = {side: {kind: np.median(matrix, axis=1) for kind, matrix in kinds.items()}  # one call, not one a row
               for side, kinds in values.items()}
    diffs = [_function_diff(name, row, values, medians, p_values) for row, name in enumerate(names)]
    diffs.sort(key=lambda diff: (-diff.cum_change, diff.function))
    return ProfileDiff(
        unit=unit, profile_unit=units.pop(),
        baseline_totals=tuple(profile.total for profile in baseline),
        candidate_totals=tuple(profile.total for profile in candidate),
        functions=tuple(diffs),
        appeared=tuple(sorted(diff.function for diff in diffs if diff.status == APPEARED)),
        vanished=tuple(sorted(diff.function for diff in diffs if diff.status == VANISHED)),
        risers=rank_risers(diffs, baseline if rank else (), candidate if rank else ()),
        fallers=tuple(diff.function for diff in sorted(diffs, key=lambda d: (d.cum_change, d.function))
                      if diff.cum_change < 0),
    )


def _scales(profiles: Sequence[Profile], scales: Sequence[float] | None, side: str) -> tuple[float, ...]:
    if scales is None:
        return share_scales(profiles)
    if len(scales) != len(profiles):
        raise ValueError(f"{side}: {len(profiles)} profiles but {len(scales)} scales")
    if not all(math.isfinite(scale) and scale >= 0 for scale in scales):
        raise ValueError(f"{side}: scales must be finite and >= 0, got {list(scales)}")
    return tuple(float(scale) for scale in scales)


def _value_matrix(profiles: Sequence[Profile], scales: Sequence[float], names: Sequence[str],
                  kind: str) -> np.ndarray:
    """functions x repetitions: each function's flat or cum cost times its profile's scale."""
    matrix = np.zeros((len(names), len(profiles)))
    index = {name: row for row, name in enumerate(names)}
    for column, (profile, scale) in enumerate(zip(profiles, scales, strict=True)):
        if not scale:
            continue
        for name, cost in profile.functions.items():
            matrix[index[name], column] = getattr(cost, kind) * scale
    return matrix


def _mann_whitney(baseline: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney U p-value per row; 1 where both sides are all equal.

    scipy's method="auto" picks one method for a whole 2-D call (asymptotic as soon as any row
    has ties), so rows are split the way "auto" decides for a single row: the exact
    distribution without ties when a side has at most 8 values, else the normal approximation.
    """
    from scipy import stats  # here: `profile diff` of two records reads this module but tests nothing

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


def _function_diff(name: str, row: int, values: Mapping[str, Mapping[str, np.ndarray]],
                   row_medians: Mapping[str, Mapping[str, np.ndarray]],
                   p_values: Mapping[str, np.ndarray]) -> FunctionDiff:
    base_flat, cand_flat = values["baseline"]["flat"][row], values["candidate"]["flat"][row]
    base_cum, cand_cum = values["baseline"]["cum"][row], values["candidate"]["cum"][row]
    in_base, in_cand = bool(base_cum.any() or base_flat.any()), bool(cand_cum.any() or cand_flat.any())
    status = CHANGED if in_base and in_cand else (APPEARED if in_cand else VANISHED)
    medians = {key: float(row_medians[side][kind][row]) for key, side, kind in
               (("bf", "baseline", "flat"), ("cf", "candidate", "flat"), ("bc", "baseline", "cum"),
                ("cc", "candidate", "cum"))}
    return FunctionDiff(
        function=name, status=status,
        baseline_flat=_floats(base_flat), candidate_flat=_floats(cand_flat),
        baseline_cum=_floats(base_cum), candidate_cum=_floats(cand_cum),
        baseline_flat_median=medians["bf"], candidate_flat_median=medians["cf"],
        baseline_cum_median=medians["bc"], candidate_cum_median=medians["cc"],
        flat_change=medians["cf"] - medians["bf"], cum_change=medians["cc"] - medians["bc"],
        flat_rel_change=_relative(medians["bf"], medians["cf"]),
        cum_rel_change=_relative(medians["bc"], medians["cc"]),
        flat_p_value=float(p_values["flat"][row]), cum_p_value=float(p_values["cum"][row]))


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


def _relative(baseline: float, candidate: float) -> float | None:
    return None if baseline == 0 else candidate / baseline - 1.0


# --------------------------------------------------------------------------------------------
# Risers


def rank_risers(diffs: Sequence[FunctionDiff], baseline: Sequence[Profile],
                candidate: Sequence[Profile]) -> tuple[Riser, ...]:
    """Rising functions (median cum up), largest rise first, with rises attributed (no profiles: none).

    A cum rise shows on a whole call chain at once: the function that got costlier, the
    helpers it calls more (in shares often with a slightly larger rise, their base being smaller),
    and every caller up to main (with a smaller, noisier rise, diluted by their other callees).
    Attribution folds that chain into one entry, using the call stacks of all repetitions:

    1. a rising function whose cost is at least 95 % of the time under one rising caller, and
       made up at least half of that caller's cost in the baseline (before the change could
       inflate it), is part of the caller (a helper): it is listed in the caller's `explains`
       instead of on its own;
    2. a rising caller with a rising descendant that is under it 95 % of the time and carries
       at least half of its rise is explained by that descendant and listed in its `explains`,
       unless the caller's own code (its flat cost) accounts for half of its rise or more.

    The conditions rest mostly on sizes and call structure, which noise moves little, not on
    the small differences between rises. In the per-request view the roots (runtime.goexit, the
    server's dispatch) rise with every change below them; step 2 hands their rise down, and
    step 1's baseline sizes keep a function that grew from being folded into them.
    See docs/statistics.md, "CPU profile diff".
    """
    rising = [diff for diff in diffs if diff.cum_change > 0]
    rising.sort(key=lambda diff: (-diff.cum_change, diff.function))
    candidates = {diff.function: diff for diff in rising[:ATTRIBUTION_CANDIDATES]}
    if len(candidates) < 2 or not baseline or not candidate:
        return tuple(Riser(diff.function, diff.cum_change) for diff in rising)
    graph = _AncestryTable(baseline, candidate, candidates)
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
    return tuple(Riser(diff.function, diff.cum_change, tuple(explained.get(diff.function, ())))
                 for diff in rising if diff.function not in owner)


def _root(name: str, owner: Mapping[str, str]) -> str:
    seen = {name}
    while name in owner and owner[name] not in seen:
        name = owner[name]
        seen.add(name)
    return name


def _enclosing_caller(name: str, candidates: Mapping[str, FunctionDiff],
                      graph: _AncestryTable) -> str | None:
    """The largest rising ancestor that is on the stack in >= DOMINANCE of `name`'s cost and
    of whose baseline cost `name` made up >= CORE_FRACTION."""
    best = None
    for ancestor in candidates:
        if ancestor == name or graph.dominance(ancestor, name) < DOMINANCE:
            continue
        base = graph.baseline_cum(ancestor)  # a caller the baseline never reached has no helpers to speak of
        if not base or graph.baseline_cum(name) < CORE_FRACTION * base:
            continue
        if best is None or graph.cum(ancestor) > graph.cum(best):
            best = ancestor
    return best


def _carrying_descendant(name: str, candidates: Mapping[str, FunctionDiff], owner: Mapping[str, str],
                         graph: _AncestryTable) -> str | None:
    """The rising descendant (not itself folded away) under `name` >= DOMINANCE of its CPU that
    carries >= EXPLAINED_FRACTION of `name`'s rise; the one with the largest rise."""
    rise = candidates[name].cum_change
    if candidates[name].flat_change >= EXPLAINED_FRACTION * rise:
        return None  # the caller's own code got costlier: its rise is its own
    best = None
    for descendant, diff in candidates.items():
        if descendant == name or descendant in owner or graph.dominance(name, descendant) < DOMINANCE:
            continue
        if diff.cum_change < EXPLAINED_FRACTION * rise:
            continue
        if best is None or diff.cum_change > candidates[best].cum_change:
            best = descendant
    return best


class _AncestryTable:
    """For the candidate functions, pooled over all profiles: cum weight, and how much of each
    one's weight is spent with another candidate above it on the stack; and cum weight over
    the baseline's profiles alone.

    Profiles are pooled with each one's weights divided by its total, so every repetition
    counts alike whatever its length.
    """

    def __init__(self, baseline: Sequence[Profile], candidate: Sequence[Profile],
                 candidates: Iterable[str]) -> None:
        wanted = frozenset(candidates)
        self._cum: Counter[str] = Counter()
        self._baseline_cum: Counter[str] = Counter()
        self._under: dict[str, Counter[str]] = defaultdict(Counter)
        for position, profile in enumerate((*baseline, *candidate)):
            if not profile.total:
                continue
            scale = 1.0 / profile.total
            in_baseline = position < len(baseline)
            for stack, weight in profile.stacks.items():
                present = wanted.intersection(stack)
                if not present:
                    continue
                share = weight * scale
                for name in present:
                    self._cum[name] += share
                    if in_baseline:
                        self._baseline_cum[name] += share
                    # Frames above the deepest occurrence count as its ancestors (recursion).
                    deepest = len(stack) - 1 - stack[::-1].index(name)
                    for ancestor in wanted.intersection(stack[:deepest]) - {name}:
                        self._under[name][ancestor] += share

    def cum(self, name: str) -> float:
        return self._cum[name]

    def baseline_cum(self, name: str) -> float:
        return self._baseline_cum[name]

    def dominance(self, ancestor: str, name: str) -> float:
        """The fraction of `name`'s CPU spent with `ancestor` above it on the stack."""
        total = self._cum[name]
        return self._under[name][ancestor] / total if total else 0.0


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["SHARE_UNIT", "FunctionDiff", "ProfileDiff", "Riser", "diff_profiles", "match_functions", "rank_risers",
           "share_scales"]

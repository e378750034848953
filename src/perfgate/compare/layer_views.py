"""The layers below the CPU compared between the sides: who moved.

Each layer's figures (allocations per request, lock and block delay per request, goroutines gained per
window and counted at its end) are metrics of the registry (metrics.py), compared like every other one;
this module builds each layer's view: available or why not, and the functions (contention: the call
sites; goroutines: the start functions) whose cost per request moved, tested like the CPU's movers
(compare/functions.py, compare/movers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from perfgate.compare.comparison import GOROUTINES, LAYER_METRIC_NAMES, LAYER_TITLES, LayerView
from perfgate.compare.functions import Moves, ScaledProfiles, moves, moves_of
from perfgate.compare.inputs import SideInputs
from perfgate.compare.layers import PER_REQUEST_UNIT
from perfgate.compare.movers import mover_test
from perfgate.compare.profile import APPEARED, CHANGED, VANISHED, FunctionDiff, ProfileDiff, Riser


def layer_views(base: SideInputs, cand: SideInputs, *, alpha: float) -> tuple[LayerView, ...]:
    """Every layer captured on either side; one that only one side has says which side lacks it.

    Each layer's functions are one family (Benjamini-Hochberg within it), and the layers compared share
    alpha equally: an unchanged build then gets a function named in any of them in at most alpha of gates,
    where alpha per layer would allow about alpha times the number of layers."""
    names = sorted(base.layers.keys() | cand.layers.keys())
    compared = sum(all(_has_delta(name)(s) for s in (base, cand)) for name in names) \
        + all(_has_goroutines(s) for s in (base, cand))
    share = alpha / max(compared, 1)
    views = [_delta_view(name, base, cand, share) for name in names]
    views.append(_goroutine_view(base, cand, share))
    order = list(LAYER_TITLES)
    return tuple(sorted((v for v in views if v is not None), key=lambda v: order.index(v.layer)))


def _has_delta(layer: str) -> Callable[[SideInputs], bool]:
    """Whether a side has the delta layer's profiles to compare."""
    return lambda side: bool(side.layers.get(layer) and side.layers[layer].profiles)


def _has_goroutines(side: SideInputs) -> bool:
    return bool(side.goroutines.growth_by_start)


def _missing(layer: str, base: SideInputs, cand: SideInputs, have: Callable[[SideInputs], bool]) -> str | None:
    """Why a layer cannot be compared, or None; None also for a layer neither side tried (not shown)."""
    lacking = [side for side in (base, cand) if not have(side)]
    if not lacking:
        return None
    problems = [p for side in lacking for p in _problems(layer, side)]
    roles = " and ".join(side.record.role for side in lacking)
    return f"{roles}: {problems[0]}" if problems else f"{roles}: no {layer} profiles in the record"


def _problems(layer: str, side: SideInputs) -> tuple[str, ...]:
    return side.goroutines.problems if layer == GOROUTINES else side.layers[layer].problems \
        if layer in side.layers else ()


def _delta_view(layer: str, base: SideInputs, cand: SideInputs, alpha: float) -> LayerView | None:
    if not any(s.layers.get(layer) and (s.layers[layer].available or s.layers[layer].problems) for s in (base, cand)):
        return None
    why = _missing(layer, base, cand, _has_delta(layer))
    if why:
        return LayerView(layer=layer, available=False, reason=why)
    sides = [ScaledProfiles(s.layers[layer].profiles, s.layers[layer].scales) for s in (base, cand)]
    unit = PER_REQUEST_UNIT[_main_sample_type(layer)]
    found = moves(sides[0], sides[1], unit=unit, alpha=alpha)
    return _view(layer, found, alpha)


def _main_sample_type(layer: str) -> str:
    return "alloc_space" if layer == "allocs" else "delay"


def _goroutine_view(base: SideInputs, cand: SideInputs, alpha: float) -> LayerView | None:
    if not any(s.goroutines.growth or s.goroutines.problems for s in (base, cand)):
        return None
    why = _missing(GOROUTINES, base, cand, _has_goroutines)
    if why:
        return LayerView(layer=GOROUTINES, available=False, reason=why)
    diff = growth_diff(base.goroutines.growth_by_start, cand.goroutines.growth_by_start)
    tested = mover_test(diff.functions, family=[f.function for f in diff.functions], transform="linear")
    return _view(GOROUTINES, moves_of(diff, tested, alpha), alpha)


def _view(layer: str, found: Moves, alpha: float) -> LayerView:
    return LayerView(layer=layer, available=True, unit=found.unit, risers=found.risers, fallers=found.fallers,
                     functions_tested=found.tested, functions_own=found.own, alpha=alpha)


def growth_diff(baseline: Sequence[Mapping[str, int]], candidate: Sequence[Mapping[str, int]]) -> ProfileDiff:
    """Goroutines gained per window by start function, as a profile diff (no stacks: no attribution needed,
    a goroutine's start function is where it was started)."""
    names = sorted(set().union(*baseline, *candidate))
    diffs = []
    for name in names:
        base = tuple(float(window.get(name, 0)) for window in baseline)
        cand = tuple(float(window.get(name, 0)) for window in candidate)
        b, c = float(np.median(base)), float(np.median(cand))
        status = CHANGED if any(base) and any(cand) else (APPEARED if any(cand) else VANISHED)
        diffs.append(FunctionDiff(function=name, status=status, baseline_flat=base, candidate_flat=cand,
                                  baseline_cum=base, candidate_cum=cand, baseline_flat_median=b,
                                  candidate_flat_median=c, baseline_cum_median=b, candidate_cum_median=c,
                                  flat_change=c - b, cum_change=c - b, flat_rel_change=None if b == 0 else c / b - 1,
                                  cum_rel_change=None if b == 0 else c / b - 1, flat_p_value=None, cum_p_value=None))
    diffs.sort(key=lambda d: (-d.cum_change, d.function))
    return ProfileDiff(unit="goroutines", profile_unit="count", baseline_totals=(), candidate_totals=(),
                       functions=tuple(diffs), appeared=tuple(d.function for d in diffs if d.status == APPEARED),
                       vanished=tuple(d.function for d in diffs if d.status == VANISHED),
                       risers=tuple(Riser(d.function, d.cum_change) for d in diffs if d.cum_change > 0),
                       fallers=tuple(d.function for d in reversed(diffs) if d.cum_change < 0))


__all__ = ["LAYER_METRIC_NAMES", "LAYER_TITLES", "LayerView", "growth_diff", "layer_views"]

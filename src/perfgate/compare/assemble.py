"""Assembling a MetricComparison from a test's figures: shared by the unpaired (stats.py) and paired
(paired.py) comparisons, so both say "relative" the same way and check their inputs alike.

The types live in compare/comparison.py (which imports no numpy, so a verdict reads without it); the
arithmetic that builds them is here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from perfgate.compare.comparison import MetricComparison, Scale


def usable_scale(scale: Scale, base: np.ndarray, cand: np.ndarray) -> tuple[Scale, list[str]]:
    """The scale asked for, unless "log" meets a value <= 0: then the linear scale, with a note."""
    if scale not in ("log", "linear"):
        raise ValueError(f"scale must be 'log' or 'linear', got {scale!r}")
    if scale == "log" and (np.any(base <= 0) or np.any(cand <= 0)):
        return "linear", ["a value <= 0: compared on the linear scale instead of as ratios"]
    return scale, []


def on_scale(values: np.ndarray, scale: Scale) -> np.ndarray:
    return np.log(values) if scale == "log" else values


def comparison_on_scale(
    common: dict[str, Any], *, scale: Scale, base_median: float, candidate_median: float, shift: float,
    shift_ci: tuple[float, float], ci_level: float | None, p_values: tuple[float, float, str], mde: float,
    notes: list[str], pairs_worse: int | None = None,
) -> MetricComparison:
    """The finished comparison from figures on the test's scale (log or linear): in the unit and relative.

    On the log scale a log shift x is the ratio e^x: relative e^x - 1, in the unit base_median * (e^x - 1).
    On the linear scale x is in the unit: relative x / |base_median|. Bounds and the MDE are sizes of a
    worsening (positive = worse), converted in the metric's own direction. Shared by the unpaired (here)
    and paired (paired.py) comparisons, so both say "relative" the same way.
    """
    higher_is_worse = common["higher_is_worse"]
    lo, hi = shift_ci
    worse_bound = hi if higher_is_worse else -lo  # the interval's worse end: the one-sided (1 - alpha) bound
    if scale == "linear" and base_median == 0:
        notes = [*notes, "baseline median is 0: relative change undefined"]

    def relative(x: float) -> float | None:
        if scale == "log":
            return math.expm1(x)
        return None if base_median == 0 else x / abs(base_median)

    def in_unit(x: float) -> float:
        return base_median * math.expm1(x) if scale == "log" else x

    def towards_worse(convert: Any, size: float) -> float | None:
        """A worsening of `size` on the test's scale, converted and signed so that positive means worse."""
        value = convert(size if higher_is_worse else -size)
        return None if value is None else (value if higher_is_worse else -value)

    mde_abs = math.inf if math.isinf(mde) else towards_worse(in_unit, mde)
    mde_rel = None if relative(0.0) is None else (math.inf if math.isinf(mde) else towards_worse(relative, mde))
    rel_lo, rel_hi = relative(lo), relative(hi)
    p_worse, p_two, method = p_values
    return MetricComparison(
        **common,
        baseline_median=base_median,
        candidate_median=candidate_median,
        shift=in_unit(shift),
        shift_ci=(in_unit(lo), in_unit(hi)),
        rel_change=relative(shift),
        rel_ci=None if rel_lo is None or rel_hi is None else (rel_lo, rel_hi),
        ci_level=ci_level,
        worse_bound=towards_worse(in_unit, worse_bound),
        worse_bound_rel=towards_worse(relative, worse_bound),
        p_value=p_worse,
        p_two_sided=p_two,
        p_method=method,
        mde_abs=mde_abs,
        mde_rel=mde_rel,
        notes=tuple(notes),
        scale=scale,
        pairs_worse=pairs_worse,
    )


def comparison_without_shift(common: dict[str, Any], *, base: np.ndarray, cand: np.ndarray,
                             note: str) -> MetricComparison:
    """No comparison was possible (a side without values): medians where there are values, p = 1, the reason."""
    return MetricComparison(
        **common,
        baseline_median=float(np.median(base)) if base.size else None,
        candidate_median=float(np.median(cand)) if cand.size else None,
        shift=None,
        shift_ci=None,
        rel_change=None,
        rel_ci=None,
        ci_level=None,
        worse_bound=None,
        worse_bound_rel=None,
        p_value=1.0,
        p_two_sided=1.0,
        p_method="none",
        mde_abs=None,
        mde_rel=None,
        notes=(note,),
    )


def check_parameters(alpha: float, n_tests: int) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha!r}")
    if isinstance(n_tests, bool) or not isinstance(n_tests, int | np.integer) or n_tests < 1:
        raise ValueError(f"n_tests must be an integer >= 1, got {n_tests!r}")


def as_finite_array(metric: str, side: str, values: Sequence[float]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metric {metric!r}: {side} values are not all numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"metric {metric!r}: {side} values must be a flat sequence, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        where = ", ".join(f"repetition {i + 1} = {array[i]}" for i in bad[:5])
        raise ValueError(f"metric {metric!r}: {side} has non-finite values ({where})")
    return array


def common_fields(name: str, unit: str, higher_is_worse: bool, base: np.ndarray, cand: np.ndarray, *,
                  alpha: float, n_tests: int, min_p: float, needed: int) -> dict[str, Any]:
    """The fields every comparison has, whatever its test: the data, the family and whether it can reject."""
    per_test_alpha = alpha / n_tests
    return dict(name=name, unit=unit, higher_is_worse=higher_is_worse,
                baseline=tuple(float(v) for v in base), candidate=tuple(float(v) for v in cand),
                n_baseline=len(base), n_candidate=len(cand), alpha=alpha, n_tests=n_tests,
                per_test_alpha=per_test_alpha, min_p_possible=min_p, min_reps_needed=needed,
                can_reject=min_p < per_test_alpha)

"""From one metric's comparison to an outcome and the sentence that explains it.

A FAIL needs significance after the multiple-testing correction, an interval wholly on the worse side
of zero, and an estimated worsening beyond every fail threshold. PASS needs the one-sided bound (the
interval's worse end) to rule out a worsening that would fail the rule; otherwise INCONCLUSIVE. Every
figure in a sentence is said in the metric's own direction ("a drop of up to 9.0 %" for throughput,
"an increase of up to +9.0 %" for latency) with the level it was computed at. docs/statistics.md
("From numbers to an outcome") explains the order of the checks.
"""

from __future__ import annotations

import math

from perfgate.compare.comparison import FAIL, INCONCLUSIVE, PASS, WARN, Cause, Classification, MetricComparison


def classify(
    comparison: MetricComparison,
    *,
    p_adjusted: float,
    max_worse_rel: float | None = None,
    max_worse_abs: float | None = None,
    warn_worse_rel: float | None = None,
    warn_worse_abs: float | None = None,
) -> Classification:
    """PASS / WARN / FAIL / INCONCLUSIVE for one metric under one rule.

    Thresholds are sizes of a worsening (>= 0), relative to the baseline median or in the metric's unit,
    whatever the direction (an rps drop of 5 % is max_worse_rel=0.05). A FAIL needs the adjusted one-sided
    p below alpha, the interval on the worse side of zero (the same test, inverted; with ties the two can
    disagree, and then it is not a FAIL) AND the Hodges-Lehmann shift beyond every given fail
    threshold (no fail threshold: any significant worsening fails; use math.inf for a warn-only rule).
    INCONCLUSIVE: too few repetitions to ever reject, or (not failing but) the one-sided (1 - alpha) bound
    `worse_bound` still reaches past every positive fail threshold - too noisy to rule out a regression
    that would fail the rule. WARN: significant and beyond the warn thresholds (none given: no warn
    level). Otherwise PASS; the reason carries the bound and the MDE.
    """
    c = comparison
    _check_thresholds(max_worse_rel, max_worse_abs, warn_worse_rel, warn_worse_abs)
    if not 0 <= p_adjusted <= 1:
        raise ValueError(f"p_adjusted must be within [0, 1], got {p_adjusted!r}")
    if c.n_baseline == 0 or c.n_candidate == 0:
        return Classification(INCONCLUSIVE, f"{c.name}: {c.notes[0]}, cannot compare", Cause.NO_DATA)
    if not c.can_reject:
        return Classification(INCONCLUSIVE, f"{c.name}: {_too_few_reps(c)}", Cause.TOO_FEW_REPETITIONS)

    summary = describe_change(c)
    significantly_worse = p_adjusted < c.alpha and (c.worse_shift or 0.0) > 0 and _interval_agrees(c)
    significance = f"p={fmt_p(p_adjusted)}{' (adjusted)' if c.n_tests > 1 else ''}"
    fail_limit = _fmt_threshold(c, max_worse_rel, max_worse_abs)
    if significantly_worse and _beyond(c, max_worse_rel, max_worse_abs, no_threshold=True):
        reason = f"{c.name}: regression {summary}, {significance} < {c.alpha:g}, beyond {fail_limit}"
        return Classification(FAIL, reason, Cause.REGRESSION)
    reach = _cannot_rule_out(c, max_worse_rel, max_worse_abs)
    if reach:
        if significantly_worse:
            seen = f"worse {summary}, {significance}"
            mde = f"has a minimum detectable {_noun(c)} of {fmt_mde(c)}"
        else:
            seen = f"{_not_significant(c, p_adjusted)} {summary}"
            mde = f"could only have detected {_noun(c)}s > {fmt_mde(c)}"
        return Classification(
            INCONCLUSIVE,
            f"{c.name}: too noisy to tell: {seen}, but {_article(c)} {_noun(c)} of up to {reach} "
            f"({_bound_label(c)}) cannot be ruled out, beyond the {fail_limit} threshold; this run "
            f"{mde} (80% power). {_noise_advice(c)}",
            Cause.TOO_NOISY,
        )
    if significantly_worse and _beyond(c, warn_worse_rel, warn_worse_abs, no_threshold=False):
        warn_limit = _fmt_threshold(c, warn_worse_rel, warn_worse_abs)
        return Classification(WARN, f"{c.name}: worse {summary}, {significance}, beyond warn {warn_limit}",
                              Cause.WORSE_THAN_WARN)
    if significantly_worse:
        return Classification(PASS, f"{c.name}: small significant change {summary}, within {fail_limit}",
                              Cause.WITHIN_LIMIT)
    if c.p_two_sided < c.alpha and (c.worse_shift or 0.0) < 0:
        return Classification(PASS, f"{c.name}: improved {summary}, p={fmt_p(c.p_two_sided)} (two-sided)",
                              Cause.IMPROVED)
    return Classification(
        PASS,
        f"{c.name}: {_not_significant(c, p_adjusted)} {summary}, {significance}; {_article(c)} {_noun(c)} beyond "
        f"{fmt_worse_bound(c)} ruled out ({_bound_label(c)}); could have detected {_noun(c)}s > {fmt_mde(c)}",
        Cause.NO_CHANGE,
    )


def _not_significant(c: MetricComparison, p_adjusted: float) -> str:
    """'no significant change', unless the interval (alpha a tail, unadjusted) says worse and only the
    multiple-testing correction took significance away: then the words say that, beside that interval."""
    if _interval_agrees(c) and (c.worse_shift or 0.0) > 0 and c.p_value < c.alpha <= p_adjusted:
        return (f"worse, but not significant after the correction over {c.n_tests} rules "
                f"(p={fmt_p(c.p_value)}, adjusted {fmt_p(p_adjusted)}):")
    return "no significant change"


def _interval_agrees(c: MetricComparison) -> bool:
    """The interval lies on the worse side of zero. An end exactly at 0 comes from tied values (errors
    counted 0 in several repetitions); there the tie-corrected p-value decides, which the caller checked."""
    interval = c.worse_interval
    return interval is not None and interval[0] >= 0


def _check_thresholds(*thresholds: float | None) -> None:
    for value in thresholds:
        if value is not None and not value >= 0:
            raise ValueError(f"thresholds are sizes of a worsening and must be >= 0, got {value!r}")


def _beyond(c: MetricComparison, rel: float | None, abs_: float | None, *, no_threshold: bool) -> bool:
    """Whether the worsening exceeds every given threshold; `no_threshold` is the answer when none is given.

    A worsening from a zero baseline median has no relative size and counts as beyond any relative threshold.
    """
    if rel is None and abs_ is None:
        return no_threshold
    worse_shift = c.worse_shift or 0.0
    beyond_rel = rel is None or c.worse_rel is None or c.worse_rel > rel
    beyond_abs = abs_ is None or worse_shift > abs_
    return beyond_rel and beyond_abs


def _cannot_rule_out(c: MetricComparison, rel: float | None, abs_: float | None) -> str | None:
    """How far the one-sided bound reaches when it is beyond every positive fail threshold, else None.

    Then a regression big enough to fail the rule is still plausible. Zero thresholds (any significant
    worsening fails) do not count; an infinite one means the rule cannot fail, so there is nothing to miss.
    """
    checks = [
        (threshold, bound, fmt)
        for threshold, bound, fmt in (
            (rel, c.worse_bound_rel, lambda v: fmt_worsening(c, v)),
            (abs_, c.worse_bound, lambda v: fmt_worsening_abs(c, v)),
        )
        if threshold is not None and threshold > 0
    ]
    if not checks or any(math.isinf(threshold) for threshold, _, _ in checks):
        return None
    # a relative bound is undefined from a zero baseline median: then any plausible worsening counts
    worse_at_all = c.worse_bound is not None and c.worse_bound > 0
    if not all(worse_at_all if bound is None else bound > threshold for threshold, bound, _ in checks):
        return None
    shown = [fmt(bound) for _, bound, fmt in checks if bound is not None]
    return " / ".join(shown) or fmt_worsening_abs(c, c.worse_bound or math.inf)


def _noise_advice(c: MetricComparison) -> str:
    run = c.run_level
    if run is None or not c.limited_by_run_drift:
        return "Add repetitions or reduce noise"
    return (f"The baseline came from another run and this runner's run medians drift by ±{run.sigma_rel:.1%} "
            f"between runs ({run.source}): compare base and head in one job (compare.mode: interleaved)")


def _too_few_reps(c: MetricComparison) -> str:
    holm = f" (Holm over {c.n_tests} metrics: per-test alpha {c.per_test_alpha:.3g})" if c.n_tests > 1 else ""
    per = "pairs" if c.paired else "repetitions per side"
    have = f"{c.n_baseline}" if c.paired else f"{c.n_baseline} baseline and {c.n_candidate} candidate"
    return (
        f"too few repetitions to ever detect a change: need >= {c.min_reps_needed} {per} "
        f"at alpha {c.alpha:g}{holm}; have {have} (smallest possible p is {fmt_p(c.min_p_possible)})"
    )


# ---------------------------------------------------------------- words
def describe_change(c: MetricComparison) -> str:
    """The estimate, its interval with the level, and what it means in the unit, e.g.
    '+12.3 % [+8.1 %, +16.0 %] (90.3 % CI; +1.2 ms at the baseline median 10 ms; worse in 9 of 10 pairs)'.

    Only figures that describe the same estimate stand beside it: on the log scale the change in the
    unit is the ratio applied to the baseline median (not the difference of the two medians, which a
    paired or rank-based estimate need not match).
    """
    if c.shift is None or c.shift_ci is None:
        return "(no data)"
    level = f"{fmt_level(c.ci_level)} CI"
    pairs = f"; worse in {c.pairs_worse} of {c.n_baseline} pairs" if c.paired else ""
    if c.rel_change is None or c.rel_ci is None:
        lo, hi = c.shift_ci
        medians = f"median {c.baseline_median:.4g} -> {c.candidate_median:.4g} {c.unit}".rstrip()
        return (f"{fmt_signed(c.shift)} {c.unit} [{fmt_signed(lo)}, {fmt_signed(hi)}] ({level}; {medians}; "
                f"relative change undefined{pairs})").replace("  ", " ")
    lo, hi = c.rel_ci
    if c.scale == "log":
        unit = f"{fmt_signed(c.shift)} {c.unit} at the baseline median {c.baseline_median:.4g} {c.unit}"
    else:
        unit = f"{fmt_signed(c.shift)} {c.unit}; baseline median {c.baseline_median:.4g} {c.unit}"
    return f"{fmt_pct(c.rel_change)} [{fmt_pct(lo)}, {fmt_pct(hi)}] ({level}; {unit.replace('  ', ' ')}{pairs})"


def _noun(c: MetricComparison) -> str:
    return "increase" if c.higher_is_worse else "drop"


def _article(c: MetricComparison) -> str:
    return "an" if c.higher_is_worse else "a"


def _bound_label(c: MetricComparison) -> str:
    return f"{fmt_level(c.bound_level)} one-sided bound"


def fmt_worsening(c: MetricComparison, value: float) -> str:
    """A relative worsening in the metric's direction: '+9.1 %' for an increase, '9.1 %' for a drop."""
    if not math.isfinite(value):
        return "+inf" if c.higher_is_worse else "100%"
    return fmt_pct(value) if c.higher_is_worse else f"{value:.1%}"


def fmt_worsening_abs(c: MetricComparison, value: float) -> str:
    shown = fmt_signed(value) if c.higher_is_worse else (f"{value:.4g}" if math.isfinite(value) else "inf")
    return f"{shown} {c.unit}".rstrip()


def fmt_worse_bound(c: MetricComparison) -> str:
    if c.worse_bound_rel is not None:
        return fmt_worsening(c, c.worse_bound_rel)
    return "?" if c.worse_bound is None else fmt_worsening_abs(c, c.worse_bound)


def fmt_mde(c: MetricComparison) -> str:
    if c.mde_rel is not None:
        return f"{c.mde_rel:.1%}" if math.isfinite(c.mde_rel) else "inf"
    return "?" if c.mde_abs is None else f"{c.mde_abs:.4g} {c.unit}".rstrip()


def _fmt_threshold(c: MetricComparison, rel: float | None, abs_: float | None) -> str:
    parts = []
    if rel is not None:
        parts.append(f"{rel:.1%}")
    if abs_ is not None:
        parts.append(f"{abs_:.4g} {c.unit}".rstrip())
    return " and ".join(parts) if parts else "no threshold"


def fmt_level(level: float | None) -> str:
    """A confidence level as computed, e.g. 90.3 % (one decimal, never rounded up past what it is)."""
    if level is None:
        return "?"
    return f"{math.floor(level * 1000 + 1e-9) / 10:.1f}%"


def fmt_signed(value: float) -> str:
    return f"{value:+.4g}" if math.isfinite(value) else ("-inf" if value < 0 else "+inf")


def fmt_pct(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else ("-inf" if value < 0 else "+inf")


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"

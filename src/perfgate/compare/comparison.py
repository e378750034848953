"""What comparing one metric yields, apart from the statistics that compute it.

MetricComparison (both sides' values, shift, interval, p, MDE), the RunLevelTest that may join it, the
Classification of a comparison under a rule with its typed Cause, FunctionMove (how one function's
cost moved) and LayerView (one layer below the CPU compared, with its movers). Types only: the arithmetic
that builds a comparison is in assemble.py, the tests in stats.py, paired.py and movers.py, which import
this module; it imports none of them, nor numpy or scipy, so the verdict, the report and `perfgate
publish` read these types without loading the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any, Literal, TypeAlias

Outcome = Literal["PASS", "WARN", "FAIL", "INCONCLUSIVE"]
Scale: TypeAlias = Literal["log", "linear"]
PASS: Outcome = "PASS"
WARN: Outcome = "WARN"
FAIL: Outcome = "FAIL"
INCONCLUSIVE: Outcome = "INCONCLUSIVE"


class Cause(StrEnum):
    """Why a rule came out as it did, for code to act on (the reason text is for people)."""

    NO_DATA = "no data"  # a side has no values
    TOO_FEW_REPETITIONS = "too few repetitions"  # the test can never reach significance
    REGRESSION = "regression"  # significant, interval on the worse side, beyond the fail threshold
    TOO_NOISY = "too noisy"  # not failing, but the bound still reaches past the fail threshold
    WORSE_THAN_WARN = "worse than warn"  # significant and beyond the warn threshold
    WITHIN_LIMIT = "within limit"  # significant but within the thresholds
    IMPROVED = "improved"
    NO_CHANGE = "no change"
    ENVIRONMENT_DIFFERS = "environment differs"  # a FAIL made INCONCLUSIVE: other environment keys
    CONTENDED = "contended"  # a FAIL made INCONCLUSIVE: the runner was contended
    DRIFT_UNKNOWN = "run drift unknown"  # a FAIL made INCONCLUSIVE: across runs, with no drift estimate


@dataclass(frozen=True)
class RunLevelTest:
    """The candidate run's median against the baseline build's runs. Relative values: positive = higher."""

    runs: int  # baseline-build runs whose medians were used (the baseline record included)
    sigma_rel: float
    df: float | None  # None = normal (configured noise)
    source: str
    rel_change: float
    rel_ci: tuple[float, float]  # alpha in each tail, like the within-run interval
    worse_bound_rel: float  # one-sided (1 - alpha) bound on the worsening, positive = worse (a drop for rps)
    p_value: float  # one-sided, towards worse
    p_two_sided: float
    mde_rel: float


@dataclass(frozen=True)
class MetricComparison:
    """Baseline vs candidate for one metric. Shifts are candidate - baseline, in `unit`.

    scale "log": the test, the estimate and the interval are computed on log values, i.e. on ratios;
    rel_change = candidate/baseline - 1 and `shift` is that ratio applied to the baseline median.
    scale "linear": on the values themselves; relative values divide by |baseline median|.
    shift_ci / rel_ci: two-sided interval with alpha in each tail, achieved level `ci_level` (>= 1 - 2 alpha;
    exact rank distributions are discrete). Its worse end is worse_bound / worse_bound_rel: the one-sided
    (1 - alpha) bound on the worsening (positive = worse), so a regression larger than this is ruled out
    at level alpha. Relative worsenings are in the metric's own direction: for a metric where lower is worse
    (throughput) worse_bound_rel = 0.2 means a drop of 20 %, and it is below 1 on the log scale.
    Fields that are undefined for the data are None (relative values when the baseline median is 0 on the
    linear scale, everything but the sample sizes when a side is empty). An unbounded CI end is -inf / +inf
    (to_dict writes null). `notes` says why something is undefined or approximate.
    """

    name: str
    unit: str
    higher_is_worse: bool
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    n_baseline: int
    n_candidate: int
    baseline_median: float | None
    candidate_median: float | None
    shift: float | None
    shift_ci: tuple[float, float] | None
    rel_change: float | None
    rel_ci: tuple[float, float] | None
    ci_level: float | None
    worse_bound: float | None
    worse_bound_rel: float | None
    p_value: float
    p_two_sided: float
    p_method: str
    mde_abs: float | None
    mde_rel: float | None
    alpha: float
    n_tests: int
    per_test_alpha: float
    min_p_possible: float
    min_reps_needed: int
    can_reject: bool
    notes: tuple[str, ...]
    run_level: RunLevelTest | None = None  # set when the baseline came from another run (compare/runs.py)
    scale: Scale = "linear"
    pairs_worse: int | None = None  # paired comparisons: pairs whose candidate was worse than its baseline

    @property
    def paired(self) -> bool:
        return self.pairs_worse is not None

    @property
    def worse_interval(self) -> tuple[float, float] | None:
        """The interval as sizes of a worsening (in the unit): (least, most) worse; None without a shift."""
        if self.shift_ci is None:
            return None
        lo, hi = self.shift_ci
        return (lo, hi) if self.higher_is_worse else (-hi, -lo)

    @property
    def excludes_no_change(self) -> bool:
        """The interval lies wholly on the worse side of zero: the data say "worse" at level alpha."""
        interval = self.worse_interval
        return interval is not None and interval[0] > 0

    @property
    def bound_level(self) -> float | None:
        """Achieved level of the one-sided bounds (each tail of the interval)."""
        return None if self.ci_level is None else (1 + self.ci_level) / 2

    @property
    def worse_shift(self) -> float | None:
        """The shift signed so that positive means worse (slower, less throughput, ...)."""
        return None if self.shift is None else (self.shift if self.higher_is_worse else -self.shift)

    @property
    def limited_by_run_drift(self) -> bool:
        """The run-level test (baseline from another run), not the repetitions' noise, sets the MDE."""
        run = self.run_level
        return run is not None and self.mde_rel is not None and run.mde_rel >= self.mde_rel

    @property
    def worse_rel(self) -> float | None:
        """The relative change signed so that positive means worse."""
        return None if self.rel_change is None else (self.rel_change if self.higher_is_worse else -self.rel_change)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form: tuples as lists, infinities (unbounded CI ends, bounds, MDE) as null."""
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricComparison:
        """Inverse of to_dict: restores tuples and the infinities that to_dict wrote as null."""
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"run_level", "scale", "pairs_worse"}
        if missing:
            raise ValueError(f"metric comparison is missing {sorted(missing)}")
        values = {name: data[name] for name in names if name in data}
        if values.get("run_level") is not None:
            values["run_level"] = RunLevelTest(**{**values["run_level"],
                                                  "rel_ci": tuple(values["run_level"]["rel_ci"])})
        for key in ("baseline", "candidate", "notes"):
            values[key] = tuple(values[key])
        for key in ("shift_ci", "rel_ci"):
            if values[key] is not None:
                lo, hi = values[key]
                values[key] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
        # defined whenever the shift (or the relative change) is: null there can only mean infinite
        for key, defined_with in (("worse_bound", "shift"), ("mde_abs", "shift"),
                                  ("worse_bound_rel", "rel_change"), ("mde_rel", "rel_change")):
            if values[key] is None and values[defined_with] is not None:
                values[key] = math.inf
        return cls(**values)


@dataclass(frozen=True)
class Classification:
    outcome: Outcome
    reason: str
    cause: Cause

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MIN_SHARE_PCT = 1.0  # average cum share over both sides' repetitions for a function to be tested as a mover
OWN_WEIGHT_SHARE = 0.5  # of the movers' weighted correction, for the service's own functions (when fewer)


def own_weight_share(own: int, tested: int) -> float | None:
    """The share of the movers' correction weight the `own` service functions of a family of `tested` hold
    (compare/movers.py family_weights); None when all weights are equal: no own function, or at least
    OWN_WEIGHT_SHARE of the family own."""
    if own <= 0 or own >= OWN_WEIGHT_SHARE * tested:
        return None
    return OWN_WEIGHT_SHARE


@dataclass(frozen=True)
class FunctionMove:
    """How one function's cum cost moved between the sides (medians across repetitions), in `unit` per
    request (or "%" of the profile when no per-request figure was known); its share of the profile beside.

    p_value is the function's own two-sided test (compare/movers.py; None when its share was too small to
    test); p_adjusted the same after the Benjamini-Hochberg correction over every function tested;
    significant: p_adjusted < alpha. Reports name a function as having moved only when it is significant.
    """

    function: str
    kind: str  # "flat" | "cum"
    unit: str
    baseline: float
    candidate: float
    change: float
    rel_change: float | None
    p_value: float | None
    status: str  # "changed" | "appeared" | "vanished"
    p_adjusted: float | None = None
    significant: bool = False
    baseline_share_pct: float | None = None
    candidate_share_pct: float | None = None


# The layers below the CPU, as the verdict names them (compare/layer_views.py builds their views).
GOROUTINES = "goroutines"
LAYER_TITLES = {"allocs": "Allocations", "mutex": "Lock contention (mutex)", "block": "Blocking",
                GOROUTINES: "Goroutines"}
WHAT = {"allocs": "bytes allocated", "mutex": "mutex delay", "block": "blocked time", GOROUTINES: "goroutines"}


# The registry's metrics (metrics.py) of each layer, in the order the report shows them.
LAYER_METRIC_NAMES: Mapping[str, tuple[str, ...]] = {
    "allocs": ("alloc_bytes_per_request", "alloc_objects_per_request"), "mutex": ("mutex_delay_per_request",),
    "block": ("block_delay_per_request",), GOROUTINES: ("goroutine_growth", "goroutines")}


@dataclass(frozen=True)
class LayerView:
    """One layer compared: available (both sides have it) or why not; its movers in `unit` per request
    (goroutines: gained per window, by start function), largest change first; the family tested and the
    level its movers were judged at (the layers compared share the gate's alpha)."""

    layer: str
    available: bool
    reason: str | None = None
    unit: str = ""
    risers: tuple[FunctionMove, ...] = ()
    fallers: tuple[FunctionMove, ...] = ()
    functions_tested: int = 0
    functions_own: int = 0
    alpha: float | None = None

    @property
    def title(self) -> str:
        return LAYER_TITLES.get(self.layer, self.layer)

    @property
    def significant_risers(self) -> tuple[FunctionMove, ...]:
        return tuple(m for m in self.risers if m.significant)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerView:
        def moves_of(key: str) -> tuple[FunctionMove, ...]:
            return tuple(FunctionMove(**move) for move in data.get(key) or ())

        return cls(layer=data["layer"], available=bool(data["available"]), reason=data.get("reason"),
                   unit=data.get("unit", ""), risers=moves_of("risers"), fallers=moves_of("fallers"),
                   functions_tested=int(data.get("functions_tested", 0)),
                   functions_own=int(data.get("functions_own", 0)),
                   alpha=float(data["alpha"]) if data.get("alpha") is not None else None)


@dataclass(frozen=True)
class TrendPoint:
    """One record's median of a metric: an earlier baseline of the base branch ("history"), this gate's
    baseline, or the candidate. label: the commit (short) or, without one, when the record was made."""

    role: str  # "history" | "baseline" | "candidate"
    label: str
    created_at: str
    value: float


@dataclass(frozen=True)
class Trend:
    """A headline metric over the base branch's last baselines, then the candidate (compare/trends.py)."""

    metric: str
    unit: str
    points: tuple[TrendPoint, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trend:
        return cls(metric=data["metric"], unit=data["unit"],
                   points=tuple(TrendPoint(**point) for point in data.get("points") or ()))


def _json_safe(value: Any) -> Any:
    """Tuples to lists, non-finite floats (unbounded CI ends, infinite MDE) to None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value

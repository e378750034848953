"""Was the service starved of CPU, in which windows, by what, and did both sides meet the same contention?

Pure: it reads each repetition's contention figures (capture/contention.py) and run-queue stats, and the
thresholds of `compare.contention` (docs/statistics.md "Contended runner" says why these and these values).

A window is starved when, over the load window,
  steal            the hypervisor took more than max_steal_pct of the machine's CPU time;
  other processes  processes other than the builds, the load generator and perfgate used more than
                   max_others_pct of the machine's CPU time, whatever the build's mean wait (a busy loop
                   beside it hurts through the few wake-ups that land behind it, which a mean hides:
                   docs/statistics.md "Contended runner");
  throttling       the build's cgroup throttled it in more than max_throttled_pct of its enforcement periods;
  run-queue wait   the build's mean wait was more than max_wait_ratio times the other side's (the same window
                   in duet, the other record's median otherwise), the other side's counted as at least
                   min_wait_us.
Every limit is a maximum: a value at the limit is not starved, so 100 % switches a percentage check off.
A record is also contended when its machine-wide run-queue p99 (bpftrace) is more than max_runq_p99_ratio
times the other record's, or above max_runq_p99_us. A side is contended when any of this holds for it.

The sides met the *same* contention only in duet, where the windows are shared, when neither build was
throttled or kept waiting more than the other in a quarter of them: then contention hits both members of each
pair and the comparison of CPU per request stays fair. Otherwise (and always for sides measured in different
windows, two runs or the alternate schedule, when either was contended) the contention is one-sided, and it
biases CPU per request itself: measured on the example service, a starved window's CPU per request moved by
-4 % to -39 % (docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from perfgate.capture.contention import ContentionWindow
from perfgate.capture.runq_stats import MACHINE, P99_FLOOR_US, RunqStats
from perfgate.config import ContentionConfig

STEAL, OTHERS, THROTTLING, RUNQ_WAIT = "steal", "other processes", "throttling", "run-queue wait"
ONE_SIDED_SHARE = 0.25  # of a side's windows (see one_sided)


@dataclass(frozen=True)
class WindowFigures:
    """The figures of one load window that the thresholds apply to (None: not measured)."""

    repetition: int
    steal_pct: float | None  # % of the machine's CPU time (all CPUs x the window)
    others_pct: float | None
    others_cpus: float | None  # the same, in CPUs (0.9 = most of one CPU)
    wait_us: float | None  # the build's mean run-queue wait each time one of its threads got a CPU
    throttled_pct: float | None  # % of enforcement periods throttled (the tightest limit's level)
    quota_cpus: float | None
    top_others: tuple[str, ...] = ()  # "name (pid) 0.8 CPUs", the biggest other processes

    @classmethod
    def of(cls, repetition: int, window: ContentionWindow) -> WindowFigures:
        capacity, wall = window.capacity_ns, window.wall_ns
        if capacity <= 0:
            return cls(repetition, None, None, None, None, None, None)
        levels = [t for t in window.throttle if t.periods > 0]
        tightest = max(levels, key=lambda t: t.throttled_periods / t.periods, default=None)
        return cls(
            repetition=repetition,
            steal_pct=_pct(window.steal_ns, capacity), others_pct=_pct(window.others_ns, capacity),
            others_cpus=None if window.others_ns is None else window.others_ns / wall,
            wait_us=window.service_wait_ns / window.service_switches / 1e3
            if window.service_wait_ns is not None and window.service_switches else None,
            throttled_pct=100 * tightest.throttled_periods / tightest.periods if tightest else
            (0.0 if window.service_ns is not None else None),
            quota_cpus=tightest.quota_cpus if tightest else None,
            top_others=tuple(f"{p.comm} ({p.pid}) {p.cpu_ns / wall:.2f} CPUs" for p in window.top_others))


def _pct(part: int | None, whole: int) -> float | None:
    return None if part is None else 100 * part / whole


@dataclass(frozen=True)
class StarvedWindow:
    repetition: int
    causes: tuple[str, ...]
    reason: str  # the causes with their figures


@dataclass(frozen=True)
class SideContention:
    role: str
    windows: tuple[WindowFigures, ...]
    starved: tuple[StarvedWindow, ...] = ()
    runq_reason: str | None = None  # the record's machine-wide run-queue p99 was too high

    @property
    def contended(self) -> bool:
        return bool(self.starved) or self.runq_reason is not None

    @property
    def causes(self) -> tuple[str, ...]:
        found = [cause for window in self.starved for cause in window.causes]
        if self.runq_reason:
            found.append(RUNQ_WAIT)
        return tuple(dict.fromkeys(found))

    def share(self, cause: str) -> float:
        """The fraction of this side's windows that `cause` starved."""
        hit = sum(cause in window.causes for window in self.starved)
        return hit / len(self.windows) if self.windows else 0.0

    def median(self, name: str) -> float | None:
        values = [v for w in self.windows if (v := getattr(w, name)) is not None]
        return statistics.median(values) if values else None

    @property
    def reason(self) -> str:
        """'candidate starved in 3 of 6 windows (rep 2: other processes 45 % of CPU time ...); ...'"""
        if not self.contended:
            return f"{self.role}: not contended"
        parts = []
        if self.starved:
            worst = max(self.starved, key=lambda s: len(s.causes))
            parts.append(f"starved of CPU in {len(self.starved)} of {len(self.windows)} windows "
                         f"(repetition {worst.repetition}: {worst.reason})")
        if self.runq_reason:
            parts.append(self.runq_reason)
        return f"{self.role} " + "; ".join(parts)


@dataclass(frozen=True)
class ContentionView:
    """Both sides' contention, and whether it was the same on both (see the module docstring)."""

    available: bool
    candidate: SideContention | None = None
    baseline: SideContention | None = None
    shared_windows: bool = False  # duet: both records measured in the same load windows
    one_sided: str | None = None  # why the sides met different contention, when they did
    reason: str | None = None  # why there are no figures, when there are none

    @property
    def sides(self) -> tuple[SideContention, ...]:
        return tuple(side for side in (self.baseline, self.candidate) if side is not None)

    @property
    def contended(self) -> bool:
        return any(side.contended for side in self.sides)

    @property
    def summary(self) -> str:
        """The figures that made the runner count as contended, for a rule's reason and the report."""
        text = "; ".join(side.reason for side in self.sides if side.contended) or "the runner was not contended"
        return f"{text} ({self.one_sided})" if self.one_sided else text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ContentionView:
        if not data:
            return cls(available=False, reason="not recorded")
        return cls(available=bool(data["available"]), candidate=_side(data.get("candidate")),
                   baseline=_side(data.get("baseline")), shared_windows=bool(data.get("shared_windows")),
                   one_sided=data.get("one_sided"), reason=data.get("reason"))


def _side(data: Mapping[str, Any] | None) -> SideContention | None:
    if data is None:
        return None
    windows = tuple(WindowFigures(**{**w, "top_others": tuple(w.get("top_others", ()))}) for w in data["windows"])
    starved = tuple(StarvedWindow(s["repetition"], tuple(s["causes"]), s["reason"]) for s in data["starved"])
    return SideContention(role=data["role"], windows=windows, starved=starved, runq_reason=data.get("runq_reason"))


# ---------------------------------------------------------------- judging
@dataclass(frozen=True)
class SideFigures:
    """What the judgment reads of one record: its windows' figures (by repetition) and run-queue stats."""

    role: str
    windows: tuple[WindowFigures, ...]
    runq: tuple[RunqStats, ...] = ()


def figures_of(role: str, windows: Sequence[tuple[int, ContentionWindow | None]],
               runq: Sequence[RunqStats] = ()) -> SideFigures:
    return SideFigures(role, tuple(WindowFigures.of(i, w) for i, w in windows if w is not None), tuple(runq))


def judge(candidate: SideFigures, baseline: SideFigures | None, limits: ContentionConfig, *,
          shared_windows: bool = False) -> ContentionView:
    if not candidate.windows and not (baseline and baseline.windows) and not candidate.runq:
        return ContentionView(available=False, reason="no contention figures in the records (recorded by "
                                                       "perfgate 0.2 and later)")
    runq_reasons = runq_contention(baseline.runq if baseline else (), candidate.runq, limits)
    cand = _side_contention(candidate, baseline, limits, shared_windows, runq_reasons[1])
    if baseline is None:
        return ContentionView(available=True, candidate=cand)
    base = _side_contention(baseline, candidate, limits, shared_windows, runq_reasons[0])
    return ContentionView(available=True, candidate=cand, baseline=base, shared_windows=shared_windows,
                          one_sided=one_sided(base, cand, shared_windows))


def _side_contention(side: SideFigures, other: SideFigures | None, limits: ContentionConfig, shared: bool,
                     runq_reason: str | None) -> SideContention:
    other_by_rep = {w.repetition: w for w in other.windows} if other else {}
    other_median = _median_of(other.windows, "wait_us") if other else None
    starved = []
    for window in side.windows:
        reference = other_by_rep.get(window.repetition) if shared else None
        other_wait = reference.wait_us if reference is not None else (None if shared else other_median)
        causes = starvation(window, limits, other_wait=other_wait, other_role=other.role if other else "")
        if causes:
            starved.append(StarvedWindow(window.repetition, tuple(c for c, _ in causes),
                                         ", ".join(text for _, text in causes)))
    return SideContention(role=side.role, windows=side.windows, starved=tuple(starved), runq_reason=runq_reason)


def starvation(window: WindowFigures, limits: ContentionConfig, *, other_wait: float | None = None,
               other_role: str = "") -> list[tuple[str, str]]:
    """The causes that starved the build in this window, each with its figures."""
    causes = []
    wait = window.wait_us
    if window.steal_pct is not None and window.steal_pct > limits.max_steal_pct:
        causes.append((STEAL, f"steal {window.steal_pct:.1f} % of CPU time (limit {limits.max_steal_pct:g} %)"))
    if window.throttled_pct is not None and window.throttled_pct > limits.max_throttled_pct:
        quota = f" by a {window.quota_cpus:g}-CPU limit" if window.quota_cpus else ""
        causes.append((THROTTLING, f"throttled{quota} in {window.throttled_pct:.0f} % of periods "
                                   f"(limit {limits.max_throttled_pct:g} %)"))
    reference = None if other_wait is None else max(other_wait, limits.min_wait_us)
    outwaited = wait is not None and reference is not None and wait > limits.max_wait_ratio * reference
    if window.others_pct is not None and window.others_pct > limits.max_others_pct:
        top = f"; {', '.join(window.top_others)}" if window.top_others else ""
        waiting = "" if outwaited or wait is None else f", the build's threads waiting {wait:.0f} µs on average"
        causes.append((OTHERS, f"other processes {window.others_pct:.0f} % of CPU time ({window.others_cpus:.2f} "
                               f"CPUs, limit {limits.max_others_pct:g} %{top}){waiting}"))
    if outwaited:
        causes.append((RUNQ_WAIT, f"run-queue wait {wait:.0f} µs on average, x{wait / reference:.1f} the "  # type: ignore[operator]
                                  f"{other_role}'s {other_wait:.0f} µs (limit x{limits.max_wait_ratio:g}, "
                                  f"the other side counted as at least {limits.min_wait_us:g} µs)"))
    return causes


def brief(window: WindowFigures, limits: ContentionConfig) -> str:
    """The causes one side alone can see (steal, other processes, throttling), each by its main figure:
    for the live progress line. '' when none."""
    figures = {STEAL: f"steal {window.steal_pct or 0:.0f} %", OTHERS: f"other processes {window.others_pct or 0:.0f} %",
               THROTTLING: f"throttled {window.throttled_pct or 0:.0f} %", RUNQ_WAIT: ""}
    return ", ".join(figures[cause] for cause, _ in starvation(window, limits))


def runq_contention(baseline: Sequence[RunqStats], candidate: Sequence[RunqStats], limits: ContentionConfig
                    ) -> tuple[str | None, str | None]:
    """(baseline's, candidate's) reason to count as contended from the machine-wide run-queue p99: more than
    max_runq_p99_ratio times the other record's median, or above max_runq_p99_us. Both directions."""
    base, cand = _median_p99(baseline), _median_p99(candidate)
    reasons: list[str | None] = []
    for own, other, other_role in ((base, cand, "candidate"), (cand, base, "baseline")):
        reason = None
        if own is not None and other is not None and own / max(other, P99_FLOOR_US) > limits.max_runq_p99_ratio:
            reason = (f"machine-wide run-queue p99 {own:.0f} µs, x{own / max(other, P99_FLOOR_US):.1f} the "
                      f"{other_role}'s {other:.0f} µs (limit x{limits.max_runq_p99_ratio:g})")
        elif own is not None and limits.max_runq_p99_us is not None and own > limits.max_runq_p99_us:
            reason = f"machine-wide run-queue p99 {own:.0f} µs (limit {limits.max_runq_p99_us:g} µs)"
        reasons.append(reason)
    return reasons[0], reasons[1]


def _median_p99(stats: Sequence[RunqStats]) -> float | None:
    values = [p99 for s in stats if (p99 := s.runq_p99_us(MACHINE)) is not None]
    return statistics.median(values) if values else None


def _median_of(windows: Sequence[WindowFigures], name: str) -> float | None:
    values = [v for w in windows if (v := getattr(w, name)) is not None]
    return statistics.median(values) if values else None


def one_sided(base: SideContention, cand: SideContention, shared_windows: bool) -> str | None:
    """Why the two sides did not meet the same contention, or None when they did (or neither met any).

    Only the windows of a duet are shared: there the machine-wide causes (steal, other processes) are one
    measurement for both builds, and the contention is one-sided when a build's own cause (throttling,
    run-queue wait) starved one build in at least ONE_SIDED_SHARE more of its windows than the other. A few
    one-sided windows cannot move the comparison much: the Hodges-Lehmann shift ignores up to ~29 % of stray
    values, and a rank test needs most pairs to agree. Sides measured in different windows (two runs, or the
    alternate schedule) never met the same contention when either was contended: starved windows on both say
    nothing of how much each lost (on a busy machine every window of both runs is starved, and a hog in one
    of them changes no share); the reason names the cause whose share differs most.
    """
    if not base.contended and not cand.contended:
        return None
    causes = (THROTTLING, RUNQ_WAIT) if shared_windows else (STEAL, OTHERS, THROTTLING, RUNQ_WAIT)
    shares = {cause: (base.share(cause), cand.share(cause)) for cause in causes}
    cause = max(causes, key=lambda c: abs(shares[c][0] - shares[c][1]))
    (base_share, cand_share), widest = shares[cause], abs(shares[cause][0] - shares[cause][1])
    if widest >= ONE_SIDED_SHARE or (not shared_windows and widest > 0):
        (more, more_share), (less, less_share) = sorted(((base.role, base_share), (cand.role, cand_share)),
                                                         key=lambda side: -side[1])
        return (f"{cause} starved the {more} in {100 * more_share:.0f} % of its windows, the {less} in "
                f"{100 * less_share:.0f} %")
    if shared_windows:
        return None
    if (base.runq_reason is None) != (cand.runq_reason is None):
        return f"only the {(base if base.runq_reason else cand).role}'s machine-wide run-queue p99 was high"
    return "the sides were measured apart (not in the same windows), so their contention cannot be shown to be the same"

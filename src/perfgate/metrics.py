"""THE metric registry: every metric perfgate can gate, once, with everything the stages need to know about it.

A metric is one `Metric` entry in METRICS: its name (what `gates:` rules name), the unit of its values,
its direction, the rule keys a rule on it may set, how to read its per-repetition values out of one side
(`values`), the scale it is compared on, what it measures (how contention or another environment bears
on a FAIL), whether the verdict's metrics table shows it, and its export names (Action output,
Pushgateway). Config validation (config/keys.py), the gate (gate.py), compare/runs.py, the publishers
(publish.py, report/pushgateway.py) and action.yml's outputs (checked by tests/unit/test_metrics.py) read
it. docs/architecture.md "Adding a metric" walks through a new entry.

This module imports nothing heavy: config/keys.py reads it to validate `gates:`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from perfgate.capture.syscalls import SyscallLatency, SyscallStats
    from perfgate.compare.inputs import SideInputs
    from perfgate.profile.model import Profile
    from perfgate.record_parts import GcCapture, Repetition

Values: TypeAlias = "tuple[float, ...] | str"  # per-repetition values, or why there are none
Measures = Literal["load", "cpu", "kernel", "errors", "capacity"]


@dataclass(frozen=True)
class GateRule:
    """One rule of `gates:`. Which fields apply depends on `metric` (its Metric.rule_keys)."""

    metric: str
    severity: str = "fail"
    max_increase_pct: float | None = None
    max_increase_abs: float | None = None
    max_decrease_pct: float | None = None
    max_value: float | None = None
    min_value: float | None = None
    pattern: str | None = None
    kind: str = "flat"
    max_share_pct: float | None = None
    max_share_increase_pp: float | None = None
    scope: str = "service"
    max_depth: int | None = None
    consecutive: int | None = None
    run_noise_pct: float | None = None

    @property
    def label(self) -> str:
        return f"{self.metric}[{self.pattern}]" if self.pattern else self.metric


def median_of(side: SideInputs, values: tuple[float, ...]) -> tuple[float | None, str]:
    return (statistics.median(values) if values else None), "candidate median"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # of a value and of a comparison's shift: "ms", "req/s", "µs", "pp", "fraction"
    higher_is_worse: bool
    rule_keys: tuple[str, ...]  # the keys a `gates:` rule on this metric may set (thresholds and qualifiers)
    values: Callable[[SideInputs, GateRule], Values] | None  # None: not compared by values (runq.depth)
    measures: Measures  # load and cpu FAILs may be the runner's when it was contended; errors always stand
    scale: Literal["log", "linear"] = "log"  # log: compared as ratios; linear: values that are often 0
    value_suffix: str = ""  # printed after a value or a limit: " ms", "%"
    in_metrics_table: bool = False  # compared in every verdict's metrics table
    output: str | None = None  # the Action output holding its change in percent
    pushgateway: str | None = None  # exported as perfgate_<side>_<this>, in base units (seconds)
    description: str = ""  # the Pushgateway HELP text, after the side
    # Both sides' values when they must be read together (from the same source); None from it: a rule
    # compares each side's own `values`, the metrics table shows no comparison.
    compared: Callable[[SideInputs, SideInputs], tuple[tuple[float, ...], tuple[float, ...]] | None] | None = None
    pairing: Literal["repetitions", "capacity probes"] = "repetitions"  # what value i of each side shares
    # An absolute limit on the candidate (max_value, min_value, max_share_pct) is checked against this.
    limit_value: Callable[[SideInputs, tuple[float, ...]], tuple[float | None, str]] = median_of


def per_repetition(value: Callable[[Repetition], float | None]) -> Callable[[SideInputs, GateRule], Values]:
    """An extractor from one number per finished repetition of the record (None: that repetition has none)."""
    def values(side: SideInputs, rule: GateRule) -> Values:
        return tuple(v for rep in side.record.ok_repetitions if (v := value(rep)) is not None)
    return values


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6


def _ok_rps(rep: Repetition) -> float | None:
    return rep.load.ok_count / (rep.load.total_ns / 1e9) if rep.load.total_ns else None


# ---------------------------------------------------------------- extractors that need the whole side
def missing_cpu(side: SideInputs) -> str:
    return side.cpu_problems[0] if side.cpu_problems else "no CPU profiles in the record (set cpu.pprof_url)"


def missing_runq(side: SideInputs) -> str:
    return side.runq_problems[0] if side.runq_problems else "no run-queue data in the record"


def _cpu_per_request(side: SideInputs, rule: GateRule) -> Values:
    return side.process_cpu_per_request_us or side.cpu_per_request_us or missing_cpu(side)


def cpu_per_request_pair(base: SideInputs, cand: SideInputs) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Both sides' CPU per request from the same source: process CPU time when both have it, else profiles."""
    if base.process_cpu_per_request_us and cand.process_cpu_per_request_us:
        return base.process_cpu_per_request_us, cand.process_cpu_per_request_us
    if base.cpu_per_request_us and cand.cpu_per_request_us:
        return base.cpu_per_request_us, cand.cpu_per_request_us
    return None


def _function_share(side: SideInputs, rule: GateRule) -> Values:
    return function_shares(side.profiles, rule) or missing_cpu(side)


def function_shares(profiles: Sequence[Profile], rule: GateRule) -> tuple[float, ...]:
    """Per profile: % of CPU in functions matching the pattern. Flat shares add up; cum shares overlap
    (a caller's cum contains its callees'), so the largest matching cum share stands for the group."""
    from perfgate.profile.names import match_functions

    shares = []
    for profile in profiles:
        if not profile.total:
            continue
        names = match_functions(rule.pattern or "", list(profile.functions))
        costs = [getattr(profile.functions[name], rule.kind) for name in names]
        combined = sum(costs) if rule.kind == "flat" else max(costs, default=0)
        shares.append(100.0 * combined / profile.total)
    return tuple(shares)


def _runq_p99(side: SideInputs, rule: GateRule) -> Values:
    return tuple(v for s in side.runq if (v := s.runq_p99_us(rule.scope)) is not None) or missing_runq(side)


def _capacity(side: SideInputs, rule: GateRule) -> Values:
    return side.capacity_rps or ("not measured: capacity probes run only in a duet with an automatic rate "
                                 "(perfgate run --against, or compare.schedule: duet without load.rps)")


def _capacity_compared(base: SideInputs, cand: SideInputs) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    return (base.capacity_rps, cand.capacity_rps) if base.capacity_rps and cand.capacity_rps else None


def _per_request_of(layer: str, sample_type: str) -> Callable[[SideInputs, GateRule], Values]:
    """A layer's figure per OK call, per repetition (compare/layers.py), or why the side has none."""
    def values(side: SideInputs, rule: GateRule) -> Values:
        found = side.layers.get(layer)
        if found is not None and found.per_request.get(sample_type):
            return found.per_request[sample_type]
        problems = found.problems if found is not None else ()
        return problems[0] if problems else f"no {layer} profiles in the record (set cpu.pprof_url)"
    return values


def _goroutines(figure: str) -> Callable[[SideInputs, GateRule], Values]:
    def values(side: SideInputs, rule: GateRule) -> Values:
        counts = side.goroutines.growth if figure == "growth" else side.goroutines.end_counts
        if counts:
            return tuple(float(v) for v in counts)
        problems = side.goroutines.problems
        return problems[0] if problems else "no goroutine snapshots in the record (set cpu.pprof_url)"
    return values


def _errors_over_all_calls(side: SideInputs, values: tuple[float, ...]) -> tuple[float | None, str]:
    return (side.errors / side.calls if side.calls else 1.0), "error rate over all calls"


def _syscalls_of(rep: Repetition) -> SyscallStats | None:
    capture = rep.syscalls
    return capture.stats if capture is not None and capture.status == "ok" else None


def missing_layer(side: SideInputs, name: str) -> str:
    """Why a layer below the CPU (gc, syscalls) has no figures on this side: its first repetition's note."""
    for rep in side.record.ok_repetitions:
        capture = getattr(rep, name)
        if capture is not None and capture.reason:
            return capture.reason
    return f"no {name} figures in the record (captured since perfgate 0.2; layers.enabled lists {name})"


def _syscall_values(figure: Callable[[Sequence[SyscallLatency], Repetition], float | None]
                    ) -> Callable[[SideInputs, GateRule], Values]:
    """Per repetition: `figure` of the calls the rule's pattern names (default: the calls that do work)."""
    def values(side: SideInputs, rule: GateRule) -> Values:
        found = [(stats.matching(rule.pattern), rep) for rep in side.record.ok_repetitions
                 if (stats := _syscalls_of(rep)) is not None]
        if not found:
            return missing_layer(side, "syscalls")
        figures = tuple(v for calls, rep in found if (v := figure(calls, rep)) is not None)
        return figures or f"no {rule.pattern or 'system'} calls of the service in any load window"
    return values


def _syscall_time_per_request(calls: Sequence[SyscallLatency], rep: Repetition) -> float | None:
    return sum(c.total_ns for c in calls) / rep.load.ok_count / 1e3 if rep.load and rep.load.ok_count else None


def _syscall_p99(calls: Sequence[SyscallLatency], rep: Repetition) -> float | None:
    from perfgate.capture.syscalls import merged

    p99_us = merged(calls, "matched").p99_us if calls else None
    return None if p99_us is None else p99_us / 1e3


def _gc_per_1k(figure: Callable[[GcCapture], float | None]) -> Callable[[SideInputs, GateRule], Values]:
    """Per repetition: `figure` of its GC capture per 1,000 OK requests."""
    def values(side: SideInputs, rule: GateRule) -> Values:
        figures = tuple(v * 1000 / rep.load.ok_count for rep in side.record.ok_repetitions
                        if rep.gc is not None and rep.gc.status == "ok" and rep.load and rep.load.ok_count
                        and (v := figure(rep.gc)) is not None)
        return figures or missing_layer(side, "gc")
    return values


# ---------------------------------------------------------------- the registry
LATENCY_KEYS = ("max_increase_pct", "max_increase_abs", "max_value", "run_noise_pct")
LAYER_KEYS = LATENCY_KEYS


def _latency(percentile: str) -> Metric:
    shown = percentile != "p90"
    exported = percentile in ("p95", "p99")
    return Metric(
        name=f"latency.{percentile}", unit="ms", higher_is_worse=True, rule_keys=LATENCY_KEYS,
        values=per_repetition(lambda rep: _ms(rep.load.percentile_ns(percentile))), measures="load", value_suffix=" ms",
        in_metrics_table=shown, output=f"latency-{percentile}-change-pct" if shown else None,
        pushgateway=f"latency_{percentile}_seconds" if exported else None,
        description=f"{percentile} latency, median over repetitions")


METRICS: tuple[Metric, ...] = (
    *(_latency(p) for p in ("p50", "p90", "p95", "p99")),
    Metric("rps", unit="req/s", higher_is_worse=False, rule_keys=("max_decrease_pct", "min_value", "run_noise_pct"),
           values=per_repetition(_ok_rps), measures="load", value_suffix=" req/s", in_metrics_table=True,
           output="rps-change-pct", pushgateway="requests_per_second",
           description="throughput, median over repetitions"),
    Metric("capacity", unit="req/s", higher_is_worse=False, rule_keys=("max_decrease_pct", "min_value"),
           values=_capacity, measures="capacity", value_suffix=" req/s", in_metrics_table=True,
           output="capacity-change-pct", compared=_capacity_compared, pairing="capacity probes"),
    Metric("error_rate", unit="fraction", higher_is_worse=True, rule_keys=("max_value", "max_increase_abs"),
           values=per_repetition(lambda rep: rep.load.error_rate), measures="errors", scale="linear",
           in_metrics_table=True, output="error-rate-change-pct", pushgateway="error_ratio",
           description="fraction of calls that failed, median over repetitions", limit_value=_errors_over_all_calls),
    Metric("cpu_per_request", unit="µs", higher_is_worse=True,
           rule_keys=("max_increase_pct", "max_increase_abs", "run_noise_pct"), values=_cpu_per_request,
           measures="cpu", value_suffix=" µs", in_metrics_table=True, output="cpu-per-request-change-pct",
           pushgateway="cpu_seconds_per_request", description="CPU time per request, median over repetitions",
           compared=cpu_per_request_pair),
    Metric("function_share", unit="pp", higher_is_worse=True,
           rule_keys=("pattern", "kind", "max_share_pct", "max_share_increase_pp", "run_noise_pct"),
           values=_function_share, measures="cpu", scale="linear", value_suffix="%"),
    Metric("runq.p99", unit="µs", higher_is_worse=True,
           rule_keys=("max_increase_pct", "max_increase_abs", "max_value", "scope", "run_noise_pct"),
           values=_runq_p99, measures="kernel", value_suffix=" µs", in_metrics_table=True,
           output="runq-p99-change-pct"),
    Metric("runq.depth", unit="threads", higher_is_worse=True, rule_keys=("max_depth", "consecutive"),
           values=None, measures="kernel"),
    # The layers below the CPU (compare/layers.py, docs/configuration.md "layers"). Delays and goroutine
    # growth are often 0: compared as differences. A lock's delay grows on a starved runner too: "load".
    Metric("alloc_bytes_per_request", unit="B", higher_is_worse=True, rule_keys=LAYER_KEYS,
           values=_per_request_of("allocs", "alloc_space"), measures="cpu", value_suffix=" B", in_metrics_table=True,
           pushgateway="alloc_bytes_per_request",
           description="heap bytes allocated per request, median over repetitions"),
    Metric("alloc_objects_per_request", unit="objects", higher_is_worse=True, rule_keys=LAYER_KEYS,
           values=_per_request_of("allocs", "alloc_objects"), measures="cpu", value_suffix=" objects",
           in_metrics_table=True, pushgateway="alloc_objects_per_request",
           description="heap objects allocated per request, median over repetitions"),
    Metric("mutex_delay_per_request", unit="µs", higher_is_worse=True, rule_keys=LAYER_KEYS,
           values=_per_request_of("mutex", "delay"), measures="load", scale="linear", value_suffix=" µs",
           in_metrics_table=True, pushgateway="mutex_delay_seconds_per_request",
           description="time goroutines waited for mutexes per request, median over repetitions"),
    Metric("block_delay_per_request", unit="µs", higher_is_worse=True, rule_keys=LAYER_KEYS,
           values=_per_request_of("block", "delay"), measures="load", scale="linear", value_suffix=" µs",
           in_metrics_table=True, pushgateway="block_delay_seconds_per_request",
           description="time goroutines spent blocked per request, median over repetitions"),
    Metric("goroutine_growth", unit="goroutines", higher_is_worse=True,
           rule_keys=("max_increase_abs", "max_value", "run_noise_pct"), values=_goroutines("growth"), measures="cpu",
           scale="linear", value_suffix=" goroutines", in_metrics_table=True,
           pushgateway="goroutines_gained_per_window",
           description="goroutines gained over a load window, median over repetitions"),
    Metric("goroutines", unit="goroutines", higher_is_worse=True, rule_keys=LAYER_KEYS, values=_goroutines("end"),
           measures="cpu", value_suffix=" goroutines", in_metrics_table=True, pushgateway="goroutines",
           description="goroutines at the end of a load window, median over repetitions"),
    # System calls (compare/syscalls.py) and GC per request (docs/configuration.md "layers"). A system call's
    # time is wall time, which a starved runner stretches (the wake-up waits for a CPU) like a lock's delay: "load".
    Metric("syscall_time_per_request", unit="µs", higher_is_worse=True,
           rule_keys=("pattern", *LAYER_KEYS),
           values=_syscall_values(_syscall_time_per_request), measures="load", scale="linear",
           value_suffix=" µs", in_metrics_table=True, output="syscall-time-per-request-change-pct",
           pushgateway="syscall_seconds_per_request",
           description="time in system calls that do work (not waits) per request, median over repetitions"),
    Metric("syscall.p99", unit="ms", higher_is_worse=True,
           rule_keys=("pattern", *LAYER_KEYS),
           values=_syscall_values(_syscall_p99), measures="load", value_suffix=" ms"),
    Metric("gc_cycles_per_1k_requests", unit="cycles", higher_is_worse=True,
           rule_keys=LAYER_KEYS,
           values=_gc_per_1k(lambda gc: gc.cycles), measures="cpu", scale="linear", value_suffix=" cycles",
           in_metrics_table=True, output="gc-cycles-per-1k-requests-change-pct",
           pushgateway="gc_cycles_per_1k_requests",
           description="garbage collections per 1,000 requests, median over repetitions"),
    Metric("gc_pause_per_1k_requests", unit="ms", higher_is_worse=True,
           rule_keys=LAYER_KEYS,
           values=_gc_per_1k(lambda gc: None if gc.pause_ns is None else gc.pause_ns / 1e6), measures="cpu",
           scale="linear", value_suffix=" ms", in_metrics_table=True, output="gc-pause-per-1k-requests-change-pct",
           pushgateway="gc_pause_seconds_per_1k_requests",
           description="GC stop-the-world time per 1,000 requests, median over repetitions"),
)
BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}
RULE_QUALIFIERS = ("pattern", "kind", "scope")  # rule keys that narrow a rule; the others are thresholds


def metric(name: str) -> Metric:
    """The registry entry named `name` (a config-validated rule's metric always has one)."""
    return BY_NAME[name]


def metric_values(side: SideInputs, rule: GateRule) -> Values:
    """The rule's metric per repetition on one side, or why it was not captured."""
    values = metric(rule.metric).values
    if values is None:
        raise ValueError(f"metric {rule.metric} is not compared by its values")
    return values(side, rule)


def compared_values(base: SideInputs, cand: SideInputs, rule: GateRule) -> tuple[Values, Values]:
    """Both sides' values for a rule on the metric: read together when the metric says so, else each side's."""
    entry = metric(rule.metric)
    if entry.compared is not None and (both := entry.compared(base, cand)) is not None:
        return both
    return metric_values(base, rule), metric_values(cand, rule)


def rule_thresholds(name: str) -> tuple[str, ...]:
    """The keys of a rule on metric `name` of which at least one must be set."""
    return tuple(k for k in metric(name).rule_keys if k not in RULE_QUALIFIERS)


def fail_stands(name: str) -> bool:
    """A FAIL on this metric stands on an untrusted comparison (another environment, a contended runner,
    unknown drift between runs): failed calls are failed calls, whatever the runner."""
    entry = BY_NAME.get(name)
    return entry is not None and entry.measures == "errors"


def outputs() -> dict[str, Metric]:
    """Action output name -> metric, for every metric that has one (action.yml declares each)."""
    return {m.output: m for m in METRICS if m.output}


def table_metrics() -> Sequence[Metric]:
    return tuple(m for m in METRICS if m.in_metrics_table)

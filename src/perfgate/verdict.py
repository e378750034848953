"""The Verdict: everything a renderer needs, decided by gate.py and saved as verdict.json.

Renderers (report/*, github/, gha.py) read a Verdict and decide nothing. `Verdict.from_dict`
reads verdict.json back, so the fork-safe workflow_run job can publish a verdict it did not compute.

verdict.json format history: 1 (perfgate 0.1.0) first format; 2: the CPU movers are costs per request
(FunctionMove.unit, baseline, candidate, change; shares beside), not shares; rules[].cause (optional) since.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from perfgate.compare.comparison import Cause, FunctionMove, LayerView, MetricComparison, Outcome, Trend
from perfgate.compare.contention import ContentionView
from perfgate.compare.syscalls import GcView, SyscallView
from perfgate.errors import (
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_REGRESSION,
    VerdictError,
)
from perfgate.files import MAX_JSON_DOCUMENT_BYTES, FileRefused, parse_json, read_capped, unwritable
from perfgate.typed import type_problems

VERDICT_SCHEMA_VERSION = 2
VERDICT_FILE = "verdict.json"
RuleResult = Literal["SKIP", "PASS", "WARN", "FAIL", "INCONCLUSIVE"]  # SKIP: the data a rule needs was not captured
OUTCOME_ORDER: dict[str, int] = {"SKIP": -1, "PASS": 0, "WARN": 1, "INCONCLUSIVE": 2, "FAIL": 3}


def worst(outcomes: list[str]) -> Outcome:
    return max(outcomes, key=OUTCOME_ORDER.__getitem__, default="PASS")  # type: ignore[return-value]


def exit_code_for(outcome: str, *, fail_on_inconclusive: bool) -> int:
    if outcome == "FAIL":
        return EXIT_REGRESSION
    if outcome == "INCONCLUSIVE":
        return EXIT_REGRESSION if fail_on_inconclusive else EXIT_INCONCLUSIVE
    return EXIT_PASS


@dataclass(frozen=True)
class RuleOutcome:
    """One gate rule's result with its evidence: the comparison (both values, change, CI, p) or facts."""

    rule: str
    metric: str
    severity: str
    outcome: RuleResult
    reason: str
    threshold: str
    comparison: MetricComparison | None = None
    p_adjusted: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    cause: Cause | None = None  # statistical rules, and FAILs a validity check made INCONCLUSIVE


@dataclass(frozen=True)
class CpuView:
    available: bool
    reason: str | None = None
    risers: tuple[FunctionMove, ...] = ()
    fallers: tuple[FunctionMove, ...] = ()
    cpu_per_request: MetricComparison | None = None
    pprof_diff_command: str | None = None
    functions_tested: int = 0  # the family of the movers' multiple-testing correction
    functions_own: int = 0  # of that family, the service's own functions (more of the correction's weight)
    probe_profiles: int = 0  # capacity probes' profiles (both sides) the movers' count test added (compare/movers.py)
    unit: str = "µs"  # of the movers' figures: CPU µs per request, or "%" (shares) when that is not known
    per_request_basis: str | None = None  # where CPU per request came from (compare/functions.py)

    @property
    def significant_risers(self) -> tuple[FunctionMove, ...]:
        return tuple(m for m in self.risers if m.significant)


@dataclass(frozen=True)
class KernelView:
    available: bool
    reason: str | None = None
    scope: str = "service"
    baseline_runq_p99_us: float | None = None
    candidate_runq_p99_us: float | None = None
    baseline_machine_p99_us: float | None = None
    candidate_machine_p99_us: float | None = None
    longest_depth_run: int | None = None
    depth_threshold: int | None = None


@dataclass(frozen=True)
class EnvironmentDiff:
    key: str
    baseline: Any
    candidate: Any


@dataclass(frozen=True)
class RecordSummary:
    path: str
    role: str
    created_at: str
    git_sha: str | None
    git_ref: str | None
    repetitions: int
    ok_repetitions: int
    p95_ms: tuple[float, ...]
    rps: tuple[float, ...]


@dataclass(frozen=True)
class RunSetup:
    """How the two sides were measured, said in every report: the comparison mode and the request rate."""

    mode: str  # one of MODES
    description: str  # one sentence for the report
    rps: int | None = None  # the fixed rate each side was loaded at; None = no rate limit
    rps_source: str | None = None  # "automatic" (perfgate found it) | "configured" (load.rps)
    rate_fraction: float | None = None
    capacity_rps_at_start: Mapping[str, float] = field(default_factory=dict)


MODES = ("built A/B duet", "hand-configured duet", "interleaved, alternating", "interleaved, restarting each build",
         "baseline artifact", "baseline record", "saved records", "first run")


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    exit_code: int
    headline: str
    reasons: tuple[str, ...]
    suggestions: tuple[str, ...]
    rules: tuple[RuleOutcome, ...]
    metrics: tuple[MetricComparison, ...]
    cpu: CpuView
    kernel: KernelView
    environment_diffs: tuple[EnvironmentDiff, ...]
    notes: tuple[str, ...]
    baseline: RecordSummary | None
    candidate: RecordSummary
    created_at: str
    perfgate_version: str
    schema_version: int = VERDICT_SCHEMA_VERSION
    contention: ContentionView = field(default_factory=lambda: ContentionView(available=False, reason="not judged"))
    setup: RunSetup | None = None  # None in verdicts of perfgate versions that did not record it
    layers: tuple[LayerView, ...] = ()  # allocations, lock and block contention, goroutines (compare/layer_views.py)
    syscalls: SyscallView | None = None  # the service's system calls (compare/syscalls.py); None: not timed
    gc: GcView | None = None  # where the GC figures came from, or why not; None: not read
    trends: tuple[Trend, ...] = ()  # headline metrics over the base branch's last baselines (compare/trends.py)

    @property
    def failing_rules(self) -> tuple[RuleOutcome, ...]:
        return tuple(r for r in self.rules if r.outcome == "FAIL")

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    def save(self, folder: Path) -> Path:
        path = folder / VERDICT_FILE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n",
                            encoding="utf-8")
        except OSError as error:
            raise unwritable(folder, error) from None
        return path

    @staticmethod
    def load(folder_or_file: Path) -> Verdict:
        path = folder_or_file / VERDICT_FILE if folder_or_file.is_dir() else folder_or_file
        try:
            data = parse_json(read_capped(path, MAX_JSON_DOCUMENT_BYTES))
        except FileNotFoundError:
            raise VerdictError(f"{path}: cannot read the verdict: no such file") from None
        except (FileRefused, ValueError) as error:
            raise VerdictError(f"{path}: cannot read the verdict: {error}") from None
        try:
            verdict = verdict_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise VerdictError(f"{path}: not a perfgate verdict of schema {VERDICT_SCHEMA_VERSION}: {error}") \
                from error
        problems = type_problems(verdict, allow_infinity=True)  # a verdict may come from a fork's artifact
        if problems:
            raise VerdictError(f"{path}: not a perfgate verdict of schema {VERDICT_SCHEMA_VERSION}: "
                                + "; ".join(problems))
        return verdict


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------- reading verdict.json back
def _build(cls: type, data: Mapping[str, Any] | None) -> Any:
    if data is None:
        return None
    names = {f.name for f in fields(cls)}
    return cls(**{k: _tuplify(v) for k, v in data.items() if k in names})


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def comparison_from_dict(data: Mapping[str, Any] | None) -> MetricComparison | None:
    return None if data is None else MetricComparison.from_dict(data)


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    if data.get("schema_version") != VERDICT_SCHEMA_VERSION:
        raise ValueError(f"schema_version {data.get('schema_version')!r}, expected {VERDICT_SCHEMA_VERSION}")
    rules = tuple(RuleOutcome(**{**r, "comparison": comparison_from_dict(r.get("comparison")),
                                 "evidence": dict(r.get("evidence") or {}),
                                 "cause": Cause(r["cause"]) if r.get("cause") else None}) for r in data["rules"])
    cpu = dict(data["cpu"])
    cpu.pop("flamegraph_file", None)  # verdicts before it became a report file beside them named it here
    cpu_view = CpuView(**{**cpu, "risers": tuple(_build(FunctionMove, m) for m in cpu.get("risers", [])),
                          "fallers": tuple(_build(FunctionMove, m) for m in cpu.get("fallers", [])),
                          "cpu_per_request": comparison_from_dict(cpu.get("cpu_per_request"))})
    return Verdict(
        outcome=data["outcome"], exit_code=data["exit_code"], headline=data["headline"],
        reasons=tuple(data["reasons"]), suggestions=tuple(data["suggestions"]), rules=rules,
        metrics=tuple(comparison_from_dict(m) for m in data["metrics"]), cpu=cpu_view,
        kernel=_build(KernelView, data["kernel"]), contention=ContentionView.from_dict(data.get("contention")),
        environment_diffs=tuple(_build(EnvironmentDiff, d) for d in data["environment_diffs"]),
        notes=tuple(data["notes"]), baseline=_build(RecordSummary, data.get("baseline")),
        candidate=_build(RecordSummary, data["candidate"]), created_at=data["created_at"],
        perfgate_version=data["perfgate_version"], schema_version=data["schema_version"],
        setup=_setup_from(data.get("setup")),
        layers=tuple(LayerView.from_dict(view) for view in data.get("layers") or ()),
        syscalls=SyscallView.from_dict(data.get("syscalls")), gc=_build(GcView, data.get("gc")),
        trends=tuple(Trend.from_dict(trend) for trend in data.get("trends") or ()))


def _setup_from(data: Mapping[str, Any] | None) -> RunSetup | None:
    if data is None:
        return None
    setup = _build(RunSetup, data)
    return replace(setup, capacity_rps_at_start=dict(data.get("capacity_rps_at_start") or {}))

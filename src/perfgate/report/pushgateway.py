"""Export a verdict's numbers to a Prometheus Pushgateway.

`exposition(verdict)` is the text exposition format 0.0.4 (gauges only, no timestamps, trailing newline;
HELP texts are fixed per metric, so every group pushes the same help for a name);
`push_metrics` PUTs it to /metrics/job/<job>[/instance/<v>][/branch/<v>], so each push replaces the
group's previous series. Label values with a '/' (branch names) or empty ones use the `@base64` form.
A failure is a ToolError; the caller reports it and the gate's exit code stays what the verdict says.
"""

from __future__ import annotations

import base64
import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from perfgate.compare.comparison import MetricComparison
from perfgate.errors import ToolError
from perfgate.metrics import METRICS
from perfgate.verdict import OUTCOME_ORDER, Verdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
ALLOWED_LABELS = frozenset({"job", "instance", "branch", "verdict", "rule", "metric"})
SIDES = ("baseline", "candidate")
# verdict metric name -> (exported name stem, what it is), from the registry; values in base units (seconds).
EXPORTED_METRICS = {m.name: (m.pushgateway, m.description) for m in METRICS if m.pushgateway}
OUTCOME_CODES = ", ".join(f"{code} {name}"
                          for name, code in sorted(OUTCOME_ORDER.items(), key=lambda kv: kv[1]))
UNIT_SCALE = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


@dataclass
class _Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


class _Exposition:
    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def add(self, name: str, help_text: str, value: float | None, **labels: str) -> None:
        if value is None or not isinstance(value, int | float) or math.isnan(value):
            return
        if not METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        bad = [k for k in labels if not LABEL_NAME.match(k) or k not in ALLOWED_LABELS]
        if bad:
            raise ValueError(f"label names {bad} are not allowed (allowed: {sorted(ALLOWED_LABELS)})")
        family = self.families.setdefault(name, _Family(name, help_text))
        family.samples.append((labels, float(value)))

    def text(self) -> str:
        lines = []
        for family in self.families.values():
            lines.append(f"# HELP {family.name} {escape_help(family.help)}")
            lines.append(f"# TYPE {family.name} gauge")
            for labels, value in family.samples:
                lines.append(f"{family.name}{format_labels(labels)} {format_value(value)}")
        return "\n".join(lines) + "\n"


def escape_label_value(value: str) -> str:
    """Text format 0.0.4: backslash, double quote and line feed are escaped in label values."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """Text format 0.0.4: backslash and line feed are escaped in HELP text."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items()) + "}"


def format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _in_base_units(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return value * UNIT_SCALE.get(unit.split(" ")[0], 1.0)


def exposition(verdict: Verdict) -> str:
    """The verdict's metrics as Prometheus text exposition format 0.0.4."""
    out = _Exposition()
    for outcome in OUTCOME_ORDER:
        out.add("perfgate_verdict", "1 for the perfgate verdict's outcome, 0 for the other outcomes",
                1.0 if verdict.outcome == outcome else 0.0, verdict=outcome)
    out.add("perfgate_verdict_code", f"perfgate verdict: {OUTCOME_CODES}",
            OUTCOME_ORDER.get(verdict.outcome))
    out.add("perfgate_exit_code", "exit code of the perfgate gate for this verdict", verdict.exit_code)
    for rule in verdict.rules:
        out.add("perfgate_rule_outcome_code", f"perfgate gate rule outcome: {OUTCOME_CODES}",
                OUTCOME_ORDER.get(rule.outcome), rule=rule.rule, metric=rule.metric)
    by_name = {m.name: m for m in verdict.metrics}
    for name, (stem, description) in EXPORTED_METRICS.items():
        comparison = by_name.get(name)
        for side in SIDES:
            out.add(f"perfgate_{side}_{stem}", f"{side} {description}",
                    _side_value(verdict, comparison, name, side))
    for side, value in zip(SIDES, (verdict.kernel.baseline_runq_p99_us, verdict.kernel.candidate_runq_p99_us),
                           strict=True):
        out.add(f"perfgate_{side}_runq_latency_p99_seconds",
                f"{side} run-queue latency p99 of the gated scope (service or machine), all repetitions",
                _in_base_units(value, "µs"))
    _add_comparisons(out, verdict.metrics)
    return out.text()


def _side_value(verdict: Verdict, comparison: MetricComparison | None, name: str, side: str) -> float | None:
    if comparison is not None:
        median = comparison.baseline_median if side == "baseline" else comparison.candidate_median
        return _in_base_units(median, comparison.unit)
    summary = verdict.baseline if side == "baseline" else verdict.candidate
    if summary is None:
        return None
    from_summary = {"latency.p95": [v / 1e3 for v in summary.p95_ms], "rps": list(summary.rps)}
    values: Iterable[float] = from_summary.get(name, [])
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else None


def _add_comparisons(out: _Exposition, metrics: Iterable[MetricComparison]) -> None:
    for m in metrics:
        out.add("perfgate_metric_relative_change", "candidate vs baseline median shift / baseline median",
                m.rel_change, metric=m.name)
        out.add("perfgate_metric_p_value", "one-sided Mann-Whitney p-value in the worse direction",
                m.p_value, metric=m.name)


# ---------------------------------------------------------------- pushing
def grouping_path(job: str, instance: str | None = None, branch: str | None = None) -> str:
    """/metrics/job/<job>[/instance/<v>][/branch/<v>] with @base64 for values holding '/' or empty."""
    if not job:
        raise ValueError("the Pushgateway job name must not be empty")
    parts = ["metrics"]
    for label, value in (("job", job), ("instance", instance), ("branch", branch)):
        if value is None:
            continue
        if value == "" or "/" in value:
            encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii") or "="
            parts += [f"{label}@base64", encoded]
        else:
            parts += [label, quote(value, safe="")]
    return "/" + "/".join(parts)


def push_metrics(verdict: Verdict, *, url: str, job: str, instance: str | None = None,
                 branch: str | None = None, timeout_s: float = 10) -> str:
    """PUT the verdict's metrics to the Pushgateway at `url`; returns the group URL (credentials hidden).

    Raises ToolError when the gateway cannot be reached or does not answer 200/202.
    """
    target = url.rstrip("/") + grouping_path(job, instance, branch)
    shown = redact_url(target)
    try:
        response = requests.put(target, data=exposition(verdict).encode("utf-8"),
                                headers={"Content-Type": CONTENT_TYPE}, timeout=timeout_s)
    except requests.RequestException as error:
        raise ToolError(f"could not push metrics to the Pushgateway at {shown}: {type(error).__name__}: "
                        f"{redact_url(str(error))}",
                        hint="check report.pushgateway.url and that the gateway is reachable from the "
                             "runner; the gate's verdict is not affected") from error
    if response.status_code not in (200, 202):
        body = " ".join(response.text.split())[:300]
        raise ToolError(f"the Pushgateway at {shown} rejected the metrics: HTTP {response.status_code}"
                        + (f": {body}" if body else ""),
                        hint="a 400 usually means a metric of the same name was pushed with another type by "
                             "another group; the gate's verdict is not affected")
    return shown


def redact_url(text: str) -> str:
    """The text with any user:password@ in URLs replaced by ***@."""
    def redact(match: re.Match[str]) -> str:
        parts = urlsplit(match.group())
        if parts.username is None and parts.password is None:
            return match.group()
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    return re.sub(r"https?://[^\s'\"]+", redact, text)

"""Verdicts for the renderer tests, built from real MetricComparison objects (compare_metric on numbers).

The texts (reasons, thresholds, suggestions) imitate what gate.py writes; renderers must show them as
they are. HOSTILE_NAMES are function names, notes and refs that try to break out of Markdown or HTML.
Values within one comparison are distinct: tied values make the exact test enumerate permutations (slow).
Verdicts are frozen, so each builder is computed once per test session.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from perfgate.capture.cgroup import V2, ThrottleCounters
from perfgate.capture.contention import ContentionWindow, OtherProcess
from perfgate.compare.comparison import MetricComparison, Trend, TrendPoint
from perfgate.compare.contention import ContentionView, figures_of, judge
from perfgate.compare.stats import compare_metric
from perfgate.config import load_config
from perfgate.verdict import (
    CpuView,
    EnvironmentDiff,
    FunctionMove,
    KernelView,
    RecordSummary,
    RuleOutcome,
    Verdict,
)

HOSTILE_NAMES = (
    "main.(*T).<script>alert(1)</script>",
    "a|b",
    "`code`",
    "-->",
    "@everyone",
    "[x](javascript:y)",
    "![img](https://example.invalid/pixel.png)",
    "<!-- perfgate:sticky -->",
    "line\nbreak | cell",
    "# heading",
    "see #1 and https://example.invalid",
    "**bold** _em_ ~~strike~~ $x$",
)
CREATED = "2026-01-02T03:04:05.000+00:00"
N_TESTS = 5
BASE_P95 = (10.1, 10.3, 9.9, 10.0, 10.2, 10.15, 9.95, 10.05)
BASE_P99 = (14.0, 14.6, 13.9, 14.2, 14.4, 14.1, 14.3, 13.8)
BASE_RPS = (5120.0, 5080.0, 5150.0, 5100.0, 5090.0, 5130.0, 5110.0, 5105.0)
BASE_ERRORS = (0.0,) * 8
BASE_CPU = (180.0, 182.0, 179.0, 181.0, 183.0, 180.5, 181.5, 179.5)


def scaled(values: tuple[float, ...], factor: float) -> tuple[float, ...]:
    return tuple(round(v * factor, 4) for v in values)


def metrics(p95: tuple[float, ...], p99: tuple[float, ...], rps: tuple[float, ...], errors: tuple[float, ...],
            cpu: tuple[float, ...], *, base_reps: int = 8) -> tuple[MetricComparison, ...]:
    def compare(name: str, base: tuple[float, ...], cand: tuple[float, ...], unit: str, worse_up=True):
        return compare_metric(name, base[:base_reps], cand, higher_is_worse=worse_up, unit=unit,
                              n_tests=N_TESTS)

    return (
        compare("latency.p95", BASE_P95, p95, "ms"),
        compare("latency.p99", BASE_P99, p99, "ms"),
        compare("rps", BASE_RPS, rps, "requests/s", worse_up=False),
        compare("error_rate", BASE_ERRORS, errors, "fraction"),
        compare("cpu_per_request", BASE_CPU, cpu, "µs CPU per request"),
    )


def rule(name: str, comparison: MetricComparison | None, outcome: str, threshold: str, reason: str,
         *, severity: str = "fail", p_adjusted: float | None = None) -> RuleOutcome:
    return RuleOutcome(rule=name, metric=comparison.name if comparison else name, severity=severity,
                       outcome=outcome, reason=reason, threshold=threshold, comparison=comparison,
                       p_adjusted=p_adjusted)


def summary(role: str, p95: tuple[float, ...], *, path: str = "", sha: str = "0123456789abcdef0123",
            ref: str = "main") -> RecordSummary:
    return RecordSummary(path=path or f"perfgate-out/{role}", role=role, created_at=CREATED, git_sha=sha,
                         git_ref=ref, repetitions=len(p95), ok_repetitions=len(p95), p95_ms=p95,
                         rps=tuple(5000.0 for _ in p95))


FUNCTIONS_TESTED = 50


CPU_PER_REQUEST_US = (250.0, 275.0)  # baseline, candidate: a mover's share is its cost over these


def move(function: str, base: float, cand: float, p: float | None = 0.0002, status: str = "changed",
         kind: str = "flat") -> FunctionMove:
    """A mover costing `base` and `cand` µs of CPU per request; its adjusted p is a Bonferroni-like stand-in
    for the gate's Benjamini-Hochberg over 50."""
    adjusted = None if p is None else min(1.0, p * FUNCTIONS_TESTED)
    return FunctionMove(function=function, kind=kind, unit="µs", baseline=base, candidate=cand,
                        change=round(cand - base, 4), rel_change=(cand - base) / base if base else None,
                        p_value=p, status=status, p_adjusted=adjusted,
                        significant=adjusted is not None and adjusted < 0.05,
                        baseline_share_pct=100 * base / CPU_PER_REQUEST_US[0],
                        candidate_share_pct=100 * cand / CPU_PER_REQUEST_US[1])


PPROF_COMMAND = ("go tool pprof -top -normalize -diff_base=perfgate-out/baseline/cpu/rep-01.pb.gz "
                 "perfgate-out/candidate/cpu/rep-01.pb.gz")


@cache
def trends() -> tuple[Trend, ...]:
    """Three earlier baselines (one labelled by a hostile ref), the gate's baseline and the candidate."""
    labels = (("history", "1a2b3c4"), ("history", "$x$ <b>"), ("history", "2026-01-01T00:00"),
              ("baseline", "9f8e7d6"), ("candidate", "fedcba9"))

    def trend(metric: str, unit: str, values: tuple[float, ...]) -> Trend:
        return Trend(metric, unit, tuple(TrendPoint(role, label, f"2026-01-0{i + 1}", value)
                                         for i, ((role, label), value) in enumerate(zip(labels, values, strict=True))))

    return (trend("latency.p95", "ms", (10.1, 9.9, 10.2, 10.07, 11.58)),
            trend("cpu_per_request", "µs", (181.0, 179.5, 180.2, 180.6, 205.9)))


def fail_verdict() -> Verdict:
    p95, p99 = scaled(BASE_P95, 1.15), scaled(BASE_P99, 1.12)
    comparisons = metrics(p95, p99, scaled(BASE_RPS, 0.99), BASE_ERRORS, scaled(BASE_CPU, 1.14))
    by_name = {c.name: c for c in comparisons}
    rules = (
        rule("latency.p95", by_name["latency.p95"], "FAIL", "+10.0 %",
             "latency.p95: regression +15.0% [+13.6%, +16.5%] (91.7% CI; +1.511 ms at the baseline median "
             "10.07 ms), p=0.0008 (adjusted) < 0.05, beyond 10.0%", p_adjusted=0.0008),
        rule("latency.p99", by_name["latency.p99"], "WARN", "+20.0 %",
             "latency.p99: worse +12 %, within fail", severity="warn", p_adjusted=0.0009),
        rule("rps", by_name["rps"], "PASS", "-10.0 %", "rps: no significant change", p_adjusted=0.4),
        rule("error_rate", by_name["error_rate"], "PASS", "<= 0.01", "error_rate: 0 errors in the candidate"),
        rule("cpu_per_request", by_name["cpu_per_request"], "FAIL", "+10.0 %",
             "cpu_per_request: regression +14.0 %, beyond 10.0%", p_adjusted=0.0008),
        rule("runq.depth", None, "PASS", "depth > 5 for 3 samples", "runq.depth: longest run 1 sample",
             severity="warn"),
    )
    risers = (move("main.checksumPayload", 31.2, 40.5), move("main.(*T).<script>alert(1)</script>", 1.0, 2.5),
              move("a|b", 0.5, 1.25, p=0.01), move("`code`", 0.0, 0.8, p=None, status="appeared"),
              move("@everyone", 0.3, 0.9), move("[x](javascript:y)", 0.2, 0.6, kind="cum"))
    fallers = (move("runtime.mallocgc", 12.0, 9.5), move("-->", 2.0, 0.0, p=None, status="vanished"))
    return Verdict(
        outcome="FAIL", exit_code=1,
        headline="latency.p95 regressed +15.0 % (beyond the 10 % threshold)",
        reasons=(rules[0].reason, rules[4].reason),
        suggestions=(),
        rules=rules, metrics=comparisons,
        cpu=CpuView(available=True, risers=risers, fallers=fallers, functions_tested=FUNCTIONS_TESTED,
                    per_request_basis="process CPU time",
                    cpu_per_request=by_name["cpu_per_request"], pprof_diff_command=PPROF_COMMAND),
        kernel=KernelView(available=True, scope="service", baseline_runq_p99_us=48.0,
                          candidate_runq_p99_us=61.5, baseline_machine_p99_us=90.0,
                          candidate_machine_p99_us=97.0, longest_depth_run=1, depth_threshold=5),
        environment_diffs=(EnvironmentDiff("kernel", "6.1.0-18-amd64", "6.1.0-<b>21</b>-amd64"),),
        notes=("cpu profile of repetition 3: `curl` said <!-- --> @octocat [x](javascript:y)",),
        baseline=summary("baseline", BASE_P95),
        candidate=summary("candidate", p95, ref="feature/<script>@everyone|x", sha="fedcba9876543210fedc"),
        created_at=CREATED, perfgate_version="0.1.0", trends=trends(),
    )


@cache
def pass_verdict() -> Verdict:
    p95 = (10.06, 10.21, 10.01, 10.11, 10.16, 9.98, 10.02, 10.13)
    p99 = (14.12, 14.52, 13.95, 14.22, 14.37, 14.01, 14.27, 13.91)
    comparisons = metrics(p95, p99, (5111.0, 5091.0, 5141.0, 5101.0, 5096.0, 5126.0, 5116.0, 5103.0),
                          (0.0,) * 8, (180.6, 181.2, 179.7, 181.1, 182.2, 180.2, 181.3, 180.1))
    rules = tuple(rule(c.name, c, "PASS", "+10.0 %", f"{c.name}: no significant change", p_adjusted=0.6)
                  for c in comparisons)
    return Verdict(
        outcome="PASS", exit_code=0, headline="no regression beyond the thresholds",
        reasons=("all 5 rules passed",), suggestions=(), rules=rules, metrics=comparisons,
        cpu=CpuView(available=True, risers=(move("main.sortRecords", 20.0, 20.4, p=0.3),), functions_tested=50,
                    fallers=(move("main.encodePayload", 15.0, 14.8, p=0.4),),
                    cpu_per_request=comparisons[-1], pprof_diff_command=PPROF_COMMAND),
        kernel=KernelView(available=False,
                          reason="bpftrace not found ('bpftrace' is not an executable on PATH)"),
        environment_diffs=(), notes=(),
        baseline=summary("baseline", BASE_P95), candidate=summary("candidate", p95),
        created_at=CREATED, perfgate_version="0.1.0",
    )


@cache
def inconclusive_verdict() -> Verdict:
    p95 = (10.9, 12.8, 9.4)
    comparisons = metrics(p95, (15.0, 18.2, 13.1), (5000.0, 4700.0, 5300.0), (0.0, 0.0, 0.0),
                          (185.0, 170.0, 195.0), base_reps=3)
    rules = tuple(rule(c.name, c, "INCONCLUSIVE", "+10.0 %",
                       f"{c.name}: too few repetitions to ever detect a change: need >= 6 repetitions "
                       "per side at alpha 0.05 (Holm over 5 metrics: per-test alpha 0.01); have 3 baseline "
                       "and 3 candidate")
                  for c in comparisons)
    return Verdict(
        outcome="INCONCLUSIVE", exit_code=4,
        headline="this run cannot tell: too few repetitions and a noisy runner",
        reasons=(rules[0].reason, "the runner was contended: run-queue p99 tripled (48 µs -> 160 µs)"),
        suggestions=("raise load.repetitions to at least 6 (10 recommended)",
                     "use compare.mode: interleaved so both builds run on the same runner, taking turns",
                     "run on a quieter runner (a dedicated or larger machine) — contention made this run "
                     "noisy"),
        rules=rules, metrics=comparisons,
        cpu=CpuView(available=False, reason="cpu profile unavailable: GET http://127.0.0.1:6060/debug/pprof/"
                                            "profile failed: connection refused"),
        kernel=KernelView(available=True, scope="service", baseline_runq_p99_us=48.0,
                          candidate_runq_p99_us=160.0, baseline_machine_p99_us=70.0,
                          candidate_machine_p99_us=410.0, longest_depth_run=12, depth_threshold=5),
        contention=contended_runner(),
        environment_diffs=(EnvironmentDiff("nproc", 4, 2),),
        notes=("baseline record from workflow run 123",),
        baseline=summary("baseline", BASE_P95[:3]), candidate=summary("candidate", p95),
        created_at=CREATED, perfgate_version="0.1.0",
    )


def contended_runner() -> ContentionView:
    """Judged by compare/contention.py on figures like a real run's: a quiet baseline, a candidate that met a
    busy neighbour (with a hostile name) in two windows and a CPU limit in one."""
    second = 1_000_000_000
    quiet = ContentionWindow(wall_ns=second, ncpus=2, busy_ns=second, steal_ns=0, idle_ns=second, interrupts_ns=0,
                             service_ns=second // 3, perfgate_ns=second // 2, others_ns=second // 50,
                             service_wait_ns=second // 30, service_run_ns=second // 3, service_switches=1000)
    hog = replace(quiet, others_ns=9 * second // 10, service_wait_ns=2 * second // 3,
                  top_others=(OtherProcess(HOSTILE_NAMES[0][:15], 4242, 9 * second // 10),
                              OtherProcess(HOSTILE_NAMES[5][:15], 4343, second // 20)))
    limited = replace(quiet, throttle=(ThrottleCounters("/ci/service", V2, 0.5, 10, 6, second // 4),))
    limits = load_config(None, environ={}, require_target=False).compare.contention
    return judge(figures_of("candidate", [(1, hog), (2, quiet), (3, hog), (4, limited)]),
                 figures_of("baseline", [(i, quiet) for i in range(1, 5)]), limits)


def with_movers(verdict: Verdict, count: int) -> Verdict:
    """The verdict with `count` risers and `count` fallers, long hostile names included."""
    risers = tuple(move(f"pkg{i}.{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]}.func{i}" + "x" * (i % 200),
                        1.0, 1.0 + (count - i) / count) for i in range(count))
    fallers = tuple(move(f"lib{i}.(*Decoder).decode|{i}", 2.0, 2.0 - (count - i) / count)
                    for i in range(count))
    return replace(verdict, cpu=replace(verdict.cpu, risers=risers, fallers=fallers))

"""Does the syscall layer find a real blocking system call, and stay quiet without one? (issue #16, "Prove it")

Per gate: a fresh temporary git repository holding the example greeter at two commits and `perfgate run
--against HEAD~1` in it, the Action's default flow (both commits built, both started by perfgate, automatic
rate, duet, kernel view on with syscalls.bt's probes, GC from gctrace). Scenarios (the head commit's change):

  aa      a comment changes: the same code on both sides                 -> no FAIL, no call named
  read    -regress-syscall-read 1ms: every call makes one extra read() of a pipe a timer feeds 1 ms later
          -> syscall_time_per_request FAILs and read() is the first call named, in >= 9 of 10 gates
  read10  the same read on 10 % of the calls (-regress-syscall-pct 10), spread evenly -> the same goal

Rules: syscall_time_per_request +20 %, syscall.p99 of read() <= 1 ms, latency.p95 +10 %, error_rate <= 1 %.
Each gate's result is one line of bench/results/syscalls.jsonl, written as soon as it ends: outcome, rules, the
first call named (significant), the top riser, the figures' changes, wall and load time, the 1-minute load
average before and after. `--report` prints the table; `--write` puts it into docs/benchmarks.md.
Smoke it with `--gates 1 --scenarios aa,read --pairs 3 --duration 1`.

usage: .venv/bin/python bench/bench_syscalls.py [--gates 10] [--scenarios aa,read,read10] [--pairs N]
           [--duration S] [--keep] [--report] [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench_default_flow import median_of, median_pct, share
from docs_section import add_table_options, run_and_report
from greeter_gate import (
    COMMENT_ONLY,
    add_gate_options,
    append_result,
    flow_config,
    gate_in_new_repo,
    gate_result,
    results_by_scenario,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "syscalls.jsonl"
WORK = Path(os.environ.get("PERFGATE_BENCH_DIR", "/tmp/perfgate-bench-syscalls"))
CALL = "read"
GATES = [
    {"metric": "syscall_time_per_request", "max_increase_pct": 20},
    {"metric": "syscall.p99", "pattern": CALL, "max_value": 1},
    {"metric": "latency.p95", "max_increase_pct": 10},
    {"metric": "error_rate", "max_value": 0.01},
]
# the head commit's edits to syscalls.go per scenario: (text in the base, text in the head)
READ = ("syscalls.go", 'fs.Duration("regress-syscall-read", 0,',
        'fs.Duration("regress-syscall-read", time.Millisecond,')
TEN_PCT = ("syscalls.go", 'fs.Float64("regress-syscall-pct", 100,', 'fs.Float64("regress-syscall-pct", 10,')
EDITS = {"aa": (COMMENT_ONLY,), "read": (READ,), "read10": (READ, TEN_PCT)}
SCENARIOS = tuple(EDITS)


def one_gate(scenario: str, args: argparse.Namespace) -> dict:
    return gate_in_new_repo(WORK, scenario, args, lambda out: flow_config(out, GATES, args.pairs, args.duration),
                            EDITS[scenario], summarize)


def summarize(verdict: dict, scenario: str, code: int) -> dict:
    metrics = {m["name"]: m for m in verdict["metrics"]}
    view = verdict.get("syscalls") or {}
    moves = view.get("moves") or []
    named = next((m["name"] for m in moves if m["significant"] and m["change_us"] > 0), None)
    read = next((m for m in moves if m["name"] == CALL), {})
    return {
        "scenario": scenario, "outcome": verdict["outcome"], "exit_code": code,
        "rules": {r["rule"]: r["outcome"] for r in verdict["rules"]},
        "syscalls_available": view.get("available"), "named_call": named,
        "top_riser": moves[0]["name"] if moves and moves[0]["change_us"] > 0 else None,
        "calls_tested": view.get("tested"),
        "syscall_time_change": (metrics.get("syscall_time_per_request") or {}).get("rel_change"),
        "syscall_time_baseline_us": (metrics.get("syscall_time_per_request") or {}).get("baseline_median"),
        "read_p99_us": [read.get("baseline_p99_us"), read.get("candidate_p99_us")],
        "read_calls_per_request": [read.get("baseline_calls"), read.get("candidate_calls")],
        "p95_change": (metrics.get("latency.p95") or {}).get("rel_change"),
        "gc_cycles_change": (metrics.get("gc_cycles_per_1k_requests") or {}).get("rel_change"),
        "gc_source": (verdict.get("gc") or {}).get("candidate_source"),
    }


def run(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    plan = [s for s in args.scenarios.split(",") for _ in range(args.gates)]
    for number, scenario in enumerate(plan, 1):
        result = gate_result(one_gate, scenario, args)
        append_result(RESULTS, result)
        print(f"[{number}/{len(plan)}] {scenario}: {result.get('outcome', 'error')}, named {result.get('named_call')} "
              f"(wall {result.get('wall_s')} s, load average {result.get('load_avg_before')})", flush=True)


# ---------------------------------------------------------------- the table
GOALS = {"aa": "no FAIL, no call named", "read": "FAIL and read() named first >= 9/10",
         "read10": "FAIL and read() named first >= 9/10"}
TIME_RULE = "syscall_time_per_request"
P99_RULE = f"syscall.p99[{CALL}]"


def report() -> str:
    groups = results_by_scenario(RESULTS)
    lines = ["| scenario | goal | gates | any FAIL | syscall_time_per_request FAIL | syscall.p99[read] FAIL "
             "| read() named first | any call named | median syscall time/request change (baseline) "
             "| median p95 change | median read() p99 base → head | wall s (median) | load average (median, max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        group = groups.get(scenario)
        if not group:
            continue
        ok = [g for g in group if "outcome" in g]
        loads = sorted(g["load_avg_before"] for g in ok)
        base_p99 = median_of([{"v": g["read_p99_us"][0]} for g in ok], "v")
        head_p99 = median_of([{"v": g["read_p99_us"][1]} for g in ok], "v")
        lines.append(
            f"| {scenario} | {GOALS[scenario]} | {len(group)} ({len(group) - len(ok)} errors) | "
            f"{share(sum(g['outcome'] == 'FAIL' for g in ok), len(ok))} | "
            f"{share(sum(g['rules'].get(TIME_RULE) == 'FAIL' for g in ok), len(ok))} | "
            f"{share(sum(g['rules'].get(P99_RULE) == 'FAIL' for g in ok), len(ok))} | "
            f"{share(sum(g['named_call'] == CALL for g in ok), len(ok))} | "
            f"{share(sum(g['named_call'] is not None for g in ok), len(ok))} | "
            f"{median_pct(ok, 'syscall_time_change')} ({median_of(ok, 'syscall_time_baseline_us')} µs) | "
            f"{median_pct(ok, 'p95_change')} | {base_p99} → {head_p99} µs | {median_of(ok, 'wall_s')} | "
            f"{median_of(ok, 'load_avg_before')}, {max(loads, default=0):.1f} |")
    return "\n".join(lines)


SECTION = "## The syscall layer on a blocking read (bench/bench_syscalls.py)"
METHOD = """Each row is a number of independent gates, each `perfgate run --against HEAD~1` in a fresh temporary
git repository holding the example greeter at two commits, as the Action's default flow runs it (both commits
built and started by perfgate, automatic rate, duet, kernel view on with syscalls.bt's probes in the kernel
program, GC from gctrace). The head commit of `read` turns on -regress-syscall-read 1ms (one extra blocking
`read()` per call, of a pipe a timer feeds 1 ms later); `read10` the same on 10 % of the calls; `aa` changes a
comment. Rules: `syscall_time_per_request` +20 %, `syscall.p99` of `read` <= 1 ms, `latency.p95` +10 %,
`error_rate` <= 1 %. "read() named first": the first call the verdict's syscall view names (only calls whose time
per request rose significantly are named) is `read`. Rates with their 95 % Clopper-Pearson interval. Raw
results, one line per gate: bench/results/syscalls.jsonl."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=10, help="gates per scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    add_gate_options(parser)
    add_table_options(parser)
    args = parser.parse_args()
    return run_and_report(args, run, report, SECTION, METHOD)


if __name__ == "__main__":
    sys.exit(main())

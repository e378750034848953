"""Do the layers below the CPU find a real regression and name its function, and stay quiet without one?
(issue #16, "Prove it": allocations, lock contention, goroutine leak)

Per gate: a fresh temporary git repository holding the example greeter at two commits and `perfgate run
--against HEAD~1` in it, the Action's default flow (both commits built, both started by perfgate, automatic
rate, duet, every layer on with the greeter's default profiling rates: mutex 1 in 10, block 10 µs). Scenarios
(the head commit's change to a knob's default):

  aa     a comment changes: the same code on both sides        -> no FAIL, no function named in any layer
  alloc  -regress-alloc-bytes 65536 (main.allocBallast)   -> alloc_bytes_per_request FAILs, allocBallast named first
  lock   -regress-lock-hold 5ms on every 20th call (main.greetingPrefix): the hold spans several arrivals at any
         rate the flow picks, so calls wait for it                -> mutex_delay_per_request FAILs, greetingPrefix first
  leak   -regress-leak-every 100 (main.leakWatcher)              -> goroutine_growth FAILs, leakWatcher named first

Goal for each knob: its rule FAILs and its function is the first significant riser of its layer in >= 9 of 10
gates; for aa: no FAIL and nothing named. Each gate's result is one line of bench/results/layers_gates.jsonl,
written as soon as it ends, with the 1-minute load average before and after. `--report` prints the table;
`--write` puts it into docs/benchmarks.md. Smoke it with `--gates 1 --scenarios aa,lock --pairs 3 --duration 2`
(windows under 2 s carry no delta profiles).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench_default_flow import median_of, share
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
RESULTS = ROOT / "bench" / "results" / "layers_gates.jsonl"
WORK = Path(os.environ.get("PERFGATE_BENCH_DIR", "/tmp/perfgate-bench-layers-gates"))
GATES = [
    {"metric": "alloc_bytes_per_request", "max_increase_pct": 20},
    {"metric": "mutex_delay_per_request", "max_increase_abs": 10},
    {"metric": "goroutine_growth", "max_increase_abs": 5},
    {"metric": "latency.p95", "max_increase_pct": 10},
    {"metric": "error_rate", "max_value": 0.01},
]
# per scenario: (file, text in the base, text in the head), the layer, its rule and the function to name
EDITS = {
    "aa": (COMMENT_ONLY,),
    "alloc": (("main.go", 'fs.Int("regress-alloc-bytes", 0,', 'fs.Int("regress-alloc-bytes", 65536,'),),
    "lock": (("layers.go", 'fs.Duration("regress-lock-hold", 0,',
              'fs.Duration("regress-lock-hold", 5*time.Millisecond,'),
             ("layers.go", 'fs.Int("regress-lock-every", defaultLockEvery,', 'fs.Int("regress-lock-every", 20,')),
    "leak": (("layers.go", 'fs.Int("regress-leak-every", 0,', 'fs.Int("regress-leak-every", 100,'),),
}
EXPECTED = {"alloc": ("allocs", "alloc_bytes_per_request", "main.allocBallast"),
            "lock": ("mutex", "mutex_delay_per_request", "main.greetingPrefix"),
            "leak": ("goroutines", "goroutine_growth", "main.leakWatcher")}
SCENARIOS = tuple(EDITS)


def one_gate(scenario: str, args: argparse.Namespace) -> dict:
    return gate_in_new_repo(WORK, scenario, args,
                            lambda out: flow_config(out, GATES, args.pairs, args.duration, kernel=None),
                            EDITS[scenario], summarize)


def summarize(verdict: dict, scenario: str, code: int) -> dict:
    metrics = {m["name"]: m for m in verdict["metrics"]}
    views = {view["layer"]: view for view in verdict.get("layers") or ()}
    named = {layer: next((m["function"] for m in view.get("risers") or () if m["significant"]), None)
             for layer, view in views.items()}
    return {
        "scenario": scenario, "outcome": verdict["outcome"], "exit_code": code,
        "rules": {r["rule"]: r["outcome"] for r in verdict["rules"]},
        "available": {layer: view["available"] for layer, view in views.items()},
        "named_first": named,
        "changes": {name: (metrics.get(name) or {}).get("rel_change") for name in
                    ("alloc_bytes_per_request", "mutex_delay_per_request", "goroutine_growth", "latency.p95")},
        "abs_changes": {name: [(metrics.get(name) or {}).get("baseline_median"),
                               (metrics.get(name) or {}).get("candidate_median")]
                        for name in ("mutex_delay_per_request", "goroutine_growth")},
    }


def run(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    plan = [scenario for _ in range(args.gates) for scenario in args.scenarios.split(",")]  # round-robin
    for number, scenario in enumerate(plan, 1):
        result = gate_result(one_gate, scenario, args)
        append_result(RESULTS, result)
        print(f"[{number}/{len(plan)}] {scenario}: {result.get('outcome', 'error')}, named "
              f"{ {k: v for k, v in (result.get('named_first') or {}).items() if v} } "
              f"(wall {result.get('wall_s')} s, load average {result.get('load_avg_before')})", flush=True)


# ---------------------------------------------------------------- the table
def report() -> str:
    groups = results_by_scenario(RESULTS)
    lines = ["| scenario | goal | gates | any FAIL | its rule FAILs | its function named first | any function named "
             "| wall s (median) | load average (median, max) |", "|---|---|---|---|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        group = groups.get(scenario)
        if not group:
            continue
        ok = [g for g in group if "outcome" in g]
        loads = sorted(g["load_avg_before"] for g in ok)
        anything = share(sum(any(g["named_first"].values()) for g in ok), len(ok))
        if scenario in EXPECTED:
            layer, rule, function = EXPECTED[scenario]
            goal = f"{rule} FAILs, {function} named first >= 9/10"
            fails = share(sum(g["rules"].get(rule) == "FAIL" for g in ok), len(ok))
            first = share(sum(g["named_first"].get(layer) == function for g in ok), len(ok))
        else:
            goal, fails, first = "no FAIL, nothing named", "–", "–"
        lines.append(f"| {scenario} | {goal} | {len(group)} ({len(group) - len(ok)} errors) | "
                     f"{share(sum(g['outcome'] == 'FAIL' for g in ok), len(ok))} | {fails} | {first} | {anything} | "
                     f"{median_of(ok, 'wall_s')} | {median_of(ok, 'load_avg_before')}, {max(loads, default=0):.1f} |")
    return "\n".join(lines)


SECTION = "## The layers below the CPU on real regressions (bench/bench_layers_gates.py)"
METHOD = """Each row is a number of independent gates, each `perfgate run --against HEAD~1` in a fresh temporary
git repository holding the example greeter at two commits, as the Action's default flow runs it (both commits
built and started by perfgate, automatic rate, duet, every layer on, the greeter's default profiling rates).
The head commit of `alloc` allocates 64 KiB more per call in `main.allocBallast`; `lock` holds the lock every
call takes for 5 ms on every 20th call in `main.greetingPrefix`; `leak` starts a goroutine that never ends in
`main.leakWatcher` on one call in 100; `aa` changes a comment. Rules: `alloc_bytes_per_request` +20 %,
`mutex_delay_per_request` +10 µs, `goroutine_growth` +5, `latency.p95` +10 %, `error_rate` <= 1 %. "Named
first": the first significant riser of the knob's layer is its function. Rates with their 95 % Clopper-Pearson
interval. Raw results, one line per gate: bench/results/layers_gates.jsonl.

A first run of the same 40 gates (main at b390d92; bench/results/layers_gates_b390d92.jsonl) gave the knob rows
alike (alloc 10/10, lock 9/10 FAIL, the other one INCONCLUSIVE "runner contended", leak 10/10; each function named
first 10/10) and no A/A FAIL, but named a function in 3 of its 10 A/A gates: `main.buildRecords` and
`main.sortRecords` among the allocations, and net/http's connection reader among the goroutines (one more name,
`main.buildRecords`, in a lock gate). Two changes followed, and the table is the run after them: goroutine
snapshots leave out the connection reader of each of perfgate's own requests in flight (docs/configuration.md),
and the layers compared share alpha instead of taking alpha each (docs/statistics.md, "Movers below the CPU")."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=10, help="gates per scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    add_gate_options(parser)
    add_table_options(parser)
    args = parser.parse_args()
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.duration is not None and args.duration < 2:
        parser.error("--duration must be at least 2: shorter windows get no delta profiles")
    return run_and_report(args, run, report, SECTION, METHOD)


if __name__ == "__main__":
    sys.exit(main())

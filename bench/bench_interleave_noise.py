"""How much noise each interleaved schedule leaves between the two sides, measured side by side.

Not a test: it measures. A/A (the same greeter binary on both sides) with the real CLI, once per schedule
per round, rounds rotating the schedule order so a slow drift of the machine spreads over all of them:
  restart    each repetition starts its build fresh (no compare.baseline_address)
  alternate  both builds stay up on their own ports; the load takes turns A B, B A, ...
  duet       both builds stay up and are loaded at the same moment
All at the same fixed rate per build (load.rps), so the only difference is the schedule. For each run
the spread of the pairwise differences (candidate / baseline - 1, per repetition pair) of CPU per
request and of p95 latency, and the CPU-per-request MDE the gate reported (paired Wilcoxon).

    .venv/bin/python bench/bench_interleave_noise.py [--rounds 2] [--write] [--from SAVED_OUTPUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml
from docs_section import replace_section
from perfgate_child import run_perfgate

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / ".tools" / "bin" / "greeter"
SECTION = "## Interleaved schedules side by side (bench/bench_interleave_noise.py)"
SCHEDULES = ("restart", "alternate", "duet")
PAIRS, DURATION_S, WARMUP_S, RPS = 10, 4.0, 2.0, 1200
sys.path.insert(0, str(ROOT / "bench"))
from bench_gate_quality import free_port  # noqa: E402


def greeter(grpc: int, pprof: int) -> dict:
    return {"command": [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr", f"127.0.0.1:{pprof}"]}


def config(schedule: str, out: Path) -> dict:
    head, head_pprof, base, base_pprof = (free_port() for _ in range(4))
    compare: dict = {"mode": "interleaved", "baseline_service": greeter(head, head_pprof)}
    if schedule != "restart":
        compare = {"mode": "interleaved", "schedule": schedule, "baseline_address": f"127.0.0.1:{base}",
                   "baseline_pprof_url": f"http://127.0.0.1:{base_pprof}",
                   "baseline_service": greeter(base, base_pprof)}
    return {
        "target": {"address": f"127.0.0.1:{head}", "call": "greeter.Greeter/SayHello",
                   "data": {"name": "bench", "items": 64}},
        "load": {"concurrency": 4, "rps": RPS, "duration_s": DURATION_S, "warmup_s": WARMUP_S,
                 "repetitions": PAIRS},
        "cpu": {"pprof_url": f"http://127.0.0.1:{head_pprof}"},
        "kernel": {"enabled": False},
        "gates": [{"metric": "cpu_per_request", "max_increase_pct": 3}],
        "report": {"plots": False, "comment": "never"},
        "output": str(out),
        "service": greeter(head, head_pprof),
        "compare": compare,
    }


def run_once(schedule: str, folder: Path) -> dict:
    folder.mkdir(parents=True)
    path = folder / "perfgate.yml"
    path.write_text(yaml.safe_dump(config(schedule, folder / "out")), encoding="utf-8")
    run_perfgate(["run", "--config", str(path)], cwd=folder, timeout=900)
    return summarize(schedule, folder / "out")


def summarize(schedule: str, out: Path) -> dict:
    sides = [json.loads((out / side / "record.json").read_text()) for side in ("baseline", "candidate")]
    verdict = json.loads((out / "verdict.json").read_text())
    cpu = [[rep["service_cpu_ns"] / rep["load"]["ok_count"] for rep in side["repetitions"]] for side in sides]
    p95 = [[rep["load"]["p95_ns"] for rep in side["repetitions"]] for side in sides]
    metric = next(m for m in verdict["metrics"] if m["name"] == "cpu_per_request")
    return {"schedule": schedule, "cpu_pair_sd": pair_sd(*cpu), "p95_pair_sd": pair_sd(*p95),
            "cpu_cv": statistics.mean(cv(values) for values in cpu), "cpu_mde": metric["mde_rel"],
            "p_method": metric["p_method"], "outcome": verdict["outcome"]}


def pair_sd(base: list[float], cand: list[float]) -> float:
    return statistics.stdev(c / b - 1 for b, c in zip(base, cand, strict=True))


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def table(results: list[dict]) -> str:
    lines = ["| schedule | runs | spread of pair differences, CPU/request (sd) | same, p95 latency (sd) | "
             "CPU/request spread within a side (cv) | CPU/request MDE (gate) | verdicts |",
             "|---|---|---|---|---|---|---|"]
    for schedule in SCHEDULES:
        rows = [r for r in results if r["schedule"] == schedule]
        if not rows:
            continue
        outcomes = ", ".join(sorted(r["outcome"] for r in rows))
        lines.append(f"| {schedule} | {len(rows)} | {_pcts(rows, 'cpu_pair_sd')} | {_pcts(rows, 'p95_pair_sd')} | "
                     f"{_pcts(rows, 'cpu_cv')} | {_pcts(rows, 'cpu_mde')} | {outcomes} |")
    return "\n".join(lines)


def _pcts(rows: list[dict], key: str) -> str:
    return " / ".join(f"{100 * r[key]:.1f} %" if r[key] is not None else "–" for r in rows)


METHOD = f"""A/A with the real CLI: the same greeter binary on both sides, {PAIRS} repetition pairs of
{DURATION_S:g} s at {RPS} requests/s per build (c=4) after a {WARMUP_S:g} s warm-up, CPU profiles on, kernel
view off; schedules rotate within each round. "Spread of pair differences" is the standard deviation of
candidate/baseline − 1 over the pairs: what the paired test has to see through. Figures per run, in order."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    parser.add_argument("--from", dest="saved", type=Path, help="render the JSON lines a previous run printed")
    args = parser.parse_args()
    if args.saved:
        results = [json.loads(line) for line in args.saved.read_text().splitlines() if line.startswith("{")]
    else:
        results = measure(args.rounds)
    body = table(results)
    print(body)
    if args.write:
        replace_section(SECTION, f"{SECTION}\n\n{METHOD}\n\n{body}\n")
    return 0


def measure(rounds: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="perfgate-noise-") as work:
        for round_index in range(rounds):
            order = SCHEDULES[round_index % 3:] + SCHEDULES[:round_index % 3]
            for schedule in order:
                result = run_once(schedule, Path(work) / f"{round_index}-{schedule}")
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


if __name__ == "__main__":
    sys.exit(main())

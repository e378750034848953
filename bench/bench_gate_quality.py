"""Verdict quality of the whole gate on the real example service (issue "Compare and gate", Prove it).

Scenarios, each a number of independent gates (a fresh baseline and candidate every time):
  aa          same binary on both sides                         -> false FAIL rate
  cpu+N       candidate whose main.checksumPayload does more work, sized so the service's CPU per request
              rises by about N % (knob = N / CHECKSUM_SHARE; the function is ~15 % of the service's CPU)
                                                                -> detection rate, named function ranked first
  hog         same binary, CPU hogs beside the candidate only   -> INCONCLUSIVE vs FAIL
in `baseline` mode (baseline record, then candidate record) and in `interleaved` mode (A B A B).
Each gate's load budget: 2 sides x repetitions x duration_s (default 2 x 6 x 2 s = 24 s, within 60 s).

Every finished gate is appended to bench/results/gate_quality.jsonl at once, so an interrupted run
keeps what it measured; `--report` prints the table from that file and `--write` also replaces the
"Verdict quality" section of docs/benchmarks.md with it. Not a test: it takes about an hour on 2 cores.

usage: .venv/bin/python bench/bench_gate_quality.py [--gates 20] [--levels 5,10,20] [--modes baseline,interleaved,duet]
                                                    [--scenarios aa,cpu,hog] [--report] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml
from docs_section import add_table_options, run_and_report
from perfgate_child import run_perfgate

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / ".tools" / "bin" / "greeter"
RESULTS = ROOT / "bench" / "results" / "gate_quality.jsonl"
WORK = Path(os.environ.get("PERFGATE_BENCH_DIR", "/tmp/perfgate-bench-gates"))
FUNCTION = "checksumPayload"
REPETITIONS, DURATION_S, WARMUP_S = 6, 2.0, 0.5
# duet: both builds loaded at once at a fixed rate each, so a gate's load time is repetitions x duration.
DUET_REPETITIONS, DUET_DURATION_S, DUET_WARMUP_S, DUET_RPS = 10, 4.0, 2.0, 1200
GATES = [
    {"metric": "latency.p95", "max_increase_pct": 10},
    {"metric": "rps", "max_decrease_pct": 10},
    {"metric": "cpu_per_request", "max_increase_pct": 3},
    {"metric": "error_rate", "max_value": 0.01},
]
HOGS = 3
# +30 % of main.checksumPayload's work measured +4.5 % CPU per request (examples/greeter/README.md),
# so the function carries about 15 % of the service's CPU: +N % overall needs a knob of N / 0.15.
# At duet's fixed 1200 rps a side each request costs more fixed CPU (fewer requests per wake-up): a knob of
# 50 measured a median +6.6 % over 9 gates (bench/results/gate_quality_duet_calibration.jsonl), so there
# the function carries about 13 %.
CHECKSUM_SHARE = {"baseline": 0.15, "history": 0.15, "interleaved": 0.15, "duet": 0.13}
# `history` mode: baseline mode whose gate also gets the previous HISTORY_RECORDS baseline records (from
# earlier gates, minutes apart, as a base branch's artifacts would be), so it measures run-to-run drift.
# Fixed ports: the address is part of what a record says it measured, and history must match it.
HISTORY_RECORDS, HISTORY_GRPC, HISTORY_PPROF = 4, 50351, 6361
HISTORY: list[Path] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service(grpc: int, pprof: int, knob_pct: float) -> dict:
    return {"command": [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr", f"127.0.0.1:{pprof}",
                        "-regress-function", FUNCTION, "-regress-cpu-pct", str(knob_pct)],
            "ready": "grpc_health", "start_timeout_s": 20}


def config(mode: str, knob_pct: float, kernel: bool, out: Path, grpc: int, pprof: int) -> dict:
    if mode == "duet":
        return duet_config(knob_pct, kernel, out)
    base = {
        "target": {"address": f"127.0.0.1:{grpc}", "call": "greeter.Greeter/SayHello",
                   "data": {"name": "bench", "items": 64}},
        "load": {"concurrency": 4, "duration_s": DURATION_S, "warmup_s": WARMUP_S, "repetitions": REPETITIONS},
        "cpu": {"pprof_url": f"http://127.0.0.1:{pprof}"},
        "kernel": {"enabled": kernel},
        "gates": GATES,
        "report": {"plots": False, "comment": "never"},
        "output": str(out),
        "service": service(grpc, pprof, knob_pct),
    }
    if mode == "interleaved":
        base["compare"] = {"mode": "interleaved", "baseline_service": service(grpc, pprof, 0)}
    return base


def duet_config(knob_pct: float, kernel: bool, out: Path) -> dict:
    """Both builds up on their own ports for the whole gate; compare.schedule: duet loads both at once."""
    (head_grpc, head_pprof), (base_grpc, base_pprof) = (free_port(), free_port()), (free_port(), free_port())
    return {
        "target": {"address": f"127.0.0.1:{head_grpc}", "call": "greeter.Greeter/SayHello",
                   "data": {"name": "bench", "items": 64}},
        "load": {"concurrency": 4, "rps": DUET_RPS, "duration_s": DUET_DURATION_S, "warmup_s": DUET_WARMUP_S,
                 "repetitions": DUET_REPETITIONS},
        "cpu": {"pprof_url": f"http://127.0.0.1:{head_pprof}"},
        "kernel": {"enabled": kernel},
        "gates": GATES,
        "report": {"plots": False, "comment": "never"},
        "output": str(out),
        "service": service(head_grpc, head_pprof, knob_pct),
        "compare": {"mode": "interleaved", "schedule": "duet", "baseline_address": f"127.0.0.1:{base_grpc}",
                    "baseline_pprof_url": f"http://127.0.0.1:{base_pprof}",
                    "baseline_service": service(base_grpc, base_pprof, 0)},
    }


def perfgate(args: list[str], cfg: dict, folder: Path) -> int:
    path = folder / f"perfgate-{len(list(folder.glob('perfgate-*.yml')))}.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return run_perfgate([*args, "--config", str(path)], cwd=folder, timeout=600)


def start_hogs() -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS)]  # noqa: S603


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def one_gate(scenario: str, mode: str, knob_pct: float, *, kernel_always: bool = False) -> dict:
    folder = WORK / f"{scenario}-{mode}-{time.time_ns()}"
    folder.mkdir(parents=True)
    grpc, pprof = free_port(), free_port()
    kernel = kernel_always or scenario == "hog"
    if mode == "duet":  # hogs, if any, run beside both builds for the whole gate: that is what duet faces
        hogs = start_hogs() if scenario == "hog" else []
        try:
            code = perfgate(["run"], config(mode, knob_pct, kernel, folder / "out", grpc, pprof), folder)
        finally:
            stop(hogs)
    elif mode == "interleaved":
        code = perfgate(["run"], config(mode, knob_pct, kernel, folder / "out", grpc, pprof), folder)
    else:
        if mode == "history":
            grpc, pprof = HISTORY_GRPC, HISTORY_PPROF
            fill_history(folder, kernel)
        perfgate(["run", "--baseline"], config(mode, 0, kernel, folder / "out", grpc, pprof), folder)
        history = [arg for path in HISTORY[-HISTORY_RECORDS:] for arg in ("--history", str(path))]
        hogs = start_hogs() if scenario == "hog" else []
        try:
            code = perfgate(["run", "--compare-to", str(folder / "out" / "baseline"), *history],
                            config(mode, knob_pct, kernel, folder / "out", grpc, pprof), folder)
        finally:
            stop(hogs)
        if mode == "history":
            HISTORY.append(folder / "out" / "baseline")
    verdict = json.loads((folder / "out" / "verdict.json").read_text())
    return {**summarize(verdict, scenario, mode, knob_pct, code), "kernel": kernel}


def fill_history(folder: Path, kernel: bool) -> None:
    """Baseline records of earlier runs until HISTORY_RECORDS exist (only before the first history gate)."""
    while len(HISTORY) < HISTORY_RECORDS:
        out = folder / f"history-{len(HISTORY)}"
        perfgate(["run", "--baseline"], config("history", 0, kernel, out, HISTORY_GRPC, HISTORY_PPROF), folder)
        HISTORY.append(out / "baseline")


def summarize(verdict: dict, scenario: str, mode: str, knob_pct: float, code: int) -> dict:
    metrics = {m["name"]: m for m in verdict["metrics"]}
    risers = verdict["cpu"].get("risers") or []
    return {
        "scenario": scenario, "mode": mode, "knob_pct": knob_pct, "outcome": verdict["outcome"], "exit_code": code,
        "rules": {r["rule"]: r["outcome"] for r in verdict["rules"]},
        "cpu_per_request_change": (metrics.get("cpu_per_request") or {}).get("rel_change"),
        "p95_change": (metrics.get("latency.p95") or {}).get("rel_change"),
        "cpu_mde": (metrics.get("cpu_per_request") or {}).get("mde_rel"),
        "p95_mde": (metrics.get("latency.p95") or {}).get("mde_rel"),
        "top_riser": risers[0]["function"] if risers else None,
        "contended": verdict["kernel"].get("contended"),
        "runq_p99_ratio": _ratio(verdict["kernel"]),
        "cpu_run_noise": ((metrics.get("cpu_per_request") or {}).get("run_level") or {}).get("sigma_rel"),
    }


def _ratio(kernel: dict) -> float | None:
    base, cand = kernel.get("baseline_machine_p99_us"), kernel.get("candidate_machine_p99_us")
    return cand / max(base, 1.0) if base is not None and cand is not None else None


def run(args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    plan = []
    for mode in args.modes.split(","):
        if "aa" in args.scenarios:
            plan += [("aa", mode, 0.0)] * args.gates
        if "cpu" in args.scenarios:
            for level in args.levels.split(","):
                plan += [(f"cpu+{level}", mode, round(float(level) / CHECKSUM_SHARE[mode], 1))] * args.detect_gates
        if "hog" in args.scenarios and mode in ("baseline", "history", "duet"):
            plan += [("hog", mode, 0.0)] * args.hog_gates
    for number, (scenario, mode, knob) in enumerate(plan, 1):
        started = time.monotonic()
        try:
            result = one_gate(scenario, mode, knob, kernel_always=args.kernel)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError) as error:
            result = {"scenario": scenario, "mode": mode, "knob_pct": knob, "error": str(error)[-500:]}
        result["seconds"] = round(time.monotonic() - started, 1)
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
        print(f"[{number}/{len(plan)}] {scenario} {mode}: {result.get('outcome', 'error')} "
              f"({result['seconds']} s)", flush=True)


def report() -> str:
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        kernel = " (kernel view on)" if row.get("kernel") and row["scenario"] != "hog" else ""
        groups[(row["scenario"], row["mode"] + kernel)].append(row)
    lines = ["| scenario (knob) | mode | gates | FAIL | INCONCLUSIVE | PASS/WARN | errors | named function first | "
             "median CPU/request change | median p95 change | median CPU MDE |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (scenario, mode), group in sorted(groups.items(), key=lambda kv: (kv[0][1], _order(kv[0][0]))):
        ok = [g for g in group if "outcome" in g]
        count = {o: sum(g["outcome"] == o for g in ok) for o in ("FAIL", "INCONCLUSIVE", "PASS", "WARN")}
        first = sum(g.get("top_riser") == f"main.{FUNCTION}" for g in ok)
        lines.append(
            f"| {scenario} ({group[0]['knob_pct']:g} %) | {mode} | {len(group)} | {_pct(count['FAIL'], ok)} | "
            f"{_pct(count['INCONCLUSIVE'], ok)} | "
            f"{_pct(count['PASS'] + count['WARN'], ok)} | {len(group) - len(ok)} | {_pct(first, ok)} | "
            f"{_median_pct(ok, 'cpu_per_request_change')} | {_median_pct(ok, 'p95_change')} | "
            f"{_median_pct(ok, 'cpu_mde')} |")
    return "\n".join(lines)


def _order(scenario: str) -> tuple[int, float]:
    return (0, 0) if scenario == "aa" else (2, 0) if scenario == "hog" else (1, float(scenario.split("+")[1]))


def _pct(count: int, group: list) -> str:
    return f"{count}/{len(group)} ({100 * count / len(group):.0f} %)" if group else "–"


def _median_pct(group: list[dict], key: str) -> str:
    values = sorted(g[key] for g in group if g.get(key) is not None)
    return f"{100 * values[len(values) // 2]:+.1f} %" if values else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=20, help="A/A gates per mode")
    parser.add_argument("--detect-gates", type=int, default=10, help="gates per regression level and mode")
    parser.add_argument("--hog-gates", type=int, default=8)
    parser.add_argument("--levels", default="5,10,20")
    parser.add_argument("--modes", default="baseline,interleaved")
    parser.add_argument("--scenarios", default="aa,cpu,hog")
    parser.add_argument("--kernel", action="store_true",
                        help="kernel view (bpftrace) on in every scenario, as perfgate's default is; else only in hog")
    add_table_options(parser)
    args = parser.parse_args()
    return run_and_report(args, run, report, SECTION, METHOD)


SECTION = "## Verdict quality on the real service (bench/bench_gate_quality.py)"
METHOD = f"""Each row is a number of independent gates on the example greeter, run by the real CLI:
- `baseline` mode: a fresh baseline record, then a fresh candidate record; `interleaved` mode (schedule
  `restart`): both in one `perfgate run`, each repetition starting its build fresh, A B B A. Per side
  {REPETITIONS} repetitions x {DURATION_S:g} s of unbounded load (c=4) after a {WARMUP_S:g} s warm-up:
  {2 * REPETITIONS * DURATION_S:g} s of load per gate. (Measured in the previous release, compared unpaired.)
- `history` mode: baseline mode as it runs in CI now — the same two records, plus the {HISTORY_RECORDS} previous
  gates' baseline records as `--history` (minutes to half an hour older, as a base branch's artifacts
  are), so the gate measures the runner's run-to-run drift and allows for it (docs/statistics.md,
  "Run-to-run noise"). The "median CPU MDE" column then includes the run-level test's.
- `duet` mode (`compare.schedule: duet`): both builds up on their own ports for the whole gate and each
  pair's two load windows at the same moment, {DUET_RPS} requests/s per build (c=4), {DUET_REPETITIONS}
  pairs x {DUET_DURATION_S:g} s after a {DUET_WARMUP_S:g} s warm-up: {DUET_REPETITIONS * DUET_DURATION_S:g} s
  of load per gate; compared as pairs (Wilcoxon signed-rank).
Rules: `latency.p95` +10 %, `rps` -10 %, `cpu_per_request` +3 %, `error_rate` <= 1 % (Holm over the three
statistical rules, alpha 0.05). `cpu+N` injects extra work into main.checksumPayload sized to add about N %
to the service's CPU per request (the knob in brackets, calibrated per mode: the function's share of the
CPU depends on the load); the "median CPU/request change" column is what was measured. "Named function
first" counts gates whose top CPU riser was main.checksumPayload. `hog` runs {HOGS} busy loops beside the
candidate only (baseline and history modes) or beside both builds for the whole gate (duet: they share the machine),
with the kernel view on (bpftrace); the other scenarios run without it, except in rows marked "(kernel
view on)" (`--kernel`, perfgate's default). Raw results:
bench/results/gate_quality.jsonl (one line per gate)."""


if __name__ == "__main__":
    sys.exit(main())

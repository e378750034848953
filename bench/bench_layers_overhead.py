"""What the layers of issue #16 cost the service: throughput and CPU per request with them and without.

Not a test: it measures. Each measurement is a whole `perfgate run --baseline` of the example greeter, which
perfgate starts itself (so gctrace and the syscall probes apply as in a real run), loaded without a rate limit
(the CPUs saturated: every system call pays for the probes, every GC writes its trace line: the worst case),
with the collectors perfgate had before #16 on in every run (CPU profile, kernel view with runqlat.bt). The
variants differ only in `layers.enabled`:

  before #16       []                                          (the reference)
  syscalls+gc      [gc, syscalls]                              (syscalls.bt's probes in the kernel program,
                                                                GODEBUG=gctrace=1)
  profiles         [allocs, mutex, block, goroutines]          (delta profiles and goroutine snapshots)
  all of #16       every layer

Rounds run every variant once, in an order rotating each round, so drift cancels; each variant is compared
with the reference of its own round, rounds as pairs: Hodges-Lehmann estimate and 95 % confidence interval
of the Wilcoxon signed-rank test (perfgate's compare/paired.py). A run's figures are medians over its
windows: OK responses per second, and the service's CPU time (all threads, from /proc) per OK response.
Also each run's wall time beyond its load (service start, bpftrace attach, fetches, reports).
Results, one line per run: bench/results/layers_overhead.jsonl. Needs root and .tools/bin/{greeter,ghz}.

    .venv/bin/python bench/bench_layers_overhead.py --rounds 1 --duration 1 --repetitions 2   # smoke
    .venv/bin/python bench/bench_layers_overhead.py --rounds 12 --write                         # the figures
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from docs_section import add_table_options, run_and_report
from greeter_gate import load_seconds
from perfgate_child import run_perfgate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from perfgate.compare.paired import compare_paired_metric  # noqa: E402

GREETER = ROOT / ".tools" / "bin" / "greeter"
RESULTS = ROOT / "bench" / "results" / "layers_overhead.jsonl"
WORK = Path(os.environ.get("PERFGATE_BENCH_DIR", "/tmp/perfgate-bench-layers-overhead"))
REFERENCE = "before #16"
VARIANTS = {REFERENCE: [], "syscalls+gc": ["gc", "syscalls"],
            "profiles": ["allocs", "mutex", "block", "goroutines"],
            "all of #16": ["allocs", "mutex", "block", "goroutines", "gc", "syscalls"]}
TARGET = 0.03


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config(out: Path, layers: list[str], args: argparse.Namespace) -> dict:
    grpc, pprof = free_port(), free_port()
    return {"target": {"address": f"127.0.0.1:{grpc}", "call": "greeter.Greeter/SayHello",
                       "data": {"name": "bench", "items": 64}},
            "service": {"command": [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}",
                                    "-pprof-addr", f"127.0.0.1:{pprof}"]},
            "load": {"concurrency": 4, "rps": 0, "duration_s": args.duration, "repetitions": args.repetitions,
                     "warmup_s": 1},
            "cpu": {"pprof_url": f"http://127.0.0.1:{pprof}"}, "kernel": {"enabled": True},
            "layers": {"enabled": layers}, "report": {"plots": False, "comment": "never"}, "output": str(out)}


def one_run(variant: str, round_index: int, args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    path = folder / "perfgate.yml"
    path.write_text(yaml.safe_dump(config(folder / "out", VARIANTS[variant], args)), encoding="utf-8")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    run_perfgate(["run", "--baseline", "--config", str(path), "--out", str(folder / "out")], cwd=folder,
                 timeout=600)
    wall = time.monotonic() - started
    record = json.loads((folder / "out" / "baseline" / "record.json").read_text(encoding="utf-8"))
    reps = [r for r in record["repetitions"] if r.get("load") and r["load"]["ok_count"]]
    result = {
        "variant": variant, "round": round_index,
        "rps": statistics.median(r["load"]["ok_count"] / (r["load"]["total_ns"] / 1e9) for r in reps),
        "cpu_us_per_request": statistics.median(r["service_cpu_ns"] / r["load"]["ok_count"] / 1e3 for r in reps
                                                if r.get("service_cpu_ns")),
        "captured": sorted({name for r in reps for name, ok in _captured(r).items() if ok}),
        "wall_s": round(wall, 2), "beyond_load_s": round(wall - load_seconds(record), 2),
        "load_avg_before": round(load_before, 2), "load_avg_after": round(os.getloadavg()[0], 2),
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _captured(rep: dict) -> dict[str, bool]:
    found = {kind: capture.get("status") == "ok" for kind, capture in (rep.get("layers") or {}).items()}
    for name in ("goroutines", "gc", "syscalls"):
        found[name] = (rep.get(name) or {}).get("status") == "ok"
    return found


def run(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    names = list(VARIANTS)
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for variant in names[shift:] + names[:shift]:
            try:
                result = one_run(variant, round_index, args)
            except (RuntimeError, subprocess.SubprocessError, OSError, KeyError, ValueError) as error:
                result = {"variant": variant, "round": round_index, "error": str(error)[-500:]}
            result["design"] = {"duration_s": args.duration, "repetitions": args.repetitions, "tag": args.tag}
            with RESULTS.open("a", encoding="utf-8") as file:
                file.write(json.dumps(result) + "\n")
            print(f"round {round_index + 1}/{args.rounds} {variant}: {result.get('rps', 'error'):.0f} rps, "
                  f"{result.get('cpu_us_per_request', 0):.0f} µs CPU/request, captured {result.get('captured')}, "
                  f"load average {result.get('load_avg_before')}" if "rps" in result else
                  f"round {round_index + 1} {variant}: {result['error']}", flush=True)


# ---------------------------------------------------------------- the table
def paired(rows: list[dict], variant: str, field: str) -> str:
    by_round: dict[int, dict[str, float]] = {}
    for row in rows:
        if field in row:
            by_round.setdefault(row["round"], {})[row["variant"]] = row[field]
    pairs = [(r[REFERENCE], r[variant]) for r in by_round.values() if REFERENCE in r and variant in r]
    if len(pairs) < 6:
        return f"{len(pairs)} pairs: too few for an interval"
    result = compare_paired_metric(field, [b for b, _ in pairs], [c for _, c in pairs],
                                   higher_is_worse=field != "rps", unit="")
    if result.rel_change is None or result.rel_ci is None:
        return "–"
    low, high = result.rel_ci
    return f"{result.rel_change * 100:+.1f} % [{low * 100:+.1f}, {high * 100:+.1f}] ({len(pairs)} pairs)"


def report(tag: str | None) -> str:
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if "error" not in r and (tag is None or r["design"].get("tag") == tag)]
    lines = ["| variant | runs | throughput (median rps) | throughput change [95 % CI] | CPU µs / request (median) "
             "| CPU / request change [95 % CI] | wall beyond load, s (median) | load average (median, max) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for variant in VARIANTS:
        group = [r for r in rows if r["variant"] == variant]
        if not group:
            continue
        loads = [r["load_avg_before"] for r in group]
        change = ("" if variant == REFERENCE else paired(rows, variant, "rps"),
                  "" if variant == REFERENCE else paired(rows, variant, "cpu_us_per_request"))
        lines.append(f"| {variant} | {len(group)} | {statistics.median(r['rps'] for r in group):.0f} | {change[0]} | "
                     f"{statistics.median(r['cpu_us_per_request'] for r in group):.0f} | {change[1]} | "
                     f"{statistics.median(r['beyond_load_s'] for r in group):.1f} | "
                     f"{statistics.median(loads):.1f}, {max(loads):.1f} |")
    errors = sum(1 for line in RESULTS.read_text(encoding="utf-8").splitlines() if '"error"' in line)
    return "\n".join(lines) + (f"\n\n{errors} run(s) failed and are left out (see the results file)." if errors else "")


SECTION = "## Collector overhead of the layers (bench/bench_layers_overhead.py)"
METHOD = """Each figure compares whole `perfgate run --baseline` runs of the example greeter, started by perfgate,
loaded without a rate limit (-c 4; the CPUs saturated, the collectors' worst case), CPU profile and runqlat.bt on
in every run; the variants differ in `layers.enabled` only (syscalls+gc: syscalls.bt's probes composed into the
kernel program and GODEBUG=gctrace=1; profiles: the allocs, mutex and block delta profiles and the goroutine
snapshots). Rounds run every variant once in a rotating order; changes are against the reference run of the same
round, rounds as pairs (Hodges-Lehmann estimate, Wilcoxon signed-rank 95 % CI). Throughput: median OK
responses per second over a run's windows; CPU per request: the service's CPU time (every thread) per OK
response. Target: every layer of issue #16 together costs at most 3 % of either. Raw results:
bench/results/layers_overhead.jsonl.

How to read it: the estimates of "all of #16" are within 3 % (throughput -0.7 %, CPU per request +1.6 % in the
12-round run of 2026-11-30), but at 12 rounds the 95 % intervals reach 7-8 %: runs that saturate 2 shared CPUs
(ghz included) vary by several per cent from one to the next, so these rounds rule out a cost above ~8 %, not
above 3 %. Bounds at 3 % would take about four times the rounds (the half-width shrinks as one over the root of
the rounds). The wall time beyond the load windows grows by about 1 s with every layer on (2.2 s against 1.3 s
for a 3-window run), against a budget of 15 s; a whole gate of the default flow with every layer on (the table
below) takes 71.2 s (median of 40) for its 60 s of load, both builds included."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--duration", type=float, default=3.0, help="load.duration_s of each window")
    parser.add_argument("--repetitions", type=int, default=3, help="windows per run")
    parser.add_argument("--tag", default=None, help="label these runs in the results (and report only them)")
    parser.add_argument("--keep", action="store_true", help="keep each run's records")
    add_table_options(parser)
    args = parser.parse_args()
    if args.duration < 2:  # the CPU profile's window, floor(0.8 x duration), carries the delta profiles too
        parser.error("--duration must be at least 2: shorter windows get no delta profiles (a 1 s window at least)")
    return run_and_report(args, run, lambda: report(args.tag), SECTION, METHOD)


if __name__ == "__main__":
    sys.exit(main())

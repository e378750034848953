"""How far the example service's CPU per request drifts between runs, against its spread inside a run.

Not a test: it measures why baseline mode needs run-to-run noise (docs/statistics.md). Rounds of
WINDOWS load windows (4 s at 1200 requests/s, c=4, like the duet bench) on the greeter, in two designs
measured one after the other:
  fresh   each round starts a new greeter process (what two CI runs are)
  one     one greeter process for every round, a pause between rounds (time alone)
Before each window a speed probe (SHA-256 of 1 MiB, 40 times, on this thread's CPU clock) checks whether
the machine's raw speed moved with it. CPU per request comes from the greeter's process CPU clock, as
perfgate measures it. For each design: the spread (cv) of windows inside a round, the spread of round
medians, and what the inside spread alone would give for round medians (cv / sqrt(WINDOWS)).

    .venv/bin/python bench/bench_run_drift.py [--rounds 16] [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from docs_section import replace_section

from perfgate.measure.cpu import process_cpu_ns

ROOT = Path(__file__).resolve().parents[1]
GREETER, GHZ = ROOT / ".tools" / "bin" / "greeter", ROOT / ".tools" / "bin" / "ghz"
RESULTS = ROOT / "bench" / "results" / "run_drift.jsonl"
SECTION = "## Run-to-run drift (bench/bench_run_drift.py)"
WINDOWS, WINDOW_S, RPS, PAUSE_S = 3, 4, 1200, 2.0
PROBE_BUFFER = os.urandom(1 << 20)
sys.path.insert(0, str(ROOT / "bench"))
from bench_gate_quality import free_port  # noqa: E402


def probe_ns_per_mib() -> float:
    start = time.thread_time_ns()
    for _ in range(40):
        hashlib.sha256(PROBE_BUFFER).digest()
    return (time.thread_time_ns() - start) / 40


def ghz_ok_calls(address: str, seconds: float) -> int:
    argv = [str(GHZ), "--insecure", "--proto", str(ROOT / "examples" / "greeter" / "greeter.proto"),
            "--call", "greeter.Greeter/SayHello", "-d", json.dumps({"name": "bench", "items": 64}),
            "-c", "4", "-r", str(RPS), "-z", f"{seconds}s", "-O", "json", address]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)  # noqa: S603
    report = json.loads(done.stdout)
    return int(report["statusCodeDistribution"].get("OK", 0))


class Greeter:
    def __init__(self) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.process = subprocess.Popen([str(GREETER), "-grpc-addr", self.address, "-pprof-addr", ""],  # noqa: S603
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        ghz_ok_calls(self.address, 2)  # warm-up

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def round_of_windows(greeter: Greeter, design: str, number: int) -> list[dict]:
    rows = []
    for window in range(WINDOWS):
        probe = statistics.median(probe_ns_per_mib() for _ in range(3))
        before = process_cpu_ns((greeter.process.pid,))
        calls = ghz_ok_calls(greeter.address, WINDOW_S)
        after = process_cpu_ns((greeter.process.pid,))
        rows.append({"design": design, "round": number, "window": window, "probe_ns_per_mib": probe,
                     "cpu_us_per_request": (after - before) / calls / 1e3, "at": time.time()})
    return rows


def measure(design: str, rounds: int) -> list[dict]:
    rows: list[dict] = []
    shared = Greeter() if design == "one" else None
    try:
        for number in range(rounds):
            greeter = shared or Greeter()
            try:
                measured = round_of_windows(greeter, design, number)
            finally:
                if shared is None:
                    greeter.stop()
            rows += measured
            with RESULTS.open("a", encoding="utf-8") as out:  # kept round by round: an interrupted run loses none
                out.writelines(json.dumps(row) + "\n" for row in measured)
            if shared is not None:
                time.sleep(PAUSE_S)
            print(f"{design} round {number + 1}/{rounds}", flush=True)
    finally:
        if shared is not None:
            shared.stop()
    return rows


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def render(rows: list[dict]) -> str:
    lines = ["| design | rounds | cv of windows inside a round (median) | cv of round medians | "
             "expected from inside alone | range of round medians | speed probe: cv of round medians | "
             "correlation probe ~ CPU/request (rounds) |", "|---|---|---|---|---|---|---|---|"]
    for design in ("fresh", "one"):
        by_round: dict[int, list[dict]] = {}
        for row in (r for r in rows if r["design"] == design):
            by_round.setdefault(row["round"], []).append(row)
        if len(by_round) < 3:
            continue
        inside = statistics.median(cv([r["cpu_us_per_request"] for r in g]) for g in by_round.values())
        cpu = [statistics.median(r["cpu_us_per_request"] for r in g) for g in by_round.values()]
        probe = [statistics.median(r["probe_ns_per_mib"] for r in g) for g in by_round.values()]
        lines.append(f"| {design} | {len(cpu)} | {inside:.1%} | {cv(cpu):.1%} | {inside / WINDOWS ** 0.5:.1%} | "
                     f"{min(cpu):.0f}–{max(cpu):.0f} µs | {cv(probe):.1%} | "
                     f"{statistics.correlation(probe, cpu):+.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = measure("fresh", args.rounds) + measure("one", args.rounds)
    table = render(rows)
    print(table)
    if args.write:
        method = (f"{time.strftime('%Y-%m-%d')}, 2 vCPUs. The greeter at {RPS} requests/s (c=4), rounds of "
                  f"{WINDOWS} windows x {WINDOW_S} s; `fresh`: a new process per round; `one`: one process, "
                  f"{PAUSE_S:g} s between rounds. CPU per request from the process CPU clock; the speed probe "
                  "hashes 1 MiB 40 times on the bench's own thread before each window.")
        replace_section(SECTION, f"{SECTION}\n\n{method}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

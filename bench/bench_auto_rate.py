"""How long a capacity probe must be, and at what fraction of capacity a duet should load each build.

Not a test: it measures, on services of three shapes (the example greeter made to look like services we have
never seen), on whatever machine it runs on (the figures in docs/benchmarks.md come from a 2-vCPU VM):

  fast     ~0.3 ms of CPU per call (items=64): CPU-bound, thousands of calls per second on 2 cores
  heavy    ~5 ms of CPU per call (items=1024): CPU-bound, a few hundred calls per second
  waiting  a 10 ms sleep per call and little CPU (items=16): bound by load.concurrency / latency, not by the CPU

Part A, probe length: two identical builds (A/A) stay up; probes of L seconds without a rate limit alternate
A B B A, `--probe-pairs` pairs per length. Per length: the median capacity against the longest probe's (short
probes include ghz's start), and the spread (sd) of log(A_i / B_i) over the pairs: the noise the paired
capacity test has to see through.

Part B, the fraction: for each fraction f, a duet (the real CLI, compare.schedule: duet) at f × the smaller
capacity (measured in part A with 1 s probes) per build, `--pairs` pairs: A/A, then base vs a head whose
main.checksumPayload does KNOB_PCT % more work. Per run: the rate each side reached, the spread of the
pairwise log ratios of CPU per request and p95 latency (A/A), the knob's effect on CPU per request, and
effect / spread (how many spreads the same code change moves: what decides detection).

Every measurement is one JSON line in bench/results/auto_rate.jsonl (written as it is made), with the 1-minute
load average beside it; `--report` renders the tables, `--write` puts them into docs/benchmarks.md.

usage: .venv/bin/python bench/bench_auto_rate.py [--shapes fast,heavy,waiting] [--lengths 0.25,0.5,1,2]
           [--probe-pairs 8] [--fractions 0.1,0.25,0.4] [--pairs 8] [--duration 3] [--report] [--write]
smoke: --shapes fast --lengths 0.5,1 --probe-pairs 2 --fractions 0.25 --pairs 2 --duration 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from docs_section import replace_section
from perfgate_child import run_perfgate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_gate_quality import free_port  # noqa: E402

from perfgate.capacity import PAIR_PROBE_S, RATE_FRACTION, RATE_PROBE_S, probe_window  # noqa: E402
from perfgate.config import build_config  # noqa: E402
from perfgate.load.generator import GeneratorCrashed  # noqa: E402
from perfgate.load.ghz import run_ghz  # noqa: E402
from perfgate.measure.session import load_window  # noqa: E402

GREETER = ROOT / ".tools" / "bin" / "greeter"
GHZ = ROOT / ".tools" / "bin" / "ghz"
RESULTS = ROOT / "bench" / "results" / "auto_rate.jsonl"
SECTION = "## Automatic duet rate and capacity probes (bench/bench_auto_rate.py)"
SHAPES = {"fast": {"items": 64, "knobs": []}, "heavy": {"items": 1024, "knobs": []},
          "waiting": {"items": 16, "knobs": ["-regress-sleep", "10ms"]}}
CONCURRENCY = 8  # load.concurrency's default
KNOB_PCT = 100  # checksumPayload does twice its work: roughly +10-20 % CPU per call, depending on the shape


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def save(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(json.dumps({**row, "load_average": load_average(), "at": time.time()}) + "\n")
    print(json.dumps(row), flush=True)


def greeter_argv(grpc: int, pprof: int, shape: str, knob_pct: float = 0) -> list[str]:
    return [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr", f"127.0.0.1:{pprof}",
            *SHAPES[shape]["knobs"], "-regress-function", "checksumPayload", "-regress-cpu-pct", str(knob_pct)]


def target(shape: str, address: str) -> dict:
    return {"address": address, "call": "greeter.Greeter/SayHello", "data": {"name": "bench",
                                                                             "items": SHAPES[shape]["items"]}}


@contextlib.contextmanager
def two_greeters(shape: str) -> Iterator[list[str]]:
    """Two identical builds up on their own ports (A/A), stopped on the way out."""
    processes, addresses = [], []
    try:
        for _ in range(2):
            grpc, pprof = free_port(), free_port()
            processes.append(subprocess.Popen(greeter_argv(grpc, pprof, shape),  # noqa: S603
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            addresses.append(f"127.0.0.1:{grpc}")
        time.sleep(1.0)
        yield addresses
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def probe(shape: str, address: str, seconds: float, folder: Path) -> float:
    config = build_config({"target": target(shape, address), "load": {"concurrency": CONCURRENCY}})
    window = probe_window(load_window(config), seconds)
    try:
        sample = run_ghz(str(GHZ), config.target, window, folder / "probe.json", name="bench probe")
    except GeneratorCrashed:  # as capacity.run_probe does: one more try
        sample = run_ghz(str(GHZ), config.target, window, folder / "probe.json", name="bench probe")
    return sample.ok_count / (sample.total_ns / 1e9)


def part_a(shape: str, lengths: list[float], pairs: int, folder: Path) -> dict[float, list[tuple[float, float]]]:
    found: dict[float, list[tuple[float, float]]] = {}
    with two_greeters(shape) as addresses:
        probe(shape, addresses[0], 2.0, folder)  # warm-up, discarded
        probe(shape, addresses[1], 2.0, folder)
        for pair in range(pairs):
            for length in lengths:  # lengths interleaved, so a drift of the machine hits each alike
                order = (0, 1) if pair % 2 == 0 else (1, 0)
                values = {i: probe(shape, addresses[i], length, folder) for i in order}
                found.setdefault(length, []).append((values[0], values[1]))
    for length, values in found.items():
        save({"part": "probe", "shape": shape, "length_s": length, "pairs": values})
    return found


def duet_config(shape: str, rate: int, knob_pct: float, pairs: int, duration: float, out: Path) -> dict:
    head, head_pprof, base, base_pprof = (free_port() for _ in range(4))
    return {"target": target(shape, f"127.0.0.1:{head}"),
            "load": {"concurrency": CONCURRENCY, "rps": rate, "duration_s": duration, "warmup_s": 1.0,
                     "repetitions": pairs},
            "cpu": {"pprof_url": f"http://127.0.0.1:{head_pprof}"}, "kernel": {"enabled": False},
            "service": {"command": greeter_argv(head, head_pprof, shape, knob_pct)},
            "compare": {"mode": "interleaved", "schedule": "duet", "baseline_address": f"127.0.0.1:{base}",
                        "baseline_pprof_url": f"http://127.0.0.1:{base_pprof}",
                        "baseline_service": {"command": greeter_argv(base, base_pprof, shape)}},
            "gates": [{"metric": "cpu_per_request", "max_increase_pct": 5}],
            "report": {"plots": False, "comment": "never"}, "output": str(out)}


def part_b(shape: str, fraction: float, capacity: float, knob_pct: float, pairs: int, duration: float,
           folder: Path) -> None:
    rate = max(1, math.floor(fraction * capacity))
    out = folder / f"{shape}-{fraction:g}-{knob_pct:g}"
    out.mkdir(parents=True)
    path = out / "perfgate.yml"
    path.write_text(yaml.safe_dump(duet_config(shape, rate, knob_pct, pairs, duration, out / "out")))
    run_perfgate(["run", "--config", str(path)], cwd=out, timeout=1800)
    sides = [json.loads((out / "out" / side / "record.json").read_text()) for side in ("baseline", "candidate")]
    cpu = [[rep["service_cpu_ns"] / rep["load"]["ok_count"] / 1e3 for rep in side["repetitions"]] for side in sides]
    p95 = [[rep["load"]["p95_ns"] / 1e6 for rep in side["repetitions"]] for side in sides]
    reached = [statistics.median(rep["load"]["ok_count"] / (rep["load"]["total_ns"] / 1e9)
                                 for rep in side["repetitions"]) / rate for side in sides]
    save({"part": "fraction", "shape": shape, "fraction": fraction, "knob_pct": knob_pct, "rate": rate,
          "capacity": capacity, "reached": reached, "cpu_us": cpu, "p95_ms": p95})


# ---------------------------------------------------------------- report
def log_ratios(pairs: list[tuple[float, float]] | list[list[float]]) -> list[float]:
    return [math.log(b / a) for a, b in pairs if a > 0 and b > 0]


def sd_pct(values: list[float]) -> str:
    return f"{100 * statistics.stdev(values):.1f} %" if len(values) > 1 else "–"


def probe_table(rows: list[dict]) -> str:
    lines = ["| shape | probe | pairs | median capacity | vs the longest probe | spread of log(A/B) (sd) | "
             "load avg |", "|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        mine = sorted((r for r in rows if r["shape"] == shape), key=lambda r: r["length_s"])
        if not mine:
            continue
        longest = statistics.median(v for pair in mine[-1]["pairs"] for v in pair)
        for row in mine:
            values = [v for pair in row["pairs"] for v in pair]
            median = statistics.median(values)
            lines.append(f"| {shape} | {row['length_s']:g} s | {len(row['pairs'])} | {median:,.0f} req/s | "
                         f"{100 * (median / longest - 1):+.1f} % | {sd_pct(log_ratios(row['pairs']))} | "
                         f"{row['load_average']:.1f} |")
    return "\n".join(lines)


def fraction_table(rows: list[dict]) -> str:
    lines = ["| shape | fraction | rate | reached (A / B) | CPU/call A/A spread | p95 A/A spread | knob effect on "
             "CPU/call | effect / spread | load avg |", "|---|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        for fraction in sorted({r["fraction"] for r in rows if r["shape"] == shape}):
            runs = {r["knob_pct"]: r for r in rows if r["shape"] == shape and r["fraction"] == fraction}
            aa, knob = runs.get(0), runs.get(KNOB_PCT)
            if aa is None:
                continue
            spread = log_ratios(list(zip(*aa["cpu_us"], strict=True)))
            effect = statistics.median(log_ratios(list(zip(*knob["cpu_us"], strict=True)))) if knob else None
            ratio = (f"{effect / statistics.stdev(spread):.1f}" if effect is not None and len(spread) > 1
                     and statistics.stdev(spread) > 0 else "–")
            lines.append(
                f"| {shape} | {fraction:g} | {aa['rate']:,} req/s | "
                f"{' / '.join(f'{100 * r:.0f} %' for r in aa['reached'])} | {sd_pct(spread)} | "
                f"{sd_pct(log_ratios(list(zip(*aa['p95_ms'], strict=True))))} | "
                f"{'–' if effect is None else f'{100 * math.expm1(effect):+.1f} %'} | {ratio} | "
                f"{aa['load_average']:.1f} |")
    return "\n".join(lines)


def report(rows: list[dict]) -> str:
    return (f"Chosen: rate probes of {RATE_PROBE_S:g} s, capacity probes of {PAIR_PROBE_S:g} s, each build loaded at "
            f"{RATE_FRACTION:g} × the smaller capacity.\n\n"
            "Part A, probe length (A/A, probes A B B A, lengths interleaved):\n\n"
            + probe_table([r for r in rows if r["part"] == "probe"])
            + f"\n\nPart B, the fraction (duet, c={CONCURRENCY}; knob: checksumPayload +{KNOB_PCT} % of its work):\n\n"
            + fraction_table([r for r in rows if r["part"] == "fraction"]))


def measure(args: argparse.Namespace) -> None:
    shapes = args.shapes.split(",")
    lengths = [float(v) for v in args.lengths.split(",")]
    fractions = [float(v) for v in args.fractions.split(",")]
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-rate-") as work:
        for shape in shapes:
            probes = part_a(shape, sorted({*lengths, RATE_PROBE_S}), args.probe_pairs, Path(work))
            capacity = min(statistics.median(p[i] for p in probes[RATE_PROBE_S]) for i in (0, 1))
            for fraction in fractions:
                for knob in (0, KNOB_PCT):
                    part_b(shape, fraction, capacity, knob, args.pairs, args.duration, Path(work))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--lengths", default="0.25,0.5,1,2")
    parser.add_argument("--probe-pairs", type=int, default=8)
    parser.add_argument("--fractions", default="0.1,0.25,0.4")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--report", action="store_true", help="only render bench/results/auto_rate.jsonl")
    parser.add_argument("--write", action="store_true", help="also write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    if not args.report:
        measure(args)
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    body = report(rows)
    print(body)
    if args.write:
        replace_section(SECTION, f"{SECTION}\n\n{body}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

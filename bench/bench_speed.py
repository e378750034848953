"""Where users wait: a 1,000,000-request repetition, the gate's overhead beyond its load windows, compare + reports.

Not a test: run `.venv/bin/python bench/bench_speed.py [--write]` as root (the kernel view needs it), with
.tools/bin/{greeter,ghz} (scripts/setup.sh --ghz --examples). Everything runs the real perfgate on the real
example service on loopback; each measured step is a fresh process, rounds interleaved.

1. **1 M requests.** A real ghz report of the greeter is grown to 1,000,000 calls (its real details,
   resampled, 0.1 % errors). Timed in fresh processes: `json.load` of it, and perfgate's step from ghz's
   report to the saved record (load/ghz.read_load: one streaming pass; the latency array written; the
   record saved). Then `perfgate compare` of two records whose 3 repetitions are such 1 M reports.
   CPU is of the step itself (imports are listed apart); peak RSS is the whole process's.
2. **Gate overhead.** `perfgate run --compare-to BASE` with pprof and the kernel view on: its wall time
   minus the sum of its load windows (the warm-up and every repetition, as ghz timed them).
3. **compare + all reports** of two 6-repetition records: CPU of the whole `perfgate compare` process, and of
   the step alone in a process that imported the gate's modules first (what a gate pays after its last window).
4. **The kernel collector per repetition**, side by side in one run: for each window of ghz load, the time
   spent outside the load when bpftrace is started and stopped around every window (how perfgate worked
   before) and when one bpftrace stays attached and the window is cut out by two marks (how it works now).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from perfgate_child import perfgate_env

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
PERFGATE = ROOT / ".venv" / "bin" / "perfgate"
GREETER = ROOT / ".tools" / "bin" / "greeter"
RESULTS = ROOT / "bench" / "results" / "speed.jsonl"
SECTION = "## Where users wait (bench/bench_speed.py)"
TIMEOUT_S = 1800

JSON_LOAD = """
import json, resource, sys, time
t = time.process_time()
with open(sys.argv[1], "rb") as stream:
    report = json.load(stream)
cpu = time.process_time() - t
print(json.dumps({"cpu_s": cpu, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

TO_RECORD = """
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
t = time.process_time()
import numpy  # noqa: F401 - measure has it loaded already (scipy's dependency)
from perfgate.load.ghz import read_load
from perfgate.load.latencies import write_latencies
from perfgate.record import load_record
imports = time.process_time() - t
report, template, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
record = load_record(template)
t = time.process_time()
sample, latencies = read_load(report)
write_latencies(out / "load" / "rep-01.latency.npy", latencies)
repetition = replace(record.repetitions[0], load=sample, latency_file="load/rep-01.latency.npy")
replace(record, repetitions=(repetition,)).save(out)
cpu = time.process_time() - t
print(json.dumps({"cpu_s": cpu, "imports_s": imports, "calls": int(latencies.size),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

COMPARE = """
import json, resource, sys, time
from pathlib import Path
t = time.process_time()
from perfgate.baseline import open_baseline_path
from perfgate.commands import gate_and_publish
from perfgate.config import load_config
import importlib
from perfgate.preload import gate_modules
for module in gate_modules(plots=True):  # what a run that compares preloads: scipy and matplotlib are imported lazily
    importlib.import_module(module)
imports = time.process_time() - t
out = Path(sys.argv[3])
config = load_config(None, environ={}, set_args=[], cli_overrides={"output": str(out)}, require_target=False)
t = time.process_time()
code = gate_and_publish(config, open_baseline_path(sys.argv[1], out), open_baseline_path(sys.argv[2], out), out)
cpu = time.process_time() - t
print(json.dumps({"cpu_s": cpu, "imports_s": imports, "code": code,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, timeout=TIMEOUT_S, **kwargs)  # noqa: S603 - argv list


def python_json(script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([str(PYTHON), "-c", script, *args], capture_output=True, text=True, env=env,  # noqa: S603
                          timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"a measured step failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_cpu(argv: list[str], **kwargs) -> tuple[float, float]:
    """(CPU s of the child and its children, wall s)."""
    before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(argv, timeout=TIMEOUT_S, check=False, stdout=subprocess.DEVNULL,  # noqa: S603
                   stderr=subprocess.DEVNULL, **kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, time.perf_counter() - wall)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(folder: Path, *, repetitions: int, duration_s: float, kernel: bool) -> Path:
    grpc, pprof = free_port(), free_port()
    config = {
        "target": {"address": f"127.0.0.1:{grpc}", "call": "greeter.Greeter/SayHello",
                   "data": {"name": "perfgate", "items": 64}},
        "service": {"command": [str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr",
                                f"127.0.0.1:{pprof}"]},
        "load": {"concurrency": 4, "duration_s": duration_s, "warmup_s": 1, "repetitions": repetitions, "rps": 400},
        "cpu": {"pprof_url": f"http://127.0.0.1:{pprof}"},
        "kernel": {"enabled": kernel},
        "report": {"comment": "never"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "perfgate.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def perfgate_run(config: Path, out: Path, *extra: str) -> tuple[float, float]:
    return child_cpu([str(PERFGATE), "run", "--config", str(config), "--out", str(out), *extra],
                     env=perfgate_env())


def grow_report(source: Path, target: Path, calls: int, seed: int) -> None:
    """The real report's summary with `calls` details resampled from its real ones (0.1 % errors)."""
    raw = json.loads(source.read_text(encoding="utf-8"))
    real = [d for d in raw["details"] if d["status"] == "OK"]
    rng = random.Random(seed)
    errors = calls // 1000
    raw["count"] = calls
    raw["statusCodeDistribution"] = {"OK": calls - errors, "Unavailable": errors}
    raw["errorDistribution"] = {"rpc error: code = Unavailable desc = injected": errors}
    head = json.dumps({k: v for k, v in raw.items() if k != "details"}, separators=(",", ":"))
    with target.open("w", encoding="utf-8") as stream:
        stream.write(head[:-1] + ',"details":[')
        for index in range(calls):
            if index:
                stream.write(",")
            if index % 1000 == 999:
                stream.write('{"timestamp":"2026-11-30T06:07:30.979206707Z","latency":20000000,"error":'
                             '"rpc error: code = Unavailable desc = injected","status":"Unavailable"}')
            else:
                detail = rng.choice(real)
                stream.write(json.dumps({**detail, "latency": detail["latency"] + rng.randrange(1000)},
                                        separators=(",", ":")))
        stream.write("]}")


def million_records(workdir: Path, base: Path, candidate: Path, calls: int) -> tuple[Path, Path]:
    """Copies of two real records whose repetitions hold `calls`-call reports, read the way measure reads them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    grown = []
    for index, record in enumerate((base, candidate)):
        target = workdir / f"million-{index}"
        shutil.copytree(record, target)
        script = """
import sys
from dataclasses import replace
from pathlib import Path
from perfgate.load.ghz import read_load
from perfgate.load.latencies import write_latencies
from perfgate.record import load_record
record = load_record(Path(sys.argv[1]))
reps = []
for rep in record.repetitions:
    sample, latencies = read_load(record.file(rep.load_file))
    name = rep.load_file.removesuffix(".json") + ".latency.npy"
    write_latencies(record.file(name), latencies)
    reps.append(replace(rep, load=sample, latency_file=name))
replace(record, repetitions=tuple(reps)).save(record.path)
"""
        for rep_index, report in enumerate(sorted((target / "load").glob("rep-*.json"))):
            grow_report(report, report, calls, seed=100 * index + rep_index)
        run([str(PYTHON), "-c", script, str(target)], env=env)
        grown.append(target)
    return grown[0], grown[1]


def part_million(workdir: Path, rounds: int, calls: int) -> dict:
    config = write_config(workdir / "m", repetitions=3, duration_s=1.5, kernel=False)
    perfgate_run(config, workdir / "m" / "out", "--baseline")
    perfgate_run(config, workdir / "m" / "out")
    base, cand = workdir / "m" / "out" / "baseline", workdir / "m" / "out" / "candidate"
    report = workdir / "million.json"
    grow_report(base / "load" / "rep-01.json", report, calls, seed=1)
    loads, steps = [], []
    for round_index in range(rounds):
        jobs = [lambda: loads.append(python_json(JSON_LOAD, str(report))),
                lambda i=round_index: steps.append(python_json(TO_RECORD, str(report), str(base),
                                                               str(workdir / f"saved-{i}")))]
        for job in jobs if round_index % 2 == 0 else reversed(jobs):
            job()
    million_base, million_cand = million_records(workdir, base, cand, calls)
    compares = [python_json(COMPARE, str(million_base), str(million_cand), str(workdir / f"cmp-{i}"))
                for i in range(rounds)]
    return {"report_mb": report.stat().st_size / 1e6, "calls": calls, "json_load": loads, "to_record": steps,
            "compare": compares}


def part_overhead(workdir: Path, rounds: int, repetitions: int) -> dict:
    config = write_config(workdir / "o", repetitions=repetitions, duration_s=2.0, kernel=True)
    out = workdir / "o" / "out"
    perfgate_run(config, out, "--baseline")
    runs = []
    for index in range(rounds):
        cpu, wall = perfgate_run(config, out / f"gate-{index}", "--compare-to", str(out / "baseline"))
        record = json.loads((out / f"gate-{index}" / "candidate" / "record.json").read_text())
        windows = sum(rep["load"]["total_ns"] for rep in record["repetitions"] if rep["load"]) / 1e9
        warmup = json.loads((out / f"gate-{index}" / "candidate" / "load" / "warmup.json").read_text())["total"] / 1e9
        runs.append({"wall_s": wall, "cpu_s": cpu, "windows_s": windows + warmup,
                     "overhead_s": wall - windows - warmup,
                     "kernel": sorted({rep["runq"]["status"] for rep in record["repetitions"]}),
                     "cpu_profiles": sorted({rep["cpu"]["status"] for rep in record["repetitions"]})})
    return {"repetitions": repetitions, "runs": runs}


def part_compare(workdir: Path, rounds: int) -> dict:
    config = write_config(workdir / "c", repetitions=6, duration_s=1.5, kernel=True)
    out = workdir / "c" / "out"
    perfgate_run(config, out, "--baseline")
    perfgate_run(config, out)
    runs, in_process = [], []
    for index in range(rounds):
        cpu, wall = child_cpu([str(PERFGATE), "compare", "--config", str(config), "--baseline",
                               str(out / "baseline"), "--candidate", str(out / "candidate"), "--out",
                               str(workdir / f"compare-{index}")])
        runs.append({"cpu_s": cpu, "wall_s": wall})
        in_process.append(python_json(COMPARE, str(out / "baseline"), str(out / "candidate"),
                                      str(workdir / f"compare-in-{index}")))
    return {"runs": runs, "in_process": in_process,
            "plots": sorted(p.name for p in (workdir / "compare-0").glob("*.png"))}


def part_collector(workdir: Path, rounds: int, windows: int) -> dict:
    """Wall time outside the load windows: bpftrace started/stopped per window vs attached once, marks."""
    sys.path.insert(0, str(ROOT / "src"))
    from perfgate.capture.runq import RunqCollector

    grpc, pprof = free_port(), free_port()
    greeter = subprocess.Popen([str(GREETER), "-grpc-addr", f"127.0.0.1:{grpc}", "-pprof-addr",  # noqa: S603
                                f"127.0.0.1:{pprof}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ghz = [str(ROOT / ".tools" / "bin" / "ghz"), "--insecure", "--call", "greeter.Greeter/SayHello", "-d",
           '{"name": "perfgate"}', "-z", "1s", "-c", "2", "--rps", "200", "-O", "json", "-o", os.devnull,
           f"127.0.0.1:{grpc}"]
    time.sleep(1.0)
    per_window, once = [], []
    try:
        for round_index in range(rounds):
            for mode in (("per window", "once") if round_index % 2 == 0 else ("once", "per window")):
                outside = 0.0
                collector = RunqCollector(service_comm=None, service_pids=[greeter.pid],
                                          raw_path=workdir / f"collector-{round_index}-{mode}.jsonl")
                begin = time.perf_counter()
                if mode == "once":
                    collector.start()
                outside += time.perf_counter() - begin
                for index in range(windows):
                    begin = time.perf_counter()
                    if mode == "once":
                        collector.begin_window()
                    else:
                        collector = RunqCollector(service_comm=None, service_pids=[greeter.pid],
                                                  raw_path=workdir / f"collector-{round_index}-{index}.jsonl")
                        collector.start()
                    loaded = time.perf_counter()
                    run(ghz, stdout=subprocess.DEVNULL)
                    ended = time.perf_counter()
                    if mode == "once":
                        collector.end_window(workdir / f"window-{index}.jsonl").stats()
                    else:
                        collector.stop()
                    outside += (loaded - begin) + (time.perf_counter() - ended)
                begin = time.perf_counter()
                if mode == "once":
                    collector.stop()
                outside += time.perf_counter() - begin
                (once if mode == "once" else per_window).append(outside)
    finally:
        greeter.kill()
        greeter.wait()
    return {"windows": windows, "per_window_s": per_window, "once_s": once}


def med(values: list[float]) -> float:
    return statistics.median(values)


def span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def markdown(results: dict, load: tuple[str, str]) -> str:
    lines = [SECTION, "", f"`bench/bench_speed.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, load "
             f"average {load[0]} before and {load[1]} after (1/5/15 min). Medians of fresh processes, ranges "
             "beside them.", ""]
    million = results.get("million")
    if million:
        load_cpu = [r["cpu_s"] for r in million["json_load"]]
        step_cpu = [r["cpu_s"] for r in million["to_record"]]
        ratios = [s / j for s, j in zip(step_cpu, load_cpu, strict=True)]
        cmp_cpu = [r["cpu_s"] for r in million["compare"]]
        lines += [
            f"**{million['calls']:,} requests** (a {million['report_mb']:.0f} MB ghz report; targets: peak RSS at "
            "most 150 MB and CPU at most 0.5x `json.load`'s, from the report to the saved record and for compare "
            "+ report):", "",
            "| step | CPU | vs `json.load` | peak RSS |", "|---|---:|---:|---:|",
            f"| `json.load` of the report | {med(load_cpu):.2f} s ({span(load_cpu)}) | 1 | "
            f"{med([r['rss_mb'] for r in million['json_load']]):.0f} MB |",
            f"| ghz report to saved record (streaming read, latency array, record) | {med(step_cpu):.2f} s "
            f"({span(step_cpu)}) | **{med(ratios):.2f}** ({span(ratios)}) | "
            f"{med([r['rss_mb'] for r in million['to_record']]):.0f} MB |",
            f"| `compare` + all reports, 3+3 such repetitions (in process) | {med(cmp_cpu):.2f} s ({span(cmp_cpu)}) | "
            f"{med(cmp_cpu) / med(load_cpu):.2f} | {med([r['rss_mb'] for r in million['compare']]):.0f} MB |",
            "",
            f"Imports beside that (paid once per process whatever the size; a run that compares pays the gate's "
            f"during its warm-up): numpy + perfgate's load path "
            f"{med([r['imports_s'] for r in million['to_record']]):.2f} s; scipy, matplotlib and the gate "
            f"{med([r['imports_s'] for r in million['compare']]):.2f} s. The peak RSS of compare includes those "
            "libraries (~135 MB of it before any record is read). These records are A/A (grown from runs of one "
            "build), so no function's CPU moved significantly and the report draws no CPU bar chart; one that has "
            "significant movers draws it too, about 0.1 s more.", ""]
    overhead = results.get("overhead")
    if overhead:
        runs = overhead["runs"]
        lines += [f"**Gate overhead**, `perfgate run --compare-to` with {overhead['repetitions']} repetitions of 2 s, "
                  f"pprof and the kernel view on (statuses: kernel {runs[0]['kernel']}, CPU {runs[0]['cpu_profiles']}):"
                  f" wall {med([r['wall_s'] for r in runs]):.1f} s, load windows "
                  f"{med([r['windows_s'] for r in runs]):.1f} s, "
                  f"**overhead {med([r['overhead_s'] for r in runs]):.1f} s** (target: at most 5 s) "
                  f"({span([r['overhead_s'] for r in runs])}); perfgate's own CPU (with ghz and bpftrace) "
                  f"{med([r['cpu_s'] for r in runs]):.1f} s.", ""]
    compare = results.get("compare")
    if compare:
        cpu = [r["cpu_s"] for r in compare["runs"]]
        after = [r["cpu_s"] for r in compare.get("in_process", ())]
        lines += [f"**compare + all reports**, 6+6 repetitions ({len(compare['plots'])} plots; target: at most 1 s "
                  "CPU): "
                  + (f"**{med(after):.2f} s CPU** ({span(after)}) in a gate, after its last window (scipy, matplotlib "
                     "and the gate's modules are imported during the warm-up); " if after else "")
                  + f"{med(cpu):.2f} s ({span(cpu)}) for a standalone `perfgate compare` process, imports included.",
                  ""]
    collector = results.get("collector")
    if collector:
        ratios = [o / p for o, p in zip(collector["once_s"], collector["per_window_s"], strict=True)]
        lines += [f"**Kernel collector outside the load**, {collector['windows']} windows of 1 s, side by side: "
                  f"bpftrace started and stopped per window {med(collector['per_window_s']):.1f} s "
                  f"({span(collector['per_window_s'])}), attached once and cut by marks "
                  f"**{med(collector['once_s']):.2f} s** ({span(collector['once_s'])}); ratio {med(ratios):.3f} "
                  f"({span(ratios)}).", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="*", default=["collector", "million", "overhead", "compare"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=10, help="for the gate overhead")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md and bench/results/")
    args = parser.parse_args()
    if not GREETER.exists() or not PERFGATE.exists():
        print("bench_speed: needs scripts/setup.sh --python --ghz --examples", file=sys.stderr)
        return 2
    load_before = "/".join(f"{v:.1f}" for v in os.getloadavg())
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-speed-") as tmp:
        workdir = Path(tmp)
        if "million" in args.parts:
            results["million"] = part_million(workdir, args.rounds, args.calls)
        if "overhead" in args.parts:
            results["overhead"] = part_overhead(workdir, args.rounds, args.repetitions)
        if "compare" in args.parts:
            results["compare"] = part_compare(workdir, args.rounds)
        if "collector" in args.parts:
            results["collector"] = part_collector(workdir, args.rounds, args.repetitions)
    load = (load_before, "/".join(f"{v:.1f}" for v in os.getloadavg()))
    text = markdown(results, load)
    print(text)
    if args.write:
        sys.path.insert(0, str(ROOT / "bench"))
        from docs_section import replace_section

        replace_section(SECTION, text)
        with RESULTS.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "load": load, **results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

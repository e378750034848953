"""How much contention moves a service's latency, throughput and CPU per request: the contention thresholds'
measurements (docs/benchmarks.md "Contention: dose and effect").

One service (the example greeter, or any argv via --service) under a fixed-rate ghz load, in rounds of
windows: a quiet window, then each scenario's window, each followed by a quiet one again, so every contended
window has quiet neighbours measured minutes apart at most. Per window it records what perfgate's contention
view records (capture/contention.py: other processes' CPU, steal, the service's run-queue wait, cgroup
throttling) and ghz's p95, OK rps and the service's CPU per request; the table gives, per scenario, the
median of each contended window's ratio to the mean of its two quiet neighbours, and each figure's median.

Scenarios (a comma list; N and X numbers):
  hogN        N busy loops (each in its own session, as an unrelated job's processes would be)
  dutyX       one loop busy X % of each 10 ms (a partly busy neighbour)
  niceN       N busy loops at nice 19 (background work)
  limitX      the service in a cgroup limited to X CPUs (v1 cfs_quota_us or v2 cpu.max)
  pinN        N busy loops pinned to the service's first CPU (one CPU shared, the other free)

With --priority the service, ghz and the scenario's processes run in cgroups of high CPU weight, so that
on a machine shared with other work the windows measure this bench's own contention (the others' work is
still recorded, as it is in perfgate's own runs). Not a test: a full run takes several minutes.

usage: .venv/bin/python bench/bench_contention.py [--rounds 5] [--seconds 4] [--rps 600] [--concurrency 4]
           [--scenarios hog1,hog2,duty50,nice2,limit0.3,pin1] [--priority] [--write] [--service ARGV with {port}...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from docs_section import replace_section  # noqa: E402

from perfgate.capture.cgroup import CpuGroup  # noqa: E402
from perfgate.capture.contention import Build, ContentionWindow, take_snapshot, window_between  # noqa: E402

TOOLS = ROOT / ".tools" / "bin"
RESULTS = ROOT / "bench" / "results" / "contention.jsonl"
CALL, DATA = "greeter.Greeter/SayHello", {"name": "bench", "items": 64}
PRIORITY = 10_000
DUTY = "import sys,time\nbusy=float(sys.argv[1])/100*0.01\nwhile True:\n t=time.monotonic()\n" \
       " while time.monotonic()-t<busy: pass\n time.sleep(0.01-busy)\n"
BUSY = "while True: pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def greeter(argv: list[str] | None) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv] if argv else \
        [str(TOOLS / "greeter"), "-grpc-addr", f"127.0.0.1:{port}", "-pprof-addr", ""]
    process = subprocess.Popen(argv, stderr=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not listen within 20 s")
            time.sleep(0.05)
        yield process, f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def ghz(address: str, seconds: float, rps: int, concurrency: int, group: CpuGroup | None) -> dict:
    argv = [str(TOOLS / "ghz"), "--insecure", "--call", CALL, "-d", json.dumps(DATA), "-z", f"{seconds}s",
            "-c", str(concurrency), "--rps", str(rps), "-O", "json", address]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)  # noqa: S603
    if group is not None:
        group.move(process.pid)
    out, _ = process.communicate(timeout=seconds + 60)
    return json.loads(out)


@contextlib.contextmanager
def scenario(name: str, service_pid: int, priority: bool) -> Iterator[None]:
    """The contention a window runs under; everything it starts is stopped and reaped on exit."""
    processes: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        def spawn(code: str, *args: str, nice: int = 0) -> subprocess.Popen:
            argv = [sys.executable, "-c", code, *args]
            process = subprocess.Popen(["nice", "-n", str(nice), *argv] if nice else argv,  # noqa: S603
                                       start_new_session=True)
            processes.append(process)
            if priority and not nice:  # background work stays background
                stack.enter_context(CpuGroup(weight=PRIORITY)).move(process.pid)
            return process

        try:
            if name.startswith("hog"):
                for _ in range(int(name[3:])):
                    spawn(BUSY)
            elif name.startswith("duty"):
                spawn(DUTY, name[4:])
            elif name.startswith("nice"):
                for _ in range(int(name[4:])):
                    spawn(BUSY, nice=19)
            elif name.startswith("pin"):
                cpu = min(os.sched_getaffinity(service_pid))
                for _ in range(int(name[3:])):
                    os.sched_setaffinity(spawn(BUSY).pid, {cpu})
            elif name.startswith("limit"):
                stack.enter_context(CpuGroup(cpus=float(name[5:]), weight=PRIORITY if priority else None)
                                    ).move(service_pid)
            elif name != "quiet":
                raise SystemExit(f"unknown scenario {name!r}")
            time.sleep(0.3)
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGKILL)
                process.wait()


def measure_window(service: subprocess.Popen, address: str, args: argparse.Namespace,
                   group: CpuGroup | None) -> dict:
    start = take_snapshot([Build((service.pid,))])
    report = ghz(address, args.seconds, args.rps, args.concurrency, group)
    window = window_between(start, take_snapshot([Build((service.pid,))], start=start), 0)
    ok = report["statusCodeDistribution"].get("OK", 0)
    p95 = next(x["latency"] for x in report["latencyDistribution"] if x["percentage"] == 95)
    return {"p95_ms": p95 / 1e6, "rps": ok / (report["total"] / 1e9),
            "cpu_per_request_us": window.service_run_ns / max(ok, 1) / 1e3, "window": window.to_dict()}


def figures(window: ContentionWindow) -> dict[str, float]:
    wall, capacity = window.wall_ns, window.capacity_ns
    throttle = max((t.throttled_periods / t.periods for t in window.throttle if t.periods), default=0.0)
    return {"others_pct": 100 * (window.others_ns or 0) / capacity,
            "steal_pct": 100 * (window.steal_ns or 0) / capacity,
            "idle_pct": 100 * (window.idle_ns or 0) / capacity, "throttled_pct": 100 * throttle,
            "wait_per_cpu": (window.service_wait_ns or 0) / max(window.service_run_ns or 0, 1),
            "wait_us": (window.service_wait_ns or 0) / max(window.service_switches or 0, 1) / 1e3,
            "service_cpus": (window.service_ns or 0) / wall}


def run(args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with greeter(args.service) as (service, address), contextlib.ExitStack() as stack:
        group = None
        if args.priority:
            group = stack.enter_context(CpuGroup(weight=PRIORITY))
            group.move(service.pid)
        ghz(address, 2, args.rps, args.concurrency, group)  # warm-up
        for round_index in range(args.rounds):
            for name in ["quiet", *(s for scenario_name in args.scenarios for s in (scenario_name, "quiet"))]:
                with scenario(name, service.pid, args.priority):  # a limit moves the service back on exit
                    result = measure_window(service, address, args, group)
                row = {"bench_started": started, "round": round_index, "scenario": name, "rps_target": args.rps,
                       "concurrency": args.concurrency, "seconds": args.seconds, "priority": args.priority,
                       "loadavg": os.getloadavg()[0], **result}
                with RESULTS.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")
                shown = figures(ContentionWindow.from_dict(result["window"]))
                print(f"{round_index} {name:10s} p95 {result['p95_ms']:7.2f} ms  rps {result['rps']:6.0f}  "
                      f"cpu/req {result['cpu_per_request_us']:6.1f} µs  "
                      + "  ".join(f"{k} {v:.2f}" for k, v in shown.items()), flush=True)


def table(rows: list[dict]) -> str:
    """Per scenario: medians of the ratio to the quiet neighbours, and of the contention figures."""
    by_run: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        by_run.setdefault((row["bench_started"], row["round"]), []).append(row)
    ratios: dict[str, dict[str, list[float]]] = {}
    for windows in by_run.values():
        for i, row in enumerate(windows):
            if row["scenario"] == "quiet" or i == 0 or i + 1 >= len(windows):
                continue
            quiet = [windows[i - 1], windows[i + 1]]
            entry = ratios.setdefault(row["scenario"], {})
            for key in ("p95_ms", "rps", "cpu_per_request_us"):
                entry.setdefault(key, []).append(row[key] / statistics.mean(q[key] for q in quiet) - 1)
            for key, value in figures(ContentionWindow.from_dict(row["window"])).items():
                entry.setdefault(key, []).append(value)
            entry.setdefault("loadavg", []).append(row["loadavg"])
    quiet_figures: dict[str, list[float]] = {}
    for row in rows:
        if row["scenario"] == "quiet":
            for key, value in figures(ContentionWindow.from_dict(row["window"])).items():
                quiet_figures.setdefault(key, []).append(value)
    lines = ["| scenario | windows | p95 | OK rps | CPU/request | others % | steal % | idle % | throttled % "
             "| wait per CPU s | wait per switch-in | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    if quiet_figures:
        q = {k: med(v) for k, v in quiet_figures.items()}
        lines.append(f"| quiet (all quiet windows) | {len(quiet_figures['others_pct'])} | | | "
                     f"| {q['others_pct']:.1f} | {q['steal_pct']:.2f} | {q['idle_pct']:.0f} "
                     f"| {q['throttled_pct']:.0f} | {q['wait_per_cpu']:.2f} | {q['wait_us']:.0f} µs | |")
    for name, entry in ratios.items():
        lines.append(
            f"| {name} | {len(entry['p95_ms'])} | {100 * med(entry['p95_ms']):+.1f} % "
            f"| {100 * med(entry['rps']):+.1f} % "
            f"| {100 * med(entry['cpu_per_request_us']):+.1f} % | {med(entry['others_pct']):.1f} "
            f"| {med(entry['steal_pct']):.2f} | {med(entry['idle_pct']):.0f} | {med(entry['throttled_pct']):.0f} "
            f"| {med(entry['wait_per_cpu']):.2f} | {med(entry['wait_us']):.0f} µs | {med(entry['loadavg']):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rps", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--scenarios", type=lambda s: s.split(","), default="hog1,hog2,duty50,nice2,limit0.3,pin1")
    parser.add_argument("--priority", action="store_true")
    parser.add_argument("--service", nargs=argparse.REMAINDER, default=None)
    parser.add_argument("--report", action="store_true", help="print the table from the results file only")
    parser.add_argument("--write", action="store_true", help="also write the table into docs/benchmarks.md")
    args = parser.parse_args()
    if not args.report:
        run(args)
    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    text = table(rows)
    print(text)
    if args.write:
        replace_section("## Contention: dose and effect", "## Contention: dose and effect\n\n" + text + "\n")


if __name__ == "__main__":
    main()

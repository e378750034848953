"""Overhead of the kernel collector (runqlat.bt) on the service: throughput with and without it, side by side.

Not a test: it measures. The example service is loaded by ghz as fast as it goes (no rate limit), so the
CPUs are saturated and every context switch pays for the sched_switch probe — the worst case for this
collector. Windows with and without bpftrace alternate in one run (ABBA order, so slow drift cancels), and
the figure is the ratio of median throughputs. Needs root, .tools/bin/greeter and .tools/bin/ghz.

    .venv/bin/python bench/bench_runq_overhead.py            # print the Markdown section
    .venv/bin/python bench/bench_runq_overhead.py --write    # also replace it in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from perfgate.capture.runq import RunqCollector, RunqStats

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / ".tools" / "bin" / "greeter"
GHZ = ROOT / ".tools" / "bin" / "ghz"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Kernel collector overhead (capture/runq.py)"
TARGET_OVERHEAD = 0.03
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
SCRIPT: Path | None = None  # --script: measure another .bt taking the same parameters


@dataclass(frozen=True)
class Window:
    with_collector: bool
    rps: float
    cpu_ms_per_1k: float  # CPU time of the service and ghz together, per 1000 OK responses
    start_s: float | None = None  # how long RunqCollector.start() took
    events: int | None = None  # run-queue latency events bpftrace counted (machine-wide)
    bpf_us_per_response: float | None = None  # the probes' own run time (kernel.bpf_stats_enabled)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bpf_run_time_ns(pid: int) -> int:
    """Total run time of the BPF programs process `pid` holds (0 unless kernel.bpf_stats_enabled is 1)."""
    total = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            fields = dict(line.split(":", 1) for line in info.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if "prog_type" in fields:
            total += int(fields.get("run_time_ns", "0").strip())
    return total


def load(address: str, seconds: float, concurrency: int, service_pid: int) -> tuple[float, float, int]:
    """(OK responses per second, CPU ms of service + ghz per 1000 OK responses, OK count) of one ghz run."""
    argv = [str(GHZ), "--insecure", "--call", "greeter.Greeter/SayHello", "-d", '{"name":"x","items":64}',
            "-z", f"{seconds}s", "-c", str(concurrency), "-O", "json", address]
    cpu_before = process_cpu_s(service_pid) + children_cpu_s()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,  # noqa: S603
                               check=True)
    cpu_s = process_cpu_s(service_pid) + children_cpu_s() - cpu_before
    report = json.loads(completed.stdout)
    ok = report["statusCodeDistribution"].get("OK", 0)
    return ok / (report["total"] / 1e9), cpu_s * 1e6 / ok, ok


def window(address: str, service_pid: int, *, with_collector: bool, seconds: float, concurrency: int,
           folder: Path, index: int) -> Window:
    if not with_collector:
        rps, cpu_ms_per_1k, _ = load(address, seconds, concurrency, service_pid)
        return Window(False, rps, cpu_ms_per_1k)
    collector = RunqCollector(service_comm="greeter", raw_path=folder / f"runq-{index:02d}.jsonl",
                              script=SCRIPT)
    began = time.monotonic()
    collector.start()
    started = time.monotonic() - began
    try:
        bpf_before = bpf_run_time_ns(collector.pid)
        rps, cpu_ms_per_1k, ok = load(address, seconds, concurrency, service_pid)
        bpf_ns = bpf_run_time_ns(collector.pid) - bpf_before
        stats: RunqStats = collector.stop()
    finally:
        collector.close()
    if stats.status != "ok":
        raise RuntimeError(f"collector run was not clean: {stats.note}")
    bpf_us = bpf_ns / 1e3 / ok if bpf_ns else None
    return Window(True, rps, cpu_ms_per_1k, started, stats.machine.count, bpf_us)


def run(pairs: int, seconds: float, concurrency: int) -> list[Window]:
    port = free_port()
    service = subprocess.Popen(  # noqa: S603 - argv list
        [str(GREETER), "-grpc-addr", f"127.0.0.1:{port}", "-pprof-addr", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    windows: list[Window] = []
    try:
        time.sleep(1.0)
        load(address, 1.0, concurrency, service.pid)  # warm-up
        with tempfile.TemporaryDirectory(prefix="perfgate-bench-runq-") as folder:
            for pair in range(pairs):
                order = (False, True) if pair % 2 == 0 else (True, False)
                for with_collector in order:
                    windows.append(window(address, service.pid, with_collector=with_collector,
                                          seconds=seconds, concurrency=concurrency, folder=Path(folder),
                                          index=len(windows)))
    finally:
        service.terminate()
        service.wait(timeout=10)
    return windows


def render(windows: list[Window], pairs: int, seconds: float, concurrency: int) -> str:
    def column(with_collector: bool, field: str) -> list[float]:
        return [getattr(w, field) for w in windows if w.with_collector == with_collector]

    def row(label: str, values: list[float], digits: int) -> str:
        return (f"| {label} | {statistics.median(values):.{digits}f} | {min(values):.{digits}f} | "
                f"{max(values):.{digits}f} |")

    pairs_of = [sorted(windows[i:i + 2], key=lambda w: w.with_collector) for i in range(0, len(windows), 2)]
    rps_ratios = [with_.rps / without.rps for without, with_ in pairs_of]
    cpu_ratios = [with_.cpu_ms_per_1k / without.cpu_ms_per_1k for without, with_ in pairs_of]
    overhead = 1 - statistics.median(column(True, "rps")) / statistics.median(column(False, "rps"))
    cpu_overhead = statistics.median(column(True, "cpu_ms_per_1k")) / statistics.median(
        column(False, "cpu_ms_per_1k")) - 1
    starts = [w.start_s for w in windows if w.start_s is not None]
    events_per_s = statistics.median(w.events / seconds for w in windows if w.events is not None)
    verdict = "within" if overhead <= TARGET_OVERHEAD else "above"
    lines = [
        SECTION,
        "",
        f"`bench/bench_runq_overhead.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
        f"kernel {os.uname().release}. The example service loaded by ghz without a rate limit "
        f"(-c {concurrency}, {seconds:g} s windows): the CPUs are saturated and every context switch runs "
        f"the sched_switch probe, the collector's worst case. {pairs} pairs of windows without and with "
        "runqlat.bt, in ABBA order within one run. Throughput = OK responses per second; CPU = user+system "
        "time of the service and ghz per 1000 OK responses (the probes run in the context of the task that "
        "switches, so their cost lands there).",
        "",
        "| | median | min | max |",
        "|---|---:|---:|---:|",
        row("throughput without the collector (rps)", column(False, "rps"), 0),
        row("throughput with the collector (rps)", column(True, "rps"), 0),
        row("CPU ms per 1000 responses, without", column(False, "cpu_ms_per_1k"), 1),
        row("CPU ms per 1000 responses, with", column(True, "cpu_ms_per_1k"), 1),
        "",
        f"- **Throughput overhead: {overhead * 100:.1f} %** (1 − median with / median without); "
        f"{verdict} the 3 % target. Per pair, with/without: median {statistics.median(rps_ratios):.3f}, "
        f"range {min(rps_ratios):.3f}–{max(rps_ratios):.3f}.",
        f"- **CPU per response: {cpu_overhead * 100:+.1f} %** with the collector. Per pair: median "
        f"{statistics.median(cpu_ratios):.3f}, range {min(cpu_ratios):.3f}–{max(cpu_ratios):.3f}.",
        f"- bpftrace counted a median {events_per_s:.0f} run-queue events/s machine-wide; "
        f"`RunqCollector.start()` took a median {statistics.median(starts):.2f} s "
        f"(max {max(starts):.2f} s: compiling and attaching, before the load window).",
    ]
    bpf = [w.bpf_us_per_response for w in windows if w.bpf_us_per_response is not None]
    if bpf:
        bpf_us = statistics.median(bpf)
        cpu_us = statistics.median(column(True, "cpu_ms_per_1k"))  # ms per 1000 = µs per response
        lines.append(f"- The probes' own run time (kernel.bpf_stats_enabled): a median {bpf_us:.1f} µs per "
                     f"response, {bpf_us / cpu_us * 100:.1f} % of the CPU time per response (the tracepoint "
                     "dispatch around them is not included).")
    return "\n".join([*lines, ""])


def replace_section(doc: Path, text: str) -> None:
    existing = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n\n"
    start = existing.find(SECTION)
    if start < 0:
        doc.write_text(existing.rstrip("\n") + "\n\n" + text, encoding="utf-8")
        return
    end = existing.find("\n## ", start + len(SECTION))
    rest = "" if end < 0 else existing[end + 1:]
    doc.write_text(existing[:start] + text + ("\n" + rest if rest else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--script", type=Path, help="measure this .bt instead of the bundled runqlat.bt")
    parser.add_argument("--bpf-stats", action="store_true",
                        help="kernel.bpf_stats_enabled=1 during the run (restored after): time the probes")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {DOC}")
    args = parser.parse_args()
    global SCRIPT
    SCRIPT = args.script
    previous = BPF_STATS.read_text() if args.bpf_stats else None
    try:
        if args.bpf_stats:
            BPF_STATS.write_text("1")
        windows = run(args.pairs, args.seconds, args.concurrency)
    finally:
        if previous is not None:
            BPF_STATS.write_text(previous)
    text = render(windows, args.pairs, args.seconds, args.concurrency)
    print(text)
    if args.write:
        replace_section(DOC, text)


if __name__ == "__main__":
    main()

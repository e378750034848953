"""Overhead of the kernel collector (runqlat.bt) on the service: throughput with and without it, side by side.

Not a test: it measures. The example service is loaded by ghz as fast as it goes (no rate limit), so the
CPUs are saturated and every context switch pays for the sched_switch probe: the collector's worst case.
Windows without and with bpftrace alternate in one run (the order rotates each round so slow drift
cancels); the figures are ratios of medians. With --decompose two reference scripts run in the same
rotation: the same tracepoints with empty programs (the cost of tracing every switch at all) and the
stock runqlat logic (what the machine-wide histogram alone costs). Needs root, .tools/bin/{greeter,ghz}.

    .venv/bin/python bench/bench_runq_overhead.py --decompose --bpf-stats           # print the section
    .venv/bin/python bench/bench_runq_overhead.py --decompose --bpf-stats --write   # and write it to the docs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from perfgate.capture.runq import RunqCollector

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / ".tools" / "bin" / "greeter"
GHZ = ROOT / ".tools" / "bin" / "ghz"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Kernel collector overhead (capture/runq.py)"
TARGET_OVERHEAD = 0.03
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")
PERFGATE = "runqlat.bt (perfgate's)"
# Reference scripts take runqlat.bt's parameters and print its start/end lines, so RunqCollector runs them.
EMPTY_PROBES = """BEGIN { printf("start %d %d\\n", $1, $2); }
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { }
tracepoint:sched:sched_switch { }
END { printf("end 0\\n"); }
"""
STOCK_LOGIC = """BEGIN { printf("start %d %d\\n", $1, $2); }
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch {
  if (args->prev_state == 0) { @qtime[args->prev_pid] = nsecs; }
  $ns = @qtime[args->next_pid];
  if ($ns) { @usecs = hist((nsecs - $ns) / 1000); }
  delete(@qtime[args->next_pid]);
}
END { printf("end 0\\n"); clear(@qtime); }
"""
DROPPED: list[str] = []  # collector windows that did not end cleanly (reported, not measured)
REFERENCES = {"same tracepoints, empty programs": EMPTY_PROBES, "stock runqlat.bt logic": STOCK_LOGIC}


@dataclass(frozen=True)
class Window:
    variant: str | None  # None: no collector
    round_index: int
    rps: float  # OK responses per second
    cpu_ms_per_1k: float  # CPU time of the service and ghz together, per 1000 OK responses
    start_s: float | None = None  # how long RunqCollector.start() took
    events_per_s: float | None = None  # run-queue latency events bpftrace counted (machine-wide)
    bpf_us_per_response: float | None = None  # the probes' own run time (kernel.bpf_stats_enabled)


@dataclass(frozen=True)
class Target:
    address: str
    service_pid: int
    seconds: float
    concurrency: int


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


def load(target: Target, seconds: float | None = None) -> tuple[float, float, int]:
    """(OK responses/s, CPU ms of service + ghz per 1000 OK responses, OK responses) of one ghz run."""
    argv = [str(GHZ), "--insecure", "--call", "greeter.Greeter/SayHello", "-d", '{"name":"x","items":64}',
            "-z", f"{seconds or target.seconds}s", "-c", str(target.concurrency), "-O", "json",
            target.address]
    cpu_before = process_cpu_s(target.service_pid) + children_cpu_s()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=target.seconds + 60,  # noqa: S603
                               check=True)
    cpu_s = process_cpu_s(target.service_pid) + children_cpu_s() - cpu_before
    report = json.loads(completed.stdout)
    ok = report["statusCodeDistribution"].get("OK", 0)
    return ok / (report["total"] / 1e9), cpu_s * 1e6 / ok, ok


def window(target: Target, variant: str | None, script: Path | None, raw_path: Path,
           round_index: int) -> Window | None:
    if variant is None:
        rps, cpu_ms_per_1k, _ = load(target)
        return Window(None, round_index, rps, cpu_ms_per_1k)
    collector = RunqCollector(service_comm="greeter", service_pids=[target.service_pid], raw_path=raw_path,
                              script=script)
    began = time.monotonic()
    collector.start()
    started = time.monotonic() - began
    try:
        began = time.monotonic()
        bpf_before = bpf_run_time_ns(collector.pid)
        rps, cpu_ms_per_1k, ok = load(target)
        bpf_ns = bpf_run_time_ns(collector.pid) - bpf_before
        stats = collector.stop(timeout_s=30)
        window_s = time.monotonic() - began
    finally:
        collector.close()
    if stats.status != "ok":
        print(f"dropped a window of {variant}: {stats.note}", file=sys.stderr)
        DROPPED.append(f"{variant}: {stats.note}")
        return None
    return Window(variant, round_index, rps, cpu_ms_per_1k, started, stats.machine.count / window_s,
                  bpf_ns / 1e3 / ok if bpf_ns else None)


def run(rounds: int, seconds: float, concurrency: int, variants: dict[str, Path | None]) -> list[Window]:
    port = free_port()
    service = subprocess.Popen(  # noqa: S603 - argv list
        [str(GREETER), "-grpc-addr", f"127.0.0.1:{port}", "-pprof-addr", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = Target(f"127.0.0.1:{port}", service.pid, seconds, concurrency)
    sequence: list[str | None] = [None, *variants]
    windows: list[Window] = []
    try:
        time.sleep(1.0)
        load(target, 1.0)  # warm-up
        with tempfile.TemporaryDirectory(prefix="perfgate-bench-runq-") as folder:
            for round_index in range(rounds):
                shift = round_index % len(sequence)
                for variant in sequence[shift:] + sequence[:shift]:
                    script = variants[variant] if variant is not None else None
                    raw_path = Path(folder) / f"{len(windows)}.jsonl"
                    measured = window(target, variant, script, raw_path, round_index)
                    windows += [measured] if measured is not None else []
    finally:
        service.terminate()
        service.wait(timeout=10)
    return windows


def render(windows: list[Window], rounds: int, seconds: float, concurrency: int) -> str:
    def values(variant: str | None, field: str) -> list[float]:
        return [getattr(w, field) for w in windows if w.variant == variant and getattr(w, field) is not None]

    def median(variant: str | None, field: str) -> float:
        return statistics.median(values(variant, field))

    variants = list(dict.fromkeys(w.variant for w in windows if w.variant is not None))
    overhead = 1 - median(PERFGATE, "rps") / median(None, "rps")
    cpu_overhead = median(PERFGATE, "cpu_ms_per_1k") / median(None, "cpu_ms_per_1k") - 1
    lines = [
        SECTION,
        "",
        f"`bench/bench_runq_overhead.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs (a VM shared "
        f"with other jobs), kernel {os.uname().release}, bpftrace 0.17. The example service loaded by ghz "
        f"without a rate limit (-c {concurrency}, {seconds:g} s windows): both CPUs saturated, every context "
        "switch runs the probes, the collector's worst case. Windows without a collector and with each "
        f"script alternate in one run, {rounds} rounds, the order rotating every round. CPU = user+system "
        "time of the service and ghz per 1000 OK responses (a probe runs in the context of the task that "
        "switches, so its cost lands there).",
        "",
        "| | throughput (median rps) | vs none | CPU ms / 1000 responses | vs none | probes' run time "
        "µs / response | run-queue events/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| no collector | {median(None, 'rps'):.0f} | | {median(None, 'cpu_ms_per_1k'):.1f} | | | |",
    ]
    for variant in variants:
        bpf = values(variant, "bpf_us_per_response")
        rps, cpu = median(variant, "rps"), median(variant, "cpu_ms_per_1k")
        cells = [variant, f"{rps:.0f}", f"{(rps / median(None, 'rps') - 1) * 100:+.1f} %", f"{cpu:.1f}",
                 f"{(cpu / median(None, 'cpu_ms_per_1k') - 1) * 100:+.1f} %",
                 f"{statistics.median(bpf):.1f}" if bpf else "not measured",
                 f"{median(variant, 'events_per_s'):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    starts = values(PERFGATE, "start_s")
    spread = {field: per_round_ratios(windows, field) for field in ("rps", "cpu_ms_per_1k")}
    def versus_target(value: float) -> str:
        return "within" if value <= TARGET_OVERHEAD else "above"

    lines += [
        "",
        f"- **perfgate's runqlat.bt, in this worst case: throughput {-overhead * 100:+.1f} % "
        f"({versus_target(overhead)} the 3 % target), CPU per response {cpu_overhead * 100:+.1f} % "
        f"({versus_target(cpu_overhead)} it).** Without a collector "
        f"the windows ranged {min(values(None, 'rps')):.0f}–{max(values(None, 'rps')):.0f} rps; CPU per "
        "response is shown too because it moves less with the runner's other load than throughput does.",
        f"- Round by round (runqlat.bt's window / the same round's window without a collector): throughput "
        f"{spread['rps']}, CPU per response {spread['cpu_ms_per_1k']}.",
        f"- `RunqCollector.start()` took a median {statistics.median(starts):.2f} s "
        f"(max {max(starts):.2f} s) to compile and attach, before the load window starts; it is not part "
        "of the figures above.",
    ]
    bpf = values(PERFGATE, "bpf_us_per_response")
    if bpf:
        share = statistics.median(bpf) / median(PERFGATE, "cpu_ms_per_1k") * 100  # ms per 1000 = µs per one
        lines.append(f"- The steadiest figure: runqlat.bt's probes themselves ran {statistics.median(bpf):.1f} µs "
                     f"per response, {share:.1f} % of the CPU time per response; the tracepoint dispatch "
                     "around them comes on top (the empty-programs row, when measured, shows that part).")
    if DROPPED:
        lines.append(f"- {len(DROPPED)} collector window(s) did not end cleanly and were left out: "
                     + "; ".join(DROPPED))
    lines.append("")
    return "\n".join(lines)


def per_round_ratios(windows: list[Window], field: str) -> str:
    """Median and interquartile range of runqlat.bt's / no collector's value, round by round."""
    by_round: dict[int, dict[str | None, float]] = {}
    for w in windows:
        by_round.setdefault(w.round_index, {})[w.variant] = getattr(w, field)
    ratios = [r[PERFGATE] / r[None] for r in by_round.values() if PERFGATE in r and None in r]
    if len(ratios) < 2:
        return "not enough rounds"
    low, mid, high = statistics.quantiles(ratios, n=4)
    return f"median {mid:.3f}, interquartile {low:.3f}–{high:.3f} over {len(ratios)} rounds"


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
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--decompose", action="store_true", help="also run the two reference scripts")
    parser.add_argument("--bpf-stats", action="store_true",
                        help="kernel.bpf_stats_enabled=1 during the run (restored after): time the probes")
    parser.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {DOC}")
    args = parser.parse_args()
    previous = BPF_STATS.read_text() if args.bpf_stats else None
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-scripts-") as folder:
        variants: dict[str, Path | None] = {PERFGATE: None}
        if args.decompose:
            for name, text in REFERENCES.items():
                path = Path(folder) / f"{len(variants)}.bt"
                path.write_text(text, encoding="utf-8")
                variants[name] = path
        try:
            if args.bpf_stats:
                BPF_STATS.write_text("1")
            windows = run(args.rounds, args.seconds, args.concurrency, variants)
        finally:
            if previous is not None:
                BPF_STATS.write_text(previous)
    text = render(windows, args.rounds, args.seconds, args.concurrency)
    print(text)
    if args.write:
        replace_section(DOC, text)


if __name__ == "__main__":
    main()

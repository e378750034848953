"""Overhead of the kernel collector (runqlat.bt) on the service: throughput with and without it, side by side.

Not a test: it measures. The example service is loaded by ghz as fast as it goes (no rate limit), so the
CPUs are saturated and every context switch pays for the sched_switch probe: the collector's worst case.
Windows without and with bpftrace alternate in one run (the order rotates each round so slow drift
cancels); the figures are ratios of medians. With --decompose two reference scripts run in the same
rotation: the same tracepoints with empty programs (the cost of tracing every switch at all) and the
stock runqlat logic (what the machine-wide histogram alone costs). Needs root, .tools/bin/{greeter,ghz}.

With --pin the service runs on CPU 1 and ghz on CPU 0 (taskset), so neither migrates and the windows vary
less; the collector still traces every CPU. The change and its 95 % confidence interval come from the
rounds as pairs (Wilcoxon signed-rank / Hodges-Lehmann, perfgate's own compare/paired.py).

    .venv/bin/python bench/bench_runq_overhead.py --decompose --bpf-stats           # print the section
    .venv/bin/python bench/bench_runq_overhead.py --rounds 20 --pin --bpf-stats --write   # write it to the docs
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

from docs_section import replace_section

from perfgate.capture.runq import RunqCollector
from perfgate.compare.paired import compare_paired_metric
from perfgate.measure.cpu import process_cpu_ns

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / ".tools" / "bin" / "greeter"
GHZ = ROOT / ".tools" / "bin" / "ghz"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Kernel collector overhead (capture/runq.py)"
TARGET_OVERHEAD = 0.03
SETTLE_S = 0.5  # after the collector attached (and as long without one): bpftrace's compile burst passes
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
    machine_cpu_ms_per_1k: float  # busy time of all CPUs (probes run in any task's context), per 1000 OK
    start_s: float | None = None  # how long RunqCollector.start() took
    events_per_s: float | None = None  # run-queue latency events bpftrace counted (machine-wide)
    bpf_us_per_response: float | None = None  # the probes' own run time (kernel.bpf_stats_enabled)
    bpftrace_us_per_response: float | None = None  # bpftrace's own process (user space, printing) CPU time


@dataclass(frozen=True)
class Target:
    address: str
    service_pid: int
    seconds: float
    concurrency: int
    ghz_prefix: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu_s(pid: int) -> float:
    """CPU time of process `pid` (all threads) from its CPU-time clock, as perfgate reads the service's."""
    cpu_ns = process_cpu_ns((pid,))
    if cpu_ns is None:
        raise RuntimeError(f"cannot read the CPU time of process {pid}")
    return cpu_ns / 1e9


def machine_busy_s() -> float:
    """Busy time of all CPUs so far: /proc/stat's first line without idle and iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


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


def load(target: Target, seconds: float | None = None) -> tuple[float, float, float, int]:
    """(OK responses/s, CPU ms of service + ghz and of the whole machine per 1000 OK responses, OK responses)."""
    argv = [*target.ghz_prefix, str(GHZ), "--insecure", "--call", "greeter.Greeter/SayHello",
            "-d", '{"name":"x","items":64}', "-z", f"{seconds or target.seconds}s",
            "-c", str(target.concurrency), "-O", "json", target.address]
    cpu_before, busy_before = process_cpu_s(target.service_pid) + children_cpu_s(), machine_busy_s()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=target.seconds + 60,  # noqa: S603
                               check=True)
    cpu_s = process_cpu_s(target.service_pid) + children_cpu_s() - cpu_before
    busy_s = machine_busy_s() - busy_before
    report = json.loads(completed.stdout)
    ok = report["statusCodeDistribution"].get("OK", 0)
    return ok / (report["total"] / 1e9), cpu_s * 1e6 / ok, busy_s * 1e6 / ok, ok


def window(target: Target, variant: str | None, script: Path | None, raw_path: Path,
           round_index: int) -> Window | None:
    if variant is None:
        time.sleep(SETTLE_S)
        rps, cpu_ms_per_1k, machine_ms_per_1k, _ = load(target)
        return Window(None, round_index, rps, cpu_ms_per_1k, machine_ms_per_1k)
    # as perfgate runs it for a service it started: the service histogram filtered by pid
    collector = RunqCollector(service_comm=None, service_pids=[target.service_pid], raw_path=raw_path,
                              script=script)
    began = time.monotonic()
    collector.start()
    started = time.monotonic() - began
    try:
        time.sleep(SETTLE_S)
        began = time.monotonic()
        bpf_before, bpftrace_before = bpf_run_time_ns(collector.pid), process_cpu_s(collector.pid)
        rps, cpu_ms_per_1k, machine_ms_per_1k, ok = load(target)
        bpf_ns = bpf_run_time_ns(collector.pid) - bpf_before
        bpftrace_s = process_cpu_s(collector.pid) - bpftrace_before
        stats = collector.stop(timeout_s=30)
        window_s = time.monotonic() - began
    finally:
        collector.close()
    if stats.status != "ok":
        print(f"dropped a window of {variant}: {stats.note}", file=sys.stderr)
        DROPPED.append(f"{variant}: {stats.note}")
        return None
    return Window(variant, round_index, rps, cpu_ms_per_1k, machine_ms_per_1k, started,
                  stats.machine.count / window_s,
                  bpf_ns / 1e3 / ok if bpf_ns else None, bpftrace_s * 1e6 / ok)


def run(rounds: int, seconds: float, concurrency: int, variants: dict[str, Path | None], *,
        pin: bool) -> list[Window]:
    port = free_port()
    service = subprocess.Popen(  # noqa: S603 - argv list
        [*(("taskset", "-c", "1") if pin else ()), str(GREETER), "-grpc-addr", f"127.0.0.1:{port}",
         "-pprof-addr", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = Target(f"127.0.0.1:{port}", service.pid, seconds, concurrency,
                    ("taskset", "-c", "0") if pin else ())
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


def render(windows: list[Window], rounds: int, seconds: float, concurrency: int, *, pin: bool) -> str:
    def values(variant: str | None, field: str) -> list[float]:
        return [getattr(w, field) for w in windows if w.variant == variant and getattr(w, field) is not None]

    def median(variant: str | None, field: str) -> float:
        return statistics.median(values(variant, field))

    variants = list(dict.fromkeys(w.variant for w in windows if w.variant is not None))
    setup = ("the service pinned to CPU 1 and ghz to CPU 0 (`--pin`)" if pin
             else "service and ghz free to use both CPUs")
    lines = [
        SECTION,
        "",
        f"`bench/bench_runq_overhead.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs (a VM shared "
        f"with other jobs), kernel {os.uname().release}, bpftrace 0.17. The example service loaded by ghz "
        f"without a rate limit (-c {concurrency}, {seconds:g} s windows, {setup}): the CPUs saturated, every "
        "context switch runs the probes, the collector's worst case. Windows without a collector and with "
        f"each script alternate in one run, {rounds} rounds, the order rotating every round; the collector "
        "filters the service by pid, as perfgate does for a service it starts. Changes are per round "
        "(a round's window with the script vs its window without), as pairs: Hodges-Lehmann estimate and "
        "95 % confidence interval from the Wilcoxon signed-rank test. CPU per response: user+system time "
        "of the service and ghz, and the busy time of the whole machine (a probe runs in the context of "
        "whichever task switches, so part of its cost lands elsewhere).",
        "",
        "| | throughput (median rps) | throughput change [95 % CI] | CPU service+ghz, ms / 1000 responses "
        "| change [95 % CI] | machine busy, ms / 1000 responses | change [95 % CI] | probes' run time "
        "µs / response | bpftrace process µs / response | run-queue events/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| no collector | {median(None, 'rps'):.0f} | | {median(None, 'cpu_ms_per_1k'):.1f} | | "
        f"{median(None, 'machine_cpu_ms_per_1k'):.1f} | | | | |",
    ]
    changes = {}
    for variant in variants:
        changes[variant] = {field: paired_change(windows, variant, field)
                            for field in ("rps", "cpu_ms_per_1k", "machine_cpu_ms_per_1k")}
        bpf = values(variant, "bpf_us_per_response")
        cells = [variant, f"{median(variant, 'rps'):.0f}", _fmt(changes[variant]["rps"]),
                 f"{median(variant, 'cpu_ms_per_1k'):.1f}", _fmt(changes[variant]["cpu_ms_per_1k"]),
                 f"{median(variant, 'machine_cpu_ms_per_1k'):.1f}",
                 _fmt(changes[variant]["machine_cpu_ms_per_1k"]),
                 f"{statistics.median(bpf):.1f}" if bpf else "not measured",
                 f"{median(variant, 'bpftrace_us_per_response'):.2f}",
                 f"{median(variant, 'events_per_s'):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    ours = changes[PERFGATE]
    starts = values(PERFGATE, "start_s")
    lines += ["", verdict_line(ours),
              f"- Without a collector the windows ranged {min(values(None, 'rps')):.0f}–"
              f"{max(values(None, 'rps')):.0f} rps.",
              f"- `RunqCollector.start()` took a median {statistics.median(starts):.2f} s "
              f"(max {max(starts):.2f} s) to compile and attach, before the load window starts; it is not part "
              "of the figures above."]
    bpf = values(PERFGATE, "bpf_us_per_response")
    if bpf:
        share = statistics.median(bpf) / median(PERFGATE, "machine_cpu_ms_per_1k") * 100
        lines.append(f"- runqlat.bt's probes themselves ran {statistics.median(bpf):.1f} µs per response, "
                     f"{share:.1f} % of the machine's busy time per response; the tracepoint dispatch around "
                     "them comes on top (the empty-programs row, when measured, shows that part).")
    if DROPPED:
        lines.append(f"- {len(DROPPED)} collector window(s) did not end cleanly and were left out: "
                     + "; ".join(DROPPED))
    lines.append("")
    return "\n".join(lines)


def paired_change(windows: list[Window], variant: str, field: str) -> tuple[float, float, float] | None:
    """(estimate, CI low, CI high) of the relative change of `field`, rounds as pairs; None if too few."""
    by_round: dict[int, dict[str | None, float]] = {}
    for w in windows:
        by_round.setdefault(w.round_index, {})[w.variant] = getattr(w, field)
    pairs = [(r[None], r[variant]) for r in by_round.values() if None in r and variant in r]
    if len(pairs) < 6:
        return None
    result = compare_paired_metric(field, [b for b, _ in pairs], [c for _, c in pairs],
                                   higher_is_worse=field != "rps", unit="")
    if result.rel_change is None or result.rel_ci is None:
        return None
    return result.rel_change, *result.rel_ci


def _fmt(change: tuple[float, float, float] | None) -> str:
    if change is None:
        return "too few rounds"
    estimate, low, high = change
    return f"{estimate * 100:+.1f} % [{low * 100:+.1f}, {high * 100:+.1f}]"


def verdict_line(ours: dict[str, tuple[float, float, float] | None]) -> str:
    rps, machine = ours["rps"], ours["machine_cpu_ms_per_1k"]
    if rps is None or machine is None:
        return "- Too few rounds for a confidence interval."
    drop, drop_bound = -rps[0], -rps[1]  # the estimate and the largest throughput drop the interval admits
    cost, cost_bound = machine[0], machine[2]
    estimate_ok = drop <= TARGET_OVERHEAD and cost <= TARGET_OVERHEAD
    bounds_ok = drop_bound <= TARGET_OVERHEAD and cost_bound <= TARGET_OVERHEAD
    return (f"- **perfgate's runqlat.bt in this worst case: throughput {rps[0] * 100:+.1f} % (95 % CI down to "
            f"{-drop_bound * 100:+.1f} %), machine CPU per response {cost * 100:+.1f} % (up to "
            f"{cost_bound * 100:+.1f} %). The estimates are {'within' if estimate_ok else 'beyond'} the 3 % "
            f"target; the 95 % bounds {'are too' if bounds_ok else 'reach beyond it'}.**")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--decompose", action="store_true", help="also run the two reference scripts")
    parser.add_argument("--pin", action="store_true", help="service on CPU 1, ghz on CPU 0 (taskset)")
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
            windows = run(args.rounds, args.seconds, args.concurrency, variants, pin=args.pin)
        finally:
            if previous is not None:
                BPF_STATS.write_text(previous)
    text = render(windows, args.rounds, args.seconds, args.concurrency, pin=args.pin)
    print(text)
    if args.write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    main()

"""`perfgate profile top FILE` as a user types it, against `go tool pprof -top -nodefraction=0 FILE`.

Not a test: run `.venv/bin/python bench/bench_cli_speed.py [--write]` (needs Go). It

1. makes real CPU profiles of several shapes from real Go programs, none of them perfgate's example:
   standard-library benchmarks (`go test -bench . -cpuprofile`: parsers, compressors, hashes, big
   numbers, sorting, templates, regexps) and bench/pprof_workload (the type checker: deep, recursive,
   inlined), keeping those of 10-400 KB;
2. checks that perfgate's flat and cum equal pprof's (`-unit=ns`) for every function of every profile;
3. times both commands as fresh processes, interleaved round by round, CPU = user + system of the child
   (all threads) from getrusage; the ratio per profile is perfgate's median CPU over pprof's, with the
   range of the per-round ratios beside it. The load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from perfgate.profile.parse import parse_profile  # noqa: E402

PERFGATE = ROOT / ".venv" / "bin" / "perfgate"
WORKLOAD_DIR = ROOT / "bench" / "pprof_workload"
RESULTS = ROOT / "bench" / "results" / "cli_speed.jsonl"
# (package, -bench pattern, -benchtime): standard-library benchmarks of different shapes
STD_BENCHES = [
    ("strconv", ".", "200ms"), ("sort", ".", "100ms"), ("regexp", ".", "100ms"), ("compress/flate", ".", "100ms"),
    ("encoding/json", ".", "100ms"), ("crypto/sha256", ".", "200ms"), ("math/big", ".", "20ms"),
    ("text/template", ".", "200ms"), ("go/parser", ".", "500ms"), ("bytes", ".", "20ms"),
]
WORKLOAD_SECONDS = (1.0, 4.0, 10.0)
MIN_BYTES, MAX_BYTES = 10_000, 400_000
TIMEOUT_S = 900


@dataclass(frozen=True)
class Result:
    profile: str
    size_bytes: int
    functions: int
    perfgate_cpu_s: float
    pprof_cpu_s: float
    ratio: float
    ratio_low: float
    ratio_high: float


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, timeout=TIMEOUT_S, **kwargs)  # noqa: S603 - argv list


def std_profiles(workdir: Path, benches: list[tuple[str, str, str]]) -> list[Path]:
    profiles = []
    for package, pattern, benchtime in benches:
        out = workdir / f"std-{package.replace('/', '-')}.pb.gz"
        run(["go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-cpuprofile", str(out),
             "-o", str(workdir / "test.bin"), package], cwd=workdir, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        profiles.append(out)
    return profiles


def workload_profiles(workdir: Path, seconds: tuple[float, ...]) -> list[Path]:
    binary = workdir / "pprofworkload"
    run(["go", "build", "-o", str(binary), "."], cwd=WORKLOAD_DIR, env={**os.environ, "GOFLAGS": "-buildvcs=false"})
    profiles = []
    for duration in seconds:
        out = workdir / f"typecheck-{duration:g}s.pb.gz"
        run([str(binary), "-o", str(out), "-seconds", str(duration), "-hz", "500"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        profiles.append(out)
    return profiles


def check_agreement(path: Path) -> int:
    from support.pprof import pprof_top_ns  # the tests' reading of pprof's -top -unit=ns table

    ours = parse_profile(path).functions
    theirs = pprof_top_ns(path)
    assert set(ours) == set(theirs), f"{path.name}: function sets differ"
    for name, (flat, cum) in theirs.items():
        assert (ours[name].flat, ours[name].cum) == (flat, cum), f"{path.name}: {name}"
    return len(theirs)


def child_cpu_s(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_profile(path: Path, rounds: int) -> Result:
    functions = check_agreement(path)
    ours_argv = [str(PERFGATE), "profile", "top", str(path)]
    theirs_argv = ["go", "tool", "pprof", "-top", "-nodefraction=0", str(path)]
    ours, theirs = [], []
    for round_index in range(rounds):
        pair = [(ours, ours_argv), (theirs, theirs_argv)]
        for times, argv in pair if round_index % 2 == 0 else reversed(pair):
            times.append(child_cpu_s(argv))
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return Result(path.name, path.stat().st_size, functions, statistics.median(ours), statistics.median(theirs),
                  statistics.median(ours) / statistics.median(theirs), min(ratios), max(ratios))


def markdown(results: list[Result], rounds: int, load: tuple[str, str]) -> str:
    lines = [
        "## `perfgate profile top` from the command line (bench/bench_cli_speed.py)",
        "",
        f"`bench/bench_cli_speed.py`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, load average "
        f"{load[0]} before and {load[1]} after; Python {sys.version.split()[0]}, "
        f"{run(['go', 'version'], capture_output=True, text=True).stdout.split()[2]}. Each command runs as a fresh "
        f"process, as a user types it, {rounds} rounds interleaved; CPU is user + system of the child. Profiles "
        "are real: standard-library benchmarks and the type-checking workload, 10-400 KB; on every one "
        "perfgate's flat and cum equal pprof's to the nanosecond for every function.",
        "",
        "| profile | KB | functions | perfgate CPU | `go tool pprof -top -nodefraction=0` CPU | ratio (round range) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.profile} | {r.size_bytes / 1000:.0f} | {r.functions} | {r.perfgate_cpu_s * 1000:.0f} ms "
                     f"| {r.pprof_cpu_s * 1000:.0f} ms | **{r.ratio:.2f}** ({r.ratio_low:.2f}-{r.ratio_high:.2f}) |")
    ratios = [r.ratio for r in results]
    lines += ["", f"Ratio over the {len(results)} profiles: median {statistics.median(ratios):.2f}, "
              f"highest {max(ratios):.2f} (target: at most 1.0)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--std", type=int, default=len(STD_BENCHES), help="how many standard-library benchmarks")
    parser.add_argument("--workload-seconds", type=float, nargs="*", default=list(WORKLOAD_SECONDS))
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md and bench/results/")
    args = parser.parse_args()
    if shutil.which("go") is None or not PERFGATE.exists():
        print("bench_cli_speed: needs Go and the project's venv (scripts/setup.sh --python)", file=sys.stderr)
        return 2
    load_before = "/".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-cli-") as tmp:
        workdir = Path(tmp)
        profiles = std_profiles(workdir, STD_BENCHES[:args.std]) + workload_profiles(workdir, args.workload_seconds)
        kept = [p for p in profiles if MIN_BYTES <= p.stat().st_size <= MAX_BYTES]
        for skipped in sorted(set(profiles) - set(kept)):
            print(f"skipped {skipped.name}: {skipped.stat().st_size} bytes, outside 10-400 KB", file=sys.stderr)
        run(["go", "tool", "pprof", "-top", str(kept[0])], stdout=subprocess.DEVNULL)  # build pprof once
        results = [time_profile(path, args.rounds) for path in kept]
    load_after = "/".join(f"{v:.1f}" for v in os.getloadavg())
    text = markdown(results, args.rounds, (load_before, load_after))
    print(text)
    if args.write:
        from docs_section import replace_section

        replace_section(text.splitlines()[0], text)
        with RESULTS.open("a", encoding="utf-8") as stream:
            for result in results:
                stream.write(json.dumps({**asdict(result), "load": [load_before, load_after]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

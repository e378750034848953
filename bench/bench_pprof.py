"""Speed of perfgate's CPU profile parsing against `go tool pprof -top`, on a >= 10 MB profile.

Not a test: run `.venv/bin/python bench/bench_pprof.py` (needs Go). It

1. builds bench/pprof_workload (a Go program that parses and type-checks standard library
   packages in memory) and records its CPU profile at 1000 Hz: a real profile of deep,
   recursive, partly inlined Go code;
2. grows that profile into one of at least --min-mb MB (gzipped, like Go writes it): new
   samples are random walks over the REAL call graph (caller -> callee location edges and
   leaf frequencies as observed), so functions, inlining and edge structure stay the
   workload's while the number of distinct stacks becomes large. Half of the leaves get a
   fresh location (a new PC in the same function), as in real profiles where many samples'
   leaf PCs differ. Walks repeat more than real stacks do, so the profile packs more samples
   into each MB than a real one (both figures are printed): a harder case for perfgate, whose
   cost grows with the samples, than for pprof, whose decoding grows with the bytes. It is
   written through perfgate's generated protobuf classes;
3. checks that perfgate and `go tool pprof -top -nodefraction=0 -unit=ns` agree on every
   function, then times, interleaved in the same run: `render_top(parse_profile(FILE))` in
   this process (decompress, decode, validate, aggregate, format), the same in a fresh
   `python -c` process (interpreter start and imports included, like the CLI),
   `go tool pprof -top -nodefraction=0 FILE` (what a user runs; the go command's start-up
   included) and the pprof binary that command runs, called directly. Wall time and CPU time
   (user + system, all threads) are both reported: on a shared runner CPU time is the steadier
   figure. The results go into docs/benchmarks.md "CPU profile parsing" by hand.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from perfgate.profile import profile_pb2  # noqa: E402
from perfgate.profile.parse import parse_profile  # noqa: E402
from perfgate.profile.render import render_top  # noqa: E402

WORKLOAD_DIR = ROOT / "bench" / "pprof_workload"
RUN_TIMEOUT_S = 600


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, timeout=RUN_TIMEOUT_S, **kwargs)  # noqa: S603 - argv list


def record_workload_profile(workdir: Path, seconds: float) -> Path:
    binary = workdir / "pprofworkload"
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    run(["go", "build", "-o", str(binary), "."], cwd=WORKLOAD_DIR, env=env)
    out = workdir / "workload.pb.gz"
    run([str(binary), "-o", str(out), "-seconds", str(seconds), "-hz", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


class CallGraph:
    """Observed caller -> callee location edges, root and leaf counts, and sample weights."""

    def __init__(self, profile: profile_pb2.Profile) -> None:
        self.roots: Counter[int] = Counter()
        self.callees: dict[int, Counter[int]] = defaultdict(Counter)
        self.leaf: Counter[int] = Counter()
        self.counts: Counter[int] = Counter()
        for sample in profile.sample:
            stack = list(reversed(sample.location_id))  # root first
            if not stack:
                continue
            self.roots[stack[0]] += 1
            for caller, callee in zip(stack, stack[1:], strict=False):
                self.callees[caller][callee] += 1
            self.leaf[stack[-1]] += 1
            self.counts[sample.value[0]] += 1
        self._choices = {loc: (list(c), list(c.values())) for loc, c in self.callees.items()}

    def walk(self, rng: random.Random, max_depth: int = 160) -> list[int]:
        location = rng.choices(list(self.roots), weights=list(self.roots.values()))[0]
        stack = [location]
        while len(stack) < max_depth:
            callees, weights = self._choices.get(location, ((), ()))
            outgoing = sum(weights)
            if not callees or rng.random() < self.leaf[location] / (self.leaf[location] + outgoing):
                break
            location = rng.choices(callees, weights=weights)[0]
            stack.append(location)
        return stack


NEW_LEAF_PC_PROBABILITY = 0.5


def grow_profile(source: Path, target: Path, min_bytes: int, seed: int = 1) -> tuple[int, int]:
    real = profile_pb2.Profile()
    real.ParseFromString(gzip.decompress(source.read_bytes()))
    graph = CallGraph(real)
    counts, count_weights = list(graph.counts), list(graph.counts.values())
    period = real.sample[0].value[1] // max(real.sample[0].value[0], 1)
    rng = random.Random(seed)
    grown = profile_pb2.Profile()
    grown.CopyFrom(real)
    del grown.sample[:]
    by_id = {location.id: location for location in real.location}
    next_id = max(by_id) + 1
    batch = 20_000
    while True:
        for _ in range(batch):
            count = rng.choices(counts, weights=count_weights)[0]
            stack = graph.walk(rng)
            if rng.random() < NEW_LEAF_PC_PROBABILITY:
                leaf = grown.location.add()
                leaf.CopyFrom(by_id[stack[-1]])
                leaf.id = next_id
                leaf.address += rng.randrange(1, 64)
                stack[-1] = next_id
                next_id += 1
            sample = grown.sample.add()
            sample.location_id.extend(reversed(stack))
            sample.value.extend((count, count * period))
        data = gzip.compress(grown.SerializeToString(), compresslevel=1)  # Go uses BestSpeed
        if len(data) >= min_bytes:
            target.write_bytes(data)
            return len(data), len(grown.sample)


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], env: dict[str, str] | None = None) -> Timing:
    cpu, wall = _children_cpu_s(), time.perf_counter()
    run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Timing(time.perf_counter() - wall, _children_cpu_s() - cpu)


def time_in_process(path: Path) -> Timing:
    cpu, wall = time.process_time(), time.perf_counter()
    render_top(parse_profile(path), as_json=False)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def pprof_binary() -> str:
    """The pprof executable `go tool pprof` runs (timing it directly leaves out the go command)."""
    return run(["go", "tool", "-n", "pprof"], capture_output=True, text=True).stdout.strip()


def check_agreement(path: Path) -> int:
    """Every function's flat and cum equal pprof's -top -unit=ns figures (same rule as the tests)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.pprof import pprof_top_ns  # noqa: PLC0415 - only the bench needs the test helper

    ours = parse_profile(path).functions
    theirs = pprof_top_ns(path)
    assert set(ours) == set(theirs), "function sets differ"
    for name, (flat, cum) in theirs.items():
        assert (ours[name].flat, ours[name].cum) == (flat, cum), name
    return len(theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-mb", type=float, default=10.0, help="size of the grown profile, gzipped")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--workload-seconds", type=float, default=8.0)
    parser.add_argument("--keep", type=Path, help="copy the grown profile here")
    args = parser.parse_args()
    if shutil.which("go") is None:
        print("bench_pprof: needs Go (go tool pprof)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="perfgate-bench-pprof-") as tmp:
        workdir = Path(tmp)
        real = record_workload_profile(workdir, args.workload_seconds)
        big = workdir / "grown.pb.gz"
        size, samples = grow_profile(real, big, int(args.min_mb * 1_000_000))
        raw_size = len(gzip.decompress(big.read_bytes()))
        if args.keep:
            shutil.copyfile(big, args.keep)
        functions = check_agreement(big)
        real_profile = profile_pb2.Profile.FromString(gzip.decompress(real.read_bytes()))
        print(f"real workload profile: {real.stat().st_size / len(real_profile.sample):.0f} gzipped bytes per "
              f"sample, {len(real_profile.sample)} samples, {len(real_profile.location)} locations")
        grown_profile = profile_pb2.Profile.FromString(gzip.decompress(big.read_bytes()))
        print(f"grown profile: {size / 1e6:.1f} MB gzipped ({size / samples:.0f} bytes per sample), "
              f"{raw_size / 1e6:.1f} MB raw, {samples} samples, {len(grown_profile.location)} locations, "
              f"{functions} functions; perfgate and pprof agree on every function")
        pprof = pprof_binary()
        code = ("import sys; from perfgate.profile.parse import parse_profile; "
                "from perfgate.profile.render import render_top; "
                "render_top(parse_profile(sys.argv[1]), as_json=False)")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        runs: dict[str, Callable[[], Timing]] = {
            "go tool pprof -top -nodefraction=0": lambda: time_command(
                ["go", "tool", "pprof", "-top", "-nodefraction=0", str(big)]),
            "pprof binary -top -nodefraction=0": lambda: time_command([pprof, "-top", "-nodefraction=0", str(big)]),
            "perfgate parse+render_top (in process)": lambda: time_in_process(big),
            "perfgate parse+render_top (python -c)": lambda: time_command([sys.executable, "-c", code, str(big)], env),
        }
        timings: dict[str, list[Timing]] = {name: [] for name in runs}
        for _ in range(args.repetitions):  # interleaved, so drifting machine load hits all alike
            for name, measure in runs.items():
                timings[name].append(measure())
    medians = {name: (statistics.median(t.wall_s for t in values), statistics.median(t.cpu_s for t in values))
               for name, values in timings.items()}
    for name, (wall, cpu) in medians.items():
        print(f"{name:>40}: median wall {wall:.2f} s, cpu {cpu:.2f} s")
    ours = medians["perfgate parse+render_top (in process)"]
    for reference in ("go tool pprof -top -nodefraction=0", "pprof binary -top -nodefraction=0"):
        theirs = medians[reference]
        print(f"ratio in-process perfgate / {reference}: wall {ours[0] / theirs[0]:.2f}, cpu {ours[1] / theirs[1]:.2f}")
    cli = medians["perfgate parse+render_top (python -c)"]
    theirs = medians["go tool pprof -top -nodefraction=0"]
    print(f"ratio python -c perfgate / go tool pprof: wall {cli[0] / theirs[0]:.2f}, cpu {cli[1] / theirs[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the CPU-profile tests: run `go tool pprof`, read its -top table, profile real Go code.

Shared fixtures (the greeter on free ports) live in tests/conftest.py; these are plain
functions so bench/bench_pprof.py can use them too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from support.paths import TEST_DATA

DATA = TEST_DATA
GOBENCH_DIR = DATA / "gobench"
PPROF_FIXTURES = DATA / "pprof"
GO_TIMEOUT_S = 180

# One -top row: flat flat% sum% cum cum% name [(inline)|(partial-inline)]
_TOP_ROW = re.compile(r"^\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)  (.*?)(?: \((inline|partial-inline)\))?$")
_TOP_HEADER = re.compile(r"^\s*flat\s+flat%\s+sum%\s+cum\s+cum%\s*$")


def have_go() -> bool:
    return shutil.which("go") is not None


def run_go(argv: list[str], *, cwd: Path | None = None, timeout_s: float = GO_TIMEOUT_S) -> str:
    """Run a go command; fail loudly with its stderr. The child is killed if it overruns."""
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,  # noqa: S603 - argv list
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def pprof_top_lines(path: Path, *extra: str) -> list[str]:
    """The table lines of `go tool pprof -top -nodefraction=0 [extra] FILE`, after its column header."""
    output = run_go(["go", "tool", "pprof", "-top", "-nodefraction=0", *extra, str(path)])
    lines = output.splitlines()
    header = next((i for i, line in enumerate(lines) if _TOP_HEADER.match(line)), None)
    assert header is not None, f"no -top table header in pprof's output:\n{output}"
    return lines[header + 1:]


def pprof_top_rows(path: Path, *extra: str) -> list[tuple[str, str, str, str, str, str, str]]:
    """The -top rows as (flat, flat%, sum%, cum, cum%, name, inline mark or "")."""
    rows = []
    for line in pprof_top_lines(path, *extra):
        match = _TOP_ROW.match(line)
        assert match, f"cannot read pprof -top line {line!r}"
        rows.append(tuple(group or "" for group in match.groups()))
    return rows


def pprof_top_ns(path: Path, *extra: str | Path) -> dict[str, tuple[int, int]]:
    """pprof's per-function (flat, cum) as exact integers: -unit=ns for time, -unit=B for bytes.

    With -unit=ns (or B) pprof prints each value as "%.2f" of the count with ".00" dropped and
    the unit appended ("390000000ns"), and a bare "0" for zero; counts have no unit. Names are
    printed in full (-top does not shorten them); " (inline)" / " (partial-inline)" marks are
    not part of the name. `extra` passes more options (-sample_index=..., -ignore=...).
    """
    result: dict[str, tuple[int, int]] = {}
    extra = tuple(map(str, extra))  # flags, or more profiles to add up
    unit = "-unit=B" if any(option.endswith("_space") for option in extra) or _is_bytes(path, extra) else "-unit=ns"
    for flat, _, _, cum, _, name, _ in pprof_top_rows(path, unit, *extra):
        assert name not in result, f"pprof listed {name!r} twice"
        result[name] = (_ns(flat), _ns(cum))
    return result


def _is_bytes(path: Path, extra: tuple[str, ...]) -> bool:
    from perfgate.profile.parse import parse_profile  # noqa: PLC0415

    profile = parse_profile(path)
    return not any(option.startswith("-sample_index=") for option in extra) and profile.unit == "bytes"


def _ns(text: str) -> int:
    if text == "0":
        return 0
    match = re.fullmatch(r"(-?\d+)(?:ns|B)?", text)
    assert match, f"unexpected -unit=ns/B value {text!r}"
    return int(match.group(1))


def gobench_profile(out_dir: Path, benchtime: str = "150ms") -> Path:
    """A real CPU profile of tests/data/gobench: `go test -bench . -cpuprofile` (about 2-3 s)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    profile = out_dir / "gobench.pb.gz"
    run_go(["go", "test", "-run", "^$", "-bench", ".", "-benchtime", benchtime, "-cpuprofile", str(profile),
            "-o", str(out_dir / "gobench.test"), "."], cwd=GOBENCH_DIR)
    return profile


GHZ_CALL = "greeter.Greeter/SayHello"
GHZ_DATA = '{"name":"x","items":64}'


def profile_under_load(ghz: Path, grpc_address: str, pprof_url: str, *, load_s: float = 3.0,
                       profile_s: int = 2, concurrency: int = 4) -> bytes:
    """One repetition: ghz load on the greeter for load_s while a CPU profile of profile_s
    seconds is fetched from the middle of the window. Returns the profile bytes."""
    import threading  # noqa: PLC0415 - only this helper needs it

    from perfgate.capture.pprof import fetch_cpu_profile  # noqa: PLC0415

    result: dict[str, bytes | BaseException] = {}

    def fetch() -> None:
        try:
            result["body"] = fetch_cpu_profile(pprof_url, profile_s)
        except BaseException as error:  # reported by the caller
            result["error"] = error

    argv = [str(ghz), "--insecure", "--call", GHZ_CALL, "-d", GHZ_DATA, "-z", f"{load_s}s", "-c", str(concurrency),
            "--connections", "1", "-O", "json", grpc_address]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603 - argv list
    try:
        import time  # noqa: PLC0415

        time.sleep(max(0.0, (load_s - profile_s) / 2))
        fetcher = threading.Thread(target=fetch)
        fetcher.start()
        fetcher.join(timeout=profile_s + 30)
        _, stderr = process.communicate(timeout=load_s + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"ghz failed: {stderr.decode(errors='replace')[-2000:]}"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["body"]  # type: ignore[return-value]


class SyntheticProfile:
    """Builds pprof protobuf messages with perfgate's generated classes, for tests that need a
    profile of a given shape (recursion, inlining, odd names, broken tables...).

    location(*names) adds a location whose frames are the given functions, innermost first
    (more than one = inlined frames); sample(ids, values) adds a sample, leaf location first.
    """

    def __init__(self, sample_types=(("samples", "count"), ("cpu", "nanoseconds")), *, period: int = 10_000_000,
                 period_type=("cpu", "nanoseconds"), duration_ns: int = 1_000_000_000,
                 mapping_file: str = "/nonexistent/app") -> None:
        from perfgate.profile import profile_pb2  # noqa: PLC0415 - tests import this module early

        self.message = profile_pb2.Profile()
        self.strings: dict[str, int] = {"": 0}
        self.functions: dict[str, int] = {}
        for sample_type, unit in sample_types:
            value_type = self.message.sample_type.add()
            value_type.type, value_type.unit = self.string(sample_type), self.string(unit)
        if period_type:
            self.message.period_type.type = self.string(period_type[0])
            self.message.period_type.unit = self.string(period_type[1])
        self.message.period = period
        self.message.duration_nanos = duration_ns
        self.message.time_nanos = 1_700_000_000_000_000_000
        mapping = self.message.mapping.add()
        mapping.id, mapping.filename, mapping.has_functions = 1, self.string(mapping_file), True

    def string(self, text: str) -> int:
        if text not in self.strings:
            self.strings[text] = len(self.strings)
        return self.strings[text]

    def function(self, name: str, system_name: str | None = None) -> int:
        key = f"{name}\0{system_name}"
        if key not in self.functions:
            function = self.message.function.add()
            function.id = len(self.functions) + 1
            function.name = self.string(name)
            function.system_name = self.string(name if system_name is None else system_name)
            function.filename = self.string("/src/app.go")
            self.functions[key] = function.id
        return self.functions[key]

    def location(self, *names: str, mapping_id: int = 1) -> int:
        """A location with these frames (none: an unsymbolized address); returns its id."""
        location = self.message.location.add()
        location.id = max((other.id for other in self.message.location), default=0) + 1
        location.mapping_id = mapping_id
        location.address = 0x401000 + 16 * location.id
        for depth, name in enumerate(names):
            line = location.line.add()
            line.function_id = self.function(name)
            line.line = 10 + depth
        return location.id

    def sample(self, location_ids, values) -> None:
        sample = self.message.sample.add()
        sample.location_id.extend(location_ids)
        sample.value.extend(values)

    def serialized(self, *, gzipped: bool = True) -> bytes:
        import gzip  # noqa: PLC0415

        del self.message.string_table[:]
        self.message.string_table.extend(text.encode() for text in self.strings)
        raw = self.message.SerializeToString()
        return gzip.compress(raw) if gzipped else raw

    def write(self, path: Path, *, gzipped: bool = True) -> Path:
        path.write_bytes(self.serialized(gzipped=gzipped))
        return path


def naive_flat_cum(message, index: int) -> tuple[dict[str, tuple[int, int]], int]:
    """A deliberately plain reading of pprof's rules, to cross-check the optimised parser.

    Names come from Function.name (no demangling heuristics: test names avoid them), frames
    without a function are "[basename]" of their mapping, as in pprof.
    """
    strings = [s.decode() for s in message.string_table]
    names = {f.id: strings[f.name] for f in message.function}
    mappings = {m.id: strings[m.filename] for m in message.mapping}
    locations = {}
    for location in message.location:
        binary = mappings.get(location.mapping_id, "")
        binary = f"[{binary.rsplit('/', 1)[-1]}]" if binary else "<unknown>"
        frames = [names[line.function_id] or binary for line in location.line] or [binary]
        locations[location.id] = frames  # innermost first
    flat: dict[str, int] = {}
    cum: dict[str, int] = {}
    total = 0
    for sample in message.sample:
        weight = sample.value[index]
        total += abs(weight)
        if weight == 0:
            continue
        frames = [name for location_id in sample.location_id for name in locations[location_id]]
        if not frames:
            continue
        flat[frames[0]] = flat.get(frames[0], 0) + weight
        for name in set(frames):
            cum[name] = cum.get(name, 0) + weight
    result = {name: (flat.get(name, 0), cum.get(name, 0)) for name in set(flat) | set(cum)}
    return {name: costs for name, costs in result.items() if costs != (0, 0)}, total

"""Helpers for the CPU-profile tests: run `go tool pprof`, read its -top table, profile real Go code.

Shared fixtures (the greeter on free ports, ghz) live in tests/conftest.py; these are plain
functions so bench/bench_pprof.py can use them too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
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


def pprof_top_rows(path: Path, *extra: str) -> list[tuple[str, str, str, str, str, str, str]]:
    """`go tool pprof -top -nodefraction=0 [extra] FILE` rows as (flat, flat%, sum%, cum, cum%, name, inline)."""
    output = run_go(["go", "tool", "pprof", "-top", "-nodefraction=0", *extra, str(path)])
    lines = output.splitlines()
    header = next((i for i, line in enumerate(lines) if _TOP_HEADER.match(line)), None)
    assert header is not None, f"no -top table header in pprof's output:\n{output}"
    rows = []
    for line in lines[header + 1:]:
        match = _TOP_ROW.match(line)
        assert match, f"cannot read pprof -top line {line!r}"
        rows.append(tuple(group or "" for group in match.groups()))
    return rows


def pprof_top_ns(path: Path) -> dict[str, tuple[int, int]]:
    """pprof's per-function (flat, cum) with -unit=ns, exact integers.

    With -unit=ns pprof prints each value as "%.2f" of the ns count with ".00" dropped and
    "ns" appended ("390000000ns"), and a bare "0" for zero. Names are printed in full (-top
    does not shorten them); " (inline)" / " (partial-inline)" marks are not part of the name.
    """
    result: dict[str, tuple[int, int]] = {}
    for flat, _, _, cum, _, name, _ in pprof_top_rows(path, "-unit=ns"):
        assert name not in result, f"pprof listed {name!r} twice"
        result[name] = (_ns(flat), _ns(cum))
    return result


def _ns(text: str) -> int:
    if text == "0":
        return 0
    match = re.fullmatch(r"(-?\d+)ns", text)
    assert match, f"unexpected -unit=ns value {text!r}"
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

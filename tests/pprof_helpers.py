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

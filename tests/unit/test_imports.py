"""Each subcommand imports what it uses: the quick ones start without the heavy libraries.

Every case runs the real CLI in a fresh interpreter (imports are per process) and reads sys.modules
as the command leaves it. A module-level import added anywhere on a command's path fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT, TEST_DATA

PROFILE = TEST_DATA / "pprof" / "greeter-base-1.pb.gz"
OTHER_PROFILE = TEST_DATA / "pprof" / "greeter-cand-1.pb.gz"

# What a user waits for on every start: statistics, plotting, GitHub's client, HTTP, arrays.
HEAVY = ("scipy", "numpy", "matplotlib", "github", "requests", "urllib3")

PROBE = """
import contextlib, io, json, sys
from perfgate.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
    code = main(sys.argv[2:])
with open(sys.argv[1], "w") as report:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules}),
               "stdout": out.getvalue(), "stderr": err.getvalue()[-2000:]}, report)
"""


def imports_of(argv: list[str], tmp_path: Path) -> dict:
    report = tmp_path / "imports.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    argv = [sys.executable, "-c", PROBE, str(report), *argv]
    subprocess.run(argv, cwd=tmp_path, env=env, check=True, timeout=60)  # noqa: S603 - argv list of our own
    return json.loads(report.read_text())


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["run", "--help"],
    ["compare", "--help"],
    ["profile", "top", str(PROFILE)],
    ["profile", "top", "--json", str(PROFILE)],
    ["profile", "diff", str(PROFILE), str(OTHER_PROFILE)],
    ["profile", "diff", "--json", str(PROFILE), str(OTHER_PROFILE)],
    ["doctor", "--json"],
], ids=lambda argv: " ".join(a if "/" not in a else Path(a).name for a in argv))
def test_quick_commands_start_without_heavy_libraries(argv, tmp_path):
    result = imports_of(argv, tmp_path)
    assert result["code"] in (0, 3), result  # doctor exits 3 where ghz is missing
    heavy = sorted(set(HEAVY) & set(result["modules"]))
    assert not heavy, f"`perfgate {' '.join(argv)}` imported {heavy}"


def test_profile_top_output_is_real(tmp_path):
    """The guard above is only worth something if the command did its work in that process."""
    result = imports_of(["profile", "top", "--json", str(PROFILE)], tmp_path)
    rows = json.loads(result["stdout"])
    assert result["code"] == 0 and rows and {"function", "flat", "cum"} <= set(rows[0])

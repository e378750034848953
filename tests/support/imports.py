"""Which modules one perfgate command imports: the real CLI in a fresh interpreter, sys.modules as it leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT

PROBE = """
import contextlib, io, json, sys
from perfgate.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
    code = main(sys.argv[2:])
with open(sys.argv[1], "w") as report:
    json.dump({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules}),
               "stdout": out.getvalue(), "stderr": err.getvalue()[-2000:]}, report)
"""


def imports_of(argv: list[str], tmp_path: Path, *, timeout_s: float = 60) -> dict:
    """{"code", "modules" (top-level names), "stdout", "stderr"} of `perfgate ARGV` run in tmp_path."""
    report = tmp_path / "imports.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    argv = [sys.executable, "-c", PROBE, str(report), *argv]
    subprocess.run(argv, cwd=tmp_path, env=env, check=True, timeout=timeout_s)  # noqa: S603 - argv list of our own
    return json.loads(report.read_text())

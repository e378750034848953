"""Run the real `perfgate` CLI as a child of a benchmark, the way a CI job would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERDICT_EXITS = (0, 1, 4)  # pass/warn, regression, inconclusive: a gate that ran


def perfgate_env() -> dict[str, str]:
    """This environment with the pinned tools (.tools/bin) first on PATH and outside GitHub Actions."""
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GITHUB_ACTIONS", None)
    return env


def run_perfgate(args: Sequence[str], *, cwd: Path, timeout: float) -> int:
    """`python -m perfgate ARGS` in `cwd`; its exit code, or RuntimeError (with its stderr's end) when no verdict."""
    done = subprocess.run([sys.executable, "-m", "perfgate", *args], cwd=cwd, env=perfgate_env(),  # noqa: S603
                          timeout=timeout, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in VERDICT_EXITS:
        raise RuntimeError(f"perfgate {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
    return done.returncode

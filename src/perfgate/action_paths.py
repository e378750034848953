"""The Action's input paths, checked on the runner before the container starts.

perfgate's container sees two folders of the runner: the workspace and runner.temp (scripts/action-run.sh
mounts both at the same paths). A path outside them (e.g. /tmp/records, or a symlink in the checkout that
points elsewhere) would be "no such file" inside the container, which says nothing about why; this module
refuses it up front and says which folder to use instead.

Standard library only: scripts/action.sh runs it with the runner's python3 (as `-m perfgate.action_paths`,
with the action's src folder on sys.path and not the checkout), where perfgate's dependencies are not installed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from perfgate.action_inputs import ACTION_INPUTS, read_inputs
from perfgate.errors import EXIT_PASS, EXIT_USAGE
from perfgate.gha import annotation

PATH_INPUTS = tuple(item.name for item in ACTION_INPUTS if item.path)
ERROR_TITLE = "perfgate: input path outside the workspace and runner.temp"


@dataclass(frozen=True)
class Mounts:
    """The runner folders the container sees, resolved (symlinks followed)."""

    workspace: str
    temp: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], cwd: str) -> Mounts:
        temp = environ.get("RUNNER_TEMP")
        return cls(os.path.realpath(environ.get("GITHUB_WORKSPACE") or cwd),
                   os.path.realpath(temp) if temp else None)

    def holds(self, resolved: str) -> bool:
        return any(resolved == root or resolved.startswith(root.rstrip("/") + "/")
                   for root in (self.workspace, self.temp) if root)

    def describe(self) -> str:
        temp = f" or runner.temp ({self.temp})" if self.temp else ""
        return f"the workspace ({self.workspace}){temp}"

    def advice(self) -> str:
        if self.temp:
            return ("put the file under one of them (e.g. download the artifact to ${{ runner.temp }}/NAME "
                    "or into the workspace)")
        return "put the file in the workspace"


def path_problems(environ: Mapping[str, str], cwd: str) -> list[str]:
    """One message per path input that resolves outside the mounted folders (empty: all fine).

    working-directory is relative to the step's directory (the workspace); the other paths are relative
    to working-directory, as perfgate reads them there.
    """
    mounts = Mounts.from_env(environ, cwd)
    inputs = read_inputs(environ)
    problems = []
    workdir = os.path.realpath(os.path.join(cwd, inputs.get("working-directory", ".")))
    for name in PATH_INPUTS:
        if name not in inputs:
            continue
        value = inputs[name]
        joined = os.path.normpath(os.path.join(cwd if name == "working-directory" else workdir, value))
        resolved = os.path.realpath(joined)
        if not mounts.holds(resolved):
            via = "" if joined == resolved else " (through a symlink)"
            problems.append(f"input {name}: {value!r} resolves to {resolved}{via}, outside {mounts.describe()}. "
                            f"perfgate runs in a container that sees no other folder of the runner: {mounts.advice()}")
    return problems


def main(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """`python3 -m perfgate.action_paths STEP_DIR`: an ::error:: annotation per bad path, and the usage
    exit code when there is any. STEP_DIR is the step's working directory (the caller's cwd differs)."""
    if len(argv) != 1:
        print("usage: python3 -m perfgate.action_paths STEP_DIR", file=sys.stderr)
        return EXIT_USAGE
    problems = path_problems(os.environ if environ is None else environ, argv[0])
    for problem in problems:
        print(annotation("error", problem, ERROR_TITLE), flush=True)
    return EXIT_USAGE if problems else EXIT_PASS


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

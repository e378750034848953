"""build_sources: build the working tree (head) and, given a ref, the base in a temporary git worktree.

The base is built in the worktree's counterpart of the current folder (run from services/api in the checkout,
the base builds in <worktree>/services/api), so one perfgate.yml describes both. The head is built first: when
a pull request breaks the build, that is the failure to show, without first spending minutes on the base.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from perfgate.build.compile import compile_side
from perfgate.build.elf import interpreter
from perfgate.build.git import find_root, head_commit, repository_root, resolve_commit, worktree
from perfgate.build.manifest import BUILDS_FILE, EXECUTABLE, Builds, BuiltSide
from perfgate.build.plan import BuildPlan
from perfgate.errors import ConfigError
from perfgate.procs import child_env

Say = Callable[[str], None]


def build_sources(plan: BuildPlan, out: Path, *, against: str | None, cwd: Path | None = None,
                  environ: Mapping[str, str] | None = None, say: Say = lambda _: None) -> Builds:
    """Build into `out` (emptied of earlier builds first); builds.json is written only when every build succeeded."""
    cwd = (cwd or Path.cwd()).resolve()
    out = out.resolve()
    git_env = child_env(extra={"GIT_TERMINAL_PROMPT": "0"}, environ=environ)
    _clear(out)
    root = repository_root(cwd, git_env) if against else find_root(cwd, git_env)
    commit = resolve_commit(root, against, git_env) if against and root else None
    sides = {"head": _build(plan, "head", cwd, out, ref=None, commit=head_commit(root, git_env), environ=environ,
                            say=say)}
    if against and root and commit:
        relative = _relative(cwd, root)
        say(f"checking out {against} ({commit[:12]}) into a temporary worktree")
        with worktree(root, commit, git_env) as tree:
            source = tree / relative
            if not source.is_dir():
                raise ConfigError(f"--against {against}: {relative} does not exist at {commit[:12]}",
                                  hint="run perfgate from a folder that exists in both the base and the head")
            sides["base"] = _build(plan, "base", source, out, ref=against, commit=commit, environ=environ, say=say)
    builds = Builds(folder=out, sides=sides)
    builds.save()
    return builds


def _build(plan: BuildPlan, side: str, source: Path, out: Path, *, ref: str | None, commit: str | None,
           environ: Mapping[str, str] | None, say: Say) -> BuiltSide:
    what = f"{ref} at {commit[:12]}" if ref and commit else "the working tree"
    say(f"building the {side} ({what}): {' '.join(plan.command)}")
    folder = out / side
    binary = folder / EXECUTABLE
    seconds = compile_side(plan, side=f"{side} build ({what})", source=source, output=binary,
                           log_path=folder / "build.log", environ=environ)
    say(f"built the {side} in {seconds:.1f} s")
    return BuiltSide(side=side, ref=ref, commit=commit, binary=f"{side}/{EXECUTABLE}", build_seconds=round(seconds, 3),
                     interpreter=interpreter(binary))


def _relative(cwd: Path, root: Path) -> Path:
    try:
        return cwd.relative_to(root.resolve())
    except ValueError as error:
        raise ConfigError(f"{cwd} is not inside the repository {root}") from error


def _clear(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILDS_FILE).unlink(missing_ok=True)
    for side in ("base", "head"):
        shutil.rmtree(out / side, ignore_errors=True)

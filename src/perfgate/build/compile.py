"""One build: the plan's argv in a source tree, with a timeout and a scrubbed environment, its output to a log.

The build is the pull request author's code: it gets no token and none of the job's credentials
(procs.child_env, plus `service.pass_env` and `service.build_env`), its process group is killed on a timeout or an
interrupt, and what it printed reaches our log only as a quoted, bounded tail.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from perfgate.build.plan import BuildPlan
from perfgate.errors import BuildError
from perfgate.procs import child_env, dies_with_perfgate, stop_process_group

TAIL_LINES = 25
TAIL_BYTES = 16_384
LINE_CHARS = 300
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")

def build_environment(plan: BuildPlan, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """perfgate's environment without credentials (procs.child_env), plus the plan's pass_env and env."""
    return child_env(pass_env=plan.pass_env, extra=plan.env, environ=environ)


def compile_side(plan: BuildPlan, *, side: str, source: Path, output: Path, log_path: Path,
                 environ: Mapping[str, str] | None = None) -> float:
    """Run the build for `side` in `source`; returns its wall time in seconds. BuildError (exit 3) names the side."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    argv = plan.argv(output)
    env = build_environment(plan, environ)
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                dies_with_perfgate(argv, cwd=source, env=env, waited_for=True), cwd=source, env=env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as error:
            raise BuildError(f"the {side} could not start {argv[0]!r} in {source}: {error}",
                             hint="check service.build (an argv list or a shell-like string)") from error
        try:
            process.wait(timeout=plan.timeout_s)
        except subprocess.TimeoutExpired as error:
            stop_process_group(process)
            raise BuildError(f"the {side} did not finish within {plan.timeout_s:g} s and was stopped; "
                             f"last lines of its output ({log_path}):\n{log_tail(log_path)}",
                             hint="raise service.build_timeout_s") from error
        except BaseException:
            stop_process_group(process)
            raise
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise BuildError(f"the {side} failed: `{' '.join(argv)}` exited with {process.returncode} after "
                         f"{seconds:.1f} s; last lines of its output ({log_path}):\n{log_tail(log_path)}")
    check_executable(output, side=side, log_path=log_path)
    return seconds


def check_executable(output: Path, *, side: str, log_path: Path) -> None:
    try:
        info = output.lstat()
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode) or not info.st_mode & stat.S_IXUSR:
        what = "no file" if info is None else "a symlink" if stat.S_ISLNK(info.st_mode) else (
            "a file that is not executable" if stat.S_ISREG(info.st_mode) else "something that is not a file")
        raise BuildError(f"the {side} succeeded but left {what} at {{output}} ({output}); "
                         f"last lines of its output:\n{log_tail(log_path)}",
                         hint="service.build must write the service's executable to the path {output} stands for")


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log, quoted: control characters dropped, long lines clipped, each line prefixed with
    '  | ' so nothing the build printed can pass for a workflow command (those must start a line with '::')."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - TAIL_BYTES))
            data = log.read()
    except OSError:
        return "  | (no output)"
    text = _CONTROL.sub("", data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n"))
    kept = [line[:LINE_CHARS] for line in text.strip("\n").split("\n")][-lines:]
    if not any(kept):
        return "  | (no output)"
    return "\n".join(f"  | {line}" for line in kept)

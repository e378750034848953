"""Subprocesses the safe way: argv lists, a timeout on every call, children killed and reaped on any error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perfgate.errors import ToolError

TAIL_LINES = 12
# Names never handed to a child unless the config passes them through: the Actions token and runtime
# credentials, the Action's inputs (INPUT_GITHUB-TOKEN), and anything that looks like a credential.
SECRET_NAME_PREFIXES = ("ACTIONS_", "INPUT_")
SECRET_NAME_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(SECRET_NAME_PREFIXES) or any(word in upper for word in SECRET_NAME_WORDS)


def child_env(*, pass_env: Iterable[str] = (), extra: Mapping[str, str] | None = None,
              environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every program perfgate starts: perfgate's own, minus anything secret.

    The code under test (the services, their build commands) is the pull request's code: it must not see
    GITHUB_TOKEN or any other credential of the job. `pass_env` names variables to hand over anyway (the
    config's `service.pass_env`), `extra` sets values (the config's `service.env`). docs/security.md.
    """
    environ = os.environ if environ is None else environ
    allowed = set(pass_env)
    env = {name: value for name, value in environ.items() if name in allowed or not is_secret_name(name)}
    env.update(extra or {})
    return env


def dies_with_perfgate(argv: Sequence[str], *, cwd: str | Path | None = None,
                       env: Mapping[str, str] | None = None, waited_for: bool = False) -> list[str]:
    """argv run through `setpriv --pdeathsig TERM`, so the child gets SIGTERM when perfgate dies, even by SIGKILL.

    For the long-lived children (the service, bpftrace): a cancelled job that escalates to SIGKILL must not
    leave them running. setpriv (util-linux) sets the flag and execs argv, so the pid and the name stay the
    child's. The kernel sends the signal when the *thread* that started the child exits, so only children
    started from the main thread get it, or children the starting thread waits for (`waited_for`: ghz,
    run_bounded's commands); otherwise, without setpriv, or when argv[0] does not resolve (so that Popen
    itself reports the missing program), argv is returned unchanged.
    """
    setpriv = shutil.which("setpriv")
    if (setpriv is None or (not waited_for and threading.current_thread() is not threading.main_thread())
            or not _resolves(argv[0], cwd, (env or os.environ).get("PATH"))):
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def _resolves(program: str, cwd: str | Path | None, path: str | None) -> bool:
    if os.sep in program:
        return os.access(Path(cwd or ".", program), os.X_OK)
    return shutil.which(program, path=path) is not None


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def stderr_tail(self, lines: int = TAIL_LINES) -> str:
        return tail(self.stderr, lines)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_bounded(argv: Sequence[str], *, timeout_s: float, what: str, env: Mapping[str, str] | None = None,
                cwd: str | Path | None = None, stdin_data: str | None = None) -> Completed:
    """Run to completion or kill the whole process group after timeout_s. `env` defaults to child_env().

    The child gets SIGTERM if perfgate dies (even by SIGKILL) while it runs: dies_with_perfgate.
    """
    env = dict(env) if env is not None else child_env()
    try:
        process = subprocess.Popen(  # noqa: S603 - argv list, no shell
            dies_with_perfgate(argv, cwd=cwd, env=env, waited_for=True), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, start_new_session=True,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL)
    except FileNotFoundError as error:
        raise ToolError(f"{what}: {argv[0]} not found") from error
    except OSError as error:
        raise ToolError(f"{what}: cannot start {argv[0]}: {error}") from error
    try:
        stdout, stderr = process.communicate(stdin_data, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        stop_process_group(process)
        raise ToolError(f"{what} did not finish within {timeout_s:.0f} s and was stopped") from error
    except BaseException:
        stop_process_group(process)
        raise
    return Completed(tuple(argv), process.returncode, stdout, stderr)


def stop_process_group(process: subprocess.Popen, *, grace_s: float = 5.0,
                       first_signal: int = signal.SIGTERM) -> int | None:
    """Signal the child's process group, wait, then SIGKILL; always reaps. Returns the exit code."""
    if process.poll() is None:
        _signal_group(process, first_signal)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    for stream in (process.stdout, process.stderr, process.stdin):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    return process.returncode


def describe_exit(returncode: int | None) -> str:
    """'exited with 2', 'exited with -9 (killed by SIGKILL)' or 'did not exit'."""
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"exited with {returncode} (killed by {name})"
    return f"exited with {returncode}"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            pass

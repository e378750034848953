"""Start the service under test, wait until it is ready, and always stop and reap it."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from perfgate.config import ServiceConfig
from perfgate.errors import PerfgateError, ToolError
from perfgate.load.generator import LoadGenerator
from perfgate.procs import child_env, describe_exit, dies_with_perfgate, stop_process_group, tail

POLL_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RunningService:
    pid: int
    comm: str
    log_path: Path


class ManagedService:
    """`with ManagedService(cfg, address, log_path, generator=...) as svc:` — the service runs inside the block.

    The load generator probes readiness (service.ready: grpc, its health check) when asked to.
    """

    def __init__(self, config: ServiceConfig, address: str, log_path: Path, *, generator: LoadGenerator) -> None:
        self.config = config
        self.address = address
        self.log_path = log_path
        self.generator = generator
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RunningService:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = child_env(pass_env=self.config.pass_env, extra=self.config.env)
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                    dies_with_perfgate(self.config.command, cwd=self.config.cwd, env=env), stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.config.cwd, env=env,
                    start_new_session=True)
            except OSError as error:
                raise ToolError(f"service.command could not start {self.config.command[0]!r}: {error}",
                                hint="check service.command (an argv list or a shell-like string) and "
                                     "service.cwd") from error
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return RunningService(self.process.pid, Path(self.config.command[0]).name[:15], self.log_path)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        died = self.process is not None and self.process.poll() is not None
        self.stop()
        if died and isinstance(exc, PerfgateError):
            # What failed next (the load: "connection refused", "unreachable") is only the consequence.
            raise ToolError(f"the service {describe_exit(self.process.returncode)} during the run; see "
                            f"{self.log_path}. Its last lines:\n{self._log_tail()}\n(then: {exc.message})",
                            hint="the service under test stopped by itself: a crash, an OOM kill or a "
                                 "deliberate exit") from exc

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        last_problem = "not probed yet"
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ToolError(f"the service exited with code {self.process.returncode} before it was ready; "
                                f"last lines of its output:\n{self._log_tail()}")
            last_problem = self._probe()
            if last_problem is None:
                return
            if time.monotonic() >= deadline:
                raise ToolError(
                    f"the service did not become ready within {self.config.start_timeout_s:g} s "
                    f"({self.config.ready} check at {self.address}: {last_problem}); it was stopped. "
                    f"Last lines of its output:\n{self._log_tail()}",
                    hint="raise service.start_timeout_s, or check target.address matches where the service listens")
            time.sleep(POLL_INTERVAL_S)

    def _probe(self) -> str | None:
        if self.config.ready == "none":
            return None
        if self.config.ready == "port":
            return probe_port(self.address)
        if probe_port(self.address) is not None:
            return "port not open yet"
        return self.generator.ready(self.address)

    def _log_tail(self) -> str:
        try:
            return tail(self.log_path.read_text(encoding="utf-8", errors="replace")) or "(no output)"
        except OSError:
            return "(no output)"


def probe_port(address: str) -> str | None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=1.0):
            return None
    except (OSError, ValueError) as error:
        return f"cannot connect: {error}"

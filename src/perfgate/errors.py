"""Errors that end a perfgate command, each mapped to a documented exit code.

Exit codes (README "Exit codes"; cli.main is the only place that exits):
  0  pass (or warn)
  1  regression: a gate rule failed
  2  usage or configuration error (including a corrupt or unreadable baseline)
  3  tool or infrastructure failure (ghz missing, target unreachable, service not ready, ...)
  4  inconclusive (fail_on_inconclusive maps it to 1, or pass_on_inconclusive to 0)
  130 / 143  interrupted (Ctrl-C) / terminated (SIGTERM)

This module imports nothing but the standard library (nothing at all): the host-side build entry
(`python3 -m perfgate.build`, run on a CI runner without perfgate's dependencies) uses it.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_TOOL = 3
EXIT_INCONCLUSIVE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class PerfgateError(Exception):
    """Base class: the message is shown to the user as it is, with a hint when there is one."""

    exit_code = EXIT_TOOL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(PerfgateError):
    """Bad configuration or command line. `problems` lists every problem found, one per line."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str] | str, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), hint)


class BaselineError(PerfgateError):
    """A baseline that cannot be used: corrupt, unreadable, from a newer perfgate, missing."""

    exit_code = EXIT_USAGE


class RecordError(BaselineError):
    """A run record on disk that cannot be read back (bad JSON, unknown schema_version, ...)."""


class ToolError(PerfgateError):
    """An external tool or the system under test failed (ghz, the service, an HTTP endpoint, ...)."""

    exit_code = EXIT_TOOL


class BuildError(ToolError):
    """Building one side of an A/B comparison failed (or timed out); the message names the side and shows the tail."""


class ProfileError(PerfgateError):
    """A CPU profile that cannot be parsed; the message names the file and the problem.

    Bad input (exit 2) where it ends a command (`profile top FILE`); while measuring or comparing it
    is caught and recorded as "cpu profile unavailable".
    """

    exit_code = EXIT_USAGE


class BaselineMissing(BaselineError):
    """No baseline exists (yet): a first run, or an expired artifact. `baseline.missing: pass` accepts this."""

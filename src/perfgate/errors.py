"""Errors that end a perfgate command, each mapped to a documented exit code, and THE exit-code table.

EXIT_CODES below is the one table: cli.py's --help, README.md "Exit codes", action.yml's exit-code output and
the docs are checked against it (tests/unit/test_exit_codes.py). cli.main is the only place that exits.

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

# (code, in brief, in full): the brief forms make exit_code_summary(); README's table shows the full ones.
EXIT_CODES: tuple[tuple[str, str, str], ...] = (
    ("0", "pass/warn", "pass (or warn), or a plain `run` that recorded everything"),
    ("1", "regression", "regression: a gate rule failed (also INCONCLUSIVE with `compare.fail_on_inconclusive: true`)"),
    ("2", "usage or config", "usage or configuration error, or bad input: a baseline or record that exists but cannot "
     "be used (corrupt, truncated, newer schema, naming files outside itself), a profile that does not parse, a "
     "`pr.json` naming another pull request"),
    ("3", "tool or infrastructure", "tool or infrastructure failure: a build failed (`service.build`), ghz missing, "
     "target unreachable, service never ready or exited during the run, a `required` collector unavailable, an "
     "output folder that cannot be written"),
    ("4", "inconclusive", "inconclusive: too few repetitions, too noisy (within the run, or within the runner's "
     "run-to-run drift), a different environment, or a contended runner"),
    ("130 / 143", "interrupted / terminated", "interrupted (Ctrl-C) / terminated (SIGTERM, e.g. a cancelled job): the "
     "services perfgate started and bpftrace are stopped, and the record keeps every finished repetition; even a "
     "SIGKILLed perfgate takes them down (they run under `setpriv --pdeathsig TERM`)"),
)


def exit_code_summary() -> str:
    """'0 pass/warn, 1 regression, 2 usage or config, 3 tool or infrastructure, 4 inconclusive'."""
    return ", ".join(f"{code} {brief}" for code, brief, _ in EXIT_CODES if code.isdigit() and len(code) == 1)


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


class VerdictError(PerfgateError):
    """A saved verdict.json that cannot be read back (missing, not JSON, another schema): bad input."""

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

"""perfgate's command line. `main(argv) -> int` is the only place that decides the process's exit code
(the codes: errors.EXIT_CODES, shown in every --help).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from perfgate import __version__
from perfgate.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_TOOL,
    EXIT_USAGE,
    ConfigError,
    PerfgateError,
    exit_code_summary,
)
from perfgate.files import os_reason
from perfgate.gha import command_safe_output

if TYPE_CHECKING:
    from perfgate.config import Config

EPILOG = f"exit codes: {exit_code_summary()} (README.md \"Exit codes\"). Docs: README.md and docs/."


class UsageError(ConfigError):
    """argparse's complaints, raised instead of argparse calling sys.exit itself."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message, file=sys.stderr, end="")
        raise _HelpShown(status)


class _HelpShown(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def build_parser() -> Parser:
    parser = Parser(prog="perfgate", description="A CI performance gate for gRPC services: ghz load, pprof CPU "
                    "profiles and bpftrace run-queue latency, compared statistically against a baseline.",
                    epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"perfgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _add_run(commands)
    _add_build_plan(commands)
    _add_compare(commands)
    _add_profile(commands)
    _add_doctor(commands)
    _add_publish(commands)
    _add_init(commands)
    return parser


def _config_command(commands: argparse._SubParsersAction, name: str, summary: str,
                    description: str) -> argparse.ArgumentParser:
    """A command that reads perfgate.yml: --config, --set and --out, and the exit codes under its help."""
    parser = commands.add_parser(name, help=summary, description=description, epilog=EPILOG)
    parser.add_argument("--config", metavar="FILE", help="perfgate.yml to read (default: ./perfgate.yml if present)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="set_args",
                        help="override one config key, e.g. --set load.repetitions=10 (repeatable)")
    parser.add_argument("--out", metavar="DIR", help="output folder (config key `output`, default perfgate-out)")
    return parser


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = _config_command(commands, "run", "measure the service (and compare when a baseline is given)",
                          description="Warm up, then run load.repetitions ghz load windows, capturing the CPU "
                          "profile and run-queue latency in each, and save a run record. With --compare-to "
                          "(or baseline.path / compare.mode: interleaved) it then compares and gates.")
    run.add_argument("--baseline", action="store_true",
                     help="mark the record as a baseline (saved in OUT/baseline/) for later comparisons")
    run.add_argument("--compare-to", metavar="DIR|TGZ", help="baseline record folder or .tgz to compare against")
    run.add_argument("--against", metavar="REF", help="A/B in this job: build REF (a branch, tag or commit, in a "
                     "temporary git worktree) and the working tree with service.build, run both at once (duet) on "
                     "free ports, and compare them pair by pair")
    run.add_argument("--builds", metavar="DIR", help="like --against, with builds made before by "
                     "`python3 -m perfgate.build` (DIR holds builds.json); the GitHub Action's way")
    _history_option(run)


def _add_build_plan(commands: argparse._SubParsersAction) -> None:
    _config_command(commands, "build-plan", "write how to build the service (for python3 -m perfgate.build)",
                    description="Read perfgate.yml and write service.build, resolved, to OUT/build-plan.json, for "
                    "the host-side build `python3 -m perfgate.build --plan OUT/build-plan.json --against REF` "
                    "(which needs only Python's standard library). Without service.build it writes nothing (and "
                    "removes an old plan).")


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = _config_command(commands, "compare", "compare two saved run records and gate",
                              description="Compare a candidate record against a baseline record, write "
                              "verdict.json and the reports into --out, and exit with the verdict's code.")
    compare.add_argument("--baseline", required=True, metavar="DIR|TGZ", help="baseline record (folder or .tgz)")
    compare.add_argument("--candidate", required=True, metavar="DIR", help="candidate record folder")
    _history_option(compare)


def _history_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="DIR|TGZ", action="append", dest="history",
                        help="an earlier record of the baseline build (repeatable, config baseline.history): "
                        "with 2 or more, the gate measures how far runs drift apart and allows for it")


def _add_profile(commands: argparse._SubParsersAction) -> None:
    profile = commands.add_parser("profile", help="inspect a pprof CPU profile",
                                  description="Tools for pprof profiles (gzipped or raw profile.proto).")
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION", parser_class=Parser)
    top = actions.add_parser("top", help="flat/cum per function, like `go tool pprof -top`",
                             description="Print flat, flat%%, sum%%, cum, cum%% per function, sorted by flat, "
                             "like `go tool pprof -top -nodefraction=0`. --json prints "
                             '[{"function", "flat", "cum"}] in the profile\'s sample unit (ns for Go CPU).')
    top.add_argument("file", metavar="FILE", help="a .pb.gz profile")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    diff = actions.add_parser("diff", help="where CPU moved between two profiles or two run records",
                              description="Two profiles: the change per function, candidate scaled to the base's "
                              "total first, like `go tool pprof -diff_base=BASE -normalize -top CAND` (percentages of "
                              "the base's total). Two run record folders: CPU per request (µs) per function on each "
                              "side and the change, from every OK repetition's profile.")
    diff.add_argument("base", metavar="BASE", help="the base .pb.gz profile, or run record folder")
    diff.add_argument("candidate", metavar="CAND", help="the candidate .pb.gz profile, or run record folder")
    diff.add_argument("--json", action="store_true", help='machine-readable output: [{"function", "flat", "cum"}] '
                      "in the profile's unit for profiles; µs per request (with each side's) for records")


def _add_doctor(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser("doctor", help="check which collectors work here",
                                 description="Check ghz, the pprof endpoint (when configured) and bpftrace, and "
                                 "say for each whether it is available and why not.")
    doctor.add_argument("--config", metavar="FILE", help="perfgate.yml (for the pprof URL)")
    doctor.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="set_args")
    doctor.add_argument("--json", action="store_true", help='print {name: {"available": bool, "reason": str}}')


def _add_publish(commands: argparse._SubParsersAction) -> None:
    publish = _config_command(commands, "publish", "post a saved verdict (e.g. from a workflow_run workflow)",
                              description="Render and publish the verdict saved in DIR: job summary, outputs and "
                              "the sticky PR comment. For the fork-safe workflow_run pattern the PR number is read "
                              "from DIR/pr.json.")
    publish.add_argument("--from", dest="source", required=True, metavar="DIR",
                         help="folder holding verdict.json (and pr.json in workflow_run mode)")
    publish.add_argument("--pr", type=int, metavar="N", help="PR number (default: from the event or DIR/pr.json)")


def _add_init(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="write a starter perfgate.yml and PR workflow for a running service",
                               description="Given the address of your running gRPC service, list its methods through "
                               "server reflection, find its pprof endpoint and command line, guess the build from "
                               "go.mod, and write perfgate.yml and .github/workflows/perfgate.yml. Needs "
                               "pip install 'perfgate[init]'.", epilog=EPILOG)
    init.add_argument("address", metavar="HOST:PORT", help="the running service's gRPC address")
    init.add_argument("--call", metavar="package.Service/Method", help="the method to load (default: ask when "
                      "there are several and a terminal, else the first unary one)")
    init.add_argument("--pprof-url", metavar="URL", help="the service's net/http/pprof base URL (default: probed)")
    init.add_argument("--dir", default=".", metavar="DIR",
                      help="the service's folder (holding go.mod) in its repository")
    init.add_argument("--force", action="store_true", help="overwrite an existing perfgate.yml or workflow")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job, `timeout`): unwound like Ctrl-C so the service and bpftrace are stopped."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    argv = default_to_run(list(sys.argv[1:] if argv is None else argv))
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        with command_safe_output():  # no line perfgate prints can start a workflow command (docs/security.md)
            return _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        return dispatch(args)
    except _HelpShown as shown:
        return shown.status
    except PerfgateError as error:
        print(f"perfgate: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:
        # The reader went away (`perfgate profile top F | head`): not an error; keep Python from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # the system refused (a full disk, a read-only folder): no bug, no traceback
        print(f"perfgate: error: {os_reason(error)}\n  hint: is the output folder writable, with free space?",
              file=sys.stderr)
        return EXIT_TOOL
    except KeyboardInterrupt as interrupt:
        what = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
        print(f"perfgate: {what}; the record keeps every finished repetition", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - last resort: say it is a bug, keep the traceback for the report
        traceback.print_exc()
        print("perfgate: internal error (a bug in perfgate — please report it with the traceback above)",
              file=sys.stderr)
        return EXIT_TOOL


def default_to_run(argv: list[str]) -> list[str]:
    """`perfgate --baseline` (and `python entrypoint.py --baseline`) mean `perfgate run --baseline`."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        return ["run", *argv]
    return argv


def main_exit() -> None:
    sys.exit(main())


def dispatch(args: argparse.Namespace) -> int:
    from perfgate import commands

    if args.command is None:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "profile":
        if args.profile_command == "diff":
            return commands.profile_diff(Path(args.base), Path(args.candidate), as_json=args.json)
        if args.profile_command != "top":
            raise UsageError("perfgate profile: choose an action: top or diff", hint="perfgate profile top FILE")
        return commands.profile_top(Path(args.file), as_json=args.json)
    if args.command == "doctor":
        return commands.doctor(_config_for_doctor(args), as_json=args.json)
    if args.command == "init":
        return commands.init(args.address, project=Path(args.dir), call=args.call, pprof_url=args.pprof_url,
                             force=args.force)
    config = read_config(args)
    if args.command == "run":
        return commands.run(config, as_baseline=args.baseline, against=args.against,
                            builds=Path(args.builds) if args.builds else None)
    if args.command == "build-plan":
        return commands.build_plan(config)
    if args.command == "compare":
        return commands.compare(config, baseline=args.baseline, candidate=Path(args.candidate))
    return commands.publish(config, source=Path(args.source), pr_number=args.pr)


def read_config(args: argparse.Namespace) -> Config:
    from perfgate.config import load_config

    overrides = {"output": getattr(args, "out", None), "baseline.path": getattr(args, "compare_to", None),
                 "baseline.history": getattr(args, "history", None)}
    return load_config(args.config, environ=os.environ, set_args=args.set_args, cli_overrides=overrides,
                       require_target=args.command in ("run", "build-plan"))


def _config_for_doctor(args: argparse.Namespace) -> Config | None:
    from perfgate.config import load_config

    try:
        return load_config(args.config, environ=os.environ, set_args=args.set_args)
    except ConfigError:
        if args.config:
            raise
        return None

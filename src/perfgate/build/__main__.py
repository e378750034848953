"""`python3 -m perfgate.build --plan PLAN [--against REF] [--out DIR]`: the host-side build, standard library only.

Exit codes are perfgate's (errors.py): 0 built, 2 bad usage, plan or ref, 3 a build failed (the message names the
side and shows the tail of its output), 130/143 interrupted or terminated (the worktree is removed either way).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from perfgate.build.plan import read_plan
from perfgate.build.sources import build_sources
from perfgate.errors import EXIT_INTERRUPTED, EXIT_PASS, EXIT_TERMINATED, EXIT_USAGE, PerfgateError
from perfgate.gha import annotation, command_safe_output, in_github_actions, raw_stream

DEFAULT_OUT = "perfgate-out/builds"


class _Terminated(KeyboardInterrupt):
    """SIGTERM unwinds like Ctrl-C, so the build's process group is killed and the worktree removed."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m perfgate.build", description="Build the service from source as perfgate.yml's service.build "
        "says (through the plan `perfgate build-plan` wrote): the working tree, and with --against the base ref in a "
        "temporary git worktree. Then `perfgate run --builds DIR` runs both in duet.",
        epilog="exit codes: 0 built, 2 bad usage, plan or ref, 3 a build failed, 130/143 interrupted")
    parser.add_argument("--plan", required=True, metavar="FILE", help="build-plan.json from `perfgate build-plan`")
    parser.add_argument("--against", metavar="REF", help="the base: a branch, tag or commit of this repository")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"where the builds and builds.json go (default {DEFAULT_OUT})")
    return parser


def main(argv: list[str] | None = None) -> int:
    with command_safe_output():  # nothing the build or git printed can start a workflow command
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # argparse's own usage errors and --help
        return EXIT_USAGE if stop.code else EXIT_PASS
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        builds = build_sources(read_plan(Path(args.plan)), Path(args.out), against=args.against, say=_say)
    except PerfgateError as error:
        print(f"perfgate build: error: {error}", file=sys.stderr)
        if in_github_actions(os.environ):
            print(annotation("error", error.message.split("\n", 1)[0], title="perfgate: build failed"),
                  file=raw_stream(sys.stdout))
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, _Terminated)
        print(f"perfgate build: {'terminated' if terminated else 'interrupted'}; the worktree was removed",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    _say(f"builds ready in {builds.folder} ({', '.join(builds.sides)})")
    return EXIT_PASS


def _say(message: str) -> None:
    print(f"perfgate build: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

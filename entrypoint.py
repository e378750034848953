"""The Action image's entrypoint: `entrypoint.py ARGS...` is `perfgate ARGS...`; with no
arguments inside GitHub Actions the Action's inputs (INPUT_*, see perfgate.action_inputs) decide."""

import os
import shlex
import sys

from perfgate.action_inputs import invocation_from_env
from perfgate.cli import main
from perfgate.errors import ConfigError
from perfgate.gha import annotation, command_safe_output, in_github_actions, raw_stream


def entry(argv: list[str]) -> int:
    if argv or not in_github_actions():
        return main(argv)
    one_stream()
    with command_safe_output():
        sys.stderr = sys.stdout  # one neutralising state for the one stream
        return _from_inputs()


def one_stream() -> None:
    """In the Action, stderr goes to stdout. The engine relays a container's two streams separately, and a
    runner that reads them as one (nektos/act: a pty) can splice a line of one into the middle of a line of
    the other, where a workflow command (perfgate's ::add-mask::) is no longer one, or text that was not at
    a line start comes to be."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    sys.stderr = sys.stdout


def _from_inputs() -> int:
    try:
        invocation = invocation_from_env(os.environ)
        if not os.path.isdir(invocation.workdir or "."):
            raise ConfigError(f"input working-directory: {invocation.workdir} is not a folder here")
    except ConfigError as error:
        print(annotation("error", str(error), title="perfgate: bad Action input"), file=raw_stream(sys.stdout))
        return error.exit_code
    os.chdir(invocation.workdir or ".")
    os.environ.update(invocation.env)
    print(f"perfgate {shlex.join(invocation.argv)}  (in {os.getcwd()})", file=sys.stderr)
    return main(list(invocation.argv))


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))

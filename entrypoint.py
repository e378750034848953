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
    with command_safe_output():
        return _from_inputs()


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

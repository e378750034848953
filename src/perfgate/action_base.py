"""The pull request's base commit, on the runner, for the Action's built A/B run.

`python3 -m perfgate.action_base REPO_DIR` prints the base commit of the pull request in $GITHUB_EVENT_PATH
(`pull_request.base.sha`) after making sure the checkout in REPO_DIR has it: actions/checkout fetches one
commit by default (the merge commit), so the base is usually missing and is fetched from `origin`, that
commit alone (`git fetch --no-tags --depth=1 origin SHA`). A checkout made with `persist-credentials: false`
keeps no credentials, so the fetch authenticates with the action's token the way actions/checkout does (an
http.<server>/.extraheader), passed in git's environment, never on its command line.

Standard library only: scripts/action.sh runs it with the runner's python3, before perfgate's container starts.
Exit codes are perfgate's: 0 (the SHA on stdout), 2 not a pull request event or no base in it, 3 git failed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping

from perfgate.errors import EXIT_PASS, EXIT_TOOL, EXIT_USAGE, ConfigError, PerfgateError, ToolError
from perfgate.gha import annotation
from perfgate.procs import child_env

SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
GIT_TIMEOUT_S = 300
TAIL_CHARS = 1500


def base_sha(event_path: str) -> str:
    """pull_request.base.sha of the event, checked to be a commit id (the payload is read, not trusted)."""
    try:
        with open(event_path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the event payload {event_path}: {error}") from None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    sha = pull.get("base", {}).get("sha") if isinstance(pull, dict) and isinstance(pull.get("base"), dict) else None
    if not isinstance(sha, str) or not SHA.match(sha):
        raise ConfigError("the event has no pull_request.base.sha: a built A/B run compares a pull request with its "
                          "base", hint="run it on pull_request events, or set mode: baseline on pushes")
    return sha


def ensure_commit(sha: str, repo: str, environ: Mapping[str, str]) -> bool:
    """True when `sha` had to be fetched; raises ToolError when it is neither here nor fetchable."""
    if _has_commit(sha, repo):
        return False
    done = _git(["fetch", "--no-tags", "--no-recurse-submodules", "--depth=1", "origin", sha], repo,
                _auth_env(environ))
    if done.returncode != 0 or not _has_commit(sha, repo):
        tail = (done.stderr or done.stdout)[-TAIL_CHARS:].strip()
        raise ToolError(f"the pull request's base commit {sha} is not in the checkout and `git fetch origin {sha}` "
                        f"failed (exit {done.returncode}): {tail}",
                        hint="give the job `contents: read`, or check out with fetch-depth: 0")
    return True


def _has_commit(sha: str, repo: str) -> bool:
    return _git(["cat-file", "-e", f"{sha}^{{commit}}"], repo).returncode == 0


def _auth_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The token as actions/checkout hands it to git: an extra header for the server's URLs, in the environment."""
    token = environ.get("INPUT_GITHUB-TOKEN") or ""
    server = (environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    if not token or not server.startswith("https://"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{server}/.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"}


def _git(args: list[str], repo: str, extra: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    env = child_env(extra={"GIT_TERMINAL_PROMPT": "0", **(extra or {})})
    try:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, env=env,  # noqa: S603, S607
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"git {args[0]} took longer than {GIT_TIMEOUT_S} s")
    except OSError as error:
        return subprocess.CompletedProcess(args, 127, "", f"cannot run git: {error}")


def main(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    if len(argv) != 1:
        print("usage: python3 -m perfgate.action_base REPO_DIR", file=sys.stderr)
        return EXIT_USAGE
    try:
        sha = base_sha(environ.get("GITHUB_EVENT_PATH", ""))
        fetched = ensure_commit(sha, argv[0], environ)
    except PerfgateError as error:
        print(annotation("error", str(error), "perfgate: the pull request's base"), flush=True)
        return error.exit_code if error.exit_code in (EXIT_USAGE, EXIT_TOOL) else EXIT_TOOL
    print(f"perfgate: base commit {sha}{' fetched from origin' if fetched else ''}", file=sys.stderr)
    print(sha)
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

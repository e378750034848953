"""The git side of an A/B build: the repository, REF resolved to a commit, a worktree that is always removed."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from perfgate.errors import ConfigError, ToolError
from perfgate.procs import run_bounded

GIT_TIMEOUT_S = 120.0
WORKTREE_PREFIX = "perfgate-base-"
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def git(args: list[str], *, cwd: Path, env: Mapping[str, str], what: str, timeout_s: float = GIT_TIMEOUT_S) -> str:
    """Run git; a non-zero exit is a ToolError quoting git's own message."""
    result = run_bounded(["git", *args], timeout_s=timeout_s, what=what, cwd=cwd, env=env)
    if result.returncode != 0:
        raise ToolError(f"{what} failed (git exit {result.returncode}): {result.stderr_tail(4) or 'no message'}")
    return result.stdout.strip()


def repository_root(cwd: Path, env: Mapping[str, str]) -> Path:
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd=cwd, env=env, what="finding the git repository"))
    except ToolError as error:
        raise ConfigError(f"{cwd} is not inside a git repository, so there is no base to build ({error.message})",
                          hint="run perfgate from your repository's checkout") from error


def resolve_commit(root: Path, ref: str, env: Mapping[str, str]) -> str:
    """REF (branch, tag, SHA, HEAD~3, ...) as a full commit id; a usage error when this repository lacks it."""
    if not ref or ref.startswith("-") or any(ord(c) < 32 for c in ref):
        raise ConfigError(f"--against {ref!r}: expected a branch, tag or commit")
    result = run_bounded(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
                         timeout_s=GIT_TIMEOUT_S, what="resolving --against", cwd=root, env=env)
    commit = result.stdout.strip()
    if result.returncode != 0 or not _COMMIT.match(commit):
        raise ConfigError(f"--against {ref!r}: no such commit in {root}",
                          hint="a shallow checkout lacks the base commit: fetch it first, e.g. "
                               "`git fetch --no-tags --depth=1 origin <sha>` (actions/checkout: fetch-depth: 0 "
                               "or a fetch step)")
    return commit


def head_commit(root: Path | None, env: Mapping[str, str]) -> str | None:
    if root is None:
        return None
    result = run_bounded(["git", "rev-parse", "--verify", "--quiet", "HEAD"], timeout_s=GIT_TIMEOUT_S,
                         what="reading HEAD", cwd=root, env=env)
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and _COMMIT.match(commit) else None


def find_root(cwd: Path, env: Mapping[str, str]) -> Path | None:
    try:
        return repository_root(cwd, env)
    except ConfigError:
        return None


@contextlib.contextmanager
def worktree(root: Path, commit: str, env: Mapping[str, str]) -> Iterator[Path]:
    """A detached worktree of `commit` in a fresh temporary folder outside the checkout (so the head's build
    never sees it), removed on the way out whatever happened, Ctrl-C and SIGTERM included."""
    if not _COMMIT.match(commit):
        raise ValueError(f"not a full commit id: {commit!r}")
    parent = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    tree = parent / "tree"
    try:
        git(["worktree", "add", "--detach", "--quiet", str(tree), commit], cwd=root, env=env,
            what=f"checking out {commit[:12]} into a worktree")
        yield tree
    finally:
        remove_worktree(root, tree, env)
        shutil.rmtree(parent, ignore_errors=True)


def remove_worktree(root: Path, tree: Path, env: Mapping[str, str]) -> None:
    """git's own removal first (it also drops the worktree's entry in .git/worktrees), then whatever is left."""
    with contextlib.suppress(ToolError):
        git(["worktree", "remove", "--force", "--force", str(tree)], cwd=root, env=env, what="removing the worktree")
    shutil.rmtree(tree, ignore_errors=True)
    with contextlib.suppress(ToolError):
        git(["worktree", "prune"], cwd=root, env=env, what="pruning worktrees")

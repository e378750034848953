"""`perfgate init ADDRESS`: a starter perfgate.yml and PR workflow for a running gRPC service.

It finds what it can instead of asking: the methods (server reflection), the request's fields, the
pprof endpoint (probed on likely ports), the command line the service runs with (/debug/pprof/cmdline),
the build (the gRPC main package in go.mod's module) and the default branch (git). It asks only which
method to load when there are several and a terminal to ask on (otherwise it takes the first).
What it writes is checked by perfgate's own config validation before anything is written.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perfgate.config import build_config, read_config_file
from perfgate.errors import ConfigError, ToolError
from perfgate.starter.gobuild import SAFE_PATH, guess_go_build
from perfgate.starter.probe import Pprof, find_pprof, read_cmdline
from perfgate.starter.reflect import Method, Reflected, list_methods
from perfgate.starter.render import WORKFLOW_PATH, Findings, built_ab, starter_config, starter_workflow

CONFIG_NAME = "perfgate.yml"
ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
GIT_TIMEOUT_S = 10

Chooser = Callable[[Sequence[Method]], Method]


@dataclass(frozen=True)
class Written:
    config: Path
    workflow: Path
    findings: Findings
    notes: tuple[str, ...]


def parse_address(address: str) -> tuple[str, int]:
    match = ADDRESS.match(address)
    port = int(match.group("port")) if match else 0
    if not match or not 0 < port < 65536:
        raise ConfigError(f"address {address!r}: expected host:port of the running gRPC service, e.g. 127.0.0.1:50051")
    return match.group("host").strip("[]"), port


def init_project(address: str, *, project: Path, call: str | None = None, pprof_url: str | None = None,
                 force: bool = False, choose: Chooser | None = None) -> Written:
    host, port = parse_address(address)
    root = _git_root(project)
    config_path, workflow_path = project / CONFIG_NAME, root / WORKFLOW_PATH
    existing = [str(p) for p in (config_path, workflow_path) if p.exists()]
    if existing and not force:
        raise ConfigError(f"{' and '.join(existing)} already exist(s)", hint="pass --force to overwrite")
    notes: list[str] = []
    reflected = _reflect(address, call, notes)
    method = _pick(reflected.methods, call, choose, notes)
    pprof = Pprof(pprof_url, ()) if pprof_url else find_pprof(host, port)
    found = Findings(
        address=address, method=method, other_calls=tuple(m.call for m in reflected.methods if m is not method),
        pprof_url=pprof.url if pprof else None, pprof_tried=pprof.tried if pprof else (),
        cmdline=read_cmdline(pprof.url) if pprof else None, build=guess_go_build(project),
        branch=_default_branch(root), subdir=_subdir(project, root))
    config_text, workflow_text = starter_config(found), starter_workflow(found)
    _validate(config_text, config_path)
    config_path.write_text(config_text, encoding="utf-8")
    workflow_path.parent.mkdir(parents=True, exist_ok=True)
    workflow_path.write_text(workflow_text, encoding="utf-8")
    return Written(config_path, workflow_path, found, tuple(notes + _notes(found)))


def _reflect(address: str, call: str | None, notes: list[str]) -> Reflected:
    try:
        reflected = list_methods(address)
    except ToolError as error:
        if call is None:
            raise
        notes.append(f"reflection: {error.message}; using --call {call}")
        return Reflected(())
    notes.extend(f"reflection skipped {item}" for item in reflected.skipped)
    return reflected


def _pick(methods: Sequence[Method], call: str | None, choose: Chooser | None, notes: list[str]) -> Method | None:
    if call is not None:
        chosen = next((m for m in methods if m.call == call), None)
        if chosen is None and methods:
            raise ConfigError(f"--call {call}: the service has no such method",
                              hint="methods found: " + ", ".join(m.call for m in methods))
        return chosen or Method(*_split_call(call), request_type="(unknown: no reflection)", streaming=False)
    if not methods:
        notes.append("reflection found no method of the application's own: set target.call")
        return None
    unary = [m for m in methods if not m.streaming] or list(methods)
    if len(unary) > 1 and choose is not None:
        return choose(unary)
    return unary[0]


def _split_call(call: str) -> tuple[str, str]:
    service, sep, name = call.rpartition("/")
    if not sep or not service or not name or not re.match(r"^[\w.]+$", service) or not re.match(r"^\w+$", name):
        raise ConfigError(f"--call {call!r}: expected package.Service/Method")
    return service, name


def _validate(config_text: str, path: Path) -> None:
    """The starter must pass perfgate's own validation; if it does not, that is a bug in init."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        draft = Path(folder) / path.name
        draft.write_text(config_text, encoding="utf-8")
        build_config(read_config_file(draft))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,  # noqa: S603, S607
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _git_root(project: Path) -> Path:
    if not project.is_dir():
        raise ConfigError(f"--dir {project}: not a folder")
    top = _git(project, "rev-parse", "--show-toplevel")
    if not top:
        raise ConfigError(f"{project} is not inside a git repository",
                          hint="run perfgate init in your service's repository (it writes .github/workflows/)")
    return Path(top)


def _default_branch(root: Path) -> str:
    for args in (("symbolic-ref", "--short", "refs/remotes/origin/HEAD"), ("symbolic-ref", "--short", "HEAD")):
        name = _git(root, *args)
        if name:
            name = name.removeprefix("origin/")
            if SAFE_PATH.match(name):
                return name
    return "main"


def _subdir(project: Path, root: Path) -> str:
    rel = project.resolve().relative_to(root.resolve()).as_posix()
    if rel != "." and not SAFE_PATH.match(rel):
        raise ConfigError(f"{rel}: a folder name the workflow cannot use unquoted; run init from the repository root")
    return rel


def _notes(found: Findings) -> list[str]:
    notes = []
    if found.build and found.build.others:
        notes.append(f"built {found.build.package}; other gRPC main packages: {', '.join(found.build.others)}")
    ab = built_ab(found)
    if found.build is None:
        notes.append("no go.mod with a main package here: the workflow's build step is a placeholder to fill in, "
                     "and PRs are compared with a baseline artifact")
    elif ab is None:
        notes.append("not built A/B: the running service's command line does not name its gRPC address, so PRs are "
                     "compared with a baseline artifact; to build and run base and head side by side, make the "
                     "address a flag and use service.build and {address} (docs/configuration.md)")
    if found.pprof_url is None:
        notes.append("no pprof endpoint found: CPU profiles are off until the service serves net/http/pprof")
    elif ab is not None and not ab.pprof:
        notes.append("the pprof address is not on the service's command line: CPU profiles are off until "
                     "service.command passes {pprof_address}")
    if found.cmdline is not None:
        notes.append("service.command holds the running service's flags: check them before you commit")
    return notes

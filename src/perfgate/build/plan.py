"""BuildPlan: how to build the service, resolved from perfgate.yml's `service.build*` keys.

`perfgate build-plan` writes it as JSON (config parsing needs PyYAML, so it runs where perfgate is
installed: the container); the host-side build reads it with the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from perfgate.errors import ConfigError
from perfgate.files import read_json_file
from perfgate.placeholders import OUTPUT

PLAN_FILE = "build-plan.json"
PLAN_FORMAT = 1
DEFAULT_BUILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class BuildPlan:
    """`command` is an argv list holding {output} (where the build writes the service's executable)."""

    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: float = DEFAULT_BUILD_TIMEOUT_S
    pass_env: tuple[str, ...] = ()  # variables handed over although their names look secret (service.pass_env)

    def argv(self, output: Path) -> list[str]:
        """The command with {output} replaced; other braces (Go templates, JSON) are left alone."""
        return [part.replace(OUTPUT, str(output)) for part in self.command]

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "command": list(self.command), "env": dict(self.env),
                "timeout_s": self.timeout_s,
                "pass_env": list(self.pass_env)}

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PLAN_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def command_problem(command: Any) -> str | None:
    """Why `command` cannot be a build command, or None."""
    if not isinstance(command, list | tuple) or not command or not all(isinstance(p, str) for p in command):
        return "expected a non-empty list of strings"
    if not any(OUTPUT in part for part in command):
        return (f"must contain {OUTPUT}, the path the build writes the service's executable to "
                f"(e.g. go build -o {OUTPUT} ./cmd/server)")
    return None


def plan_from_dict(data: Any, source: str) -> BuildPlan:
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise ConfigError(f"{source}: not a perfgate build plan of format {PLAN_FORMAT}",
                          hint="write it with `perfgate build-plan` from the same perfgate version")
    problems = []
    command = data.get("command")
    if (problem := command_problem(command)) is not None:
        problems.append(f"{source}: command: {problem}")
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        problems.append(f"{source}: env: expected a mapping of strings to strings")
    timeout = data.get("timeout_s", DEFAULT_BUILD_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        problems.append(f"{source}: timeout_s: expected a number > 0, got {timeout!r}")
    pass_env = data.get("pass_env", [])
    if not isinstance(pass_env, list) or not all(isinstance(name, str) for name in pass_env):
        problems.append(f"{source}: pass_env: expected a list of variable names")
    if problems:
        raise ConfigError(problems)
    return BuildPlan(command=tuple(command), env=MappingProxyType(dict(env)), timeout_s=float(timeout),
                     pass_env=tuple(pass_env))


def read_plan(path: Path) -> BuildPlan:
    data = read_json_file(path, f"build plan {path}", missing=f"build plan {path}: not found",
                          hint="write it first: perfgate build-plan --out DIR (in perfgate's container)")
    return plan_from_dict(data, f"build plan {path}")

"""The GitHub Action's inputs (INPUT_* environment variables) -> perfgate's argv, env and working directory.

action.yml declares the inputs; ACTION_INPUTS says where each one goes, and
tests/unit/test_action_inputs.py checks that the two agree both ways and that every config key
named here is a real key of perfgate.config. The runner keeps hyphens in the variable
names: input `fail-on-inconclusive` arrives as `INPUT_FAIL-ON-INCONCLUSIVE`.
An input left empty is not passed on, so perfgate.yml and perfgate's defaults decide.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from perfgate.errors import ConfigError


class Goes(Enum):
    """Where an input's value ends up."""

    MODE = "the subcommand"
    FLAG = "a command-line flag"
    CONFIG = "a config key, as --set KEY=VALUE"
    ENV = "an environment variable of the perfgate process"
    CHDIR = "the working directory"
    ARGV = "extra arguments, split like a POSIX shell"
    RUNNER = "action.yml's image step (which image to run), not perfgate"


@dataclass(frozen=True)
class ActionInput:
    name: str
    goes: Goes
    key: str | None = None  # the flag, config key or variable name
    boolean: bool = False
    modes: tuple[str, ...] | None = None  # the modes it means something in (None: all)
    path: bool = False  # a file or folder on the runner: must lie in the workspace or runner.temp (action_paths)

    @property
    def env_name(self) -> str:
        return "INPUT_" + self.name.replace(" ", "_").upper()


ACTION_INPUTS: tuple[ActionInput, ...] = (
    ActionInput("mode", Goes.MODE),
    ActionInput("config", Goes.FLAG, "--config", path=True),
    ActionInput("output-dir", Goes.CONFIG, "output", path=True),
    ActionInput("baseline-path", Goes.CONFIG, "baseline.path", path=True),
    ActionInput("baseline-artifact", Goes.CONFIG, "baseline.artifact"),
    ActionInput("baseline-branch", Goes.CONFIG, "baseline.branch"),
    ActionInput("fail-on-inconclusive", Goes.CONFIG, "compare.fail_on_inconclusive", boolean=True),
    ActionInput("comment", Goes.CONFIG, "report.comment"),
    ActionInput("candidate-path", Goes.FLAG, "--candidate", modes=("compare",), path=True),
    ActionInput("verdict-path", Goes.FLAG, "--from", modes=("publish",), path=True),
    ActionInput("working-directory", Goes.CHDIR, path=True),
    ActionInput("github-token", Goes.ENV, "GITHUB_TOKEN"),
    ActionInput("extra-args", Goes.ARGV),
    ActionInput("image", Goes.RUNNER),
)
BY_NAME = {item.name: item for item in ACTION_INPUTS}


@dataclass(frozen=True)
class Mode:
    command: tuple[str, ...]
    required: tuple[str, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()  # (input, flag): inputs this mode passes as a flag instead


MODES: Mapping[str, Mode] = MappingProxyType({
    "run": Mode(("run",)),
    "baseline": Mode(("run", "--baseline")),
    # `perfgate compare` takes the baseline as a flag, not as baseline.path.
    "compare": Mode(("compare",), required=("baseline-path", "candidate-path"),
                    flags=(("baseline-path", "--baseline"),)),
    "publish": Mode(("publish",), ("verdict-path",)),
})


# Not inputs: scripts/action.sh sets these for the container steps of a built A/B run (docs/action.md).
BUILD_STEP = "PERFGATE_ACTION_BUILD_STEP"  # "plan": write the build plan; "run": run the builds made on the runner
BUILD_DIR = "PERFGATE_ACTION_BUILD_DIR"  # the plan, and the builds in BUILD_DIR/builds (under runner.temp)
BUILD_STEPS = ("plan", "run")
CONFIG_OPTIONS = ("--config", "--set")  # what `perfgate build-plan` takes of a run's arguments (and --out)


@dataclass(frozen=True)
class Invocation:
    """What the entrypoint does: chdir, add `env` to the environment, then run perfgate with `argv`."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)  # holds GITHUB_TOKEN: never in a repr or a log
    workdir: str | None = None


def read_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """The non-empty inputs by name, whitespace-trimmed (the runner passes unset inputs as "")."""
    found = {}
    for item in ACTION_INPUTS:
        value = environ.get(item.env_name, "").strip()
        if value:
            found[item.name] = value
    return found


def invocation_from_env(environ: Mapping[str, str]) -> Invocation:
    """Build the perfgate invocation from INPUT_* variables; ConfigError lists every bad input at once."""
    inputs = read_inputs(environ)
    problems: list[str] = []
    mode_name = inputs.get("mode", "run")
    if mode_name not in MODES:
        problems.append(f"input mode: expected one of {', '.join(MODES)}, got {mode_name!r}")
        mode_name = "run"
    mode = MODES[mode_name]
    missing = [name for name in mode.required if name not in inputs]
    problems += [f"input {name}: required when mode is {mode_name}" for name in missing]
    argv, env, mode_flags = list(mode.command), {}, dict(mode.flags)
    for name, value in inputs.items():
        item = BY_NAME[name]
        if item.modes is not None and mode_name not in item.modes:
            used_in = " or ".join(item.modes)
            problems.append(f"input {name}: only used when mode is {used_in} (mode is {mode_name})")
        elif name in mode_flags:
            argv += [mode_flags[name], value]
        elif item.goes is Goes.FLAG:
            argv += [item.key, value]
        elif item.goes is Goes.CONFIG:
            argv += ["--set", f"{item.key}={_config_value(item, value, problems)}"]
        elif item.goes is Goes.ENV:
            env[item.key] = value
    argv += _extra_args(inputs.get("extra-args", ""), problems)
    argv = _build_step(argv, mode_name, environ, problems)
    if problems:
        raise ConfigError(problems, hint="see the inputs in action.yml and docs/action.md")
    return Invocation(argv=tuple(argv), env=env, workdir=inputs.get("working-directory"))


def _build_step(argv: list[str], mode_name: str, environ: Mapping[str, str], problems: list[str]) -> list[str]:
    """The argv of a built A/B run's container step: `build-plan` with the run's config options, or the run
    with `--builds`."""
    step, folder = environ.get(BUILD_STEP, ""), environ.get(BUILD_DIR, "")
    if not step:
        return argv
    if step not in BUILD_STEPS or not folder or mode_name not in ("run", "baseline"):
        problems.append(f"{BUILD_STEP}={step!r} with {BUILD_DIR}={folder!r} in mode {mode_name}: scripts/action.sh "
                        "sets them, for modes run and baseline only")
        return argv
    if step == "run":
        return [*argv, "--builds", f"{folder.rstrip('/')}/builds"]
    return ["build-plan", *config_options(argv), "--out", folder]


def config_options(argv: list[str]) -> list[str]:
    """The --config and --set options (either spelling, `--set K=V` or `--set=K=V`) of a run's arguments."""
    kept, rest = [], iter(argv)
    for word in rest:
        flag, equals, _ = word.partition("=")
        if flag in CONFIG_OPTIONS:
            kept += [word] if equals else [word, next(rest, "")]
    return kept


def _config_value(item: ActionInput, value: str, problems: list[str]) -> str:
    if item.boolean:
        if value.lower() not in ("true", "false"):
            problems.append(f"input {item.name}: expected true or false, got {value!r}")
        return value.lower()
    return json.dumps(value)  # a quoted YAML scalar: a branch named 1.10 stays a string


def _extra_args(text: str, problems: list[str]) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        problems.append(f"input extra-args: cannot split it like a shell would: {error}")
        return []

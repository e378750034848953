"""action.yml's inputs <-> perfgate.action_inputs <-> perfgate's CLI and Config, checked both ways,
and entrypoint.py run as the image runs it (a real process, INPUT_* variables as the runner sets them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.greeter import write_config
from support.paths import ROOT

from perfgate.action_inputs import (
    ACTION_INPUTS,
    BUILD_DIR,
    BUILD_STEP,
    BY_NAME,
    MODES,
    Goes,
    config_options,
    invocation_from_env,
)
from perfgate.errors import EXIT_USAGE, ConfigError

ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
STEPS = {step["id"]: step for step in ACTION["runs"]["steps"]}
EVERY_INPUT_SET = {  # a value for every input, as a workflow's `with:` would give them
    "mode": "run", "config": "perf/perfgate.yml", "output-dir": "out", "baseline-path": "base.tgz",
    "baseline-artifact": "perf-base", "baseline-branch": "1.10", "fail-on-inconclusive": "True",
    "comment": "never", "candidate-path": "cand", "verdict-path": "verdict", "working-directory": "svc",
    "github-token": "ghs_secret", "extra-args": "--set 'load.repetitions=6'", "image": "perfgate:x",
}


def runner_env(**inputs: str) -> dict[str, str]:
    """INPUT_* as the runner exports them: every input, defaults filled in, hyphens kept."""
    env = {}
    for name, spec in ACTION["inputs"].items():
        default = str(spec.get("default", ""))
        env[BY_NAME[name].env_name] = "" if "${{" in default else default
    env.update({BY_NAME[name].env_name: value for name, value in inputs.items()})
    return env


def test_every_action_input_is_mapped_and_every_mapping_is_an_action_input():
    assert set(ACTION["inputs"]) == {item.name for item in ACTION_INPUTS}
    assert len(BY_NAME) == len(ACTION_INPUTS)


def test_the_step_passes_every_input_under_the_runners_variable_name():
    env = STEPS["perfgate"]["env"]
    passed = {name: value for name, value in env.items() if name.startswith("INPUT_")}
    expected = {item.env_name: f"${{{{ inputs.{item.name} }}}}" for item in ACTION_INPUTS}
    assert passed == expected
    assert "INPUT_FAIL-ON-INCONCLUSIVE" in passed  # the runner keeps hyphens
    runner_only = [item.name for item in ACTION_INPUTS if item.goes is Goes.RUNNER]
    assert runner_only == ["image"]  # read by scripts/action-image.sh; perfgate ignores it
    assert invocation_from_env(runner_env(image="perfgate:x")).argv == ("run",)
    assert list(STEPS) == ["perfgate"] and STEPS["perfgate"]["run"] == '"$GITHUB_ACTION_PATH/scripts/action.sh"'


def test_every_config_key_is_a_leaf_of_perfgates_config_schema():
    config = pytest.importorskip("perfgate.config", reason="perfgate.config not importable yet")
    schema = getattr(config, "SCHEMA", None)
    if schema is None:
        pytest.fail("perfgate.config has no SCHEMA: cannot check the action's config keys against it")
    for item in ACTION_INPUTS:
        if item.goes is Goes.CONFIG:
            node = schema
            for part in item.key.split("."):
                assert isinstance(node, dict) and part in node, f"input {item.name}: no config key {item.key}"
                node = node[part]
            assert isinstance(node, config.Field), f"input {item.name}: {item.key} is a section, not a key"
            assert item.boolean == isinstance(node.default, bool), f"input {item.name}: boolean or not?"


def test_action_outputs_are_the_perfgate_steps_outputs_of_the_same_name():
    for name, spec in ACTION["outputs"].items():
        assert spec["value"] == f"${{{{ steps.perfgate.outputs.{name} }}}}"
    assert {"verdict", "exit-code"} <= set(ACTION["outputs"])


def test_defaults_alone_run_perfgate_run():
    invocation = invocation_from_env(runner_env())
    assert invocation.argv == ("run",)
    assert invocation.workdir == "." and dict(invocation.env) == {}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_gives_an_argv_perfgates_own_parser_accepts(mode):
    from perfgate.cli import build_parser

    inputs = {name: EVERY_INPUT_SET[name] for name in ("config", "output-dir", "comment", "extra-args")}
    inputs.update({name: EVERY_INPUT_SET[name] for name in MODES[mode].required}, mode=mode)
    argv = invocation_from_env(runner_env(**inputs)).argv
    args = build_parser().parse_args(list(argv))
    assert args.command == MODES[mode].command[0]
    assert args.config == "perf/perfgate.yml"
    assert "load.repetitions=6" in args.set_args and 'report.comment="never"' in args.set_args


@pytest.mark.parametrize("mode", ["run", "baseline"])
def test_a_built_ab_runs_container_steps_are_build_plan_then_run_builds_with_the_same_config(mode):
    from perfgate.cli import build_parser

    inputs = {name: EVERY_INPUT_SET[name] for name in ("config", "output-dir", "comment")}
    inputs["extra-args"] = "--set=load.repetitions=6 --history h1 --config other.yml"
    plan = invocation_from_env({**runner_env(**inputs, mode=mode), BUILD_STEP: "plan", BUILD_DIR: "/t/perfgate-build"})
    args = build_parser().parse_args(list(plan.argv))
    assert args.command == "build-plan" and args.out == "/t/perfgate-build"
    assert args.config == "other.yml"  # extra-args come last and win, as in the run itself
    assert args.set_args == ['output="out"', 'report.comment="never"', "load.repetitions=6"]
    run = invocation_from_env({**runner_env(**inputs, mode=mode), BUILD_STEP: "run", BUILD_DIR: "/t/perfgate-build/"})
    args = build_parser().parse_args(list(run.argv))
    assert args.command == "run" and args.builds == "/t/perfgate-build/builds" and args.baseline == (mode == "baseline")
    assert args.history == ["h1"]


def test_build_steps_only_in_modes_run_and_baseline_and_only_the_known_ones():
    with pytest.raises(ConfigError, match="for modes run and baseline only"):
        invocation_from_env({**runner_env(mode="compare", **{"baseline-path": "b", "candidate-path": "c"}),
                             BUILD_STEP: "plan", BUILD_DIR: "/t"})
    with pytest.raises(ConfigError, match=BUILD_STEP):
        invocation_from_env({**runner_env(), BUILD_STEP: "build", BUILD_DIR: "/t"})
    with pytest.raises(ConfigError, match=BUILD_DIR):
        invocation_from_env({**runner_env(), BUILD_STEP: "run"})


def test_config_options_keeps_both_spellings_and_drops_the_rest():
    argv = ["run", "--baseline", "--set", "a=1", "--set=b=2", "--config=x.yml", "--history", "h", "--set"]
    assert config_options(argv) == ["--set", "a=1", "--set=b=2", "--config=x.yml", "--set", ""]


def test_config_inputs_reach_the_config_with_their_types(tmp_path):
    from perfgate.config import load_config

    write_config(tmp_path, {"target": {"address": "127.0.0.1:1", "call": "a.B/C"}})
    inputs = {name: EVERY_INPUT_SET[name] for name, item in BY_NAME.items() if item.goes is Goes.CONFIG}
    argv = invocation_from_env(runner_env(**inputs)).argv
    set_args = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    config = load_config(tmp_path / "perfgate.yml", environ={}, set_args=set_args)
    assert config.baseline.branch == "1.10"  # stays a string, not the float 1.1
    assert config.baseline.path == "base.tgz" and config.baseline.artifact == "perf-base"
    assert config.compare.fail_on_inconclusive is True
    assert config.report.comment == "never" and config.output == "out"


def test_compare_mode_passes_the_baseline_as_perfgate_compares_flag():
    inputs = {"baseline-path": "b.tgz", "candidate-path": "c"}
    argv = invocation_from_env(runner_env(mode="compare", **inputs)).argv
    assert argv == ("compare", "--baseline", "b.tgz", "--candidate", "c")


def test_the_token_goes_to_the_environment_and_never_into_argv_or_repr():
    invocation = invocation_from_env(runner_env(**{"github-token": "ghs_secret"}))
    assert invocation.env == {"GITHUB_TOKEN": "ghs_secret"}
    assert "ghs_secret" not in " ".join(invocation.argv) and "ghs_secret" not in repr(invocation)


def test_bad_inputs_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        invocation_from_env(runner_env(mode="compare", **{"verdict-path": "v", "fail-on-inconclusive": "yes",
                                                          "extra-args": "--set 'x"}))
    assert caught.value.problems == [
        "input baseline-path: required when mode is compare",
        "input candidate-path: required when mode is compare",
        "input fail-on-inconclusive: expected true or false, got 'yes'",
        "input verdict-path: only used when mode is publish (mode is compare)",
        "input extra-args: cannot split it like a shell would: No closing quotation",
    ]
    with pytest.raises(ConfigError, match="input mode: expected one of run, baseline, compare, publish"):
        invocation_from_env(runner_env(mode="gate"))


def entrypoint(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), *args],  # noqa: S603
                          env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_entrypoint_with_arguments_is_the_perfgate_command():
    done = entrypoint({"GITHUB_ACTIONS": "true"}, "--version")
    assert done.returncode == 0 and done.stdout.startswith("perfgate ")


def test_entrypoint_turns_bad_inputs_into_an_error_annotation_and_exit_2(tmp_path):
    done = entrypoint({"GITHUB_ACTIONS": "true", **runner_env(mode="publish")})
    assert done.returncode == EXIT_USAGE
    assert done.stdout.startswith("::error title=perfgate%3A bad Action input::input verdict-path: required")
    nowhere = runner_env(**{"working-directory": "no/such/dir"})
    done = entrypoint({"GITHUB_ACTIONS": "true", **nowhere}, cwd=tmp_path)
    assert done.returncode == EXIT_USAGE
    assert "input working-directory: no/such/dir is not a folder" in done.stdout


def test_entrypoint_runs_the_inputs_command_in_the_working_directory(tmp_path):
    (tmp_path / "svc").mkdir()
    write_config(tmp_path / "svc", {"target": {"address": "127.0.0.1:1", "call": "a.B/C"}})  # found in svc/
    env = runner_env(mode="compare", **{"working-directory": "svc", "baseline-path": "missing-base",
                                        "candidate-path": "cand", "github-token": "ghs_secret"})
    done = entrypoint({"GITHUB_ACTIONS": "true", **env}, cwd=tmp_path)
    assert done.stderr == ""  # in the Action one stream: an engine that merges two can split their lines
    lines = done.stdout.splitlines()
    assert lines[0] == f"perfgate compare --baseline missing-base --candidate cand  (in {tmp_path / 'svc'})"
    assert done.returncode == EXIT_USAGE and "baseline missing-base: no such file or folder" in done.stdout
    assert "ghs_secret" not in done.stdout + done.stderr

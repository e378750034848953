"""The Action's input paths must lie in the workspace or runner.temp (the folders its container sees);
anything else is refused on the runner, before the container starts, with a message that says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perfgate.action_inputs import ACTION_INPUTS
from perfgate.action_paths import PATH_INPUTS, main, path_problems

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def runner(tmp_path: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    folders = {"workspace": work / "repo", "temp": work / "_temp", "outside": tmp_path / "elsewhere"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    return folders


def env(runner: dict[str, Path], **inputs: str) -> dict[str, str]:
    return {"GITHUB_WORKSPACE": str(runner["workspace"]), "RUNNER_TEMP": str(runner["temp"]),
            **{f"INPUT_{name.upper()}": value for name, value in inputs.items()}}


def test_the_path_inputs_are_the_ones_that_name_files():
    assert set(PATH_INPUTS) == {"config", "output-dir", "baseline-path", "candidate-path", "verdict-path",
                                "working-directory"}
    assert all(item.path == (item.name in PATH_INPUTS) for item in ACTION_INPUTS)


def test_paths_in_the_workspace_and_under_runner_temp_pass(runner):
    temp = runner["temp"]
    inputs = {"config": "perf/perfgate.yml", "output-dir": "../repo/out", "baseline-path": f"{temp}/records/b.tgz",
              "candidate-path": str(runner["workspace"] / "cand"), "verdict-path": f"{temp}", "working-directory": "."}
    assert path_problems(env(runner, **inputs), str(runner["workspace"])) == []


@pytest.mark.parametrize("name", ["config", "output-dir", "baseline-path", "candidate-path", "verdict-path"])
def test_an_absolute_path_elsewhere_is_refused_and_the_message_says_why(runner, name):
    value = str(runner["outside"] / "records")
    problems = path_problems(env(runner, **{name: value}), str(runner["workspace"]))
    assert len(problems) == 1
    assert problems[0].startswith(f"input {name}: {value!r} resolves to {value}, outside the workspace (")
    assert f"runner.temp ({runner['temp']})" in problems[0] and "sees no other folder of the runner" in problems[0]


def test_dot_dot_out_of_the_workspace_and_a_working_directory_outside_are_refused(runner):
    problems = path_problems(env(runner, **{"baseline-path": "../../elsewhere/b.zip"}), str(runner["workspace"]))
    assert problems and "resolves to " + str(runner["outside"] / "b.zip") in problems[0]
    problems = path_problems(env(runner, **{"working-directory": "../.."}), str(runner["workspace"]))
    assert problems and problems[0].startswith("input working-directory: '../..'")


def test_other_paths_are_relative_to_the_working_directory(runner):
    (runner["workspace"] / "svc").mkdir()
    ok = env(runner, **{"working-directory": "svc", "config": "../perfgate.yml"})
    assert path_problems(ok, str(runner["workspace"])) == []
    out = env(runner, **{"working-directory": "svc", "config": "../../perfgate.yml"})
    assert "resolves to " + str(runner["workspace"].parent / "perfgate.yml") in path_problems(
        out, str(runner["workspace"]))[0]


def test_a_symlink_in_the_checkout_that_points_outside_is_refused(runner):
    (runner["workspace"] / "records").symlink_to(runner["outside"])  # a PR author controls the checkout
    problems = path_problems(env(runner, **{"baseline-path": "records/b.tgz"}), str(runner["workspace"]))
    assert problems and "(through a symlink)" in problems[0] and str(runner["outside"]) in problems[0]


def test_a_workspace_prefix_is_not_the_workspace(runner):
    sibling = runner["workspace"].parent / (runner["workspace"].name + "-evil")
    problems = path_problems(env(runner, config=str(sibling / "perfgate.yml")), str(runner["workspace"]))
    assert len(problems) == 1


def test_without_runner_temp_only_the_workspace_counts(runner):
    environ = env(runner, **{"baseline-path": str(runner["temp"] / "b.tgz")})
    del environ["RUNNER_TEMP"]
    problems = path_problems(environ, str(runner["workspace"]))
    assert problems and "runner.temp" not in problems[0]


def test_main_prints_one_escaped_error_annotation_per_bad_path_and_returns_2(runner, capsys):
    hostile = str(runner["outside"] / "x\n::set-output name=verdict::PASS")
    code = main([str(runner["workspace"])], env(runner, config=hostile, **{"output-dir": "/"}))
    lines = capsys.readouterr().out.splitlines()
    assert code == 2 and len(lines) == 2
    assert all(line.startswith("::error title=perfgate%3A input path outside the workspace and runner.temp::")
               for line in lines)
    assert "%0A::set-output" in lines[0]  # the newline is escaped: no second command
    assert main([str(runner["workspace"])], env(runner)) == 0


@pytest.mark.parametrize("module", ["perfgate.action_paths", "perfgate.action_base"])
def test_the_runner_side_modules_need_the_standard_library_only(runner, module):
    """As scripts/action.sh runs them: -E -s, the action's src folder on sys.path, none of perfgate's
    dependencies (the runner's python3 has none). Both refuse what they are given here: exit 2."""
    probe = ("import sys, runpy; sys.path[0] = sys.argv.pop(1); module = sys.argv.pop(1)\n"
             "try:\n    runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
             "except SystemExit:\n"
             "    third_party = {'yaml', 'numpy', 'scipy', 'requests', 'github'} & set(sys.modules)\n"
             "    print('third-party:', sorted(third_party)); raise")
    done = subprocess.run([sys.executable, "-E", "-s", "-c", probe, str(ROOT / "src"), module,  # noqa: S603
                           str(runner["workspace"])], cwd=runner["outside"], capture_output=True, text=True,
                          timeout=60, env={**env(runner, config="/etc/passwd"), "PATH": os.environ["PATH"]})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "third-party: []" in done.stdout and "::error title=perfgate" in done.stdout

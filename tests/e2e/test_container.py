"""The Action's image, built with podman (scripts/container.sh) and run exactly as action.yml runs it:
the step's own `run:` line with its env block evaluated from action.yml, and a `docker` on PATH that is
podman (scripts/container.sh docker), against the example service started on the host's loopback
(`./server &` in a workflow). It must reach the service and its pprof endpoint on localhost, trace the
host kernel with bpftrace, write the record into the workspace, the outputs and the summary into the
runner's file-command files, and exit with the verdict's code. The image step's choices (a local image
never pulled, a failed pull falling back to a build, no image at all, a container that cannot start) and
the path check run here too, through the same step.

The first build takes minutes (debootstrap, apt, pip, `go install` ghz); later ones reuse the
cached base and podman's layer cache (docs/action.md "Testing the image here").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.container import run_quietly
from support.greeter import base_config, write_config
from support.paths import ROOT

from perfgate.record import load_record

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
RUN_STEP = next(step for step in ACTION["runs"]["steps"] if step["id"] == "perfgate")
TOKEN = "ghs_containerTestToken0123456789"
EXPRESSION = re.compile(r"^\$\{\{ (inputs\.[\w-]+) \}\}$")
UNPULLABLE = "localhost:9/perfgate/perfgate@sha256:" + "0" * 64  # a registry nothing listens on


@pytest.fixture(scope="module")
def image(perfgate_image) -> str:
    return perfgate_image


@pytest.fixture(scope="module")
def containers_conf() -> str:
    done = run_quietly([str(ROOT / "scripts" / "container.sh"), "conf"], timeout=30, check=True)
    return done.stdout.strip()


class Runner:
    """A job's runner as the Action sees it: workspace, RUNNER_TEMP with file-command files, event."""

    def __init__(self, root: Path) -> None:
        self.workspace = root / "work" / "repo"
        self.temp = root / "work" / "_temp"
        self.commands = self.temp / "_runner_file_commands"
        for folder in (self.workspace, self.commands, self.temp / "_github_workflow"):
            folder.mkdir(parents=True)
        self.event = self.temp / "_github_workflow" / "event.json"
        self.event.write_text(json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "o/r"}}))
        self.files = {name: self.commands / f"{name.lower()}_1" for name in
                      ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE")}
        for path in self.files.values():
            path.touch()

    def env(self, docker_bin: str, inputs: dict[str, str], **extra: str) -> dict[str, str]:
        values = {f"inputs.{name}": str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        values["inputs.github-token"] = TOKEN  # its default is ${{ github.token }}
        values.update({f"inputs.{name}": value for name, value in inputs.items()})
        step_env = {}
        for name, expression in RUN_STEP["env"].items():  # evaluate action.yml's own env block
            if "${{" not in expression:
                step_env[name] = expression
                continue
            match = EXPRESSION.match(expression)
            assert match, f"action.yml env {name}: unexpected expression {expression}"
            step_env[name] = values[match.group(1)]
        return {
            "PATH": f"{docker_bin}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root"),
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ACTION_PATH": str(ROOT), "GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(self.event), "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "0" * 40,
            "GITHUB_RUN_ID": "1", "GITHUB_API_URL": "http://127.0.0.1:9",  # nothing may reach GitHub
            "RUNNER_TEMP": str(self.temp), "RUNNER_OS": "Linux", "ACTIONS_RUNTIME_TOKEN": "must-not-pass",
            **{name: str(path) for name, path in self.files.items()}, **step_env, **extra,
        }

    def outputs(self) -> dict[str, str]:
        """name=value and name<<DELIMITER ... DELIMITER lines; a later value wins, as on the runner."""
        found: dict[str, str] = {}
        lines = self.files["GITHUB_OUTPUT"].read_text(encoding="utf-8").splitlines()
        while lines:
            line = lines.pop(0)
            name, equals, value = line.partition("=")
            if not equals or "<<" in name:
                name, delimiter = line.split("<<", 1)
                end = lines.index(delimiter)
                value, lines = "\n".join(lines[:end]), lines[end + 1:]
            found[name] = value
        return found


def run_action(runner: Runner, docker_bin: str, inputs: dict[str, str], **extra: str):
    """The step as the runner runs it: bash -e with the `run:` line, in the workspace."""
    env = runner.env(docker_bin, inputs, **extra)
    done = run_quietly(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", RUN_STEP["run"]],
                       env=env, cwd=runner.workspace, timeout=600)
    shown = [line for line in (done.stdout + done.stderr).splitlines() if line != f"::add-mask::{TOKEN}"]
    assert not [line for line in shown if TOKEN in line], "the token leaked (only ::add-mask:: may name it)"
    return done


def test_the_image_holds_the_pinned_tools_and_no_build_tools(image, containers_conf):
    script = "for t in go gcc cc make pip pip3 apt-get; do command -v $t || true; done; " \
             "ghz --help >/dev/null 2>&1 && echo ghz-ok; bpftrace --version; python --version"
    done = run_quietly(["podman", "run", "--rm", "--entrypoint", "sh", image, "-c", script], timeout=120,
                       env={**os.environ, "CONTAINERS_CONF": containers_conf})
    lines = done.stdout.split("\n")
    assert done.returncode == 0, done.stderr
    assert "ghz-ok" in lines and "bpftrace v0.17.0" in lines and "Python 3.11" in done.stdout
    assert [line for line in lines if line.startswith("/")] == ["/usr/bin/apt-get"]  # Debian's own only


def test_the_action_step_measures_the_host_service_and_gates_with_the_verdicts_exit_code(
        image, docker_on_path, start_greeter, tmp_path):
    greeter = start_greeter()  # on the host, as `./server &` in a workflow step
    runner = Runner(tmp_path)
    config = base_config(greeter.address, pprof_url=greeter.pprof_url,
                         cpu={"pprof_url": greeter.pprof_url, "required": True},
                         kernel={"enabled": True, "required": True}, load={"repetitions": 2})
    os.chown(write_config(runner.workspace, config), 1000, 1000)  # the checkout belongs to the runner's user

    # 1. mode baseline, with a local image (never pulled: a pull of localhost/... fails here); PERFGATE_* from
    #    the job's env reaches perfgate (3 repetitions, not the file's 2); what the root container wrote goes
    #    back to the runner's user (as when that user is not root)
    done = run_action(runner, docker_on_path, {"mode": "baseline", "image": image}, PERFGATE_LOAD__REPETITIONS="3",
                      PERFGATE_WORKSPACE_OWNER="4321:4321")
    assert f"using {image}, found on this runner (not pulled)" in done.stderr
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = load_record(runner.workspace / "perfgate-out" / "baseline")
    assert record.role == "baseline" and len(record.ok_repetitions) == 3
    for rep in record.repetitions:
        assert rep.load.ok_count > 0
        assert rep.cpu.status == "ok" and rep.cpu.total_cpu_ns > 0, rep.cpu.reason
        assert rep.runq.status == "ok" and rep.runq.stats.machine.count > 0, rep.runq.reason
    assert record.environment.ghz_version.startswith("v0.121.")
    assert runner.outputs()["exit-code"] == "0"
    written = [runner.workspace / "perfgate-out", record.path / "record.json"]
    assert {(path.stat().st_uid, path.stat().st_gid) for path in written} == {(4321, 4321)}
    assert (runner.workspace / "perfgate.yml").stat().st_uid == 1000  # only what root wrote changes hands

    # 2. mode run against that baseline, read from runner.temp (where download-artifact is often pointed):
    #    compare, gate, publish, exit with the verdict's code (INCONCLUSIVE's 4 leaves the step green)
    runner.files["GITHUB_OUTPUT"].write_text("")
    shutil.copytree(record.path, runner.temp / "records" / "baseline")
    inputs = {"baseline-path": str(runner.temp / "records" / "baseline"), "comment": "never", "output-dir": "gate-out",
              "image": image}
    done = run_action(runner, docker_on_path, inputs, PERFGATE_LOAD__REPETITIONS="3")
    verdict_file = runner.workspace / "gate-out" / "verdict.json"
    assert verdict_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    verdict = json.loads(verdict_file.read_text())
    assert verdict["exit_code"] in (0, 1, 4)
    assert done.returncode == (0 if verdict["exit_code"] == 4 else verdict["exit_code"]), done.stdout[-3000:]
    outputs = runner.outputs()
    assert outputs["verdict"] == verdict["outcome"] and outputs["exit-code"] == str(verdict["exit_code"])
    assert outputs["headline"] == verdict["headline"]
    # every declared output is set; the ones this mode does not measure are empty (docs/action.md "Outputs")
    assert set(ACTION["outputs"]) == set(outputs), "action.yml's outputs and the written ones differ"
    assert outputs["comparison"] == "baseline record"
    assert outputs["capacity-change-pct"] == ""  # probed only in a duet whose rate perfgate finds
    assert outputs["error-rate-change-pct"] == ""  # the greeter fails no call: no baseline rate to divide by
    for name in ("rps-change-pct", "latency-p95-change-pct", "cpu-per-request-change-pct", "runq-p99-change-pct"):
        float(outputs[name])  # measured on both sides here (CPU and bpftrace required)
    verdict_json = runner.workspace / outputs["verdict-json"]  # relative paths start in the workspace
    assert verdict_json.resolve() == (runner.workspace / "gate-out" / "verdict.json").resolve()
    summary = runner.files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
    assert summary.startswith("## perfgate") and verdict["outcome"] in summary  # the report, in the job summary
    assert load_record(runner.workspace / "gate-out" / "candidate").role == "candidate"


# ---------------------------------------------------------------- the image step's choices, and exit-code on every path
def step_result(runner: Runner, done: subprocess.CompletedProcess) -> tuple[int, str]:
    return done.returncode, runner.outputs().get("exit-code", "")


def test_a_failed_pull_of_the_release_image_falls_back_to_building_the_dockerfile(image, docker_on_path, tmp_path):
    runner = Runner(tmp_path)
    env = runner.env(docker_on_path, {}, PERFGATE_DEFAULT_IMAGE=UNPULLABLE)
    done = run_quietly([str(ROOT / "scripts" / "action-image.sh")], env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"pulling {UNPULLABLE}" in done.stderr and "::stop-commands::" in done.stderr  # the engine's words, inert
    assert "::warning title=perfgate: prebuilt image not pulled::" in done.stderr
    assert re.search(r"built in \d+ s", done.stderr)
    built = done.stdout.strip()
    expected = run_quietly(["podman", "image", "inspect", "--format", "{{.Id}}", image], timeout=60).stdout.strip()
    assert built.removeprefix("sha256:") == expected  # the same layers as the container test's build: all cached


def test_an_image_input_that_is_neither_here_nor_pullable_is_exit_3_with_exit_code_set(docker_on_path, tmp_path):
    runner = Runner(tmp_path)
    done = run_action(runner, docker_on_path, {"image": UNPULLABLE})
    assert step_result(runner, done) == (3, "3"), done.stderr[-2000:]
    assert "::error title=perfgate: image not available::" in done.stderr
    assert "building" not in done.stderr  # the workflow asked for that image: no silent build


def test_a_container_that_cannot_start_is_exit_3_with_exit_code_set(image, docker_on_path, tmp_path):
    broken = f"{image}-broken-entrypoint"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f'FROM {image}\nENTRYPOINT ["/no/such/program"]\n')
    build = run_quietly([f"{docker_on_path}/docker", "build", "--quiet", "-t", broken, str(tmp_path / "ctx")],
                        timeout=300)
    assert build.returncode == 0, build.stderr
    try:
        runner = Runner(tmp_path)
        done = run_action(runner, docker_on_path, {"image": broken})
    finally:
        run_quietly(["podman", "rmi", "-f", broken], timeout=60)
    assert step_result(runner, done) == (3, "3"), done.stdout[-2000:] + done.stderr[-2000:]
    assert "::error title=perfgate: the container did not run::docker run ended with status 12" in done.stdout


def test_an_input_path_outside_the_mounts_is_refused_before_any_image_is_looked_at(docker_on_path, tmp_path):
    runner = Runner(tmp_path)
    done = run_action(runner, docker_on_path, {"baseline-path": "/var/tmp/records/baseline.zip",
                                               "image": UNPULLABLE})
    assert step_result(runner, done) == (2, "2"), done.stderr[-2000:]
    assert "::error title=perfgate%3A input path outside the workspace and runner.temp::input baseline-path" \
        in done.stdout
    assert "pulling" not in done.stderr

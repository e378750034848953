"""perfgate.build, the host-side build: it runs on a CI runner with the Python standard library only, quotes what a
build printed so it cannot pass for a workflow command, and reads its plan and manifest strictly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.paths import ROOT

from perfgate.build.compile import compile_side, log_tail
from perfgate.build.elf import interpreter
from perfgate.build.manifest import BUILDS_FILE, Builds, BuiltSide, read_builds
from perfgate.build.plan import BuildPlan, read_plan
from perfgate.errors import EXIT_TOOL, EXIT_USAGE, BuildError, ConfigError

SRC = ROOT / "src"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")

GUARD = """
import runpy, sys
sys.argv = ["perfgate.build", "--help"]
try:
    runpy.run_module("perfgate.build", run_name="__main__")
except SystemExit:
    pass
import perfgate.build.sources, perfgate.build.manifest, perfgate.build.plan, perfgate.build.elf
outside = sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names) - {"perfgate", "__main__"})
print("OUTSIDE", outside)
print("PERFGATE", sorted(name for name in sys.modules if name.startswith("perfgate")))
"""


def test_the_build_entry_imports_nothing_but_the_standard_library():
    """`python3 -S -m perfgate.build` on a runner: no site-packages at all (-S), only src/ on the path."""
    assert SYSTEM_PYTHON, "no python3 in /usr/bin"
    code = f"import sys; sys.path.insert(0, {str(SRC)!r})\n" + GUARD
    result = subprocess.run([SYSTEM_PYTHON, "-S", "-I", "-c", code], capture_output=True, text=True,  # noqa: S603
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "OUTSIDE []" in result.stdout, result.stdout
    loaded = result.stdout.split("PERFGATE ", 1)[1]
    for heavy in ("perfgate.config", "perfgate.measure", "perfgate.gate", "perfgate.cli"):
        assert f"'{heavy}'" not in loaded, loaded
    assert "usage: python3 -m perfgate.build" in result.stdout + result.stderr


def test_a_build_failure_is_exit_3_naming_the_side_with_the_tail_quoted(tmp_path):
    script = tmp_path / "build.sh"
    script.write_text("echo compiling\nfor i in $(seq 1 40); do echo line $i; done\n"
                      "echo '::error::injected'\necho 'main.go:3: undefined: Foo' >&2\nexit 7\n")
    plan = BuildPlan(command=("sh", str(script), "{output}"))
    with pytest.raises(BuildError) as caught:
        compile_side(plan, side="base build (main at abc)", source=tmp_path, output=tmp_path / "out" / "service",
                     log_path=tmp_path / "build.log")
    message = caught.value.message
    assert caught.value.exit_code == EXIT_TOOL
    assert message.startswith("the base build (main at abc) failed")
    assert "exited with 7" in message and "  | main.go:3: undefined: Foo" in message
    assert "  | ::error::injected" in message  # quoted: no line of the tail starts with "::"
    assert not any(line.startswith("::") for line in message.splitlines())
    assert "line 1\n" not in message  # only the tail
    assert (tmp_path / "build.log").read_text().startswith("compiling")


def test_a_build_that_writes_no_executable_says_so(tmp_path):
    plan = BuildPlan(command=("sh", "-c", "echo built somewhere else # {output}"))
    with pytest.raises(BuildError, match=r"left no file at \{output\}"):
        compile_side(plan, side="head build", source=tmp_path, output=tmp_path / "service",
                     log_path=tmp_path / "build.log")


def test_a_build_past_its_timeout_is_stopped_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    plan = BuildPlan(command=("sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait # {{output}}"), timeout_s=2.0)
    with pytest.raises(BuildError, match="did not finish within 2 s"):
        compile_side(plan, side="head build", source=tmp_path, output=tmp_path / "service",
                     log_path=tmp_path / "build.log")
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10  # the orphaned sleep is reaped by init a moment after the group's SIGTERM
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_build_gets_no_secrets_but_its_build_env(tmp_path):
    plan = BuildPlan(command=("sh", "-c", "env > {output}.env; cp /bin/true {output}"), env={"CGO_ENABLED": "0"})
    environ = {"PATH": os.environ["PATH"], "HOME": "/root", "GITHUB_TOKEN": "ghs_x", "ACTIONS_RUNTIME_TOKEN": "t",
               "AWS_SECRET_ACCESS_KEY": "k", "GOFLAGS": "-mod=mod"}
    compile_side(plan, side="head build", source=tmp_path, output=tmp_path / "service",
                 log_path=tmp_path / "build.log", environ=environ)
    seen = dict(line.split("=", 1) for line in (tmp_path / "service.env").read_text().splitlines() if "=" in line)
    assert seen["CGO_ENABLED"] == "0" and seen["GOFLAGS"] == "-mod=mod"
    assert not {"GITHUB_TOKEN", "ACTIONS_RUNTIME_TOKEN", "AWS_SECRET_ACCESS_KEY"} & set(seen)


def test_log_tail_drops_control_characters_and_clips_lines(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"\x1b[31mred\x1b[0m\r\n" + b"x" * 1000 + b"\n\x07bell\n")
    tail = log_tail(log).splitlines()
    assert tail[0] == "  | red"
    assert len(tail[1]) == len("  | ") + 300
    assert tail[2] == "  | bell"


def test_interpreter_tells_dynamic_from_static_binaries_and_scripts(tmp_path):
    dynamic = interpreter(Path("/bin/ls"))
    assert dynamic and dynamic.startswith("/lib") and "ld-linux" in dynamic
    assert interpreter(Path("/sbin/ldconfig")) is None  # Debian's static-pie ldconfig
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh -e\nexec true\n")
    assert interpreter(script) == "/bin/sh"
    assert interpreter(tmp_path / "missing") is None


def test_plan_round_trip_and_strict_reading(tmp_path):
    plan = BuildPlan(command=("go", "build", "-o", "{output}", "."), env={"CGO_ENABLED": "0"}, timeout_s=90,
                     pass_env=("GOPRIVATE_TOKEN",))
    assert read_plan(plan.save(tmp_path)) == plan
    (tmp_path / "build-plan.json").write_text(json.dumps({"format": 1, "command": ["make"], "timeout_s": -1}))
    with pytest.raises(ConfigError) as caught:
        read_plan(tmp_path / "build-plan.json")
    assert caught.value.exit_code == EXIT_USAGE
    assert "command: must contain {output}" in caught.value.message and "timeout_s" in caught.value.message
    with pytest.raises(ConfigError, match="not found"):
        read_plan(tmp_path / "nope.json")


def test_builds_manifest_refuses_paths_outside_its_folder_and_non_executables(tmp_path):
    (tmp_path / "head").mkdir()
    binary = tmp_path / "head" / "service"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    Builds(tmp_path, {"head": BuiltSide("head", None, None, "head/service", 1.0)}).save()
    assert read_builds(tmp_path).binary("head") == binary
    for bad, problem in (("../service", "must be a path inside"), ("/bin/true", "must be a path inside"),
                         ("head/missing", "is missing")):
        Builds(tmp_path, {"head": BuiltSide("head", None, None, bad, 1.0)}).save()
        with pytest.raises(ConfigError, match=problem):
            read_builds(tmp_path)
    binary.chmod(0o644)
    Builds(tmp_path, {"head": BuiltSide("head", None, None, "head/service", 1.0)}).save()
    with pytest.raises(ConfigError, match="not an executable"):
        read_builds(tmp_path)
    (tmp_path / BUILDS_FILE).write_text("{}")
    with pytest.raises(ConfigError, match="not a perfgate builds manifest"):
        read_builds(tmp_path)


def test_usage_errors_exit_2_without_a_traceback(tmp_path):
    argv = [sys.executable, "-m", "perfgate.build", "--plan", str(tmp_path / "none.json")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)  # noqa: S603
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "perfgate build: error: build plan" in result.stderr and "Traceback" not in result.stderr


def test_in_actions_a_failed_build_is_one_error_annotation_and_the_builds_own_commands_are_neutralised(tmp_path):
    plan = BuildPlan(command=("sh", "-c", "echo '::warning::from the build'; exit 1 # {output}"))
    plan.save(tmp_path)
    argv = [sys.executable, "-m", "perfgate.build", "--plan", str(tmp_path / "build-plan.json"), "--out",
            str(tmp_path / "builds")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,  # noqa: S603
                            env={**os.environ, "GITHUB_ACTIONS": "true"})
    assert result.returncode == EXIT_TOOL, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert len(commands) == 1 and commands[0].startswith("::error title=perfgate%3A build failed::the head build")
    assert "  | ::warning::from the build" in result.stderr

"""`perfgate init` against real services: the example greeter (reflection, pprof, go.mod) in a temporary git
repository, and small grpcio servers without reflection or with hostile service names. What it writes must
pass perfgate's validation, the JSON Schema, actionlint, GitHub's workflow schema and zizmor's default
policy, and the starter must measure the service it describes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import jsonschema
import pytest
import yaml
from grpc_reflection.v1alpha import reflection
from support.greeter import wait_for_port
from support.paths import GREETER, ROOT

from perfgate import release
from perfgate.cli import main
from perfgate.config import load_config
from perfgate.starter.render import CHECKOUT, SETUP_GO, UPLOAD_ARTIFACT

GREETER_DIR = ROOT / "examples" / "greeter"
# the greeter's module: go.mod/go.sum, its non-test .go files (knobs come and go) and the generated code
EXAMPLE_SOURCES = ("go.mod", "go.sum", "greeterpb",
                   *sorted(p.name for p in GREETER_DIR.glob("*.go") if not p.name.endswith("_test.go")))
TOOLS = ROOT / ".tools" / "bin"
VENV = ROOT / ".venv" / "bin"


def port_pair() -> int:
    """A free port whose next port is free too (the pprof probe looks beside the gRPC port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two free neighbouring ports")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],  # noqa: S603, S607
                   check=True, capture_output=True, timeout=30)


def new_repo(path: Path, *, with_service: bool, branch: str = "trunk") -> Path:
    path.mkdir()
    if with_service:
        for name in EXAMPLE_SOURCES:
            source = GREETER_DIR / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, path / name)
    (path / "README.md").write_text("a service\n", encoding="utf-8")
    git(path, "init", "-q", "-b", branch)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "the service")
    return path


class Greeters:
    """Greeters on neighbouring free ports (the pprof probe looks beside the gRPC port); stopped after the test."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, *, pprof: bool = True) -> tuple[str, str | None]:
        port = port_pair()
        pprof_addr = f"127.0.0.1:{port + 1}" if pprof else ""
        argv = [str(GREETER), "-grpc-addr", f"127.0.0.1:{port}", "-pprof-addr", pprof_addr]
        self.processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: S603
        wait_for_port(port)
        return f"127.0.0.1:{port}", (f"http://{pprof_addr}" if pprof else None)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        self.processes.clear()


@pytest.fixture
def greeters():
    started = Greeters()
    yield started
    started.stop()


def lint(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, cwd=cwd)  # noqa: S603


def check_workflow(repo: Path) -> dict:
    workflow = repo / ".github" / "workflows" / "perfgate.yml"
    for argv in ([str(TOOLS / "actionlint"), "-no-color", str(workflow)],
                 [str(VENV / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
                 [str(VENV / "zizmor"), "--offline", "--persona=auditor", "--no-progress", str(workflow)]):
        done = lint(*argv, cwd=repo)
        assert done.returncode == 0, f"{argv[0]}: {done.stdout}{done.stderr}"
    data = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    data["on"] = data.pop(True)
    return data


def check_config(repo: Path) -> dict:
    path = repo / "perfgate.yml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# yaml-language-server: $schema={release.SCHEMA_URL}\n")
    schema = json.loads((ROOT / "schema" / "perfgate.schema.json").read_text(encoding="utf-8"))
    data = yaml.safe_load(text)
    jsonschema.Draft7Validator(schema).validate(data)
    return data


def steps(job: dict) -> dict[str, dict]:
    return {step.get("name") or step["uses"].split("@")[0]: step for step in job["steps"]}


def test_init_finds_methods_pprof_command_line_and_build_and_writes_a_built_ab_gate_that_measures(
        tmp_path, greeters, capsys):
    repo = new_repo(tmp_path / "repo", with_service=True)
    address, pprof_url = greeters.start()
    assert main(["init", address, "--dir", str(repo)]) == 0
    told = capsys.readouterr().err
    assert "greeter.Greeter/SayHello" in told and pprof_url in told and "built A/B" in told

    # built A/B, as README's first example: perfgate builds the service and starts it on ports it picks
    check_config(repo)
    config = load_config(repo / "perfgate.yml", environ={}, require_target=False)
    assert config.target.call == "greeter.Greeter/SayHello" and config.target.address == ""
    assert json.loads(config.target.data_json) == {"name": "", "items": 0}
    assert config.service.build == ("go", "build", "-trimpath", "-o", "{output}", ".")
    assert dict(config.service.build_env) == {"CGO_ENABLED": "0"}
    assert config.service.command == ("{binary}", "-grpc-addr", "{address}", "-pprof-addr", "{pprof_address}")
    assert config.cpu.pprof_url is None

    workflow = check_workflow(repo)
    assert list(workflow["on"]) == ["pull_request"] and list(workflow["jobs"]) == ["gate"]  # no baseline job
    gate = steps(workflow["jobs"]["gate"])
    assert "with" not in gate["perfgate"] and not [step for step in gate.values() if "run" in step]
    text = (repo / ".github" / "workflows" / "perfgate.yml").read_text(encoding="utf-8")
    assert text.count(f"uses: {release.action_uses()}\n") == 1

    # The starter, as written, measures the service: perfgate builds the working tree and starts the build on
    # free ports (beside the greeter init looked at, still running), then a short run.
    greeters.stop()
    run = subprocess.run([str(VENV / "perfgate"), "run", "--baseline", "--set", "load.duration_s=2", "--set",  # noqa: S603
                          "load.repetitions=1", "--set", "load.warmup_s=0", "--set", "kernel.enabled=false"],
                         cwd=repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    folder = repo / "perfgate-out" / "baseline"
    record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
    assert record["repetitions"][0]["load"]["ok_count"] > 0
    assert list(folder.rglob("*.pb.gz")), "the build's pprof on {pprof_address} gave a CPU profile"


@pytest.fixture
def python_server():
    """A real grpcio server with one raw-bytes method, with or without reflection over the given names."""
    servers = []

    def start(reflected: list[str] | None) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", {"Say": echo}),))
        if reflected is not None:
            reflection.enable_server_reflection(reflected, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(grace=None)


def test_a_service_without_reflection_is_named_with_the_fix_and_call_still_works(tmp_path, python_server, capsys):
    repo = new_repo(tmp_path / "repo", with_service=False)
    address = python_server(None)
    assert main(["init", address, "--dir", str(repo)]) == 3
    err = capsys.readouterr().err
    assert "does not serve gRPC server reflection" in err and "reflection.Register(server)" in err
    assert not (repo / "perfgate.yml").exists()

    assert main(["init", address, "--dir", str(repo), "--call", "demo.Echo/Say"]) == 0
    assert "reflection" in capsys.readouterr().err
    check_config(repo)
    config = load_config(repo / "perfgate.yml", environ={})
    assert config.target.call == "demo.Echo/Say" and config.service is None and config.cpu.pprof_url is None
    workflow = check_workflow(repo)
    placeholder = workflow["jobs"]["gate"]["steps"][1]
    assert placeholder["name"] == "Build and start the service" and placeholder["run"].rstrip().endswith("exit 1")


def test_hostile_service_names_are_left_out_and_reported_escaped(tmp_path, python_server, capsys):
    repo = new_repo(tmp_path / "repo", with_service=False)
    evil = 'evil\n::error::pwned ${{ secrets.X }}'
    address = python_server([evil, "demo.Echo", reflection.SERVICE_NAME])
    assert main(["init", address, "--dir", str(repo)]) == 0
    err = capsys.readouterr().err
    assert "\n::error::" not in err and repr(evil) in err
    text = (repo / "perfgate.yml").read_text(encoding="utf-8") + (
        repo / ".github" / "workflows" / "perfgate.yml").read_text(encoding="utf-8")
    assert "pwned" not in text and "secrets.X" not in text
    check_config(repo)
    check_workflow(repo)


def test_existing_files_are_kept_without_force(tmp_path, greeters, capsys):
    repo = new_repo(tmp_path / "repo", with_service=True)
    (repo / "perfgate.yml").write_text("# mine\n", encoding="utf-8")
    address, _ = greeters.start(pprof=False)
    assert main(["init", address, "--dir", str(repo)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (repo / "perfgate.yml").read_text(encoding="utf-8") == "# mine\n"
    assert main(["init", address, "--dir", str(repo), "--force"]) == 0
    err = capsys.readouterr().err
    assert "no pprof endpoint found" in err and "not built A/B" in err  # no pprof: no command line to read
    config = load_config(repo / "perfgate.yml", environ={})
    assert config.cpu.pprof_url is None and config.service.command == ("bin/greeter",)
    assert "TODO: add the flags" in (repo / "perfgate.yml").read_text(encoding="utf-8")
    assert set(check_workflow(repo)["jobs"]) == {"baseline", "gate"}  # the baseline-artifact flow
    check_config(repo)


def test_nothing_listening_is_exit_3_within_the_deadline(tmp_path, capsys):
    repo = new_repo(tmp_path / "repo", with_service=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    assert main(["init", address, "--dir", str(repo)]) == 3
    assert "nothing accepts connections there" in capsys.readouterr().err


def test_a_fresh_repository_is_told_about_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py"), "--baseline"], capture_output=True,  # noqa: S603
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "no perfgate.yml in the current folder" in done.stderr and "`perfgate init HOST:PORT`" in done.stderr


def test_init_pins_the_same_actions_as_the_examples():
    examples = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "examples" / "workflows").glob("*.yml"))
    for pin in (CHECKOUT, SETUP_GO, UPLOAD_ARTIFACT):
        assert f"uses: {pin}\n" in examples

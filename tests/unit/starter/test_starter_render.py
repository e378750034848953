"""What `perfgate init` writes, from what it found: built A/B (README's first example) when it knows the build
and the service's command line names its addresses, else the baseline-artifact flow. Every starter must pass
perfgate's own validation; the built A/B one also the checks of a built A/B run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

from perfgate.ab import check_ab_config
from perfgate.config import build_config, read_config_file
from perfgate.starter.gobuild import GoBuild
from perfgate.starter.probe import Cmdline, redact, with_placeholders
from perfgate.starter.reflect import Method
from perfgate.starter.render import Findings, built_ab, starter_config, starter_workflow

ADDRESS, PPROF = "127.0.0.1:50051", "http://127.0.0.1:6060"
BUILD = GoBuild(package="./cmd/server", binary="bin/server")
METHOD = Method("helloworld.Greeter", "SayHello", "helloworld.HelloRequest", False, {"name": ""})
PORTS = {50051: "{address}", 6060: "{pprof_address}"}


def findings(argv: list[str] | None, *, build: GoBuild | None = BUILD, pprof: str | None = PPROF,
             subdir: str = ".") -> Findings:
    return Findings(address=ADDRESS, method=METHOD, other_calls=(), pprof_url=pprof, pprof_tried=(),
                    cmdline=redact(argv) if argv is not None else None, build=build, branch="main", subdir=subdir)


def config_of(text: str, tmp_path: Path):
    path = tmp_path / "perfgate.yml"
    path.write_text(text, encoding="utf-8")
    return build_config(read_config_file(path))


def workflow_of(text: str) -> dict:
    data = yaml.safe_load(text)
    data["on"] = data.pop(True)  # YAML 1.1 reads `on:` as True
    return data


@pytest.mark.parametrize(("argv", "expected"), [
    (["./server", "-grpc-addr", "127.0.0.1:50051", "-pprof-addr", "127.0.0.1:6060"],
     ("{binary}", "-grpc-addr", "{address}", "-pprof-addr", "{pprof_address}")),
    (["/srv/bin", "--listen=:50051", "--debug=localhost:6060", "-timeout", "5s"],
     ("{binary}", "--listen={address}", "--debug={pprof_address}", "-timeout", "5s")),
    (["server", "-peer", "10.0.0.2:50052", "-addr", "[::1]:50051"], ("{binary}", "-peer", "10.0.0.2:50052",
                                                                    "-addr", "{address}")),
])
def test_the_running_service_addresses_become_placeholders(argv, expected):
    command, used = with_placeholders(Cmdline(tuple(argv), ()), PORTS)
    assert command == expected
    assert used == {part.split("=")[-1] for part in expected if part.split("=")[-1] in PORTS.values()}


def test_a_service_whose_command_line_names_its_address_gets_a_built_ab_starter(tmp_path):
    found = findings(["./server", "-grpc-addr", ADDRESS, "-pprof-addr", "127.0.0.1:6060", "-token", "s3cret"])
    config = config_of(starter_config(found), tmp_path)
    assert config.service.build == ("go", "build", "-trimpath", "-o", "{output}", "./cmd/server")
    assert dict(config.service.build_env) == {"CGO_ENABLED": "0"}
    assert config.service.command == ("{binary}", "-grpc-addr", "{address}", "-pprof-addr", "{pprof_address}",
                                      "-token", "REDACTED")
    assert config.target.address == "" and config.cpu.pprof_url is None and config.target.call == METHOD.call
    check_ab_config(config, as_baseline=False)  # what `run --against` and the Action's PR run check first
    assert "s3cret" not in starter_config(found)

    workflow = workflow_of(starter_workflow(found))
    assert list(workflow["on"]) == ["pull_request"] and list(workflow["jobs"]) == ["gate"]
    gate = workflow["jobs"]["gate"]
    assert gate["permissions"] == {"contents": "read", "pull-requests": "write"}  # no artifact: no actions: read
    assert not [step for step in gate["steps"] if "run" in step]  # the action builds base and head itself


def test_the_built_ab_workflow_is_readmes_first_example(tmp_path):
    """The same job as examples/workflows/perfgate-pr.yml (README's first example): its actions, permissions."""
    example = workflow_of((ROOT / "examples" / "workflows" / "perfgate-pr.yml").read_text(encoding="utf-8"))
    found = findings(["./server", "-grpc-addr", ADDRESS])
    starter = workflow_of(starter_workflow(found))
    example_gate, starter_gate = example["jobs"]["gate"], starter["jobs"]["gate"]
    assert starter_gate["permissions"] == example_gate["permissions"]
    assert [s.get("uses") for s in starter_gate["steps"]] == [s.get("uses") for s in example_gate["steps"]]
    assert starter["on"] == example["on"] and starter["permissions"] == example["permissions"] == {}


def test_a_project_in_a_subfolder_runs_the_action_there(tmp_path):
    workflow = workflow_of(starter_workflow(findings(["./server", "-grpc-addr", ADDRESS], subdir="services/api")))
    steps = {step.get("name") or step["uses"].split("@")[0]: step for step in workflow["jobs"]["gate"]["steps"]}
    assert steps["perfgate"]["with"] == {"working-directory": "services/api"}
    assert steps["actions/setup-go"]["with"]["go-version-file"] == "services/api/go.mod"
    assert steps["Keep the report"]["with"]["path"] == "services/api/perfgate-out"


def test_a_pprof_address_not_on_the_command_line_leaves_cpu_profiles_off_and_says_how(tmp_path):
    found = findings(["./server", "-grpc-addr", ADDRESS])  # pprof answered, on a port no flag names
    text = starter_config(found)
    config = config_of(text, tmp_path)
    assert config.service.command == ("{binary}", "-grpc-addr", "{address}") and config.cpu.pprof_url is None
    assert "pass {pprof_address} in service.command" in text
    check_ab_config(config, as_baseline=False)


@pytest.mark.parametrize("argv", [None, ["./server"], ["./server", "-port", "50051"]])
def test_without_its_address_on_the_command_line_the_starter_compares_with_a_baseline_artifact(argv, tmp_path):
    found = findings(argv)
    assert built_ab(found) is None
    config = config_of(starter_config(found), tmp_path)
    assert config.target.address == ADDRESS and config.service.build == () and config.baseline.missing == "pass"
    workflow = workflow_of(starter_workflow(found))
    assert set(workflow["jobs"]) == {"baseline", "gate"} and "push" in workflow["on"]


def test_no_build_means_the_baseline_artifact_flow_with_a_placeholder_step(tmp_path):
    found = findings(["./server", "-grpc-addr", ADDRESS], build=None)
    assert built_ab(found) is None
    assert config_of(starter_config(found), tmp_path).service is None
    gate = workflow_of(starter_workflow(found))["jobs"]["gate"]
    assert gate["steps"][1]["name"] == "Build and start the service"

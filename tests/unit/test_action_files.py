"""The Action's files pass the Action linters (actionlint, check-jsonschema's GitHub
schemas, zizmor, hadolint) and keep the rules they cannot see: pinned actions, no ${{ }} in
`run:`, least-privilege permissions, example `with:` keys that action.yml declares, a build
context that holds what the Dockerfile copies, and a lock file that satisfies pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from support.paths import ROOT

from perfgate import release

WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
RELEASE_WORKFLOW = ROOT / "examples" / "release" / "release.yml"
ACTION_FILE = ROOT / "action.yml"
ACTION = yaml.safe_load(ACTION_FILE.read_text(encoding="utf-8"))
ACTION_REF = f"{release.ACTION}@{release.ACTION_COMMIT}"  # how the examples name this action (docs/action.md)
SHA_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
PIN_LINE = re.compile(r"uses: (?P<ref>[\w.-]+/[\w./-]+@[0-9a-f]{40}) # (?P<version>\S.*)$")


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path} missing: run `scripts/setup.sh --lint --python` (make test does)")
    return str(path)


def lint(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, cwd=ROOT)  # noqa: S603


def workflow(path: Path) -> dict:
    # YAML 1.1 reads the `on:` key as True; the runner reads it as "on".
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(data: dict) -> list[dict]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def test_the_examples_cover_the_four_workflows_of_the_issue():
    names = {path.stem for path in WORKFLOWS}
    assert names == {"perfgate-baseline", "perfgate-pr", "perfgate-fork-pr", "perfgate-fork-comment"}


def test_actionlint_passes_the_example_workflows():
    done = lint(tool(ROOT / ".tools" / "bin" / "actionlint"), "-no-color", *map(str, WORKFLOWS), str(RELEASE_WORKFLOW))
    assert done.returncode == 0, done.stdout + done.stderr


def test_github_schemas_accept_the_workflows_and_action_yml():
    checker = tool(ROOT / ".venv" / "bin" / "check-jsonschema")
    done = lint(checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS), str(RELEASE_WORKFLOW))
    assert done.returncode == 0, done.stdout + done.stderr
    done = lint(checker, "--builtin-schema", "vendor.github-actions", str(ACTION_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_auditor_persona_finds_nothing():
    # zizmor's default policy: every action, this one included, pinned by commit hash.
    done = lint(tool(ROOT / ".venv" / "bin" / "zizmor"), "--offline", "--persona=auditor", "--no-progress",
                str(ACTION_FILE), *map(str, WORKFLOWS), str(RELEASE_WORKFLOW))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_hadolint_passes_the_dockerfile_at_error_level():
    done = lint(tool(ROOT / ".tools" / "bin" / "hadolint"), "--failure-threshold", "error", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", [*WORKFLOWS, RELEASE_WORKFLOW], ids=lambda p: p.stem)
def test_every_uses_line_is_pinned_by_sha_with_a_version_comment(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if "uses:" in line:
            assert PIN_LINE.search(line), f"{path.name}: {line.strip()}: pin by commit SHA with a `# vX.Y.Z` comment"


def test_the_docs_and_perfgate_init_pin_the_same_commit_as_the_examples():
    pins = set()
    for path in [*WORKFLOWS, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        pins.update(re.findall(r"perfgate/perfgate@[0-9a-f]{40} # [^\n`]*", path.read_text(encoding="utf-8")))
    assert pins == {release.action_uses()}, "run scripts/release.py pin-examples SHA vX.Y.Z (docs/action.md)"


@pytest.mark.parametrize("name", ["perfgate-pr", "perfgate-fork-pr"])
def test_the_pr_examples_take_the_base_from_the_event(name):
    """Built A/B builds the event's pull_request.base.sha (scripts/action.sh); without service.build the
    artifact comes from GITHUB_BASE_REF. Neither may be a fixed branch name."""
    data = workflow(ROOT / "examples" / "workflows" / f"{name}.yml")
    step = next(step for step in steps(data) if step.get("uses", "").startswith(ACTION_REF))
    from_event = "${{ github.event.pull_request.base.ref }}"
    assert step.get("with", {}).get("baseline-branch", from_event) == from_event


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_pins_actions_and_interpolates_nothing_into_run(path):
    data = workflow(path)
    for step in steps(data):
        uses = step.get("uses")
        if uses:
            assert uses == ACTION_REF or SHA_PINNED.match(uses), f"{uses}: pin third-party actions by SHA"
        assert "${{" not in step.get("run", ""), f"step {step.get('name')}: pass values through env:"
        if uses and uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_permissions_are_per_job_and_only_what_perfgate_needs(path):
    data = workflow(path)
    assert data["permissions"] == {}, "grant nothing at the workflow level"
    allowed = {"contents": "read", "actions": "read", "pull-requests": "write"}
    for job in data["jobs"].values():
        assert set(job["permissions"].items()) <= set(allowed.items())
    job_permissions = next(iter(data["jobs"].values()))["permissions"]
    uses_perfgate = [step for step in steps(data) if step.get("uses") == ACTION_REF]
    assert uses_perfgate, "every example runs perfgate"
    for step in uses_perfgate:
        inputs = step.get("with", {})
        comments = inputs.get("comment", "auto") != "never" and inputs.get("mode", "run") != "baseline"
        may_write = job_permissions.get("pull-requests") == "write"
        assert may_write == comments, "a commenting job needs pull-requests: write; no other job gets it"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_examples_give_perfgate_only_inputs_action_yml_declares(path):
    for step in steps(workflow(path)):
        if step.get("uses") == ACTION_REF:
            assert set(step.get("with", {})) <= set(ACTION["inputs"])


def test_action_yml_runs_nothing_with_interpolated_inputs():
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step["run"], f"step {step['id']}: inputs reach the script through env: only"


def test_fork_comment_workflow_never_checks_out_or_builds_pr_code():
    data = workflow(ROOT / "examples" / "workflows" / "perfgate-fork-comment.yml")
    assert list(data["on"]) == ["workflow_run"]
    for step in steps(data):
        assert "run" not in step and not step["uses"].startswith("actions/checkout@")


def test_the_build_context_holds_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[ignore.index("*")] == "*", ".dockerignore must start from excluding everything"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied and copied <= allowed, f"not in the build context: {copied - allowed}"
    assert all((ROOT / path).exists() for path in copied)


def test_requirements_lock_pins_every_runtime_dependency_within_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    for spec in map(Requirement, project["dependencies"]):
        name = spec.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in requirements.lock (regenerate it: see its header)"
        assert spec.specifier.contains(pins[name]), f"requirements.lock: {name}=={pins[name]} not in {spec}"

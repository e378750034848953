"""The Action under a third-party Actions engine: nektos/act (pinned, scripts/setup.sh --act) runs the
repository's example workflows in self-hosted mode (steps on this machine), `uses: perfgate/perfgate@<pin>`
served from this checkout, real event payloads (@octokit/webhooks-examples), the OpenAPI-validating GitHub
stand-in (tests/support/ghapi) as the API, and a `docker` that is podman (scripts/container.sh docker).

The workflows are the files in examples/workflows, changed only where they need github.com:
- actions/setup-go is dropped (Go is on this machine); actions/checkout stays (act copies the local checkout);
- actions/upload-artifact becomes a copy of the same `path` into a folder per artifact `name`; the test then
  zips it into the stand-in, as GitHub's artifact storage would hold it;
- the PR workflow gets one more step, after perfgate, that prints the step's outputs (as a later step of a
  real workflow would read them), and a variant sets `fail-on-inconclusive: true`.
The payloads get this repository's commits, refs and branch `main`; everything else is as published. The
action's copy names the image the container tests built as its default image (as a release's action.yml
names the published one), so no job builds the image again.

One job per scenario, in order, against one stand-in and the example greeter in a git repository whose
perfgate.yml has service.build (the default flow, built A/B): a baseline push; an unchanged PR (PASS, step
green, comment created); a regressed PR (FAIL, step red, the function named in the updated comment); an
INCONCLUSIVE PR (step green, warning annotation; red with fail-on-inconclusive). Every job: outputs read by
the later step, the job summary, and no token anywhere in act's output (secrets are not masked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.container import run_quietly
from support.ghapi.events import webhook_example, webhook_examples
from support.ghapi.server import TEST_TOKEN, FakeGitHub
from support.paths import ROOT, TOOLS_BIN

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1500)]

ACT = TOOLS_BIN / "act"
WORKFLOWS = ROOT / "examples" / "workflows"
GREETER_SOURCES = ROOT / "examples" / "greeter"
ACTION_REF = "perfgate/perfgate@"
REGRESSION = ("checksumRounds = 4", "checksumRounds = 32")  # checksumPayload does 8x its SHA-256 work
# the report names a function only when its change is significant: the rounds' own (chainSHA256), or their caller's
REGRESSED_FUNCTION = re.compile(r"checksumPayload|chainSHA256")
PAIRS = 6  # duet: one rule reaches significance at alpha 0.05 with 6 pairs (the signed-rank floor is 5)
GIT = ["git", "-c", "user.name=perfgate e2e", "-c", "user.email=e2e@perfgate.invalid", "-c", "commit.gpgsign=false"]


# ---------------------------------------------------------------- the engine's view of one job
@dataclass
class Job:
    returncode: int
    entries: list[dict[str, Any]]
    seconds: float
    text: str = field(repr=False)

    def step_result(self, step_id: str) -> str:
        results = [e["stepResult"] for e in self.entries if e.get("stepID") == [step_id] and "stepResult" in e
                   and e.get("stage") == "Main"]
        assert len(results) == 1, f"step {step_id}: results {results}\n{self.tail()}"
        return results[0]

    @property
    def result(self) -> str:
        found = [e["jobResult"] for e in self.entries if "jobResult" in e]
        assert found, self.tail()
        return found[-1]

    def outputs(self) -> dict[str, str]:
        """What the workflow's later step read from steps.perfgate.outputs (its `e2e-output NAME=VALUE` lines)."""
        found = {}
        for line in self.raw_lines():
            if line.startswith("e2e-output "):
                name, _, value = line.removeprefix("e2e-output ").partition("=")
                found[name] = value
        assert found, f"the outputs step printed nothing\n{self.tail()}"
        return found

    def summary(self, step_id: str) -> str:
        found = [e["content"] for e in self.entries if e.get("command") == "summary" and e.get("stepID") == [step_id]]
        return "".join(found)

    def annotations(self, level: str) -> list[tuple[str, str]]:
        return [((e.get("kvPairs") or {}).get("title", ""), e.get("arg", "")) for e in self.entries
                if e.get("command") == level]

    def raw_lines(self) -> list[str]:
        return [e["msg"].rstrip("\n") for e in self.entries if e.get("raw_output")]

    def tail(self, lines: int = 80) -> str:
        """act's log as a person reads it (the step output and its own messages), the last lines."""
        shown = [e.get("msg", "").rstrip("\n") for e in self.entries] or self.text.splitlines()
        return "\n".join(shown[-lines:])


# ---------------------------------------------------------------- the repository under test
def adapt_workflow(source: Path, *, with_outputs_step: bool, fail_on_inconclusive: bool = False) -> str:
    loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    workflow = {("on" if key is True else key): value for key, value in loaded.items()}  # YAML 1.1: on = true
    for job in workflow["jobs"].values():
        steps = []
        for step in job["steps"]:
            uses = step.get("uses", "")
            assert "run" not in step, f"{source.name}: a run step; check what this test adapts"
            if uses.startswith("actions/setup-go@"):
                continue
            if uses.startswith("actions/upload-artifact@"):
                step = {"name": step.get("name", "upload-artifact"), **({"if": step["if"]} if "if" in step else {}),
                        "env": {"NAME": step["with"]["name"], "FROM": step["with"]["path"]},
                        "run": 'mkdir -p "$E2E_ARTIFACTS/$NAME" && cp -R "$FROM/." "$E2E_ARTIFACTS/$NAME/"'}
            if uses.startswith(ACTION_REF) and fail_on_inconclusive:
                step.setdefault("with", {})["fail-on-inconclusive"] = True
            steps.append(step)
            if uses.startswith(ACTION_REF) and with_outputs_step:
                steps.append(outputs_step(step["id"]))
        job["steps"] = steps
    return yaml.safe_dump(workflow, sort_keys=False)


def outputs_step(step_id: str) -> dict[str, Any]:
    names = ("verdict", "exit-code", "comparison", "headline", "verdict-json", "report-markdown",
             "cpu-per-request-change-pct")
    env = {name.upper().replace("-", "_"): f"${{{{ steps.{step_id}.outputs.{name} }}}}" for name in names}
    lines = [f'printf "e2e-output %s=%s\\n" {name} "${name.upper().replace("-", "_")}"' for name in names]
    lines.append('test -f "$VERDICT_JSON" && test -f "$REPORT_MARKDOWN" && echo "e2e-output files=present"')
    return {"name": "read the perfgate step's outputs", "if": "${{ !cancelled() }}", "env": env,
            "run": "\n".join(lines)}


def perfgate_config(repetitions: int) -> dict[str, Any]:
    """Built A/B as the docs show it (perfgate builds, picks the ports), in short windows. A fixed rate skips
    the capacity probes of the automatic one (tests/e2e/test_built_ab.py covers those): this test is about the
    Action in an Actions engine, and must stay short."""
    return {
        "service": {"build": "go build -trimpath -o {output} ./cmd/server", "build_env": {"CGO_ENABLED": "0"},
                    "command": "{binary} -grpc-addr {address} -pprof-addr {pprof_address}"},
        "target": {"call": "greeter.Greeter/SayHello", "data": {"name": "perfgate", "items": 64}},
        "load": {"concurrency": 4, "rps": 300, "duration_s": 1.5, "warmup_s": 0.3, "repetitions": repetitions},
        "kernel": {"enabled": True, "required": False},
        "report": {"plots": False},
        "gates": [{"metric": "cpu_per_request", "max_increase_pct": 20}],
    }


class ServiceRepo:
    """A git repository shaped as the example workflows expect: go.mod at the root, the service in ./cmd/server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "cmd" / "server").mkdir(parents=True)
        for name in ("go.mod", "go.sum"):
            shutil.copy2(GREETER_SOURCES / name, root / name)
        shutil.copytree(GREETER_SOURCES / "greeterpb", root / "greeterpb")
        for source in GREETER_SOURCES.glob("*.go"):  # package main, built as ./cmd/server by the workflows
            if not source.name.endswith("_test.go"):
                shutil.copy2(source, root / "cmd" / "server" / source.name)
        (root / ".gitignore").write_text("perfgate-out/\n")
        self.write_config(repetitions=PAIRS)
        flows = root / ".github" / "workflows"
        flows.mkdir(parents=True)
        (flows / "perfgate-baseline.yml").write_text(
            adapt_workflow(WORKFLOWS / "perfgate-baseline.yml", with_outputs_step=False))
        (flows / "perfgate-pr.yml").write_text(
            adapt_workflow(WORKFLOWS / "perfgate-pr.yml", with_outputs_step=True))
        (flows / "perfgate-pr-strict.yml").write_text(
            adapt_workflow(WORKFLOWS / "perfgate-pr.yml", with_outputs_step=True, fail_on_inconclusive=True))
        self.git("init", "-q", "-b", "main")
        self.commit("the greeter service, perfgate.yml and the perfgate workflows")

    def write_config(self, *, repetitions: int) -> None:
        config = perfgate_config(repetitions)
        (self.root / "perfgate.yml").write_text(yaml.safe_dump(config, sort_keys=False))

    def git(self, *args: str) -> str:
        return run_quietly([*GIT, "-C", str(self.root), *args], timeout=60, check=True).stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{relative}: {old!r} not found"
        path.write_text(text.replace(old, new))


def action_checkout(dest: Path, default_image: str) -> Path:
    """This repository's files as a release would publish them (tracked and new, not ignored), with action.yml
    naming a default image as a release's does: one this runner has, so it is used without a pull."""
    listed = run_quietly(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"], timeout=60,
                         check=True)
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    action = dest / "action.yml"
    text = action.read_text()
    assert text.count('PERFGATE_DEFAULT_IMAGE: ""') == 1
    action.write_text(text.replace('PERFGATE_DEFAULT_IMAGE: ""', f'PERFGATE_DEFAULT_IMAGE: "{default_image}"'))
    return dest


# ---------------------------------------------------------------- the scenarios' shared machinery
class Bench:
    """The repository, the stand-in API, act's settings, and the services the jobs left running."""

    def __init__(self, tmp: Path, fake: FakeGitHub, image: str, docker_bin: str) -> None:
        self.tmp, self.fake = tmp, fake
        self.repo = ServiceRepo(tmp / "repo")
        self.action = action_checkout(tmp / "action", image)
        self.artifacts = tmp / "artifacts"
        self.cache = tmp / "act-cache"
        self.env = {**os.environ, "PATH": f"{docker_bin}:{TOOLS_BIN}:{os.environ['PATH']}"}
        self.env.pop("GITHUB_TOKEN", None)
        self.pin = next(line.split("uses: ", 1)[1].split()[0]
                        for line in (WORKFLOWS / "perfgate-pr.yml").read_text().splitlines()
                        if f"uses: {ACTION_REF}" in line)
        self.run_id = 100

    def act(self, event: str, workflow: str, payload: dict[str, Any], *env: str) -> Job:
        self.run_id += 1
        event_file = self.tmp / f"event-{self.run_id}.json"
        event_file.write_text(json.dumps(payload))
        argv = [str(ACT), event, "-W", f".github/workflows/{workflow}", "-e", str(event_file), "--json",
                "-P", "ubuntu-24.04=-self-hosted", "--action-offline-mode", "--no-cache-server",
                "--action-cache-path", str(self.cache), "--local-repository", f"{self.pin}={self.action}",
                "-s", f"GITHUB_TOKEN={TEST_TOKEN}", "--insecure-secrets",
                "--env", f"GITHUB_API_URL={self.fake.base_url}",
                "--env", f"GITHUB_REPOSITORY={payload['repository']['full_name']}",
                "--env", f"GITHUB_RUN_ID={self.run_id}", "--env", f"E2E_ARTIFACTS={self.artifacts / str(self.run_id)}",
                *[part for assignment in env for part in ("--env", assignment)]]
        started = time.monotonic()
        done = run_quietly(argv, cwd=self.repo.root, env=self.env, timeout=420, stdin=subprocess.DEVNULL)
        (self.tmp / f"act-{self.run_id}.log").write_text(done.stdout + done.stderr)  # for a failure's post-mortem
        entries = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        job = Job(done.returncode, entries, time.monotonic() - started, done.stdout + done.stderr)
        leaked = [line for line in job.text.splitlines() if TEST_TOKEN in line and '"command":"add-mask"' not in line]
        assert not leaked, "the token is in act's output:\n" + "\n".join(leaked[:5])
        return job

    def artifact(self, run_id: int, name: str) -> Path:
        folder = self.artifacts / str(run_id) / name
        assert (folder / "record.json").exists() or (folder / "verdict.json").exists(), f"no artifact {folder}"
        return folder

    repo_name = "Codertocat/Hello-World"  # the payloads' repository


def push_payload(after: str) -> dict[str, Any]:
    payload = next(p for p in webhook_examples("push") if p["ref"] == "refs/heads/master")
    payload.update(ref="refs/heads/main", before="0" * 40, after=after)
    payload["head_commit"]["id"] = after
    payload["repository"]["default_branch"] = payload["repository"]["master_branch"] = "main"
    return payload


def pr_payload(action: str, head: str, base: str) -> dict[str, Any]:
    payload = webhook_example("pull_request", action)
    pull = payload["pull_request"]
    pull["head"].update(sha=head, ref="feature")
    pull["base"].update(sha=base, ref="main")
    payload["repository"]["default_branch"] = "main"
    return payload


def perfgate_comments(fake: FakeGitHub) -> list:
    return [c for c in fake.issue_comments(Bench.repo_name, 2) if "perfgate" in c.body]


# ---------------------------------------------------------------- the test
def test_the_example_workflows_under_act(perfgate_image, docker_on_path, github_spec, tmp_path):
    if not ACT.exists():
        pytest.fail(f"{ACT} missing: run `scripts/setup.sh --act` (make test does)")
    with FakeGitHub(github_spec, token=TEST_TOKEN) as fake:
        bench = Bench(tmp_path, fake, perfgate_image, docker_on_path)
        repo = bench.repo
        timings = {}

        # 1. a push to main: the action builds main, perfgate records it as a baseline, the workflow uploads it
        #    (3 repetitions, set in the job's environment as a workflow's `env:` would: nothing compares with it)
        main_sha = repo.git("rev-parse", "HEAD")
        job = bench.act("push", "perfgate-baseline.yml", push_payload(main_sha), "PERFGATE_LOAD__REPETITIONS=3")
        timings["baseline push"] = job.seconds
        assert job.result == "success", job.tail()
        record = json.loads((bench.artifact(bench.run_id, "perfgate-baseline") / "record.json").read_text())
        assert record["role"] == "baseline" and len(record["repetitions"]) == 3
        assert record["environment"]["git_sha"] == main_sha

        # 2. an unchanged PR: PASS, the step green, the comment created, outputs and summary say so
        repo.git("checkout", "-q", "-b", "feature")
        (repo.root / "NOTES.md").write_text("A change that does not touch the service.\n")
        head = repo.commit("notes")
        job = bench.act("pull_request", "perfgate-pr.yml", pr_payload("opened", head, main_sha))
        timings["unchanged PR"] = job.seconds
        assert job.step_result("perfgate") == "success" and job.result == "success", job.tail()
        outputs = job.outputs()
        assert outputs["verdict"] == "PASS" and outputs["exit-code"] == "0", outputs
        assert outputs["comparison"] == "built A/B duet", outputs
        assert outputs["files"] == "present" and outputs["cpu-per-request-change-pct"]
        assert job.summary("perfgate").startswith("## perfgate") and "PASS" in job.summary("perfgate")
        comments = perfgate_comments(fake)
        assert len(comments) == 1 and "PASS" in comments[0].body
        first_comment = comments[0].id

        # 3. a regressed PR (the code does 8x the SHA-256 work in checksumPayload): FAIL, the step red, the
        #    function named in the same comment, updated in place
        repo.edit("cmd/server/work.go", *REGRESSION)
        head = repo.commit("checksum: more rounds")
        job = bench.act("pull_request", "perfgate-pr.yml", pr_payload("synchronize", head, main_sha))
        timings["regressed PR"] = job.seconds
        assert job.step_result("perfgate") == "failure" and job.result == "failure", job.tail()
        outputs = job.outputs()
        assert outputs["verdict"] == "FAIL" and outputs["exit-code"] == "1", outputs
        assert float(outputs["cpu-per-request-change-pct"]) > 40
        summary = job.summary("perfgate")
        assert "FAIL" in summary and REGRESSED_FUNCTION.search(summary), summary
        assert any(title.startswith("perfgate FAIL") for title, _ in job.annotations("error"))
        comments = perfgate_comments(fake)
        assert [c.id for c in comments] == [first_comment], "the second run must update the same comment"
        assert "FAIL" in comments[0].body and REGRESSED_FUNCTION.search(comments[0].body)

        # 4. a PR that cannot be judged (2 pairs: no test can reject with so few): INCONCLUSIVE, the step
        #    green with a warning that says why; red when the workflow sets fail-on-inconclusive: true
        repo.edit("cmd/server/work.go", *reversed(REGRESSION))
        repo.write_config(repetitions=2)
        head = repo.commit("perfgate: fewer repetitions")
        job = bench.act("pull_request", "perfgate-pr.yml", pr_payload("synchronize", head, main_sha))
        timings["inconclusive PR"] = job.seconds
        assert job.step_result("perfgate") == "success" and job.result == "success", job.tail()
        outputs = job.outputs()
        assert outputs["verdict"] == "INCONCLUSIVE" and outputs["exit-code"] == "4", outputs
        warnings = [message for title, message in job.annotations("warning") if title == "perfgate INCONCLUSIVE"]
        assert len(warnings) == 1 and "the check stays green" in warnings[0] and "repetitions" in warnings[0]
        assert "INCONCLUSIVE" in perfgate_comments(fake)[0].body

        job = bench.act("pull_request", "perfgate-pr-strict.yml", pr_payload("synchronize", head, main_sha))
        timings["inconclusive PR, fail-on-inconclusive"] = job.seconds
        assert job.step_result("perfgate") == "failure" and job.result == "failure", job.tail()
        outputs = job.outputs()
        assert outputs["verdict"] == "INCONCLUSIVE" and outputs["exit-code"] == "1", outputs
        assert any(title == "perfgate INCONCLUSIVE" for title, _ in job.annotations("error"))

        assert [c.id for c in perfgate_comments(fake)] == [first_comment]
        print("act job wall times: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items()))
    assert not fake.violations, "\n".join(fake.violations)

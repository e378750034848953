"""Built A/B end to end: a temporary git repository holding the example greeter at two commits (the second turns a
regression knob on by default), built by perfgate from service.build and run in duet at the rate perfgate finds.
Also the Action's split (build-plan in perfgate, the stdlib-only build on the "host", run --builds), build failures
(exit 3, the side named, the tail shown) and the worktree's removal on failure, Ctrl-C and SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

from perfgate.build.elf import interpreter
from perfgate.build.git import WORKTREE_PREFIX
from perfgate.capacity import PROBE_EVERY, RATE_ORDER
from perfgate.cli import main
from perfgate.errors import EXIT_INTERRUPTED, EXIT_PASS, EXIT_REGRESSION, EXIT_TERMINATED, EXIT_TOOL

pytestmark = pytest.mark.slow

KNOB_OFF = 'fs.Float64("regress-cpu-pct", 0,'
KNOB_ON = 'fs.Float64("regress-cpu-pct", 400,'  # checksumPayload does five times its work: CPU per request up ~+50 %
PAIRS = 6  # one rule: 6 pairs reach significance at alpha 0.05 (the signed-rank floor is 5)
PROBE_PAIRS = -(-PAIRS // PROBE_EVERY)  # a capacity probe pair before every PROBE_EVERY-th window
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,  # noqa: S603
                          text=True, timeout=60).stdout.strip()


def new_repo(path: Path, config: dict, files: dict[str, str] | None = None) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "perfgate.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    for name, text in (files or {}).items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def greeter_config(out: Path, **load) -> dict:
    return {"target": {"call": "greeter.Greeter/SayHello", "data": {"name": "perfgate", "items": 64}},
            "service": {"build": "go build -trimpath -o {output} .", "build_env": {"CGO_ENABLED": "0"},
                        "command": "{binary} -grpc-addr {address} -pprof-addr {pprof_address}"},
            "load": {"duration_s": 1.5, "warmup_s": 0.5, "repetitions": PAIRS, **load},
            "kernel": {"enabled": False}, "report": {"plots": False}, "output": str(out),
            "gates": [{"metric": "cpu_per_request", "max_increase_pct": 5}]}


@pytest.fixture(scope="module")
def greeter_repo(tmp_path_factory) -> tuple[Path, str, str]:
    """The greeter at two commits: base (knob off), head (regress-cpu-pct defaults to 400 in main.go)."""
    root = tmp_path_factory.mktemp("built-ab")
    repo = new_repo(root / "repo", greeter_config(root / "out"))
    greeter = ROOT / "examples" / "greeter"
    for source in [*greeter.glob("go.*"), *greeter.glob("*.go"), greeter / "greeterpb"]:
        if not source.name.endswith("_test.go"):
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, repo / source.name)
    base = commit(repo, "greeter")
    main_go = repo / "main.go"
    text = main_go.read_text()
    assert KNOB_OFF in text, "examples/greeter/main.go changed: update KNOB_OFF"
    main_go.write_text(text.replace(KNOB_OFF, KNOB_ON))
    head = commit(repo, "greeter: checksumPayload does five times its work")
    return repo, base, head


def worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A temporary folder of this test's own, where perfgate makes its worktrees (in this process and its children)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def worktree_folders(folder: Path) -> list[str]:
    return [p.name for p in folder.glob(f"{WORKTREE_PREFIX}*")]


def test_run_against_builds_both_sides_runs_them_in_duet_at_a_found_rate_and_fails_the_regression(
        greeter_repo, monkeypatch, capsys, private_tmp):
    repo, base, head = greeter_repo
    out = Path(yaml.safe_load((repo / "perfgate.yml").read_text())["output"])
    monkeypatch.chdir(repo)

    code = main(["run", "--against", "HEAD~1"])

    err = capsys.readouterr().err
    assert code == EXIT_REGRESSION, err[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["setup"]["mode"] == "built A/B duet"
    assert verdict["setup"]["rps_source"] == "automatic" and verdict["setup"]["rps"] >= 1
    cpu_rule = next(rule for rule in verdict["rules"] if rule["metric"] == "cpu_per_request")
    assert cpu_rule["outcome"] == "FAIL" and cpu_rule["comparison"]["p_method"].startswith("wilcoxon"), cpu_rule

    records = {side: json.loads((out / side / "record.json").read_text()) for side in ("baseline", "candidate")}
    assert records["baseline"]["load_settings"]["build"] == {"side": "base", "ref": "HEAD~1", "commit": base}
    assert records["candidate"]["load_settings"]["build"]["commit"] == head
    assert records["baseline"]["environment"]["git_sha"] == base
    rates = {records[side]["load_settings"]["rps"] for side in records}
    assert rates == {verdict["setup"]["rps"]}
    for record in records.values():
        assert record["load_settings"]["schedule"] == "duet"
        phases = [probe["phase"] for probe in record["capacity_probes"]]
        assert phases == ["rate"] * (len(RATE_ORDER) // 2) + ["pair"] * PROBE_PAIRS
        assert all(probe["load"]["ok_count"] > 0 for probe in record["capacity_probes"])
        for rep in record["repetitions"]:  # the duet windows ran at the found rate, not flat out
            assert rep["load"]["rps"] < 1.3 * verdict["setup"]["rps"], (rep["load"], verdict["setup"])
        # one CPU profile per build over each run of probes: its two rate probes, then each pair probe of its own
        profiled = [(p["phase"], p["probes"], p["cpu"]["status"]) for p in record["probe_profiles"]]
        pair_indexes = [[probe["index"]] for probe in record["capacity_probes"] if probe["phase"] == "pair"]
        assert [(phase, probes) for phase, probes, _ in profiled] == [("rate", [1, 2])] + [
            ("pair", probes) for probes in pair_indexes], profiled
        assert all(status == "ok" for _, _, status in profiled), record["probe_profiles"]
        assert all((out / record["role"] / p["cpu"]["file"]).is_file() for p in record["probe_profiles"])
    assert verdict["cpu"]["probe_profiles"] == 2 * (1 + PROBE_PAIRS)
    assert f"the {2 * (1 + PROBE_PAIRS)} capacity probes' profiles" in (out / "report.md").read_text()
    starts = sorted([(p["started_at"], "A") for p in records["baseline"]["capacity_probes"] if p["phase"] == "pair"]
                    + [(p["started_at"], "B") for p in records["candidate"]["capacity_probes"] if p["phase"] == "pair"])
    assert "".join(side for _, side in starts) == "".join(("AB", "BA")[k % 2] for k in range(PROBE_PAIRS)), starts

    report = (out / "report.md").read_text()
    assert "built A/B duet" in report and "found automatically" in report
    assert len(worktrees(repo)) == 1 and worktree_folders(private_tmp) == []
    for side in ("base", "head"):
        assert interpreter(out / "builds" / side / "service") is None  # CGO_ENABLED=0 from service.build_env


def test_the_actions_split_builds_on_the_host_with_the_standard_library_and_runs_the_builds(
        greeter_repo, tmp_path, monkeypatch):
    """build-plan (in perfgate's container), `python3 -S -m perfgate.build` (on the runner), run --builds."""
    repo, base, head = greeter_repo
    out = tmp_path / "out"
    monkeypatch.chdir(repo)
    settings = ["--out", str(out), "--set", "load.repetitions=1", "--set", "gates=[{metric: error_rate, max_value: 0}]"]
    assert main(["build-plan", *settings]) == EXIT_PASS
    plan = out / "build-plan.json"
    argv = [SYSTEM_PYTHON, "-S", "-m", "perfgate.build", "--plan", str(plan), "--against", base,
            "--out", str(out / "host-builds")]
    built = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=600,  # noqa: S603
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((out / "host-builds" / "builds.json").read_text())
    assert manifest["sides"]["base"]["commit"] == base and manifest["sides"]["head"]["commit"] == head
    assert manifest["sides"]["base"]["interpreter"] is None

    code = main(["run", "--builds", str(out / "host-builds"), *settings])

    verdict = json.loads((out / "verdict.json").read_text())
    assert code == EXIT_PASS, verdict["headline"]
    assert verdict["setup"]["mode"] == "built A/B duet"
    assert json.loads((out / "baseline" / "record.json").read_text())["load_settings"]["build"]["commit"] == base


def shell_repo(path: Path, base_script: str, head_script: str, marker: Path) -> Path:
    """A repository whose service.build is a shell script (quick), different in base and head."""
    service = {"build": ["sh", "build.sh", "{output}"], "command": "{binary} {address}",
               "build_env": {"MARKER": str(marker)}}
    config = {"target": {"call": "x.Y/Z"}, "service": service,
              "output": str(path.parent / "out"), "kernel": {"enabled": False}}
    repo = new_repo(path, config, {"build.sh": base_script})
    commit(repo, "base")
    (repo / "build.sh").write_text(head_script)
    commit(repo, "head")
    return repo


BUILD_OK = "printf '#!/bin/sh\\nexec sleep 60\\n' > \"$1\"; chmod +x \"$1\"\n"


def test_a_failing_base_build_is_exit_3_naming_the_side_with_its_tail_and_the_worktree_is_removed(
        tmp_path, monkeypatch, capsys, private_tmp):
    broken = "echo 'compiling the base'\necho 'service.go:12: undefined: handler' >&2\nexit 2\n"
    repo = shell_repo(tmp_path / "repo", broken, BUILD_OK, tmp_path / "marker")
    monkeypatch.chdir(repo)

    code = main(["run", "--against", "HEAD~1"])

    err = capsys.readouterr().err
    assert code == EXIT_TOOL, err
    assert "the base build (HEAD~1 at " in err and "failed" in err
    assert "  | service.go:12: undefined: handler" in err
    assert len(worktrees(repo)) == 1 and worktree_folders(private_tmp) == []
    assert not (tmp_path / "out" / "builds" / "builds.json").exists()


@contextlib.contextmanager
def sigint_not_ignored() -> Iterator[None]:
    """A child started inside gets SIGINT's default action even when the tests run with SIGINT ignored (a background
    job of a non-interactive shell): an ignored signal stays ignored across exec, a handler does not."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


SLOW_BASE = "echo $$ > \"$MARKER\"\nsleep 60\n" + BUILD_OK


@pytest.mark.parametrize(("entry", "sig", "expected"), [
    ("run", signal.SIGTERM, EXIT_TERMINATED),
    ("run", signal.SIGINT, EXIT_INTERRUPTED),
    ("build", signal.SIGTERM, EXIT_TERMINATED),
    ("build", signal.SIGKILL, -signal.SIGKILL),  # no clean-up possible: the build still dies with perfgate
])
def test_an_interrupted_build_stops_the_build_and_removes_the_worktree(tmp_path, private_tmp, entry, sig, expected):
    marker = tmp_path / "marker"
    repo = shell_repo(tmp_path / "repo", SLOW_BASE, BUILD_OK, marker)
    if entry == "run":
        argv = [sys.executable, "-m", "perfgate", "run", "--against", "HEAD~1"]
    else:
        plan = ["build-plan", "--config", str(repo / "perfgate.yml"), "--out", str(tmp_path / "plan")]
        assert main(plan) == EXIT_PASS
        argv = [SYSTEM_PYTHON, "-S", "-m", "perfgate.build", "--plan", str(tmp_path / "plan" / "build-plan.json"),
                "--against", "HEAD~1", "--out", str(tmp_path / "builds")]
    with sigint_not_ignored():
        process = subprocess.Popen(argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603
                                   text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text().strip():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the base build never started"
            time.sleep(0.1)
        assert len(worktrees(repo)) == 2 and len(worktree_folders(private_tmp)) == 1
        build_pid = int(marker.read_text())
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == expected, err
    deadline = time.monotonic() + 10
    while _running(build_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(build_pid)
    if sig != signal.SIGKILL:
        assert len(worktrees(repo)) == 1 and worktree_folders(private_tmp) == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

"""One gate of the real flow on the example greeter: `perfgate run --against HEAD~1` in a fresh repository
that holds the greeter at two commits, the head with a scenario's edits (a regression knob's default)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from perfgate_child import run_perfgate

ROOT = Path(__file__).resolve().parents[1]
GREETER = ROOT / "examples" / "greeter"
Edit = tuple[str, str, str]  # (file, text in the base, text in the head)
COMMENT_ONLY: Edit = ("main.go", "package main", "// the head commit: a comment, nothing else\npackage main")
DEFAULT_ITEMS = 64  # the greeter's work per call in the benches' requests: ~0.3 ms of CPU


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,  # noqa: S603
                          text=True, timeout=60).stdout.strip()


def flow_config(out: Path, gates: list[dict], pairs: int | None, duration: float | None, *,
                kernel: bool | None = True, items: int = DEFAULT_ITEMS) -> dict:
    """perfgate.yml of the repository: how to build and start the service, the rules; the load as perfgate's
    defaults for the flow have it unless `pairs`/`duration` say otherwise (kernel None: perfgate's default).
    `items`: the work per call (64: ~0.3 ms of CPU, 1024: ~5 ms)."""
    load: dict = {"concurrency": 4}
    if pairs is not None:
        load["repetitions"] = pairs
    if duration is not None:
        load["duration_s"] = duration
    config = {"target": {"call": "greeter.Greeter/SayHello", "data": {"name": "bench", "items": items}},
              "service": {"build": "go build -trimpath -o {output} .", "build_env": {"CGO_ENABLED": "0"},
                          "command": "{binary} -grpc-addr {address} -pprof-addr {pprof_address}"},
              "load": load, "gates": gates, "report": {"plots": False, "comment": "never"}, "output": str(out)}
    if kernel is not None:
        config["kernel"] = {"enabled": kernel}
    return config


def make_repo(folder: Path, scenario: str, config: dict, edits: Sequence[Edit]) -> Path:
    """The greeter at two commits: the base as it is, the head with `edits` (each must still match)."""
    repo = folder / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for source in [*GREETER.glob("go.*"), *GREETER.glob("*.go"), GREETER / "greeterpb"]:
        if not source.name.endswith("_test.go"):
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, repo / source.name)
    (repo / "perfgate.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    for name, before, after in edits:
        text = (repo / name).read_text(encoding="utf-8")
        if before not in text:
            raise RuntimeError(f"examples/greeter/{name} has no {before!r} any more: update the bench's edits")
        (repo / name).write_text(text.replace(before, after, 1), encoding="utf-8")
    git(repo, "commit", "-q", "-am", f"head: {scenario}")
    return repo


@dataclass(frozen=True)
class GateRun:
    code: int
    verdict: dict
    record: dict  # the candidate's record.json
    figures: dict  # wall and load seconds, load averages before and after, the rate: written beside each result


def run_gate(repo: Path, out: Path, during: contextlib.AbstractContextManager | None = None) -> GateRun:
    """`perfgate run --against HEAD~1` in `repo`, inside `during` (a disturbance, or nothing)."""
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with during or contextlib.nullcontext():
        code = run_perfgate(["run", "--against", "HEAD~1"], cwd=repo, timeout=900)
    wall = time.monotonic() - started
    verdict = json.loads((out / "verdict.json").read_text(encoding="utf-8"))
    record = json.loads((out / "candidate" / "record.json").read_text(encoding="utf-8"))
    figures = {"wall_s": round(wall, 1), "load_s": round(load_seconds(record), 1),
               "load_avg_before": round(load_before, 2), "load_avg_after": round(os.getloadavg()[0], 2),
               "rps": record["load_settings"].get("rps")}
    return GateRun(code, verdict, record, figures)


def rejudge_gate(folder: Path, *, without_probe_profiles: bool = False) -> tuple[int, dict]:
    """`perfgate compare` with this checkout's code on a kept gate's two records (its repository's perfgate.yml),
    into a scratch folder: the verdict the gate would have given with this code (the verdict is a pure function of
    the records and the config). Its exit code and verdict. without_probe_profiles: on copies of the records that
    list no capacity probe profiles (what the movers' test says from the duet windows alone)."""
    repo, out = folder / "repo", folder / "out"
    with tempfile.TemporaryDirectory(prefix="rejudge-") as scratch:
        sides = [out / "baseline", out / "candidate"]
        if without_probe_profiles:
            sides = [_without_probe_profiles(side, Path(scratch) / side.name) for side in sides]
        verdict_folder = Path(scratch) / "verdict"
        code = run_perfgate(["compare", "--config", str(repo / "perfgate.yml"), "--baseline", str(sides[0]),
                             "--candidate", str(sides[1]), "--out", str(verdict_folder)], cwd=repo, timeout=300)
        return code, json.loads((verdict_folder / "verdict.json").read_text(encoding="utf-8"))


def _without_probe_profiles(record: Path, copy: Path) -> Path:
    shutil.copytree(record, copy)
    data = json.loads((copy / "record.json").read_text(encoding="utf-8"))
    data["probe_profiles"] = []
    (copy / "record.json").write_text(json.dumps(data), encoding="utf-8")
    return copy


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    """--pairs, --duration and --keep, as every bench of gates in a fresh greeter repository has them."""
    parser.add_argument("--pairs", type=int, default=None, help="load.repetitions (default: perfgate's)")
    parser.add_argument("--duration", type=float, default=None, help="load.duration_s (default: perfgate's)")
    parser.add_argument("--keep", action="store_true", help="keep each gate's repository and records")


def gate_in_new_repo(work: Path, scenario: str, args: argparse.Namespace, config: Callable[[Path], dict],
                     edits: Sequence[Edit], summarize: Callable[[dict, str, int], dict], *,
                     during: Callable[[Path], contextlib.AbstractContextManager] | None = None,
                     keep: Callable[[dict], bool] = lambda result: False) -> dict:
    """One gate in a fresh repository under `work`: the greeter with `edits` as its head commit, perfgate.yml from
    `config(out)`, run inside `during(folder)`; the folder is kept (and named in the result) with --keep or when
    `keep(result)` says so."""
    folder = Path(tempfile.mkdtemp(prefix=f"{scenario}-", dir=work))
    out = folder / "out"
    repo = make_repo(folder, scenario, config(out), edits)
    gate = run_gate(repo, out, during(folder) if during else None)
    result = {**summarize(gate.verdict, scenario, gate.code), **gate.figures}
    result["kept"] = str(folder) if args.keep or keep(result) else None
    if not result["kept"]:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def load_seconds(record: dict) -> float:
    """Seconds the machine was under load: warm-up, the capacity probes (one build at a time) and the windows."""
    settings = record["load_settings"]
    windows = sum(r["load"]["total_ns"] for r in record["repetitions"] if r.get("load")) / 1e9
    probes = sum(p.get("duration_s") or p.get("load", {}).get("total_ns", 0) / 1e9
                 for p in record.get("capacity_probes") or ())
    return float(settings.get("warmup_s") or 0) + 2 * probes + windows


def gate_result(one_gate: Callable[[str, argparse.Namespace], dict], scenario: str,
                args: argparse.Namespace) -> dict:
    """one_gate's result, or the error that kept the gate from a verdict; with the design it ran at."""
    try:
        result = one_gate(scenario, args)
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError) as error:
        result = {"scenario": scenario, "error": str(error)[-500:]}
    result["design"] = {"pairs": args.pairs, "duration_s": args.duration}
    return result


def append_result(results: Path, result: dict) -> None:
    with results.open("a", encoding="utf-8") as file:
        file.write(json.dumps(result) + "\n")


def results_by_scenario(results: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for line in results.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            groups[row["scenario"]].append(row)
    return groups

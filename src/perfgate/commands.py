"""The subcommands as plain functions of typed arguments, so tests call them without argv.

Each returns the exit code; cli.main is what exits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from perfgate.errors import EXIT_PASS, EXIT_TOOL, ConfigError
from perfgate.gha import LEGACY_PREFIX

if TYPE_CHECKING:
    from perfgate.baseline import BaselineHistory
    from perfgate.config import Config
    from perfgate.progress import Progress
    from perfgate.record import RunRecord

# Each command imports what it uses inside its function, so `profile top`, `doctor` and `--help` start
# without scipy, matplotlib, PyGithub or requests (tests/unit/test_imports.py guards each command's import set).



def _progress(config: Config, sides: int = 1) -> Progress:
    from perfgate.progress import Progress

    per_rep = (config.load.duration_s or 10.0) + 2.0
    return Progress(steps=config.load.repetitions * sides, step_seconds=per_rep)


def run(config: Config, *, as_baseline: bool, against: str | None = None, builds: Path | None = None) -> int:
    from perfgate.ab import prepare_run
    from perfgate.baseline import (
        BaselineHistory,
        open_baseline,
        open_baseline_and_history,
        open_history,
        resolve_source,
    )
    from perfgate.load.generator import find_generator
    from perfgate.measure.schedules import measure, measure_interleaved
    from perfgate.preload import Preload, gate_modules

    generator = find_generator(config.load.generator)
    out = Path(config.output)
    prepared = prepare_run(config, against=against, builds_dir=builds, as_baseline=as_baseline,
                           say=_progress(config).info)
    config = prepared.config
    gate_imports = Preload(gate_modules(plots=config.report.plots))
    if config.compare.mode == "interleaved":
        if as_baseline:
            raise ConfigError("--baseline cannot be combined with compare.mode: interleaved "
                              "(interleaved mode measures both sides in this job)")
        progress = _progress(config, sides=1 if config.compare.schedule == "duet" else 2)
        baseline, candidate = measure_interleaved(config, out, generator=generator, progress=progress,
                                                  built=prepared.built, preload=gate_imports.start())
        progress.info(f"records saved in {baseline.path} and {candidate.path}")
        return gate_and_publish(config, baseline, candidate, out)
    role = "baseline" if as_baseline else "candidate"
    source = resolve_source(config, os.environ)
    # Read a given baseline first: a corrupt one should stop the job before minutes of load, not after.
    baseline = open_baseline(config, os.environ, out) if not as_baseline and source.kind == "path" else None
    history = open_history(config, baseline, os.environ, out) if baseline is not None else BaselineHistory()
    progress = _progress(config)
    compares = not as_baseline and source.kind != "none"
    record = measure(config, out / role, role=role, generator=generator, progress=progress,
                     preload=gate_imports.start() if compares else None)
    progress.info(f"record saved in {record.path} ({len(record.ok_repetitions)} repetitions)")
    if not compares:
        return EXIT_PASS
    if baseline is None:
        baseline, history = open_baseline_and_history(config, os.environ, out)
    return gate_and_publish(config, baseline, record, out, history=history, baseline_source=source.kind)


def build_plan(config: Config) -> int:
    from perfgate.ab import build_plan as plan_of
    from perfgate.build.plan import PLAN_FILE

    out = Path(config.output)
    plan = plan_of(config)
    if plan is None:
        (out / PLAN_FILE).unlink(missing_ok=True)
        print("perfgate: service.build is not set: nothing to build, no plan written", file=sys.stderr)
        return EXIT_PASS
    print(f"perfgate: build plan written to {plan.save(out)}", file=sys.stderr)
    return EXIT_PASS


def compare(config: Config, *, baseline: str, candidate: Path) -> int:
    from perfgate.baseline import open_baseline_path, open_history

    out = Path(config.output)
    baseline_record = open_baseline_path(baseline, out)
    candidate_record = open_baseline_path(str(candidate), out)
    history = open_history(config, baseline_record, os.environ, out)
    return gate_and_publish(config, baseline_record, candidate_record, out, history=history, baseline_source="records")


def gate_and_publish(config: Config, baseline: RunRecord | None, candidate: RunRecord, out: Path, *,
                     history: BaselineHistory | None = None, baseline_source: str | None = None) -> int:
    """baseline_source: where a baseline from another run came from ("artifact", "path", "records"), for the report."""
    from perfgate.baseline import BaselineHistory
    from perfgate.compare.inputs import load_inputs
    from perfgate.gate import decide
    from perfgate.measure.session import utc_now
    from perfgate.publish import publish_verdict
    from perfgate.report.flamegraph import write_flamegraph

    history = history or BaselineHistory()
    inputs = load_inputs(baseline, candidate, history.records, notes=history.notes, baseline_source=baseline_source)
    verdict = decide(inputs, config, created_at=utc_now())
    verdict_path = verdict.save(out)
    if verdict.cpu.available:
        write_flamegraph(inputs, out, title=config.report.title)
    print(f"perfgate: {verdict.headline}", file=sys.stderr)
    print(f"perfgate: verdict saved in {verdict_path}", file=sys.stderr)
    publish_verdict(verdict, config, out, records=[r for r in (baseline, candidate) if r is not None])
    return verdict.exit_code


def publish(config: Config, *, source: Path, pr_number: int | None) -> int:
    from perfgate.publish import publish_saved_verdict

    return publish_saved_verdict(config, source, pr_number=pr_number)


def profile_top(path: Path, *, as_json: bool) -> int:
    from perfgate.profile.parse import parse_profile
    from perfgate.profile.render import render_top

    text = render_top(parse_profile(path), as_json=as_json)
    print(json_for_log(text) if as_json else text)
    return EXIT_PASS


def profile_diff(base: Path, candidate: Path, *, as_json: bool) -> int:
    if base.is_dir() != candidate.is_dir():
        raise ConfigError(f"perfgate profile diff: give two profiles or two run record folders, not one of each "
                          f"({base}, {candidate})")
    if base.is_dir():
        from perfgate.compare.functions import per_request_changes, render_per_request
        from perfgate.record import load_record

        print(render_per_request(per_request_changes(load_record(base), load_record(candidate)), as_json=as_json))
    else:
        from perfgate.profile.diff import render_profile_diff

        print(render_profile_diff(base, candidate, as_json=as_json))
    return EXIT_PASS


def doctor(config: Config | None, *, as_json: bool) -> int:
    from perfgate.doctor import check_collectors, render_doctor

    pprof_url = config.cpu.pprof_url if config else None
    generator = config.load.generator if config else "ghz"
    statuses = check_collectors(generator=generator, pprof_url=pprof_url, bpftrace="bpftrace", config=config)
    text = render_doctor(statuses, as_json=as_json)
    print(json_for_log(text) if as_json else text)
    return EXIT_PASS if statuses[generator].available else EXIT_TOOL


def json_for_log(text: str) -> str:
    """JSON whose `##[` (only ever inside a string) is written `##\\u005b`: the same value, and no workflow
    command for the log's neutraliser to alter (gha.command_safe_output)."""
    return text.replace(LEGACY_PREFIX, "##\\u005b")





def init(address: str, *, project: Path, call: str | None, pprof_url: str | None, force: bool) -> int:
    from perfgate.starter import init_project
    from perfgate.starter.render import built_ab

    choose = _ask_for_method if sys.stdin.isatty() and sys.stderr.isatty() else None
    written = init_project(address, project=project, call=call, pprof_url=pprof_url, force=force, choose=choose)
    found = written.findings
    print(f"perfgate init: wrote {written.config} and {written.workflow}", file=sys.stderr)
    print(f"  call: {found.method.call if found.method else 'none found (set target.call)'}", file=sys.stderr)
    print(f"  pprof: {found.pprof_url or 'not found'}", file=sys.stderr)
    ab = built_ab(found)
    if ab is not None:
        print(f"  build: {ab.build.command} (built A/B: the Action builds each PR's base and head)", file=sys.stderr)
    else:
        print(f"  build: {found.build.shell if found.build else 'not found'}; baselines on pushes to "
              f"{found.branch}", file=sys.stderr)
    for note in written.notes:
        print(f"  note: {note}", file=sys.stderr)
    if ab is not None:
        print(f"next: review both files; try them with `perfgate run --against {found.branch}` (perfgate builds "
              f"{found.branch} and the working tree and runs both on free ports), then commit them", file=sys.stderr)
        return EXIT_PASS
    build = f"`{found.build.shell}`, then " if found.build else ""
    print(f"next: review both files; try them with {build}`perfgate run --baseline` (stop the running service "
          "first when perfgate starts its own), then commit them", file=sys.stderr)
    return EXIT_PASS


def _ask_for_method(methods):
    for number, method in enumerate(methods, start=1):
        print(f"  {number}. {method.call}", file=sys.stderr)
    while True:
        try:
            answer = input(f"which method should perfgate load? [1-{len(methods)}, default 1] ").strip() or "1"
        except EOFError:
            answer = "1"
        if answer.isdigit() and 1 <= int(answer) <= len(methods):
            return methods[int(answer) - 1]

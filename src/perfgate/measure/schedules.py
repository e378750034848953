"""What runs when: one side (warm-up, then N repetitions), or both builds interleaved in one job.

Interleaved schedules (docs/architecture.md "Interleaved mode"): `restart` starts each build fresh per
repetition, `alternate` keeps both up and takes turns with the load, `duet` loads both at once.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from perfgate.build.manifest import BuiltSide
from perfgate.capacity import probe_pair, set_automatic_rate
from perfgate.config import Config
from perfgate.load.generator import LoadGenerator
from perfgate.measure.kernel import RUN_FILE, KernelView
from perfgate.measure.repetition import run_repetition, run_together
from perfgate.measure.session import (
    Session,
    collectors_for,
    failure_recorded,
    finish,
    load_window,
    new_session,
    running_service,
    warm_up,
)
from perfgate.preload import Preload
from perfgate.progress import Progress
from perfgate.record import RunRecord


def measure(config: Config, folder: Path, *, role: str, generator: LoadGenerator, progress: Progress,
            preload: Preload | None = None) -> RunRecord:
    """Baseline-or-candidate mode: one service (started here if configured), warm-up, N repetitions.

    preload: imports that ride along the warm-up (the gate's); joined before the first window."""
    session = new_session(config, folder, role=role, generator=generator, progress=progress)
    with failure_recorded(session), running_service(config.service, config, folder, generator) as service:
        collectors = collectors_for(config, service)
        with KernelView.open(config, (collectors,), folder / RUN_FILE) as kernel:  # one bpftrace for the run
            warm_up(session)
            _joined(preload)
            for _ in range(config.load.repetitions):
                run_repetition(session, collectors, kernel)
    return finish(session)


def measure_interleaved(config: Config, folder: Path, *, generator: LoadGenerator, progress: Progress,
                        built: tuple[BuiltSide, BuiltSide] | None = None,
                        preload: Preload | None = None) -> tuple[RunRecord, RunRecord]:
    """Same-runner mode: both builds measured in this job, so the runner's own noise hits both sides.

    Without compare.baseline_address each repetition starts its build fresh on target.address, in A B B A
    order (see `pair_order`), and stops it after. With it both builds stay up on their own addresses for the
    whole run: `compare.schedule: alternate` takes turns with the load, `duet` loads both at once.
    """
    assert config.compare.baseline_service is not None and config.service is not None
    sides = (new_session(baseline_side_config(config), folder / "baseline", role="baseline", generator=generator,
                         progress=progress),
             new_session(config, folder / "candidate", role="candidate", generator=generator, progress=progress))
    pairing = {"pairing_id": f"interleaved {sides[0].record.created_at}", "schedule": interleave_schedule(config)}
    for index, session in enumerate(sides):
        session.label = f"{session.record.role} "
        session.record = replace(session.record, load_settings={**session.record.load_settings, **pairing})
        if built is not None:
            session.record = with_build(session.record, built[index])
        session.save()
    if not config.compare.concurrent_builds:
        _alternate_fresh_builds(sides, preload)
    else:
        _with_running_builds(sides, duet=config.compare.schedule == "duet", preload=preload)
    return finish(sides[0]), finish(sides[1])


def with_build(record: RunRecord, side: BuiltSide) -> RunRecord:
    """A record of a build perfgate made: which side and commit it is, in its settings and its environment."""
    build = {"side": side.side, "ref": side.ref, "commit": side.commit}
    environment = replace(record.environment, git_sha=side.commit or record.environment.git_sha,
                          git_ref=side.ref or record.environment.git_ref)
    return replace(record, load_settings={**record.load_settings, "build": build}, environment=environment)


def _joined(preload: Preload | None) -> None:
    if preload is not None:
        preload.join()


def interleave_schedule(config: Config) -> str:
    """restart (each build started per repetition), alternate (both up, load takes turns), duet (both loaded)."""
    return config.compare.schedule if config.compare.concurrent_builds else "restart"


def baseline_side_config(config: Config) -> Config:
    """The config the base build is measured with: its own command, and its own addresses when it has them."""
    compare = config.compare
    side = replace(config, service=compare.baseline_service)
    if compare.concurrent_builds:
        side = replace(side, target=replace(config.target, address=compare.baseline_address),
                       cpu=replace(config.cpu, pprof_url=compare.baseline_pprof_url))
    return side


def pair_order(pair_index: int) -> tuple[int, int]:
    """A B, then B A, …: a steady drift of the runner adds the same to both sides over every two pairs."""
    return (0, 1) if pair_index % 2 == 0 else (1, 0)


def _alternate_fresh_builds(sides: tuple[Session, Session], preload: Preload | None = None) -> None:
    for pair in range(sides[0].config.load.repetitions):
        for session in (sides[i] for i in pair_order(pair)):
            service_config = session.config.service
            with failure_recorded(session), \
                    running_service(service_config, session.config, session.folder, session.generator) as service:
                warm_up(session)
                _joined(preload)
                run_repetition(session, collectors_for(session.config, service))


def _with_running_builds(sides: tuple[Session, Session], *, duet: bool, preload: Preload | None = None) -> None:
    with contextlib.ExitStack() as stack:
        collectors = []
        for session in sides:
            stack.enter_context(failure_recorded(session))
            service = stack.enter_context(
                running_service(session.config.service, session.config, session.folder, session.generator))
            collectors.append(collectors_for(session.config, service))
        kernel = stack.enter_context(KernelView.open(sides[0].config, tuple(collectors), sides[0].folder / RUN_FILE))
        for session in sides:
            warm_up(session)
        _joined(preload)
        automatic_rate = duet and not sides[0].config.load.rps
        pprof_urls = (collectors[0].pprof_url, collectors[1].pprof_url)
        if automatic_rate:
            set_automatic_rate(sides, load_window(sides[0].config), pprof_urls)
        for pair in range(sides[0].config.load.repetitions):
            if duet:
                if automatic_rate:
                    probe_pair(sides, load_window(sides[0].config), pair, pprof_urls)
                run_together(sides, tuple(collectors), kernel)
                continue
            for i in pair_order(pair):
                run_repetition(sides[i], collectors[i], kernel)

"""The automatic request rate of a duet, and the capacity probes the `capacity` metric compares.

A duet loads both builds at once, each at the same fixed rate: unbounded, they would fight for the CPU and each
one's figures would depend on the other's share. Without `load.rps` perfgate finds the rate itself:

1. after the warm-up, probes of RATE_PROBE_S without a rate limit measure what each build serves alone at
   load.concurrency (its *capacity*), in A B B A order so a steady drift of the runner hits both alike;
2. the rate is RATE_FRACTION of the smaller build's capacity (the median of its probes), at least 1 request/s;
   both builds then run at that rate for every repetition, so together they use about twice that fraction of what
   one build alone could drive the machine to;
3. before every PROBE_EVERY-th duet window one more probe of PAIR_PROBE_S per build (A B, then B A next time):
   the pairs of the `capacity` metric, compared pair by pair like the other duet metrics. They are short and
   sparse because every second of them is taken from the duet windows the main verdict rests on (the default
   flow has a minute of load, measure/budget.py).

Each run of probes is CPU-profiled, one profile per build (measure/probe_profile.py): the probes load a build at
several times a duet window's CPU per second, and their samples help name the function that moved.

The constants were chosen on services of three speeds on a 2-vCPU VM (docs/benchmarks.md, "Automatic duet rate"),
and RATE_FRACTION held against 0.4 in the default flow's gates (docs/statistics.md, "Why a quarter");
docs/statistics.md says how the capacity pairs are tested and why the default capacity rule only warns.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import replace

from perfgate.load.generator import GeneratorCrashed
from perfgate.load.sample import LoadSample, LoadWindow
from perfgate.measure.probe_profile import ProbeProfiler, profile_seconds, spans
from perfgate.measure.session import Session, utc_now
from perfgate.record_parts import CapacityProbe

RATE_FRACTION = 0.25
RATE_PROBE_S = 1.0  # the four probes that set the rate
PAIR_PROBE_S = 0.5  # the capacity metric's probes
PROBE_EVERY = 2  # a capacity probe pair before every second duet window
RATE_ORDER = (0, 1, 1, 0)  # A B B A: the probes that set the rate
MIN_RATE = 1


def probe_seconds() -> tuple[float, float]:
    """(before the first pair, per pair on average): the load time the probes of an automatic rate take."""
    return len(RATE_ORDER) * RATE_PROBE_S, 2 * PAIR_PROBE_S / PROBE_EVERY


def probe_window(window: LoadWindow, seconds: float) -> LoadWindow:
    """The repetition's window without a rate limit, `seconds` long."""
    return replace(window, duration_s=seconds, total=None, rps=0)


def run_probe(session: Session, window: LoadWindow, *, phase: str, seconds: float) -> CapacityProbe:
    """One probe against this session's build alone; saved in its record right away."""
    index = len(session.record.capacity_probes) + 1
    load_file = f"load/capacity-{index:02d}.json"
    started = utc_now()
    try:
        sample = _probe_load(session, probe_window(window, seconds), load_file, index)
    except GeneratorCrashed:  # the load generator crashed: that says nothing about the build; one more try
        started = utc_now()
        sample = _probe_load(session, probe_window(window, seconds), load_file, index)
    probe = CapacityProbe(index=index, phase=phase, started_at=started, ended_at=utc_now(), load=sample,
                          load_file=load_file)
    session.record = session.record.with_capacity_probe(probe)
    session.save()
    return probe


def _probe_load(session: Session, window: LoadWindow, load_file: str, index: int) -> LoadSample:
    return session.generator.run(session.config.target, window, session.folder / load_file,
                                 name=f"perfgate capacity probe {index}")


def choose_rate(base: Sequence[float], head: Sequence[float], fraction: float = RATE_FRACTION) -> int:
    """fraction × the smaller of the two builds' median capacities, in whole requests per second (≥ MIN_RATE)."""
    smaller = min(statistics.median(base), statistics.median(head))
    return max(MIN_RATE, math.floor(fraction * smaller))


def run_probes(sides: tuple[Session, Session], window: LoadWindow, pprof_urls: tuple[str | None, str | None],
               order: Sequence[int], *, phase: str, seconds: float) -> tuple[list[float], list[float]]:
    """Probes in `order` (0 the base, 1 the head), each build's CPU profiled over its own; each build's OK rps."""
    found: tuple[list[float], list[float]] = ([], [])
    profilers = [ProbeProfiler(session, url, phase=phase) for session, url in zip(sides, pprof_urls, strict=True)]
    span = spans(order)
    try:
        for i in order:
            profilers[i].before_probe(profile_seconds(span[i], seconds))
            probe = run_probe(sides[i], window, phase=phase, seconds=seconds)
            profilers[i].after_probe(probe.index)
            found[i].append(probe.ok_rps)
    finally:
        for profiler in profilers:
            profiler.finish()
    return found


def set_automatic_rate(sides: tuple[Session, Session], window: LoadWindow,
                       pprof_urls: tuple[str | None, str | None]) -> int:
    """Probe both builds (A B B A), then give both sessions the rate; recorded in both records' load_settings."""
    sides[0].progress.info(f"finding the request rate: {len(RATE_ORDER)} probes of {RATE_PROBE_S:g} s without a "
                           "rate limit, A B B A")
    probes = run_probes(sides, window, pprof_urls, RATE_ORDER, phase="rate", seconds=RATE_PROBE_S)
    rate = choose_rate(probes[0], probes[1])
    capacities = {session.record.role: round(statistics.median(found), 1)
                  for session, found in zip(sides, probes, strict=True)}
    settings = {"rps": rate, "rps_source": "automatic", "rate_fraction": RATE_FRACTION,
                "rate_probe_s": RATE_PROBE_S, "pair_probe_s": PAIR_PROBE_S, "probe_every": PROBE_EVERY,
                "capacity_rps_at_start": capacities}
    for session in sides:
        session.config = replace(session.config, load=replace(session.config.load, rps=rate))
        session.record = replace(session.record, load_settings={**session.record.load_settings, **settings})
        session.save()
    sides[0].progress.info(f"request rate: {rate} req/s per build = {RATE_FRACTION:g} × the smaller capacity "
                           f"({', '.join(f'{role} {value:g}' for role, value in capacities.items())} req/s)")
    return rate


def probe_pair(sides: tuple[Session, Session], window: LoadWindow, pair: int,
               pprof_urls: tuple[str | None, str | None]) -> None:
    """Before every PROBE_EVERY-th duet window, one capacity probe per build: A B, then B A the next time."""
    if pair % PROBE_EVERY:
        return
    order = (0, 1) if (pair // PROBE_EVERY) % 2 == 0 else (1, 0)
    run_probes(sides, window, pprof_urls, order, phase="pair", seconds=PAIR_PROBE_S)

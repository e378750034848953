"""The service's profiles below the CPU, fetched from net/http/pprof: allocations, mutex and block
contention as delta profiles over a window (`?seconds=N`: the server answers after N seconds with
the difference of its cumulative profile), and goroutine snapshots.

perfgate's own requests are left out of every figure: samples with a frame in net/http/pprof or
runtime/pprof (a delta request's own N-second wait is a block event; the CPU profile handler
allocates). In a goroutine snapshot, each request being served also has net/http's connection reader
beside its handler (started for every request whose body is read, gone when the handler returns): one
per perfgate request in flight is left out too, or a snapshot taken while another of its requests was
still open would count that reader as a goroutine gained. The delta request's own wait also tells
whether block profiling is on at all: with any rate > 0 the runtime records it, so a block profile
without it means the rate is 0, not that nothing blocked.
A mutex profile says its rate in its text form (`sampling period=N`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from perfgate.capture.pprof import ProfileUnavailable, fetch_profile_body, profile_url
from perfgate.errors import ProfileError
from perfgate.profile.model import Profile
from perfgate.profile.parse import parse_profile

OWN_FRAMES = re.compile(r"^(?:net/http/pprof|runtime/pprof)\.")
# The lock and wait machinery under a contended call site: hidden, a contention profile's leaf is the site.
LOCK_MACHINERY = re.compile(r"^(?:runtime|sync|sync/atomic|internal/sync)\.")
DELTA_WAIT_FUNCTION = "net/http/pprof.handler.serveDeltaProfile"
CONNECTION_READER = "net/http.(*connReader).backgroundRead"  # one per request in flight (the module docstring)
SNAPSHOT_TIMEOUT_S = 10.0
RATE_TEXT_BYTES = 4096


@dataclass(frozen=True)
class LayerKind:
    """One profile below the CPU: its net/http/pprof name and the sample types summed per window."""

    name: str
    sample_types: tuple[str, ...]
    delta: bool
    rate_hint: str | None = None  # what the service must call for the profile not to be empty
    call_sites: bool = False  # a contention profile: movers are named by the call site above the lock machinery


ALLOCS = LayerKind("allocs", ("alloc_objects", "alloc_space"), delta=True)
MUTEX = LayerKind("mutex", ("contentions", "delay"), delta=True, call_sites=True,
                  rate_hint="the service must call runtime.SetMutexProfileFraction(N) with N > 0, e.g. 10")
BLOCK = LayerKind("block", ("contentions", "delay"), delta=True, call_sites=True,
                  rate_hint="the service must call runtime.SetBlockProfileRate(NS) with NS > 0, e.g. 10000")
GOROUTINE = LayerKind("goroutine", ("goroutine",), delta=False)
DELTA_KINDS: Mapping[str, LayerKind] = MappingProxyType({kind.name: kind for kind in (ALLOCS, MUTEX, BLOCK)})


@dataclass(frozen=True)
class LayerSummary:
    """A layer profile's figures: each sample type's total without perfgate's own requests."""

    totals: Mapping[str, int]
    duration_ns: int
    rate_off: bool = False  # the profile is empty because the service's profiling rate is 0


def fetch_delta(pprof_url: str, kind: LayerKind, seconds: int, *, timeout_s: float | None = None,
                on_sent: Callable[[], None] | None = None) -> bytes:
    """GET /debug/pprof/{kind}?seconds=N: the service's {kind} profile of the next N seconds, checked
    (on_sent: called once the request is on the wire)."""
    url = profile_url(pprof_url, kind.name)
    body = fetch_profile_body(url, seconds, timeout_s=timeout_s, kind=kind.name, on_sent=on_sent)
    _check(body, url, kind, delta=True)
    return body


def fetch_snapshot(pprof_url: str, kind: LayerKind = GOROUTINE, *, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> bytes:
    """GET /debug/pprof/{kind} now (the goroutine profile: every goroutine's stack), checked."""
    url = profile_url(pprof_url, kind.name)
    body = fetch_profile_body(url, None, timeout_s=timeout_s, kind=kind.name)
    _check(body, url, kind, delta=False)
    return body


def mutex_sampling_period(pprof_url: str, *, timeout_s: float = SNAPSHOT_TIMEOUT_S) -> int | None:
    """The service's runtime.SetMutexProfileFraction, from the mutex profile's text form; None if not said."""
    url = profile_url(pprof_url, MUTEX.name)
    text = fetch_profile_body(url, None, timeout_s=timeout_s, kind=MUTEX.name, params={"debug": "1"})
    match = re.search(rb"^sampling period=(\d+)$", text[:RATE_TEXT_BYTES], re.MULTILINE)
    return int(match.group(1)) if match else None


def _check(body: bytes, url: str, kind: LayerKind, *, delta: bool) -> None:
    try:
        profile = parse_profile(body, name=url)
    except ProfileError as error:
        raise ProfileUnavailable(f"{url} returned a body that is not a profile: {error.message}",
                                 kind=kind.name) from None
    have = {name for name, _ in profile.sample_types}
    missing = [name for name in kind.sample_types if name not in have]
    if missing:
        raise ProfileUnavailable(f"{url} returned a profile without {', '.join(missing)} "
                                 f"(it has {', '.join(sorted(have)) or 'no sample types'})", kind=kind.name)
    if delta and profile.duration_ns <= 0:
        raise ProfileUnavailable(f"{url} returned the cumulative profile, not the difference over the window "
                                 "(a net/http/pprof too old for ?seconds= on this profile)", kind=kind.name)


def parse_layer(source: Path | bytes, kind: LayerKind, sample_type: str | None = None, *,
                name: str | None = None, call_sites: bool = False) -> Profile:
    """The profile aggregated on one of the kind's sample types (the last by default: bytes, delay, count),
    without perfgate's own requests. call_sites (contention profiles): the lock machinery's frames
    (runtime, sync) hidden, so each stack's leaf is the call site that waited or made others wait, and
    samples entirely inside the runtime are left out."""
    hide = LOCK_MACHINERY if call_sites and kind.call_sites else None
    return parse_profile(source, name=name, sample_type=sample_type or kind.sample_types[-1], ignore=OWN_FRAMES,
                         hide=hide)


def goroutine_starts(source: Path | bytes, *, name: str | None = None) -> Counter[str]:
    """A goroutine snapshot's goroutines per start function (the outermost frame of each stack), without
    perfgate's own requests: their handlers and, for each handler, one of net/http's connection readers."""
    whole = parse_profile(source, name=name)
    mine = parse_layer(source, GOROUTINE, name=name)
    counted: Counter[str] = Counter()
    for stack, weight in mine.stacks.items():
        counted[stack[0]] += weight
    own_requests = whole.total - mine.total
    counted[CONNECTION_READER] -= min(own_requests, counted[CONNECTION_READER])
    return +counted


def summarize(source: Path | bytes, kind: LayerKind, *, name: str | None = None) -> LayerSummary:
    """Totals per sample type; for block, whether the service's rate is off (see the module docstring)."""
    profiles = {sample_type: parse_layer(source, kind, sample_type, name=name) for sample_type in kind.sample_types}
    duration_ns = next(iter(profiles.values())).duration_ns
    rate_off = False
    if kind is BLOCK:
        whole = parse_profile(source, name=name, sample_type="delay")
        rate_off = DELTA_WAIT_FUNCTION not in whole.functions
    return LayerSummary(totals=MappingProxyType({t: p.total for t, p in profiles.items()}),
                        duration_ns=duration_ns, rate_off=rate_off)


__all__ = ["ALLOCS", "BLOCK", "CONNECTION_READER", "DELTA_KINDS", "GOROUTINE", "LOCK_MACHINERY", "MUTEX", "OWN_FRAMES",
           "LayerKind", "LayerSummary", "fetch_delta", "fetch_snapshot", "goroutine_starts", "mutex_sampling_period",
           "parse_layer", "summarize"]

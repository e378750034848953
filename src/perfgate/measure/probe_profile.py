"""CPU profiles of the capacity probes: more samples to name a moved function by.

A capacity probe (capacity.py) runs one build alone without a rate limit, at several times the CPU per second
of a duet window, so a profile over it adds many samples in little load time; compare/movers.py counts them as
a stratum of their own beside the duet windows. In a run of probes (A B B A, or A B) each build gets one profile
from just before its first probe to past its last: the request goes out before that probe's load starts (the
probe waits until it is on the wire, at most LEAD_WAIT_S) and lasts whole seconds (pprof's unit), enough for
the probes up to the build's last one as they usually run (each probe's load time times PROBE_WALL_FACTOR plus
PROBE_WALL_EXTRA_S: ghz's start and stop). While the other build is probed this one idles, so its profile
holds its own probes' work only. A profile that was not running from before its build's first probe started
until after its last one ended is kept in the record but marked unavailable, so an "ok" one has every call of
its probes in it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence

from perfgate.capture.pprof import default_fetch_timeout_s
from perfgate.measure.cpu import LEAD_WAIT_S, UNAVAILABLE, fetch_into_record
from perfgate.measure.session import Session
from perfgate.record_parts import CpuCapture, ProbeProfile

PROBE_WALL_FACTOR = 1.1
PROBE_WALL_EXTRA_S = 0.1


def profile_seconds(probes: int, probe_s: float) -> int:
    """Whole seconds of profile that cover `probes` probes of probe_s in a row, as they usually run."""
    return max(1, math.ceil(probes * (probe_s * PROBE_WALL_FACTOR + PROBE_WALL_EXTRA_S)))


def spans(order: Sequence[int]) -> dict[int, int]:
    """Per build in a run of probes: how many probes run from its first one to its last one, both included."""
    return {side: max(p for p, s in enumerate(order) if s == side) - order.index(side) + 1 for side in set(order)}


class ProbeProfiler:
    """One build's profile over its probes in one run of probes; does nothing without a pprof address."""

    def __init__(self, session: Session, pprof_url: str | None, *, phase: str) -> None:
        self.session, self.url, self.phase = session, pprof_url, phase
        self.probes: list[int] = []
        self.seconds = 0
        self.sent_at: float | None = None
        self.first_probe_start = self.last_probe_end = 0.0
        self.result = CpuCapture(status="unavailable", reason=UNAVAILABLE + "the profile request did not end")
        self.thread: threading.Thread | None = None

    def before_probe(self, seconds: int) -> None:
        """Before each of this build's probes: the first one starts the profile and waits until it is sent."""
        if self.url is None or self.thread is not None:
            return
        self.seconds = seconds
        sent = threading.Event()
        self.thread = threading.Thread(target=self._fetch, args=(sent,), daemon=True)
        self.thread.start()
        sent.wait(LEAD_WAIT_S)
        self.first_probe_start = time.monotonic()

    def after_probe(self, index: int) -> None:
        self.probes.append(index)
        self.last_probe_end = time.monotonic()

    def finish(self) -> None:
        """Wait for the profile and write its entry in the build's record (nothing when there was none)."""
        if self.thread is None:
            return
        self.thread.join(timeout=default_fetch_timeout_s(self.seconds) + 1)
        if self.result.status == "ok" and not self._covered():
            self.result = CpuCapture(status="unavailable", file=self.result.file, reason=UNAVAILABLE + (
                f"its {self.seconds} s did not span probes {', '.join(map(str, self.probes))}; not counted"))
        profile = ProbeProfile(phase=self.phase, probes=tuple(self.probes), cpu=self.result)
        self.session.record = self.session.record.with_probe_profile(profile)
        self.session.save()

    def _covered(self) -> bool:
        """The profile was running before the first probe started and until after the last one ended."""
        return (self.sent_at is not None and self.sent_at <= self.first_probe_start
                and self.last_probe_end <= self.sent_at + self.seconds)

    def _fetch(self, sent: threading.Event) -> None:
        def on_sent() -> None:
            self.sent_at = time.monotonic()
            sent.set()

        name = f"cpu/probes-{len(self.session.record.probe_profiles) + 1:02d}.pb.gz"
        try:
            self.result = fetch_into_record(self.session, self.url, self.seconds, name, on_sent=on_sent)
        finally:
            sent.set()

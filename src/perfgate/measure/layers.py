"""The profiles below the CPU, captured in each repetition's load window from the service's net/http/pprof
(cpu.pprof_url; `layers.enabled` chooses which):

    t < 0          goroutine snapshot (before ghz starts)
    t = o          allocs, mutex and block delta profiles requested together, each ?seconds=N: the same
                   window as the CPU profile (measure/cpu.py), which stays the only CPU profile request
    t = D + settle goroutine snapshot, once ghz has ended and its connections' goroutines have gone: taken at
                   once, and again every SETTLE_POLL_S while it holds more goroutines than the one before
                   the window, until SETTLE_S after the load (a leaking service waits that long)

Each raw body goes into the record (layers/rep-NN.KIND.pb.gz) with its totals (capture/layers.py). A
layer that cannot be had becomes a note ("allocs profile unavailable: ..."), or with layers.required a
tool failure (exit 3). A profiling rate of 0 in the service is said as such, never counted as zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from perfgate.capture.layers import (
    BLOCK,
    DELTA_KINDS,
    GOROUTINE,
    MUTEX,
    LayerKind,
    fetch_delta,
    fetch_snapshot,
    goroutine_starts,
    mutex_sampling_period,
    summarize,
)
from perfgate.capture.pprof import ProfileUnavailable
from perfgate.errors import ProfileError
from perfgate.measure.cpu import ProfilePlan, RequestsSent, profile_plan
from perfgate.measure.session import Collectors, Session
from perfgate.record_parts import GoroutineCapture, LayerCapture, Repetition

GOROUTINES = "goroutines"
SETTLE_S = 0.25  # at most, after the load: the load generator's connections close and their goroutines end
SETTLE_POLL_S = 0.05
FETCH_FAILURES = (ProfileUnavailable, ProfileError, OSError, ValueError)


def layer_file(index: int, name: str) -> str:
    return f"layers/rep-{index:02d}.{name}.pb.gz"


class LayerCaptures:
    """One repetition's captures below the CPU; start() before the load, finish() after it."""

    def __init__(self, session: Session, collectors: Collectors, index: int, sent: RequestsSent) -> None:
        self.session = session
        self.sent = sent
        self.url = collectors.pprof_url if session.config.cpu.pprof_url else None
        self.index = index
        layers = session.config.layers
        self.kinds = [kind for name, kind in DELTA_KINDS.items() if layers.captured(name)]
        self.goroutines_on = layers.captured(GOROUTINES)
        self.results: dict[str, LayerCapture] = {}
        self.start_count: tuple[int, str] | str | None = None
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.load_ended = 0.0

    def _off(self, name: str) -> str | None:
        if self.url is None:
            return "set cpu.pprof_url to the service's net/http/pprof address to capture the layers below the CPU"
        if name == GOROUTINES and not self.goroutines_on:
            return "layers.enabled leaves out goroutines"
        if name in DELTA_KINDS and DELTA_KINDS[name] not in self.kinds:
            return f"layers.enabled leaves out {name}"
        return None

    def start(self) -> None:
        """The goroutines before the window, then the delta profiles' thread (it waits for t = o)."""
        if self.url is None:
            return
        if self.goroutines_on:
            self.start_count = self._snapshot("start")
        if not self.kinds:
            return
        plan = profile_plan(self.session.config)
        if isinstance(plan, str):
            for kind in self.kinds:
                self.results[kind.name] = LayerCapture(status="unavailable",
                                                       reason=f"{kind.name} profile unavailable: {plan}")
            return
        done = {kind.name: self.sent.expect() for kind in self.kinds} if plan.lead else {}
        self.thread = threading.Thread(target=self._capture, args=(plan, done), daemon=True,
                                       name="perfgate-layers")
        self.thread.start()

    def load_done(self) -> None:
        self.load_ended = time.monotonic()

    def _capture(self, plan: ProfilePlan, sent: dict[str, Callable[[], None]]) -> None:
        try:
            self._fetch_all(plan, sent)
        finally:
            for done in sent.values():
                done()

    def _fetch_all(self, plan: ProfilePlan, sent: dict[str, Callable[[], None]]) -> None:
        if self.cancel.wait(plan.offset_s):
            for kind in self.kinds:
                self.results[kind.name] = LayerCapture(
                    status="unavailable", reason=f"{kind.name} profile unavailable: load window ended early")
            return
        with ThreadPoolExecutor(max_workers=len(self.kinds), thread_name_prefix="perfgate-layer") as pool:
            futures = {kind.name: pool.submit(self._delta, kind, plan.seconds, sent.get(kind.name))
                       for kind in self.kinds}
        for name, future in futures.items():
            self.results[name] = future.result()

    def _delta(self, kind: LayerKind, seconds: int, sent: Callable[[], None] | None) -> LayerCapture:
        relative = layer_file(self.index, kind.name)
        try:
            body = fetch_delta(self.url, kind, seconds, on_sent=sent)
            path = self.session.folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            summary = summarize(body, kind, name=str(path))
        except FETCH_FAILURES as error:
            return LayerCapture(status="unavailable", reason=_reason(kind.name, error))
        off = self._rate_off(kind, summary.totals, summary.rate_off)
        if off:
            return LayerCapture(status="unavailable", reason=f"{kind.name} profile unavailable: {off}",
                                file=relative, duration_ns=summary.duration_ns)
        return LayerCapture(status="ok", file=relative, totals=summary.totals, duration_ns=summary.duration_ns)

    def _rate_off(self, kind: LayerKind, totals, block_rate_off: bool) -> str | None:
        """Why an empty profile says nothing (the service's rate is 0), or None when its zeros are real."""
        if kind is BLOCK and block_rate_off:
            return (f"block profiling is off in the service (the profile does not even hold perfgate's own "
                    f"wait in net/http/pprof): {kind.rate_hint}")
        if kind is MUTEX and not totals.get("contentions"):
            try:
                period = mutex_sampling_period(self.url)
            except FETCH_FAILURES:
                return None
            if period == 0:
                return f"mutex profiling is off in the service (sampling period=0): {kind.rate_hint}"
        return None

    def _snapshot(self, when: str) -> tuple[int, str] | str:
        """(goroutine count, file) or why not."""
        relative = layer_file(self.index, f"goroutine-{when}")
        try:
            body = fetch_snapshot(self.url, GOROUTINE)
            path = self.session.folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            return sum(goroutine_starts(body, name=str(path)).values()), relative
        except FETCH_FAILURES as error:
            return _reason("goroutine", error)

    def finish(self, repetition: Repetition) -> Repetition:
        """The repetition with its layers: the delta profiles joined, the goroutines after the window."""
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout=(self.session.config.load.duration_s or 0) + 30)
        layers = {name: LayerCapture(status="disabled", reason=why)
                  for name in DELTA_KINDS if (why := self._off(name))}
        for kind in self.kinds:
            if self.url is not None:
                layers[kind.name] = self.results.get(kind.name) or LayerCapture(
                    status="unavailable", reason=f"{kind.name} profile unavailable: the fetch did not finish")
        return replace(repetition, layers=layers, goroutines=self._goroutines())

    def _goroutines(self) -> GoroutineCapture:
        off = self._off(GOROUTINES)
        if off:
            return GoroutineCapture(status="disabled", reason=off)
        if isinstance(self.start_count, str) or self.start_count is None:
            return GoroutineCapture(status="unavailable", reason=self.start_count or "no snapshot before the window")
        end = self._settled_end(self.start_count[0])
        if isinstance(end, str):
            return GoroutineCapture(status="unavailable", reason=end, start_file=self.start_count[1],
                                    start_count=self.start_count[0])
        return GoroutineCapture(status="ok", start_file=self.start_count[1], end_file=end[1],
                                start_count=self.start_count[0], end_count=end[0])

    def _settled_end(self, start_count: int) -> tuple[int, str] | str:
        """The snapshot after the window, once it holds no more goroutines than the one before or SETTLE_S has
        passed since the load ended (the last one taken is kept). A fixed wait cost every window SETTLE_S."""
        while True:
            end = self._snapshot("end")
            left = SETTLE_S - (time.monotonic() - self.load_ended)
            if isinstance(end, str) or end[0] <= start_count or left <= 0:
                return end
            time.sleep(min(SETTLE_POLL_S, left))


def _reason(name: str, error: Exception) -> str:
    message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
    prefix = f"{name} profile unavailable: "
    if isinstance(error, ProfileUnavailable) and message.startswith(f"{error.kind} profile unavailable: "):
        message = message[len(f"{error.kind} profile unavailable: "):]
    return prefix + message


def require_layers(session: Session, repetition: Repetition) -> None:
    """layers.required turns a missing layer into a tool failure (exit 3)."""
    for name in session.config.layers.required:
        if name in ("gc", "syscalls"):  # captured beside the profiles (measure/gc.py, measure/kernel.py)
            capture = getattr(repetition, name)
        else:
            capture = repetition.goroutines if name == GOROUTINES else repetition.layers.get(name)
        if capture is None or capture.status != "ok":
            reason = capture.reason if capture is not None and capture.reason else f"{name}: not captured"
            raise ProfileUnavailable(reason.split(" profile unavailable: ", 1)[-1], kind=name)


__all__ = ["GOROUTINES", "SETTLE_S", "LayerCaptures", "layer_file", "require_layers"]

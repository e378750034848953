"""The service's CPU: its processes' CPU clocks around the load window, and the profile fetched during it.

By default the profile request is sent before the load starts (the load waits until it is on the wire, at most
LEAD_WAIT_S) and lasts N = floor(D) whole seconds (pprof takes integer seconds), so the profile covers the
window from its first call: a window's samples are what names a function that moved, and margins inside it
would leave a quarter of a 4 s window unprofiled. With cpu.start_offset_s = o the request starts at t = o
instead and lasts floor(D - 2·o) seconds, inside the window with a margin at both ends. Only one profile
request at a time reaches the service.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from perfgate.capture.pprof import ProfileUnavailable, fetch_cpu_profile
from perfgate.config import Config
from perfgate.errors import ProfileError
from perfgate.measure.session import Collectors, RepetitionFiles, Session
from perfgate.profile.parse import parse_profile
from perfgate.record_parts import CpuCapture

MIN_PROFILE_SECONDS = 1
UNAVAILABLE = "cpu profile unavailable: "
LEAD_WAIT_S = 2.0  # at most, for the profile requests to be sent before the load starts anyway


def process_cpu_ns(pids: tuple[int, ...]) -> int | None:
    """CPU time of the service's processes (all threads, exited ones too) in ns; None if any is unreadable.

    Read from each process's CPU-time clock (the scheduler's own nanosecond count), so CPU per request from
    it is exact, unlike 100 Hz profile samples or /proc/PID/stat's 10 ms clock ticks.
    """
    if not pids:
        return None
    total = 0
    for pid in pids:
        try:
            total += time.clock_gettime_ns(process_cpu_clock(pid))
        except OSError:
            return None
    return total


def process_cpu_clock(pid: int) -> int:
    """The clock id clock_getcpuclockid(3) returns for `pid`: glibc's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)."""
    cpuclock_sched = 2
    return (~pid << 3) | cpuclock_sched


def cpu_delta(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None and after >= before else None


@dataclass(frozen=True)
class ProfilePlan:
    """When a repetition's profiles run: sent before the load (lead) or offset_s into it; each lasts `seconds`."""

    offset_s: float
    seconds: int
    lead: bool


def profile_plan(config: Config) -> ProfilePlan | str:
    """When the profiles run in the load window, or why there are none."""
    duration = config.load.duration_s
    if duration is None:
        return "load.total is set; CPU profiles need a timed window (set load.duration_s)"
    offset = config.cpu.start_offset_s
    if offset is None:
        if math.floor(duration) < MIN_PROFILE_SECONDS:
            return (f"load.duration_s {duration:g} s is shorter than the {MIN_PROFILE_SECONDS} s a profile needs "
                    "(pprof takes whole seconds)")
        return ProfilePlan(0.0, math.floor(duration), lead=True)
    seconds = math.floor(duration - 2 * offset)
    if seconds < MIN_PROFILE_SECONDS:
        return (f"load.duration_s {duration:g} s leaves no whole second for a profile after a {offset:g} s offset "
                f"at each end; use at least {2 * offset + 1:g} s")
    return ProfilePlan(offset, seconds, lead=False)


class RequestsSent:
    """The profile requests a repetition's load waits for (lead plans): each counted down once, sent or failed."""

    def __init__(self) -> None:
        self._pending = 0
        self._lock = threading.Lock()
        self._all = threading.Event()
        self._all.set()

    def expect(self) -> Callable[[], None]:
        """Count one more request; the returned callable counts it down (only its first call does)."""
        with self._lock:
            self._pending += 1
            self._all.clear()
        counted = False

        def done() -> None:
            nonlocal counted
            with self._lock:
                if counted:
                    return
                counted = True
                self._pending -= 1
                if self._pending == 0:
                    self._all.set()

        return done

    def wait(self, timeout_s: float = LEAD_WAIT_S) -> bool:
        return self._all.wait(timeout_s)


class CpuCaptureThread:
    """Fetches one CPU profile inside the load window, off the main thread; never two at once."""

    def __init__(self, session: Session, collectors: Collectors, names: RepetitionFiles, sent: RequestsSent) -> None:
        self.session = session
        self.url = collectors.pprof_url
        self.names = names
        self.sent = sent
        self.result: CpuCapture = CpuCapture(status="disabled", reason=self._disabled_reason())
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None

    def _disabled_reason(self) -> str:
        if not self.session.config.cpu.enabled:
            return "cpu.enabled is false"
        return "set cpu.pprof_url to the service's net/http/pprof address to capture CPU profiles"

    def start(self) -> None:
        if self.url is None:
            return
        plan = profile_plan(self.session.config)
        if isinstance(plan, str):
            self.result = CpuCapture(status="unavailable", reason=unavailable_reason(plan))
            return
        # What stands if the request outlives the window (fetch_cpu_profile's deadline should end it first).
        self.result = CpuCapture(status="unavailable", reason=unavailable_reason(
            f"the profile request to {self.url} had not ended when the repetition did"))
        done = self.sent.expect() if plan.lead else _nothing
        self.thread = threading.Thread(target=self._capture, args=(plan, done), daemon=True)
        self.thread.start()

    def _capture(self, plan: ProfilePlan, sent: Callable[[], None]) -> None:
        try:
            self._fetch(plan, sent)
        finally:
            sent()

    def _fetch(self, plan: ProfilePlan, sent: Callable[[], None]) -> None:
        if self.cancel.wait(plan.offset_s):
            self.result = CpuCapture(status="unavailable", reason="cpu profile unavailable: load window ended early")
            return
        self.result = fetch_into_record(self.session, self.url, plan.seconds, self.names.cpu, on_sent=sent)

    def finish(self) -> CpuCapture:
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout=(self.session.config.load.duration_s or 0) + 30)
        return self.result


def fetch_into_record(session: Session, url: str, seconds: int, file: str, *,
                      on_sent: Callable[[], None]) -> CpuCapture:
    """A CPU profile of `seconds` from `url` (one request at a time per service), saved as `file` in the session's
    record folder: its CpuCapture, "ok" or why it is unavailable."""
    with session.profile_lock:
        try:
            body = fetch_cpu_profile(url, seconds, on_sent=on_sent)
            path = session.folder / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            profile = parse_profile(path)
            return CpuCapture(status="ok", file=file, total_cpu_ns=profile.total, duration_ns=profile.duration_ns)
        except (ProfileUnavailable, ProfileError) as error:
            return CpuCapture(status="unavailable", reason=unavailable_reason(error.message))
        except (OSError, ValueError) as error:  # e.g. the record folder vanished; never a silent "disabled"
            return CpuCapture(status="unavailable", reason=unavailable_reason(f"{type(error).__name__}: {error}"))


def _nothing() -> None:
    return None


def unavailable_reason(message: str) -> str:
    return message if message.startswith(UNAVAILABLE) else UNAVAILABLE + message

"""One repetition's garbage collections (capture/gc.py): read from the service's gctrace lines when perfgate
started it (the bytes its log grew by over the window), else from expvar's memstats before and after the
window. `layers.enabled` without "gc" turns it off; `layers.required` with it makes a missing capture exit 3.
"""

from __future__ import annotations

from perfgate.capture.gc import GcUnavailable, GcWindow, fetch_memstats, log_size, memstats_window, read_gctrace
from perfgate.measure.session import Collectors, Session
from perfgate.record_parts import GcCapture

GC = "gc"


def gc_file(index: int, source: str) -> str:
    return f"gc/rep-{index:02d}.gctrace.log" if source == "gctrace" else f"gc/rep-{index:02d}.vars.json"


class GcCollector:
    """start() just before the load, stop() just after it, capture() once the repetition is written."""

    def __init__(self, session: Session, collectors: Collectors, index: int) -> None:
        self.session, self.index = session, index
        self.log = collectors.gc_log
        self.url = collectors.pprof_url if session.config.cpu.pprof_url else None
        self.enabled = session.config.layers.captured(GC)
        self.source = "gctrace" if self.log is not None else "expvar" if self.url is not None else None
        self.start_mark: int | dict[str, int] | None = None
        self.result: GcWindow | str | None = None

    def start(self) -> None:
        if not self.enabled or self.source is None:
            return
        try:
            self.start_mark = log_size(self.log) if self.log is not None else fetch_memstats(self.url)
        except GcUnavailable as error:
            self.result = str(error)

    def stop(self) -> None:
        if self.start_mark is None or self.result is not None:
            return
        try:
            if self.log is not None:
                assert isinstance(self.start_mark, int)
                self.result = read_gctrace(self.log, self.start_mark, log_size(self.log))
            else:
                assert isinstance(self.start_mark, dict)
                self.result = memstats_window(self.start_mark, fetch_memstats(self.url))
        except GcUnavailable as error:
            self.result = str(error)

    def capture(self) -> GcCapture:
        if not self.enabled:
            return GcCapture(status="disabled", reason="layers.enabled leaves out gc")
        if self.source is None:
            return GcCapture(status="unavailable", reason=(
                "GC figures unavailable: perfgate did not start the service (no GODEBUG=gctrace=1 output to "
                "read) and cpu.pprof_url is not set (no expvar /debug/vars to read)"))
        if not isinstance(self.result, GcWindow):
            why = self.result or "the load window ended before the GC figures were read"
            return GcCapture(status="unavailable", source=self.source, reason=f"GC figures unavailable: {why}")
        relative = gc_file(self.index, self.source)
        path = self.session.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.result.raw, encoding="utf-8")
        return GcCapture(status="ok", source=self.source, file=relative, cycles=self.result.cycles,
                         pause_ns=self.result.pause_ns, cpu_ns=self.result.cpu_ns)


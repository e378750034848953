"""The contention view of one load window (capture/contention.py), watched around the load of every build
loaded in it, and what the live progress line says about it."""

from __future__ import annotations

from collections.abc import Sequence

from perfgate.capture.contention import Build, ContentionWatch, ContentionWindow
from perfgate.capture.runq import RunqCollector
from perfgate.compare.contention import WindowFigures, brief
from perfgate.config import Config
from perfgate.measure.session import Collectors


def watch_window(collectors: Sequence[Collectors], runq: RunqCollector | None) -> ContentionWatch:
    """One watch for the builds loaded together; bpftrace (when it runs) counts as perfgate's own work."""
    helpers = (runq.pid,) if runq is not None and runq.pid else ()
    return ContentionWatch([Build(side.service_pids) for side in collectors], helpers=helpers)


def starved_text(window: ContentionWindow | None, index: int, config: Config) -> str:
    """' (starved of CPU: other processes 45 %)' when one side alone can see it was, else ''."""
    if window is None:
        return ""
    causes = brief(WindowFigures.of(index, window), config.compare.contention)
    return f" (starved of CPU: {causes})" if causes else ""

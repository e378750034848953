"""The kernel view of one load window: the run-queue collector attached before the load, stopped after it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from perfgate.capture.runq import RunqCollector, RunqUnavailable
from perfgate.config import Config
from perfgate.measure.session import Collectors
from perfgate.record import RunqCapture


def start_runq(config: Config, collectors: Collectors, raw_path: Path) -> tuple[RunqCollector | None, RunqCapture]:
    if not config.kernel.enabled:
        return None, RunqCapture(status="disabled", reason="kernel.enabled is false")
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    collector = RunqCollector(service_comm=collectors.service_comm, service_pids=collectors.service_pids,
                              depth_interval_ms=config.kernel.depth_interval_ms, raw_path=raw_path)
    try:
        collector.start()
    except RunqUnavailable as error:
        if config.kernel.required:
            raise
        return None, RunqCapture(status="unavailable", reason=error.message)
    return collector, RunqCapture(status="ok", file=str(raw_path.relative_to(raw_path.parent.parent)))


def stop_runq(collector: RunqCollector | None, capture: RunqCapture) -> RunqCapture:
    if collector is None:
        return capture
    try:
        stats = collector.stop()
    except RunqUnavailable as error:
        return replace(capture, status="unavailable", reason=error.message)
    status = "ok" if stats.status == "ok" else "partial"
    return replace(capture, status=status, stats=stats, reason=None if status == "ok" else stats.note)

"""The processes running on this machine, found through /proc."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def pids_where(test: Callable[[Path], bool]) -> set[int]:
    """The pids whose /proc/PID folder passes `test` (processes that end while it looks are passed over)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and test(entry):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids

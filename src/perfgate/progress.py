"""What a person (or a CI log) sees while perfgate measures.

On a terminal: one live line with the repetition, a bar and the time left. Elsewhere (CI logs):
plain lines, one per event, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BAR_WIDTH = 24


class Progress:
    def __init__(self, *, steps: int, step_seconds: float, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.steps = steps
        self.step_seconds = step_seconds
        self.done = 0
        self._label = ""
        self._started = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def info(self, message: str) -> None:
        self._clear_line()
        print(f"perfgate: {message}", file=self.stream, flush=True)

    def begin(self, label: str) -> None:
        self._label = label
        self._started = time.monotonic()
        if not self.live:
            self.info(f"{label} started ({self._eta():.0f} s left)")
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def end(self, summary: str = "") -> None:
        self.done += 1
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        self.info(f"{self._label} done{': ' + summary if summary else ''}")

    def _eta(self) -> float:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        remaining_steps = max(self.steps - self.done, 0)
        return max(remaining_steps * self.step_seconds - elapsed, 0.0)

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            elapsed = time.monotonic() - self._started
            fraction = min(elapsed / self.step_seconds, 1.0) if self.step_seconds else 1.0
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r\x1b[2Kperfgate: {self._label} [{bar}] {self._eta():4.0f} s left")
            self.stream.flush()

    def _clear_line(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")

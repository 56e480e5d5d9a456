"""A one-line progress bar on stderr for long QC rebuilds (no dependency for one line of text)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """`done/total [#####.....] rate/s ETA`; redrawn at most every `every_s` seconds, and at the end."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, every_s: float = 0.2):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._drawn >= self.every_s or self.done >= self.total:
            self._drawn = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        fraction = self.done / self.total if self.total else 1.0
        filled = int(30 * fraction)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        return (
            f"{self.label} {self.done}/{self.total} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{rate:.1f}/s ETA {eta:.0f} s"
        ).strip()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()

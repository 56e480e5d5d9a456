"""The one progress bar of long batch commands (archive import, QC rebuild), on stderr.

`<label> <done>/<total> <unit> [#####.....] <rate>/s ETA <s>[, <detail>]`: redrawn in place on a
terminal (at most every `every_s` seconds, and at the end); elsewhere (a log file, a pipe) one line
every 10 % and at the end, so a log does not fill with redraws. No dependency for one line of text.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30


class ProgressBar:
    def __init__(
        self,
        total: int,
        label: str = "",
        stream: TextIO | None = None,
        every_s: float = 0.2,
        unit: str = "",
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.done = 0
        self._interactive = self.stream.isatty()
        self._started = time.monotonic()
        self._drawn = float("-inf")
        self._last_tenth = -1

    def advance(self, count: int = 1, detail: str = "") -> None:
        """`count` more done; `detail`: what else to say on the line (e.g. "31 histograms, 2 failed")."""
        self.done += count
        now = time.monotonic()
        finished = self.done >= self.total
        if self._interactive:
            if now - self._drawn < self.every_s and not finished:
                return
            self._drawn = now
            self.stream.write("\r" + self.line(now, detail))
        else:
            tenth = int(10 * self.done / self.total) if self.total else 10
            if tenth == self._last_tenth and not finished:
                return
            self._last_tenth = tenth
            self.stream.write(self.line(now, detail) + "\n")
        self.stream.flush()

    def line(self, now: float | None = None, detail: str = "") -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(_WIDTH * fraction)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        count = f"{self.done}/{self.total}" + (f" {self.unit}" if self.unit else "")
        text = f"{self.label} {count} [{'#' * filled}{'.' * (_WIDTH - filled)}] {rate:.1f}/s ETA {eta:.0f} s"
        return (f"{text}, {detail}" if detail else text).strip()

    def close(self) -> None:
        """End the line on a terminal (elsewhere every line already ended)."""
        if self._interactive:
            self.stream.write("\n")
            self.stream.flush()

"""The progress bar of the batch commands: a line per tenth in a log, redraws in place on a terminal."""

from __future__ import annotations

import io

from pipeline.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_one_line_per_tenth_and_the_last_one_complete():
    log = io.StringIO()
    bar = ProgressBar(20, "import", log, unit="files")
    for done in range(1, 21):
        bar.advance(detail=f"{done * 200:,} histograms, 0 failed")
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 11  # tenths 0 to 10, each once
    assert lines[-1].startswith(f"import 20/20 files [{'#' * 30}] ")
    assert lines[-1].endswith(", 4,000 histograms, 0 failed")
    assert lines[5].startswith(f"import 10/20 files [{'#' * 15}{'.' * 15}] ")


def test_on_a_terminal_redrawn_in_place_at_most_every_interval_and_at_the_end():
    screen = Terminal()
    bar = ProgressBar(1000, "qc rebuild", screen, every_s=3600.0, unit="snapshots")
    for _ in range(1000):
        bar.advance()
    bar.close()
    text = screen.getvalue()
    assert text.count("\r") == 2  # the first advance, then only the end (the interval never passed)
    assert text.endswith("\n") and "qc rebuild 1000/1000 snapshots [" in text.split("\r")[-1]

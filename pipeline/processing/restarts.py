"""Merger restarts inside a run: a cumulative merger that restarts starts every histogram from zero.

Subtracting a snapshot taken before the restart from one taken after would then give nonsense
(negative bins, or what was filled after the restart minus what was there before). A restart shows as
entries going down: between two consecutive snapshots of one run, a cumulative histogram's entries
never decrease otherwise. One histogram could be damaged, or replaced; a restart takes them all, so
the rule asks for most of them.
"""

from __future__ import annotations

from collections.abc import Mapping


def merger_restarted(before: Mapping[str, float], after: Mapping[str, float]) -> bool:
    """Whether a cumulative merger restarted between two consecutive snapshots (entries by name):
    at least half of the histograms both hold, among those that had entries before, hold fewer now."""
    had_entries = [name for name, entries in after.items() if before.get(name, 0.0) > 0.0]
    if not had_entries:
        return False
    fewer = sum(after[name] < before[name] for name in had_entries)
    return 2 * fewer >= len(had_entries)

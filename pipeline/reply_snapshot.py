"""The receiver's rules for turning one decoded merger reply into one snapshot, in one place.

Used by the live receiver and by the archive import, so an imported file is stored exactly as if a
receiver had received its objects: the same objects kept, the same names, the same HLT mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.histogram import Histogram
from pipeline.store_schema import HLT_MODE_PATTERN, MAX_RUN, SnapshotMeta
from pipeline.wire.messages import Reply

log = logging.getLogger(__name__)

UNKNOWN_HLT_MODE = "U"


@dataclass(frozen=True)
class ReplySnapshot:
    """What to store for one reply: `meta` is None when nothing is (see `skip_reason`)."""

    meta: SnapshotMeta | None
    histograms: list[Histogram] = field(default_factory=list)
    # Names sent more than once in the reply: the first object of each is kept, the others rejected.
    repeated_names: list[str] = field(default_factory=list)
    skip_reason: str | None = None


def snapshot_from_reply(
    reply: Reply,
    subsystem: str,
    snapshot_time_utc: datetime,
    merger_reset: bool = False,
    th1_version: int | None = None,
) -> ReplySnapshot:
    """The snapshot a receiver stores for `reply`, or why it stores none (run <= 0 or beyond the
    store's int64 column, no objects). `th1_version`: the class version its objects came in
    (`wire.class_version.reply_th1_version`), recorded for replays."""
    histograms, repeated = first_of_each_name(reply.histograms)
    if reply.run <= 0:
        reason = f"run {reply.run} is not a run number (0 is sent between runs)"
        return ReplySnapshot(None, [], repeated, reason)
    if reply.run > MAX_RUN:  # a corrupt INFO: pyarrow would raise OverflowError in the store
        return ReplySnapshot(None, [], repeated, f"run number {reply.run} is beyond {MAX_RUN}")
    if not histograms:
        return ReplySnapshot(None, [], repeated, "no histogram left to store")
    meta = SnapshotMeta(
        run=reply.run,
        subsystem=subsystem,
        snapshot_time_utc=snapshot_time_utc,
        hlt_mode=storable_hlt_mode(reply.hlt_mode),
        beam_type=reply.beam_type,
        merger_reset=merger_reset,
        th1_version=th1_version,
    )
    return ReplySnapshot(meta, histograms, repeated)


def first_of_each_name(histograms: list[Histogram]) -> tuple[list[Histogram], list[str]]:
    """The histograms without repeated names (the first of each is kept), and the repeated names.

    One snapshot holds one histogram per name; storing none because of one repeat would lose the
    whole reply.
    """
    kept: dict[str, Histogram] = {}
    repeated = []
    for histogram in histograms:
        if histogram.name in kept:
            repeated.append(histogram.name)
        else:
            kept[histogram.name] = histogram
    return list(kept.values()), repeated


def storable_hlt_mode(mode: str) -> str:
    """The reply's HLT mode, or "U" (unknown) for one the store cannot name a file after."""
    if HLT_MODE_PATTERN.fullmatch(mode):  # fullmatch: "$" alone would let "B\n" through
        return mode
    log.warning("HLT_MODE %r is not alphanumeric, storing as %s", mode, UNKNOWN_HLT_MODE)
    return UNKNOWN_HLT_MODE

"""What becomes of a decoded reply: the rules every source applies before a snapshot is stored.

A merger reply pulled over ZeroMQ (`pipeline.receiver`) and a ROOT file pushed over HTTP
(`pipeline.push`) both arrive as a `Reply`; `store_reply` decides, in one place, what is stored and
what is counted instead: rejected and unsupported objects are counted and logged, a repeated name keeps
the first object, run 0 (between runs), a negative run or a reply with nothing left is skipped, an HLT
mode the store cannot name a file after becomes "U". The counters go into the source's `ReceiverStatus`.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.histogram import Histogram
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.store_schema import HLT_MODE_PATTERN
from pipeline.wire.messages import Reply

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    STORED = "stored"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"  # run <= 0 or no objects: nothing to store, as in the original
    FAILED = "failed"  # the store refused the snapshot


@dataclass
class IngestResult:
    """What `store_reply` did with one reply, for a caller that reports it (the HTTP push answers it)."""

    outcome: Outcome
    snapshot_id: str | None = None
    stored_names: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # every refused object, with its reason
    unsupported: list[str] = field(default_factory=list)  # of those, classes the store does not hold
    reason: str = ""  # why nothing was stored (SKIPPED, FAILED)


def store_reply(
    store: SnapshotStore,
    status: ReceiverStatus,
    reply: Reply,
    snapshot_time_utc: datetime,
    merger_reset: bool = False,
) -> IngestResult:
    """Store the reply's histograms as one snapshot of `status.subsystem`, counting what is refused."""
    subsystem = status.subsystem
    result = IngestResult(Outcome.SKIPPED, unsupported=list(reply.unsupported))
    result.rejected = _count_rejected(status, reply)
    # Every reply says which run the merger is on, run 0 included: the processing takes "a live
    # receiver still reports this run" as "the run is ongoing", so a stale value would keep a
    # finished run ongoing for as long as its receiver lives.
    status.last_run = reply.run
    histograms = _first_of_each_name(status, reply, result.rejected)
    if reply.run <= 0 or not histograms:
        if reply.run < 0:
            log.warning("%s: negative run number %d in INFO, reply skipped", subsystem, reply.run)
        status.skipped_replies += 1
        result.reason = (
            f"run {reply.run} is not a run number (0 is sent between runs)"
            if reply.run <= 0
            else "no histogram left to store"
        )
        log.info("%s: nothing to store (run %d, %d objects)", subsystem, reply.run, len(histograms))
        return result
    meta = SnapshotMeta(
        run=reply.run,
        subsystem=subsystem,
        snapshot_time_utc=snapshot_time_utc,
        hlt_mode=_hlt_mode(subsystem, reply),
        beam_type=reply.beam_type,
        merger_reset=merger_reset,
    )
    try:
        result.snapshot_id = store.write_snapshot(meta, histograms)
    except (OSError, ValueError) as error:
        status.record_error(f"store failed: {error}")
        log.error("%s: %s", subsystem, status.last_error)
        result.outcome, result.reason = Outcome.FAILED, status.last_error
        return result
    status.record_snapshot(meta.snapshot_time_utc.timestamp())
    status.histograms_stored += len(histograms)
    result.outcome = Outcome.STORED
    result.stored_names = sorted(histogram.name for histogram in histograms)
    return result


def _count_rejected(status: ReceiverStatus, reply: Reply) -> list[str]:
    rejected = reply.rejected
    for reason in rejected:
        log.warning("%s: rejected: %s", status.subsystem, reason)
    status.rejected_objects += len(rejected)
    status.unsupported_objects += len(reply.unsupported)
    if rejected:
        status.record_error(rejected[-1])
    return list(rejected)


def _first_of_each_name(status: ReceiverStatus, reply: Reply, rejected: list[str]) -> list[Histogram]:
    """The reply's histograms without repeated names (the first is kept, the others rejected).

    One snapshot holds one histogram per name; storing none because of one repeat would lose
    the whole reply.
    """
    kept: dict[str, Histogram] = {}
    for histogram in reply.histograms:
        if histogram.name not in kept:
            kept[histogram.name] = histogram
            continue
        status.rejected_objects += 1
        status.record_error(f"duplicate object name {histogram.name!r} in one reply, kept the first")
        rejected.append(status.last_error)
        log.warning("%s: rejected: %s", status.subsystem, status.last_error)
    return list(kept.values())


def _hlt_mode(subsystem: str, reply: Reply) -> str:
    """The reply's HLT mode, or "U" (unknown) for one the store cannot name a file after."""
    mode = reply.hlt_mode
    if HLT_MODE_PATTERN.fullmatch(mode):  # fullmatch: "$" alone would let "B\n" through
        return mode
    log.warning("%s: HLT_MODE %r in INFO is not alphanumeric, storing as U", subsystem, mode)
    return "U"

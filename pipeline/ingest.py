"""What becomes of a decoded reply: the rules every source applies before a snapshot is stored.

A merger reply pulled over ZeroMQ (`pipeline.receiver`) and a ROOT file pushed over HTTP
(`pipeline.push`) both arrive as a `Reply`; `store_reply` decides, in one place, what is stored and
what is counted instead: rejected and unsupported objects are counted and logged, a repeated name keeps
the first object, run 0 (between runs), a negative run or a reply with nothing left is skipped, an HLT
mode the store cannot name a file after becomes "U" (those plans are `pipeline.reply_snapshot`, which the
archive import uses too). The counters go into the source's `ReceiverStatus`.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.histogram import Histogram
from pipeline.reply_snapshot import snapshot_from_reply
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.store_schema import MAX_RUN, histograms_to_table
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
    th1_version: int | None = None,
) -> IngestResult:
    """Store the reply's histograms as one snapshot of `status.subsystem`, counting what is refused.
    `th1_version`: the class version its objects came in, recorded in the snapshot for replays."""
    subsystem = status.subsystem
    result = IngestResult(Outcome.SKIPPED, unsupported=list(reply.unsupported))
    result.rejected = _count_rejected(status, reply)
    # Every reply says which run the merger is on, run 0 included: the processing takes "a live
    # receiver still reports this run" as "the run is ongoing", so a stale value would keep a
    # finished run ongoing for as long as its receiver lives.
    status.record_run(reply.run, snapshot_time_utc.timestamp())
    planned = snapshot_from_reply(reply, subsystem, snapshot_time_utc, merger_reset, th1_version)
    for name in planned.repeated_names:
        status.rejected_objects += 1
        status.record_error(f"duplicate object name {name!r} in one reply, kept the first")
        result.rejected.append(status.last_error)
        log.warning("%s: rejected: %s", subsystem, status.last_error)
    meta, histograms = planned.meta, planned.histograms
    if meta is None:
        if reply.run < 0:
            log.warning("%s: negative run number %d in INFO, reply skipped", subsystem, reply.run)
        elif reply.run > MAX_RUN:  # a corrupt INFO, shown on the status page
            status.record_error(f"{planned.skip_reason}, reply skipped")
            log.warning("%s: %s", subsystem, status.last_error)
        status.skipped_replies += 1
        result.reason = planned.skip_reason or ""
        log.info("%s: nothing to store: %s", subsystem, result.reason)
        return result
    try:
        result.snapshot_id = store.write_snapshot(meta, histograms)
    except OSError as error:  # disk full, folder unwritable: nothing of the reply can be stored
        return _failed(status, result, f"store failed: {error}")
    except Exception as error:  # the data: find the objects the store refuses and store the rest
        log.warning("%s: store refused the reply (%s); checking its objects one by one", subsystem, error)
        histograms = _storable(status, meta, histograms, result.rejected)
        if not histograms:
            return _failed(status, result, f"store failed: no object of the reply can be stored ({error})")
        try:
            result.snapshot_id = store.write_snapshot(meta, histograms)
        except Exception as second_error:
            return _failed(status, result, f"store failed: {type(second_error).__name__}: {second_error}")
    status.record_snapshot(meta.snapshot_time_utc.timestamp())
    status.histograms_stored += len(histograms)
    result.outcome = Outcome.STORED
    result.stored_names = sorted(histogram.name for histogram in histograms)
    return result


def _failed(status: ReceiverStatus, result: IngestResult, reason: str) -> IngestResult:
    status.record_error(reason)
    log.error("%s: %s", status.subsystem, reason)
    result.outcome, result.reason = Outcome.FAILED, reason
    return result


def _storable(
    status: ReceiverStatus, meta: SnapshotMeta, histograms: list[Histogram], rejected: list[str]
) -> list[Histogram]:
    """The histograms the store can convert, each tried alone; the others rejected and counted.

    Only runs after the store refused a whole reply: one object it cannot hold must not cost the
    others (as a title that was not UTF-8 once did, on every request).
    """
    kept = []
    for histogram in histograms:
        try:
            histograms_to_table("check", meta, [histogram])
        except Exception as error:
            status.rejected_objects += 1
            status.record_error(f"store cannot hold {histogram.name!r}: {type(error).__name__}: {error}")
            rejected.append(status.last_error)
            log.warning("%s: rejected: %s", status.subsystem, status.last_error)
        else:
            kept.append(histogram)
    return kept


def _count_rejected(status: ReceiverStatus, reply: Reply) -> list[str]:
    rejected = reply.rejected
    for reason in rejected:
        log.warning("%s: rejected: %s", status.subsystem, reason)
    status.rejected_objects += len(rejected)
    status.unsupported_objects += len(reply.unsupported)
    if rejected:
        status.record_error(rejected[-1])
    return list(rejected)

"""One archive file -> one snapshot, exactly as a receiver would have stored the file's objects.

The file's objects go through the receiver's path: wrapped as the merger's TMessages (class versions
kept), decoded by `decode_reply` with the file's own streamers as the schema, kept or rejected by
`snapshot_from_reply`, and written by the store under the snapshot's own id, so that importing the same
file again adds nothing. This is the unit of work a Dask worker runs; it returns only counts and
reasons, never histograms.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.archive.names import ArchiveFile
from pipeline.reply_snapshot import snapshot_from_reply
from pipeline.store import SnapshotStore
from pipeline.store_schema import SnapshotMeta, format_snapshot_id
from pipeline.wire.class_version import reply_th1_version
from pipeline.wire.messages import build_reply, decode_reply, format_info
from pipeline.wire.rootfile import FileObjects, read_file_objects
from pipeline.wire.run2_layout import RUN2_TH1_VERSION
from pipeline.wire.tmessage import StreamerContext, encode_streamer_block, save_streamer_block

log = logging.getLogger(__name__)

STORED, ALREADY_STORED, FAILED = "stored", "already stored", "failed"
_REASONS_SHOWN = 3
STREAMERS_FOLDER = "streamers"  # where receivers keep the schema blocks they got (`Receiver.streamer_dir`)


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file: `status` is STORED, ALREADY_STORED or FAILED (with `reason`)."""

    path: str
    status: str
    snapshot_id: str | None = None
    run: int | None = None  # the run of the snapshot stored
    n_histograms: int = 0
    rejected_objects: int = 0
    reason: str = ""
    cpu_s: float = 0.0  # CPU time the worker spent on the file (where the time goes, for benchmarks)


def import_file(entry: ArchiveFile, data_dir: str | Path) -> FileOutcome:
    """Store `entry` as one snapshot in the store at `data_dir`; never raises for a bad file."""
    started = time.process_time()
    outcome = _import(entry, Path(data_dir))
    return replace(outcome, cpu_s=time.process_time() - started)


# (data folder, streamer record digest) whose schema this process already kept.
_KEPT_SCHEMAS: set[tuple[Path, str]] = set()


def _keep_schema(data_dir: Path, contents: FileObjects) -> None:
    """Keep a Run-2 file's streamers in `<data_dir>/streamers/`, as a receiver keeps the schema it got,
    so that a replay of the run can send them with the objects in their original class versions."""
    key = (data_dir, contents.streamer_digest)
    if key in _KEPT_SCHEMAS:
        return
    try:
        save_streamer_block(data_dir / STREAMERS_FOLDER, encode_streamer_block(contents.streamer_infos))
    except OSError as error:  # the snapshot is still worth storing; a replay then lacks the schema
        log.warning("cannot keep the schema of a Run-2 file in %s: %s", data_dir / STREAMERS_FOLDER, error)
        return
    _KEPT_SCHEMAS.add(key)


def _import(entry: ArchiveFile, data_dir: Path) -> FileOutcome:
    path = str(entry.path)
    store = SnapshotStore(data_dir)
    hlt_mode = entry.hlt_mode or "U"
    planned_id = format_snapshot_id(SnapshotMeta(entry.run, entry.subsystem, entry.snapshot_time_utc))
    if store.has_snapshot(planned_id):  # a second import: nothing to read
        return FileOutcome(path, ALREADY_STORED, planned_id)
    try:
        contents = read_file_objects(entry.path)
    except Exception as error:  # uproot raises many kinds for a damaged file; each costs the file only
        return FileOutcome(path, FAILED, reason=f"unreadable ROOT file: {type(error).__name__}: {error}")
    context = StreamerContext()
    context.add_streamer_infos(contents.streamer_infos)
    frames = build_reply(format_info(entry.run, hlt_mode, ""), list(contents.objects.items()))
    reply = decode_reply(frames, context)
    th1_version = reply_th1_version(frames)  # as a receiver records it
    planned = snapshot_from_reply(reply, entry.subsystem, entry.snapshot_time_utc, th1_version=th1_version)
    rejected = contents.unreadable + reply.rejected + [f"repeated name {n!r}" for n in planned.repeated_names]
    if planned.meta is None:
        details = "; ".join(rejected[:_REASONS_SHOWN]) or "the file holds no objects"
        reason = f"{planned.skip_reason}: {details}"
        return FileOutcome(path, FAILED, rejected_objects=len(rejected), reason=reason)
    if th1_version == RUN2_TH1_VERSION:
        _keep_schema(data_dir, contents)
    try:
        snapshot_id = store.write_snapshot_once(planned.meta, planned.histograms)
    except (OSError, ValueError) as error:
        return FileOutcome(path, FAILED, rejected_objects=len(rejected), reason=f"store failed: {error}")
    if snapshot_id is None:  # another writer stored it meanwhile
        return FileOutcome(path, ALREADY_STORED, planned_id)
    reason = "; ".join(rejected[:_REASONS_SHOWN])
    return FileOutcome(path, STORED, snapshot_id, entry.run, len(planned.histograms), len(rejected), reason)

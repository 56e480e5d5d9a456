"""The one start-up cleanup of a data folder: temp files that killed writers left behind.

Every process that writes into a data folder (receivers, the QC service, the dashboard with its push
route, thresholds, users and secret, the archive import) calls `remove_stale_temp_files` once at
start. It looks in every folder this project writes with `atomic_files.write_file` and removes only
the temp files of writers that no longer run, so processes sharing the folder may call it at any time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pipeline import atomic_files
from pipeline.archive.import_file import STREAMERS_FOLDER
from pipeline.qc.results import remove_stale_temp_files as remove_stale_qc_temp_files
from pipeline.status import status_dir
from pipeline.store import SnapshotStore

log = logging.getLogger(__name__)


def remove_stale_temp_files(data_dir: Path, other_folders: Iterable[Path] = ()) -> int:
    """Remove the temp files of dead writers under `data_dir` (snapshots, QC results and state,
    receiver status and heartbeats, streamers, the session secret) and in `other_folders` (e.g. the
    users file's folder); returns how many. An unreadable folder is logged, never raised: it must
    not stop a process from starting."""
    data_dir = Path(data_dir)
    own_folders = [data_dir, status_dir(data_dir), data_dir / STREAMERS_FOLDER, *other_folders]
    try:
        removed = SnapshotStore(data_dir).remove_stale_temp_files()
        removed += remove_stale_qc_temp_files(data_dir)
        removed += atomic_files.remove_stale_temp_files(own_folders)
    except OSError as error:
        log.warning("cannot clean temp files in %s: %s", data_dir, error)
        return 0
    if removed:
        log.info("removed %d temp files of writers that died in %s", removed, data_dir)
    return removed

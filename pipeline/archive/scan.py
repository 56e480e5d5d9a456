"""Listing an archive tree: which files to import (with their HLT modes resolved), which to skip and why.

Only names are read here (and each run's runInfo.yaml once), never a ROOT file: the listing runs on the
client, the files are read by the workers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from pipeline.archive.names import RUN_INFO, ArchiveFile, NotImported, parse_archive_name
from pipeline.reply_snapshot import UNKNOWN_HLT_MODE
from pipeline.store_schema import SnapshotMeta, format_snapshot_id

log = logging.getLogger(__name__)


@dataclass
class ArchiveScan:
    """The import plan: files in path order, and (path, reason) of every ROOT file left out."""

    files: list[ArchiveFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_root_files(self) -> int:
        return len(self.files) + len(self.skipped) + len(self.failed)


def scan_archive(source: Path) -> ArchiveScan:
    """Every `.root` file under `source` (dot-files excluded, as the original did), in path order.

    Two files that would become the same snapshot (same subsystem, run and second, e.g. a flat file and
    its moved copy) are imported once, the first in path order; the other is skipped, naming it.
    """
    scan = ArchiveScan()
    modes: dict[Path, str] = {}
    first_of_id: dict[str, Path] = {}
    for path in _root_files(Path(source)):
        try:
            entry = parse_archive_name(path)
        except NotImported as reason:
            (scan.skipped if reason.skipped else scan.failed).append((str(path), str(reason)))
            continue
        if entry.hlt_mode is None:
            run_folder = path.parent.parent
            if run_folder not in modes:
                modes[run_folder] = _run_info_mode(run_folder / RUN_INFO)
            entry = replace(entry, hlt_mode=modes[run_folder])
        snapshot_id = format_snapshot_id(SnapshotMeta(entry.run, entry.subsystem, entry.snapshot_time_utc))
        if snapshot_id in first_of_id:
            scan.skipped.append((str(path), f"same snapshot ({snapshot_id}) as {first_of_id[snapshot_id]}"))
            continue
        first_of_id[snapshot_id] = path
        scan.files.append(entry)
    return scan


def _root_files(source: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(source):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found.extend(Path(folder) / name for name in names if name.endswith(".root") and name[0] != ".")
    return sorted(found)


def _run_info_mode(path: Path) -> str:
    """`hltMode` of a run's runInfo.yaml; U when the file is missing, unreadable or says nothing."""
    try:
        info = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return UNKNOWN_HLT_MODE
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        log.warning("%s is unreadable (%s): HLT mode U for its files", path, error)
        return UNKNOWN_HLT_MODE
    mode = info.get("hltMode") if isinstance(info, dict) else None
    return str(mode) if mode else UNKNOWN_HLT_MODE

"""The objects of a ROOT file as the merger would send them: one TMessage per object, class versions kept.

Shared by the emulator's file replay and the archive import, so a file's objects reach the decoder the
same way whether they arrive over ZeroMQ or from disk. Objects in folders are named by their full path
("TPCQA/h"), which also becomes their fName: that is the name the merger had before a writer turned the
"/" into a folder (as our export does).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uproot

from pipeline.wire.tmessage import tmessage_from_root_key

log = logging.getLogger(__name__)

# Folders and file bookkeeping: their contents are listed by the recursive keys, or they are no objects.
_NOT_OBJECTS = ("TStreamerInfo", "TDirectory", "TDirectoryFile", "TKey")


@dataclass
class RootFileObjects:
    """What one ROOT file holds, ready for the wire."""

    objects: dict[str, bytes] = field(default_factory=dict)  # full path -> TMessage
    class_names: dict[str, str] = field(default_factory=dict)  # full path -> ROOT class
    streamer_infos: list[Any] = field(default_factory=list)  # the file's TStreamerInfo models
    unreadable: list[str] = field(default_factory=list)  # "<path>: <reason>" per object left out
    streamer_digest: str = ""  # sha1 of the file's streamer record: files with equal ones share a schema

    @property
    def class_versions(self) -> dict[str, int]:
        """Class name -> the version the file's streamers describe (the newest, if several)."""
        versions: dict[str, int] = {}
        for info in self.streamer_infos:
            versions[info.name] = max(versions.get(info.name, 0), int(info.class_version))
        return versions


def read_root_objects(path: Path) -> RootFileObjects:
    """Every object of the ROOT file at `path` (subfolders included), newest cycle of each name.

    Raises what uproot raises for a file that cannot be opened at all (OSError, ValueError, ...);
    an object that cannot be wrapped is listed in `unreadable` and the others are kept.
    """
    found = RootFileObjects()
    # Memory-mapped: uproot's default source opens the file again for every key it reads.
    with uproot.open(Path(path), handler=uproot.source.file.MemmapSource) as root_file:
        for name in root_file.keys(recursive=True, cycle=False):
            stored = root_file.key(name)
            if stored.fClassName in _NOT_OBJECTS:
                continue
            try:
                found.objects[name] = tmessage_from_root_key(stored, name=name)
            except Exception as error:  # one odd key must cost that object only
                found.unreadable.append(f"{name}: {type(error).__name__}: {error}")
                log.warning("%s: cannot read %s: %s", path, name, error)
                continue
            found.class_names[name] = stored.fClassName
        found.streamer_infos, found.streamer_digest = _streamer_infos(root_file.file)
    return found


# The files of one receiver (one ROOT version, the same classes) carry the same streamer record, and
# reading it costs as much as a tenth of a file's objects: parsed once per process, keyed by its bytes.
_STREAMERS_BY_RECORD: dict[bytes, tuple[list[Any], str]] = {}
_MAX_RECORDS = 64


def _streamer_infos(root_file: Any) -> tuple[list[Any], str]:
    """The file's TStreamerInfo models (uproot's `file.streamers`) and the sha1 of their record."""
    start = int(root_file.fSeekInfo)
    record = root_file.source.chunk(start, start + int(root_file.fNbytesInfo)).raw_data.tobytes()
    cached = _STREAMERS_BY_RECORD.get(record)
    if cached is None:
        infos = [info for versions in root_file.streamers.values() for info in versions.values()]
        if len(_STREAMERS_BY_RECORD) >= _MAX_RECORDS:
            _STREAMERS_BY_RECORD.clear()
        cached = _STREAMERS_BY_RECORD[record] = (infos, hashlib.sha1(record).hexdigest())
    return cached

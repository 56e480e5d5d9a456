"""A whole ROOT file's objects as the TMessages a merger would send, with the file's own streamers.

Files arrive whole in three places: the emulator replays one (`emulator.merger.ReplaySource`), the HTTP
push receives one (`pipeline.push`) and the archive import reads the original's receiver files
(`pipeline.archive`). All turn each object into a TMessage with its original class version (no
re-encoding, so what a receiver decodes is what the file holds) and name objects in folders by their
full path ("TPCQA/h"), the name the merger had before a writer turned "/" into a folder.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import uproot

from pipeline.wire.tmessage import encode_streamer_block, tmessage_from_root_key

log = logging.getLogger(__name__)

ROOT_MAGIC = b"root"
# Keys that are not objects to send: folders (their objects are listed by the recursive keys) and bookkeeping.
NOT_SENT_CLASSES = ("TStreamerInfo", "TDirectory", "TDirectoryFile", "TKey")


@dataclass
class FileObjects:
    """What a ROOT file holds, ready to frame as a merger reply."""

    objects: dict[str, bytes] = field(default_factory=dict)  # full path -> TMessage
    class_names: dict[str, str] = field(default_factory=dict)  # full path -> ROOT class
    streamer_infos: list[Any] = field(default_factory=list)  # the file's TStreamerInfo models
    streamer_digest: str = ""  # sha1 of the file's streamer record: files with equal ones share a schema
    unreadable: list[str] = field(default_factory=list)  # objects whose bytes could not be read, and why

    @property
    def streamer_block(self) -> bytes:
        """The ROOTSTRI payload describing the file's class versions."""
        return encode_streamer_block(self.streamer_infos)

    @property
    def class_versions(self) -> dict[str, int]:
        """Class name -> the version the file's streamers describe (the newest, if several)."""
        versions: dict[str, int] = {}
        for info in self.streamer_infos:
            versions[info.name] = max(versions.get(info.name, 0), int(info.class_version))
        return versions


def read_file_objects(source: Path | BinaryIO, with_streamers: bool = True) -> FileObjects:
    """Every object of the ROOT file `source` (a path or a seekable binary file object), subfolders
    included, newest cycle of each name.

    An object whose key or bytes cannot be read is listed in `unreadable` and the others are kept;
    a file that uproot cannot open at all raises (OSError, ValueError or uproot's own errors).
    """
    found = FileObjects()
    # Memory-mapped for paths: uproot's default source opens the file again for every key it reads.
    options = {"handler": uproot.source.file.MemmapSource} if isinstance(source, (str, Path)) else {}
    with uproot.open(source, **options) as root_file:
        for path in root_file.keys(recursive=True, cycle=False):
            try:
                stored = root_file.key(path)
                if stored.fClassName in NOT_SENT_CLASSES:
                    continue
                found.objects[path] = tmessage_from_root_key(stored, name=path)
            except Exception as error:  # a corrupt object must cost that object, not the file
                log.warning("cannot read %s from the ROOT file: %s", path, error)
                found.unreadable.append(f"{path!r}: cannot read it from the file: {error}")
                continue
            found.class_names[path] = stored.fClassName
        if with_streamers:
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

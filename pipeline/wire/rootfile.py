"""A whole ROOT file's objects as the TMessages a merger would send, with the file's own streamers.

Files arrive whole in two places: the emulator replays one (`emulator.merger.ReplaySource`) and the HTTP
push receives one (`pipeline.push`). Both turn each object into a TMessage with its original class
version (no re-encoding, so what a receiver decodes is what the file holds) and name objects in folders
by their full path ("TPCQA/h"), the name the merger had before a writer turned "/" into a folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

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
    streamer_block: bytes = b""  # ROOTSTRI payload describing the file's class versions
    unreadable: list[str] = field(default_factory=list)  # objects whose bytes could not be read, and why


def read_file_objects(source: Path | BinaryIO, with_streamers: bool = True) -> FileObjects:
    """Every object of the ROOT file `source` (a path or a seekable binary file object).

    An object whose key or bytes cannot be read is listed in `unreadable` and the others are kept;
    a file that uproot cannot open at all raises (OSError, ValueError or uproot's own errors).
    """
    found = FileObjects()
    with uproot.open(source) as root_file:
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
        infos = [info for versions in root_file.file.streamers.values() for info in versions.values()]
    found.streamer_block = encode_streamer_block(infos if with_streamers else [])
    return found

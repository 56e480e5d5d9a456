"""Which TH1 class version a merger reply's histograms were streamed in (ROOT 6.14+: 8, Run 2: 7).

A snapshot records it (`SnapshotMeta.th1_version`), so that a replay of the run can send its objects
in their original versions (`run2_layout`). Every source takes it from the reply's frames here: the
receiver from what the merger sent, the archive import from the frames it builds of a file's objects.
One merger process is one ROOT build, so the first histogram of the reply speaks for all of them;
reading it costs the header bytes of one object.
"""

from __future__ import annotations

import re
import struct

from pipeline.wire import header
from pipeline.wire.header import parse_topic
from pipeline.wire.messages import pair_frames
from pipeline.wire.tmessage import DecodeError, open_message

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IH")  # byte count | mask, class version
_BYTE_COUNT_MASK = 0x40000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_OBJECT_START = 8  # after the length word and fWhat
_HISTOGRAM_CLASS = re.compile(rb"TH([123])[CSIFD]")
_MAX_CLASS_NAME = 64


def reply_th1_version(frames: list[bytes]) -> int | None:
    """The TH1 version of the first TH1/TH2/TH3 object among the reply's ROOTTOBJ blocks; None when
    there is none or its bytes do not say (anything odd here is the decoder's to report, not ours)."""
    for header_frame, payload in pair_frames(frames):
        topic = parse_topic(bytes(header_frame))
        if topic is None or not topic.is_type(header.ROOTTOBJ) or not topic.is_root_object:
            continue
        try:
            version = th1_version_of(open_message(payload))
        except (DecodeError, struct.error, ValueError):
            continue
        if version is not None:
            return version
    return None


def th1_version_of(message: bytes) -> int | None:
    """The TH1 base's class version in an uncompressed TMessage of a TH1x/TH2x/TH3x, else None.

    Layout (as `run2_layout` writes it): [new class tag][class name\\0][class header]([TH2|TH3
    header]) [TH1 header]; each header a byte count word and a 2-byte version.
    """
    position = _OBJECT_START
    (word,) = _U32.unpack_from(message, position)
    if word != _NEW_CLASS_TAG and word & _BYTE_COUNT_MASK:
        position += 4  # WriteObjectAny's byte count
    if _U32.unpack_from(message, position)[0] != _NEW_CLASS_TAG:
        return None
    name_end = message.find(b"\0", position + 4, position + 4 + _MAX_CLASS_NAME)
    match = _HISTOGRAM_CLASS.fullmatch(message[position + 4 : name_end]) if name_end > 0 else None
    if match is None:
        return None
    th1_at = name_end + 1 + _HEADER.size * (1 if match.group(1) == b"1" else 2)
    count, version = _HEADER.unpack_from(message, th1_at)
    return version if count & _BYTE_COUNT_MASK else None

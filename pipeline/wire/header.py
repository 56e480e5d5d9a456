"""The 80-byte O2 "DataTopic" header that precedes every payload frame (PROTOCOL.md section 3).

We always write the Run-2 layout (id at bytes 40-47, payload size 0). We read that layout, the 2019+
layout (id at bytes 32-39 with 40-47 zero) and the legacy 16-byte AliHLTDataTopic.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"O2O2"
HEADER_DESCRIPTION = b"DataHDR\0"
TOPIC_SIZE = 80
LEGACY_TOPIC_SIZE = 16
_TOPIC = struct.Struct("<4sIII8s8s8s8s4sI8sQQ")
_LEGACY_TOPIC = struct.Struct("<8s4sI")

INFO = b"INFO____"
ROOTTOBJ = b"ROOTTOBJ"
ROOTSTRI = b"ROOTSTRI"
ROOTHIST = b"ROOTHIST"
CONFIG = b"CONFIG\0\0"

ECSPARAM = b"ECSPARAM"
# Ids whose payload is a ROOT TMessage (PROTOCOL.md section 3); everything else is a string block.
ROOT_DATA_TYPES = (ROOTTOBJ, ROOTSTRI, ROOTHIST)
# String blocks a merger or an HLT sink may send besides INFO; skipped without complaint.
KNOWN_STRING_DATA_TYPES = (INFO, ECSPARAM, CONFIG)

ORIGIN_HLT = b"HLT "
ORIGIN_ANY = b"***\n"
SERIALIZATION_ROOT = b"ROOT   \0"
SERIALIZATION_NONE = b"NONE   \0"
SERIALIZATION_HLTROOT = b"HLTROOT\0"
ZERO8 = b"\0" * 8


@dataclass(frozen=True)
class DataTopic:
    """A parsed header: what the payload frame after it holds."""

    data_type: bytes
    origin: bytes = ZERO8[:4]
    serialization: bytes = ZERO8
    specification: int = 0
    payload_size: int = 0
    legacy: bool = False

    def is_type(self, data_type: bytes, prefix_length: int = 8) -> bool:
        return self.data_type[:prefix_length] == data_type[:prefix_length]

    @property
    def has_root_data_type(self) -> bool:
        """True for the ids that name a ROOT object (ROOTTOBJ, ROOTSTRI, ROOTHIST)."""
        return self.data_type in ROOT_DATA_TYPES

    @property
    def is_root_object(self) -> bool:
        """True when the payload is a (possibly HLT-wrapped) ROOT TMessage (PROTOCOL.md 3 and 11.3).

        The serialization field decides: `ROOT   ` or `HLTROOT` is a TMessage, `NONE   ` (or anything
        else) is text or raw bytes. A field of 0 says nothing: pre-2018-11 mergers sent ROOT blocks
        with it, but so does `alizmq_msg_send(std::string...)` for string topics such as ECSPARAM, and
        the legacy 16-byte header has no such field. Then only the id can tell, so a 0 field is a ROOT
        object only for the ROOT ids.
        """
        if self.serialization in (SERIALIZATION_ROOT, SERIALIZATION_HLTROOT):
            return True
        return self.serialization == ZERO8 and self.has_root_data_type


def pack_topic(
    data_type: bytes,
    origin: bytes = ORIGIN_HLT,
    serialization: bytes = SERIALIZATION_ROOT,
    specification: int = 0,
) -> bytes:
    """Pack an 80-byte Run-2 DataTopic with the id at bytes 40-47 and payload size 0."""
    return _TOPIC.pack(
        MAGIC,
        TOPIC_SIZE,
        0,
        1,
        HEADER_DESCRIPTION,
        b"NONE\0\0\0\0",
        ZERO8,
        _fixed(data_type, 8),
        _fixed(origin, 4),
        0,
        _fixed(serialization, 8),
        specification,
        0,
    )


def parse_topic(frame: bytes) -> DataTopic | None:
    """Parse a header frame; None when the frame is not a topic (as `DataTopic::Get` returns NULL)."""
    if len(frame) == LEGACY_TOPIC_SIZE:
        data_type, origin, specification = _LEGACY_TOPIC.unpack(frame)
        return DataTopic(data_type, origin, specification=specification, legacy=True)
    if len(frame) < TOPIC_SIZE:
        return None
    fields = _TOPIC.unpack_from(frame)
    magic, description = fields[0], fields[4]
    if magic != MAGIC or description != HEADER_DESCRIPTION:
        return None
    description_0, description_1 = fields[6], fields[7]
    # Run 2 puts the id in fDataDescription[1]; AliRoot >= 2019 puts it in [0] and leaves [1] zero.
    data_type = description_1 if description_1 != ZERO8 else description_0
    return DataTopic(
        data_type=data_type,
        origin=fields[8],
        serialization=fields[10],
        specification=fields[11],
        payload_size=fields[12],
    )


def _fixed(value: bytes, size: int) -> bytes:
    if len(value) > size:
        raise ValueError(f"{value!r} is longer than {size} bytes")
    return value.ljust(size, b"\0")

"""TMessages in the Run-2 class versions (ROOT 5.34 to 6.12: TH1 v7), for replaying Run-2 data as it was sent.

uproot writes today's versions (TH1 v8, TH1x v3, TH2/TH3 v5/v6, TH2x/TH3x v4). The Run-2 ones hold the
same members except TH1::fStatOverflows, which ROOT 6.14 added as TH1's last member (PROTOCOL.md 7,
`fast_decode._RUN2_MEMBERS`). So a Run-2 message is today's with those 4 bytes taken out, the versions
set back and every enclosing byte count 4 smaller. A receiver decodes it with the Run-2 streamers only.
"""

from __future__ import annotations

import struct

from pipeline.histogram import Histogram
from pipeline.wire.tmessage import encode_tmessage

RUN2_TH1_VERSION = 7
# (class version, base class version) per dimension: TH1x v2; TH2x/TH3x v3 over TH2 v4 / TH3 v5.
_RUN2_VERSIONS = {1: (2, None), 2: (3, 4), 3: (3, 5)}
_CURRENT_VERSIONS = {1: (3, None), 2: (4, 5), 3: (4, 6)}
_CURRENT_TH1_VERSION = 8
_STAT_OVERFLOWS_BYTES = 4
_BYTE_COUNT_MASK = 0x40000000
_COUNT = struct.Struct(">I")
_VERSION = struct.Struct(">H")
_LENGTH = struct.Struct("<I")
_OBJECT_COUNT_AT = 8  # WriteObjectAny's byte count, after the length word and fWhat
_CLASS_NAME_AT = 16  # after that count and the new-class tag


def encode_tmessage_in_versions(histogram: Histogram, th1_version: int | None) -> bytes:
    """The TMessage of `histogram` in the class versions of its TH1 base: 7 (Run 2) or today's."""
    message = encode_tmessage(histogram)
    if th1_version in (None, _CURRENT_TH1_VERSION):
        return message
    if th1_version != RUN2_TH1_VERSION:
        raise ValueError(f"no layout for TH1 version {th1_version}")
    return to_run2_layout(message, histogram.dimension)


def to_run2_layout(message: bytes, dimension: int) -> bytes:
    """`message` (an uncompressed TH1/TH2/TH3 TMessage as `encode_tmessage` writes it) in Run-2 versions.

    Raises ValueError if the message is not in the versions this module expects.
    """
    data = bytearray(message)
    name_end = data.index(b"\0", _CLASS_NAME_AT)
    headers = [name_end + 1]  # the class's own header, then its base's for TH2/TH3, then TH1's
    if dimension > 1:
        headers.append(headers[-1] + 6)
    th1_at = headers[-1] + 6
    versions = [_VERSION.unpack_from(data, at + 4)[0] for at in (*headers, th1_at)]
    expected = [v for v in _CURRENT_VERSIONS[dimension] if v is not None] + [_CURRENT_TH1_VERSION]
    if versions != expected:
        raise ValueError(f"class versions {versions} are not the expected {expected}")
    th1_end = th1_at + 4 + (_COUNT.unpack_from(data, th1_at)[0] & ~_BYTE_COUNT_MASK)
    del data[th1_end - _STAT_OVERFLOWS_BYTES : th1_end]  # TH1::fStatOverflows, TH1's last member
    for at in (_OBJECT_COUNT_AT, *headers, th1_at):
        _COUNT.pack_into(data, at, _COUNT.unpack_from(data, at)[0] - _STAT_OVERFLOWS_BYTES)
    run2 = [v for v in _RUN2_VERSIONS[dimension] if v is not None] + [RUN2_TH1_VERSION]
    for at, version in zip((*headers, th1_at), run2, strict=True):
        _VERSION.pack_into(data, at + 4, version)
    _LENGTH.pack_into(data, 0, len(data) - 4)
    return bytes(data)

"""DataTopic header bytes and request framing, checked against PROTOCOL.md's byte dumps."""

import struct

import pytest

from pipeline.wire import header
from pipeline.wire.messages import build_request

# PROTOCOL.md section 3: the Run-2 INFO header, byte-identical to the real kDataTypeInfo.
RUN2_INFO_HEADER = bytes.fromhex(
    "4f324f32500000000000000001000000"
    "44617461484452004e4f4e4500000000"
    "0000000000000000494e464f5f5f5f5f"
    "484c5420000000004e4f4e4520202000"
    "00000000000000000000000000000000"
)


def test_info_header_is_byte_identical_to_the_run2_merger():
    packed = header.pack_topic(header.INFO, header.ORIGIN_HLT, header.SERIALIZATION_NONE)
    assert packed == RUN2_INFO_HEADER


def test_parse_run2_header():
    topic = header.parse_topic(RUN2_INFO_HEADER)
    assert topic.data_type == b"INFO____"
    assert topic.origin == b"HLT "
    assert topic.serialization == b"NONE   \0"
    assert topic.payload_size == 0


def test_parse_2019_layout_takes_id_from_bytes_32_to_39():
    frame = bytearray(RUN2_INFO_HEADER)
    frame[32:40] = b"ROOTTOBJ"
    frame[40:48] = b"\0" * 8
    assert header.parse_topic(bytes(frame)).data_type == b"ROOTTOBJ"


def test_run2_id_wins_when_both_descriptions_are_set():
    frame = bytearray(RUN2_INFO_HEADER)
    frame[32:40] = b"ROOTTOBJ"
    assert header.parse_topic(bytes(frame)).data_type == b"INFO____"


def test_legacy_16_byte_header():
    topic = header.parse_topic(b"ROOTTOBJ" + b"HLT " + struct.pack("<I", 7))
    assert topic.legacy
    assert topic.data_type == b"ROOTTOBJ"
    assert topic.specification == 7


def test_frames_that_are_not_topics():
    assert header.parse_topic(b"") is None
    assert header.parse_topic(b"x" * 80) is None
    bad_description = bytearray(RUN2_INFO_HEADER)
    bad_description[16:24] = b"Garbage!"
    assert header.parse_topic(bytes(bad_description)) is None


def test_request_frames_match_zmqreceive():
    frames = build_request(select="EMCal", schema=True)
    assert [len(f) for f in frames] == [80, 31, 80, 0]
    assert frames[1] == b" -select=EMCal -SchemaOnRequest"
    config = header.parse_topic(frames[0])
    assert config.data_type[:6] == b"CONFIG"
    assert config.origin == b"\0\0\0\0"
    assert header.parse_topic(frames[2]).data_type == b"\0" * 8


def test_request_sends_only_the_three_allowed_options():
    assert build_request(select="^EMC", reset=True, schema=True)[1] == (
        b" -select=^EMC -ResetOnRequest -SchemaOnRequest"
    )
    assert build_request()[1] == b""


@pytest.mark.parametrize(
    "data_type,serialization,is_root",
    [
        (header.ROOTTOBJ, header.SERIALIZATION_ROOT, True),
        (header.ROOTTOBJ, header.SERIALIZATION_HLTROOT, True),
        (header.ROOTTOBJ, header.ZERO8, True),  # before 2018-11
        (header.ROOTSTRI, header.ZERO8, True),
        (header.ROOTHIST, header.ZERO8, True),
        (header.ROOTTOBJ, header.SERIALIZATION_NONE, False),  # the C++ receiver skips it
        (header.ECSPARAM, header.ZERO8, False),  # alizmq_msg_send(std::string...) leaves 0
        (header.INFO, header.ZERO8, False),
        (b"MYSTRING", header.ZERO8, False),
        (header.ECSPARAM, header.SERIALIZATION_NONE, False),
        (b"ANYTHING", header.SERIALIZATION_ROOT, True),  # the serialization field, when set, decides
    ],
)
def test_root_or_string_block_as_protocol_md_section_3_says(data_type, serialization, is_root):
    topic = header.parse_topic(header.pack_topic(data_type, header.ORIGIN_HLT, serialization))
    assert topic.is_root_object is is_root


def test_legacy_header_is_root_by_its_id():
    assert header.parse_topic(b"ROOTTOBJ" + b"HLT " + b"\0" * 4).is_root_object
    assert not header.parse_topic(b"ECSPARAM" + b"HLT " + b"\0" * 4).is_root_object

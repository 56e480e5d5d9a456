"""Request parsing with the merger's semantics, INFO parsing, and reply framing/decoding."""

import numpy as np
import pytest

from pipeline.histogram import Histogram
from pipeline.wire import header, messages
from pipeline.wire.messages import ProtocolError, build_reply, build_request, decode_reply
from pipeline.wire.tmessage import (
    StreamerContext,
    encode_tmessage,
    streamer_block_for_encoded_histograms,
)


def config_frames(options: bytes) -> list[bytes]:
    return [build_request()[0], options, build_request()[2], b""]


def test_request_round_trip():
    parsed = messages.parse_request(build_request(select="^EMC", reset=True, schema=True))
    assert (parsed.select, parsed.reset, parsed.schema) == ("^EMC", True, True)


@pytest.mark.parametrize(
    "options,select",
    [
        (b" -select=EMC", "EMC"),
        (b"-select EMC", "EMC"),
        (b"--select=EMC", "EMC"),
        (b"select=EMC", "EMC"),
    ],
)
def test_option_spellings_the_merger_accepts(options, select):
    assert messages.parse_request(config_frames(options)).select == select


def test_unknown_options_are_ignored_not_obeyed():
    parsed = messages.parse_request(config_frames(b" -reset -select=x -in=PULL@tcp://*:1"))
    assert parsed.select == "x"
    assert parsed.ignored == ("-reset", "-in=PULL@tcp://*:1")


def test_only_the_first_blocks_config_counts():
    frames = build_request(select="first") + build_request(select="second")
    assert messages.parse_request(frames).select == "first"


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [b"junk", b"x"],
        [header.pack_topic(header.INFO), b""],
        config_frames(b" -select=(unclosed"),
    ],
)
def test_malformed_requests_raise_protocol_error(frames):
    with pytest.raises(ProtocolError):
        messages.parse_request(frames)


def test_selection_with_white_space_is_refused():
    with pytest.raises(ValueError, match="white space"):
        build_request(select="a b")


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "run=294925;HLT_MODE=B;BEAM_TYPE=pp",
            {"run": "294925", "HLT_MODE": "B", "BEAM_TYPE": "pp"},
        ),
        ("run=1;;HLT_MODE=A;HLT_MODE=C;flag", {"run": "1", "HLT_MODE": "C", "flag": ""}),
        ("", {}),
        ("run=5=6", {"run": "5=6"}),
    ],
)
def test_parse_info_semantics(text, expected):
    assert messages.parse_info(text) == expected


@pytest.mark.parametrize("text,run", [("run=294925", 294925), ("run=12abc", 12), ("x=1", 0), ("run=", 0)])
def test_run_number_is_atoi(text, run):
    assert messages.run_number(messages.parse_info(text)) == run


def histogram(name: str) -> Histogram:
    values = np.arange(12, dtype=float)
    return Histogram(name, "TH1D", name, (np.linspace(0, 10, 11),), values, values)


def test_reply_round_trip_sorted_with_schema_first():
    objects = [(n, encode_tmessage(histogram(n))) for n in ("b_hist", "a_hist", "B_upper")]
    frames = build_reply("run=7;HLT_MODE=B;BEAM_TYPE=PbPb", objects, streamer_block_for_encoded_histograms())
    ids = [header.parse_topic(f).data_type for f in frames[0::2]]
    assert ids == [b"ROOTSTRI", b"INFO____", b"ROOTTOBJ", b"ROOTTOBJ", b"ROOTTOBJ"]
    reply = decode_reply(frames, StreamerContext())
    assert (reply.run, reply.hlt_mode, reply.beam_type) == (7, "B", "PbPb")
    assert [h.name for h in reply.histograms] == ["B_upper", "a_hist", "b_hist"]  # byte-wise order
    assert reply.streamer_blocks == 1 and not reply.errors


def test_bad_blocks_are_reported_and_the_rest_kept():
    good = encode_tmessage(histogram("good"))
    frames = build_reply("run=3", [("bad", b"\x00" * 40), ("good", good)])
    frames += [b"not a header", b"payload"]
    reply = decode_reply(frames, StreamerContext())
    assert [h.name for h in reply.histograms] == ["good"]
    assert len(reply.errors) == 2 and reply.needs_schema


def test_reply_without_info_means_run_zero():
    reply = decode_reply(build_reply("", []), StreamerContext())
    assert reply.run == 0 and reply.hlt_mode == "U"

"""Request parsing with the merger's semantics, INFO parsing, and reply framing/decoding."""

import numpy as np
import pytest
from uproot.writing.identify import to_TObjString

from pipeline.histogram import Histogram
from pipeline.wire import fast_decode, header, messages, tmessage
from pipeline.wire.messages import ProtocolError, build_reply, build_request, decode_reply
from pipeline.wire.tmessage import (
    StreamerContext,
    encode_tmessage,
    streamer_block_for_encoded_histograms,
)
from tests.pipeline.test_wire_fast_decode import encode
from tests.pipeline.test_wire_tmessage import profile_payload, run2_payload


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
    # A payload that does not decode may need a schema; a frame that is not a header cannot.
    assert len(reply.errors) == 1 and "block 1 (ROOTTOBJ)" in reply.errors[0] and reply.needs_schema
    assert reply.invalid == ["block 3: not a DataTopic header (12 bytes)"]
    assert len(reply.rejected) == 2


def test_reply_without_info_means_run_zero():
    reply = decode_reply(build_reply("", []), StreamerContext())
    assert reply.run == 0 and reply.hlt_mode == "U"


# --- CONFIG options are split on white space only, as AliOptionParser does ---------------------------


@pytest.mark.parametrize(
    "options,select",
    [
        (b" -select=^EMC\\d -SchemaOnRequest", "^EMC\\d"),
        (b' -select=^fHist"?TPC\\w+$', '^fHist"?TPC\\w+$'),
        (b" -select=it's\\.*", "it's\\.*"),
    ],
)
def test_backslashes_and_quotes_reach_the_regex_unchanged(options, select):
    assert messages.parse_request(config_frames(options)).select == select


# --- what is not stored, and whether it asks for the schema again ---------------------------------


def test_profiles_are_unsupported_and_need_no_schema():
    frames = build_reply(
        "run=3",
        [("prof", profile_payload("TProfile")), ("prof2", profile_payload("TProfile2D", name="prof2"))],
    )
    frames += build_reply("", [("good", encode_tmessage(histogram("good")))])[2:]
    reply = decode_reply(frames, StreamerContext())
    assert [h.name for h in reply.histograms] == ["good"]
    assert len(reply.unsupported) == 2 and "'TProfile'" in reply.unsupported[0]
    assert "'TProfile2D'" in reply.unsupported[1]
    assert reply.errors == [] and not reply.needs_schema


def test_unsupported_classes_are_counted_without_asking_for_the_schema():
    objects = [
        ("a_string", tmessage.encode_model(to_TObjString("a note"))),
        # Bodies that uproot could not read: the class tag alone must decide.
        ("b_canvas", tmessage.wrap_object_bytes("TCanvas", b"\xff" * 64)),
        ("c_graph", tmessage.wrap_object_bytes("TGraph", b"\xff" * 64)),
        ("d_good", encode_tmessage(histogram("d_good"))),
    ]
    reply = decode_reply(build_reply("run=3", objects), StreamerContext())
    assert [h.name for h in reply.histograms] == ["d_good"]
    assert [text.split("'")[1] for text in reply.unsupported] == ["TObjString", "TCanvas", "TGraph"]
    assert reply.errors == [] and not reply.needs_schema


def test_an_unknown_class_version_still_asks_for_the_schema(fixtures_dir):
    # The one kind of failure a schema cures: TH1F v2 / TH1 v7 without their streamers.
    reply = decode_reply(build_reply("run=3", [("test", run2_payload(fixtures_dir))]), StreamerContext())
    assert reply.unsupported == [] and len(reply.errors) == 1 and reply.needs_schema
    assert "Unknown_TH1F_v2" in reply.errors[0]


def weighted(name: str, variances: np.ndarray, values: np.ndarray | None = None) -> Histogram:
    values = np.arange(12, dtype=float) if values is None else values
    return Histogram(name, "TH1D", name, (np.linspace(0, 10, 11),), values, variances)


def test_non_finite_contents_or_variances_are_rejected():
    infinite = np.ones(12)
    infinite[3] = np.inf
    not_a_number = np.arange(12, dtype=float)
    not_a_number[5] = np.nan
    objects = [
        ("a_inf_variance", encode_tmessage(weighted("a_inf_variance", infinite))),
        ("b_nan_content", encode_tmessage(weighted("b_nan_content", np.ones(12), not_a_number))),
        ("c_good", encode_tmessage(weighted("c_good", np.ones(12)))),
    ]
    with np.errstate(over="ignore"):  # the encoder's statistics (fTsumw2) overflow too
        objects.append(("d_huge", encode_tmessage(weighted("d_huge", np.full(12, 1e308)))))  # finite bins
    reply = decode_reply(build_reply("run=3", objects), StreamerContext())
    assert [h.name for h in reply.histograms] == ["c_good", "d_huge"]
    assert reply.invalid == [
        "block 1 'a_inf_variance': non-finite variances (1 bins)",
        "block 2 'b_nan_content': non-finite contents (1 bins)",
    ]
    assert not reply.needs_schema


@pytest.fixture
def planned_reads(monkeypatch) -> list[bool]:
    """For each object a reply's loop offered to `read_planned`: whether a plan took it. No plan is
    learned before the test (plans are kept per process)."""
    monkeypatch.setattr(fast_decode, "_PLANS", {})
    monkeypatch.setattr(fast_decode, "_HEADS", {})
    taken: list[bool] = []
    read_planned = messages.read_planned

    def counted(payload, context=None, arenas=None):
        result = read_planned(payload, context, arenas)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(messages, "read_planned", counted)
    return taken


def unweighted(name: str, *changed: tuple[int, float]) -> tuple[str, bytes]:
    """A TH1D of one fixed binning sent without fSumw2 (so all share one layout), bins changed as given."""
    values = np.arange(12, dtype=float)
    for index, value in changed:
        values[index] = value
    histogram = Histogram(name, "TH1D", "", (np.linspace(0, 10, 11),), values, values)
    with np.errstate(invalid="ignore", over="ignore"):  # the encoder's statistics of inf and NaN bins
        return name, encode(histogram, sumw2=False)


def test_objects_read_by_a_layout_plan_get_every_check(planned_reads):
    # After the first, the reply's fast route reads them by plan, and skips the contents check only
    # where it proved every bin finite on the way.
    objects = [
        unweighted("a_first"),
        unweighted("b_infinite", (3, np.inf)),
        unweighted("c_nan", (4, np.nan)),
        unweighted("d_negative", (5, -2.0)),
        unweighted("e_good", (6, 1e300)),
    ]
    reply = decode_reply(build_reply("run=3", objects), StreamerContext())
    assert planned_reads == [False] + [True] * 4, "every object after the first took the plan"
    assert [h.name for h in reply.histograms] == ["a_first", "d_negative", "e_good"]
    assert reply.invalid == [
        "block 2 'b_infinite': non-finite contents (1 bins)",
        "block 3 'c_nan': non-finite contents (1 bins)",
    ]
    negative = reply.histograms[1]
    assert negative.values_flow[5] == -2.0 and negative.variances_flow[5] == 0.0  # as uproot clips


def test_a_learned_layout_under_another_topic_is_not_taken_for_an_object(planned_reads):
    _, payload = unweighted("learned")
    frames = build_reply("run=3", [("learned", payload)])
    frames += [header.pack_topic(header.ROOTSTRI), payload]  # not streamer infos: an error
    frames += [string_topic(header.ECSPARAM), payload]  # a string block: skipped
    frames += [header.pack_topic(header.INFO), payload]  # read as INFO text
    reply = decode_reply(frames, StreamerContext())
    assert planned_reads == [False], "only the ROOTTOBJ block was offered to the fast route"
    assert [h.name for h in reply.histograms] == ["learned"]
    assert len(reply.errors) == 1 and reply.errors[0].startswith("block 2 (ROOTSTRI)")
    assert reply.streamer_blocks == 0 and reply.invalid == []


def test_the_same_name_twice_is_reported_as_sent():
    # decode_reply keeps what arrived; the receiver decides which one to store.
    objects = [("dup", encode_tmessage(histogram("dup")))] * 2
    reply = decode_reply(build_reply("run=3", objects), StreamerContext())
    assert [h.name for h in reply.histograms] == ["dup", "dup"] and reply.rejected == []


# --- string blocks versus ROOT blocks (PROTOCOL.md section 3) ----------------------------------------


def string_topic(data_type: bytes) -> bytes:
    # alizmq_msg_send(std::string...): origin and serialization left 0
    return header.pack_topic(data_type, origin=b"\0\0\0\0", serialization=b"\0" * 8)


def test_string_blocks_are_never_decoded_as_root_objects():
    good = encode_tmessage(histogram("good"))
    frames = build_reply("run=3;HLT_MODE=B", [("good", good)])
    frames += [string_topic(header.ECSPARAM), b"CTP_TRIGGER_CLASS=00000001:CINT7-B-NOPF-CENT;HLT_MODE=B"]
    frames += [header.pack_topic(b"MYSTRING", serialization=header.SERIALIZATION_NONE), b"hello"]
    reply = decode_reply(frames, StreamerContext())
    assert [h.name for h in reply.histograms] == ["good"]
    assert reply.rejected == [] and not reply.needs_schema


def test_pre_2018_and_legacy_root_blocks_are_still_decoded():
    payload = encode_tmessage(histogram("old"))
    frames = [
        string_topic(header.INFO),  # INFO was sent with serialization 0 before 2018-11
        b"run=9;HLT_MODE=C",
        header.pack_topic(header.ROOTTOBJ, serialization=b"\0" * 8),
        payload,
        b"ROOTTOBJ" + b"HLT " + b"\0" * 4,  # legacy 16-byte AliHLTDataTopic
        encode_tmessage(histogram("legacy")),
    ]
    reply = decode_reply(frames, StreamerContext())
    assert (reply.run, reply.hlt_mode) == (9, "C")
    assert [h.name for h in reply.histograms] == ["old", "legacy"] and reply.rejected == []


def test_root_blocks_marked_not_root_are_counted_not_dropped_silently():
    payload = encode_tmessage(histogram("hidden"))
    frames = build_reply("run=3", [])
    frames += [header.pack_topic(header.ROOTTOBJ, serialization=header.SERIALIZATION_NONE), payload]
    reply = decode_reply(frames, StreamerContext())
    assert reply.histograms == []
    assert reply.invalid == ["block 1 (ROOTTOBJ): serialization NONE, not ROOT"]
    assert not reply.needs_schema


def test_a_trailing_header_without_payload_is_counted():
    frames = build_reply("run=3", [("good", encode_tmessage(histogram("good")))])
    frames.append(header.pack_topic(header.ROOTTOBJ))
    reply = decode_reply(frames, StreamerContext())
    assert [h.name for h in reply.histograms] == ["good"]
    assert reply.invalid == ["frame 4: a header frame without payload, dropped"]


def test_a_zip_payload_declaring_gigabytes_is_one_rejected_object(fixtures_dir):
    corrupt = bytearray((fixtures_dir / "th2f_compressed.tmessage.bin").read_bytes())
    corrupt[8:12] = (0x7FFFFFF0).to_bytes(4, "big")
    objects = [("a_corrupt", bytes(corrupt)), ("b_good", encode_tmessage(histogram("b_good")))]
    reply = decode_reply(build_reply("run=3", objects), StreamerContext())
    assert [h.name for h in reply.histograms] == ["b_good"]
    assert len(reply.errors) == 1 and "declares 2147483632 uncompressed bytes" in reply.errors[0]

"""Run-2 class versions written back: the layout ROOT 6.08 wrote, readable only with its streamers."""

from __future__ import annotations

import struct

import pytest
import uproot

from pipeline.wire.fast_decode import decode_histogram, decode_histograms
from pipeline.wire.run2_layout import encode_tmessage_in_versions
from pipeline.wire.tmessage import DecodeError, StreamerContext, encode_tmessage, tmessage_from_root_key

RUN2_FILE = "run2_root608_th1f.root"


def test_the_run2_fixture_reencoded_has_root_608s_layout_and_numbers(fixtures_dir):
    context = StreamerContext()
    context.add_streamers_from_root_file(fixtures_dir / RUN2_FILE)
    with uproot.open(fixtures_dir / RUN2_FILE) as root_file:
        root_bytes = tmessage_from_root_key(root_file.key("test"))
    histogram = decode_histogram(root_bytes, context)

    ours = encode_tmessage_in_versions(histogram, 7)
    assert len(ours) == len(root_bytes) == len(encode_tmessage(histogram)) - 4  # no fStatOverflows
    # Byte counts and versions where ROOT 6.08 put them: TH1F v2, then its TH1 v7, after "TH1F\0".
    for message in (ours, root_bytes):
        assert struct.unpack_from(">IhIh", message, 21) == (0x40000240, 2, 0x40000206, 7)
    # Only TObject bits and the fill statistics (recomputed from the bins) may differ from ROOT's.
    assert sum(a != b for a, b in zip(ours, root_bytes, strict=True)) <= 10
    again = decode_histogram(ours, context)
    assert again.values_flow.tobytes() == histogram.values_flow.tobytes()
    assert (again.name, again.title, again.class_name, again.entries) == ("test", "testHist", "TH1F", 1.0)
    # As for ROOT's own bytes, no reader accepts them without the Run-2 schema.
    assert decode_histogram(ours) is None
    with pytest.raises(DecodeError, match="Unknown"):
        decode_histograms(ours, StreamerContext())


def test_todays_versions_are_left_as_they_are(fixtures_dir):
    with uproot.open(fixtures_dir / RUN2_FILE) as root_file:
        context = StreamerContext()
        context.add_streamers_from_root_file(fixtures_dir / RUN2_FILE)
        histogram = decode_histogram(tmessage_from_root_key(root_file.key("test")), context)
    assert encode_tmessage_in_versions(histogram, None) == encode_tmessage(histogram)
    assert encode_tmessage_in_versions(histogram, 8) == encode_tmessage(histogram)
    with pytest.raises(ValueError, match="no layout for TH1 version 6"):
        encode_tmessage_in_versions(histogram, 6)

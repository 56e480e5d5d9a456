"""TMessage decoding against ROOT's own numbers (expected.json), and encoding for the emulator."""

import struct

import numpy as np
import pytest
import uproot

from pipeline.histogram import Histogram
from pipeline.wire import tmessage
from pipeline.wire.tmessage import DecodeError, StreamerContext

TH2F_FILES = ["th2f.tmessage.bin", "th2f_compressed.tmessage.bin", "th2f_lz4.tmessage.bin"]


@pytest.fixture
def context(fixtures_dir):
    """A context holding the ROOT 6.40 schema block, as after a -SchemaOnRequest reply."""
    ctx = StreamerContext()
    ctx.add_streamer_block((fixtures_dir / "streamerinfo.tmessage.bin").read_bytes())
    return ctx


def decode_file(path, ctx):
    return tmessage.histograms_from_model(tmessage.decode_tmessage(path.read_bytes(), ctx))


def assert_matches_root(histogram: Histogram, truth: dict):
    assert histogram.class_name == truth["class"]
    assert histogram.name == truth["name"]
    assert histogram.title == truth["title"]
    assert histogram.axis_titles[:2] == (truth["xtitle"], truth["ytitle"])
    assert histogram.entries == truth["entries"]
    assert len(histogram.edges[0]) == truth["nbinsx"] + 1
    assert histogram.edges[0][[0, -1]].tolist() == [truth["xmin"], truth["xmax"]]
    if "nbinsy" in truth:
        assert len(histogram.edges[1]) == truth["nbinsy"] + 1
        assert histogram.edges[1][[0, -1]].tolist() == [truth["ymin"], truth["ymax"]]
    np.testing.assert_array_equal(histogram.values_flow, np.array(truth["values_flow"]))
    if "errors_flow" in truth:
        np.testing.assert_allclose(histogram.errors(flow=True), truth["errors_flow"], rtol=1e-12)
    else:  # no Sumw2: ROOT's errors are sqrt(content)
        np.testing.assert_allclose(histogram.errors(flow=True), np.sqrt(truth["values_flow"]))
    assert histogram.values().sum() == truth["integral"]


def test_streamer_block_holds_roots_classes(context, expected):
    assert context.known_classes == expected["streamer_classes"]


def test_th1d_matches_root(fixtures_dir, expected, context):
    [histogram] = decode_file(fixtures_dir / "th1d.tmessage.bin", context)
    assert_matches_root(histogram, expected["hists"]["th1d"])


@pytest.mark.parametrize("name", TH2F_FILES)
def test_th2f_matches_root_uncompressed_zlib_and_lz4(fixtures_dir, expected, context, name):
    [histogram] = decode_file(fixtures_dir / name, context)
    assert_matches_root(histogram, expected["hists"]["th2f"])


def test_objarray_with_class_back_references(fixtures_dir, expected, context):
    first, second = decode_file(fixtures_dir / "objarray_2h.tmessage.bin", context)
    assert_matches_root(first, expected["hists"]["th1d"])
    assert_matches_root(second, expected["hists"]["th1d_copy"])


def test_big_endian_length_word_is_accepted(fixtures_dir, expected, context):
    payload = bytearray((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    payload[:4] = struct.pack(">I", len(payload) - 4)
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(bytes(payload), context))
    assert_matches_root(histogram, expected["hists"]["th1d"])


def test_root_640_objects_without_schema_are_a_decode_failure(fixtures_dir):
    # TAttMarker v3 is unknown to uproot: values would decode, but the object is incomplete.
    model = tmessage.decode_tmessage((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    with pytest.raises(DecodeError, match="TAttMarker"):
        tmessage.histogram_from_model(model)


def run2_payload(fixtures_dir) -> bytes:
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        return tmessage.tmessage_from_root_key(root_file.key("test"))


def test_run2_object_is_a_decode_failure_without_its_streamers(fixtures_dir):
    model = tmessage.decode_tmessage(run2_payload(fixtures_dir), StreamerContext())
    assert tmessage.unknown_parts(model) == ["Unknown_TH1F_v2"]
    with pytest.raises(DecodeError, match="Unknown_TH1F_v2"):
        tmessage.histogram_from_model(model)


def assert_run2_values(histogram: Histogram):
    assert histogram.class_name == "TH1F"
    assert histogram.title == "testHist"
    assert histogram.entries == 1.0
    assert histogram.edges[0].tolist() == list(map(float, range(11)))
    expected = np.zeros(12)
    expected[5] = 1.0  # one entry at x=4: bin 5 counting the underflow
    np.testing.assert_array_equal(histogram.values_flow, expected)


def test_run2_object_decodes_with_the_files_streamers(fixtures_dir):
    ctx = StreamerContext()
    ctx.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    assert "TH1;7" in ctx.known_classes and "TH1F;2" in ctx.known_classes
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(run2_payload(fixtures_dir), ctx))
    assert_run2_values(histogram)


def test_run2_object_decodes_with_a_rootstri_block_built_from_them(fixtures_dir, tmp_path):
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        infos = [i for versions in root_file.file.streamers.values() for i in versions.values()]
    block = tmessage.encode_streamer_block(infos)
    ctx = StreamerContext()
    ctx.add_streamer_block(block)
    ctx.save(tmp_path / "streamers")
    # A restarted process reloads the persisted block and still decodes Run-2 objects.
    reloaded = StreamerContext.load(tmp_path / "streamers")
    assert reloaded.known_classes == ctx.known_classes
    [histogram] = tmessage.histograms_from_model(
        tmessage.decode_tmessage(run2_payload(fixtures_dir), reloaded)
    )
    assert_run2_values(histogram)


def test_corrupt_streamer_file_is_skipped_on_load(tmp_path, fixtures_dir):
    directory = tmp_path / "streamers"
    directory.mkdir()
    (directory / f"bad{tmessage.STREAMER_FILE_SUFFIX}").write_bytes(b"\x00" * 50)
    (directory / f"good{tmessage.STREAMER_FILE_SUFFIX}").write_bytes(
        (fixtures_dir / "streamerinfo.tmessage.bin").read_bytes()
    )
    assert "TH2F;4" in StreamerContext.load(directory).known_classes


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:20],  # truncated below the minimum size
        lambda b: b[:-10],  # length word no longer matches
        lambda b: b[:8] + b"\xff" * (len(b) - 8),  # garbage object bytes
        lambda b: b[:4] + struct.pack(">I", 7) + b[8:],  # not kMESS_OBJECT
        lambda b: b[:4] + struct.pack(">I", 4 | 0x20000000) + b[8:],  # claims ZIP, is not
    ],
)
def test_corrupt_payloads_raise_decode_error(fixtures_dir, context, mutate):
    payload = mutate((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    with pytest.raises(DecodeError):
        tmessage.histograms_from_model(tmessage.decode_tmessage(payload, context))


def test_unsupported_class_is_rejected(fixtures_dir):
    # The ROOTSTRI payload is a valid TMessage, but a TObjArray of TStreamerInfo, not histograms.
    model = tmessage.decode_tmessage((fixtures_dir / "streamerinfo.tmessage.bin").read_bytes())
    with pytest.raises(DecodeError, match="unsupported histogram class"):
        tmessage.histograms_from_model(model)


def make_histogram(dimension: int, class_name: str) -> Histogram:
    rng = np.random.default_rng(dimension)
    edges = tuple(np.linspace(0, 5, 6 + i) for i in range(dimension))
    shape = tuple(len(e) + 1 for e in edges)
    values = rng.poisson(5.0, size=shape).astype(float)
    return Histogram(
        name=f"h{dimension}",
        class_name=class_name,
        title=f"title {dimension}",
        edges=edges,
        values_flow=values,
        variances_flow=values * 2,
        entries=float(values.sum()),
        axis_titles=("x", "y", "z"),
    )


@pytest.mark.parametrize("dimension,class_name", [(1, "TH1D"), (2, "TH2F"), (3, "TH3F")])
def test_encode_then_decode_round_trips(dimension, class_name):
    original = make_histogram(dimension, class_name)
    payload = tmessage.encode_tmessage(original)
    assert struct.unpack_from("<I", payload)[0] == len(payload) - 4  # HLT little-endian length
    assert payload[4:8] == b"\x00\x00\x00\x04"
    [decoded] = tmessage.histograms_from_model(tmessage.decode_tmessage(payload, StreamerContext()))
    assert decoded.class_name == class_name
    assert decoded.title == original.title
    assert decoded.axis_titles == original.axis_titles
    assert decoded.entries == original.entries
    for got, want in zip(decoded.edges, original.edges, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(decoded.values_flow, original.values_flow)
    np.testing.assert_array_equal(decoded.variances_flow, original.variances_flow)


def test_own_streamer_block_describes_what_we_encode():
    ctx = StreamerContext()
    ctx.add_streamer_block(tmessage.streamer_block_for_encoded_histograms())
    for name in ("TH1D;3", "TH2F;4", "TH3F;4", "TH1;8", "TAxis;10"):
        assert name in ctx.known_classes


def test_unweighted_histograms_are_sent_without_sumw2_and_decode_the_same():
    weighted = make_histogram(2, "TH2F")
    unweighted = Histogram(
        weighted.name, "TH2F", weighted.title, weighted.edges, weighted.values_flow, weighted.values_flow
    )
    payload = tmessage.encode_tmessage(unweighted)
    assert len(payload) < len(tmessage.encode_tmessage(weighted)) - unweighted.values_flow.size * 8 + 64
    [decoded] = tmessage.histograms_from_model(tmessage.decode_tmessage(payload, StreamerContext()))
    np.testing.assert_array_equal(decoded.variances_flow, unweighted.values_flow)

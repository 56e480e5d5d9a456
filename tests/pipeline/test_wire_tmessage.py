"""TMessage decoding against ROOT's own numbers (expected.json), and encoding for the emulator."""

import hashlib
import lzma
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
import uproot
import uproot.writing.identify
import zstandard

from pipeline.histogram import Histogram
from pipeline.wire import compression, tmessage
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
    with pytest.raises(tmessage.UnsupportedClassError, match="unsupported histogram class 'TStreamerInfo'"):
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


# --- kMESS_ZIP: block headers are checked before anything is decompressed ---------------------------


def zip_message(body: bytes, blocks: list[bytes], declared: int | None = None) -> bytes:
    """A kMESS_ZIP TMessage: LE length word, what|ZIP, BE uncompressed length (header included), blocks."""
    full_length = len(body) + 8 if declared is None else declared
    rest = struct.pack(">I", 4 | compression.KMESS_ZIP) + struct.pack(">I", full_length) + b"".join(blocks)
    return struct.pack("<I", len(rest)) + rest


def root_block(algorithm: bytes, compressed: bytes, uncompressed_size: int) -> bytes:
    """One ROOT compression block: algorithm, method, 3-byte LE sizes, data."""
    return (
        algorithm
        + b"\x01"
        + len(compressed).to_bytes(3, "little")
        + uncompressed_size.to_bytes(3, "little")
        + compressed
    )


def th2f_body(fixtures_dir) -> bytes:
    """What follows the 8-byte header of the uncompressed TH2F fixture: the bytes a ZIP block holds."""
    return (fixtures_dir / "th2f.tmessage.bin").read_bytes()[8:]


def peak_allocation(function) -> int:
    """Peak traced bytes (Python and numpy) while `function` runs."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zstd_zip_message_matches_root(fixtures_dir, expected, context):
    body = th2f_body(fixtures_dir)
    payload = zip_message(body, [root_block(b"ZS", zstandard.ZstdCompressor().compress(body), len(body))])
    assert len(payload) < len(body)
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(payload, context))
    assert_matches_root(histogram, expected["hists"]["th2f"])


def test_zip_message_of_several_blocks_and_algorithms_matches_root(fixtures_dir, expected, context):
    # ROOT cuts a body into blocks of at most 16 MiB; any mix of algorithms is valid.
    body = th2f_body(fixtures_dir)
    parts = [body[:1000], body[1000:2000], body[2000:]]
    blocks = [
        root_block(b"ZS", zstandard.ZstdCompressor().compress(parts[0]), len(parts[0])),
        root_block(b"XZ", lzma.compress(parts[1]), len(parts[1])),
        root_block(b"ZL", zlib.compress(parts[2]), len(parts[2])),
    ]
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(zip_message(body, blocks), context))
    assert_matches_root(histogram, expected["hists"]["th2f"])


def test_huge_declared_size_is_refused_without_allocating_it(fixtures_dir):
    payload = bytearray((fixtures_dir / "th2f_compressed.tmessage.bin").read_bytes())
    payload[8:12] = struct.pack(">I", 0x7FFFFFF0)  # what made uproot allocate 2 GB

    def decode():
        with pytest.raises(DecodeError, match=r"declares 2147483632 uncompressed bytes"):
            tmessage.decode_tmessage(bytes(payload))

    assert peak_allocation(decode) < 1 << 20


def test_declared_size_must_equal_the_sum_of_the_blocks(fixtures_dir):
    body = th2f_body(fixtures_dir)
    block = root_block(b"ZL", zlib.compress(body), len(body))
    assert tmessage.decode_tmessage(zip_message(body, [block])) is not None
    for declared in (len(body) + 8 + 1000, len(body) + 8 - 1):
        with pytest.raises(DecodeError, match="compression blocks hold"):
            tmessage.decode_tmessage(zip_message(body, [block], declared=declared))


def test_blocks_adding_up_to_more_than_the_cap_are_refused_before_decompressing():
    # 17 valid zlib blocks of 16 MiB zeros each: 272 MiB declared, over the 256 MiB cap.
    block_size = 0xFFFFFF
    block = root_block(b"ZL", zlib.compress(bytes(block_size)), block_size)
    payload = zip_message(b"", [block] * 17, declared=17 * block_size + 8)

    def decode():
        with pytest.raises(DecodeError, match=f"outside 9..{compression.MAX_UNCOMPRESSED_BYTES + 8}"):
            tmessage.decode_tmessage(payload)

    assert peak_allocation(decode) < 16 << 20  # the payload itself is about 300 kB


def test_a_block_that_inflates_beyond_its_header_is_refused_without_inflating_it():
    bomb = zlib.compress(bytes(100 << 20))  # 100 MiB of zeros in about 100 kB, declared as 1000 bytes
    payload = zip_message(bytes(1000), [root_block(b"ZL", bomb, 1000)])

    def decode():
        with pytest.raises(DecodeError, match="does not decompress to the 1000 bytes"):
            tmessage.decode_tmessage(payload)

    assert peak_allocation(decode) < 8 << 20


BODY = bytes(range(40))  # TMessages are at least 34 bytes (ZMQTMessage::Extract)


@pytest.mark.parametrize(
    "blocks,error",
    [
        ([b"QQ\x01" + bytes(6) + BODY], "unknown compression algorithm b'QQ'"),
        ([root_block(b"ZL", BODY, 40)[:-1]], "claims 40 bytes, 1 more than the message holds"),
        ([root_block(b"ZL", zlib.compress(BODY), 40) + b"\x00\x01"], "header at byte .* is cut off"),
        ([root_block(b"ZL", zlib.compress(BODY), 40), root_block(b"ZL", b"", 0)], "empty compression block"),
        ([root_block(b"CS", BODY, 40)], "CS compression is not supported"),
        (
            [root_block(b"ZL", b"not zlib" * 5, 40)],
            "cannot decompress kMESS_ZIP payload: ZL block 0 is corrupt",
        ),
        ([root_block(b"ZL", zlib.compress(BODY[:39]), 40)], "does not decompress to the 40 bytes"),
        ([root_block(b"L4", bytes(8) + BODY, 40)], "LZ4 block checksum"),
    ],
)
def test_bad_compression_blocks_are_a_decode_error(blocks, error):
    with pytest.raises(DecodeError, match=error):
        tmessage.decode_tmessage(zip_message(BODY, blocks))


# --- streamer blocks on disk: several writers at once -------------------------------------------------


def test_concurrent_saves_of_the_same_blocks_all_succeed(tmp_path):
    directory = tmp_path / "streamers"
    writers = 8
    rounds = 20
    for round_index in range(rounds):
        # A block big enough for writes to overlap; a new one each round, so every round races.
        payload = bytes([round_index]) * (1 << 20)
        barrier = threading.Barrier(writers)
        failures: list[BaseException] = []

        def save(payload=payload, barrier=barrier, failures=failures):
            context = StreamerContext()
            context.blocks.append(payload)
            barrier.wait()
            try:
                context.save(directory)
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=save) for _ in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
    saved = sorted(directory.iterdir())
    assert len(saved) == rounds  # no temp file left behind
    for path in saved:
        content = path.read_bytes()
        assert len(content) == 1 << 20 and content == bytes([content[0]]) * (1 << 20)
        assert path.name == f"{hashlib.sha1(content).hexdigest()}{tmessage.STREAMER_FILE_SUFFIX}"


def test_save_repairs_a_damaged_copy_and_keeps_a_good_one(tmp_path, fixtures_dir):
    block = (fixtures_dir / "streamerinfo.tmessage.bin").read_bytes()
    context = StreamerContext()
    context.add_streamer_block(block)
    context.save(tmp_path)
    [path] = tmp_path.iterdir()
    path.write_bytes(block[:100])  # e.g. cut short by a full disk
    context.save(tmp_path)
    assert path.read_bytes() == block
    context.save(tmp_path)  # already there with the same content: nothing to do, no error
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- classes the store does not hold ----------------------------------------------------------------


def profile_payload(class_name: str = "TProfile", name: str = "prof") -> bytes:
    """A TProfile(2D) as uproot writes it: per-bin sums of y and entry counts, not counts."""
    identify = uproot.writing.identify
    x_axis = identify.to_TAxis("xaxis", "", 4, 0.0, 4.0)
    sums = np.array([0.0, 2.0, 8.0, 18.0, 32.0, 0.0])  # mean y per bin = 2 * bin number
    entries = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 0.0])
    common = dict(
        fName=name,
        fTitle="a profile",
        fEntries=10.0,
        fTsumw=10.0,
        fTsumw2=10.0,
        fTsumwx=25.0,
        fTsumwx2=70.0,
        fTsumwy=60.0,
        fTsumwy2=400.0,
        fBinSumw2=np.array([], dtype=np.float64),
    )
    if class_name == "TProfile":
        model = identify.to_TProfile(data=sums, fSumw2=sums * 2, fBinEntries=entries, fXaxis=x_axis, **common)
    else:
        y_axis = identify.to_TAxis("yaxis", "", 1, 0.0, 1.0)
        model = identify.to_TProfile2D(
            data=np.concatenate([np.zeros(6), sums, np.zeros(6)]),
            fSumw2=np.concatenate([np.zeros(6), sums * 2, np.zeros(6)]),
            fBinEntries=np.concatenate([np.zeros(6), entries, np.zeros(6)]),
            fXaxis=x_axis,
            fYaxis=y_axis,
            fTsumwxy=0.0,
            fTsumwz=0.0,
            fTsumwz2=0.0,
            **common,
        )
    return tmessage.encode_model(model)


@pytest.mark.parametrize("class_name", ["TProfile", "TProfile2D"])
def test_profiles_are_an_unsupported_class_not_a_histogram(class_name):
    model = tmessage.decode_tmessage(profile_payload(class_name))
    assert model.classname == class_name
    with pytest.raises(tmessage.UnsupportedClassError, match=f"unsupported histogram class '{class_name}'"):
        tmessage.histograms_from_model(model)


def test_top_level_class_name_is_read_from_the_class_tag(fixtures_dir):
    assert tmessage.top_level_class_name((fixtures_dir / "th1d.tmessage.bin").read_bytes()) == "TH1D"
    assert tmessage.top_level_class_name(profile_payload()) == "TProfile"
    assert tmessage.top_level_class_name(tmessage.wrap_object_bytes("TCanvas", b"\x00" * 30)) == "TCanvas"
    assert tmessage.top_level_class_name(b"\x00" * 8 + struct.pack(">I", 0x80000010) + b"\x00" * 30) is None


# --- replaying objects kept in folders: fName becomes the full path ---------------------------------


def test_root_key_in_a_folder_is_wrapped_under_its_full_path(tmp_path):
    path = tmp_path / "folders.root"
    with uproot.recreate(path) as root_file:
        root_file["TPCQA/deeper/h_tpc"] = (np.array([4.0, 5.0, 6.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    with uproot.open(path) as root_file:
        key = root_file.key("TPCQA/deeper/h_tpc")
        kept = tmessage.tmessage_from_root_key(key)
        renamed = tmessage.tmessage_from_root_key(key, name="TPCQA/deeper/h_tpc")
    [as_stored] = tmessage.histograms_from_model(tmessage.decode_tmessage(kept))
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(renamed))
    assert (as_stored.name, histogram.name) == ("h_tpc", "TPCQA/deeper/h_tpc")
    assert histogram.values().tolist() == [4.0, 5.0, 6.0]
    assert len(renamed) == len(kept) + len("TPCQA/deeper/")


def test_run2_object_renamed_keeps_its_class_version_and_values(fixtures_dir):
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        payload = tmessage.tmessage_from_root_key(root_file.key("test"), name="EMC/" + "x" * 300)
    # A name of 255 bytes or more takes TString's long form; TH1F v2 / TH1 v7 still need the streamers.
    assert "Unknown_TH1F_v2" in tmessage.unknown_parts(tmessage.decode_tmessage(payload, StreamerContext()))
    ctx = StreamerContext()
    ctx.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    [histogram] = tmessage.histograms_from_model(tmessage.decode_tmessage(payload, ctx))
    assert histogram.name == "EMC/" + "x" * 300
    assert_run2_values(histogram)

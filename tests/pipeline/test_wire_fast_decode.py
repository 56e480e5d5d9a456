"""The fast TMessage path: ROOT's numbers without a schema, identical to the generic uproot path, and a
fallback (None) or DecodeError, never wrong numbers, for everything else."""

from __future__ import annotations

import contextlib
import copy
import struct

import numpy as np
import pytest
import uproot
import uproot.writing.identify as identify

from pipeline.histogram import Histogram
from pipeline.wire import tmessage
from pipeline.wire.fast_decode import decode_histogram, decode_histograms
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.run2_layout import to_run2_layout
from pipeline.wire.tmessage import DecodeError, StreamerContext

ROOT_FIXTURES = {
    "th1d.tmessage.bin": "th1d",
    "th2f.tmessage.bin": "th2f",
    "th2f_compressed.tmessage.bin": "th2f",
    "th2f_lz4.tmessage.bin": "th2f",
}


@pytest.fixture
def schema_context(fixtures_dir):
    """The ROOT 6.40 schema block, which the generic path needs for TAttMarker v3."""
    context = StreamerContext()
    context.add_streamer_block((fixtures_dir / "streamerinfo.tmessage.bin").read_bytes())
    return context


def generic(payload: bytes, context: StreamerContext | None = None) -> list[Histogram]:
    return tmessage.histograms_from_model(tmessage.decode_tmessage(payload, context))


def assert_same(fast: Histogram, reference: Histogram) -> None:
    assert (fast.name, fast.class_name, fast.title) == (reference.name, reference.class_name, reference.title)
    assert fast.entries == reference.entries
    assert fast.axis_titles == reference.axis_titles
    assert len(fast.edges) == len(reference.edges)
    for fast_edges, reference_edges in zip(fast.edges, reference.edges, strict=True):
        assert fast_edges.dtype == np.float64
        np.testing.assert_array_equal(fast_edges, reference_edges)
    for got, want in (
        (fast.values_flow, reference.values_flow),
        (fast.variances_flow, reference.variances_flow),
    ):
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


# --- (1) ROOT's own bytes, no streamer context -------------------------------------------------------


@pytest.mark.parametrize("file_name", ROOT_FIXTURES)
def test_root_640_objects_decode_without_any_schema(fixtures_dir, expected, file_name):
    histogram = decode_histogram((fixtures_dir / file_name).read_bytes())
    truth = expected["hists"][ROOT_FIXTURES[file_name]]
    assert histogram is not None
    assert (histogram.class_name, histogram.name, histogram.title) == (
        truth["class"],
        truth["name"],
        truth["title"],
    )
    assert histogram.axis_titles[:2] == (truth["xtitle"], truth["ytitle"])
    assert histogram.entries == truth["entries"]
    edges = [("nbinsx", "xmin", "xmax"), ("nbinsy", "ymin", "ymax")][: histogram.dimension]
    for axis_edges, (nbins, low, high) in zip(histogram.edges, edges, strict=True):
        np.testing.assert_array_equal(axis_edges, np.linspace(truth[low], truth[high], truth[nbins] + 1))
    np.testing.assert_array_equal(histogram.values_flow, np.array(truth["values_flow"]))
    errors = truth.get("errors_flow", np.sqrt(truth["values_flow"]))  # no Sumw2: sqrt(content)
    np.testing.assert_allclose(histogram.errors(flow=True), errors, rtol=1e-12)
    assert histogram.values().sum() == truth["integral"]


def test_big_endian_length_word(fixtures_dir, expected):
    payload = bytearray((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    payload[:4] = struct.pack(">I", len(payload) - 4)
    histogram = decode_histogram(bytes(payload))
    assert histogram is not None
    np.testing.assert_array_equal(histogram.values_flow, expected["hists"]["th1d"]["values_flow"])


def test_a_reply_of_root_640_objects_needs_no_schema(fixtures_dir):
    payloads = [(name, (fixtures_dir / name).read_bytes()) for name in ROOT_FIXTURES]
    reply = decode_reply(build_reply("run=5", payloads), StreamerContext())
    assert reply.errors == [] and len(reply.histograms) == 4


# --- (2) fast == generic, field by field -------------------------------------------------------------


@pytest.mark.parametrize("file_name", ROOT_FIXTURES)
def test_fast_equals_generic_on_root_bytes(fixtures_dir, schema_context, file_name):
    payload = (fixtures_dir / file_name).read_bytes()
    [reference] = generic(payload, schema_context)
    assert_same(decode_histogram(payload), reference)


def random_histogram(class_name: str, seed: int, variable_edges: bool) -> Histogram:
    rng = np.random.default_rng(seed)
    dimension = int(class_name[2])
    edges = []
    for _ in range(dimension):
        nbins = int(rng.integers(1, 12))
        if variable_edges:
            edges.append(np.sort(rng.uniform(-50.0, 50.0, nbins + 1)))
        else:
            edges.append(np.linspace(rng.uniform(-5, 0), rng.uniform(1, 5), nbins + 1))
    shape = tuple(len(e) + 1 for e in edges)
    if class_name[-1] in "DF":
        values = rng.normal(3.0, 5.0, size=shape)  # negative contents: variances must clip like uproot
        if class_name[-1] == "F":
            values = values.astype(np.float32).astype(np.float64)
    else:
        values = rng.integers(-3, 40, size=shape).astype(np.float64)
    variances = np.abs(values) * rng.uniform(0.5, 2.0, size=shape)
    variances.flat[0] = -1.0  # a negative sumw2 bin: uproot reports 0
    return Histogram(
        name=f"h_{class_name}_{seed}",
        class_name=class_name,
        title=f"random {class_name} é",
        edges=tuple(edges),
        values_flow=values,
        variances_flow=variances,
        entries=float(rng.integers(0, 10_000)),
        axis_titles=("x [cm]", "y #phi", "z"),
    )


def owner_of(model, member: str):
    """The model or base (TH1D -> TH1, TH2F -> TH2 -> TH1) that holds `member`."""
    if member in model._members:
        return model
    return next(owner for base in model._bases if (owner := owner_of(base, member)) is not None)


def encode(histogram: Histogram, sumw2: bool = True, **members) -> bytes:
    """encode_tmessage, with TH1 members uproot's writer does not expose (test-only private access)."""
    model = tmessage.model_from_histogram(histogram)
    if not sumw2:
        members["fSumw2"] = identify.to_TArray(np.array([], dtype=np.float64))
    for member, value in members.items():
        owner_of(model, member)._members[member] = value
    return tmessage.encode_model(model)


CLASSES = ["TH1D", "TH1F", "TH1I", "TH1S", "TH1C", "TH2F", "TH2D", "TH2I", "TH3F", "TH3D"]


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
@pytest.mark.parametrize("variable_edges", [True, False], ids=["variable", "uniform"])
def test_fast_equals_generic_on_encoded_histograms(class_name, sumw2, variable_edges):
    for seed in range(3):
        histogram = random_histogram(class_name, seed, variable_edges)
        payload = encode(histogram, sumw2=sumw2)
        stored_sumw2 = owner_of(tmessage.decode_tmessage(payload), "fSumw2").member("fSumw2")
        assert len(stored_sumw2) == (histogram.values_flow.size if sumw2 else 0)
        fast = decode_histogram(payload)
        assert fast is not None, "a built-in class version must take the fast path"
        [reference] = generic(payload)
        assert_same(fast, reference)
        assert fast.values_flow.flags.c_contiguous and fast.variances_flow.flags.c_contiguous


def test_labelled_axis_takes_the_fast_path():
    # Bin labels do not change edges or contents; they are skipped with the axis byte count.
    histogram = random_histogram("TH1D", 7, variable_edges=False)
    model = tmessage.model_from_histogram(histogram)
    labels = [identify.to_TObjString(f"bin {i}") for i in range(histogram.shape[0])]
    model.member("fXaxis")._members["fLabels"] = identify.to_THashList(labels)
    payload = tmessage.encode_model(model)
    fast = decode_histogram(payload)
    assert fast is not None
    assert_same(fast, generic(payload)[0])


def test_uniform_edges_are_shared_read_only():
    histogram = random_histogram("TH2F", 3, variable_edges=False)
    first, second = (decode_histogram(encode(histogram)) for _ in range(2))
    assert first.edges[0] is second.edges[0]
    assert not first.edges[0].flags.writeable


def test_axes_read_before_are_reused_only_for_the_very_same_bytes(fixtures_dir):
    histogram = random_histogram("TH2F", 5, variable_edges=False)
    retitled = Histogram(
        "retitled",
        "TH2F",
        "t",
        histogram.edges,
        histogram.values_flow,
        histogram.variances_flow,
        1.0,
        ("a", "b"),
    )
    first, second = decode_histogram(encode(histogram)), decode_histogram(encode(retitled))
    assert first.axis_titles != second.axis_titles == ("a", "b", "")
    # A message cut inside the axes of an object decoded just before is still refused.
    payload = (fixtures_dir / "th2f.tmessage.bin").read_bytes()
    assert decode_histogram(payload) is not None
    for cut in (200, 400, len(payload) - 1):
        with pytest.raises(DecodeError):
            decode_histogram(with_length_word(payload[:cut]))


# --- (3) fallback to the generic path ----------------------------------------------------------------


def run2_payload(fixtures_dir) -> bytes:
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        return tmessage.tmessage_from_root_key(root_file.key("test"))


def test_run2_class_versions_fall_back(fixtures_dir):
    payload = run2_payload(fixtures_dir)
    assert decode_histogram(payload) is None  # TH1F v2 / TH1 v7 without their streamers: not read
    with pytest.raises(DecodeError, match="Unknown_TH1F_v2"):
        decode_histograms(payload, StreamerContext())
    context = StreamerContext()
    context.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    [histogram] = decode_histograms(payload, context)
    assert histogram.class_name == "TH1F" and histogram.values_flow[5] == 1.0


# --- (3b) Run-2 class versions: read on the fast path only with streamers that confirm the layout ------


def test_run2_fixture_object_takes_the_fast_path_with_the_files_streamers(fixtures_dir):
    payload = run2_payload(fixtures_dir)
    context = StreamerContext()
    context.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    fast = decode_histogram(payload, context)
    assert fast is not None
    assert_same(fast, generic(payload, context)[0])
    # What FIXTURES.md says ROOT 6.08 wrote: TH1F "test", "testHist", 10 bins on [0, 10], one entry at 4.
    assert (fast.class_name, fast.name, fast.title, fast.entries) == ("TH1F", "test", "testHist", 1.0)
    np.testing.assert_array_equal(fast.edges[0], np.linspace(0.0, 10.0, 11))
    assert fast.values_flow.tolist() == [0.0] * 5 + [1.0] + [0.0] * 6  # bin [4, 5): index 5 after underflow
    assert fast.variances_flow.tolist() == fast.values_flow.tolist()
    # The same streamers as a receiver gets them: a ROOTSTRI block built from the file's.
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        infos = [info for versions in root_file.file.streamers.values() for info in versions.values()]
    from_block = StreamerContext()
    from_block.add_streamer_block(tmessage.encode_streamer_block(infos))
    assert_same(decode_histogram(payload, from_block), fast)
    # The ROOT 6.40 schema does not describe TH1 v7: still the generic path's decision (a failure).
    with pytest.raises(DecodeError, match="Unknown_TH1F_v2"):
        decode_histograms(payload, context_from_block(fixtures_dir / "streamerinfo.tmessage.bin"))


def context_from_block(path) -> StreamerContext:
    context = StreamerContext()
    context.add_streamer_block(path.read_bytes())
    return context


def run2_bytes(payload: bytes) -> bytes:
    """The same histogram as ROOT 5.34 to 6.12 streamed it: the concrete class, TH2/TH3 and TH1 one
    version older (TH1D v2, TH2 v4, TH1 v7, ...), and no TH1::fStatOverflows (added in TH1 v8)."""
    message = bytes(payload)
    dimension = int(message[18:19])  # "TH<d>..."
    return to_run2_layout(message, dimension)


def older_streamer(info, members=None):
    """A copy of a streamer one version older, with its TH1/TH2/TH3 base one version older too."""
    older = copy.copy(info)
    elements = []
    for element in info.elements if members is None else members:
        if element.member("fName") in ("TH1", "TH2", "TH3") and element.has_member("fBaseVersion"):
            element = copy.copy(element)
            element._members = {**element._members, "fBaseVersion": element.member("fBaseVersion") - 1}
        elements.append(element)
    older._members = {**info._members, "fClassVersion": info.class_version - 1, "fElements": elements}
    return older


@pytest.fixture
def run2_context(fixtures_dir):
    """Streamers of the Run-2 versions: ROOT 6.08's own TH1 v7 / TH1F v2, and TH1D, TH2 and TH3 classes
    one version older than those uproot writes (their members did not change between the two)."""
    context = StreamerContext()
    context.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    modern = StreamerContext()
    modern.add_streamer_block(tmessage.streamer_block_for_encoded_histograms())
    older = [
        older_streamer(info)
        for name in ("TH1D", "TH1I", "TH2", "TH2F", "TH2D", "TH3", "TH3F", "TH3D")
        for info in modern.streamers[name].values()
    ]
    context.add_streamer_infos(older)
    return context


RUN2_CLASSES = ["TH1F", "TH1D", "TH1I", "TH2F", "TH2D", "TH3F", "TH3D"]


@pytest.mark.parametrize("class_name", RUN2_CLASSES)
@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
def test_run2_layouts_with_their_streamers_read_like_the_generic_path(run2_context, class_name, sumw2):
    for seed in range(2):
        histogram = random_histogram(class_name, seed, variable_edges=bool(seed))
        payload = run2_bytes(encode(histogram, sumw2=sumw2))
        fast = decode_histogram(payload, run2_context)
        assert fast is not None, "a Run-2 version whose streamers are known must take the fast path"
        [reference] = generic(payload, run2_context)  # uproot classes built from those streamers
        assert_same(fast, reference)
        np.testing.assert_array_equal(fast.values_flow, histogram.values_flow)
        # Without the streamers: not read here, and a decode failure on the generic path.
        assert decode_histogram(payload) is None
        with pytest.raises(DecodeError, match="Unknown"):
            decode_histograms(payload, StreamerContext())


def test_run2_streamers_listing_other_members_keep_the_generic_path(run2_context):
    payload = run2_bytes(encode(random_histogram("TH2F", 1, variable_edges=False)))
    assert decode_histogram(payload, run2_context) is not None
    # The same versions, but a TH2 v4 streamer that lists one member fewer: another layout.
    context = StreamerContext()
    context.add_streamer_infos(
        info
        for versions in run2_context.streamers.values()
        for info in versions.values()
        if (info.name, info.class_version) != ("TH2", 4)
    )
    modern_th2 = context_from_encoded().streamers["TH2"][5]
    context.add_streamer_infos([older_streamer(modern_th2, members=modern_th2.elements[:-1])])
    assert decode_histogram(payload, context) is None


def context_from_encoded() -> StreamerContext:
    context = StreamerContext()
    context.add_streamer_block(tmessage.streamer_block_for_encoded_histograms())
    return context


# --- (3c) variances exactly as uproot gives them --------------------------------------------------------


def test_unweighted_contents_are_one_read_only_array_for_values_and_variances():
    histogram = random_histogram("TH2F", 4, variable_edges=False)
    counts = np.abs(histogram.values_flow)
    unweighted = Histogram(
        histogram.name, "TH2F", "", histogram.edges, counts, counts, 10.0, histogram.axis_titles
    )
    payload = encode(unweighted, sumw2=False)
    fast = decode_histogram(payload)
    assert fast.variances_flow is fast.values_flow and not fast.values_flow.flags.writeable
    assert_same(fast, generic(payload)[0])
    with pytest.raises(ValueError, match="read-only"):
        fast.values_flow[0, 0] = 1.0


@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
def test_variances_of_negative_nan_and_negative_zero_bins_are_uproots_bit_for_bit(sumw2):
    histogram = random_histogram("TH1D", 5, variable_edges=False)
    odd = np.abs(histogram.values_flow)
    odd[:4] = [-0.0, -2.5, np.nan, np.inf]
    histogram = Histogram(histogram.name, "TH1D", "", histogram.edges, odd, odd.copy(), 3.0)
    payload = encode(histogram, sumw2=sumw2)
    fast = decode_histogram(payload)
    [reference] = generic(payload)
    assert fast.variances_flow is not fast.values_flow
    assert fast.variances_flow.tobytes() == reference.variances_flow.tobytes()  # +0.0 for -0.0 and NaN
    assert fast.variances_flow[:4].tolist() == [0.0, 0.0, 0.0, np.inf]
    assert np.signbit(fast.variances_flow[0]) == np.False_


def test_collections_fall_back(fixtures_dir, expected, schema_context):
    payload = (fixtures_dir / "objarray_2h.tmessage.bin").read_bytes()
    assert decode_histogram(payload) is None
    first, second = decode_histograms(payload, schema_context)
    np.testing.assert_array_equal(first.values_flow, expected["hists"]["th1d"]["values_flow"])
    assert second.name == expected["hists"]["th1d_copy"]["name"]


def test_streamer_block_falls_back_and_is_rejected(fixtures_dir):
    payload = (fixtures_dir / "streamerinfo.tmessage.bin").read_bytes()
    assert decode_histogram(payload) is None
    with pytest.raises(DecodeError, match="unsupported histogram class"):
        decode_histograms(payload)


def test_fitted_functions_fall_back():
    histogram = random_histogram("TH1D", 1, variable_edges=True)
    payload = encode(histogram, fFunctions=identify.to_TList([identify.to_TObjString("a fit")]))
    assert decode_histogram(payload) is None
    assert_same(decode_histograms(payload)[0], generic(payload)[0])


def test_unbinned_buffer_falls_back():
    histogram = random_histogram("TH1F", 2, variable_edges=False)
    model = tmessage.model_from_histogram(histogram)
    th1 = owner_of(model, "fBuffer")
    th1._members["fBufferSize"] = 3
    th1._members["fBuffer"] = np.array([1.0, 0.5, 2.0], dtype=">f8")
    th1._speedbump1 = b"\x01"  # fBuffer's "array follows" byte
    payload = tmessage.encode_model(model)
    assert decode_histogram(payload) is None
    assert decode_histograms(payload)[0].name == histogram.name


def test_profiles_fall_back():
    profile = identify.to_TProfile(
        fName="p",
        fTitle="profile",
        data=np.zeros(4),
        fEntries=0.0,
        fTsumw=0.0,
        fTsumw2=0.0,
        fTsumwx=0.0,
        fTsumwx2=0.0,
        fTsumwy=0.0,
        fTsumwy2=0.0,
        fSumw2=np.zeros(4),
        fBinEntries=np.zeros(4),
        fBinSumw2=np.zeros(4),
        fXaxis=identify.to_TAxis("xaxis", "", 2, 0.0, 1.0),
    )
    assert decode_histogram(tmessage.encode_model(profile)) is None


# --- (4) corrupted bytes: DecodeError or None, never another exception, never wrong numbers -----------


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda b: b[:20], "too short"),
        (lambda b: b[:-10], "length word"),
        (lambda b: b[:4] + struct.pack(">I", 7) + b[8:], "kMESS_OBJECT"),
        (lambda b: b[:4] + struct.pack(">I", 4 | 0x20000000) + b[8:], "decompress"),
    ],
)
def test_bad_framing_raises_like_the_generic_path(fixtures_dir, mutate, error):
    with pytest.raises(DecodeError, match=error):
        decode_histogram(mutate((fixtures_dir / "th1d.tmessage.bin").read_bytes()))


def with_length_word(body: bytes) -> bytes:
    return struct.pack("<I", len(body) - 4) + body[4:]


def test_truncated_object_with_a_valid_length_word_is_a_decode_error(fixtures_dir):
    payload = (fixtures_dir / "th2f.tmessage.bin").read_bytes()
    for cut in (40, 200, 1000, len(payload) - 1):
        with pytest.raises(DecodeError):
            decode_histogram(with_length_word(payload[:cut]))


def test_byte_counts_must_agree(fixtures_dir):
    payload = bytearray((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    th1_header = 27  # after the TH1D's own byte count and version
    assert payload[th1_header : th1_header + 6] == bytes.fromhex("400003830008")  # count, version 8
    payload[th1_header + 3] -= 1  # TH1 claims one byte less than it holds
    with pytest.raises(DecodeError):
        decode_histogram(bytes(payload))


def test_corrupt_bin_count_on_the_fallback_path_is_refused_before_allocating_edges(
    fixtures_dir, schema_context
):
    # Found by fuzzing: an unknown TNamed version sends the object to the generic path, whose
    # x-axis fNbins is now 167,772,200; uproot's edges() would build a 1.3 GB linspace first.
    payload = bytearray((fixtures_dir / "th1d.tmessage.bin").read_bytes())
    payload[207] = 10  # high byte of the x axis fNbins (40)
    payload[381] = 185  # low byte of the z axis TNamed version (1)
    assert decode_histogram(bytes(payload)) is None
    with pytest.raises(DecodeError, match="do not match the axes"):
        decode_histograms(bytes(payload), schema_context)


def mutations(payload: bytes, count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        kind = rng.integers(3)
        if kind == 0:  # flip one to three bytes after the length word
            mutated = bytearray(payload)
            for position in rng.integers(8, len(payload), size=rng.integers(1, 4)):
                mutated[position] ^= int(rng.integers(1, 256))
            yield bytes(mutated)
        elif kind == 1:  # truncate and fix the length word, so the object parser sees it
            yield with_length_word(payload[: rng.integers(34, len(payload))])
        else:  # append garbage and fix the length word
            yield with_length_word(payload + rng.bytes(int(rng.integers(1, 64))))


@pytest.mark.parametrize("file_name", ["th1d.tmessage.bin", "th2f.tmessage.bin"])
def test_fuzzed_payloads_never_raise_anything_but_decode_error(fixtures_dir, schema_context, file_name):
    payload = (fixtures_dir / file_name).read_bytes()
    outcomes = {"fast": 0, "fallback": 0, "error": 0}
    for mutated in mutations(payload, 200, seed=len(file_name)):
        try:
            fast = decode_histogram(mutated)
        except DecodeError:
            outcomes["error"] += 1
            continue
        if fast is None:
            outcomes["fallback"] += 1
            with contextlib.suppress(DecodeError):  # the generic path may accept it, or reject it
                decode_histograms(mutated, schema_context)
            continue
        outcomes["fast"] += 1
        # Whatever the fast path accepts, the generic path reads identically from the same bytes.
        [reference] = generic(mutated, schema_context)
        assert_same(fast, reference)
    assert outcomes["error"] > 0 and outcomes["fast"] > 0, outcomes

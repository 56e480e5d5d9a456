"""Layout plans of the fast path: after one object of a layout was read field by field, later objects
of exactly that layout are read by the plan, with the same result as the byte walk and the generic
path; an object that differs in any structural byte is read (or refused) by the walk."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
import uproot

from pipeline.histogram import Histogram
from pipeline.wire import fast_decode
from pipeline.wire.fast_decode import decode_histogram, decode_histograms
from pipeline.wire.tmessage import DecodeError, StreamerContext, tmessage_from_root_key
from tests.pipeline.test_wire_fast_decode import CLASSES, assert_same, encode, generic


@pytest.fixture
def walks(monkeypatch) -> list[str]:
    """Names of the objects the byte walk read (every other object took a plan); no plan learned yet."""
    monkeypatch.setattr(fast_decode, "_PLANS", {})
    monkeypatch.setattr(fast_decode, "_HEADS", {})
    walked: list[str] = []
    walk = fast_decode._walk_object

    def counting_walk(*args):
        histogram = walk(*args)
        walked.append(histogram.name)
        return histogram

    monkeypatch.setattr(fast_decode, "_walk_object", counting_walk)
    return walked


def same_binning(class_name: str, seed: int, name: str, title: str = "a title") -> Histogram:
    """Histograms that differ in name, title, contents, variances and entries, never in binning."""
    rng = np.random.default_rng(seed)
    dimension = int(class_name[2])
    edges = tuple(np.linspace(-1.0, 1.0, 4 + axis) for axis in range(dimension))
    shape = tuple(len(e) + 1 for e in edges)
    if class_name[-1] in "DF":
        values = rng.normal(3.0, 5.0, size=shape)  # negative bins too: variances clip like uproot's
        if class_name[-1] == "F":
            values = values.astype(np.float32).astype(np.float64)
    else:
        values = rng.integers(-3, 40, size=shape).astype(np.float64)
    variances = np.abs(values) * rng.uniform(0.5, 2.0, size=shape)
    return Histogram(name, class_name, title, edges, values, variances, float(seed * 1000 + 7), ("x", "y"))


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
def test_objects_of_a_learned_layout_take_the_plan_and_read_like_the_generic_path(walks, class_name, sumw2):
    names = ["h", "a_much_longer_name/with_a_path", "hé", "h3"]
    titles = ["t", "", "a title with µ and a length of more than forty bytes", "t"]
    for seed, (name, title) in enumerate(zip(names, titles, strict=True)):
        histogram = same_binning(class_name, seed, name, title)
        payload = encode(histogram, sumw2=sumw2)
        fast = decode_histogram(payload)
        [reference] = generic(payload)
        assert_same(fast, reference)
        np.testing.assert_array_equal(fast.values_flow, histogram.values_flow)
        if not sumw2 and (reference.values_flow > 0).all():
            assert fast.variances_flow is fast.values_flow
    assert walks == ["h"], "only the first object of the layout is walked"


def test_an_object_with_another_binning_of_the_same_size_is_walked(walks):
    first = same_binning("TH2F", 1, "first")
    decode_histogram(encode(first))
    # Same sizes everywhere (so the same bytes after the title), other edges: the axes as streamed differ.
    wider = Histogram(
        "wider", "TH2F", first.title, tuple(e * 2 for e in first.edges), first.values_flow,
        first.variances_flow, 3.0, first.axis_titles,
    )  # fmt: skip
    payload = encode(wider)
    fast = decode_histogram(payload)
    assert_same(fast, generic(payload)[0])
    np.testing.assert_array_equal(fast.edges[0], np.linspace(-2.0, 2.0, 4))
    assert walks == ["first", "wider"]


def test_a_member_the_plan_did_not_see_sends_the_object_to_the_walk(walks):
    decode_histogram(encode(same_binning("TH1D", 1, "plain")))
    # fBinStatErrOpt is one of the fixed members after fSumw2: same size, other bytes.
    payload = encode(same_binning("TH1D", 2, "other"), fBinStatErrOpt=1)
    fast = decode_histogram(payload)
    assert_same(fast, generic(payload)[0])
    assert walks == ["plain", "other"]


def test_a_wrong_byte_count_in_a_learned_layout_is_still_refused(walks):
    decode_histogram(encode(same_binning("TH1D", 1, "plain")))
    payload = bytearray(encode(same_binning("TH1D", 2, "other")))
    class_end = payload.index(b"TH1D\0") + 5
    th1_count = class_end + 6  # after TH1D's own byte count and version
    payload[th1_count + 3] += 1  # TH1 now claims one byte more than TH1D holds
    with pytest.raises(DecodeError, match=r"TH1 ends at byte [0-9]+, its byte count says"):
        decode_histogram(bytes(payload))  # the plan did not take it: the walk says what is wrong


# ---- read_planned: the reply loop's fast route --------------------------------------------------


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
def test_read_planned_reads_a_learned_layout_like_the_generic_path(walks, class_name, sumw2):
    first, second = (encode(same_binning(class_name, seed, f"h{seed}"), sumw2=sumw2) for seed in (1, 2))
    assert fast_decode.read_planned(first) is None  # no plan yet: the caller takes the full path
    decode_histogram(first)  # the walk learns the layout
    planned = fast_decode.read_planned(second)
    [reference] = generic(second)
    assert_same(planned.histogram, reference)
    assert walks == ["h1"]
    # Proven finite only without fSumw2 and with every bin a finite number >= +0.0 (same_binning
    # fills negative bins for most classes and seeds): otherwise the reply checks every number.
    values = reference.values_flow
    finite_and_non_negative = bool(np.isfinite(values).all() and not np.signbit(values).any())
    assert planned.numbers_finite == (not sumw2 and finite_and_non_negative)


def test_read_planned_says_finite_only_for_finite_non_negative_unweighted_bins(walks):
    edges = (np.linspace(0.0, 1.0, 5),)

    def th1d(name: str, values: list[float]) -> bytes:
        array = np.array(values)
        return encode(Histogram(name, "TH1D", "", edges, array, array, 1.0), sumw2=False)

    decode_histogram(th1d("learn", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]))
    cases = {
        "counts": [0.0, 1.0, 2.0, 3.0, 4.0, 1e300],
        "infinite": [0.0, 1.0, np.inf, 3.0, 4.0, 5.0],
        "nan": [0.0, 1.0, 2.0, np.nan, 4.0, 5.0],
        "negative": [0.0, -1.0, 2.0, 3.0, 4.0, 5.0],
        "minus_zero": [0.0, 1.0, -0.0, 3.0, 4.0, 5.0],
    }
    with np.errstate(invalid="ignore", over="ignore"):  # the encoder's statistics of inf and NaN bins
        read = {name: fast_decode.read_planned(th1d(name, values)) for name, values in cases.items()}
    assert {name: planned.numbers_finite for name, planned in read.items()} == {
        "counts": True,
        "infinite": False,
        "nan": False,
        "negative": False,
        "minus_zero": False,
    }
    assert walks == ["learn"], "every case took the plan"
    assert read["counts"].histogram.variances_flow is read["counts"].histogram.values_flow
    np.testing.assert_array_equal(read["negative"].histogram.variances_flow, [0, 0, 2, 3, 4, 5])


def test_read_planned_leaves_other_framings_to_the_full_path(walks):
    learned = encode(same_binning("TH1D", 1, "learned"))
    decode_histogram(learned)
    payload = encode(same_binning("TH1D", 2, "next"))
    size = len(payload)
    big_endian = struct.pack(">I", size - 4) + payload[4:]
    assert_same(fast_decode.read_planned(big_endian).histogram, generic(payload)[0])

    def with_word(data: bytes, at: int, word: int) -> bytes:
        return data[:at] + struct.pack(">I", word) + data[at + 4 :]

    refused = {
        "one byte short": payload[:-1],
        "a wrong length word": with_word(payload, 0, size),
        "another message type": with_word(payload, 4, 7),
        "compressed flag": with_word(payload, 4, 4 | 0x20000000),
        # a byte after the object, the length word counting it: the object no longer fills the message
        "a byte after the object": struct.pack("<I", size - 3) + payload[4:] + b"\0",
        "byte count without its flag": with_word(payload, 8, size - 12),
        "a reference, not a new class tag": with_word(payload, 12, 0x80000010),
    }
    assert {what: fast_decode.read_planned(data) for what, data in refused.items()} == dict.fromkeys(refused)
    assert fast_decode.read_planned("not bytes") is None  # type: ignore[arg-type]
    for data in refused.values():  # ... which the full path refuses or reads, as before
        try:
            fast = fast_decode.decode_histograms(data)
        except DecodeError as error:
            with pytest.raises(DecodeError) as generic_error:
                generic(data)
            assert type(error) is type(generic_error.value)
        else:
            assert [h.name for h in fast] == [h.name for h in generic(data)]
    assert walks == ["learned"], "nothing refused here reached the walk by way of a plan"


def test_checked_parts_make_the_same_histogram_as_the_constructor():
    # `from_checked_parts` fills the fields itself: a field added to Histogram must be added there too.
    reference = same_binning("TH2F", 3, "h")
    parts = {field.name: getattr(reference, field.name) for field in dataclasses.fields(Histogram)}
    made = Histogram.from_checked_parts(**parts)
    assert vars(made) == vars(reference)


# ---- heads: the first bytes of a message already read by a plan ----------------------------------


def same_planned(got: fast_decode.PlannedHistogram | None, want: fast_decode.PlannedHistogram | None) -> bool:
    if got is None or want is None:
        return got is want
    g, w = got.histogram, want.histogram
    return (
        got.numbers_finite == want.numbers_finite
        and vars(g).keys() == vars(w).keys()
        and (g.name, g.class_name, g.title, g.entries, g.axis_titles)
        == (w.name, w.class_name, w.title, w.entries, w.axis_titles)
        and all(a is b for a, b in zip(g.edges, w.edges, strict=True))
        and np.array_equal(g.values_flow, w.values_flow, equal_nan=True)
        and np.array_equal(g.variances_flow, w.variances_flow, equal_nan=True)
        and (g.variances_flow is g.values_flow) == (w.variances_flow is w.values_flow)
    )


@pytest.fixture
def framed_reads(monkeypatch, walks) -> list[bytes]:
    """The messages `read_planned` checked field by field (every other one took a known head)."""
    framed: list[bytes] = []
    read_framed = fast_decode._read_planned_framed

    def counting(message, context, arenas=None):
        framed.append(message)
        return read_framed(message, context, arenas)

    monkeypatch.setattr(fast_decode, "_read_planned_framed", counting)
    return framed


@pytest.mark.parametrize("class_name", ["TH1D", "TH2F", "TH3D"])
@pytest.mark.parametrize("sumw2", [True, False], ids=["sumw2", "no-sumw2"])
def test_objects_of_a_known_head_skip_the_framed_checks_and_read_the_same(framed_reads, class_name, sumw2):
    payloads = [encode(same_binning(class_name, seed, f"h{seed}"), sumw2=sumw2) for seed in range(1, 6)]
    decode_histogram(payloads[0])  # the walk learns the plan
    first = fast_decode.read_planned(payloads[1])  # the plan reads it: its head is learned
    assert first is not None and len(framed_reads) == 1
    for payload in payloads[2:]:  # same lengths of name and title: the same head
        planned = fast_decode.read_planned(payload)
        assert_same(planned.histogram, generic(payload)[0])
    assert len(framed_reads) == 1, "later objects of the head skipped the framed checks"
    assert fast_decode.read_planned(bytearray(payloads[2])) is not None
    assert same_planned(
        fast_decode.read_planned(memoryview(payloads[3])), fast_decode.read_planned(payloads[3])
    )


@pytest.mark.parametrize("class_name", ["TH1D", "TH2F"])
def test_a_known_head_accepts_and_refuses_every_changed_byte_as_the_framed_checks_do(walks, class_name):
    # Every byte of a message whose head is known, changed in three ways (flag bits, the kIsReferenced
    # bit, the top bit), and a few whole changes: read with the head known, and with no head known
    # (the framed checks, then the plan), the answer is the same.
    decode_histogram(encode(same_binning(class_name, 1, "learn")))
    payload = encode(same_binning(class_name, 2, "next"))
    assert fast_decode.read_planned(payload) is not None
    heads = dict(fast_decode._HEADS)
    assert len(heads) == 1
    [head] = heads.values()
    name_at = head.name_at
    title_at = name_at + 1 + payload[name_at]

    def changed(at: int, value: int) -> bytes:
        return payload[:at] + bytes([value]) + payload[at + 1 :]

    variants = {
        f"byte {at} ^ {flip:#x}": changed(at, payload[at] ^ flip)
        for at in range(len(payload))
        for flip in (0x01, 0x10, 0x80)
    }
    variants |= {
        "one byte short": payload[:-1],
        "one byte more": payload + b"\0",
        "name as a long string": changed(name_at, 255),
        "title as a long string": changed(title_at, 255),
        "a longer name, the title shorter": changed(name_at, payload[name_at] + 1),
        "the first bytes only": payload[: fast_decode._HEAD_SIZE],
    }
    taken_with_head = 0
    for what, variant in variants.items():
        fast_decode._HEADS.clear()
        fast_decode._HEADS.update(heads)
        with_head = fast_decode.read_planned(variant)
        fast_decode._HEADS.clear()
        framed = fast_decode.read_planned(variant)
        assert same_planned(with_head, framed), what
        taken_with_head += with_head is not None
    # Most changes are in numbers (read, not refused) or structure (refused): both kinds were met.
    assert 0 < taken_with_head < len(variants)
    assert walks == ["learn"]


def test_a_known_head_of_a_run2_layout_needs_the_streamers_that_make_it_readable(walks, fixtures_dir):
    context = StreamerContext()
    context.add_streamers_from_root_file(fixtures_dir / "run2_root608_th1f.root")
    with uproot.open(fixtures_dir / "run2_root608_th1f.root") as root_file:
        key = root_file.key("test")
        payloads = [tmessage_from_root_key(key, name=f"run2_{index}") for index in range(3)]
    decode_histograms(payloads[0], context)  # the walk learns the plan, with this context's versions
    assert fast_decode.read_planned(payloads[1], context) is not None  # the head is learned
    assert len(fast_decode._HEADS) == 1
    assert fast_decode.read_planned(payloads[2]) is None  # without streamers, TH1 v7 is not readable
    assert fast_decode.read_planned(payloads[2], StreamerContext()) is None
    planned = fast_decode.read_planned(payloads[2], context)
    assert_same(planned.histogram, generic(payloads[2], context)[0])


def test_a_known_head_refuses_a_long_string_marker_even_where_the_lengths_add_up(walks):
    # With 258 bytes of name and title, a length byte of 255 (a 4-byte length follows: a long string,
    # which plans do not read) can make the lengths end exactly at the head's title end.
    title = "t" * 252 + "\x01" + "t"
    decode_histogram(encode(same_binning("TH1D", 1, "ab", title)))
    payload = encode(same_binning("TH1D", 2, "cd", title))
    assert fast_decode.read_planned(payload) is not None  # the head is learned
    [head] = fast_decode._HEADS.values()
    name_at = head.name_at
    assert head.title_end == name_at + 258
    changed = bytearray(payload)
    changed[name_at] = 255  # the title's length byte would be the "\x01" near its end: ends at title_end
    name_marker = bytes(changed)
    changed = bytearray(payload)
    changed[name_at : name_at + 3] = b"\x01c\xff"  # a 1-byte name, then a title "length" of 255
    title_marker = bytes(changed)
    for variant in (name_marker, title_marker):
        assert fast_decode.read_planned(variant) is None
        assert fast_decode._read_planned_framed(variant, None) is None
    assert walks == ["ab"]


def test_heads_are_forgotten_with_the_plans(walks, monkeypatch):
    monkeypatch.setattr(fast_decode, "_PLANS_MAX", 2)
    for class_name in ("TH1D", "TH1F"):
        decode_histogram(encode(same_binning(class_name, 1, "a")))
        assert fast_decode.read_planned(encode(same_binning(class_name, 2, "b"))) is not None
    assert len(fast_decode._PLANS) == 2
    assert len(fast_decode._HEADS) == 2
    decode_histogram(encode(same_binning("TH2F", 1, "a")))  # a third plan: the plans were full
    assert [class_name for class_name, _size in fast_decode._PLANS] == ["TH2F"]
    assert fast_decode._HEADS == {}

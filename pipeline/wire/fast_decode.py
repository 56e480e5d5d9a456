"""Fast TMessage decoding: TH1/TH2/TH3 of known class versions, read straight into numpy.

The generic path (`tmessage.decode_tmessage` + `histograms_from_model`) builds an uproot model object
per histogram, about 0.5 ms each. The streamer layouts of these classes are fixed (PROTOCOL.md section
7), so this module walks the bytes with a few `struct` reads per sub-object, takes the bin arrays with
`np.frombuffer`, and reads each distinct axis once per process: about 25 times faster.

Which class versions it reads:
- the ones uproot has built in (ROOT 6.14 and later: TH1 v8, TH2 v5, TH3 v6, TH1x v3, TH2x/TH3x v4),
  with no schema at all;
- the Run-2 ones (ROOT 5.34 to 6.12: TH1 v7, TH2 v4, TH3 v5, TH1x v2, TH2x/TH3x v3) only when the
  streamer context holds their streamers and those list exactly the members this module reads. Without
  a schema these stay a decode failure, as for ROOT itself (FIXTURES.md, PROTOCOL.md section 6).

Outcome of `decode_histogram`:
- a `Histogram` equal, field by field, to what the generic path makes of the same bytes;
- `None` for anything outside the known set (other classes or versions, collections, a non-empty
  fFunctions list or fBuffer, ...), so that the caller falls back to the generic path;
- `DecodeError` for a known layout whose bytes are inconsistent (anything read past the message, a
  byte count that disagrees with what the layout says, contents that do not match the axes).

Unweighted histograms (no fSumw2, and no negative, -0.0 or NaN bin) get one read-only array as both
their values and their variances: they are the same numbers, and the store keeps them once.

Layout plans: the first object of a layout (class and versions, axes as streamed, array sizes) is read
field by field; later objects of exactly that layout are read by the plan learned from it, with two
struct reads and a few comparisons (see "layout plans" below). Any structural byte that differs sends
the object back to the field-by-field walk, so both ways accept and refuse the same bytes. A reply's
objects of one plan also share their first 47 bytes (framing, class, the prefix's byte counts and
versions: a "head"), so after one of them passed those checks, the others are found by those bytes.

`decode_histograms` is the one entry point a receiver needs: fast path first, generic path otherwise.
A reply's loop (`messages.decode_reply`) calls `read_planned` first: the plans alone, for the usual
object of a reply, with the framing checks inline; None sends the object to `decode_histograms`.
"""

from __future__ import annotations

import math
import struct
import weakref
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple, NoReturn

import numpy as np

from pipeline.bin_arena import BinArena, ReplyArenas
from pipeline.histogram import Histogram
from pipeline.wire.text import root_text
from pipeline.wire.tmessage import (
    KMESS_OBJECT,
    DecodeError,
    StreamerContext,
    decode_tmessage,
    histograms_from_model,
    length_word_matches,
    open_message,
)

__all__ = ["PlannedHistogram", "decode_histogram", "decode_histograms", "read_planned"]

_BYTE_COUNT_MASK = 0x40000000
_CLASS_MASK = 0x80000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_VERSION_HAS_BYTE_COUNT = 0x4000  # kByteCountVMask: an old-style TObject version word, 4 more bytes
_IS_REFERENCED = 1 << 4  # TObject::kIsReferenced: a 2-byte process id follows fBits
_OBJECT_START = 8  # after the length word and fWhat; back-reference offsets count from byte 0
# A float64 whose bits, read as uint64, are above this is NaN or has its sign bit set.
_POSITIVE_INFINITY_BITS = 0x7FF0000000000000

# Each struct reads a run of fixed-size fields at once: a Python call per field costs more than the
# field. `x` skips bytes the histogram does not need (their size is fixed by the version checked).
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")  # (byte count | mask, class tag) of the top-level object
# An uncompressed message's length word, fWhat, then the object's byte count and class tag.
_FRAMED_OBJECT = struct.Struct(">IIII")
_HEADER = struct.Struct(">Ih")  # byte count | mask, version
_TOBJECT = struct.Struct(">HII")  # version, fUniqueID, fBits (its size: the plain TObject's)
# An object's header, then its TNamed header and TObject (TH1, TAxis); TNamed or TList alone.
_HEADER_NAMED = struct.Struct(">IhIhHII")
_NAMED = struct.Struct(">IhHII")
# TAttLine (6 bytes), TAttFill (4) and TAttMarker (8), each with its header, then TH1::fNcells.
_ATTRIBUTES = struct.Struct(">Ih6xIh4xIh8xi")
_ATTRIBUTE_COUNTS = (_BYTE_COUNT_MASK | 8, _BYTE_COUNT_MASK | 6, _BYTE_COUNT_MASK | 10)
# TAttAxis (34 bytes) with its header, then fNbins, fXmin, fXmax and fXbins.fN.
_AXIS_BODY = struct.Struct(">Ih34xiddi")
_AXIS_BODY_COUNT = _BYTE_COUNT_MASK | 36
_AXIS_RANGE_OFFSET = 40  # fNbins, fXmin, fXmax within _AXIS_BODY: the key of cached uniform edges
_AXIS_RANGE = struct.Struct(">idd")
# fFirst, fLast, fBits2, fTimeDisplay (skipped); fTimeFormat's length byte; when that is 0, the words
# of the fLabels and fModLabs pointers.
_AXIS_TAIL = struct.Struct(">11xBII")
_AXIS_TAIL_FORMAT = 11
_TH1_STATS = struct.Struct(">4xd56xi")  # fBarOffset, fBarWidth, fEntries, 7 more doubles; fContour.fN
_BUFFER = struct.Struct(">iB")  # fBufferSize, then 1 when fBuffer's array follows
_TH1_TAIL_BYTES = {7: 4, 8: 8}  # fBinStatErrOpt; v8 (ROOT 6.14) added fStatOverflows
# What TH2 / TH3 store after their TH1 base: 4 / 7 doubles of moments (TH3 also has TAtt3D first).
_MOMENT_BYTES = {2: 4 * 8, 3: 7 * 8}
_F8 = np.dtype(">f8")


class _Kind(NamedTuple):
    name: str
    dimension: int
    base: str  # the class between it and TH1: TH2 or TH3 ("" for TH1x)
    content_dtype: np.dtype


def _known_kinds() -> dict[bytes, _Kind]:
    dtypes = {"C": ">i1", "S": ">i2", "I": ">i4", "F": ">f4", "D": ">f8"}
    kinds = {}
    for dimension in (1, 2, 3):
        for suffix, dtype in dtypes.items():
            name = f"TH{dimension}{suffix}"
            base = f"TH{dimension}" if dimension > 1 else ""
            kinds[name.encode()] = _Kind(name, dimension, base, np.dtype(dtype))
    return kinds


_KINDS = _known_kinds()

# Versions read without any schema: those uproot has built in, so the generic path agrees.
_BUILTIN_VERSIONS: dict[str, frozenset[int]] = {
    "TH1": frozenset({8}),
    "TH2": frozenset({5}),
    "TH3": frozenset({6}),
    **{kind.name: frozenset({3 if kind.dimension == 1 else 4}) for kind in _KINDS.values()},
}


def _run2_members() -> dict[tuple[str, int], tuple[tuple[str, str], ...]]:
    """Run-2 class versions, and the members (name, type) their streamers must list to be read here."""

    def doubles(*names: str) -> tuple[tuple[str, str], ...]:
        return tuple((name, "double") for name in names)

    th1 = (
        ("TNamed", "BASE"),
        ("TAttLine", "BASE"),
        ("TAttFill", "BASE"),
        ("TAttMarker", "BASE"),
        ("fNcells", "int"),
        ("fXaxis", "TAxis"),
        ("fYaxis", "TAxis"),
        ("fZaxis", "TAxis"),
        ("fBarOffset", "short"),
        ("fBarWidth", "short"),
        *doubles("fEntries", "fTsumw", "fTsumw2", "fTsumwx", "fTsumwx2", "fMaximum", "fMinimum"),
        *doubles("fNormFactor"),
        ("fContour", "TArrayD"),
        ("fSumw2", "TArrayD"),
        ("fOption", "TString"),
        ("fFunctions", "TList*"),
        ("fBufferSize", "int"),
        ("fBuffer", "double*"),
        ("fBinStatErrOpt", "TH1::EBinErrorOpt"),
    )
    members = {
        ("TH1", 7): th1,
        ("TH2", 4): (("TH1", "BASE"), *doubles("fScalefactor", "fTsumwy", "fTsumwy2", "fTsumwxy")),
        ("TH3", 5): (
            ("TH1", "BASE"),
            ("TAtt3D", "BASE"),
            *doubles("fTsumwy", "fTsumwy2", "fTsumwxy", "fTsumwz", "fTsumwz2", "fTsumwxz", "fTsumwyz"),
        ),
    }
    for kind in _KINDS.values():
        version = 2 if kind.dimension == 1 else 3
        members[kind.name, version] = ((kind.base or "TH1", "BASE"), (f"TArray{kind.name[-1]}", "BASE"))
    return members


_RUN2_MEMBERS = _run2_members()
# Per context: (number of streamers it held, versions it lets this module read). Contexts only gain
# streamers, so an unchanged count means an unchanged answer.
_CONTEXT_VERSIONS: weakref.WeakKeyDictionary[StreamerContext, tuple[int, dict[str, frozenset[int]]]] = (
    weakref.WeakKeyDictionary()
)


def _readable_versions(context: StreamerContext | None) -> Mapping[str, frozenset[int]]:
    """The class versions this module may read: built in, plus Run-2 ones the context's streamers confirm."""
    if context is None or not context.streamers:
        return _BUILTIN_VERSIONS
    size = sum(len(versions) for versions in context.streamers.values())
    cached = _CONTEXT_VERSIONS.get(context)
    if cached is not None and cached[0] == size:
        return cached[1]
    readable = {name: set(versions) for name, versions in _BUILTIN_VERSIONS.items()}
    for (name, version), members in _RUN2_MEMBERS.items():
        info = context.streamers.get(name, {}).get(version)
        if info is not None and _streamer_members(info) == members:
            readable[name].add(version)
    frozen = {name: frozenset(versions) for name, versions in readable.items()}
    _CONTEXT_VERSIONS[context] = (size, frozen)
    return frozen


def _streamer_members(info: Any) -> tuple[tuple[str, str], ...] | None:
    try:
        return tuple((str(e.member("fName")), str(e.member("fTypeName"))) for e in info.elements)
    except Exception:  # a streamer of an unexpected shape describes nothing this module reads
        return None


class _NotOurs(Exception):
    """The bytes are outside the known layouts: the generic path decides what they are."""


class _Axis(NamedTuple):
    nbins: int
    fixed_range: bytes  # fNbins, fXmin, fXmax as streamed: the exact key for cached uniform edges
    xbins: np.ndarray | None  # fXbins as read-only float64, None when empty
    title: str


class _TH1Part(NamedTuple):
    name: str
    title: str
    ncells: int
    axes: tuple[_Axis, _Axis, _Axis]
    entries: float
    sumw2: np.ndarray | None  # raw big-endian view, None when empty


def decode_histogram(
    payload: bytes, context: StreamerContext | None = None, *, opened: bool = False
) -> Histogram | None:
    """The histogram in one TMessage, or None when the generic path must decode it.

    `context` only matters for Run-2 class versions, whose streamers it must hold. `opened`: the
    payload is already what `open_message` returned (checked and decompressed). Raises DecodeError
    on a malformed message (framing, compression, or an inconsistent known layout).
    """
    # bytes(): no copy for bytes; class names are looked up as bytes
    message = bytes(payload if opened else open_message(payload))
    try:
        return _read_object(message, _readable_versions(context))
    except _NotOurs:
        return None
    except (struct.error, IndexError) as error:  # a read past the end of the message
        raise DecodeError(f"object runs past the end of the message: {error}") from error


class PlannedHistogram(NamedTuple):
    histogram: Histogram
    numbers_finite: bool  # every content and variance was proven finite on the way (no NaN, no inf)


def read_planned(
    payload: bytes, context: StreamerContext | None = None, arenas: ReplyArenas | None = None
) -> PlannedHistogram | None:
    """The usual object of a reply, read fast: an uncompressed message whose layout a plan already
    knows (see "layout plans"). None for anything else: `decode_histograms` then reads it, or refuses
    it, exactly as always. What this returns equals what that would return.

    A reply's loop calls this first for every object, so it repeats the framing checks of
    `open_message` and `_read_object` inline, for the one framing it takes, instead of their calls;
    and after one object of a head (see `_HEADS`), later ones skip those checks and the prefix's.
    `arenas`: where the numbers go (`pipeline.bin_arena`), when they fit; arrays of their own otherwise.
    """
    if type(payload) is not bytes:
        if not isinstance(payload, bytearray | memoryview):
            return None  # the full path says what is wrong with it
        payload = bytes(payload)
    head = _HEADS.get(payload[:_HEAD_SIZE])
    if head is not None and len(payload) == head.size and not payload[head.name_at - 1] & _IS_REFERENCED:
        plan = head.plan
        name_at = head.name_at
        title_end = head.title_end
        # The key fixes where the title ends (by TNamed's byte count), not where the name does.
        name_length = payload[name_at]
        title_at = name_at + 1 + name_length
        if (
            name_length != 255
            and title_at < title_end
            and payload[title_at] != 255
            and title_at + 1 + payload[title_at] == title_end
            and (plan.readable is None or plan.readable is _readable_versions(context))
        ):
            planned = _read_after_title(payload, name_at, title_at, title_end, plan, arenas)
            if planned is not None:
                return planned
    return _read_planned_framed(payload, context, arenas)


def _read_planned_framed(
    message: bytes, context: StreamerContext | None, arenas: ReplyArenas | None = None
) -> PlannedHistogram | None:
    """`read_planned` for a message whose head is not known yet (or that differs from its head's
    object after the head): the framing and the prefix checked field by field, then the plan."""
    # Every plan's message is longer than this, and longer than `open_message`'s minimum.
    if len(message) < _FRAMED_OBJECT.size:
        return None
    _length, what, count, tag = _FRAMED_OBJECT.unpack_from(message)
    if what != KMESS_OBJECT or not length_word_matches(message):
        return None
    top = _top_object(message, count, tag)
    if top is None:
        return None
    kind, pos = top
    found = _plan_for(message, pos, kind, _readable_versions(context))
    if found is None:
        return None
    plan, name_at, title_at, title_end = found
    planned = _read_by_plan(message, pos, name_at, title_at, title_end, plan, arenas)
    if planned is not None:
        _remember_head(message, name_at, title_end, plan)
    return planned


def decode_histograms(
    payload: bytes, context: StreamerContext | None = None, *, opened: bool = False
) -> list[Histogram]:
    """Every histogram in one TMessage: the fast path when it applies, the generic uproot path otherwise.

    Raises DecodeError (and only DecodeError) when the payload cannot become complete histograms.
    """
    if not opened:  # an opened message comes from a reply's loop, which tried `read_planned` already
        planned = read_planned(payload, context)
        if planned is not None:
            return [planned.histogram]
    histogram = decode_histogram(payload, context, opened=opened)
    if histogram is not None:
        return [histogram]
    model = decode_tmessage(payload, context)
    try:
        return histograms_from_model(model)
    except DecodeError:
        raise
    except Exception as error:  # uproot's behaviours can fail in many ways on inconsistent models
        raise DecodeError(
            f"cannot convert {type(model).__name__}: {type(error).__name__}: {error}"
        ) from error


# ---- the byte walk ------------------------------------------------------------------------------
# Functions take the message, a position and the end of the enclosing object, and return the position
# after what they read. Every object ends with a check that its byte count matches what was read, so a
# layout that is accepted was read exactly, field by field. The common case (a known version, a byte
# count that fits, a plain TObject, short strings) costs one comparison each; the helpers named
# `_refuse_*` only run to say what is wrong.


def _object_end(count: int, version: int, start: int, end: int, versions: Any, what: str) -> int:
    """Where an object with this byte count word and version, starting at `start`, ends.

    `versions` is any container of accepted versions: another version (or the member-wise bit) is a
    layout this module does not know, so the object goes to the generic path.
    """
    stop = start + 4 + (count & ~_BYTE_COUNT_MASK)
    if count & _BYTE_COUNT_MASK and version in versions and start + 6 <= stop <= end:
        return stop
    if not count & _BYTE_COUNT_MASK:
        raise _NotOurs(f"{what} without a byte count")
    if stop > end or stop < start + 6:
        raise DecodeError(f"{what} byte count {count & ~_BYTE_COUNT_MASK} does not fit its container")
    raise _NotOurs(f"{what} version {version}")


def _refuse_end(pos: int, stop: int, what: str) -> None:
    raise DecodeError(f"{what} ends at byte {pos}, its byte count says {stop}")


def _long_string(data: bytes, pos: int) -> tuple[int, int]:
    """(start, end) of a TString at `pos` whose length byte is 255: a 4-byte length follows."""
    (length,) = _I32.unpack_from(data, pos + 1)
    if length < 0:
        raise DecodeError(f"negative string length {length} at byte {pos + 1}")
    return pos + 5, pos + 5 + length


def _string_end(data: bytes, pos: int) -> int:
    length = data[pos]
    return pos + 1 + length if length != 255 else _long_string(data, pos)[1]


def _text(data: bytes, start: int, end: int) -> str:
    return root_text(data[start:end])


def _array(data: bytes, pos: int, size: int, dtype: np.dtype, end: int) -> tuple[np.ndarray | None, int]:
    """A TArray's fN numbers at `pos` (its fN was read already), as a big-endian view; None if empty."""
    stop = pos + size * dtype.itemsize
    if size < 0 or stop > end:
        raise DecodeError(f"an array of {size} numbers at byte {pos} does not fit its object")
    return (np.frombuffer(data, dtype, size, pos) if size else None), stop


def _tobject_end(data: bytes, pos: int, version: int, bits: int) -> int:
    """End of the TObject at `pos`, whose (first) version word and fBits were read as if it were plain."""
    pos += _TOBJECT.size
    if version & _VERSION_HAS_BYTE_COUNT:  # old style: a 4-byte count, then version, fUniqueID, fBits
        (bits,) = _U32.unpack_from(data, pos)
        pos += 4
    return pos + 2 if bits & _IS_REFERENCED else pos


def _named(data: bytes, pos: int, end: int, header: tuple[int, ...]) -> tuple[int, int, int, int]:
    """TNamed at `pos`, whose header (count, version, TObject version, fUniqueID, fBits) was read.

    Returns where its name and title lie: (name start, name end, title start, title end); the TNamed
    ends with its title.
    """
    count, version, tobject_version, _unique_id, bits = header
    stop = _object_end(count, version, pos, end, (1,), "TNamed")
    if tobject_version & _VERSION_HAS_BYTE_COUNT or bits & _IS_REFERENCED:
        pos = _tobject_end(data, pos + _HEADER.size, tobject_version, bits)
    else:
        pos += _NAMED.size
    length = data[pos]
    name_start, name_end = (pos + 1, pos + 1 + length) if length != 255 else _long_string(data, pos)
    length = data[name_end]
    title_start, title_end = (
        (name_end + 1, name_end + 1 + length) if length != 255 else _long_string(data, name_end)
    )
    if title_end != stop:
        _refuse_end(title_end, stop, "TNamed")
    return name_start, name_end, title_start, title_end


def _axis(data: bytes, pos: int, end: int) -> tuple[_Axis, int]:
    count, version = _HEADER.unpack_from(data, pos)
    stop = _object_end(count, version, pos, end, (10,), "TAxis")
    return _read_axis(data[pos:stop]), stop


@lru_cache(maxsize=1024)
def _read_axis(streamed: bytes) -> _Axis:
    """One streamed TAxis, header included.

    Cached by its bytes: a reply repeats the same few axes (binning and titles) hundreds of times, and
    reading an axis costs as much as the rest of the histogram. The bytes are the whole key, so a hit
    is exactly what reading them would give.
    """
    _count, _version, *named = _HEADER_NAMED.unpack_from(streamed, 0)
    stop = len(streamed)
    _name_start, _name_end, title_start, pos = _named(streamed, _HEADER.size, stop, named)
    title_end = pos
    attributes_count, attributes_version, nbins, _xmin, _xmax, nxbins = _AXIS_BODY.unpack_from(streamed, pos)
    if attributes_count != _AXIS_BODY_COUNT or attributes_version != 4:
        _object_end(attributes_count, attributes_version, pos, stop, (4,), "TAttAxis")
        raise DecodeError(f"TAttAxis byte count {attributes_count & ~_BYTE_COUNT_MASK} is not 36")
    fixed_range = streamed[pos + _AXIS_RANGE_OFFSET : pos + _AXIS_RANGE_OFFSET + _AXIS_RANGE.size]
    pos += _AXIS_BODY.size
    xbins, pos = _array(streamed, pos, nxbins, _F8, stop) if nxbins else (None, pos)
    format_length, labels, modified_labels = _AXIS_TAIL.unpack_from(streamed, pos)
    if format_length == 0 and labels == 0 and modified_labels == 0:
        pos += _AXIS_TAIL.size  # no fTimeFormat, no labels: the usual axis
    else:
        pos = _string_end(streamed, pos + _AXIS_TAIL_FORMAT)  # fTimeFormat
        # Bin labels do not change edges or contents (the generic path ignores them too).
        pos = _skip_pointer(streamed, pos, stop, "TAxis::fLabels")
        pos = _skip_pointer(streamed, pos, stop, "TAxis::fModLabs")
    if pos != stop:
        _refuse_end(pos, stop, "TAxis")
    if xbins is not None:  # an array of its own (not a view of the message), shared read-only
        xbins = xbins.astype(np.float64)
        xbins.flags.writeable = False
    return _Axis(nbins, fixed_range, xbins, _text(streamed, title_start, title_end))


def _skip_pointer(data: bytes, pos: int, end: int, what: str) -> int:
    """Skip an object pointer (TBufferFile::WriteObjectAny) by its byte count."""
    (word,) = _U32.unpack_from(data, pos)
    if word & _BYTE_COUNT_MASK and word != _NEW_CLASS_TAG:
        stop = pos + 4 + (word & ~_BYTE_COUNT_MASK)
        if stop > end or stop < pos + 8:  # a class tag at least must follow the byte count
            raise DecodeError(f"{what} byte count {word & ~_BYTE_COUNT_MASK} does not fit its container")
        return stop
    if word & _CLASS_MASK:
        raise _NotOurs(f"{what} without a byte count")  # cannot be skipped without reading it
    return pos + 4  # null (0) or a reference to an object read before


def _refuse_attributes(data: bytes, pos: int, end: int) -> None:
    """Say what is wrong with TAttLine, TAttFill and TAttMarker at `pos` (their combined check failed)."""
    for what, versions, size in (
        ("TAttLine", (1, 2), 6),
        ("TAttFill", (1, 2), 4),
        ("TAttMarker", (2, 3), 8),  # v3 is ROOT 6.40's, with the same members
    ):
        count, version = _HEADER.unpack_from(data, pos)
        stop = _object_end(count, version, pos, end, versions, what)
        if pos + _HEADER.size + size != stop:
            _refuse_end(pos + _HEADER.size + size, stop, what)
        pos = stop
    raise DecodeError("TAttLine, TAttFill and TAttMarker do not have their known sizes")  # not reached


def _th1(data: bytes, pos: int, end: int, readable: Mapping[str, frozenset[int]]) -> tuple[_TH1Part, int]:
    count, version, *named = _HEADER_NAMED.unpack_from(data, pos)
    stop = _object_end(count, version, pos, end, readable["TH1"], "TH1")
    name_start, name_end, title_start, pos = _named(data, pos + _HEADER.size, stop, named)
    title_end = pos
    ncells, axes, pos = _attributes_and_axes(data, pos, stop)
    entries, ncontour = _TH1_STATS.unpack_from(data, pos)
    _contour, pos = _array(data, pos + _TH1_STATS.size, ncontour, _F8, stop)  # drawing only
    (nsumw2,) = _I32.unpack_from(data, pos)
    sumw2, pos = _array(data, pos + 4, nsumw2, _F8, stop)
    pos = _string_end(data, pos)  # fOption
    pos = _empty_list(data, pos, stop)  # fFunctions
    buffer_size, buffer_flag = _BUFFER.unpack_from(data, pos)
    if buffer_size != 0 or buffer_flag != 0:
        raise _NotOurs("TH1::fBuffer holds unbinned entries")
    pos += _BUFFER.size + _TH1_TAIL_BYTES[version]
    if pos != stop:
        _refuse_end(pos, stop, "TH1")
    name = _text(data, name_start, name_end)
    title = _text(data, title_start, title_end)
    return _TH1Part(name, title, ncells, axes, entries, sumw2), pos


# TH1's attributes, fNcells and axes as streamed -> (fNcells, axes). A reply repeats a few binnings
# hundreds of times, so this block is byte for byte one seen before; keyed by all its bytes, a hit is
# exactly what reading them would give. Bounded: cleared when full (a reply holds few binnings).
_AXES_BLOCKS: dict[bytes, tuple[int, tuple[_Axis, _Axis, _Axis]]] = {}
_AXES_BLOCKS_MAX = 4096


def _attributes_and_axes(data: bytes, pos: int, end: int) -> tuple[int, tuple[_Axis, _Axis, _Axis], int]:
    """TAttLine, TAttFill, TAttMarker, fNcells and the three TAxis at `pos`: (fNcells, axes, end)."""
    block_end = pos + _ATTRIBUTES.size
    for _ in range(3):  # each axis's byte count says where the next one starts
        if block_end + 6 > end:
            break
        (count,) = _U32.unpack_from(data, block_end)
        block_end += 4 + (count & ~_BYTE_COUNT_MASK)
    else:
        if block_end <= end:
            cached = _AXES_BLOCKS.get(data[pos:block_end])
            if cached is not None:
                return cached[0], cached[1], block_end
    start = pos
    line_count, line_version, fill_count, fill_version, marker_count, marker_version, ncells = (
        _ATTRIBUTES.unpack_from(data, pos)
    )
    if (line_count, fill_count, marker_count) != _ATTRIBUTE_COUNTS or not (
        line_version in (1, 2) and fill_version in (1, 2) and marker_version in (2, 3)
    ):
        _refuse_attributes(data, pos, end)
    pos += _ATTRIBUTES.size
    x_axis, pos = _axis(data, pos, end)
    y_axis, pos = _axis(data, pos, end)
    z_axis, pos = _axis(data, pos, end)
    if len(_AXES_BLOCKS) >= _AXES_BLOCKS_MAX:
        _AXES_BLOCKS.clear()
    _AXES_BLOCKS[data[start:pos]] = (ncells, (x_axis, y_axis, z_axis))
    return ncells, (x_axis, y_axis, z_axis), pos


def _empty_list(data: bytes, pos: int, end: int) -> int:
    """TH1::fFunctions, an embedded TList (no class tag) that must hold nothing."""
    count, version, tobject_version, _unique_id, bits = _NAMED.unpack_from(data, pos)
    stop = _object_end(count, version, pos, end, (5,), "TH1::fFunctions")
    if tobject_version & _VERSION_HAS_BYTE_COUNT or bits & _IS_REFERENCED:
        pos = _tobject_end(data, pos + _HEADER.size, tobject_version, bits)
    else:
        pos += _NAMED.size
    pos = _string_end(data, pos)  # fName
    (size,) = _I32.unpack_from(data, pos)
    if size != 0:
        raise _NotOurs(f"TH1::fFunctions holds {size} objects")
    if pos + 4 != stop:
        _refuse_end(pos + 4, stop, "TH1::fFunctions")
    return stop


def _top_object(message: bytes, count: int, tag: int) -> tuple[_Kind, int] | None:
    """The kind of the message's object and where its class name ends, when the message is exactly one
    object of a known class with a new class tag (`count` and `tag`: its first two words); None
    otherwise (`_refuse_top_object` says why)."""
    if tag != _NEW_CLASS_TAG or not count & _BYTE_COUNT_MASK:
        return None
    if count & ~_BYTE_COUNT_MASK != len(message) - _OBJECT_START - 4:  # the object fills the message
        return None
    name_start = _OBJECT_START + _TWO_U32.size
    name_end = message.find(b"\0", name_start)
    kind = _KINDS.get(message[name_start:name_end]) if name_end > 0 else None
    return None if kind is None else (kind, name_end + 1)


def _refuse_top_object(message: bytes, count: int, tag: int) -> NoReturn:
    """Why `_top_object` did not take the message: `_NotOurs` (the generic path decides) or DecodeError."""
    if not count & _BYTE_COUNT_MASK or tag != _NEW_CLASS_TAG:
        raise _NotOurs("top-level object is not a new class tag with a byte count")
    overrun = _OBJECT_START + 4 + (count & ~_BYTE_COUNT_MASK) - len(message)
    if overrun > 0:
        raise DecodeError(f"object byte count runs {overrun} bytes past the message")
    if overrun < 0:
        raise _NotOurs("bytes after the object")
    name_start = _OBJECT_START + _TWO_U32.size
    name_end = message.find(b"\0", name_start)
    if name_end < 0:
        raise DecodeError("class name is not terminated")
    raise _NotOurs(f"class {message[name_start:name_end]!r}")


def _read_object(message: bytes, readable: Mapping[str, frozenset[int]]) -> Histogram:
    count, tag = _TWO_U32.unpack_from(message, _OBJECT_START)
    top = _top_object(message, count, tag)
    if top is None:
        _refuse_top_object(message, count, tag)
    kind, pos = top
    planned = _planned(message, pos, kind, readable)
    if planned is not None:
        return planned.histogram
    histogram = _walk_object(message, pos, len(message), kind, readable)
    _learn(message, pos, kind, readable, histogram)
    return histogram


def _walk_object(
    message: bytes, pos: int, object_end: int, kind: _Kind, readable: Mapping[str, frozenset[int]]
) -> Histogram:
    """The object after its class name at `pos`, read field by field."""
    count, version = _HEADER.unpack_from(message, pos)
    stop = _object_end(count, version, pos, object_end, readable[kind.name], kind.name)
    if stop != object_end:
        raise DecodeError(f"{kind.name} byte count disagrees with the object's ({stop} != {object_end})")
    pos += _HEADER.size
    if kind.dimension == 1:
        th1, pos = _th1(message, pos, stop, readable)
    else:
        count, version = _HEADER.unpack_from(message, pos)
        base_stop = _object_end(count, version, pos, stop, readable[kind.base], kind.base)
        th1, pos = _th1(message, pos + _HEADER.size, base_stop, readable)
        if kind.dimension == 3:
            count, version = _HEADER.unpack_from(message, pos)
            attributes_stop = _object_end(count, version, pos, base_stop, (1,), "TAtt3D")
            pos += _HEADER.size  # TAtt3D v1 has no members
            if pos != attributes_stop:
                _refuse_end(pos, attributes_stop, "TAtt3D")
        pos += _MOMENT_BYTES[kind.dimension]  # fTsumwy ...: statistics the histogram type does not keep
        if pos != base_stop:
            _refuse_end(pos, base_stop, kind.base)
    (ncontents,) = _I32.unpack_from(message, pos)
    contents, pos = _array(message, pos + 4, ncontents, kind.content_dtype, stop)
    if pos != stop:
        _refuse_end(pos, stop, kind.name)
    return _histogram(kind, th1, contents)


def _histogram(kind: _Kind, th1: _TH1Part, contents: np.ndarray | None) -> Histogram:
    axes = th1.axes[: kind.dimension]
    shape = tuple([axis.nbins + 2 for axis in axes])
    if min(shape) < 3:
        raise _NotOurs("an axis without bins")
    ncells = math.prod(shape)
    size = 0 if contents is None else contents.size
    if th1.ncells != ncells or size != ncells:
        raise DecodeError(
            f"{kind.name}: {size} contents and fNcells={th1.ncells} do not match the axes {shape}"
        )
    if th1.sumw2 is not None and th1.sumw2.size != ncells:
        raise _NotOurs("fSumw2 of another size than fNcells")  # the generic path would ignore it
    root_shape = shape[::-1]
    sumw2 = None if th1.sumw2 is None else th1.sumw2.reshape(root_shape)
    values, variances, _finite = _values_and_variances(contents.reshape(root_shape), sumw2)
    return Histogram(
        name=th1.name,
        class_name=kind.name,
        title=th1.title,
        edges=tuple([_edges(axis) for axis in axes]),
        values_flow=values,
        variances_flow=variances,
        entries=th1.entries,  # a Python float, from struct
        axis_titles=(th1.axes[0].title, th1.axes[1].title, th1.axes[2].title),
    )


def _values_and_variances(
    contents: np.ndarray, sumw2: np.ndarray | None, arenas: ReplyArenas | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Contents and variances in index order, from arrays of ROOT's shape (`_to_index_order`);
    variances as uproot gives them: fSumw2 when filled, else the contents, and only where positive
    (+0.0 for negative, -0.0 and NaN bins).

    The flag is True when this pass proved every number finite (unweighted, every bin a finite
    number >= +0.0: the usual case), so that a caller may skip its own finiteness check."""
    values = _to_index_order(contents, arenas and arenas.values)
    if sumw2 is not None:
        return values, _positive_part(_to_index_order(sumw2, arenas and arenas.variances)), False
    largest_bits = _largest_bits(values)
    if largest_bits <= _POSITIVE_INFINITY_BITS:  # no sign bit, no NaN
        # Shared by values and variances: changing one would change both. (`setflags`: half the cost
        # of setting `flags.writeable`, which builds a flags object first.)
        values.setflags(write=False)
        return values, values, largest_bits < _POSITIVE_INFINITY_BITS
    return values, _positive_part(values.copy()), False


def _to_index_order(bins: np.ndarray, arena: BinArena | None = None) -> np.ndarray:
    """ROOT's bins, an array of ROOT's shape ([iz, iy, ix]: x fastest), as a C-ordered float64 array
    indexed [ix, iy, iz]: in `arena` when they fit, else an array of their own; one copy, no views of
    the message kept alive."""
    if bins.ndim > 1 and bins.dtype.itemsize == 4:
        # Byte-swapping a transposed view goes number by number; swapped first (contiguous, vectorised),
        # the transposing cast is 1.2-1.7x faster for TPC's 200x700 maps and 2x for TH3. The same for
        # EMC's 50x106 maps; slower for 8-byte numbers, which keep one pass.
        bins = bins.astype(bins.dtype.newbyteorder("="))
    out = None if arena is None else arena.take(bins.shape[::-1])
    if out is not None:
        np.copyto(out, bins.T)
        return out
    if bins.ndim == 1:
        return bins.astype(np.float64)  # without order=: its parsing costs more than a 100-bin copy
    return bins.T.astype(np.float64, order="C")


def _positive_part(array: np.ndarray) -> np.ndarray:
    """`array` with every bin that is not > 0 set to +0.0, in place (uproot's `variances[positive]`)."""
    # Sums of squared weights are almost always >= +0.0 already: one pass proves it, cheaper than
    # the two temporary masks of the general case.
    if _largest_bits(array) > _POSITIVE_INFINITY_BITS:  # a sign bit or a NaN somewhere
        np.putmask(array, ~(array > 0.0), 0.0)
    return array


def _largest_bits(array: np.ndarray) -> int:
    """The largest of the numbers' bit patterns read as uint64 (C-contiguous float64 `array`).

    Through `argmax`: numpy's `max` reduction costs about a microsecond more per call, which is more
    than the whole pass over a 100-bin histogram. `item` takes argmax's flat index on any shape and
    gives a Python int, without the numpy scalar (and `ravel`) in between.
    """
    bits = array.view(np.uint64)
    return bits.item(bits.argmax())


def _edges(axis: _Axis) -> np.ndarray:
    if axis.xbins is None:
        return _uniform_edges(axis.fixed_range)
    if axis.xbins.size == axis.nbins + 1:
        return axis.xbins
    raise _NotOurs("fXbins of another size than fNbins + 1")  # the generic path would ignore it


@lru_cache(maxsize=1024)
def _uniform_edges(fixed_range: bytes) -> np.ndarray:
    """`linspace` edges, as uproot computes them, shared read-only by every axis with that binning.

    Computed only for the axes a histogram uses (an unused axis may have any fNbins). Keyed by the
    streamed bytes, so -0.0 and NaN bounds are cached exactly.
    """
    nbins, xmin, xmax = _AXIS_RANGE.unpack(fixed_range)
    edges = np.linspace(xmin, xmax, nbins + 1).copy()  # its own numbers (linspace gives a view)
    edges.flags.writeable = False
    return edges


# ---- layout plans -------------------------------------------------------------------------------
# A reply holds hundreds of objects of a few layouts: same class and versions, same axes, same sizes;
# only the name, the title and the numbers differ. After the byte walk has read one object, a plan
# records everything that must be equal for a later object to have exactly that layout, so that the
# later object costs one struct read, a few byte comparisons and its arrays, instead of the walk (about
# three times as long). A plan only takes objects whose every structural byte (byte counts, versions,
# the attributes and axes as streamed, fOption, fFunctions, fBuffer, fNcells, the array sizes) equals
# its own, which the walk read and accepted; anything else goes to the walk, which accepts or refuses it.

# Headers from the class's own to TNamed's TObject (version, fUniqueID, fBits); TH2/TH3 add a base.
_PREFIX = {
    1: struct.Struct(">IhIhIhHII"),
    2: struct.Struct(">IhIhIhIhHII"),
    3: struct.Struct(">IhIhIhIhHII"),
}
_CONTOUR_SIZE_AT = _TH1_STATS.size - 4  # fContour.fN within _TH1_STATS
_ENTRIES = struct.Struct(">d")


class _Plan(NamedTuple):
    readable: Mapping[str, frozenset[int]] | None  # the versions it needs; None: built in, always readable
    prefix: struct.Struct  # `_PREFIX` of its dimension
    prefix_counts: tuple[int, ...]  # the prefix's byte counts, less the bytes of name and title
    prefix_versions: tuple[int, ...]  # the prefix's object versions
    tobject_version: int
    # Every structural byte after the title, as (offset from the title's end, bytes as streamed): the
    # attributes, fNcells and axes; the sizes of fContour and fSumw2; fOption up to TH1's end; the
    # contents' size. Adjacent runs are one comparison: 1 to 3 for the usual layouts.
    structure: tuple[tuple[int, bytes], ...]
    # Where the numbers lie, counted from the title's end (sumw2_at 0: no fSumw2)
    entries_at: int
    sumw2_at: int
    contents_at: int
    kind: _Kind
    root_shape: tuple[int, ...]  # the bins' shape in ROOT's order (x fastest): [iz, iy, ix]
    edges: tuple[np.ndarray, ...]
    axis_titles: tuple[str, ...]


_PLANS: dict[tuple[str, int], _Plan] = {}  # by (class, bytes after the title)
_PLANS_MAX = 1024


# Heads: a message's first bytes up to its TNamed's TObject version (TH2/TH3; a TH1x's reach 6 bytes
# into its fUniqueID and fBits) hold all of its framing (length word, kMESS_OBJECT, the top object's
# byte count and class tag), its class name and every byte count and version of the prefix. For one
# plan, a reply repeats a few of these byte for byte (they differ only with the length of name and
# title), so after one message passed those checks field by field, a later one with the same first
# bytes and the same length needs none of them: one slice, one dict lookup. (A TH1x whose fUniqueID or
# fBits differ from its head's only takes the long way.) A head keeps its plan when a walk replaces it
# in `_PLANS`: a plan reads exactly every object whose structure it checked, whether listed or not. The
# heads are forgotten with the plans, so the plans they hold are those of `_PLANS` (and the few that
# walks replaced since): bounded as the plans are.
_HEAD_SIZE = _FRAMED_OBJECT.size + len(b"TH1F\0") + _PREFIX[2].size - 8  # less fUniqueID and fBits


class _Head(NamedTuple):
    plan: _Plan
    size: int  # the message's length, which the length word and the top byte count in the key say
    name_at: int  # where the name's length byte lies; fBits (kIsReferenced) ends just before it
    title_end: int  # fixed by TNamed's byte count, in the key


_HEADS: dict[bytes, _Head] = {}
_HEADS_MAX = 4096


def _remember_head(message: bytes, name_at: int, title_end: int, plan: _Plan) -> None:
    """Record the head of a message `_read_planned_framed` just read by `plan`."""
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[message[:_HEAD_SIZE]] = _Head(plan, len(message), name_at, title_end)


def _strings(message: bytes, pos: int, dimension: int) -> tuple[int, int, int] | None:
    """(name start, title start, title end) of an object whose class name ends at `pos`, when both
    are short strings (a length byte); None otherwise."""
    name_at = pos + _PREFIX[dimension].size
    end = len(message)
    if name_at >= end or message[name_at] == 255:
        return None
    title_at = name_at + 1 + message[name_at]
    if title_at >= end or message[title_at] == 255:
        return None
    return name_at, title_at, title_at + 1 + message[title_at]


def _plan_for(
    message: bytes, pos: int, kind: _Kind, readable: Mapping[str, frozenset[int]]
) -> tuple[_Plan, int, int, int] | None:
    """The plan learned for the size after the title of the object whose class name ends at `pos`,
    with where its name and title lie (`_strings`); None when there is none, or when it needs versions
    that `readable` does not allow. Whether the object fits the plan is `_read_by_plan`'s to say."""
    strings = _strings(message, pos, kind.dimension)
    if strings is None:
        return None
    plan = _PLANS.get((kind.name, len(message) - strings[2]))
    if plan is None or not (plan.readable is None or plan.readable is readable):
        return None
    return (plan, *strings)


def _planned(
    message: bytes, pos: int, kind: _Kind, readable: Mapping[str, frozenset[int]]
) -> PlannedHistogram | None:
    """The object whose class name ends at `pos`, read by a learned plan, and whether its numbers
    were proven finite (`_values_and_variances`); None when no plan fits."""
    found = _plan_for(message, pos, kind, readable)
    if found is None:
        return None
    plan, name_at, title_at, title_end = found
    return _read_by_plan(message, pos, name_at, title_at, title_end, plan)


def _read_by_plan(
    message: bytes,
    pos: int,
    name_at: int,
    title_at: int,
    title_end: int,
    plan: _Plan,
    arenas: ReplyArenas | None = None,
) -> PlannedHistogram | None:
    """The object read by `plan`, given where its name and title lie, and whether its numbers were
    proven finite; None if it has another layout. The message has the plan's size after the title:
    plans are found by it (`_PLANS`), or made from this very message (`_learn`)."""
    header = plan.prefix.unpack_from(message, pos)
    string_bytes = title_end - name_at
    if (
        header[1:-3:2] != plan.prefix_versions
        or header[-3] != plan.tobject_version
        or header[-1] & _IS_REFERENCED
        or header[0:-3:2] != tuple([count + string_bytes for count in plan.prefix_counts])
    ):
        return None
    return _read_after_title(message, name_at, title_at, title_end, plan, arenas)


def _read_after_title(
    message: bytes,
    name_at: int,
    title_at: int,
    title_end: int,
    plan: _Plan,
    arenas: ReplyArenas | None = None,
) -> PlannedHistogram | None:
    """The object read by `plan`, whose prefix was found to be the plan's (`_read_by_plan`, or the
    head's key); None if a structural byte after the title differs."""
    for offset, streamed in plan.structure:
        if not message.startswith(streamed, title_end + offset):
            return None
    (entries,) = _ENTRIES.unpack_from(message, title_end + plan.entries_at)
    # np.ndarray over the message: a view of ROOT's shape in one call (frombuffer, then reshape: two)
    contents = np.ndarray(plan.root_shape, plan.kind.content_dtype, message, title_end + plan.contents_at)
    sumw2 = np.ndarray(plan.root_shape, _F8, message, title_end + plan.sumw2_at) if plan.sumw2_at else None
    values, variances, finite = _values_and_variances(contents, sumw2, arenas)
    # The plan was learned from a histogram that passed every check of the constructor, with these
    # very edges, titles and shape: nothing to check again.
    histogram = Histogram.from_checked_parts(
        root_text(message[name_at + 1 : title_at]),
        plan.kind.name,
        root_text(message[title_at + 1 : title_end]),
        plan.edges,
        values,
        variances,
        entries,
        plan.axis_titles,
    )
    # tuple.__new__: the NamedTuple's own __new__ is a Python function, a call more per object
    return tuple.__new__(PlannedHistogram, (histogram, finite))


def _structure(message: bytes, spans: list[tuple[int, int]], title_end: int) -> tuple[tuple[int, bytes], ...]:
    """The bytes of `spans` ((start, end) in the message, in order), adjacent ones joined, by offset
    from the title's end."""
    joined: list[list[int]] = []
    for start, end in spans:
        if start == end:
            continue
        if joined and joined[-1][1] == start:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    return tuple((start - title_end, message[start:end]) for start, end in joined)


def _learn(
    message: bytes, pos: int, kind: _Kind, readable: Mapping[str, frozenset[int]], histogram: Histogram
) -> None:
    """Record the layout of the object the walk just read as `histogram`, when a plan can express it
    (short name and title, a plain TObject, fSumw2 empty or one number per cell). The plan is kept only
    if it reads that object exactly as the walk did."""
    strings = _strings(message, pos, kind.dimension)
    if strings is None:
        return
    name_at, title_at, title_end = strings
    header = _PREFIX[kind.dimension].unpack_from(message, pos)
    if header[-3] & _VERSION_HAS_BYTE_COUNT or header[-1] & _IS_REFERENCED:
        return
    # Attributes, fNcells and three axes, each axis's byte count saying where the next one starts.
    axes_end = title_end + _ATTRIBUTES.size
    for _ in range(3):
        (count,) = _U32.unpack_from(message, axes_end)
        axes_end += 4 + (count & ~_BYTE_COUNT_MASK)
    contour_count_at = axes_end + _CONTOUR_SIZE_AT
    (ncontour,) = _I32.unpack_from(message, contour_count_at)
    sumw2_count_at = axes_end + _TH1_STATS.size + 8 * ncontour
    (nsumw2,) = _I32.unpack_from(message, sumw2_count_at)
    ncells = histogram.values_flow.size
    if nsumw2 not in (0, ncells):
        return
    option_at = sumw2_count_at + 4 + 8 * nsumw2
    contents_at = len(message) - ncells * kind.content_dtype.itemsize
    moments = _MOMENT_BYTES.get(kind.dimension, 0)
    fixed_end = contents_at - 4 - moments  # fOption ... TH1's last member (and TAtt3D's header)
    if fixed_end < option_at:
        return
    # Skipped: fBarOffset and fBarWidth, fEntries and the other statistics, the numbers of fContour
    # and fSumw2, the TH2/TH3 moments, the contents.
    structure = _structure(
        message,
        [
            (title_end, axes_end),
            (contour_count_at, contour_count_at + 4),
            (sumw2_count_at, sumw2_count_at + 4),
            (option_at, fixed_end),
            (contents_at - 4, contents_at),
        ],
        title_end,
    )
    classes = (kind.name, "TH1") if kind.dimension == 1 else (kind.name, kind.base, "TH1")
    versions = header[1:-3:2]
    builtin = all(
        version in _BUILTIN_VERSIONS[name] for name, version in zip(classes, versions, strict=False)
    )
    plan = _Plan(
        readable=None if builtin else readable,
        prefix=_PREFIX[kind.dimension],
        prefix_counts=tuple(count - (title_end - name_at) for count in header[0:-3:2]),
        prefix_versions=versions,
        tobject_version=header[-3],
        structure=structure,
        entries_at=axes_end + 4 - title_end,  # after fBarOffset and fBarWidth
        sumw2_at=sumw2_count_at + 4 - title_end if nsumw2 else 0,
        contents_at=contents_at - title_end,
        kind=kind,
        root_shape=histogram.values_flow.shape[::-1],
        edges=histogram.edges,
        axis_titles=histogram.axis_titles,
    )
    again = _read_by_plan(message, pos, name_at, title_at, title_end, plan)
    if again is None or not _same_histogram(again.histogram, histogram):
        return
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
        _HEADS.clear()
    _PLANS[kind.name, len(message) - title_end] = plan


def _same_histogram(got: Histogram, want: Histogram) -> bool:
    return (
        (got.name, got.class_name, got.title, got.entries, got.axis_titles)
        == (want.name, want.class_name, want.title, want.entries, want.axis_titles)
        and all(a is b for a, b in zip(got.edges, want.edges, strict=True))
        and np.array_equal(got.values_flow, want.values_flow, equal_nan=True)
        and np.array_equal(got.variances_flow, want.variances_flow, equal_nan=True)
        and (got.variances_flow is got.values_flow) == (want.variances_flow is want.values_flow)
    )

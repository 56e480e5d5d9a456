"""Fast TMessage decoding: TH1/TH2/TH3 of the class versions uproot has built in, read straight into numpy.

The generic path (`tmessage.decode_tmessage` + `histograms_from_model`) builds an uproot model object
per histogram, about 0.5 ms each. The streamer layouts of these class versions are fixed (PROTOCOL.md
section 7), so this module walks the bytes with `struct` and takes the bin arrays with `np.frombuffer`.
It needs no streamer context: it only accepts versions whose layout it knows.

Outcome of `decode_histogram`:
- a `Histogram` equal, field by field, to what the generic path makes of the same bytes;
- `None` for anything outside the known set (other classes or versions, collections, a non-empty
  fFunctions list or fBuffer, ...), so that the caller falls back to the generic path;
- `DecodeError` for a known layout whose bytes are inconsistent (anything read past its object, a
  byte count that disagrees with what the layout says, contents that do not match the axes).

`decode_histograms` is the one entry point a receiver needs: fast path first, generic path otherwise.
"""

from __future__ import annotations

import math
import struct
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from pipeline.histogram import Histogram
from pipeline.wire.tmessage import (
    DecodeError,
    StreamerContext,
    decode_tmessage,
    histograms_from_model,
    open_message,
)

__all__ = ["decode_histogram", "decode_histograms"]

_BYTE_COUNT_MASK = 0x40000000
_CLASS_MASK = 0x80000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_VERSION_HAS_BYTE_COUNT = 0x4000  # kByteCountVMask: an old-style TObject version word, 4 more bytes
_IS_REFERENCED = 1 << 4  # TObject::kIsReferenced: a 2-byte process id follows fBits
_OBJECT_START = 8  # after the length word and fWhat; back-reference offsets count from byte 0

_U8 = struct.Struct(">B")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")  # (byte count | mask, class tag) of the top-level object
_BYTE_COUNT_VERSION = struct.Struct(">Ih")
_TOBJECT = struct.Struct(">HII")  # version, fUniqueID, fBits
_TOBJECT_IDS = struct.Struct(">II")  # fUniqueID, fBits
_AXIS_RANGE = struct.Struct(">idd")  # fNbins, fXmin, fXmax
_AXIS_TAIL = struct.Struct(">iiH?")  # fFirst, fLast, fBits2, fTimeDisplay
_TH1_STATS = struct.Struct(">hh8d")  # fBarOffset, fBarWidth, fEntries, fTsumw ... fNormFactor
_TH1_TAIL = struct.Struct(">ii")  # fBinStatErrOpt, fStatOverflows
_F8 = np.dtype(">f8")

# Sub-objects whose content the histogram does not need: skipped with their byte count, but only for
# versions whose fixed content size is known, so a wrong byte count is still caught.
_TATTLINE_SIZES = {1: 6, 2: 6}  # fLineColor, fLineStyle, fLineWidth (short)
_TATTFILL_SIZES = {1: 4, 2: 4}  # fFillColor, fFillStyle (short)
_TATTMARKER_SIZES = {2: 8, 3: 8}  # fMarkerColor, fMarkerStyle (short), fMarkerSize (float); v3 = ROOT 6.40
_TATTAXIS_SIZES = {4: 34}  # int, 3 short, 5 float, 2 short
_TATT3D_SIZES = {1: 0}
# What TH2 v5 / TH3 v6 store after their TH1 base: 4 / 7 doubles of moments (TH3 also has TAtt3D).
_TH2_MOMENTS_BYTES = 4 * 8
_TH3_MOMENTS_BYTES = 7 * 8


class _Layout(NamedTuple):
    dimension: int
    version: int  # of the concrete class (TH1D v3, TH2F v4, ...)
    base_version: int  # of TH2 / TH3 between it and TH1 (0 for TH1x)
    content_dtype: np.dtype


def _known_layouts() -> dict[bytes, _Layout]:
    dtypes = {"C": ">i1", "S": ">i2", "I": ">i4", "F": ">f4", "D": ">f8"}
    layouts = {}
    for suffix, dtype in dtypes.items():
        layouts[f"TH1{suffix}".encode()] = _Layout(1, 3, 0, np.dtype(dtype))
        layouts[f"TH2{suffix}".encode()] = _Layout(2, 4, 5, np.dtype(dtype))
        layouts[f"TH3{suffix}".encode()] = _Layout(3, 4, 6, np.dtype(dtype))
    return layouts


_LAYOUTS = _known_layouts()


class _NotOurs(Exception):
    """The bytes are outside the known layouts: the generic path decides what they are."""


class _Axis(NamedTuple):
    nbins: int
    fixed_range: bytes  # fNbins, fXmin, fXmax as streamed: the exact key for cached uniform edges
    xbins: np.ndarray  # raw big-endian view, possibly empty
    title: str


class _TH1Part(NamedTuple):
    name: str
    title: str
    ncells: int
    axes: tuple[_Axis, _Axis, _Axis]
    entries: float
    sumw2: np.ndarray  # raw big-endian view, possibly empty


class _Cursor:
    """A position in one message; every read is checked against the end of the enclosing object."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def fields(self, layout: struct.Struct, end: int) -> tuple[Any, ...]:
        start = self.pos
        stop = start + layout.size
        if stop > end:
            raise DecodeError(f"a {layout.size}-byte field at byte {start} runs past its object (byte {end})")
        self.pos = stop
        return layout.unpack_from(self.data, start)

    def skip(self, size: int, end: int) -> None:
        if self.pos + size > end:
            raise DecodeError(f"skipping {size} bytes at byte {self.pos} runs past its object (byte {end})")
        self.pos += size

    def open(self, end: int, versions: Any, what: str) -> tuple[int, int]:
        """Read a byte count and version; return where the object ends, and its version.

        `versions` is any container of accepted versions: another version (or the member-wise bit) is
        a layout this module does not know, so the object goes to the generic path.
        """
        start = self.pos
        count, version = self.fields(_BYTE_COUNT_VERSION, end)
        if not count & _BYTE_COUNT_MASK:
            raise _NotOurs(f"{what} without a byte count")
        stop = start + 4 + (count & ~_BYTE_COUNT_MASK)
        if stop > end or stop < self.pos:
            raise DecodeError(f"{what} byte count {count & ~_BYTE_COUNT_MASK} does not fit its container")
        if version not in versions:
            raise _NotOurs(f"{what} version {version}")
        return stop, version

    def close(self, stop: int, what: str) -> None:
        if self.pos != stop:
            raise DecodeError(f"{what} ends at byte {self.pos}, its byte count says {stop}")

    def skip_fixed(self, end: int, sizes: dict[int, int], what: str) -> None:
        """Skip a sub-object the histogram does not need, checking its known content size."""
        stop, version = self.open(end, sizes, what)
        self.pos += sizes[version]
        self.close(stop, what)

    def string(self, end: int) -> str:
        if self.pos >= end:
            raise DecodeError(f"a string at byte {self.pos} runs past its object (byte {end})")
        length = self.data[self.pos]
        self.pos += 1
        if length == 255:  # TString: long strings carry a 4-byte length after the 255 marker
            (length,) = self.fields(_I32, end)
            if length < 0:
                raise DecodeError(f"negative string length {length} at byte {self.pos - 4}")
        start = self.pos
        self.skip(length, end)
        # surrogateescape: the same str uproot makes of non-UTF-8 bytes
        return self.data[start : self.pos].decode("utf-8", "surrogateescape")

    def array(self, dtype: np.dtype, end: int) -> np.ndarray:
        """A TArray (fN, then fN numbers, no header) as a big-endian view of the message bytes."""
        (size,) = self.fields(_I32, end)
        if size < 0:
            raise DecodeError(f"negative array size {size} at byte {self.pos - 4}")
        start = self.pos
        self.skip(size * dtype.itemsize, end)
        return np.frombuffer(self.data, dtype, size, start)

    def skip_tobject(self, end: int) -> None:
        # TObject::Streamer: a version word (no byte count), fUniqueID, fBits, maybe a process id.
        version, _unique_id, bits = self.fields(_TOBJECT, end)
        if version & _VERSION_HAS_BYTE_COUNT:  # old style: a byte count sits before fUniqueID
            self.pos -= _TOBJECT_IDS.size
            self.skip(4, end)
            _unique_id, bits = self.fields(_TOBJECT_IDS, end)
        if bits & _IS_REFERENCED:
            self.skip(2, end)

    def named(self, end: int) -> tuple[str, str]:
        stop, _ = self.open(end, (1,), "TNamed")
        self.skip_tobject(stop)
        name = self.string(stop)
        title = self.string(stop)
        self.close(stop, "TNamed")
        return name, title

    def axis(self, end: int) -> _Axis:
        stop, _ = self.open(end, (10,), "TAxis")
        _name, title = self.named(stop)
        self.skip_fixed(stop, _TATTAXIS_SIZES, "TAttAxis")
        range_start = self.pos
        (nbins, _xmin, _xmax) = self.fields(_AXIS_RANGE, stop)
        fixed_range = self.data[range_start : self.pos]
        xbins = self.array(_F8, stop)
        self.fields(_AXIS_TAIL, stop)
        self.string(stop)  # fTimeFormat
        # Bin labels do not change edges or contents (the generic path ignores them too).
        self.skip_pointer(stop, "TAxis::fLabels")
        self.skip_pointer(stop, "TAxis::fModLabs")
        self.close(stop, "TAxis")
        return _Axis(nbins, fixed_range, xbins, title)

    def skip_pointer(self, end: int, what: str) -> None:
        """Skip an object pointer (TBufferFile::WriteObjectAny) by its byte count."""
        start = self.pos
        (word,) = self.fields(_U32, end)
        if word & _BYTE_COUNT_MASK and word != _NEW_CLASS_TAG:
            stop = start + 4 + (word & ~_BYTE_COUNT_MASK)
            if stop > end or stop < start + 8:  # a class tag at least must follow the byte count
                raise DecodeError(f"{what} byte count {word & ~_BYTE_COUNT_MASK} does not fit its container")
            self.pos = stop
        elif word & _CLASS_MASK:
            raise _NotOurs(f"{what} without a byte count")  # cannot be skipped without reading it
        # else: null (0) or a reference to an object read before, 4 bytes either way

    def empty_list(self, end: int, what: str) -> None:
        """An embedded TList (fFunctions is streamed without a class tag) that must hold nothing."""
        stop, _ = self.open(end, (5,), what)
        self.skip_tobject(stop)
        self.string(stop)  # fName
        (size,) = self.fields(_I32, stop)
        if size != 0:
            raise _NotOurs(f"{what} holds {size} objects")
        self.close(stop, what)

    def th1(self, end: int) -> _TH1Part:
        stop, _ = self.open(end, (8,), "TH1")
        name, title = self.named(stop)
        self.skip_fixed(stop, _TATTLINE_SIZES, "TAttLine")
        self.skip_fixed(stop, _TATTFILL_SIZES, "TAttFill")
        self.skip_fixed(stop, _TATTMARKER_SIZES, "TAttMarker")
        (ncells,) = self.fields(_I32, stop)
        axes = (self.axis(stop), self.axis(stop), self.axis(stop))
        entries = self.fields(_TH1_STATS, stop)[2]
        self.array(_F8, stop)  # fContour: drawing only
        sumw2 = self.array(_F8, stop)
        self.string(stop)  # fOption
        self.empty_list(stop, "TH1::fFunctions")
        (buffer_size,) = self.fields(_I32, stop)
        (buffer_flag,) = self.fields(_U8, stop)  # 1 when fBuffer's array follows
        if buffer_size != 0 or buffer_flag != 0:
            raise _NotOurs("TH1::fBuffer holds unbinned entries")
        self.fields(_TH1_TAIL, stop)
        self.close(stop, "TH1")
        return _TH1Part(name, title, ncells, axes, entries, sumw2)


def decode_histogram(payload: bytes) -> Histogram | None:
    """The histogram in one TMessage, or None when the generic path must decode it.

    Raises DecodeError on a malformed message (framing, compression, or an inconsistent known layout).
    """
    message = bytes(open_message(payload))  # no copy for bytes; class names are looked up as bytes
    try:
        return _read_object(message)
    except _NotOurs:
        return None


def decode_histograms(payload: bytes, context: StreamerContext | None = None) -> list[Histogram]:
    """Every histogram in one TMessage: the fast path when it applies, the generic uproot path otherwise.

    Raises DecodeError (and only DecodeError) when the payload cannot become complete histograms.
    """
    histogram = decode_histogram(payload)
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


def _read_object(message: bytes) -> Histogram:
    end = len(message)
    cursor = _Cursor(message, _OBJECT_START)
    count, tag = cursor.fields(_TWO_U32, end)
    if not count & _BYTE_COUNT_MASK or tag != _NEW_CLASS_TAG:
        raise _NotOurs("top-level object is not a new class tag with a byte count")
    object_end = _OBJECT_START + 4 + (count & ~_BYTE_COUNT_MASK)
    if object_end > end:
        raise DecodeError(f"object byte count runs {object_end - end} bytes past the message")
    if object_end < end:
        raise _NotOurs("bytes after the object")
    name_end = message.find(b"\0", cursor.pos, end)
    if name_end < 0:
        raise DecodeError("class name is not terminated")
    class_name = message[cursor.pos : name_end]
    layout = _LAYOUTS.get(class_name)
    if layout is None:
        raise _NotOurs(f"class {class_name!r}")
    cursor.pos = name_end + 1
    what = class_name.decode()
    stop, _ = cursor.open(object_end, (layout.version,), what)
    if stop != object_end:
        raise DecodeError(f"{what} byte count disagrees with the object's ({stop} != {object_end})")
    if layout.dimension == 1:
        th1 = cursor.th1(stop)
    else:
        base = "TH2" if layout.dimension == 2 else "TH3"
        base_stop, _ = cursor.open(stop, (layout.base_version,), base)
        th1 = cursor.th1(base_stop)
        if layout.dimension == 3:
            cursor.skip_fixed(base_stop, _TATT3D_SIZES, "TAtt3D")
        moments = _TH2_MOMENTS_BYTES if layout.dimension == 2 else _TH3_MOMENTS_BYTES
        cursor.skip(moments, base_stop)  # fTsumwy ...: statistics the histogram type does not keep
        cursor.close(base_stop, base)
    contents = cursor.array(layout.content_dtype, stop)
    cursor.close(stop, what)
    return _histogram(what, layout.dimension, th1, contents)


def _histogram(class_name: str, dimension: int, th1: _TH1Part, contents: np.ndarray) -> Histogram:
    axes = th1.axes[:dimension]
    shape = tuple(axis.nbins + 2 for axis in axes)
    if min(axis.nbins for axis in axes) < 1:
        raise _NotOurs("an axis without bins")
    ncells = math.prod(shape)
    if th1.ncells != ncells or contents.size != ncells:
        raise DecodeError(
            f"{class_name}: {contents.size} contents and fNcells={th1.ncells} do not match the axes {shape}"
        )
    if th1.sumw2.size not in (0, ncells):
        raise _NotOurs("fSumw2 of another size than fNcells")  # the generic path would ignore it
    values = _to_index_order(contents, shape)
    # Variances as uproot gives them: fSumw2 when filled, else the contents, and never negative or NaN
    # (fmax, unlike maximum, turns NaN into 0 as uproot's `variances[positive] = ...` does).
    if th1.sumw2.size:
        variances = _to_index_order(th1.sumw2, shape)
        np.fmax(variances, 0.0, out=variances)
    else:
        variances = np.fmax(values, 0.0)
    return Histogram(
        name=th1.name,
        class_name=class_name,
        title=th1.title,
        edges=tuple(_edges(axis) for axis in axes),
        values_flow=values,
        variances_flow=variances,
        entries=float(th1.entries),
        axis_titles=tuple(axis.title for axis in th1.axes),
    )


def _to_index_order(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """ROOT's bins (x fastest) as a C-ordered float64 array indexed [ix, iy, iz]; one copy, no views
    of the message kept alive."""
    return flat.reshape(shape[::-1]).T.astype(np.float64, order="C")


def _edges(axis: _Axis) -> np.ndarray:
    if axis.xbins.size == 0:
        return _uniform_edges(axis.fixed_range)
    if axis.xbins.size == axis.nbins + 1:
        return axis.xbins.astype(np.float64)
    raise _NotOurs("fXbins of another size than fNbins + 1")  # the generic path would ignore it


@lru_cache(maxsize=1024)
def _uniform_edges(fixed_range: bytes) -> np.ndarray:
    """`linspace` edges, as uproot computes them, shared read-only by every axis with that binning.

    A reply repeats a few binnings hundreds of times; linspace costs more than the rest of an axis.
    Keyed by the streamed bytes, so -0.0 and NaN bounds are cached exactly.
    """
    nbins, xmin, xmax = _AXIS_RANGE.unpack(fixed_range)
    edges = np.linspace(xmin, xmax, nbins + 1)
    edges.flags.writeable = False
    return edges

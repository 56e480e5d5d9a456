"""ROOT TMessage payloads: decode with uproot (no ROOT), encode for the emulator (PROTOCOL.md 6, 7, 9).

A `StreamerContext` stands in for the uproot file object that `read_object_any` needs. It holds the
streamers received in ROOTSTRI blocks, and keeps classes generated from them in its own registry, so a
context without Run-2 streamers really fails on Run-2 objects instead of silently reusing classes that
another decode registered globally.
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import uproot
import uproot.compression
import uproot.deserialization
import uproot.model
import uproot.reading
import uproot.serialization
import uproot.writing.identify
from uproot.source.chunk import Chunk
from uproot.source.cursor import Cursor

from pipeline.histogram import Histogram, dimension_of_class
from pipeline.root_model import model_from_histogram

log = logging.getLogger(__name__)

KMESS_OBJECT = 4
KMESS_ZIP = 0x20000000
_BYTE_COUNT_MASK = 0x40000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_MIN_MESSAGE_SIZE = 34  # ZMQTMessage::Extract's lower bound
_U32_BE = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
STREAMER_FILE_SUFFIX = ".rootstri.bin"


class DecodeError(ValueError):
    """A payload that cannot be turned into a complete histogram (never stored)."""


class StreamerContext:
    """Streamers known to this process, in the shape uproot's `ReadOnlyFile` offers them."""

    file_path = "<zmq>"

    def __init__(self) -> None:
        self.streamers: dict[str, dict[int, Any]] = {}
        # Per-context registry: classes built from our streamers stay here, not in uproot.classes.
        self._custom_classes: dict[str, Any] = {}
        self._block_digests: set[str] = set()
        self.blocks: list[bytes] = []

    @property
    def custom_classes(self) -> dict[str, Any]:
        return self._custom_classes

    def class_named(self, classname: str, version: Any = None) -> Any:
        return uproot.reading.ReadOnlyFile.class_named(self, classname, version)

    def streamer_named(self, classname: str, version: Any = "max") -> Any:
        return uproot.reading.ReadOnlyFile.streamer_named(self, classname, version)

    def streamers_named(self, classname: str) -> list[Any]:
        return uproot.reading.ReadOnlyFile.streamers_named(self, classname)

    @property
    def known_classes(self) -> list[str]:
        return sorted(f"{name};{v}" for name, versions in self.streamers.items() for v in versions)

    def add_streamer_infos(self, infos: Iterable[Any]) -> int:
        """Register TStreamerInfo models; returns how many were new."""
        added = 0
        for info in infos:
            if getattr(info, "classname", None) != "TStreamerInfo":
                continue
            versions = self.streamers.setdefault(info.name, {})
            if info.class_version not in versions:
                versions[info.class_version] = info
                added += 1
        if added:
            # New streamers may describe versions a cached class could not read before.
            self._custom_classes.clear()
        return added

    def add_streamer_block(self, payload: bytes) -> int:
        """Decode a ROOTSTRI payload (TObjArray of TStreamerInfo) and keep it for persistence."""
        digest = hashlib.sha1(payload).hexdigest()
        array = decode_tmessage(payload, self)
        added = self.add_streamer_infos(array)
        if digest not in self._block_digests:
            self._block_digests.add(digest)
            self.blocks.append(payload)
        return added

    def add_streamers_from_root_file(self, path: Path) -> int:
        with uproot.open(path) as root_file:
            infos = [info for versions in root_file.file.streamers.values() for info in versions.values()]
        return self.add_streamer_infos(infos)

    def save(self, directory: Path) -> None:
        """Persist every distinct ROOTSTRI block: the merger sends it only on request."""
        directory.mkdir(parents=True, exist_ok=True)
        for payload in self.blocks:
            target = directory / f"{hashlib.sha1(payload).hexdigest()}{STREAMER_FILE_SUFFIX}"
            if not target.exists():
                tmp = target.with_name(f".{target.name}.tmp")
                tmp.write_bytes(payload)
                tmp.replace(target)

    @classmethod
    def load(cls, directory: Path) -> StreamerContext:
        """A context with every block saved in `directory`; unreadable blocks are logged and skipped."""
        context = cls()
        if directory.is_dir():
            for path in sorted(directory.glob(f"*{STREAMER_FILE_SUFFIX}")):
                try:
                    context.add_streamer_block(path.read_bytes())
                except Exception as error:  # a corrupt file must not stop a receiver from starting
                    log.warning("ignoring unreadable streamer block %s: %s", path, error)
        return context


def split_length_word(payload: bytes) -> int:
    """Validate the TMessage length word (either byte order, as ZMQTMessage::Extract does)."""
    size = len(payload)
    if size < _MIN_MESSAGE_SIZE:
        raise DecodeError(f"payload of {size} bytes is too short for a TMessage")
    if size - 4 not in (_U32_LE.unpack_from(payload)[0], _U32_BE.unpack_from(payload)[0]):
        raise DecodeError("payload length word does not match the frame size (not a TMessage)")
    return size


def inflate(payload: bytes, what: int) -> bytes:
    """Turn a kMESS_ZIP message into the equivalent uncompressed message."""
    (full_length,) = _U32_BE.unpack_from(payload, 8)
    chunk = Chunk.wrap(None, np.frombuffer(payload, np.uint8))
    try:
        body = uproot.compression.decompress(
            chunk, Cursor(12), {}, len(payload) - 12, full_length - 8
        ).raw_data.tobytes()
    except Exception as error:
        raise DecodeError(f"cannot decompress kMESS_ZIP payload: {error}") from error
    return payload[:4] + _U32_BE.pack(what & ~KMESS_ZIP) + body


def open_message(payload: bytes) -> bytes:
    """The uncompressed kMESS_OBJECT message, 8-byte header kept; DecodeError if it is not one.

    Shared by the generic decode and the fast path (`fast_decode`), so both accept exactly the same
    framing: either length-word byte order, kMESS_ZIP or not.
    """
    split_length_word(payload)
    (what,) = _U32_BE.unpack_from(payload, 4)
    if what & KMESS_ZIP:
        payload = inflate(payload, what)
    if (what & ~KMESS_ZIP) != KMESS_OBJECT:
        raise DecodeError(f"message type {what & ~KMESS_ZIP} is not kMESS_OBJECT")
    return payload


def decode_tmessage(payload: bytes, context: StreamerContext | None = None) -> Any:
    """Decode one TMessage into an uproot model. Raises DecodeError on malformed bytes.

    The cursor starts at byte 8 over the *whole* message: ROOT's back-reference offsets count from
    the start of the message, header included.
    """
    payload = open_message(payload)
    context = context or StreamerContext()
    chunk = Chunk.wrap(None, np.frombuffer(payload, np.uint8))
    try:
        model = uproot.deserialization.read_object_any(chunk, Cursor(8, origin=0), {}, context, context, None)
    except Exception as error:
        raise DecodeError(f"cannot deserialize object: {type(error).__name__}: {error}") from error
    if model is None:
        raise DecodeError("message holds a null object")
    return model


def unknown_parts(model: Any, _depth: int = 0) -> list[str]:
    """Names of every part of `model` (itself, its bases, nested members) uproot could not read."""
    unknown_types = (uproot.model.UnknownClass, uproot.model.UnknownClassVersion)
    found: list[str] = []
    if isinstance(model, unknown_types):
        found.append(type(model).__name__)
    if _depth > 8 or not isinstance(model, uproot.model.Model):
        return found
    for base in getattr(model, "_bases", []):
        found.extend(unknown_parts(base, _depth + 1))
    for member in getattr(model, "_members", {}).values():
        if isinstance(member, uproot.model.Model):
            found.extend(unknown_parts(member, _depth + 1))
    return found


def histogram_from_model(model: Any) -> Histogram:
    """Convert a decoded TH1/TH2/TH3 model to our Histogram; DecodeError if anything is unknown."""
    missing = unknown_parts(model)
    if missing:
        raise DecodeError(f"unknown class parts {sorted(set(missing))}: streamers needed")
    class_name = getattr(model, "classname", type(model).__name__)
    try:
        dimension = dimension_of_class(class_name)
    except ValueError as error:
        raise DecodeError(str(error)) from error
    axes = [model.member(f"f{axis}axis") for axis in "XYZ"]
    # Contents before edges: a corrupt fNbins must be refused here, not turned into a huge linspace.
    shape = tuple(int(axes[i].member("fNbins")) + 2 for i in range(dimension))
    try:
        values = np.asarray(model.values(flow=True), dtype=np.float64)
    except ValueError as error:  # TH2/TH3 reshape the contents with fNbins
        raise DecodeError(f"contents do not match the axes {shape}: {error}") from error
    if values.shape != shape:
        raise DecodeError(f"{values.size} contents do not match the axes {shape}")
    edges = tuple(np.asarray(model.axis(i).edges(), dtype=np.float64) for i in range(dimension))
    variances = np.asarray(model.variances(flow=True), dtype=np.float64)
    return Histogram(
        name=str(model.member("fName")),
        class_name=class_name,
        title=str(model.member("fTitle")),
        edges=edges,
        values_flow=values,
        variances_flow=variances,
        entries=float(model.member("fEntries")),
        axis_titles=tuple(str(axis.member("fTitle")) for axis in axes),
    )


def histograms_from_model(model: Any) -> list[Histogram]:
    """A histogram, or every histogram inside a TObjArray/TList (collections are unpacked)."""
    if getattr(model, "classname", "") in ("TObjArray", "TList", "THashList", "TClonesArray"):
        return [h for item in model for h in histograms_from_model(item)]
    return [histogram_from_model(model)]


# ---------------------------------------------------------------------------------------------
# Encoding (emulator side): uncompressed, little-endian length word, like the Run-2 merger.


def wrap_object_bytes(class_name: str, object_bytes: bytes) -> bytes:
    """Frame streamed object bytes as `WriteObjectAny` does, inside a kMESS_OBJECT TMessage."""
    tagged_class = class_name.encode() + b"\0"
    body = (
        _U32_BE.pack((4 + len(tagged_class) + len(object_bytes)) | _BYTE_COUNT_MASK)
        + _U32_BE.pack(_NEW_CLASS_TAG)
        + tagged_class
        + object_bytes
    )
    return _message(body)


def _message(object_any: bytes) -> bytes:
    # HLT's SetLength writes the length word little-endian; the message type stays big-endian.
    return _U32_LE.pack(len(object_any) + 4) + _U32_BE.pack(KMESS_OBJECT) + object_any


def encode_model(model: Any, name: str | None = None) -> bytes:
    return _message(uproot.serialization.serialize_object_any(model, name))


def encode_tmessage(histogram: Histogram) -> bytes:
    """The TMessage a Run-2 merger would send for this histogram."""
    return encode_model(model_from_histogram(histogram))


def tmessage_from_root_key(key: Any) -> bytes:
    """Wrap a ROOT file key's stored object bytes, keeping the original class version (replay).

    Valid for objects without internal back-references (plain histograms); callers decode the result
    to check.
    """
    chunk, cursor = key.get_uncompressed_chunk_cursor()
    object_bytes = chunk.raw_data[cursor.index :].tobytes()
    return wrap_object_bytes(key.fClassName, object_bytes)


def _tobjarray_of(objects_any: list[bytes]) -> bytes:
    """A streamed, unnamed TObjArray v3 holding already-framed objects."""
    tobject = struct.pack(">hII", 1, 0, 0x03000000)  # version, fUniqueID, fBits (kNotDeleted|...)
    content = tobject + b"\0" + struct.pack(">ii", len(objects_any), 0) + b"".join(objects_any)
    header = _U32_BE.pack((len(content) + 2) | _BYTE_COUNT_MASK) + struct.pack(">h", 3)
    return header + content


def encode_streamer_block(infos: Iterable[Any]) -> bytes:
    """A ROOTSTRI payload: TMessage of a TObjArray of TStreamerInfo, built without ROOT."""
    framed = [uproot.serialization.serialize_object_any(info) for info in infos]
    return wrap_object_bytes("TObjArray", _tobjarray_of(framed))


class _KeepOpen(io.BytesIO):
    def close(self) -> None:  # uproot.recreate closes its sink; keep the bytes readable
        pass


@lru_cache(maxsize=1)
def _uproot_written_streamers() -> tuple[Any, ...]:
    """The streamers uproot writes for its own TH1D/TH2F/TH3F... models (what we encode)."""
    sink = _KeepOpen()
    axis = np.array([0.0, 1.0])
    with uproot.recreate(sink) as root_file:
        for letter, dtype in (("D", np.float64), ("F", np.float32), ("I", np.int32)):
            for dimension in (1, 2, 3):
                histogram = Histogram(
                    name=f"h{dimension}{letter}",
                    class_name=f"TH{dimension}{letter}",
                    title="",
                    edges=(axis,) * dimension,
                    values_flow=np.zeros((3,) * dimension, dtype=dtype),
                    variances_flow=np.zeros((3,) * dimension),
                )
                root_file[histogram.name] = model_from_histogram(histogram)
    sink.seek(0)
    with uproot.open(sink) as reread:
        return tuple(i for versions in reread.file.streamers.values() for i in versions.values())


def streamer_block_for_encoded_histograms() -> bytes:
    """The ROOTSTRI block describing every class `encode_tmessage` produces."""
    return encode_streamer_block(_uproot_written_streamers())

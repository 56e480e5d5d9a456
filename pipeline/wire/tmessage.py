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
import re
import struct
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import uproot
import uproot.deserialization
import uproot.model
import uproot.reading
import uproot.serialization
import uproot.writing.identify
from uproot.source.chunk import Chunk
from uproot.source.cursor import Cursor
from uproot.streamers import Model_TStreamerBase

from pipeline import atomic_files
from pipeline.histogram import Histogram, dimension_of_class
from pipeline.root_model import model_from_histogram
from pipeline.wire.compression import KMESS_ZIP, inflate
from pipeline.wire.errors import DecodeError
from pipeline.wire.text import clean_text

log = logging.getLogger(__name__)

KMESS_OBJECT = 4
_BYTE_COUNT_MASK = 0x40000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_MIN_MESSAGE_SIZE = 34  # ZMQTMessage::Extract's lower bound
_U32_BE = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_I32_BE = struct.Struct(">i")
_U16_BE = struct.Struct(">H")
STREAMER_FILE_SUFFIX = ".rootstri.bin"

# What the store can hold: plain TH1/TH2/TH3 of any storage type, and collections of them.
_HISTOGRAM_CLASS = re.compile(r"TH[123][CSILFD]")
COLLECTION_CLASSES = ("TObjArray", "TList", "THashList", "TClonesArray")
_MAX_CLASS_NAME = 256
_IS_REFERENCED = 1 << 4  # TObject::kIsReferenced: a 2-byte process id follows fBits
_VERSION_HAS_BYTE_COUNT = 0x4000  # an old-style TObject version word: 4 more bytes before fUniqueID


class UnsupportedClassError(DecodeError):
    """A well-formed object of a class the store does not hold (TProfile, TGraph, TObjString, TCanvas...).

    Streamers would not change that, so unlike other decode errors it must not make a receiver ask
    for the schema again.
    """


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
        class_name = getattr(array, "classname", type(array).__name__)
        if class_name not in COLLECTION_CLASSES:
            # A fuzzed (or misrouted) block may hold a histogram: iterating it killed the receiver.
            raise DecodeError(f"a ROOTSTRI block holds a {class_name}, not a list of TStreamerInfo")
        try:
            added = self.add_streamer_infos(list(array))
        except DecodeError:
            raise
        except Exception as error:  # a collection whose items uproot could not read completely
            raise DecodeError(f"unreadable streamer list: {type(error).__name__}: {error}") from error
        if digest not in self._block_digests:
            self._block_digests.add(digest)
            self.blocks.append(payload)
        return added

    def add_streamers_from_root_file(self, path: Path) -> int:
        with uproot.open(path) as root_file:
            infos = [info for versions in root_file.file.streamers.values() for info in versions.values()]
        return self.add_streamer_infos(infos)

    def save(self, directory: Path) -> None:
        """Persist every distinct ROOTSTRI block: the merger sends it only on request.

        Safe with several writers at once (receivers of one data folder share `streamers/`); raises
        OSError if the disk refuses.
        """
        directory.mkdir(parents=True, exist_ok=True)
        for payload in self.blocks:
            save_streamer_block(directory, payload)

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


def save_streamer_block(directory: Path, payload: bytes) -> Path:
    """Keep a ROOTSTRI payload in `directory` as `StreamerContext.save` does (content-named, atomic)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{hashlib.sha1(payload).hexdigest()}{STREAMER_FILE_SUFFIX}"
    _publish_block(target, payload)
    return target


def _publish_block(target: Path, payload: bytes) -> None:
    """Write `payload` to `target` atomically; a file already there with the same bytes is success."""
    if _holds(target, payload):
        return
    # Names are content hashes, so whichever writer replaces last leaves the same bytes; replacing
    # also repairs a damaged copy (e.g. cut short by a full disk).
    atomic_files.write_file(target, payload, durable=False)


def _holds(path: Path, payload: bytes) -> bool:
    try:
        return path.read_bytes() == payload
    except FileNotFoundError:
        return False


def split_length_word(payload: bytes) -> int:
    """Validate the TMessage length word (either byte order, as ZMQTMessage::Extract does)."""
    size = len(payload)
    if size < _MIN_MESSAGE_SIZE:
        raise DecodeError(f"payload of {size} bytes is too short for a TMessage")
    if not length_word_matches(payload):
        raise DecodeError("payload length word does not match the frame size (not a TMessage)")
    return size


def length_word_matches(payload: bytes) -> bool:
    """True when the first 4 bytes count the rest of the payload, in either byte order (ROOT writes
    the host's: little-endian on the HLT's machines)."""
    return len(payload) - 4 in (_U32_LE.unpack_from(payload)[0], _U32_BE.unpack_from(payload)[0])


def open_message(payload: bytes) -> bytes:
    """The uncompressed kMESS_OBJECT message, 8-byte header kept; DecodeError if it is not one.

    Shared by the generic decode and the fast path (`fast_decode`), so both accept exactly the same
    framing: either length-word byte order, kMESS_ZIP or not. (`fast_decode.read_planned` takes the
    uncompressed part of this framing only, with `length_word_matches`, and leaves the rest here.)
    """
    split_length_word(payload)
    (what,) = _U32_BE.unpack_from(payload, 4)
    if what & KMESS_ZIP:
        payload = inflate(payload, what)
    if (what & ~KMESS_ZIP) != KMESS_OBJECT:
        raise DecodeError(f"message type {what & ~KMESS_ZIP} is not kMESS_OBJECT")
    return payload


def top_level_class_name(message: bytes) -> str | None:
    """The class of an uncompressed message's object, read from its class tag without deserializing.

    None when the object does not start with a new class tag (then only deserializing can tell).
    """
    position = 8
    if len(message) < position + 8:
        return None
    (word,) = _U32_BE.unpack_from(message, position)
    if word != _NEW_CLASS_TAG and word & _BYTE_COUNT_MASK:
        position += 4  # WriteObjectAny's byte count
    if _U32_BE.unpack_from(message, position)[0] != _NEW_CLASS_TAG:
        return None
    position += 4
    end = message.find(b"\0", position, position + _MAX_CLASS_NAME)
    if end < 0:
        return None
    return message[position:end].decode("ascii", "replace")


def check_supported_class(class_name: str) -> None:
    """Raise UnsupportedClassError unless the store can hold objects of this class (or it is a collection)."""
    if _HISTOGRAM_CLASS.fullmatch(class_name) or class_name in COLLECTION_CLASSES:
        return
    if class_name.startswith("TProfile"):
        # A profile's bins hold means of y, not counts: stored as a TH1 they would be silently wrong.
        raise UnsupportedClassError(
            f"unsupported histogram class {class_name!r}: profiles hold means, not counts, and are not stored"
        )
    raise UnsupportedClassError(
        f"unsupported histogram class {class_name!r}: only TH1/TH2/TH3 histograms are stored"
    )


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
    """Convert a decoded TH1/TH2/TH3 model to our Histogram; DecodeError if anything is unknown.

    UnsupportedClassError (a DecodeError) for any other class, checked first: streamers cannot make
    a TProfile or a TGraph storable, so an unknown version of one is not a reason to ask for them.
    """
    class_name = getattr(model, "classname", type(model).__name__)
    if class_name in COLLECTION_CLASSES:
        raise UnsupportedClassError(f"a {class_name} is not a histogram")
    check_supported_class(class_name)
    missing = unknown_parts(model)
    if missing:
        raise DecodeError(f"unknown class parts {sorted(set(missing))}: streamers needed")
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
        name=clean_text(str(model.member("fName"))),
        class_name=class_name,
        title=clean_text(str(model.member("fTitle"))),
        edges=edges,
        values_flow=values,
        variances_flow=variances,
        entries=float(model.member("fEntries")),
        axis_titles=tuple(clean_text(str(axis.member("fTitle"))) for axis in axes),
    )


def histograms_from_model(model: Any) -> list[Histogram]:
    """A histogram, or every histogram inside a TObjArray/TList (collections are unpacked)."""
    if getattr(model, "classname", "") in COLLECTION_CLASSES:
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


def tmessage_from_root_key(key: Any, name: str | None = None) -> bytes:
    """Wrap a ROOT file key's stored object bytes, keeping the original class version (replay).

    `name` replaces the object's fName (e.g. its full path "TPCQA/h" for an object that a file keeps
    as "h" in a folder, as our export writes names that contain "/"). Valid for objects without
    internal back-references (plain histograms); callers decode the result to check. ValueError if
    the object cannot be renamed (no TNamed base found through the file's streamers).
    """
    chunk, cursor = key.get_uncompressed_chunk_cursor()
    object_bytes = chunk.raw_data[cursor.index :].tobytes()
    if name is not None and name != key.fName:
        if len(object_bytes) < 6:
            raise ValueError(f"{key.fName}: {len(object_bytes)} bytes cannot hold a streamed object")
        version = _U16_BE.unpack_from(object_bytes, 4)[0]
        depth = _bases_above_tnamed(key.file, key.fClassName, version)
        object_bytes = rename_streamed_object(object_bytes, depth, name)
    return wrap_object_bytes(key.fClassName, object_bytes)


def _bases_above_tnamed(root_file: Any, class_name: str, version: int) -> int:
    """How many first-base levels lie between a class and TNamed (TH1F: 1, TH2F: 2), by its streamers."""
    depth = 0
    while class_name != "TNamed":
        info = root_file.streamer_named(class_name, version)
        elements = getattr(info, "elements", None) if info is not None else None
        if not elements or not isinstance(elements[0], Model_TStreamerBase) or depth > 8:
            raise ValueError(f"no TNamed first base found for {class_name} v{version}")
        class_name, version = elements[0].name, elements[0].member("fBaseVersion")
        depth += 1
    return depth


def rename_streamed_object(object_bytes: bytes, depth: int, name: str) -> bytes:
    """Replace fName in a streamed TNamed-derived object whose TNamed lies `depth` first bases down.

    Every enclosing byte count (the object's, each base's, TNamed's) grows or shrinks with the name.
    ValueError if the bytes do not have that shape.
    """
    try:
        headers, name_start, name_end = _locate_name(object_bytes, depth)
    except (struct.error, IndexError) as error:
        raise ValueError(f"object ends before its fName: {error}") from error
    new_name = _tstring(name)
    delta = len(new_name) - (name_end - name_start)
    renamed = bytearray(object_bytes[:name_start] + new_name + object_bytes[name_end:])
    for header in headers:
        count = (_U32_BE.unpack_from(renamed, header)[0] & ~_BYTE_COUNT_MASK) + delta
        _U32_BE.pack_into(renamed, header, count | _BYTE_COUNT_MASK)
    return bytes(renamed)


def _locate_name(object_bytes: bytes, depth: int) -> tuple[list[int], int, int]:
    """Offsets of the enclosing byte counts, and where the streamed fName starts and ends."""
    headers = []
    position = 0
    for _ in range(depth + 1):  # byte count and version of each level, TNamed's last
        if not _U32_BE.unpack_from(object_bytes, position)[0] & _BYTE_COUNT_MASK:
            raise ValueError(f"no byte count at byte {position}: not a streamed TNamed-derived object")
        headers.append(position)
        position += 6
    # TObject: version, [old-style byte count], fUniqueID, fBits, [process id if referenced]
    if _U16_BE.unpack_from(object_bytes, position)[0] & _VERSION_HAS_BYTE_COUNT:
        position += 4
    position += 2
    (bits,) = _U32_BE.unpack_from(object_bytes, position + 4)
    position += 8 + (2 if bits & _IS_REFERENCED else 0)
    name_start = position
    length = object_bytes[position]
    position += 1
    if length == 255:  # TString's long form: a 4-byte length follows the 255 marker
        (length,) = _I32_BE.unpack_from(object_bytes, position)
        position += 4
    name_end = position + length
    if length < 0 or name_end > len(object_bytes):
        raise ValueError("fName runs past the object")
    return headers, name_start, name_end


def _tstring(text: str) -> bytes:
    encoded = text.encode()
    if len(encoded) < 255:
        return bytes([len(encoded)]) + encoded
    return b"\xff" + _I32_BE.pack(len(encoded)) + encoded


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
def uproot_written_streamers() -> tuple[Any, ...]:
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
    return encode_streamer_block(uproot_written_streamers())

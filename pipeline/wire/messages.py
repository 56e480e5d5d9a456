"""Request and reply framing between a receiver and an HLT merger (PROTOCOL.md sections 2, 4, 5).

A message is a list of (header, payload) frame pairs. The receiver sends a 4-frame CONFIG request; the
merger answers with an optional ROOTSTRI block, an INFO block, then one ROOTTOBJ block per object.
"""

from __future__ import annotations

import enum
import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

from pipeline.bin_arena import ReplyArenas
from pipeline.histogram import Histogram
from pipeline.wire import header
from pipeline.wire.fast_decode import decode_histograms, read_planned
from pipeline.wire.header import DataTopic, pack_topic, parse_topic
from pipeline.wire.tmessage import (
    DecodeError,
    StreamerContext,
    UnsupportedClassError,
    check_supported_class,
    open_message,
    top_level_class_name,
)

log = logging.getLogger(__name__)

# The only merger options a receiver may send: any other (e.g. -reset) would reconfigure the merger.
_ALLOWED_OPTIONS = ("select", "ResetOnRequest", "SchemaOnRequest")


class ProtocolError(ValueError):
    """Frames that do not form a valid message."""


def _string_topic(data_type: bytes) -> bytes:
    # alizmq_msg_send(std::string...) leaves origin and serialization zero.
    return pack_topic(data_type, origin=b"\0\0\0\0", serialization=b"\0" * 8)


def build_request(select: str | None = None, reset: bool = False, schema: bool = False) -> list[bytes]:
    """The 4-frame CONFIG request zmqReceive sends: [hdr(CONFIG), options, hdr(""), b""]."""
    options = ""
    if select:
        if any(c.isspace() for c in select):
            raise ValueError("a selection regex cannot contain white space (the merger splits on it)")
        options += f" -select={select}"
    if reset:
        options += " -ResetOnRequest"
    if schema:
        options += " -SchemaOnRequest"
    return [_string_topic(header.CONFIG), options.encode(), _string_topic(b""), b""]


@dataclass(frozen=True)
class RequestOptions:
    """What one CONFIG request asks of the merger (all options are one-shot)."""

    select: str | None = None
    unselect: str | None = None
    list: str | None = None
    reset: bool = False
    schema: bool = False
    ignored: tuple[str, ...] = ()


def pair_frames(frames: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Pair header and payload frames; a trailing header without payload is dropped, as the C++ does."""
    return [(frames[i], frames[i + 1]) for i in range(0, len(frames) - 1, 2)]


def parse_request(frames: list[bytes]) -> RequestOptions:
    """Parse a receiver's request as ZMQROOTmerger does: only the first block's CONFIG counts.

    Raises ProtocolError when the first block is not a CONFIG topic.
    """
    pairs = pair_frames(frames)
    if not pairs:
        raise ProtocolError("empty request")
    topic = parse_topic(pairs[0][0])
    if topic is None or not topic.is_type(b"CONFIG", 6):
        raise ProtocolError("first block is not a CONFIG topic")
    try:
        # AliOptionParser splits on white space only: no quoting, no escapes, so a regex such as
        # ^EMC\d or a quote in it reaches TPRegexp as written (shlex would eat the backslash).
        tokens = pairs[0][1].decode().split()
    except UnicodeDecodeError as error:
        raise ProtocolError(f"unreadable CONFIG options: {error}") from error
    return _options_from_tokens(tokens)


def _options_from_tokens(tokens: list[str]) -> RequestOptions:
    values: dict[str, str | bool] = {}
    ignored = []
    index = 0
    while index < len(tokens):
        token = tokens[index].lstrip("-")
        key, has_value, value = token.partition("=")
        # "-opt value" form: a following token that is not itself an option is the value.
        if not has_value and key in ("select", "unselect", "list") and index + 1 < len(tokens):
            value, index = tokens[index + 1], index + 1
            has_value = True
        if key in ("select", "unselect", "list"):
            values[key] = value
        elif key in ("ResetOnRequest", "SchemaOnRequest"):
            values[key] = True
        else:
            ignored.append(tokens[index])
        index += 1
    for key in ("select", "unselect"):
        pattern = values.get(key)
        if isinstance(pattern, str) and pattern:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ProtocolError(f"-{key}={pattern!r} is not a valid regular expression") from error
    return RequestOptions(
        select=_str_or_none(values.get("select")),
        unselect=_str_or_none(values.get("unselect")),
        list=_str_or_none(values.get("list")),
        reset=bool(values.get("ResetOnRequest", False)),
        schema=bool(values.get("SchemaOnRequest", False)),
        ignored=tuple(ignored),
    )


def _str_or_none(value: str | bool | None) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_info(text: str) -> dict[str, str]:
    """`run=<N>;HLT_MODE=<X>;BEAM_TYPE=<Y>` with the merger's semantics (ParseParamString)."""
    info: dict[str, str] = {}
    for token in text.split(";"):
        if not token:
            continue
        key, _, value = token.partition("=")
        info[key] = value  # later duplicates win: repeated SORs append the same keys again
    return info


# More digits than any run number has: such a "run" is only ever refused (beyond int64), and Python
# refuses to convert more than 4,300 digits at all, which made a long digit string an exception.
_MAX_RUN_DIGITS = 30


def run_number(info: dict[str, str]) -> int:
    """`atoi(map["run"])`: leading digits, 0 when absent or not a number; a number of more than 30
    digits reads as +-10**30 (out of every valid range, as it is)."""
    match = re.match(r"\s*([+-]?)(\d+)", info.get("run", ""))
    if not match:
        return 0
    sign, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    value = int(digits) if len(digits) <= _MAX_RUN_DIGITS else 10**_MAX_RUN_DIGITS
    return -value if sign == "-" else value


def format_info(run: int, hlt_mode: str, beam_type: str) -> str:
    return f"run={run};HLT_MODE={hlt_mode};BEAM_TYPE={beam_type}"


def build_reply(
    info: str, objects: list[tuple[str, bytes]], streamer_block: bytes | None = None
) -> list[bytes]:
    """A merger reply: [ROOTSTRI]? INFO then one ROOTTOBJ per object, sorted byte-wise by name."""
    frames: list[bytes] = []
    if streamer_block is not None:
        frames += [
            pack_topic(header.ROOTSTRI, header.ORIGIN_ANY, header.SERIALIZATION_ROOT),
            streamer_block,
        ]
    frames += [
        pack_topic(header.INFO, header.ORIGIN_HLT, header.SERIALIZATION_NONE),
        info.encode(),
    ]
    for _, payload in sorted(objects, key=lambda item: item[0].encode()):
        frames += [
            pack_topic(header.ROOTTOBJ, header.ORIGIN_HLT, header.SERIALIZATION_ROOT),
            payload,
        ]
    return frames


@dataclass
class Reply:
    """A decoded merger reply: run information plus every histogram that decoded completely.

    Whatever is not kept is listed, with a reason, in one of three lists (together: `rejected`):
    - `errors`: payloads that did not decode (corrupt bytes, an uproot Unknown* class or base); a
      schema may cure these, so they make the receiver ask for it again;
    - `unsupported`: well-formed objects of a class the store does not hold (TProfile, TGraph, ...);
    - `invalid`: everything else refused: frames that are not a header/payload pair, ROOT blocks
      marked as not ROOT-serialized, non-finite contents, variances, entries or edges, edges that do
      not increase.
    Names are as sent: two objects may share one (what to keep is the receiver's decision).
    """

    info: dict[str, str] = field(default_factory=dict)
    histograms: list[Histogram] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    streamer_blocks: int = 0
    has_info: bool = False

    @property
    def rejected(self) -> list[str]:
        """Every refused object or block, with its reason."""
        return self.errors + self.unsupported + self.invalid

    @property
    def run(self) -> int:
        return run_number(self.info)

    @property
    def hlt_mode(self) -> str:
        return self.info.get("HLT_MODE") or "U"

    @property
    def beam_type(self) -> str:
        return self.info.get("BEAM_TYPE", "")

    @property
    def needs_schema(self) -> bool:
        """A decode failure makes the receiver ask for the schema again (as zmqReceive does).

        Unsupported classes and invalid blocks do not: a schema would not change them, and asking for
        it on every request would make the merger send it on every reply.
        """
        return bool(self.errors)


def decode_reply(frames: list[bytes], context: StreamerContext) -> Reply:
    """Decode every block; bad blocks become entries in `errors`/`unsupported`/`invalid`, never exceptions.

    ROOTSTRI blocks update `context` first, so objects later in the same reply can use them.
    """
    reply = Reply()
    if len(frames) % 2:
        # alizmq_msg_recv drops a last header frame that has no payload; say so instead.
        reply.invalid.append(f"frame {len(frames) - 1}: a header frame without payload, dropped")
    # A reply repeats the same few 80-byte headers hundreds of times: parse and classify each once.
    topics: dict[bytes, tuple[DataTopic | None, _Block | None]] = {}
    # The numbers of the objects go into one buffer, which the store writes without copying them again.
    pairs = pair_frames(frames)
    arenas = ReplyArenas(sum(len(payload) for _, payload in pairs if isinstance(payload, bytes | bytearray)))
    # One error state for the whole reply: entering it per histogram cost as much as the check itself.
    with np.errstate(over="ignore"):
        for index, (header_frame, payload) in enumerate(pairs):
            try:
                key = bytes(header_frame)
                topic, block = topics.get(key) or topics.setdefault(key, _classified(key))
                if block is _Block.OBJECT:
                    # Most objects of a reply: a layout already learned (the full path otherwise).
                    planned = read_planned(payload, context, arenas)
                    if planned is not None:
                        _accept(planned.histogram, reply, index, numbers_finite=planned.numbers_finite)
                        continue
                _decode_pair(topic, block, header_frame, payload, context, reply, index)
            except Exception as error:  # any bug met by odd bytes is one rejected block, never the receiver
                log.exception("block %d: unexpected failure", index)
                reply.errors.append(f"block {index}: {type(error).__name__}: {error}")
    return reply


class _Block(enum.Enum):
    """What a block holds, by its topic."""

    INFO = enum.auto()  # the reply's INFO string (run, HLT mode, beam type)
    TEXT = enum.auto()  # any other string block, or a ROOT data type in another serialization
    STREAMERS = enum.auto()  # ROOTSTRI: the merger's streamer infos
    OBJECT = enum.auto()  # a TMessage holding one object


def _classified(header_frame: bytes) -> tuple[DataTopic | None, _Block | None]:
    """The header's topic and what its blocks hold (None: not a DataTopic header)."""
    topic = parse_topic(header_frame)
    if topic is None:
        return None, None
    if topic.is_type(header.INFO, 4):
        return topic, _Block.INFO
    if not topic.is_root_object:
        return topic, _Block.TEXT
    if topic.is_type(header.ROOTSTRI):
        return topic, _Block.STREAMERS
    return topic, _Block.OBJECT


def _accept(histogram: Histogram, reply: Reply, index: int, numbers_finite: bool = False) -> None:
    """Add the histogram to the reply, or refuse it when its numbers cannot be stored."""
    problem = _unusable_numbers(histogram, numbers_finite)
    if problem:
        reply.invalid.append(f"block {index} {histogram.name!r}: {problem}")
    else:
        reply.histograms.append(histogram)


def _decode_pair(
    topic: DataTopic | None,
    block: _Block | None,
    header_frame: bytes,
    payload: bytes,
    context: StreamerContext,
    reply: Reply,
    index: int,
) -> None:
    if topic is None or block is None:
        reply.invalid.append(f"block {index}: not a DataTopic header ({len(header_frame)} bytes)")
        return
    for histogram in _decode_block(topic, block, payload, context, reply, index):
        _accept(histogram, reply, index)


def _decode_block(
    topic: DataTopic, block: _Block, payload: bytes, context: StreamerContext, reply: Reply, index: int
) -> list[Histogram]:
    """The histograms of one block; anything refused is recorded in `reply`."""
    data_type = topic.data_type.decode(errors="replace")
    if block is _Block.INFO:
        reply.info.update(parse_info(payload.decode(errors="replace")))
        reply.has_info = True
        return []
    if block is _Block.TEXT:
        if topic.has_root_data_type:
            # The C++ receiver skips these silently (alizmq_msg_iter_data returns -1); an object lost
            # that way should show in the counters.
            serialization = topic.serialization.rstrip(b"\0 ").decode(errors="replace") or "0"
            reply.invalid.append(f"block {index} ({data_type}): serialization {serialization}, not ROOT")
        elif topic.data_type not in header.KNOWN_STRING_DATA_TYPES:
            log.info("block %d: skipping string block %r", index, topic.data_type)
        return []  # a string block (ECSPARAM, ...): text, never a TMessage
    if block is _Block.STREAMERS:
        try:
            context.add_streamer_block(payload)
            reply.streamer_blocks += 1
        except DecodeError as error:
            reply.errors.append(f"block {index} (ROOTSTRI): {error}")
        except Exception as error:  # as for objects below: one bad block, not a dead receiver
            log.exception("block %d (ROOTSTRI): unexpected decode failure", index)
            reply.errors.append(f"block {index} (ROOTSTRI): {type(error).__name__}: {error}")
        return []
    try:
        message = open_message(payload)
        # The class tag tells an unsupported class before any deserialization, which could fail on
        # it (e.g. a TCanvas) and wrongly read as "streamers needed".
        class_name = top_level_class_name(message)
        if class_name is not None and class_name not in _SUPPORTED_CLASSES:
            check_supported_class(class_name)
            if len(_SUPPORTED_CLASSES) < _MAX_SUPPORTED_CLASSES:
                _SUPPORTED_CLASSES.add(class_name)
        return decode_histograms(message, context, opened=True)
    except UnsupportedClassError as error:
        reply.unsupported.append(f"block {index} ({data_type}): {error}")
    except DecodeError as error:
        reply.errors.append(f"block {index} ({data_type}): {error}")
    except Exception as error:  # a bug met by odd bytes must cost one object, not the receiver
        log.exception("block %d (%s): unexpected decode failure", index, data_type)
        reply.errors.append(f"block {index} ({data_type}): {type(error).__name__}: {error}")
    return []


# Class names that passed `check_supported_class` (a regular expression per object otherwise).
_SUPPORTED_CLASSES: set[str] = set()
_MAX_SUPPORTED_CLASSES = 256


def _unusable_numbers(histogram: Histogram, numbers_finite: bool = False) -> str | None:
    """Why the histogram's numbers cannot be stored, or None: NaN or infinite contents, variances,
    entries or bin edges, or edges that do not increase (a swapped fXmin/fXmax).

    `numbers_finite`: the decoder already proved contents and variances finite; only the entries
    and the edges are left to check."""
    if not math.isfinite(histogram.entries):
        return f"non-finite entries ({histogram.entries})"
    problem = _all_edges_problem(histogram.edges)
    if problem:
        return problem
    if numbers_finite:
        return None
    arrays = [("contents", histogram.values_flow)]
    # Unweighted fills share one array for both (fast_decode): checking it once is enough.
    if histogram.variances_flow is not histogram.values_flow:
        arrays.append(("variances", histogram.variances_flow))
    for what, array in arrays:
        # The sum is NaN or infinite whenever a bin is (or on overflow, which the caller's error state
        # keeps quiet), and costs no temporary array: the exact per-bin check runs only then.
        total = array.sum()
        if not math.isfinite(total):
            bad_bins = np.count_nonzero(~np.isfinite(array))
            if bad_bins:
                return f"non-finite {what} ({bad_bins} bins)"
    return None


# Verdicts on the edge arrays the fast decoder shares between histograms (read-only arrays that own
# their numbers: its cached axes), keyed by identity. A reply repeats a few binnings hundreds of times
# and the checks cost four numpy calls per axis, more than the rest of the histogram's checks. Each
# entry holds its array, so an id cannot be reused while it is here; bounded, cleared when full.
_EDGE_VERDICTS: dict[int, tuple[np.ndarray, str | None]] = {}
_EDGE_VERDICTS_MAX = 4096


# The same verdicts by the tuple of a histogram's edges, when every array in it is shared: a layout plan
# gives its one tuple to every histogram of its layout, so most objects of a reply cost one lookup here
# instead of one per axis (with two flag checks each). Each entry holds its tuple, as above.
_ALL_EDGES_VERDICTS: dict[int, tuple[tuple[np.ndarray, ...], str | None]] = {}


def _all_edges_problem(all_edges: tuple[np.ndarray, ...]) -> str | None:
    """What is wrong with a histogram's edges (the first axis that has a problem), or None."""
    cached = _ALL_EDGES_VERDICTS.get(id(all_edges))
    if cached is not None and cached[0] is all_edges:
        return cached[1]
    problem = None
    for axis, edges in zip("xyz", all_edges, strict=False):
        template = _edges_problem(edges)
        if template:
            problem = template.format(axis=axis)
            break
    # A tuple cannot change, nor can shared arrays: numpy would let a caller make one writable again,
    # but nothing does (every histogram of a layout holds it; its edges would change with it).
    if type(all_edges) is tuple and all(_shared(edges) for edges in all_edges):
        if len(_ALL_EDGES_VERDICTS) >= _EDGE_VERDICTS_MAX:
            _ALL_EDGES_VERDICTS.clear()
        _ALL_EDGES_VERDICTS[id(all_edges)] = (all_edges, problem)
    return problem


def _shared(edges: np.ndarray) -> bool:
    """Read-only and owning its numbers: an array the fast decoder shares, which nothing may change."""
    return not edges.flags.writeable and edges.flags.owndata


def _edges_problem(edges: np.ndarray) -> str | None:
    """What is wrong with one axis's edges (a template for `str.format(axis=...)`), or None."""
    shared = _shared(edges)
    if shared:
        cached = _EDGE_VERDICTS.get(id(edges))
        if cached is not None and cached[0] is edges:
            return cached[1]
    # Axes hold tens to thousands of edges: the exact check is cheap. `diff > 0` is False for NaN.
    problem = None
    if not np.isfinite(edges).all():
        problem = "non-finite {axis} bin edges"
    elif not (np.diff(edges) > 0).all():
        problem = "{axis} bin edges do not increase"
    if shared:
        if len(_EDGE_VERDICTS) >= _EDGE_VERDICTS_MAX:
            _EDGE_VERDICTS.clear()
        _EDGE_VERDICTS[id(edges)] = (edges, problem)
    return problem

"""Fuzzing the wire decoding with mutated merger replies: zero crashes, hangs or bad objects accepted.

    .venv/bin/python -m benchmarks.fuzz_wire --cases 100000 [--seed 1] [--store-every 500]
    .venv/bin/python -m benchmarks.fuzz_wire --atheris            (coverage-guided, `pip install atheris`)

Each case is a reply built from genuine ROOT bytes (tests/fixtures) and our own encodings, then broken
the ways a network, a buggy merger or a hostile sender could: wrong frame counts, short, oversized or
unknown headers, truncated and bit-flipped TMessages, lying length words, compression blocks whose sizes
lie, unknown classes, huge declared sizes, deeply nested collections. `decode_reply` must return for
every case (an exception is a crash, more than `--hang-s` a hang), everything it returns must be
storable (finite numbers, increasing edges, a table the store can write), and memory must stay flat.
The CI test (`tests/pipeline/test_fuzz_wire.py`) draws the same cases from hypothesis.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import lz4.block
import numpy as np
import xxhash
import zstandard

from pipeline.histogram import Histogram
from pipeline.store import SnapshotStore
from pipeline.store_schema import MAX_RUN, SnapshotMeta, histograms_to_table
from pipeline.wire import header
from pipeline.wire.compression import KMESS_ZIP
from pipeline.wire.messages import Reply, build_reply, decode_reply
from pipeline.wire.tmessage import (
    StreamerContext,
    _tobjarray_of,
    encode_tmessage,
    streamer_block_for_encoded_histograms,
    wrap_object_bytes,
)

FIXTURES_DIR = Path(
    os.environ.get("OVERWATCH_FIXTURES", Path(__file__).resolve().parents[1] / "tests" / "fixtures")
)
_BYTE_COUNT_MASK = 0x40000000
_NEW_CLASS_TAG = 0xFFFFFFFF
_INFOS = (
    "run=300000;HLT_MODE=B;BEAM_TYPE=pp",
    "run=0",
    "run=-7;HLT_MODE=A",
    f"run={2**63};HLT_MODE=B",
    f"run={2**64 + 3}",
    "run=12;HLT_MODE=B\n;BEAM_TYPE=\xff",
    "run=abc",
    "run=" + "9" * 5000,  # more digits than Python converts to an int
    "",
)
_CLASS_NAMES = (b"TH1F", b"TH2D", b"TH3I", b"TProfile", b"TGraph", b"TCanvas", b"TObjArray", b"TList", b"Zz")


# ---- seeds: genuine and synthetic payloads ------------------------------------------------------


def _histogram(name: str, dimension: int, weighted: bool, seed: int) -> Histogram:
    rng = np.random.default_rng(seed)
    edges = tuple(np.linspace(0.0, 1.0, 4 + axis) for axis in range(dimension))
    shape = tuple(len(e) + 1 for e in edges)
    values = rng.poisson(5.0, shape).astype(np.float64)
    variances = values * 2.25 if weighted else values
    return Histogram(
        name, f"TH{dimension}{'D' if weighted else 'F'}", f"title {name}", edges, values, variances, 9.0
    )


def _zip(message: bytes, algorithm: bytes) -> bytes:
    """`message` (an uncompressed TMessage) as a kMESS_ZIP message of one ROOT compression block."""
    body = message[8:]
    if algorithm == b"ZL":
        data = zlib.compress(body)
    elif algorithm == b"ZS":
        data = zstandard.ZstdCompressor().compress(body)
    else:  # L4: xxhash64 of the LZ4 data first, counted in the compressed size
        raw = lz4.block.compress(body, store_size=False)
        data = xxhash.xxh64_intdigest(raw).to_bytes(8, "big") + raw
    block = algorithm + b"\x01" + len(data).to_bytes(3, "little") + len(body).to_bytes(3, "little") + data
    rest = struct.pack(">II", 4 | KMESS_ZIP, len(body) + 8) + block
    return struct.pack("<I", len(rest)) + rest


def _framed(class_name: bytes, object_bytes: bytes) -> bytes:
    """An object as WriteObjectAny writes it: byte count, new class tag, class name, object."""
    tagged = class_name + b"\0"
    return struct.pack(">II", (4 + len(tagged) + len(object_bytes)) | _BYTE_COUNT_MASK, _NEW_CLASS_TAG) + (
        tagged + object_bytes
    )


def nested_collection(depth: int, inner: bytes) -> bytes:
    """A TMessage of `depth` TObjArrays, each holding the next, around one framed object."""
    framed = inner
    for _ in range(depth - 1):
        framed = _framed(b"TObjArray", _tobjarray_of([framed]))
    return wrap_object_bytes("TObjArray", _tobjarray_of([framed]))


@lru_cache(maxsize=1)
def seed_payloads() -> tuple[tuple[str, bytes], ...]:
    """(name, ROOTTOBJ payload) pairs every case starts from."""
    seeds = [
        (name, (FIXTURES_DIR / f"{name}.tmessage.bin").read_bytes())
        for name in ("th1d", "th2f", "th2f_compressed", "th2f_lz4", "objarray_2h")
    ]
    for index, (dimension, weighted) in enumerate([(1, False), (2, True), (3, False), (1, True)]):
        seeds.append((f"ours_{index}", encode_tmessage(_histogram(f"h{index}", dimension, weighted, index))))
    plain = encode_tmessage(_histogram("z", 2, False, 9))
    seeds += [(f"zip_{a.decode()}", _zip(plain, a)) for a in (b"ZL", b"ZS", b"L4")]
    seeds.append(("nested_3", nested_collection(3, plain[8:])))
    return tuple(seeds)


@lru_cache(maxsize=1)
def streamer_blocks() -> tuple[bytes, ...]:
    return (
        (FIXTURES_DIR / "streamerinfo.tmessage.bin").read_bytes(),
        streamer_block_for_encoded_histograms(),
    )


# ---- mutations ----------------------------------------------------------------------------------
# Each takes a payload and a random.Random (hypothesis passes its own, so it can shrink the case).


def flip_bits(payload: bytes, rng: random.Random) -> bytes:
    if not payload:
        return payload
    data = bytearray(payload)
    for _ in range(rng.choice((1, 1, 2, 8, 64))):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(payload: bytes, rng: random.Random) -> bytes:
    return payload[: rng.randrange(len(payload))] if payload else payload


def extend(payload: bytes, rng: random.Random) -> bytes:
    return payload + rng.randbytes(rng.choice((1, 7, 100, 5000)))


def lie_length_word(payload: bytes, rng: random.Random) -> bytes:
    """A length word that matches the frame (so it passes the first check) over a shorter or longer
    body, or a plain lie."""
    body = payload[4:]
    if rng.random() < 0.5:
        body = body[: rng.randrange(len(body) + 1)] if rng.random() < 0.5 else body + bytes(rng.randrange(64))
        order = "<I" if rng.random() < 0.5 else ">I"
        return struct.pack(order, len(body)) + body
    return struct.pack("<I", rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)))) + body


def lie_sizes(payload: bytes, rng: random.Random) -> bytes:
    """Lying byte counts, array sizes or compression-block sizes: overwrite a 4-byte word that looks
    like one (byte-count mask, or a small number) with a wrong or huge value."""
    data = bytearray(payload)
    if len(data) < 13:
        return payload
    if payload[4:8] == struct.pack(">I", 4 | KMESS_ZIP) and rng.random() < 0.6 and len(data) > 21:
        # kMESS_ZIP: the declared full length (bytes 8-11) or a block's 3-byte sizes (bytes 15-20)
        if rng.random() < 0.5:
            data[8:12] = struct.pack(">I", rng.choice((0, 9, 0x7FFFFFF0, 0xFFFFFFFF, rng.getrandbits(28))))
        else:
            start = rng.choice((15, 18))
            data[start : start + 3] = rng.getrandbits(24).to_bytes(3, "little")
        return bytes(data)
    candidates = [
        i
        for i in range(8, len(data) - 4)
        if (data[i] & 0x40 and data[i] < 0x80) or (data[i] == 0 and data[i + 1] == 0 and data[i + 2] < 8)
    ]
    position = rng.choice(candidates) if candidates else rng.randrange(8, len(data) - 4)
    value = rng.choice((0, 1, 0x7FFFFFFF, 0x40FFFFFF, 0xFFFFFFFF, rng.getrandbits(32), rng.getrandbits(12)))
    data[position : position + 4] = struct.pack(">I", value)
    return bytes(data)


def unknown_class(payload: bytes, rng: random.Random) -> bytes:
    """The top-level class name replaced (unknown, unsupported, or another histogram class)."""
    start = payload.find(b"TH")
    if start < 0:
        return payload
    end = payload.find(b"\0", start)
    replacement = rng.choice(_CLASS_NAMES)
    if rng.random() < 0.5:
        replacement = replacement[: end - start].ljust(end - start, b"X")  # same length: counts stay right
    return payload[:start] + replacement + payload[end:]


def deep_nesting(payload: bytes, rng: random.Random) -> bytes:
    return nested_collection(
        rng.choice((2, 10, 100, 1000, 5000)), encode_tmessage(_histogram("n", 1, False, 1))[8:]
    )


def random_bytes(payload: bytes, rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 33, 34, 200, 4000)))


PAYLOAD_MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    flip_bits,
    truncate,
    extend,
    lie_length_word,
    lie_sizes,
    unknown_class,
    deep_nesting,
    random_bytes,
)


def mutate_header(frame: bytes, rng: random.Random) -> bytes:
    """Short, oversized, zeroed or bit-flipped DataTopic headers, or a known one of another type."""
    choice = rng.randrange(6)
    if choice == 0:
        return truncate(frame, rng)
    if choice == 1:
        return frame + rng.randbytes(rng.choice((1, 80, 1000)))
    if choice == 2:
        return bytes(len(frame))
    if choice == 3:
        return flip_bits(frame, rng)
    if choice == 4:  # the ROOT data type marked as another serialization
        return header.pack_topic(header.ROOTTOBJ, header.ORIGIN_HLT, header.SERIALIZATION_NONE)
    return header.pack_topic(rng.choice((header.ROOTSTRI, header.INFO, header.CONFIG, b"ECSPARAM")))


def mutate_frames(frames: list[bytes], rng: random.Random) -> list[bytes]:
    """Wrong frame counts: a frame dropped, repeated, swapped or appended."""
    frames = list(frames)
    choice = rng.randrange(4)
    if choice == 0 and frames:
        del frames[rng.randrange(len(frames))]
    elif choice == 1 and frames:
        frames.insert(rng.randrange(len(frames) + 1), rng.choice(frames))
    elif choice == 2 and len(frames) > 1:
        i, j = rng.randrange(len(frames)), rng.randrange(len(frames))
        frames[i], frames[j] = frames[j], frames[i]
    else:
        frames.append(rng.randbytes(rng.choice((0, 80, 300))))
    return frames


def make_case(rng: random.Random) -> list[bytes]:
    """One fuzzed reply: a few seed objects (and maybe a schema block), some of them broken."""
    seeds = seed_payloads()
    objects = []
    for index in range(rng.randint(1, 4)):
        name, payload = rng.choice(seeds)
        for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
            payload = rng.choice(PAYLOAD_MUTATIONS)(payload, rng)
        objects.append((f"{index}_{name}", payload))
    schema = None
    if rng.random() < 0.2:
        schema = rng.choice(streamer_blocks())
        if rng.random() < 0.5:
            schema = rng.choice(PAYLOAD_MUTATIONS)(schema, rng)
        elif rng.random() < 0.3:
            schema = rng.choice(seeds)[1]  # a histogram where the schema belongs
    frames = build_reply(rng.choice(_INFOS), objects, schema)
    if rng.random() < 0.3:
        index = rng.randrange(0, len(frames), 2)
        frames[index] = mutate_header(frames[index], rng)
    if rng.random() < 0.2:
        frames = mutate_frames(frames, rng)
    return frames


# ---- checking one case --------------------------------------------------------------------------


class Hang(Exception):
    """A case took longer than the hang limit."""


def storable_problem(reply: Reply) -> str | None:
    """Why what `decode_reply` accepted could not (or must not) be stored, or None."""
    for histogram in reply.histograms:
        numbers = [histogram.values_flow, histogram.variances_flow, *histogram.edges]
        if not all(np.isfinite(array).all() for array in numbers) or not np.isfinite(histogram.entries):
            return f"{histogram.name!r}: non-finite numbers accepted"
        if not all((np.diff(edges) > 0).all() for edges in histogram.edges):
            return f"{histogram.name!r}: non-increasing edges accepted"
    if reply.histograms and 0 < reply.run <= MAX_RUN:
        names = {h.name: h for h in reply.histograms}  # the receiver keeps the first of each name
        meta = SnapshotMeta(reply.run, "FUZZ", datetime.now(UTC), "B", reply.beam_type)
        try:
            histograms_to_table("FUZZ_1_x", meta, list(names.values()))
        except Exception as error:
            return f"accepted objects the store cannot convert: {type(error).__name__}: {error}"
    return None


def check_case(frames: list[bytes], context: StreamerContext | None = None) -> Reply:
    """Decode one fuzzed reply; AssertionError if it accepted something unstorable (exceptions from
    `decode_reply` propagate: they are crashes)."""
    reply = decode_reply(frames, context or StreamerContext())
    problem = storable_problem(reply)
    assert problem is None, problem
    return reply


@dataclass
class Summary:
    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    bad_accepted: int = 0
    rejections: int = 0
    histograms: int = 0
    stored_snapshots: int = 0
    slowest_s: float = 0.0  # wall clock: includes waiting for the CPU on a loaded machine
    slowest_cpu_s: float = 0.0  # CPU time of this process: what the case itself cost
    total_s: float = 0.0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    failures: list[str] = field(default_factory=list)


def _fail(summary: Summary, message: str) -> None:
    summary.failures.append(message)
    print("FAIL", message, flush=True)  # at once: a long run may be stopped before its summary


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _alarm(_signum: int, _frame: object) -> None:
    raise Hang


def run(cases: int, seed: int, hang_s: float, store_every: int, report_every: int) -> Summary:
    """`cases` cases (fewer if SIGINT/SIGTERM stops the run: the summary covers those run)."""
    rng = random.Random(seed)
    summary = Summary(rss_start_mb=_rss_mb())
    context = StreamerContext()  # one per process, as in a receiver: schema blocks accumulate
    signal.signal(signal.SIGALRM, _alarm)
    interrupted = []
    last_stored = -store_every  # the first storable reply is written, then one every `store_every` cases
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: interrupted.append(True))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-store-") as store_dir:
        store = SnapshotStore(Path(store_dir))
        for number in range(cases):
            if interrupted:
                print(f"  stopped by a signal after {number} cases")
                break
            frames = make_case(rng)
            case_started = time.perf_counter()
            cpu_started = time.process_time()
            signal.setitimer(signal.ITIMER_REAL, hang_s)
            try:
                reply = check_case(frames, context)
            except Hang:
                summary.hangs += 1
                _fail(summary, f"case {number}: hang > {hang_s} s")
                continue
            except AssertionError as error:
                summary.bad_accepted += 1
                _fail(summary, f"case {number}: {error}")
                continue
            except Exception:
                summary.crashes += 1
                _fail(summary, f"case {number}: {traceback.format_exc(limit=3)}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            summary.slowest_s = max(summary.slowest_s, time.perf_counter() - case_started)
            summary.slowest_cpu_s = max(summary.slowest_cpu_s, time.process_time() - cpu_started)
            summary.cases += 1
            summary.rejections += len(reply.rejected)
            summary.histograms += len(reply.histograms)
            due = store_every and number - last_stored >= store_every
            if due and reply.histograms and 0 < reply.run <= MAX_RUN:
                last_stored = number
                # Now and then the real write: what was accepted must also be readable back.
                unique = list({h.name: h for h in reply.histograms}.values())
                meta = SnapshotMeta(reply.run, "FUZZ", datetime.now(UTC), "B")
                snapshot_id = store.write_snapshot(meta, unique)
                assert len(store.read_snapshot(snapshot_id)[1]) == len(unique)
                summary.stored_snapshots += 1
            summary.rss_peak_mb = max(summary.rss_peak_mb, _rss_mb())
            if report_every and (number + 1) % report_every == 0:
                print(
                    f"  {number + 1} cases, {time.perf_counter() - started:.0f} s, rss {_rss_mb():.0f} MB, "
                    f"slowest {summary.slowest_cpu_s * 1e3:.0f} ms CPU "
                    f"({summary.slowest_s * 1e3:.0f} ms wall), failures {len(summary.failures)}",
                    flush=True,
                )
    summary.total_s = time.perf_counter() - started
    return summary


class ByteStreamRandom(random.Random):
    """Random choices read from a fuzzer's input bytes, so that a small mutation of the input is a small
    change of the case (hashing the input into a seed would make every mutation an unrelated case)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(0)
        self._data = data
        self._position = 0

    def getrandbits(self, k: int) -> int:
        size = (k + 7) // 8
        chunk = self._data[self._position : self._position + size].ljust(size, b"\0")  # zeros once used up
        self._position += size
        return int.from_bytes(chunk, "little") & ((1 << k) - 1)

    def random(self) -> float:
        return self.getrandbits(53) / (1 << 53)


def _atheris_main() -> None:
    """Coverage-guided: atheris's input bytes are the random choices of one case."""
    import atheris  # optional: pip install atheris

    def one_input(data: bytes) -> None:
        check_case(make_case(ByteStreamRandom(data)))

    atheris.instrument_all()
    atheris.Setup([arg for arg in sys.argv if arg != "--atheris"], one_input)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    # Wall clock: generous, as a loaded machine can stall any case for seconds; a real hang never ends.
    parser.add_argument("--hang-s", type=float, default=30.0, help="a case slower than this is a hang")
    parser.add_argument("--store-every", type=int, default=500, help="write and re-read every Nth reply")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided run (atheris installed)")
    parser.add_argument("--log", action="store_true", help="print every rejection's log line (slow)")
    args = parser.parse_args(argv)
    if not args.log:
        # Every rejection is logged (with a traceback when unexpected): at 100,000 cases that is the
        # run's main cost. Rejections are still counted, in the summary.
        logging.disable(logging.CRITICAL)
    if args.atheris:
        _atheris_main()
        return 0
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    print(f"fuzz_wire: {args.cases} cases, seed {args.seed}")
    report_every = min(5000, max(1, args.cases // 10))
    summary = run(args.cases, args.seed, args.hang_s, args.store_every, report_every)
    print(
        f"cases {summary.cases}, crashes {summary.crashes}, hangs {summary.hangs}, "
        f"bad objects accepted {summary.bad_accepted}\n"
        f"rejections {summary.rejections}, histograms accepted {summary.histograms}, "
        f"snapshots written and re-read {summary.stored_snapshots}\n"
        f"time {summary.total_s:.0f} s ({summary.total_s / max(1, summary.cases) * 1e3:.2f} ms/case), "
        f"slowest case {summary.slowest_cpu_s * 1e3:.0f} ms CPU, {summary.slowest_s * 1e3:.0f} ms wall\n"
        f"memory: rss {summary.rss_start_mb:.0f} MB at start, peak {summary.rss_peak_mb:.0f} MB "
        f"(max rss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )
    failed = summary.crashes + summary.hangs + summary.bad_accepted
    print(
        "MET: zero crashes, hangs and bad objects accepted" if not failed else f"NOT MET: {failed} failures"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

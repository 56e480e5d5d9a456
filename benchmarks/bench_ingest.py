"""Decode and decode+store throughput for an EMC-like merger reply, next to the generic uproot baseline.

    python -m benchmarks.bench_ingest [--repeat N]

The reply is 250 TH2F (48x104, the FastOR/EdgePos maps) and 250 TH1D (100 bins), the shape of the
performance anchors. Three rows, all measured in the same run (figures are medians over the repeats):
- baseline: uproot's generic model decode (`read_object_any`, then `values()`/`variances()`);
- ours, decode only: `decode_histograms` per payload (the fast path, complete `Histogram` objects);
- ours, decode + store: `decode_reply` on the whole reply, then one Parquet snapshot.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import uproot.deserialization
from uproot.source.chunk import Chunk
from uproot.source.cursor import Cursor

from pipeline.histogram import Histogram
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.wire.fast_decode import decode_histogram, decode_histograms
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext, encode_tmessage

N_TH2, N_TH1 = 250, 250


def emc_like_histograms(seed: int = 1) -> list[Histogram]:
    rng = np.random.default_rng(seed)
    histograms = []
    for index in range(N_TH2):
        values = rng.poisson(20.0, size=(50, 106)).astype(float)
        histograms.append(
            Histogram(
                f"EMCTRQA_histAmpEdgePos_{index:03d}",
                "TH2F",
                "patch amplitude vs position",
                (np.arange(49.0), np.arange(105.0)),
                values,
                values.copy(),
                float(values.sum()),
                ("col", "row", ""),
            )
        )
    for index in range(N_TH1):
        values = rng.poisson(50.0, size=102).astype(float)
        histograms.append(
            Histogram(
                f"EMCTRQA_histFastOR_{index:03d}",
                "TH1D",
                "FastOR counts",
                (np.linspace(0, 100, 101),),
                values,
                values.copy(),
                float(values.sum()),
            )
        )
    return histograms


def generic_uproot_decode(payloads: list[bytes]) -> int:
    """The baseline: uproot's generic model decode, then values() and variances()."""
    context = StreamerContext()
    for payload in payloads:
        chunk = Chunk.wrap(None, np.frombuffer(payload, np.uint8))
        model = uproot.deserialization.read_object_any(chunk, Cursor(8, origin=0), {}, context, context, None)
        model.values(flow=True)
        model.variances(flow=True)
    return len(payloads)


def ours_decode(payloads: list[bytes]) -> int:
    """What a receiver does per ROOTTOBJ block, up to complete Histogram objects."""
    context = StreamerContext()
    return sum(len(decode_histograms(payload, context)) for payload in payloads)


def ours_decode_and_store(frames: list[bytes], store: SnapshotStore, snapshot_index: int) -> int:
    reply = decode_reply(frames, StreamerContext())
    assert not reply.errors, reply.errors[:3]
    meta = SnapshotMeta(
        run=reply.run,
        subsystem="EMC",
        snapshot_time_utc=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=snapshot_index),
        hlt_mode=reply.hlt_mode,
        beam_type=reply.beam_type,
    )
    store.write_snapshot(meta, reply.histograms)
    return len(reply.histograms)


def timed(function, *args) -> tuple[float, int]:
    started = time.perf_counter()
    count = function(*args)
    return time.perf_counter() - started, count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    histograms = emc_like_histograms()
    payloads = [encode_tmessage(h) for h in histograms]
    frames = build_reply(
        "run=300000;HLT_MODE=B;BEAM_TYPE=pp", [(h.name, p) for h, p in zip(histograms, payloads, strict=True)]
    )
    reply_mb = sum(len(f) for f in frames) / 1e6
    print(f"reply: {N_TH2} TH2F 48x104 + {N_TH1} TH1D 100 bins, {reply_mb:.1f} MB, {len(frames)} frames")
    # A benchmark of the fast path that silently measured the fallback would be worse than none.
    fallbacks = sum(decode_histogram(payload) is None for payload in payloads)
    assert fallbacks == 0, f"{fallbacks} payloads would fall back to the generic path"

    rows = {
        "baseline: generic uproot decode": [],
        "ours: decode only (fast path)": [],
        "ours: decode + store (Parquet)": [],
    }
    with tempfile.TemporaryDirectory() as data_dir:
        store = SnapshotStore(Path(data_dir))
        for index in range(args.repeat):
            baseline, decode_only, decode_store = rows.values()
            baseline.append(timed(generic_uproot_decode, payloads)[0])
            decode_only.append(timed(ours_decode, payloads)[0])
            decode_store.append(timed(ours_decode_and_store, frames, store, index)[0])
    n = len(histograms)
    medians = {label: statistics.median(seconds) for label, seconds in rows.items()}
    baseline_s = medians["baseline: generic uproot decode"]
    print(f"{'path':<36}{'median ms':>10}{'hist/s':>10}{'vs baseline':>13}")
    for label, seconds in medians.items():
        print(f"{label:<36}{seconds * 1e3:>10.1f}{n / seconds:>10,.0f}{baseline_s / seconds:>12.1f}x")
    print("anchors (not measured here): ROOT 6.40 C++ 144,673 hist/s; target >= 10,000 hist/s on one core")


if __name__ == "__main__":
    main()

"""Decode and decode+store throughput for merger replies, next to the generic uproot baseline.

    python -m benchmarks.bench_ingest [--repeat N] [--cpu N | --all-cpus]

Everything is measured in one process pinned to one CPU (`os.sched_setaffinity`; `--all-cpus` lifts
that), which is how the targets are stated (issue 10), on one core: >= 20,000 histograms/s decoded and
stored, on the EMC-like reply and on the weighted one; >= 100,000 histograms/s decoded alone.
Figures are medians over the repeats, wall-clock; the CPU time the process used is printed beside
them, so a core shared with other work shows as wall > CPU.

Replies, each measured against a baseline in the same run:
- EMC-like (the target): 250 TH2F (48x104, the FastOR/EdgePos maps) and 250 TH1D (100 bins), filled
  without weights, so ROOT sends no fSumw2 (the shape of the performance anchors);
- the same with weighted fills: fSumw2 sent, so variances differ from contents and are stored too;
- Run-2: 500 copies of the ROOT 6.08 TH1F v2 / TH1 v7 fixture object (renamed), decoded with that
  file's streamers, as a receiver does once the merger sent its schema.

Rows: the baseline (uproot's generic model decode: `read_object_any`, then `values()`/`variances()`),
ours decode only (`decode_histograms` per payload), ours decode + store (`decode_reply` on the whole
reply, then one Parquet snapshot, fsync included), followed by the size of that snapshot's file (the
storage per snapshot, which must not grow).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import uproot
import uproot.deserialization
from uproot.source.chunk import Chunk
from uproot.source.cursor import Cursor

from pipeline import atomic_files
from pipeline.histogram import Histogram
from pipeline.store import SnapshotMeta, SnapshotStore, parquet_bytes
from pipeline.store_schema import histograms_to_table
from pipeline.wire.fast_decode import decode_histogram, decode_histograms
from pipeline.wire.messages import build_reply, decode_reply
from pipeline.wire.tmessage import StreamerContext, encode_tmessage, tmessage_from_root_key

N_TH2, N_TH1 = 250, 250
N_RUN2 = 500
TARGET_STORED_PER_S = 20_000
TARGET_DECODED_PER_S = 100_000
INFO = "run=300000;HLT_MODE=B;BEAM_TYPE=pp"
FIXTURES_DIR = Path(
    os.environ.get("OVERWATCH_FIXTURES", Path(__file__).resolve().parents[1] / "tests" / "fixtures")
)
RUN2_FILE = "run2_root608_th1f.root"


def emc_like_histograms(seed: int = 1, weighted: bool = False) -> list[Histogram]:
    """250 TH2F 48x104 and 250 TH1D 100 bins of Poisson counts; `weighted`: every fill has weight 1.5,
    so the variances (sum of squared weights) differ from the contents."""
    rng = np.random.default_rng(seed)
    weight = 1.5 if weighted else 1.0
    histograms = []
    for index in range(N_TH2):
        counts = rng.poisson(20.0, size=(50, 106)).astype(float)
        histograms.append(
            Histogram(
                f"EMCTRQA_histAmpEdgePos_{index:03d}",
                "TH2F",
                "patch amplitude vs position",
                (np.arange(49.0), np.arange(105.0)),
                counts * weight,
                counts * weight**2,
                float(counts.sum()),
                ("col", "row", ""),
            )
        )
    for index in range(N_TH1):
        counts = rng.poisson(50.0, size=102).astype(float)
        histograms.append(
            Histogram(
                f"EMCTRQA_histFastOR_{index:03d}",
                "TH1D",
                "FastOR counts",
                (np.linspace(0, 100, 101),),
                counts * weight,
                counts * weight**2,
                float(counts.sum()),
            )
        )
    return histograms


class Reply:
    """One merger reply to measure: its frames, its payloads and the schema a receiver would hold."""

    def __init__(
        self, label: str, subsystem: str, payloads: list[tuple[str, bytes]], context: StreamerContext
    ) -> None:
        self.label = label
        self.subsystem = subsystem  # where its snapshots go
        self.payloads = [payload for _, payload in payloads]
        self.frames = build_reply(INFO, payloads)
        self.context = context
        # A benchmark of the fast path that silently measured the fallback would be worse than none.
        fallbacks = sum(decode_histogram(payload, context) is None for payload in self.payloads)
        assert fallbacks == 0, f"{label}: {fallbacks} payloads would fall back to the generic path"


def emc_reply(weighted: bool) -> Reply:
    histograms = emc_like_histograms(weighted=weighted)
    label, subsystem = (
        ("EMC-like, weighted fills (fSumw2 sent)", "EMCW") if weighted else ("EMC-like (target)", "EMC")
    )
    return Reply(label, subsystem, [(h.name, encode_tmessage(h)) for h in histograms], StreamerContext())


def run2_reply() -> Reply | None:
    path = FIXTURES_DIR / RUN2_FILE
    if not path.is_file():
        print(f"Run-2 reply skipped: {path} not found (set OVERWATCH_FIXTURES)")
        return None
    context = StreamerContext()
    context.add_streamers_from_root_file(path)
    with uproot.open(path) as root_file:
        key = root_file.key("test")
        payloads = [
            (f"run2_{i:03d}", tmessage_from_root_key(key, name=f"run2_{i:03d}")) for i in range(N_RUN2)
        ]
    return Reply(f"Run-2: {N_RUN2} TH1F v2 / TH1 v7 (ROOT 6.08 bytes)", "RUN2", payloads, context)


def generic_uproot_decode(reply: Reply) -> int:
    """The baseline: uproot's generic model decode, then values() and variances()."""
    for payload in reply.payloads:
        chunk = Chunk.wrap(None, np.frombuffer(payload, np.uint8))
        model = uproot.deserialization.read_object_any(
            chunk, Cursor(8, origin=0), {}, reply.context, reply.context, None
        )
        model.values(flow=True)
        model.variances(flow=True)
    return len(reply.payloads)


def ours_decode(reply: Reply) -> int:
    """What a receiver does per ROOTTOBJ block, up to complete Histogram objects."""
    return sum(len(decode_histograms(payload, reply.context)) for payload in reply.payloads)


class DecodeAndStore:
    """`decode_reply` on the whole reply, then one snapshot (a new minute each call)."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self.calls = 0
        self.snapshot_ids: list[str] = []

    def __call__(self, reply: Reply) -> int:
        decoded = decode_reply(reply.frames, reply.context)
        assert not decoded.rejected, decoded.rejected[:3]
        meta = SnapshotMeta(
            run=decoded.run,
            subsystem=reply.subsystem,
            snapshot_time_utc=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=self.calls),
            hlt_mode=decoded.hlt_mode,
            beam_type=decoded.beam_type,
        )
        self.calls += 1
        self.snapshot_ids.append(self.store.write_snapshot(meta, decoded.histograms))
        return len(decoded.histograms)

    def stored_bytes(self) -> int:
        """Size of the last snapshot file written (storage per snapshot)."""
        [path] = self.store.data_dir.glob(f"*/subsystem=*/run=*/{self.snapshot_ids[-1]}.parquet")
        return path.stat().st_size


class Row:
    def __init__(self, label: str, function: Callable[[Reply], int]) -> None:
        self.label = label
        self.function = function
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.count = 0

    def measure(self, reply: Reply) -> None:
        cpu_started = time.process_time()
        started = time.perf_counter()
        self.count = self.function(reply)
        self.wall.append(time.perf_counter() - started)
        self.cpu.append(time.process_time() - cpu_started)

    def rate(self) -> float:
        return self.count / statistics.median(self.wall)


def measure(reply: Reply, store: SnapshotStore, repeat: int) -> list[Row]:
    rows = [
        Row("baseline: generic uproot decode", generic_uproot_decode),
        Row("ours: decode only (fast path)", ours_decode),
        Row("ours: decode + store (Parquet)", DecodeAndStore(store)),
    ]
    for row in rows:
        row.measure(reply)  # warm-up: caches, imports, the first file of a run folder
        row.wall.clear()
        row.cpu.clear()
    for _ in range(repeat):
        for row in rows:  # interleaved, so a burst of load elsewhere hits every row alike
            row.measure(reply)
    return rows


def breakdown(reply: Reply, store: SnapshotStore, repeat: int) -> dict[str, float]:
    """Median CPU ms of each step of decode + store, measured apart (the rows above time them together):
    decoding the reply, building the Arrow table, encoding the Parquet file in memory, writing those
    bytes as a file the way the store does (fsynced, its folder synced), and the whole `write_snapshot`
    (all of these again)."""
    steps: dict[str, list[float]] = {}

    def timed(step: str, call: Callable[..., object], *args: object) -> object:
        started = time.process_time()
        result = call(*args)
        steps.setdefault(step, []).append(time.process_time() - started)
        return result

    for index in range(repeat + 1):
        decoded = timed("decode", decode_reply, reply.frames, reply.context)
        meta = SnapshotMeta(
            run=decoded.run,
            subsystem=f"{reply.subsystem}STEPS",
            snapshot_time_utc=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index),
        )
        table = timed("table", histograms_to_table, "breakdown", meta, decoded.histograms)
        encoded = timed("parquet", parquet_bytes, table)
        path = store.data_dir / f"steps_{index}.parquet"
        timed("file", partial(atomic_files.write_file, path, memoryview(encoded), replace=False))
        path.unlink()
        timed("store", store.write_snapshot, meta, decoded.histograms)
    return {step: statistics.median(times[1:]) * 1e3 for step, times in steps.items()}  # 1st: warm-up


def report(reply: Reply, rows: list[Row]) -> None:
    print(f"\n{reply.label}: {len(reply.payloads)} objects, {sum(map(len, reply.frames)) / 1e6:.1f} MB")
    print(f"  {'path':<34}{'wall ms':>9}{'hist/s':>10}{'vs baseline':>13}{'cpu ms':>9}")
    baseline = statistics.median(rows[0].wall)
    for row in rows:
        wall = statistics.median(row.wall)
        cpu = statistics.median(row.cpu)
        ratio = baseline / wall
        print(f"  {row.label:<34}{wall * 1e3:>9.1f}{row.rate():>10,.0f}{ratio:>12.1f}x{cpu * 1e3:>9.1f}")
    stored = rows[2].function
    if isinstance(stored, DecodeAndStore):
        print(f"  stored: {stored.stored_bytes() / 1e3:,.1f} kB per snapshot")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    cpus = parser.add_mutually_exclusive_group()
    cpus.add_argument("--cpu", type=int, help="the CPU to pin to (default: the first one allowed)")
    cpus.add_argument("--all-cpus", action="store_true", help="do not pin (every CPU allowed)")
    args = parser.parse_args(argv)

    allowed = sorted(os.sched_getaffinity(0))
    if args.all_cpus:
        where = f"{len(allowed)} CPUs (not pinned)"
    else:
        cpu = allowed[0] if args.cpu is None else args.cpu
        os.sched_setaffinity(0, {cpu})
        where = f"one core (pinned to CPU {cpu})"
    print(f"measured on {where}; load average before: {os.getloadavg()[0]:.2f}; {args.repeat} repeats")

    replies = [emc_reply(weighted=False), emc_reply(weighted=True), run2_reply()]
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        store = SnapshotStore(Path(data_dir))
        for reply in replies:
            if reply is not None:
                rows = measure(reply, store, args.repeat)
                report(reply, rows)
                results.append(rows)
                steps = breakdown(reply, store, args.repeat)
                print(
                    f"  steps apart, CPU ms: decode {steps['decode']:.1f}; store {steps['store']:.1f}, "
                    f"of which the Arrow table {steps['table']:.1f}, the Parquet encoding "
                    f"{steps['parquet']:.1f}, the file and its fsync {steps['file']:.1f}"
                )

    where_short = "one core" if not args.all_cpus else "all CPUs"
    targets = [
        ("decode + store, EMC-like reply", results[0][2], TARGET_STORED_PER_S),
        ("decode + store, weighted reply", results[1][2], TARGET_STORED_PER_S),
        ("decode only, EMC-like reply", results[0][1], TARGET_DECODED_PER_S),
    ]
    print()
    for label, row, target in targets:
        rate = row.rate()
        cpu_rate = row.count / statistics.median(row.cpu)
        verdict = "MET" if rate >= target else "NOT MET"
        print(
            f"target >= {target:,} hist/s {label}, {where_short}: {verdict} "
            f"({rate:,.0f} hist/s wall-clock; {cpu_rate:,.0f} hist/s of CPU time)"
        )
        if cpu_rate > 1.2 * rate:
            print("  note: wall-clock well above CPU time: other processes shared this core during the run")
    print("anchors (not measured here): ROOT 6.40 C++ TMessage::ReadObject 144,673 hist/s; O2 QC 500 hist/s")


if __name__ == "__main__":
    main()

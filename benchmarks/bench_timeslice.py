"""Time-slice latency over a long run, cold and cached, next to a naive baseline measured in the same run.

    .venv/bin/python -m benchmarks.bench_timeslice [--quick] [--snapshots 600] [--windows 60] [--data-dir DIR]

The run is 10 hours with a snapshot a minute (600 snapshots) of 501 EMC-like histograms (250 TH2 48x104,
250 TH1 100 bins, and the events histogram), cumulative like the HLT mergers; it is written by two
processes, into a temporary folder unless `--data-dir` names one to keep and reuse.

Rows (each window a random minute range; windows starting at 0 and the whole run included):
- baseline: both snapshots' histograms loaded one by one and subtracted, as the original did file by file;
- whole slice: every histogram of the window combined (read both snapshots, subtract 501);
- cold view + page: a new view (options never asked before, so no cache can answer) and one page of it
  (20 histograms: combined, scaled and checked);
- cached: the same request again (memory cache), and from a new service (disk cache, as after a restart);
- reset mode: a cold view + page summing the 61 snapshots of an hour, with the peak memory it took (the
  run is cumulative, so the sums mean nothing; what they cost is what is measured);
- planning: `service.plan` alone, the overhead every request pays, cached or not.
"Cold" means cold everywhere: no cold measurement uses a snapshot another window read (each draws its
snapshots from a pool without replacement), and the run's files are dropped from the OS page cache
(posix_fadvise DONTNEED) before every cold measurement.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.bench_ingest import emc_like_histograms
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import MergerMode, Window, load_slice
from pipeline.store import SNAPSHOTS_AREA, SnapshotMeta, SnapshotStore

RUN = 400000
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
N_HISTOGRAMS = 501
PAGE_HISTOGRAMS = 20  # one screenful; the original's docs advise fewer than 6 per group
RESET_SNAPSHOTS = 61  # an hour of minutes, both ends included
COLD_P95_TARGET_MS = 100.0
CACHED_P95_TARGET_MS = 5.0
INCREMENT_SETS = 8  # distinct Poisson increments, cycled: generating one per snapshot would dominate writing
WRITERS = 2


def events_histogram(count: float) -> Histogram:
    values = np.array([0.0, count, 0.0])
    return Histogram(
        "EMCTRQA_histEvents", "TH1D", "events", (np.array([0.0, 1.0]),), values, values.copy(), count
    )


def write_part(data_dir: Path, n_snapshots: int, writer: int, writers: int, seed: int) -> None:
    """Snapshots `writer`, `writer + writers`, ... of the run. Each is the previous plus a Poisson
    increment; every writer adds all of them, so the contents do not depend on who wrote what."""
    store = SnapshotStore(data_dir)
    rng = np.random.default_rng(seed)
    totals = emc_like_histograms(seed)
    increments = [
        [rng.poisson(2.0, size=h.values_flow.shape).astype(float) for h in totals]
        for _ in range(INCREMENT_SETS)
    ]
    events = np.cumsum(np.random.default_rng(seed + 1).poisson(1000, size=n_snapshots)).astype(float)
    jitter_s = np.random.default_rng(seed + 2).uniform(0.0, 5.0, size=n_snapshots)
    for index in range(n_snapshots):
        increment = increments[index % INCREMENT_SETS]
        totals = [
            replace(h, values_flow=h.values_flow + step, variances_flow=h.variances_flow + step)
            for h, step in zip(totals, increment, strict=True)
        ]
        if index % writers != writer:
            continue
        when = START + timedelta(minutes=index, seconds=float(jitter_s[index]))
        store.write_snapshot(
            SnapshotMeta(RUN, "EMC", when, "B", "pp"), [*totals, events_histogram(events[index])]
        )


def write_run(data_dir: Path, n_snapshots: int, seed: int = 3) -> None:
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=WRITERS) as pool:
        jobs = [pool.submit(write_part, data_dir, n_snapshots, w, WRITERS, seed) for w in range(WRITERS)]
        for job in jobs:
            job.result()
    print(f"  wrote {n_snapshots} snapshots in {time.perf_counter() - started:.0f} s", flush=True)


class WindowPool:
    """Random windows that never share a snapshot: each draws its snapshots without replacement.

    Window [p, q] uses snapshots p (subtracted) and q: a snapshot a minute, so minute i is snapshot i,
    and each edge of a window takes the snapshot nearest to it. [0, q] uses q alone; the whole run uses
    the last snapshot, which is kept out of the pool.
    """

    def __init__(self, n_snapshots: int, rng: random.Random) -> None:
        self.n_snapshots = n_snapshots
        self.rng = rng
        # Hour-long blocks for reset mode first, from the middle of the run, then the rest shuffled.
        self.blocks: list[range] = []
        self.free = list(range(n_snapshots - 1))
        rng.shuffle(self.free)

    def reserve_blocks(self, count: int) -> None:
        middle = self.n_snapshots // 2 - count * RESET_SNAPSHOTS // 2
        for index in range(count):
            block = range(middle + index * RESET_SNAPSHOTS, middle + (index + 1) * RESET_SNAPSHOTS)
            self.blocks.append(block)
            taken = set(block) | {block.start - 1}
            self.free = [s for s in self.free if s not in taken]

    def window(self) -> Window:
        earlier, later = sorted((self.free.pop(), self.free.pop()))
        # Not [p + 1, q]: its edge p + 1 takes snapshot p + 1, which another window may hold (not cold),
        # and [q, q] (adjacent snapshots) holds no snapshot at all.
        return Window(earlier, later)

    def from_start(self) -> Window:
        return Window(0, self.free.pop())

    def mixed(self, count: int, whole_run: bool) -> list[Window | None]:
        """`count` windows: some from the start of run, the whole run once if asked, the rest anywhere."""
        from_start = max(1, count // 10)
        windows: list[Window | None] = [self.from_start() for _ in range(from_start)]
        if whole_run:
            windows.append(None)
        windows += [self.window() for _ in range(count - len(windows))]
        self.rng.shuffle(windows)
        return windows

    def reset_window(self) -> Window:
        block = self.blocks.pop()
        return Window(block.start, block.stop - 1)


def drop_from_os_cache(data_dir: Path) -> None:
    """Forget the run's files in the OS page cache, so the next read comes from the disk."""
    folder = data_dir / SNAPSHOTS_AREA / "subsystem=EMC" / f"run={RUN}"
    for entry in os.scandir(folder):
        descriptor = os.open(entry.path, os.O_RDONLY)
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def naive_slice(store: SnapshotStore, earlier_id: str | None, later_id: str) -> int:
    names = store.histogram_names(later_id)
    for name in names:
        later = store.read_histogram(later_id, name)
        _ = later - store.read_histogram(earlier_id, name) if earlier_id else later
    return len(names)


def page(view) -> int:
    """What a shift-crew page shows: the first group's first histograms, processed (scaled, checked)."""
    _, names = view.groups[0]
    for name in names[:PAGE_HISTOGRAMS]:
        view.histogram(name)
    return min(len(names), PAGE_HISTOGRAMS)


def peak_rss_reset() -> bool:
    """Reset the process's peak resident size (Linux), so VmHWM then measures one step."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def memory_kb(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class Row:
    label: str
    seconds: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.seconds, 95)) * 1000


class Bench:
    def __init__(self, data_dir: Path, cache_dir: Path) -> None:
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.requests = 0

    def service(self) -> ProcessingService:
        """A new service over a new store object: no in-process cache from earlier rows."""
        return ProcessingService(SnapshotStore(self.data_dir), self.cache_dir, ("EMC",))

    def options(self) -> ProcessingOptions:
        # A threshold never asked before: no cache, memory or disk, can answer the request.
        self.requests += 1
        return ProcessingOptions(hot_channel_threshold=1.0 + self.requests)

    def cold(self, measure) -> float:
        drop_from_os_cache(self.data_dir)
        started = time.perf_counter()
        measure()
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="240 snapshots, fewer windows (~1 minute)")
    parser.add_argument("--snapshots", type=int, default=None)
    parser.add_argument("--windows", type=int, default=None, help="windows for the cold and cached rows")
    parser.add_argument("--baseline-windows", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the written run here and reuse it")
    args = parser.parse_args(argv)
    n_snapshots = args.snapshots or (240 if args.quick else 600)
    n_windows = args.windows or (20 if args.quick else 60)
    n_baseline = args.baseline_windows or (2 if args.quick else 3)
    n_reset = 2 if args.quick else 3

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        if SnapshotStore(data_dir).count_snapshots("EMC") < n_snapshots:
            print(
                f"writing a {n_snapshots}-minute run, {N_HISTOGRAMS} histograms a snapshot, to {data_dir} ..."
            )
            write_run(data_dir, n_snapshots)
        bench = Bench(data_dir, Path(scratch) / "cache")
        pool = WindowPool(n_snapshots, random.Random(11))
        pool.reserve_blocks(n_reset)
        rows: dict[str, Row] = {}

        service = bench.service()
        baseline = []
        for window in [pool.from_start()] + [pool.window() for _ in range(n_baseline - 1)]:
            _, plan = service.plan(RUN, "EMC", window)
            baseline.append(
                bench.cold(
                    lambda plan=plan: naive_slice(
                        service.store, plan.earlier_snapshot_id, plan.later_snapshot_id
                    )
                )
            )
        rows["baseline"] = Row("baseline: naive, histogram by histogram (cold)", baseline)

        service = bench.service()
        slices = []
        for window in pool.mixed(n_windows // 2, whole_run=False):
            _, plan = service.plan(RUN, "EMC", window)

            def whole_slice(plan=plan) -> None:
                combined = load_slice(service.store, plan, executor=service._readers).materialized()
                assert len(combined) == N_HISTOGRAMS, len(combined)

            slices.append(bench.cold(whole_slice))
        rows["slice"] = Row(f"ours cold: whole slice (combine all {N_HISTOGRAMS})", slices)

        service = bench.service()
        requests = [(window, bench.options()) for window in pool.mixed(n_windows, whole_run=True)]
        cold, cached, planning = [], [], []
        shown = 0
        for window, options in requests:
            cold.append(bench.cold(lambda w=window, o=options: page(service.view(RUN, "EMC", w, o))))
            started = time.perf_counter()
            shown = page(service.view(RUN, "EMC", window, options))
            cached.append(time.perf_counter() - started)
            started = time.perf_counter()
            service.plan(RUN, "EMC", window)
            planning.append(time.perf_counter() - started)
        rows["cold"] = Row(f"ours cold: view + one page ({shown} hists)", cold)
        rows["cached"] = Row("ours cached (memory): same view + page", cached)
        rows["plan"] = Row("  of which planning (service.plan)", planning)

        reopened = []
        service.flush()
        fresh = bench.service()
        for window, options in requests:
            started = time.perf_counter()
            page(fresh.view(RUN, "EMC", window, options))
            reopened.append(time.perf_counter() - started)
        assert fresh.computed == 0
        rows["disk"] = Row("ours cached (disk, new process): view + page", reopened)

        service = bench.service()
        reset, peaks_mb = [], []
        for _ in range(n_reset):
            window, options = pool.reset_window(), bench.options()
            measured_peak = peak_rss_reset()
            before_kb = memory_kb("VmRSS")
            reset.append(
                bench.cold(lambda w=window, o=options: page(service.view(RUN, "EMC", w, o, MergerMode.RESET)))
            )
            if measured_peak:
                peaks_mb.append((memory_kb("VmHWM") - before_kb) / 1024)
        rows["reset"] = Row(f"ours cold, reset mode: sum of {RESET_SNAPSHOTS} snapshots, view + page", reset)

    print(f"\n{n_snapshots} snapshots x {N_HISTOGRAMS} histograms, one a minute")
    print(f"{'':<60}{'n':>5}{'median ms':>12}{'p95 ms':>12}")
    for row in rows.values():
        print(f"{row.label:<60}{len(row.seconds):>5}{row.median_ms:>12.2f}{row.p95_ms:>12.2f}")
    if peaks_mb:
        print(f"reset mode peak memory above the resident size before: max {max(peaks_mb):.0f} MB")
    base = rows["baseline"].median_ms
    ratios = {key: base / rows[key].median_ms for key in ("slice", "cold", "cached")}
    print(
        f"\nspeed-up vs baseline (medians): whole slice {ratios['slice']:.0f}x, "
        f"cold view + page {ratios['cold']:.0f}x, cached {ratios['cached']:.0f}x"
    )
    for label, row, target in (
        ("p95 cold view + page", rows["cold"], COLD_P95_TARGET_MS),
        ("p95 cached view + page", rows["cached"], CACHED_P95_TARGET_MS),
    ):
        verdict = "MET" if row.p95_ms < target else "NOT MET"
        print(f"target {label} < {target:g} ms: {row.p95_ms:.2f} ms -> {verdict}")


if __name__ == "__main__":
    main()

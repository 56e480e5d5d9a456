"""Time-slice latency over a long run, cold and cached, next to a naive baseline measured in the same run.

    python -m benchmarks.bench_timeslice [--snapshots 600] [--windows 40] [--data-dir DIR]

The run is 10 hours with a snapshot a minute (600 snapshots) of 500 EMC-like histograms (250 TH2 48x104,
250 TH1 100 bins, plus the events histogram), cumulative like the HLT mergers. Each window is a random
minute range. Rows: the whole slice (both snapshots read, all 501 histograms subtracted); a cold page (a
view with new options, so nothing is cached, plus its first 20 histograms processed: scaled and checked); the
same page again (memory cache) and from a new service (disk cache, as after a restart). The naive
baseline loads both snapshots' histograms one by one and subtracts them, as the original did file by
file.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.bench_ingest import emc_like_histograms
from pipeline.histogram import Histogram
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window, load_slice
from pipeline.store import SnapshotMeta, SnapshotStore

RUN = 400000
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def events_histogram(count: float) -> Histogram:
    values = np.array([0.0, count, 0.0])
    return Histogram(
        "EMCTRQA_histEvents", "TH1D", "events", (np.array([0.0, 1.0]),), values, values.copy(), count
    )


def write_run(store: SnapshotStore, n_snapshots: int, seed: int = 3) -> None:
    """Cumulative snapshots: each one is the previous plus a Poisson increment."""
    rng = np.random.default_rng(seed)
    totals = emc_like_histograms(seed)
    events = 0.0
    started = time.perf_counter()
    for index in range(n_snapshots):
        grown = []
        for histogram in totals:
            increment = rng.poisson(2.0, size=histogram.values_flow.shape)
            grown.append(
                replace(
                    histogram,
                    values_flow=histogram.values_flow + increment,
                    variances_flow=histogram.variances_flow + increment,
                )
            )
        totals = grown
        events += float(rng.poisson(1000))
        meta = SnapshotMeta(
            RUN, "EMC", START + timedelta(minutes=index, seconds=rng.uniform(0, 5)), "B", "pp"
        )
        store.write_snapshot(meta, [*totals, events_histogram(events)])
        if index % 100 == 99:
            print(f"  wrote {index + 1} snapshots ({time.perf_counter() - started:.0f} s)", flush=True)


def random_windows(count: int, length: int, rng: random.Random) -> list[Window]:
    windows = []
    for _ in range(count):
        low = rng.randint(1, length - 2)
        windows.append(Window(low, rng.randint(low, length - 1)))
    return windows


def naive_slice(store: SnapshotStore, earlier_id: str, later_id: str) -> int:
    names = store.histogram_names(later_id)
    for name in names:
        _ = store.read_histogram(later_id, name) - store.read_histogram(earlier_id, name)
    return len(names)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def report(label: str, seconds: list[float]) -> tuple[float, float]:
    median, p95 = statistics.median(seconds) * 1000, percentile(seconds, 95) * 1000
    print(f"{label:<52}{len(seconds):>6}{median:>12.2f}{p95:>12.2f}")
    return median, p95


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshots", type=int, default=600)
    parser.add_argument("--windows", type=int, default=40)
    parser.add_argument("--baseline-windows", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse a run written before (kept)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        store = SnapshotStore(data_dir)
        if store.count_snapshots("EMC") < args.snapshots:
            print(f"writing a {args.snapshots}-minute run of 501 histograms per snapshot to {data_dir} ...")
            write_run(store, args.snapshots)
        service = ProcessingService(SnapshotStore(data_dir), Path(scratch) / "cache", ("EMC",))
        rng = random.Random(11)
        windows = random_windows(args.windows, args.snapshots, rng)

        slices, pages, cached, reopened = [], [], [], []
        for index, window in enumerate(windows):
            _, plan = service.plan(RUN, "EMC", window)
            started = time.perf_counter()
            combined = load_slice(service.store, plan, executor=service._readers).materialized()
            slices.append(time.perf_counter() - started)
            assert len(combined) == 501, len(combined)

            # A distinct threshold per request: the page path can never be served from a cache.
            options = ProcessingOptions(hot_channel_threshold=1.0 + index)
            started = time.perf_counter()
            shown = page(service.view(RUN, "EMC", window, options))
            pages.append(time.perf_counter() - started)
            started = time.perf_counter()
            page(service.view(RUN, "EMC", window, options))
            cached.append(time.perf_counter() - started)
            # Another process (or a restart) asking for the same view: served from the disk cache.
            fresh = ProcessingService(SnapshotStore(data_dir), Path(scratch) / "cache", ("EMC",))
            started = time.perf_counter()
            page(fresh.view(RUN, "EMC", window, options))
            reopened.append(time.perf_counter() - started)
        assert fresh.computed == 0

        baseline = []
        for window in windows[: args.baseline_windows]:
            _, plan = service.plan(RUN, "EMC", window)
            started = time.perf_counter()
            naive_slice(service.store, plan.earlier_snapshot_id, plan.later_snapshot_id)
            baseline.append(time.perf_counter() - started)

    print(f"\n{'time slice of 500 histograms':<52}{'n':>6}{'median ms':>12}{'p95 ms':>12}")
    base_median, _ = report("baseline: naive, histogram by histogram", baseline)
    slice_median, slice_p95 = report("ours cold: whole slice (read both, subtract 501)", slices)
    _, page_p95 = report(f"ours cold: view + one page ({shown} hists) processed", pages)
    cached_median, cached_p95 = report("ours cached (memory): same view + page", cached)
    report("ours cached (disk, new process): view + page", reopened)
    print(
        f"\nspeed-up vs baseline: whole slice {base_median / slice_median:.0f}x, "
        f"cached {base_median / cached_median:.0f}x"
    )
    print(
        f"targets: p95 cold < 100 ms -> slice {slice_p95:.1f} ms, page {page_p95:.1f} ms; "
        f"p95 cached < 5 ms -> {cached_p95:.2f} ms"
    )


PAGE_HISTOGRAMS = 20  # one screenful; the original's docs advise fewer than 6 per group


def page(view) -> int:
    """What a shift-crew page shows: the first group's first histograms, processed (scaled, checked)."""
    _, names = view.groups[0]
    for name in names[:PAGE_HISTOGRAMS]:
        view.histogram(name)
    return min(len(names), PAGE_HISTOGRAMS)


if __name__ == "__main__":
    main()

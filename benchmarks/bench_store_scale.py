"""The runs page and the run page under a grown store: 1,000 runs and 100,000 snapshot files.

    .venv/bin/python -m benchmarks.bench_store_scale [--quick] [--runs 1000] [--snapshots 100000]
        [--repeat 5] [--data-dir DIR]

Every run has EMC, TPC and HLT snapshots (a snapshot a minute each), `--snapshots` files in all. The same
calls are measured on a 10-run store of the same density in the same run, as the baseline:
- run list: `service.runs()` (what the runs page and the run page header list), first call on a new
  service (cold) and again (cached);
- runs page: `dashboard.pages.runs.layout` for page 1 and a middle page (the run list, each run's quality
  and the table of 50 runs), on a service that has listed once;
- run page, cold: a new service, then `dashboard.pages.run.layout`, which draws the first histogram's
  view with the page, for a run in the middle of the store and for the newest run;
- time slice, cold: `render_view` of a window never asked before, on a warm service (bench_timeslice's
  target);
- system status: `service.system_status()` (what /system, GET /status and the control room ask), first
  call and again.
"Cold" means a new SnapshotStore and ProcessingService (empty disk cache) with the store's module-level
folder listings forgotten: what a freshly started worker pays. The kernel's directory cache stays warm
(dropping it would need root and disturb everyone else on the machine).

Writing 100,000 files with pyarrow takes ~12 ms each on a loaded machine (20 minutes), so the store is
made from one template file per subsystem written by the store's own code (`histograms_to_table`, the
store's Parquet options except that the small columns are left uncompressed), with each snapshot's id,
time and run patched into its bytes. Before any file is written, a patched template is checked to be
byte for byte what pyarrow writes for that snapshot itself, so every file is a valid snapshot (readable
by the store, DuckDB and pandas, right footer). Contents are the same in every snapshot of a run: the
numbers do not matter here, the number of files does.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import pipeline.store
from pipeline.histogram import Histogram
from pipeline.processing.service import ProcessingService
from pipeline.settings import Settings
from pipeline.store import PARQUET_OPTIONS, SNAPSHOTS_AREA, SUFFIX, SnapshotStore, parquet_bytes
from pipeline.store_schema import FOOTER_KEY, SnapshotMeta, format_snapshot_id, histograms_to_table

SUBSYSTEMS = ("EMC", "TPC", "HLT")
FIRST_RUN = 300001  # every run number has 6 digits, so every id has the same length
START = datetime(2026, 1, 5, 8, 0, 0, 250000, tzinfo=UTC)  # microseconds never 0: fixed-width isoformat
SNAPSHOT_EVERY = timedelta(minutes=1)
RUN_GAP = timedelta(minutes=10)
BASELINE_RUNS = 10
WRITERS = 2
RUN_PAGE_TARGET_MS = 1500.0
LISTING_PAGE_TARGET_MS = 300.0
CACHED_LISTING_TARGET_MS = 50.0
SLICE_TARGET_MS = 100.0
ARROW_SCHEMA_KEY = b"ARROW:schema"


# ---- the store ---------------------------------------------------------------------------------

# Every view is built in this process: there is no background-callback worker in a benchmark.
BACKGROUND_OFF = 10**9


def template_histograms(subsystem: str) -> list[Histogram]:
    """A handful of small histograms, the events one included (the EMC plug-in scales by it)."""
    rng = np.random.default_rng(len(subsystem))
    events = np.array([0.0, 1000.0, 0.0])
    histograms = [
        Histogram(
            "EMCTRQA_histEvents", "TH1D", "events", (np.array([0.0, 1.0]),), events, events.copy(), 1000.0
        )
    ]
    prefix = {"EMC": "EMCTRQA_histFastOR", "TPC": "TPCQA/h_tpc_cluster", "HLT": "HLT_hist"}[subsystem]
    for index in range(4):
        counts = rng.poisson(50.0, size=102).astype(float)
        histograms.append(
            Histogram(
                f"{prefix}_{index:03d}",
                "TH1D",
                "counts",
                (np.linspace(0, 100, 101),),
                counts,
                counts.copy(),
                float(counts.sum()),
            )
        )
    return histograms


def _template_options() -> dict[str, object]:
    """The store's options, but the small columns uncompressed, so the id, time and run in them can be
    patched (the bin contents stay as the store writes them)."""
    options = dict(PARQUET_OPTIONS)
    options["compression"] = {
        leaf: codec if codec == "zstd" else "none" for leaf, codec in PARQUET_OPTIONS["compression"].items()
    }
    return options


def snapshot_bytes(meta: SnapshotMeta, histograms: list[Histogram]) -> bytes:
    """The file pyarrow writes for one snapshot (the reference the patched template must equal)."""
    table = histograms_to_table(format_snapshot_id(meta), meta, histograms)
    return parquet_bytes(table, _template_options()).to_pybytes()


def _patterns(meta: SnapshotMeta) -> list[bytes]:
    """Every byte string of a file that depends on the snapshot's run, time and id, longest first."""
    time_us = int(meta.snapshot_time_utc.timestamp() * 1_000_000)
    return [
        format_snapshot_id(meta).encode(),
        json.dumps(meta.snapshot_time_utc.isoformat()).encode(),
        f'"run": {meta.run},'.encode(),
        struct.pack("<q", time_us),
        struct.pack("<q", meta.run),
    ]


@dataclass(frozen=True)
class Template:
    meta: SnapshotMeta
    data: bytes
    arrow_schema: bytes  # base64, as in the footer

    def patched(self, meta: SnapshotMeta) -> bytes:
        data = _replaced(self.data, self.meta, meta)
        # pyarrow keeps the Arrow schema (with the footer record) base64-encoded in the footer too; the
        # patterns keep their lengths, so the patched schema encodes to the same length.
        patched_schema = base64.b64encode(_replaced(base64.b64decode(self.arrow_schema), self.meta, meta))
        return data.replace(self.arrow_schema, patched_schema)


def _replaced(data: bytes, old_meta: SnapshotMeta, new_meta: SnapshotMeta) -> bytes:
    for old, new in zip(_patterns(old_meta), _patterns(new_meta), strict=True):
        data = data.replace(old, new)
    return data


def make_template(subsystem: str) -> Template:
    """One subsystem's template, checked against pyarrow's own files for two other snapshots."""
    histograms = template_histograms(subsystem)
    meta = SnapshotMeta(999999, subsystem, datetime(2030, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), "B", "pp")
    data = snapshot_bytes(meta, histograms)
    template = Template(meta, data, pq.read_metadata(io.BytesIO(data)).metadata[ARROW_SCHEMA_KEY])
    for run, moment in ((FIRST_RUN, START), (FIRST_RUN + 987, START + timedelta(days=40, seconds=7.5))):
        other = SnapshotMeta(run, subsystem, moment, "B", "pp")
        if template.patched(other) != snapshot_bytes(other, histograms):
            raise RuntimeError(f"patched {subsystem} template differs from pyarrow's own file")
    return template


def run_plan(n_runs: int, n_snapshots: int) -> list[tuple[int, datetime, dict[str, int]]]:
    """(run, start, snapshots per subsystem) of every run; the files spread evenly over runs and
    subsystems."""
    per_run, extra = divmod(n_snapshots, n_runs)
    plan, start = [], START
    for index in range(n_runs):
        in_run = per_run + (index < extra)
        counts = {
            s: in_run // len(SUBSYSTEMS) + (i < in_run % len(SUBSYSTEMS)) for i, s in enumerate(SUBSYSTEMS)
        }
        plan.append((FIRST_RUN + index, start, counts))
        start += SNAPSHOT_EVERY * max(counts.values()) + RUN_GAP
    return plan


def write_runs(data_dir: Path, runs: list[tuple[int, datetime, dict[str, int]]]) -> int:
    templates = {subsystem: make_template(subsystem) for subsystem in SUBSYSTEMS}
    written = 0
    for run, start, counts in runs:
        for subsystem, count in counts.items():
            folder = data_dir / SNAPSHOTS_AREA / f"subsystem={subsystem}" / f"run={run}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                # A few seconds apart between subsystems, as independent receivers are.
                moment = start + index * SNAPSHOT_EVERY + timedelta(seconds=SUBSYSTEMS.index(subsystem))
                meta = SnapshotMeta(run, subsystem, moment, "B", "pp")
                (folder / f"{format_snapshot_id(meta)}{SUFFIX}").write_bytes(
                    templates[subsystem].patched(meta)
                )
                written += 1
    return written


def generate_store(data_dir: Path, n_runs: int, n_snapshots: int) -> None:
    """Write the store unless `data_dir` already holds this one (kept with --data-dir)."""
    stamp = data_dir / "bench_store_scale.json"
    wanted = {"runs": n_runs, "snapshots": n_snapshots}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"  reusing {data_dir} ({n_runs} runs, {n_snapshots} snapshots)", flush=True)
        return
    shutil.rmtree(data_dir / SNAPSHOTS_AREA, ignore_errors=True)
    started = time.perf_counter()
    plan = run_plan(n_runs, n_snapshots)
    with ProcessPoolExecutor(max_workers=WRITERS) as pool:
        written = sum(pool.map(write_runs, [data_dir] * WRITERS, [plan[w::WRITERS] for w in range(WRITERS)]))
    stamp.write_text(json.dumps(wanted))
    print(
        f"  wrote {written} snapshots of {n_runs} runs in {time.perf_counter() - started:.1f} s", flush=True
    )
    # Old enough that the folders' mtimes are not "racy" (listings taken within 1 s are not reused).
    time.sleep(1.1)


def check_store(data_dir: Path, n_runs: int) -> None:
    """The store reads its files back as written: ids, times and footers (a few files opened)."""
    store = SnapshotStore(data_dir)
    for run in (FIRST_RUN, FIRST_RUN + n_runs // 2, FIRST_RUN + n_runs - 1):
        for subsystem in SUBSYSTEMS:
            snapshot_id = store.latest_snapshot_id(run, subsystem)
            meta, histograms = store.read_snapshot(snapshot_id)
            assert format_snapshot_id(meta) == snapshot_id, (meta, snapshot_id)
            table = pq.read_table(store._path(snapshot_id))
            assert set(table["snapshot_id"].to_pylist()) == {snapshot_id}
            assert table.schema.metadata[FOOTER_KEY]
            assert table.schema.field("snapshot_time_utc").type == pa.timestamp("us", tz="UTC")
            assert "EMCTRQA_histEvents" in histograms


# ---- measuring ---------------------------------------------------------------------------------


@dataclass
class Timing:
    wall_s: list[float]
    cpu_s: list[float]

    @property
    def wall_ms(self) -> float:
        return statistics.median(self.wall_s) * 1000

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu_s) * 1000

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.wall_s, 95)) * 1000


def timed(action: Callable[[], object], repeat: int, before: Callable[[], object] | None = None) -> Timing:
    """Median wall and CPU time of `action`; `before` (not timed) runs before each repeat."""
    timing = Timing([], [])
    for _ in range(repeat):
        if before is not None:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        timing.wall_s.append(time.perf_counter() - wall)
        timing.cpu_s.append(time.process_time() - cpu)
    return timing


class Bench:
    """One store's services, made afresh for each cold measurement."""

    def __init__(self, data_dir: Path, cache_root: Path) -> None:
        self.data_dir = data_dir
        self.cache_root = cache_root
        self.services: list[ProcessingService] = []
        self.service = self.fresh()

    def fresh(self) -> ProcessingService:
        pipeline.store._FOLDER_LISTINGS.clear()
        for old in self.services:
            old.flush()
            old.cache.close()
        cache_dir = Path(tempfile.mkdtemp(dir=self.cache_root))
        self.service = ProcessingService(SnapshotStore(self.data_dir), cache_dir, SUBSYSTEMS)
        self.services = [self.service]
        return self.service

    def context(self):
        from dashboard.context import PageContext

        return PageContext(Settings(data_dir=self.data_dir, subsystems=SUBSYSTEMS), self.service)


def measure(data_dir: Path, cache_root: Path, n_runs: int, repeat: int) -> dict[str, Timing]:
    from dashboard.pages import run as run_page
    from dashboard.pages import runs as runs_page

    bench = Bench(data_dir, cache_root)
    newest, middle = FIRST_RUN + n_runs - 1, FIRST_RUN + n_runs // 2
    rows: dict[str, Timing] = {}
    rows["run list, cold"] = timed(lambda: bench.service.runs(), repeat, bench.fresh)
    rows["run list, cached"] = timed(lambda: bench.service.runs(), repeat)
    rows["runs page 1 (50 runs)"] = timed(lambda: runs_page.layout(bench.context(), {}, {}), repeat)
    middle_page = str(max(1, n_runs // runs_page.RUNS_PER_PAGE // 2))
    rows["runs page, middle page"] = timed(
        lambda: runs_page.layout(bench.context(), {}, {"page": middle_page}), repeat
    )

    def run_page_cold(run: int) -> None:
        # The layout draws the first view itself (`run_page.first_view`), as a browser receives it.
        run_page.layout(bench.context(), {"run": run, "subsystem": "EMC"}, {})

    rows["run page cold, middle run"] = timed(lambda: run_page_cold(middle), repeat, bench.fresh)
    rows["run page cold, newest run"] = timed(lambda: run_page_cold(newest), repeat, bench.fresh)
    windows = iter(range(1, 1000))

    def slice_cold() -> None:
        low = next(windows) % 25
        search = f"?min={low}&max={low + 5}"
        request = run_page.RenderRequest(middle, "EMC", search, {}, False, None, BACKGROUND_OFF)
        run_page.render_view(bench.service, request)

    bench.fresh()
    run_page_cold(middle)
    rows["time slice, cold view"] = timed(slice_cold, max(repeat, 20))
    rows["system status, cold"] = timed(lambda: bench.service.system_status(), repeat, bench.fresh)
    rows["system status, again"] = timed(lambda: bench.service.system_status(), repeat)
    for service in bench.services:
        service.flush()
    return rows


TARGETS = {
    "run list, cached": CACHED_LISTING_TARGET_MS,
    "runs page 1 (50 runs)": LISTING_PAGE_TARGET_MS,
    "runs page, middle page": LISTING_PAGE_TARGET_MS,
    "run page cold, middle run": RUN_PAGE_TARGET_MS,
    "run page cold, newest run": RUN_PAGE_TARGET_MS,
}


def report(big: dict[str, Timing], small: dict[str, Timing], n_runs: int, n_snapshots: int) -> None:
    store = f"{n_runs} runs/{n_snapshots} files"
    print(f"\n{'call':30} {store:>26} {'10-run baseline':>20} {'ratio':>7}  target")
    print(f"{'':30} {'wall ms (CPU ms)':>26} {'wall ms (CPU ms)':>20}")
    for label, timing in big.items():
        base = small[label]
        target = ""
        if label in TARGETS:
            ok = timing.wall_ms < TARGETS[label] or timing.cpu_ms < TARGETS[label]
            target = f"< {TARGETS[label]:.0f} ms: {'MET' if ok else 'NOT MET'}"
        elif label == "time slice, cold view":
            ok = timing.p95_ms < SLICE_TARGET_MS
            target = f"p95 {timing.p95_ms:.0f} ms < {SLICE_TARGET_MS:.0f} ms: {'MET' if ok else 'NOT MET'}"
        print(
            f"{label:30} {f'{timing.wall_ms:9.1f} ({timing.cpu_ms:7.1f})':>26} "
            f"{f'{base.wall_ms:8.1f} ({base.cpu_ms:7.1f})':>20} "
            f"{timing.wall_ms / max(base.wall_ms, 1e-6):6.1f}x  {target}"
        )
    print(
        f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(medians; MET on wall or CPU time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100 runs, 6,000 snapshots, 3 repeats")
    parser.add_argument("--data-dir", type=Path, help="keep the generated store here and reuse it")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.snapshots, args.repeat = 100, 6000, 3
    work = Path(tempfile.mkdtemp(prefix="bench_store_scale_"))
    try:
        big_dir = args.data_dir or work / "big"
        small_dir = work / "small"
        per_run = args.snapshots / args.runs
        print(
            f"store: {args.runs} runs x {per_run:.0f} snapshots (EMC, TPC, HLT), "
            f"baseline {BASELINE_RUNS} runs"
        )
        generate_store(big_dir, args.runs, args.snapshots)
        generate_store(small_dir, BASELINE_RUNS, round(per_run * BASELINE_RUNS))
        check_store(big_dir, args.runs)
        (work / "caches").mkdir()
        small = measure(small_dir, work / "caches", BASELINE_RUNS, args.repeat)
        big = measure(big_dir, work / "caches", args.runs, args.repeat)
        report(big, small, args.runs, args.snapshots)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

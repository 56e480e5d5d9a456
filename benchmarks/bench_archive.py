"""Archive import throughput: a generated archive imported on Dask (1 and 2 workers) next to a plain loop.

    python -m benchmarks.bench_archive [--files 2000] [--histograms 200] [--repeat 1]

The archive: `--files` flat receiver files (`EMChistos_<run>_B_<Zurich time>.root`, 200 per run, a minute
apart) of `--histograms` histograms each (half TH2F 48x104, half TH1D 100 bins: the EMC-like mix),
written once with uproot and copied under every name. Each row imports the whole archive into a new,
empty store and is checked: every file stored, none failed.

Rows: the baseline, the same per-file function in a plain loop in this process (`--workers 0`); then a
local Dask cluster of 1 and of 2 worker processes (127.0.0.1, one thread each, as `pipeline.engine`
makes it: files in batches of `engine.batch_size`), timed from the start of the import (cluster start
included, also printed apart) to the summary. Figures are medians over the
repeats, wall-clock; the machine's load average is printed, since other work shares its cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.archive.driver import import_archive
from pipeline.archive.synthetic import copy_file, counts_histograms, flat_name, write_receiver_file
from pipeline.engine import batch_size, cluster

FILES_PER_RUN = 200
FIRST_RUN = 244000
T0 = datetime(2015, 11, 24, 17, 0, 0, tzinfo=UTC)


def make_archive(folder: Path, n_files: int, n_histograms: int) -> Path:
    template = write_receiver_file(folder / "template.root", counts_histograms(n_histograms, seed=1))
    archive = folder / "archive"
    for index in range(n_files):
        run = FIRST_RUN + index // FILES_PER_RUN
        time_utc = T0 + timedelta(minutes=index)
        copy_file(template, archive / "data" / flat_name("EMC", run, "B", time_utc))
    template.unlink()
    return archive


def cluster_start_s(workers: int) -> float:
    """Seconds to start a local cluster of `workers` processes as the import does (part of every Dask row)."""
    started = time.perf_counter()
    with cluster(workers):
        ready = time.perf_counter() - started
    return ready


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--histograms", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-archive-") as scratch:
        scratch_dir = Path(scratch)
        started = time.perf_counter()
        archive = make_archive(scratch_dir, args.files, args.histograms)
        size_mb = sum(p.stat().st_size for p in archive.rglob("*.root")) / 1e6
        print(
            f"archive: {args.files} files x {args.histograms} histograms ({size_mb:,.0f} MB of ROOT files), "
            f"made in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        rows = [("baseline: plain loop, one process", 0), ("Dask, 1 worker", 1), ("Dask, 2 workers", 2)]
        walls: dict[int, list[float]] = {workers: [] for _, workers in rows}
        file_cpu: dict[int, list[float]] = {workers: [] for _, workers in rows}
        client_cpu: dict[int, list[float]] = {workers: [] for _, workers in rows}
        store_mb = 0.0
        for _ in range(args.repeat):
            for _label, workers in rows:  # interleaved, so a burst of load elsewhere hits every row alike
                data_dir = scratch_dir / f"store-{workers}"
                cpu_started, started = time.process_time(), time.perf_counter()
                summary = import_archive(archive, data_dir, workers=workers)
                walls[workers].append(time.perf_counter() - started)
                client_cpu[workers].append(time.process_time() - cpu_started)
                file_cpu[workers].append(summary.cpu_s / args.files)
                assert summary.snapshots == args.files and not summary.failed, summary.text()
                store_mb = sum(p.stat().st_size for p in data_dir.rglob("*.parquet")) / 1e6
                shutil.rmtree(data_dir)
        starts = {workers: cluster_start_s(workers) for _, workers in rows if workers}

    histograms = args.files * args.histograms
    baseline = statistics.median(walls[0])
    print(f"store: {store_mb:,.0f} MB of Parquet ({store_mb / size_mb:.2f} of the ROOT files' size)")
    header = f"  {'import':<34}{'wall s':>8}{'files/s':>9}{'hist/s':>9}{'vs baseline':>12}"
    print(f"{header}{'CPU ms/file':>12}{'client CPU s':>13}{'start s':>8}")
    for label, workers in rows:
        wall = statistics.median(walls[workers])
        start = f"{starts[workers]:.1f}" if workers else "-"
        print(
            f"  {label:<34}{wall:>8.1f}{args.files / wall:>9.1f}{histograms / wall:>9,.0f}"
            f"{baseline / wall:>11.2f}x{statistics.median(file_cpu[workers]) * 1e3:>12.1f}"
            f"{statistics.median(client_cpu[workers]):>13.1f}{start:>8}"
        )
    print(
        "CPU ms/file: CPU time of the per-file work where it ran (the workers, or this process for the\n"
        "baseline); client CPU s: this process during the import (for the baseline, all of the work; for\n"
        "Dask rows the client and the scheduler, which share the machine's cores with the workers).\n"
        f"Dask rows send {batch_size(args.files, 1)} (1 worker) and "
        f"{batch_size(args.files, 2)} (2 workers) files a task."
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 CPUs, shared with other work)")


if __name__ == "__main__":
    main()

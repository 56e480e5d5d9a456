"""QC cost: one 500-histogram EMC-like snapshot (every check and the write), and the rebuild of a 10-hour run.

    .venv/bin/python -m benchmarks.bench_qc [--quick] [--snapshots 600] [--repeat 15] [--data-dir DIR]

The snapshot is the emulator's EMC snapshot at minute 5 of a run (286 histograms: FastOR TH1s of 5000
ids, 48 x 104 maps, per-supermodule maps, cell and cluster QA) padded to 500 with more per-supermodule
maps, so every EMC check runs where it would: hot and dead FastORs, noisy cells, empty histograms,
interval checks (a snapshot 60 s earlier is stored too) and KS/chi2 against a reference run. The run
to rebuild is cumulative, a snapshot a minute: each is the previous one plus one of eight increments
taken from the emulator (consecutive minutes), so contents grow as a merger's do.

Rows, all on one pinned core (the machine is shared: figures move with load):
- read only: reading the snapshot (all histograms), the floor any QC pays;
- naive: each histogram read on its own and checked, as a page checks what it shows (the baseline);
- QC of one snapshot: read, every check, quality rows, both files written (`QCService.check_snapshot`);
- QC + trends + alarms: the same with the trending and alarm steps, as the live service runs;
- rebuild: every snapshot of the run (`QCService.rebuild` with trends and alarms, as `--rebuild` does;
  progress bar on stderr), against reading them all (the floor).
Each row gives wall time and CPU time: on a shared machine the wall time includes waiting for a core,
the CPU time is what one core spends (the wall time on a core of its own). Targets are judged on both.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.detectors import plugin_for
from pipeline.detectors.base import run_check_specs
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.histogram import Histogram
from pipeline.qc.references import set_reference
from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.settings import DEFAULT_SELECTIONS, Settings
from pipeline.store import SnapshotMeta, SnapshotStore

N_HISTOGRAMS = 500
RUN, REFERENCE_RUN = 500000, 499999
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SNAPSHOT_TARGET_MS = 200.0
REBUILD_TARGET_S = 60.0
INCREMENT_SETS = 8
WRITERS = 2


def emulated_minutes(minutes: list[float]) -> list[list[Histogram]]:
    """The emulator's EMC histograms at these minutes of one run, each padded to N_HISTOGRAMS."""
    t0 = 1_760_000_000.0
    clock = [t0]
    runs = SyntheticRuns(("EMC",), EmulatorConfig(start_time_utc=t0, step_s=6.0), now=lambda: clock[0])
    snapshots = []
    for minute in minutes:
        clock[0] = t0 + 60.0 * minute
        runs.advance()
        held = runs.snapshot()
        names = [name for name in sorted(held) if re.search(DEFAULT_SELECTIONS["EMC"], name)]
        histograms = [held[name] for name in names]
        # Padding: more per-supermodule hit maps (the checks treat them as supermodules 20, 21, ...).
        maps = [held[f"EMCTRQA_histFastORL{level}_SM{sm}"] for level in (0, 1) for sm in range(20)]
        for index in range(N_HISTOGRAMS - len(histograms)):
            source = maps[index % len(maps)]
            level = source.name[len("EMCTRQA_histFastORL")]
            histograms.append(replace(source, name=f"EMCTRQA_histFastORL{level}_SM{20 + index}"))
        snapshots.append(histograms)
    return snapshots


def write_part(
    data_dir: Path, n_snapshots: int, writer: int, increments: list, base: list[Histogram]
) -> None:
    """Snapshots writer, writer + WRITERS, ... of the cumulative run (every writer sums all increments)."""
    store = SnapshotStore(data_dir)
    totals = [(h.values_flow.copy(), h.variances_flow.copy()) for h in base]
    for index in range(n_snapshots):
        step = increments[index % len(increments)]
        for (values, variances), (d_values, d_variances) in zip(totals, step, strict=True):
            values += d_values
            variances += d_variances
        if index % WRITERS == writer:
            histograms = [
                replace(h, values_flow=values, variances_flow=variances)
                for h, (values, variances) in zip(base, totals, strict=True)
            ]
            meta = SnapshotMeta(RUN, "EMC", START + timedelta(minutes=index), "B", "pp")
            store.write_snapshot(meta, histograms)


def timed(function, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of each call. On a shared machine the wall time includes waiting for
    a core; the CPU time is what one core spends on it, i.e. the wall time on a core of its own."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - started) * 1000.0)
        cpu.append((time.process_time() - started_cpu) * 1000.0)
    return wall, cpu


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def verdict(value: float, target: float) -> str:
    return "MET" if value < target else "NOT MET"


def bench_snapshot(data_dir: Path, repeat: int) -> None:
    reference, baseline, current = emulated_minutes([9.9, 4.0, 5.0])
    store = SnapshotStore(data_dir)
    store.write_snapshot(SnapshotMeta(REFERENCE_RUN, "EMC", START - timedelta(hours=1), "B", "pp"), reference)
    store.write_snapshot(SnapshotMeta(RUN, "EMC", START, "B", "pp"), baseline)
    snapshot_id = store.write_snapshot(
        SnapshotMeta(RUN, "EMC", START + timedelta(minutes=1), "B", "pp"), current
    )
    set_reference(data_dir, "EMC", "pp", REFERENCE_RUN, "bench")
    service = QCService(data_dir)
    baseline_key, key = store.snapshot_keys(RUN, "EMC")
    assert key.snapshot_id == snapshot_id
    # Steady state of the live service: the snapshot a minute earlier was checked before this one, so
    # what interval checks subtract is in memory (the first check learns which histograms that is).
    service.check_snapshot(key)
    service.check_snapshot(baseline_key)
    evaluation = service.check_snapshot(key)
    contents: dict[str, int] = {}
    for item in evaluation.checked:
        for content, _ in item.results:
            contents[content] = contents.get(content, 0) + 1

    read, read_cpu = timed(lambda: store.read_snapshot(snapshot_id), repeat)
    plugin = plugin_for("EMC")

    def naive() -> None:
        for name in store.histogram_names(snapshot_id):
            run_check_specs(plugin.check_specs, store.read_histogram(snapshot_id, name), "cumulative")

    naive_ms, naive_cpu = timed(naive, max(2, repeat // 5))
    qc, qc_cpu = timed(lambda: service.check_snapshot(key), repeat)
    median = statistics.median
    print(f"one snapshot: {N_HISTOGRAMS} histograms, {evaluation.n_checks} check rows {contents}")
    print("                           wall median   wall p95  CPU median")
    for label, wall, cpu in (
        ("read only", read, read_cpu),
        ("naive (baseline)", naive_ms, naive_cpu),
        ("QC of one snapshot", qc, qc_cpu),
    ):
        print(f"  {label:22} {median(wall):9.1f} ms {p95(wall):8.1f} ms {median(cpu):8.1f} ms")
    print(
        f"  naive / QC: {median(naive_ms) / median(qc):.1f}x wall, "
        f"{median(naive_cpu) / median(qc_cpu):.1f}x CPU; QC / read: {median(qc) / median(read):.1f}x wall, "
        f"{median(qc_cpu) / median(read_cpu):.1f}x CPU"
    )
    for label, value in (("wall", median(qc)), ("CPU", median(qc_cpu))):
        print(
            f"  target < {SNAPSHOT_TARGET_MS:g} ms, {label} median {value:.0f} ms: "
            f"{verdict(value, SNAPSHOT_TARGET_MS)}"
        )
    # The whole per-snapshot work of the live service: the checks above, then trends and alarms (the
    # shipped alarm file; no delivery thread). The previous snapshot is read again each repeat.
    consumers, _ = trend_and_alarm_steps(data_dir, Settings(), deliver=False)
    full_service = QCService(data_dir, consumers=consumers)
    full_service.check_snapshot(baseline_key)
    full, full_cpu = timed(lambda: full_service.check_snapshot(key), repeat)
    print(
        f"  {'QC + trends + alarms':22} {median(full):9.1f} ms {p95(full):8.1f} ms {median(full_cpu):8.1f} ms"
        f"  ({len(consumers[0].last_rows)} trend rows)"
    )
    for label, value in (("wall", median(full)), ("CPU", median(full_cpu))):
        print(
            f"  target < {SNAPSHOT_TARGET_MS:g} ms with trends and alarms, {label} median {value:.0f} ms: "
            f"{verdict(value, SNAPSHOT_TARGET_MS)}"
        )
    sys.stdout.flush()


def bench_rebuild(data_dir: Path, n_snapshots: int) -> None:
    minutes = emulated_minutes([float(m) for m in range(1, INCREMENT_SETS + 2)])
    increments = [
        [
            (b.values_flow - a.values_flow, b.variances_flow - a.variances_flow)
            for a, b in zip(x, y, strict=True)
        ]
        for x, y in itertools.pairwise(minutes)
    ]
    store = SnapshotStore(data_dir)
    if len(store.snapshot_keys(RUN, "EMC")) != n_snapshots:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=WRITERS) as pool:
            jobs = [
                pool.submit(write_part, data_dir, n_snapshots, writer, increments, minutes[0])
                for writer in range(WRITERS)
            ]
            for job in jobs:
                job.result()
        print(f"  wrote {n_snapshots} snapshots in {time.perf_counter() - started:.0f} s", flush=True)
    keys = store.snapshot_keys(RUN, "EMC")

    def read_all() -> None:
        for key in keys:
            store.read_snapshot(key.snapshot_id)

    # As `python -m pipeline qc --rebuild` does it: checks, trends and alarms (no delivery).
    consumers, _ = trend_and_alarm_steps(data_dir, Settings(), deliver=False)
    service = QCService(data_dir, subsystems=("EMC",), consumers=consumers)
    [read_ms], [read_cpu_ms] = timed(read_all, 1)
    [rebuild_ms], [rebuild_cpu_ms] = timed(lambda: service.rebuild(run=RUN), 1)
    print(
        f"rebuild: {len(keys)} snapshots x {N_HISTOGRAMS} histograms, "
        f"{service.counters.check_rows} check rows"
    )
    print("                              wall        CPU")
    print(f"  read them all (floor)  {read_ms / 1000:7.1f} s  {read_cpu_ms / 1000:7.1f} s")
    print(
        f"  rebuild                {rebuild_ms / 1000:7.1f} s  {rebuild_cpu_ms / 1000:7.1f} s"
        f"  ({rebuild_cpu_ms / len(keys):.0f} ms CPU a snapshot)"
    )
    print(f"  rebuild / read: {rebuild_ms / read_ms:.1f}x wall, {rebuild_cpu_ms / read_cpu_ms:.1f}x CPU")
    for label, value_ms in (("wall", rebuild_ms), ("CPU", rebuild_cpu_ms)):
        scaled_s = value_ms / 1000 * 600 / len(keys)
        print(
            f"  target < {REBUILD_TARGET_S:g} s for 600 snapshots, {label} (scaled to 600) "
            f"{scaled_s:.0f} s: "
            f"{verdict(scaled_s, REBUILD_TARGET_S)}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60 snapshots to rebuild, 5 repeats")
    parser.add_argument("--snapshots", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep (and reuse) the run here")
    args = parser.parse_args(argv)
    n_snapshots, repeat = (60, 5) if args.quick else (args.snapshots, args.repeat)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core, as the target says
    with tempfile.TemporaryDirectory(prefix="bench_qc_") as scratch:
        bench_snapshot(Path(scratch) / "one", repeat)
        bench_rebuild(args.data_dir or Path(scratch) / "run", n_snapshots)


if __name__ == "__main__":
    main()

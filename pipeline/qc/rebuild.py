"""`python -m pipeline qc --rebuild`: recompute the QC results of stored runs, on Dask when there are several.

One run (or no client) is the QC service's own `rebuild`, in this process. Several runs go on the
archive import's engine (`pipeline.engine`), in two passes, so that the tables come out exactly as the
single-process rebuild writes them:

1. one task per run: the checks, quality and trends of every snapshot of the run, written by the worker
   (`QCService` with the trending step). Nothing there depends on another run: a snapshot's checks and
   trends read only its own run (and the reference run, read only).
2. one task per subsystem: the alarms, snapshot after snapshot in time order, from the trend rows that
   pass 1 stored. Alarm states do cross runs (a new run clears the open alarms of the last one, and
   the alarm book only moves forward), so a subsystem's alarms are evaluated in one sequence.

The client lists snapshot names only and gathers counts; no histogram passes through it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engine import map_units
from pipeline.progress import ProgressBar
from pipeline.qc.alarm_config import load_alarm_config
from pipeline.qc.alarming import AlarmConsumer
from pipeline.qc.evaluate import SnapshotInput
from pipeline.qc.paths import TRENDS_TABLE, snapshot_result_path
from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.qc.trender import TrendConsumer
from pipeline.store import SnapshotStore

if TYPE_CHECKING:
    from distributed import Client

    from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRebuilt:
    """What a worker did with one run (pass 1)."""

    run: int
    snapshots: int = 0  # snapshots checked
    failed: int = 0  # snapshots that could not be checked (recorded as such in `checks`)
    consumer_errors: int = 0
    last_error: str = ""
    cpu_s: float = 0.0


@dataclass
class RebuildSummary:
    runs: int = 0
    snapshots: int = 0
    failed: int = 0
    consumer_errors: int = 0
    alarm_snapshots: int = 0  # snapshots whose alarms pass 2 evaluated (0 in-process: done in pass 1)
    cpu_s: float = 0.0  # CPU time of pass 1 on the workers, summed
    last_error: str = ""

    def text(self) -> str:
        return (
            f"rebuilt QC results of {self.snapshots} snapshots in {self.runs} runs "
            f"({self.failed} failed, {self.consumer_errors} step errors)"
        )


def rebuild_qc(
    data_dir: Path,
    settings: Settings,
    run: int | None = None,
    runs: Sequence[int] | None = None,
    subsystems: Sequence[str] | None = None,
    client: Client | None = None,
    show_progress: bool = True,
) -> RebuildSummary:
    """Recompute checks, quality, trends and alarms of one `run`, of the `runs` listed, or of every
    stored run; on `client`'s Dask cluster when more than one run is to do (see the module doc).
    Raises AlarmConfigError / DeliveryConfigError for a bad setting, before anything runs."""
    data_dir = Path(data_dir).resolve()
    # The steps of the live service, without delivery (a rebuild must not mail old alarms again); a
    # bad alarm file stops the rebuild here, not on a worker.
    steps, _ = trend_and_alarm_steps(data_dir, settings, deliver=False)
    lister = QCService(data_dir, subsystems=subsystems, keep_status=False)
    keys = lister.snapshots_to_check(run=run, include_done=True, runs=runs)
    per_run = Counter(key.run for key in keys)
    if client is None or len(per_run) <= 1:
        service = QCService(data_dir, subsystems, consumers=steps)
        checked = service.rebuild(show_progress=show_progress, runs=sorted(per_run))
        counters = service.counters
        return RebuildSummary(
            runs=len(per_run),
            snapshots=checked,
            failed=counters.failed_snapshots,
            consumer_errors=counters.consumer_errors,
            last_error=counters.last_error,
        )
    summary = RebuildSummary(runs=len(per_run))
    progress = ProgressBar(len(keys), label="qc rebuild", unit="snapshots") if show_progress else None
    try:
        # Biggest runs first: the last task to finish is then a small one.
        ordered = sorted(per_run, key=lambda r: (-per_run[r], r))
        for run_number, outcome in map_units(
            client, rebuild_run, ordered, data_dir=str(data_dir), subsystems=subsystems
        ):
            if isinstance(outcome, Exception):
                outcome = RunRebuilt(
                    run_number, failed=per_run[run_number], last_error=f"worker error: {outcome}"
                )
            summary.snapshots += outcome.snapshots
            summary.failed += outcome.failed
            summary.consumer_errors += outcome.consumer_errors
            summary.cpu_s += outcome.cpu_s
            summary.last_error = outcome.last_error or summary.last_error
            if progress is not None:
                progress.advance(per_run[run_number])
    finally:
        if progress is not None:
            progress.close()
    systems = sorted({key.subsystem for key in keys})
    for subsystem, evaluated in map_units(
        client,
        alarm_pass,
        systems,
        data_dir=str(data_dir),
        runs=sorted(per_run),
        alarms_config=settings.alarms_config,
    ):
        if isinstance(evaluated, Exception):
            summary.consumer_errors += 1
            summary.last_error = f"alarms of {subsystem}: {type(evaluated).__name__}: {evaluated}"
            log.error("%s", summary.last_error)
        else:
            summary.alarm_snapshots += evaluated
    lister.keep_status = True
    counters = lister.counters
    counters.snapshots_checked, counters.failed_snapshots = summary.snapshots, summary.failed
    counters.consumer_errors, counters.last_error = summary.consumer_errors, summary.last_error
    lister.write_status(force=True)
    return summary


def rebuild_run(run: int, data_dir: str, subsystems: Sequence[str] | None = None) -> RunRebuilt:
    """Pass 1 for one run, on a worker: checks, quality and trends of each snapshot, written to the tables."""
    started = time.process_time()
    store = SnapshotStore(Path(data_dir))
    service = QCService(
        Path(data_dir), subsystems, consumers=[TrendConsumer(store)], store=store, keep_status=False
    )
    checked = service.rebuild(run=run, show_progress=False)
    counters = service.counters
    return RunRebuilt(
        run,
        checked,
        counters.failed_snapshots,
        counters.consumer_errors,
        counters.last_error,
        time.process_time() - started,
    )


def alarm_pass(subsystem: str, data_dir: str, runs: Sequence[int], alarms_config: str = "") -> int:
    """Pass 2 for one subsystem, on a worker: its alarms over `runs`, oldest snapshot first, from the
    stored trend rows, as the alarm step of a single-process rebuild sees them. How many snapshots."""
    root = Path(data_dir)
    store = SnapshotStore(root)
    alarms = AlarmConsumer(root, TrendConsumer(store), load_alarm_config(alarms_config or None))
    keys = sorted(
        (key for run in runs for key in store.snapshot_keys(run, subsystem)), key=lambda key: key.order
    )
    evaluated = 0
    previous: dict[int, str] = {}  # run -> its snapshot just before (whether or not it was checked)
    for key in keys:
        previous_id = previous.get(key.run)
        previous[key.run] = key.snapshot_id
        # Trends are written by every snapshot the service checked: no file, no alarm step (a
        # snapshot that could not be read or checked does not reach the steps in pass 1 either).
        if not snapshot_result_path(root, TRENDS_TABLE, subsystem, key.run, key.snapshot_id).exists():
            continue
        snapshot = SnapshotInput(
            run=key.run,
            subsystem=subsystem,
            snapshot_id=key.snapshot_id,
            snapshot_time_utc=key.snapshot_time_utc,
            histograms={},
            beam_type=store.snapshot_meta(key.snapshot_id).beam_type,
        )
        alarms.evaluate_snapshot(snapshot, previous_id)
        evaluated += 1
    return evaluated

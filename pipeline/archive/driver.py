"""`python -m pipeline import-archive`: list an archive tree, import its files on Dask, sum up.

Files are the unit of work. The client lists names only and gathers small `FileOutcome`s; the workers
read the ROOT files and write snapshots straight into the store (its atomic publish lets any number of
writers share one file system), so no histogram ever travels through the client. By default a local
cluster of `workers` processes on 127.0.0.1 without a dashboard; `scheduler` joins an existing cluster
instead (its workers must see SOURCE and DATA_DIR under the same paths). `workers=0` runs the same
per-file function in this process, one file after the other (the baseline of the archive benchmark).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.archive.import_file import ALREADY_STORED, FAILED, STORED, FileOutcome, import_file
from pipeline.archive.scan import scan_archive
from pipeline.engine import batch_size, cluster, map_units, n_workers
from pipeline.progress import ProgressBar
from pipeline.qc.rebuild import RebuildSummary, rebuild_qc

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ImportSummary:
    """What one import did; `skipped` and `failed` hold (path, reason)."""

    files: int = 0  # ROOT files found under the source
    snapshots: int = 0  # snapshots stored by this import
    histograms: int = 0  # histograms in them
    rejected_objects: int = 0  # objects left out of stored snapshots (unsupported class, NaN, ...)
    cpu_s: float = 0.0  # CPU time spent on the files, summed over the workers
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    stored_runs: set[int] = field(default_factory=set)  # runs this import added snapshots to
    qc: RebuildSummary | None = None  # the QC of those runs, when asked for

    def add(self, outcome: FileOutcome) -> None:
        self.cpu_s += outcome.cpu_s
        if outcome.status == STORED:
            self.rejected_objects += outcome.rejected_objects
            self.snapshots += 1
            self.histograms += outcome.n_histograms
            if outcome.run is not None:
                self.stored_runs.add(outcome.run)
        elif outcome.status == ALREADY_STORED:
            self.skipped.append((outcome.path, f"already stored as {outcome.snapshot_id}"))
        else:
            self.failed.append((outcome.path, outcome.reason))

    def text(self) -> str:
        """The closing report: totals, then the skip reasons counted, then every failure with its reason."""
        head = (
            f"{self.files} files: {self.snapshots} snapshots stored ({self.histograms:,} histograms), "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed"
        )
        if self.rejected_objects:
            head += f"; {self.rejected_objects} objects rejected inside stored files"
        lines = [head]
        reasons = Counter(reason.split(" (")[0].split(" as ")[0] for _, reason in self.skipped)
        lines += [f"  skipped: {count} x {reason}" for reason, count in sorted(reasons.items())]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        if self.qc is not None:
            lines.append(f"quality control: {self.qc.text()}")
        return "\n".join(lines)


def import_archive(
    source: Path,
    data_dir: Path,
    workers: int = 1,
    scheduler: str | None = None,
    progress: TextIO | None = None,
    qc_settings: Settings | None = None,
) -> ImportSummary:
    """Import every receiver file under `source` into the store at `data_dir`; see the module doc.

    `progress`: where the progress bar goes (the command line passes stderr), None for none.
    `qc_settings`: then check, trend and alarm the runs that got new snapshots, on the same cluster,
    as the live QC service does (`pipeline.qc.rebuild`); None: leave that to the QC service.
    """
    scan = scan_archive(Path(source))
    summary = ImportSummary(files=scan.n_root_files, skipped=list(scan.skipped), failed=list(scan.failed))
    bar = ProgressBar(len(scan.files), "import", progress, unit="files") if progress is not None else None
    data_dir = Path(data_dir).resolve()
    with cluster(workers, scheduler) as client:
        batch = batch_size(len(scan.files), n_workers(client))
        for entry, outcome in map_units(client, import_file, scan.files, batch, data_dir=str(data_dir)):
            if isinstance(outcome, Exception):
                reason = f"worker error: {type(outcome).__name__}: {outcome}"
                outcome = FileOutcome(str(entry.path), FAILED, reason=reason)
            summary.add(outcome)
            if bar is not None:
                bar.advance(detail=f"{summary.histograms:,} histograms, {len(summary.failed)} failed")
        if bar is not None:
            bar.close()
        if qc_settings is not None and summary.stored_runs:
            summary.qc = rebuild_qc(
                data_dir,
                qc_settings,
                runs=sorted(summary.stored_runs),
                client=client,
                show_progress=progress is not None,
            )
    return summary

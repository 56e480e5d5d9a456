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
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.archive.import_file import ALREADY_STORED, FAILED, STORED, FileOutcome, import_file
from pipeline.archive.names import ArchiveFile
from pipeline.archive.scan import scan_archive

if TYPE_CHECKING:
    from distributed import Client

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

    def add(self, outcome: FileOutcome) -> None:
        self.cpu_s += outcome.cpu_s
        if outcome.status == STORED:
            self.rejected_objects += outcome.rejected_objects
            self.snapshots += 1
            self.histograms += outcome.n_histograms
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
        return "\n".join(lines)


class ProgressBar:
    """A one-line progress bar on a terminal (redrawn in place), a line every 10% elsewhere."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total = total
        self.stream = stream
        self.done = 0
        self._interactive = bool(stream is not None and stream.isatty())
        self._last_tenth = -1

    def update(self, summary: ImportSummary) -> None:
        self.done += 1
        if self.stream is None:
            return
        fraction = self.done / self.total if self.total else 1.0
        tenth = int(fraction * 10)
        if not self._interactive and tenth == self._last_tenth and self.done != self.total:
            return
        self._last_tenth = tenth
        filled = int(fraction * self.WIDTH)
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} files, "
            f"{summary.histograms:,} histograms, {len(summary.failed)} failed"
        )
        self.stream.write(f"\r{line}" if self._interactive else f"{line}\n")
        if self._interactive and self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def import_archive(
    source: Path,
    data_dir: Path,
    workers: int = 1,
    scheduler: str | None = None,
    progress: TextIO | None = None,
) -> ImportSummary:
    """Import every receiver file under `source` into the store at `data_dir`; see the module doc.

    `progress`: where the progress bar goes (the command line passes stderr), None for none.
    """
    scan = scan_archive(Path(source))
    summary = ImportSummary(files=scan.n_root_files, skipped=list(scan.skipped), failed=list(scan.failed))
    bar = ProgressBar(len(scan.files), progress)
    data_dir = Path(data_dir).resolve()
    with _outcomes(scan.files, str(data_dir), workers, scheduler) as outcomes:
        for outcome in outcomes:
            summary.add(outcome)
            bar.update(summary)
    return summary


@contextmanager
def _outcomes(
    files: list[ArchiveFile], data_dir: str, workers: int, scheduler: str | None
) -> Iterator[Iterator[FileOutcome]]:
    if scheduler is None and workers <= 0:
        yield (import_file(entry, data_dir) for entry in files)
        return
    from distributed import Client, LocalCluster  # imported only where a cluster is used

    if scheduler is not None:
        with Client(scheduler) as client:
            yield _gather(client, files, data_dir)
        return
    with (
        # The workers' scratch space (spill files, locks) goes away with the cluster.
        tempfile.TemporaryDirectory(prefix="overwatch-dask-") as scratch,
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # No dashboard; the scheduler's small HTTP server (health checks) on a free loopback port.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            local_directory=scratch,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield _gather(client, files, data_dir)


def _gather(client: Client, files: list[ArchiveFile], data_dir: str) -> Iterator[FileOutcome]:
    """Outcomes as the files finish; a task that raised (a bug, a lost worker) fails its file only."""
    from distributed import as_completed

    futures = client.map(import_file, files, data_dir=data_dir, pure=False)
    paths = {future.key: str(entry.path) for future, entry in zip(futures, files, strict=True)}
    for future in as_completed(futures):
        try:
            yield future.result()
        except Exception as error:
            reason = f"worker error: {type(error).__name__}: {error}"
            yield FileOutcome(paths[future.key], FAILED, reason=reason)
        finally:
            future.release()

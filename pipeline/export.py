"""Export a stored snapshot as a ROOT file, named and shaped like the original receiver's output.

Every histogram becomes a TH1D/TH2D/TH3D built with uproot's `to_TH*x`/`to_TAxis`, so ROOT and
uproot users get titles, axis titles, edges, flow bins, sumw2 and entries back exactly as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo
from pathlib import Path

import uproot

from pipeline import atomic_files
from pipeline.histogram import Histogram
from pipeline.root_model import model_from_histogram
from pipeline.store import SnapshotMeta, SnapshotStore

EXPORT_DIR = "export"


def receiver_file_name(meta: SnapshotMeta, tz: tzinfo = UTC) -> str:
    """`<SYS>histos_<run>_<mode>_<Y>_<M>_<D>_<h>_<m>_<s>.root`, date parts not zero-padded.

    The original C++ receiver used the host's local (Geneva) time; the time here is UTC unless `tz`
    says otherwise (pass `zoneinfo.ZoneInfo("Europe/Zurich")` for files meant for the old tools).
    """
    t = meta.snapshot_time_utc.astimezone(tz)
    stamp = f"{t.year}_{t.month}_{t.day}_{t.hour}_{t.minute}_{t.second}"
    return f"{meta.subsystem}histos_{meta.run}_{meta.hlt_mode}_{stamp}.root"


def export_snapshot_root(
    store: SnapshotStore,
    run: int,
    subsystem: str,
    out_path: Path | None = None,
    snapshot_id: str | None = None,
) -> Path:
    """Write the newest (or given) snapshot of `run`/`subsystem` to a ROOT file; return the path.

    `out_path` may be a file, an existing directory (the receiver-style name is used inside it),
    or None for `<data_dir>/export/<receiver-style name>`. Raises KeyError if there is no such
    snapshot, ValueError if `snapshot_id` belongs to another run or subsystem.
    """
    if snapshot_id is None:
        snapshot_id = store.latest_snapshot_id(run, subsystem)
        if snapshot_id is None:
            raise KeyError(f"no snapshot stored for run {run} {subsystem} in {store.data_dir}")
    meta, histograms = store.read_snapshot(snapshot_id)
    if (meta.run, meta.subsystem) != (run, subsystem):
        found = f"run {meta.run} {meta.subsystem}"
        raise ValueError(f"snapshot {snapshot_id!r} is {found}, not {run} {subsystem}")
    path = _output_path(out_path, meta, store.data_dir)
    write_root_file(path, histograms.values())
    return path


def write_root_file(path: Path, histograms: Iterable[Histogram]) -> None:
    """Write `histograms` to the ROOT file `path`, replacing it atomically.

    Names with "/" go into subdirectories, as uproot does for `file["TPCQA/h_x"] = ...`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    # A reader (or a copy to EOS) never sees a half-written file under the final name.
    def write(target: str) -> None:
        with uproot.recreate(target) as root_file:
            for histogram in histograms:
                root_file[histogram.name] = to_root_histogram(histogram)

    atomic_files.write_file(path, write, durable=False)


def to_root_histogram(histogram: Histogram) -> object:
    """An uproot TH1D/TH2D/TH3D model of `histogram` (double precision whatever was stored), ready for
    `file[name] = model`; the directory part of the name becomes the file's folder."""
    return model_from_histogram(
        histogram, class_name=f"TH{histogram.dimension}D", name=histogram.name.rsplit("/", 1)[-1]
    )


def _output_path(out_path: Path | None, meta: SnapshotMeta, data_dir: Path) -> Path:
    if out_path is None:
        return Path(data_dir) / EXPORT_DIR / receiver_file_name(meta)
    out_path = Path(out_path)
    return out_path / receiver_file_name(meta) if out_path.is_dir() else out_path

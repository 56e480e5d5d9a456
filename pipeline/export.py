"""Export a stored snapshot as a ROOT file, named and shaped like the original receiver's output.

Every histogram becomes a TH1D/TH2D/TH3D built with uproot's `to_TH*x`/`to_TAxis`, so ROOT and
uproot users get titles, axis titles, edges, flow bins, sumw2 and entries back exactly as stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np
import uproot
from uproot.writing.identify import to_TAxis, to_TH1x, to_TH2x, to_TH3x

from pipeline.histogram import Histogram
from pipeline.store import SnapshotMeta, SnapshotStore

EXPORT_DIR = "export"
_AXIS_NAMES = ("xaxis", "yaxis", "zaxis")
_AXIS_LETTERS = ("x", "y", "z")
_AXIS_MEMBERS = ("fXaxis", "fYaxis", "fZaxis")
_BUILDERS = {1: to_TH1x, 2: to_TH2x, 3: to_TH3x}


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
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}.tmp")
    try:
        with uproot.recreate(temp_path) as root_file:
            for histogram in histograms:
                root_file[histogram.name] = to_root_histogram(histogram)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def to_root_histogram(histogram: Histogram) -> object:
    """An uproot TH1D/TH2D/TH3D model of `histogram`, ready for `file[name] = model`."""
    builder = _BUILDERS[histogram.dimension]
    axes = {member: _axis(histogram, index) for index, member in enumerate(_AXIS_MEMBERS)}
    return builder(
        fName=histogram.name.rsplit("/", 1)[-1],
        fTitle=histogram.title,
        data=_root_order(histogram.values_flow),
        fEntries=float(histogram.entries),
        fSumw2=_root_order(histogram.variances_flow),
        **axes,
        **_fill_statistics(histogram),
    )


def _output_path(out_path: Path | None, meta: SnapshotMeta, data_dir: Path) -> Path:
    if out_path is None:
        return Path(data_dir) / EXPORT_DIR / receiver_file_name(meta)
    out_path = Path(out_path)
    return out_path / receiver_file_name(meta) if out_path.is_dir() else out_path


def _root_order(array_flow: np.ndarray) -> np.ndarray:
    # ROOT's global bin is ix + (nx+2)*(iy + (ny+2)*iz): x runs fastest (C order of the transpose).
    return np.ascontiguousarray(array_flow.T, dtype=np.float64).reshape(-1)


def _axis(histogram: Histogram, index: int) -> object:
    """TAxis for axis `index`; axes beyond the dimension keep ROOT's 1-bin default but their title
    (a TH1's y title, e.g. "counts", is real information)."""
    title = histogram.axis_titles[index] if index < len(histogram.axis_titles) else ""
    if index >= histogram.dimension:
        return to_TAxis(fName=_AXIS_NAMES[index], fTitle=title, fNbins=1, fXmin=0.0, fXmax=1.0)
    edges = np.asarray(histogram.edges[index], dtype=np.float64)
    n_bins = len(edges) - 1
    regular = np.array_equal(edges, np.linspace(edges[0], edges[-1], n_bins + 1))
    return to_TAxis(
        fName=_AXIS_NAMES[index],
        fTitle=title,
        fNbins=n_bins,
        fXmin=float(edges[0]),
        fXmax=float(edges[-1]),
        # Only irregular axes carry explicit edges, as ROOT does; readers rebuild regular ones.
        fXbins=None if regular else edges,
    )


def _fill_statistics(histogram: Histogram) -> dict[str, float]:
    """ROOT's fTsumw* sums from bin centres (per-fill sums are not stored), flow bins excluded."""
    weights = histogram.values()
    centers = [(edges[1:] + edges[:-1]) / 2 for edges in histogram.edges]
    statistics = {"fTsumw": float(weights.sum()), "fTsumw2": float(histogram.variances().sum())}
    axes = range(histogram.dimension)
    for axis in axes:
        others = tuple(a for a in axes if a != axis)
        marginal = weights.sum(axis=others)
        letter = _AXIS_LETTERS[axis]
        statistics[f"fTsumw{letter}"] = float(marginal @ centers[axis])
        statistics[f"fTsumw{letter}2"] = float(marginal @ centers[axis] ** 2)
    for first in axes:
        for second in range(first + 1, histogram.dimension):
            rest = tuple(a for a in axes if a not in (first, second))
            pair = weights.sum(axis=rest)
            key = f"fTsumw{_AXIS_LETTERS[first]}{_AXIS_LETTERS[second]}"
            statistics[key] = float(centers[first] @ pair @ centers[second])
    return statistics

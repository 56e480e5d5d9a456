"""The store from a notebook: runs, and a run's histograms over any window, as `Histogram` objects.

    from pipeline.notebook import open_store
    with open_store("data") as store:
        print(store.runs())
        h = store.histogram(300000, "EMC", "EMCTRQA_histFastORL0", min=2, max=5, scale=False)
        h.to_hist().plot()  # or mplhep.histplot(h)

It reads through the same processing as the dashboard and the data API (time slices, merger modes,
plug-in derived histograms and per-event scaling), with the same parameters (`min`, `max`, `mode`,
`scale`, `threshold` and plug-in options), so a notebook sees the numbers a shifter sees. Nothing
is started and nothing is written to the data folder; derived results are cached in a temporary
folder removed by `close()` unless a `cache_dir` is given.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from pipeline.histogram import Histogram
from pipeline.processing.query import ViewQuery
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.settings import Settings
from pipeline.store import SnapshotStore

RUN_COLUMNS = [
    "run",
    "subsystem",
    "source_subsystem",
    "start_utc",
    "end_utc",
    "length_minutes",
    "n_snapshots",
    "merger_mode",
    "hlt_mode",
    "beam_type",
    "ongoing",
]


class StoreReader:
    """Read-only access to one data folder through the processing service."""

    def __init__(
        self, data_dir: Path, cache_dir: Path | None = None, subsystems: Iterable[str] | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"no data folder at {self.data_dir}")
        self._temporary_cache = cache_dir is None
        cache = Path(tempfile.mkdtemp(prefix="overwatch-notebook-")) if cache_dir is None else Path(cache_dir)
        self.cache_dir = cache
        chosen = tuple(subsystems) if subsystems is not None else Settings().subsystems
        self.service = ProcessingService(SnapshotStore(self.data_dir), cache, chosen)

    def runs(self) -> pd.DataFrame:
        """One row per run and subsystem that can show data, newest run first."""
        rows = [
            {
                "run": info.run,
                "subsystem": info.subsystem,
                "source_subsystem": info.source_subsystem,
                "start_utc": info.start_utc,
                "end_utc": info.end_utc,
                "length_minutes": info.length_minutes,
                "n_snapshots": info.n_snapshots,
                "merger_mode": info.merger_mode.value,
                "hlt_mode": info.hlt_mode,
                "beam_type": info.beam_type,
                "ongoing": info.ongoing,
            }
            for info in self.service.runs()
        ]
        return pd.DataFrame(rows, columns=RUN_COLUMNS)

    def view(self, run: int, subsystem: str, **params: Any) -> ProcessedView:
        """The processed view of a run (or of `min`..`max` minutes), as the run page shows it.

        Raises OptionsError naming a bad parameter or one the subsystem lacks, LookupError for a run or
        subsystem without data.
        """
        query = ViewQuery.from_params(params, subsystem=subsystem)
        info = self.service.run_info(run, subsystem)
        return self.service.view(run, subsystem, query.window(info.length_minutes), query.options, query.mode)

    def names(self, run: int, subsystem: str, **params: Any) -> list[str]:
        """Every histogram name of the view, in the plug-in's group order."""
        return self.view(run, subsystem, **params).names

    def histogram(self, run: int, subsystem: str, name: str, **params: Any) -> Histogram:
        """One histogram of the view; KeyError if the window holds no histogram of that name."""
        return self.view(run, subsystem, **params).histogram(name).histogram

    def histograms(
        self, run: int, subsystem: str, names: Iterable[str] | None = None, **params: Any
    ) -> dict[str, Histogram]:
        """Histograms of the view by name (all of them, or `names`)."""
        view = self.view(run, subsystem, **params)
        wanted = view.names if names is None else list(names)
        return {name: view.histogram(name).histogram for name in wanted}

    def close(self) -> None:
        """Stop the service's background cache writes and remove a temporary cache."""
        self.service.flush()
        self.service.cache.close()
        if self._temporary_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    data_dir: str | Path = "data",
    cache_dir: str | Path | None = None,
    subsystems: Iterable[str] | None = None,
) -> StoreReader:
    """Open a data folder for reading (see the module docstring); use it in a `with` block or `close()` it."""
    return StoreReader(Path(data_dir), None if cache_dir is None else Path(cache_dir), subsystems)

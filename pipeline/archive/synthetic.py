"""Archive trees like the original OVERWATCH left them, made with uproot: for tests and the benchmark.

Names follow `archive.names` (the inverse of what it parses): flat receiver files named by
`export.receiver_file_name` in Zurich time, DQM files, moved `Run<N>/<SYS>/<SYS>hists.<time>.root` files
with the run's `runInfo.yaml`, and the derived files the import must skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import uproot

from pipeline.archive.names import RUN_INFO, ZURICH
from pipeline.export import receiver_file_name
from pipeline.histogram import Histogram
from pipeline.root_model import model_from_histogram
from pipeline.store_schema import SnapshotMeta


def write_receiver_file(path: Path, histograms: Iterable[Histogram]) -> Path:
    """A ROOT file holding `histograms` with their own classes (TH2F stays TH2F); "/" makes folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path) as root_file:
        for histogram in histograms:
            base_name = histogram.name.rsplit("/", 1)[-1]
            root_file[histogram.name] = model_from_histogram(histogram, name=base_name)
    return path


def flat_name(subsystem: str, run: int, hlt_mode: str, time_utc: datetime) -> str:
    """`<SYS>histos_<run>_<mode>_<Y>_<M>_<D>_<h>_<m>_<s>.root` in Zurich wall-clock time, not zero-padded."""
    return receiver_file_name(SnapshotMeta(run, subsystem, time_utc, hlt_mode=hlt_mode), tz=ZURICH)


def dqm_name(agent: str, run: int, time_utc: datetime) -> str:
    """The DQM receiver's `<agent>histos_<run>_DQM_<YYYY_MM_DD_HH_mm_ss>.root` (zero-padded, Zurich)."""
    return f"{agent}histos_{run}_DQM_{time_utc.astimezone(ZURICH):%Y_%m_%d_%H_%M_%S}.root"


def moved_path(subsystem: str, run: int, time_utc: datetime, replay: bool = False) -> Path:
    """`[ReplayData/]Run<run>/<SYS>/<SYS>hists.<time>.root`, the time string as in the receiver's name."""
    time_string = flat_name(subsystem, run, "X", time_utc).removesuffix(".root").split("_", 3)[3]
    folder = Path("ReplayData") if replay else Path()
    return folder / f"Run{run}" / subsystem / f"{subsystem}hists.{time_string}.root"


def write_run_info(archive: Path, run: int, hlt_mode: str) -> None:
    """`Run<run>/runInfo.yaml` as the original wrote it."""
    path = archive / f"Run{run}" / RUN_INFO
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"hltMode: {hlt_mode}\n")


def counts_histograms(n: int, seed: int, prefix: str = "EMCTRQA_hist") -> list[Histogram]:
    """`n` histograms of Poisson counts, half TH2F 48x104 and half TH1D 100 bins (the EMC-like mix)."""
    rng = np.random.default_rng(seed)
    histograms = []
    for index in range(n):
        if index % 2 == 0:
            counts = rng.poisson(5.0, size=(50, 106)).astype(np.float32).astype(float)
            edges: tuple[np.ndarray, ...] = (np.arange(49.0), np.arange(105.0))
            class_name = "TH2F"
        else:
            counts = rng.poisson(50.0, size=102).astype(float)
            edges = (np.linspace(0.0, 100.0, 101),)
            class_name = "TH1D"
        name, title = f"{prefix}{index:04d}", f"title {index}"
        histograms.append(Histogram(name, class_name, title, edges, counts, counts, float(counts.sum())))
    return histograms


def copy_file(template: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return target

"""A small store with known contents for the HTTP API and push tests: one EMC run, four snapshots.

Snapshots are one minute apart from T0, so a window [1, 3] is exactly snapshot 3 minus snapshot 1 (the
snapshots nearest to its edges).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from flask import Flask

from pipeline.histogram import Histogram
from pipeline.processing.service import ProcessingService
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.web import register_api_routes

T0 = 1_700_000_000.0  # in the past: the run is over
RUN = 7001
EVENTS = "EMCTRQA_histEvents"
FASTOR = "EMCTRQA_histFastORL0"
ODD_NAME = "QA dir/pT spectrum"  # a folder and a space: must work URL-encoded
PUSH_TOKEN = "test-push-token-3f9a"
FASTOR_BASE = np.array([0.0, 1.0, 2.0, 3.0, 50.0, 0.0])  # with flow bins
ODD_EDGES = np.array([0.0, 0.5, 2.0, 10.0])


def events_flow(index: int) -> np.ndarray:
    return np.array([0.0, 10.0 * (index + 1), 0.0])


def fastor_flow(index: int) -> np.ndarray:
    return FASTOR_BASE * (index + 1)


def odd_flow(index: int) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([1.0, 2.0, 4.0, 8.0, 0.5]) * (index + 1)
    return values, values * 0.25  # weighted fills: variances differ from the contents


def snapshot_histograms(index: int) -> list[Histogram]:
    odd_values, odd_variances = odd_flow(index)
    unit = np.array([0.0, 1.0])
    return [
        Histogram(
            EVENTS, "TH1D", "events", (unit,), events_flow(index), events_flow(index), 10.0 * (index + 1)
        ),
        Histogram(
            FASTOR, "TH1D", "FastOR L0 hits", (np.arange(5.0),), fastor_flow(index), fastor_flow(index)
        ),
        Histogram(ODD_NAME, "TH1F", "p_T", (ODD_EDGES,), odd_values, odd_variances, 3.0, ("p_T (GeV)", "n")),
    ]


def write_run(data_dir: Path, n_snapshots: int = 4) -> SnapshotStore:
    store = SnapshotStore(data_dir)
    for index in range(n_snapshots):
        when = datetime.fromtimestamp(T0 + 60.0 * index, UTC)
        store.write_snapshot(SnapshotMeta(RUN, "EMC", when, "B", "pp"), snapshot_histograms(index))
    return store


def api_app(data_dir: Path, cache_dir: Path, push_token: str = PUSH_TOKEN, **settings) -> Flask:
    """A bare Flask app with the API and push routes over `data_dir` (no Dash needed)."""
    config = Settings(data_dir=data_dir, cache_dir=cache_dir, push_token=push_token, **settings)
    service = ProcessingService(SnapshotStore(data_dir), cache_dir, config.subsystems)
    app = Flask(__name__)
    register_api_routes(app, service, config)
    return app

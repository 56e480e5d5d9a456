"""Shared pytest set-up: headless Chromium for dash_duo (works as root, no display, no network),
and a factory for small `Histogram`s used by the dashboard tests."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from selenium.webdriver.chrome.options import Options

from pipeline.histogram import Histogram
from tests.ports import free_tcp_port

# Chromium phones home (updates, sync, ...) on its own; these flags keep it quiet and offline.
_CHROME_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--metrics-recording-only",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


class _DropStoppedWorkers(logging.Filter):
    """dash[testing] stops its server by raising SystemExit in every thread the test started, the
    processing service's idle reader threads included; concurrent.futures then logs "Exception in
    worker" with the traceback of each. That is the runner's stop, not a failure: not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is SystemExit)


logging.getLogger("concurrent.futures").addFilter(_DropStoppedWorkers())


def pytest_setup_options() -> Options:
    """dash[testing]'s hook for the Chrome options of dash_duo."""
    options = Options()
    chromium = os.environ.get("DASH_TEST_CHROMEPATH") or shutil.which("chromium")
    if chromium:
        options.binary_location = chromium
    if not os.environ.get("DISPLAY"):
        # Headless even when pytest is run without --headless.
        options.add_argument("--headless=new")
    for argument in _CHROME_ARGS:
        options.add_argument(argument)
    return options


@pytest.fixture
def make_histogram() -> Callable[..., Histogram]:
    """Build a Histogram from regular-bin contents; flow bins are zero unless given."""

    def build(
        name: str,
        edges: Sequence[Sequence[float]],
        values: np.ndarray,
        variances: np.ndarray | None = None,
        class_name: str | None = None,
        title: str = "",
        axis_titles: Sequence[str] = (),
        values_flow: np.ndarray | None = None,
    ) -> Histogram:
        edges_arrays = tuple(np.asarray(e, dtype=float) for e in edges)
        values = np.asarray(values, dtype=float)
        variances = values.copy() if variances is None else np.asarray(variances, dtype=float)
        inner = (slice(1, -1),) * len(edges_arrays)
        shape = tuple(len(e) + 1 for e in edges_arrays)
        if values_flow is None:
            values_flow = np.zeros(shape)
            values_flow[inner] = values
        variances_flow = np.zeros(shape)
        variances_flow[inner] = variances
        return Histogram(
            name=name,
            class_name=class_name or f"TH{len(edges_arrays)}D",
            title=title,
            edges=edges_arrays,
            values_flow=np.asarray(values_flow, dtype=float),
            variances_flow=variances_flow,
            entries=float(values.sum()),
            axis_titles=tuple(axis_titles),
        )

    return build


@pytest.fixture
def dash_duo(dash_duo):
    """dash[testing]'s dash_duo on a free port instead of 8050, so that two test runs on one machine
    (or the main job left running) never collide."""
    start_server = dash_duo.start_server

    def start_on_free_port(app, navigate: bool = True, **kwargs):
        kwargs.setdefault("port", free_tcp_port())
        return start_server(app, navigate=navigate, **kwargs)

    dash_duo.start_server = start_on_free_port
    return dash_duo

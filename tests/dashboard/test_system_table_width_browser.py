"""`/system` on a 1366x768 laptop (headless Chromium): every column of the receiver table, the last run
and the last error included, is on screen without scrolling sideways, also with a long error."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import System
from pipeline.histogram import Histogram
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.dashboard.browser import open_page, screenshot, set_viewport
from tests.dashboard.live_receivers import LiveReceivers, flowing_status

pytestmark = pytest.mark.browser
RUN = 300321
SUBSYSTEMS = ("EMC", "TPC", "HLT")
LONG_ERROR = "store failed: [Errno 28] No space left on device: '/srv/overwatch/data/snapshots/subsystem=HLT'"


def _status(subsystem: str, now: float):
    # Six-figure counters: the widths a receiver has after a few days.
    return flowing_status(
        subsystem, now, RUN, requests=123_456, replies=123_400, timeouts=1_234, socket_recreations=1_234
    )


def _right_edges(dash_duo, selectors: list[str]) -> list[float]:
    return dash_duo.driver.execute_script(
        "return arguments[0].map(s => document.querySelector(s).getBoundingClientRect().right);", selectors
    )


def test_every_receiver_column_fits_a_1366_wide_screen(dash_duo, tmp_path):
    data_dir = tmp_path / "data"
    store = SnapshotStore(data_dir)
    values = np.array([0.0, 5.0, 0.0])
    when = datetime.fromtimestamp(time.time() - 5, UTC)
    for subsystem in SUBSYSTEMS:
        histogram = Histogram("h", "TH1D", "h", (np.array([0.0, 1.0]),), values, values.copy())
        store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "PbPb"), [histogram])
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS)
    receivers = LiveReceivers(data_dir, SUBSYSTEMS, _status)
    try:
        receivers.set("HLT", ages={"last_error_utc": 5}, last_error=LONG_ERROR)
        dash_duo.start_server(create_app(settings))
        set_viewport(dash_duo, 1366, 768)
        open_page(dash_duo, "/system")
        until(lambda: "No space left" in dash_duo.find_element(f"#{System.cell('error', 'HLT')}").text, 15)
        table = "#system-receivers table"
        assert dash_duo.driver.execute_script(
            "const t = document.querySelector('#system-receivers .table-responsive') ||"
            " document.querySelector(arguments[0]); return t.scrollWidth <= t.clientWidth + 1;",
            table,
        ), "the receiver table scrolls sideways at 1366 px"
        cells = [f"#{System.cell(field, 'HLT')}" for field in ("run", "error")]
        headers = [f"{table} th:nth-last-child(2)", f"{table} th:last-child"]
        width = dash_duo.driver.execute_script("return window.innerWidth;")
        assert dash_duo.find_element(headers[0]).text.lower() == "last run"
        assert all(right <= width for right in _right_edges(dash_duo, cells + headers)), (
            _right_edges(dash_duo, cells + headers),
            width,
        )
        assert dash_duo.find_element(cells[0]).text == str(RUN)
        screenshot(dash_duo, "system_receivers_1366x768.png")
        assert dash_duo.get_logs() == []
    finally:
        receivers.stop()

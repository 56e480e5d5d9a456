"""The "Summing snapshots in the background…" box shows only while a background job sums snapshots
for the view asked for, never beside a plot that is already drawn (a screenshot of an ended TPC run
showed it there: the page's job store announced its empty value when the page mounted, Dash took that
for a request, and the box stayed up until the empty job's answer was polled, ~1 s, longer under load).
"""

from __future__ import annotations

import time

import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import Run
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.dashboard.browser import console_errors, open_page, plot, screenshot, set_viewport, visibility
from tests.pipeline.qc_helpers import record_runs

pytestmark = pytest.mark.browser
SUBSYSTEMS = ("EMC", "TPC")
WATCH_S = 3.0  # several of the background job's 1-s result polls: an empty job's box would show in them


def _drawn_traces(dash_duo) -> int:
    return plot(dash_duo, Run.GRAPH, "g._fullData.length") or 0


def _box_beside_the_plot(dash_duo, seconds: float) -> list[tuple[float, str, int]]:
    """(time since the start, box visibility, traces drawn) of every moment in `seconds` when the box
    was visible to a person."""
    start = time.monotonic()
    seen = []
    while time.monotonic() - start < seconds:
        shown = visibility(dash_duo, f"#{Run.HEAVY_BOX}", scroll=None)
        if shown == "visible":
            seen.append((round(time.monotonic() - start, 2), shown, _drawn_traces(dash_duo)))
        time.sleep(0.1)
    return seen


def test_no_summing_box_beside_the_plot_of_an_ended_run(dash_duo, tmp_path):
    data_dir = tmp_path / "data"
    run = record_runs(SnapshotStore(data_dir), {0: (1, 2, 3, 4)}, subsystems=SUBSYSTEMS).run_number
    settings = Settings(
        data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS, status_refresh_ms=1000
    )
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    pages = (f"/run/{run}/TPC", f"/run/{run}/TPC?min=1&max=3", f"/run/{run}/EMC")
    seen = {}
    for path in pages:
        open_page(dash_duo, path)
        until(lambda: _drawn_traces(dash_duo) >= 1, timeout=30, msg=f"{path}: no plot")
        until(lambda: "not ongoing" in dash_duo.find_element(f"#{Run.RUN_STATE}").text, timeout=10)
        seen[path] = _box_beside_the_plot(dash_duo, WATCH_S)
        screenshot(dash_duo, f"background_box_none_{path.split('/')[-1].split('?')[0]}_1600.png")
    # Nothing is summed for these cumulative views: the box never shows (the plot is there throughout).
    assert seen == {path: [] for path in pages}
    assert console_errors(dash_duo) == []

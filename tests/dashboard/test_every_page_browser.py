"""Every page of the dashboard, opened by its URL in headless Chromium at both screen sizes, draws what
it is for and leaves no error in the browser console. Screenshots go to artifacts/every_page_*.png for a
person to look at.

The store holds runs recorded and checked as the main job would: EMC and TPC snapshots, with the QC
service's checks, trends and alarms, so that no page is empty."""

from __future__ import annotations

import json
import shutil

import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import Alarms, ControlRoom, Runs, System, Trending
from pipeline.qc.service import QCService
from pipeline.qc.steps import trend_and_alarm_steps
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.dashboard.browser import (
    SIZES,
    console_errors,
    open_page,
    plot,
    screenshot,
    set_viewport,
)
from tests.pipeline.qc_helpers import record_runs

pytestmark = pytest.mark.browser
SUBSYSTEMS = ("EMC", "TPC")
DRAWN = "g._fullData.length"
FIRST_RUN = 300000  # the emulator's first run number (EmulatorConfig)


@pytest.fixture(scope="module")
def checked_store(tmp_path_factory):
    """Two EMC+TPC runs, four snapshots each, checked, trended and alarmed by the QC service; a FastOR
    turns hot in the second run, so the alarms page has an active alarm."""
    data_dir = tmp_path_factory.mktemp("every-page") / "data"
    runs = record_runs(
        SnapshotStore(data_dir),
        {0: (1, 2, 3, 4), 1: (1, 2, 3, 4)},
        faults=f"hot_fastor:id=1000:at=2.5:run={FIRST_RUN + 1}",
        subsystems=SUBSYSTEMS,
    )
    settings = Settings(data_dir=data_dir, subsystems=SUBSYSTEMS)
    consumers, _ = trend_and_alarm_steps(data_dir, settings, deliver=False)
    QCService(data_dir, consumers=consumers).check_pending()
    return data_dir, runs.run_number


def _pages(run: int) -> list[tuple[str, str, object]]:
    """(name, path, what must be there once it is drawn): a CSS selector, or a function of dash_duo."""

    def graph_drawn(graph_id: str):
        return lambda dash_duo: (plot(dash_duo, graph_id, DRAWN) or 0) >= 1

    def text_of(selector: str, text: str):
        return lambda dash_duo: text in dash_duo.find_element(selector).text

    return [
        ("runs", "/runs", f"#{Runs.TABLE}-{run}"),
        ("run_emc", f"/run/{run}/EMC", graph_drawn("run-graph")),
        ("run_tpc", f"/run/{run}/TPC", graph_drawn("run-graph")),
        ("system", "/system", f"#{System.cell('state', 'TPC')}"),
        ("control_room", "/control-room?rotate=5", graph_drawn(ControlRoom.GRAPH)),
        ("trending", "/trending/EMC", graph_drawn(Trending.GRAPH)),
        ("alarms", "/alarms", f"#{Alarms.SECTIONS} table"),
        ("not_found", "/no/such/page", text_of("h1", "Page not found")),
    ]


def test_every_page_draws_without_console_errors(dash_duo, tmp_path, checked_store):
    data_dir, run = checked_store
    settings = Settings(
        data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS, status_refresh_ms=1000
    )
    dash_duo.start_server(create_app(settings))
    errors: dict[str, list[str]] = {}
    for width, height in SIZES:
        set_viewport(dash_duo, width, height)
        for name, path, drawn in _pages(run):
            open_page(dash_duo, path)
            try:
                if isinstance(drawn, str):
                    until(
                        lambda drawn=drawn: dash_duo.find_elements(drawn), timeout=30, msg=f"{path}: {drawn}"
                    )
                else:
                    until(lambda drawn=drawn: drawn(dash_duo), timeout=30, msg=f"{path} not drawn")
            finally:
                screenshot(dash_duo, f"every_page_{name}_{width}.png")
            messages = [entry["message"] for entry in console_errors(dash_duo)]
            if name == "not_found":  # the browser logs the document's own 404: the answer we want
                messages = [m for m in messages if "status of 404" not in m]
            if messages:
                errors[f"{path} at {width}x{height}"] = messages
    assert errors == {}


def test_the_machines_status_answers_are_plain_text_and_json(dash_duo, tmp_path, checked_store):
    """/api/status and /status are read by machines; a browser shows them as they are."""
    data_dir, _ = checked_store
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS)
    dash_duo.start_server(create_app(settings))
    open_page(dash_duo, "/api/status")
    body = json.loads(dash_duo.driver.find_element("tag name", "body").text)
    assert sorted(receiver["subsystem"] for receiver in body["receivers"]) == sorted(SUBSYSTEMS)
    assert console_errors(dash_duo) == []
    open_page(dash_duo, "/status")
    # No receiver runs for this store: the answer is 500 with the reason, one line per receiver.
    text = dash_duo.driver.find_element("tag name", "body").text
    assert text != "Alive" and all(subsystem in text for subsystem in SUBSYSTEMS)


def test_the_trend_plot_keeps_its_height_when_new_points_arrive(dash_duo, tmp_path, checked_store):
    """A live refresh with a new point draws a new figure; the plot must not collapse meanwhile (it
    blinked away on every other refresh when its height was a percentage of a card without one)."""
    data_dir = tmp_path / "data"
    shutil.copytree(checked_store[0], data_dir)
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS)
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, f"/trending/EMC?run={FIRST_RUN + 1}")
    until(lambda: plot(dash_duo, Trending.GRAPH, "g._fullData[0].x.length") == 4, timeout=30)
    dash_duo.driver.execute_script(
        "const box = document.getElementById(arguments[0]); window.__heights = [];"
        "new ResizeObserver(() => window.__heights.push(box.getBoundingClientRect().height)).observe(box);",
        Trending.GRAPH,
    )
    for minute in (4.5, 4.8):  # two more snapshots of the second run, checked and trended as they land
        record_runs(SnapshotStore(data_dir), {1: (minute,)}, subsystems=SUBSYSTEMS)
        consumers, _ = trend_and_alarm_steps(data_dir, settings, deliver=False)
        QCService(data_dir, consumers=consumers).check_pending()
    until(lambda: plot(dash_duo, Trending.GRAPH, "g._fullData[0].x.length") == 6, timeout=30)
    heights = dash_duo.driver.execute_script("return window.__heights;")
    height = dash_duo.driver.execute_script(
        "return document.getElementById(arguments[0]).getBoundingClientRect().height;", Trending.GRAPH
    )
    assert height >= 400 and all(h >= 400 for h in heights), heights

"""The pages draw with plotly.js's cartesian partial bundle when it is installed, and with dcc's own full
bundle when ours cannot be loaded (headless Chromium). The 20-map grid of a run page opened by its URL is
drawn once: no redraw after the first draw, and no graph drawn while hidden."""

from __future__ import annotations

import shutil
import time

import pytest
from dash.testing.wait import until

from benchmarks.browser_trace import install_plotly_call_log, plotly_calls
from dashboard import plotly_bundle
from dashboard.app import create_app
from dashboard.ids import ControlRoom, Run
from pipeline.settings import Settings
from tests.dashboard.browser import console_errors, open_page, set_viewport
from tests.dashboard.emulated_run import RUN, EmulatedRun
from tests.dashboard.test_plotly_bundle import fake_bundle

pytestmark = pytest.mark.browser
VERSION = plotly_bundle.plotlyjs_version()
GRID_DRAWN_JS = """
const graph = document.querySelector('#run-graph .js-plotly-plot');
return !!(graph && graph._fullData && graph._fullData.filter(t => t.type === 'heatmap').length === 20);
"""
PLOTLY_SCRIPTS_JS = """
return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)
  .filter(path => path.includes('plotly') && path.endsWith('.min.js'));
"""


@pytest.fixture
def emc_data(tmp_path):
    run = EmulatedRun(tmp_path / "data", time.time() - 300.0)
    for _ in range(4):
        run.store_snapshot()
    return run.store.data_dir


def _open_grid(dash_duo, tmp_path, emc_data, monkeypatch, bundle):
    monkeypatch.setattr(plotly_bundle, "bundle_file", lambda version, prefix=None: bundle)
    app = create_app(Settings(data_dir=emc_data, cache_dir=tmp_path / "cache"))
    install_plotly_call_log(dash_duo.driver)
    dash_duo.start_server(app)
    set_viewport(dash_duo, 1600, 1000)
    # The first group of EMC is the 20-map "FEE vs TRU" grid.
    open_page(dash_duo, f"/run/{RUN}/EMC")
    until(lambda: dash_duo.driver.execute_script(GRID_DRAWN_JS), timeout=30)


def test_the_run_page_draws_its_grid_once_with_the_partial_bundle(dash_duo, tmp_path, emc_data, monkeypatch):
    installed = plotly_bundle.installed_bundle(plotly_bundle.bundle_file(VERSION), VERSION)
    if installed is None:
        pytest.skip("partial bundle not installed: python -m dashboard.plotly_bundle fetch")
    _open_grid(dash_duo, tmp_path, emc_data, monkeypatch, installed)
    driver = dash_duo.driver
    assert driver.execute_script("return window.Plotly.version;") == VERSION
    assert driver.execute_script(PLOTLY_SCRIPTS_JS) == [f"/_overwatch/plotly/{installed.name}"]
    time.sleep(1.0)  # what dcc.Graph's resize handling would redraw comes within ~0.3 s
    draws = [c for c in plotly_calls(driver, Run.GRAPH) if c.call in ("react", "newPlot")]
    assert len(draws) == 1, draws
    relayouts = [c for c in plotly_calls(driver, Run.GRAPH) if c.call != "react"]
    # dcc.Graph asks Plotly to fit the box after the first draw; the box has its final size already.
    assert all((c.width, c.height) == (draws[0].width, draws[0].height) for c in relayouts), relayouts
    assert draws[0].height >= 380
    # Graphs that are hidden (the reference overlay without a reference run) are not drawn at all.
    assert {c.graph for c in plotly_calls(driver)} == {Run.GRAPH}
    assert console_errors(dash_duo) == []


def test_pages_fall_back_to_dccs_bundle_when_ours_does_not_load(dash_duo, tmp_path, emc_data, monkeypatch):
    bundle = tmp_path / f"plotly-cartesian-{VERSION}.min.js"
    bundle.write_bytes(fake_bundle())
    monkeypatch.setattr(plotly_bundle, "bundle_file", lambda version, prefix=None: bundle)
    app = create_app(Settings(data_dir=emc_data, cache_dir=tmp_path / "cache"))
    shutil.move(bundle, tmp_path / "gone.js")  # removed after the server started: the page gets a 404
    dash_duo.start_server(app)
    open_page(dash_duo, f"/run/{RUN}/EMC")
    until(lambda: dash_duo.driver.execute_script(GRID_DRAWN_JS), timeout=30)
    assert dash_duo.driver.execute_script("return window.Plotly.version;") == VERSION
    assert dash_duo.driver.execute_script(PLOTLY_SCRIPTS_JS) == [
        f"/_overwatch/plotly/{bundle.name}",
        plotly_bundle.DCC_BUNDLE,
    ]
    # The only console errors are about the failed load of our bundle (a 404).
    errors = console_errors(dash_duo)
    assert errors and all(bundle.name in e["message"] and "404" in e["message"] for e in errors), errors


def test_the_control_room_arrives_drawn_once_in_its_final_box(dash_duo, tmp_path, emc_data):
    """Tiles, run and first group come with the page: one draw, at the size the plot keeps."""
    app = create_app(Settings(data_dir=emc_data, cache_dir=tmp_path / "cache", subsystems=("EMC",)))
    install_plotly_call_log(dash_duo.driver)
    dash_duo.start_server(app)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, "/control-room")
    graph = "document.querySelector('#control-room-graph .js-plotly-plot')"
    until(
        lambda: dash_duo.driver.execute_script(f"const g = {graph}; return !!(g && g._fullLayout.meta);"), 30
    )
    time.sleep(1.0)
    calls = plotly_calls(dash_duo.driver, ControlRoom.GRAPH)
    draws = [c for c in calls if c.call in ("react", "newPlot")]
    assert len(draws) == 1, calls
    assert dash_duo.find_elements(f"#{ControlRoom.TILES} .cr-tile")  # there when the plot was drawn
    final = dash_duo.driver.execute_script(f"const g = {graph}; return [g.clientWidth, g.clientHeight];")
    assert [draws[0].width, draws[0].height] == final and final[1] > 500
    assert console_errors(dash_duo) == []

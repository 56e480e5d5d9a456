"""The run page's controls as a person uses them (headless Chromium): live updates that are held back
say so and come back once the user stops typing (even when the value ends as it was), Enter applies a
slice, the slider and its boxes always show the window that is plotted, a page offers only its
subsystem's options, and a run page without data answers 404 saying why."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from dashboard.app import create_app
from dashboard.ids import Run
from pipeline.histogram import Histogram
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta
from tests.dashboard.browser import (
    choose_radio,
    current_search,
    graph,
    open_page,
    screenshot,
    set_viewport,
    type_into,
    visibility,
)
from tests.dashboard.emulated_run import FASTOR_L0, FASTOR_L0_PLOT_TITLE, RUN, EmulatedRun

pytestmark = pytest.mark.browser
N_SNAPSHOTS = 6


@pytest.fixture
def emc_run(tmp_path):
    """A live EMC run (newest snapshot seconds old) and one TPC snapshot of the same run."""
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS)
    values = np.array([0.0, 7.0, 3.0, 0.0])
    tracks = Histogram(
        "TPCQA/h_tpc_track_pt", "TH1D", "pt", (np.array([0.0, 1.0, 2.0]),), values, values.copy()
    )
    when = datetime.fromtimestamp(time.time() - 10.0, UTC)
    run.store.write_snapshot(SnapshotMeta(RUN, "TPC", when, "B", "pp"), [tracks])
    return run


def _start(dash_duo, tmp_path, data_dir, refresh_ms: int = 300):
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "app-cache", status_refresh_ms=refresh_ms)
    app = create_app(settings)
    dash_duo.start_server(app)
    set_viewport(dash_duo, 1600, 1000)
    return app


def _text(dash_duo, element_id: str) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", element_id
    )


def _slider_thumbs(dash_duo) -> list[str]:
    return [e.get_attribute("aria-valuenow") for e in dash_duo.find_elements(f"#{Run.SLIDER} [role=slider]")]


def _boxes(dash_duo) -> list[str]:
    return [dash_duo.find_element(f"#{box}").get_attribute("value") for box in (Run.SLICE_MIN, Run.SLICE_MAX)]


def test_typing_holds_live_updates_visibly_and_a_value_typed_back_releases_them(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    dash_duo.wait_for_contains_text(f"#{Run.CAPTION}", f"{N_SNAPSHOTS} snapshots in run")
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")

    # Typed, not submitted: updates wait, and the badge says why.
    box = dash_duo.find_element(f"#{Run.THRESHOLD}")
    box.click()
    box.send_keys("0.5")
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live · held while you type")
    assert visibility(dash_duo, f"#{Run.LIVE_BADGE}") == "visible"
    screenshot(dash_duo, "run_controls_held_while_typing.png")
    emc_run.store_snapshot()
    time.sleep(1.5)  # several refresh periods
    assert f"{N_SNAPSHOTS} snapshots in run" in _text(dash_duo, Run.CAPTION)

    # Deleted again and left: the box holds what was submitted, nothing is pending any more.
    box.send_keys(Keys.BACKSPACE * 3)
    dash_duo.find_element(f"#{Run.TITLE}").click()
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")
    dash_duo.wait_for_contains_text(f"#{Run.CAPTION}", f"{N_SNAPSHOTS + 1} snapshots in run", timeout=10)
    emc_run.store_snapshot()
    dash_duo.wait_for_contains_text(f"#{Run.CAPTION}", f"{N_SNAPSHOTS + 2} snapshots in run", timeout=10)
    assert "threshold" not in current_search(dash_duo)

    # An open menu holds them too, and says so.
    dash_duo.find_element(f"#{Run.HISTOGRAM}").click()
    until(lambda: dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live · held while a menu is open")
    dash_duo.find_element(f"#{Run.HISTOGRAM}").send_keys(Keys.ESCAPE)
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")
    assert dash_duo.get_logs() == []


def test_enter_applies_a_slice_and_the_controls_show_the_window_plotted(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir, refresh_ms=1000)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=15)
    full = ["0", str(N_SNAPSHOTS - 1)]
    until(lambda: _slider_thumbs(dash_duo) == full, timeout=5)

    # Enter in a slice box applies it, as the README says.
    type_into(dash_duo, f"#{Run.SLICE_MIN}", "1")
    type_into(dash_duo, f"#{Run.SLICE_MAX}", "2", enter=True)
    until(lambda: "min=1&max=2" in current_search(dash_duo), timeout=10)
    dash_duo.wait_for_contains_text(f"#{Run.SLICE_BANNER}", "requested 1-2 min")

    # A range typed but not applied, then another choice: the controls show the slice plotted (1-2).
    type_into(dash_duo, f"#{Run.SLICE_MIN}", "3")
    type_into(dash_duo, f"#{Run.SLICE_MAX}", "4")
    until(lambda: _slider_thumbs(dash_duo) == ["3", "4"], timeout=5)
    choose_radio(dash_duo, f"#{Run.MODE}", "reset")
    until(lambda: "mode=reset" in current_search(dash_duo), timeout=10)
    until(lambda: _slider_thumbs(dash_duo) == ["1", "2"] and _boxes(dash_duo) == ["1", "2"], timeout=5)

    # Full run, then back: the slider follows the URL, not only the boxes.
    dash_duo.find_element(f"#{Run.FULL_RUN}").click()
    until(lambda: "min=" not in current_search(dash_duo), timeout=10)
    until(lambda: _slider_thumbs(dash_duo) == full and _boxes(dash_duo) == full, timeout=5)
    dash_duo.driver.back()
    until(lambda: "min=1&max=2" in current_search(dash_duo), timeout=10)
    until(lambda: _slider_thumbs(dash_duo) == ["1", "2"] and _boxes(dash_duo) == ["1", "2"], timeout=5)
    screenshot(dash_duo, "run_controls_slice_after_back.png")
    assert dash_duo.get_logs() == []


def _displayed(dash_duo, selector: str) -> list[bool]:
    return [element.is_displayed() for element in dash_duo.find_elements(selector)]


def test_a_page_offers_only_its_subsystems_options(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=15)
    plugin_boxes = f"[id*='{Run.PLUGIN_OPTION}']"
    assert _displayed(dash_duo, plugin_boxes) == [True]  # EMC's outlier n sigma
    assert dash_duo.find_element(f"#{Run.THRESHOLD}").is_displayed()
    assert visibility(dash_duo, f"label[for='{Run.SCALE}']") == "visible"
    assert not dash_duo.find_element(f"#{Run.NO_OPTIONS}").is_displayed()
    caption = _text(dash_duo, Run.CAPTION)
    assert "scaled per event" in caption and "threshold: default" in caption

    # A TPC link carrying EMC's options: none offered, each named as not applied, the view drawn.
    open_page(dash_duo, f"/run/{RUN}/TPC?scale=0&threshold=0.5&outlier_n_sigma=3")
    until(lambda: (graph(dash_duo, "data.length") or 0) >= 1, timeout=15)
    dash_duo.wait_for_contains_text(f"#{Run.VIEW_ERROR}", "outlier_n_sigma: TPC has no such option")
    error = _text(dash_duo, Run.VIEW_ERROR)
    assert error.count("Not applied") == 3 and "Hot-channel threshold (threshold)" in error
    assert "Scale by number of events (scale): TPC has no such option" in error
    assert visibility(dash_duo, f"#{Run.VIEW_ERROR}") == "visible"
    assert _displayed(dash_duo, plugin_boxes) == []
    assert not dash_duo.find_element(f"#{Run.THRESHOLD}").is_displayed()
    # TPC has no event count and nothing per event: no scaling switch, and the caption names no option.
    assert not dash_duo.find_element(f"label[for='{Run.SCALE}']").is_displayed()
    assert visibility(dash_duo, f"#{Run.NO_OPTIONS}") == "visible"
    caption = _text(dash_duo, Run.CAPTION)
    assert "scal" not in caption and "threshold" not in caption, caption
    # The download links hold the view drawn (the route refuses options TPC lacks): the file is served.
    for link in (Run.DOWNLOAD_ROOT, Run.DOWNLOAD_PARQUET):
        href = dash_duo.find_element(f"#{link}").get_attribute("href")
        assert not any(option in href for option in ("scale", "threshold", "outlier")), href
        with urllib.request.urlopen(href, timeout=30) as answer:
            assert answer.status == 200 and len(answer.read()) > 100
    assert (
        not dash_duo.find_elements("label[for='run-opt-threshold']")
        or not dash_duo.find_element("label[for='run-opt-threshold']").is_displayed()
    )
    screenshot(dash_duo, "run_controls_tpc_options.png")
    assert dash_duo.get_logs() == []


def test_a_run_page_without_data_answers_404_with_a_page_saying_why(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    for path, reason in (
        ("/run/999999/EMC", "Run 999999 has no data; the newest runs are on /runs."),
        (f"/run/{RUN}/XYZ", "XYZ is not a configured subsystem"),
    ):
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(dash_duo.server_url.rstrip("/") + path, timeout=10)
        assert answer.value.code == 404 and reason in answer.value.read().decode()
        open_page(dash_duo, path)
        dash_duo.wait_for_text_to_equal("h1", "Page not found")
        dash_duo.wait_for_contains_text(".not-found-reason", reason)
        assert visibility(dash_duo, ".not-found-reason") == "visible"
    screenshot(dash_duo, "run_controls_404_no_data.png")

    # Reached inside the app (no server round trip for the page): the same words.
    open_page(dash_duo, "/runs")
    dash_duo.wait_for_contains_text(f"#runs-table-{RUN}", "EMC")
    dash_duo.driver.execute_script(
        "window.history.pushState({}, '', '/run/999999/EMC');"
        "window.dispatchEvent(new PopStateEvent('popstate'));"
    )
    dash_duo.wait_for_text_to_equal("h2", "Page not found")
    dash_duo.wait_for_contains_text(".not-found-reason", "Run 999999 has no data")


def test_a_slice_of_an_ended_run_offers_the_full_run_not_live(dash_duo, tmp_path):
    ended = EmulatedRun(tmp_path / "data", time.time() - 7200.0)
    for _ in range(N_SNAPSHOTS):
        ended.store_snapshot()
    _start(dash_duo, tmp_path, ended.store.data_dir)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}&min=1&max=2")
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "❚❚ Paused · fixed time slice")
    dash_duo.wait_for_text_to_equal(f"#{Run.BACK_TO_LIVE}", "Full run")
    assert visibility(dash_duo, f"#{Run.BACK_TO_LIVE}") == "visible"
    screenshot(dash_duo, "run_controls_ended_run_slice.png")
    dash_duo.find_element(f"#{Run.BACK_TO_LIVE}").click()
    until(lambda: "min=" not in current_search(dash_duo), timeout=10)
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "○ Run ended")
    until(lambda: not dash_duo.find_element(f"#{Run.BACK_TO_LIVE}").is_displayed(), timeout=5)
    # Paused by the user, an ended run has nothing to go back to: Resume is the way out.
    dash_duo.find_element(f"#{Run.PAUSE}").click()
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "❚❚ Paused by you")
    assert not dash_duo.find_element(f"#{Run.BACK_TO_LIVE}").is_displayed()
    assert dash_duo.get_logs() == []

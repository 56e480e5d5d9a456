"""Browser tests of the pages as a person uses them (dash_duo, headless Chromium): a deep link reproduces
the processing layer's numbers, back/forward step through choices, the run list pages and jumps, a live
update never closes an open menu, what matters is visible (not covered) at 1600x1000 and 1920x1080, a
dead server is said, and every control is reachable by keyboard. Screenshots go to artifacts/."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from dashboard.app import create_app
from dashboard.figures import MAX_MARKED_CHANNELS
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.dashboard.browser import (
    current_search,
    graph,
    open_page,
    screenshot,
    select,
    set_viewport,
    trace_y,
    type_into,
    visibility,
)
from tests.dashboard.emulated_run import (
    FASTOR_L0,
    FASTOR_L0_AMP_LABEL,
    FASTOR_L0_LABEL,
    FASTOR_L0_PLOT_TITLE,
    RUN,
    EmulatedRun,
)

pytestmark = pytest.mark.browser
N_SNAPSHOTS = 6
DEEP_LINK = f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}&min=2&max=4&threshold=0.2"


@pytest.fixture
def emc_run(tmp_path):
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS)
    return run


def _start(dash_duo, tmp_path, data_dir, refresh_ms: int = 500):
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "app-cache", status_refresh_ms=refresh_ms)
    app = create_app(settings)
    dash_duo.start_server(app)
    return app


def _hot_ids(dash_duo) -> list[int]:
    return [int(e.text) for e in dash_duo.find_elements("#run-check-results .hot-id")]


def _close(plotted, expected) -> bool:
    return (
        plotted is not None and len(plotted) == len(expected) and np.allclose(plotted, expected, rtol=1e-12)
    )


def test_a_deep_link_reproduces_the_view_and_back_forward_step_through_choices(dash_duo, tmp_path, emc_run):
    reference = ProcessingService(emc_run.store, tmp_path / "reference", ("EMC",))
    expected = reference.view(RUN, "EMC", Window(2, 4), ProcessingOptions(hot_channel_threshold=0.2))
    expected_l0 = expected.histogram(FASTOR_L0)
    expected_ids = expected_l0.checks[0].details["hot_channel_ids"]
    assert 0 < len(expected_ids) <= 24  # shown as pills, which the test reads

    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, DEEP_LINK)  # as if pasted into a new browser
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {RUN} · EMC")
    until(lambda: _close(trace_y(dash_duo, "content"), expected_l0.histogram.values()), timeout=15)
    until(lambda: _hot_ids(dash_duo) == expected_ids, timeout=10)
    dash_duo.wait_for_contains_text("#run-slice-description", expected.description)
    assert dash_duo.find_element("#run-group-value").text == "FastOR"
    assert dash_duo.find_element("#run-histogram-value").text == FASTOR_L0_LABEL
    assert dash_duo.find_element("#run-opt-threshold").get_attribute("value") == "0.2"
    assert dash_duo.find_element("#run-slice-min").get_attribute("value") == "2"
    dash_duo.wait_for_text_to_equal("#run-live-badge", "❚❚ Paused · fixed time slice")
    # The verdict under the plot is what a person sees first: on screen, not covered by anything.
    assert visibility(dash_duo, "#run-check-results .check-message") == "visible"
    assert visibility(dash_duo, "#run-snapshot-caption") == "visible"
    screenshot(dash_duo, "pages_deep_link_1600.png")
    # The caption links to the data API's URL of exactly this view: the same numbers, as JSON.
    api_href = dash_duo.find_element("#run-snapshot-caption a.api-link").get_attribute("href")
    assert "min=2" in api_href and "max=4" in api_href and "threshold=0.2" in api_href
    with urllib.request.urlopen(api_href, timeout=30) as answer:
        record = json.load(answer)
    np.testing.assert_allclose(record["values"], expected_l0.histogram.values_flow.tolist(), rtol=1e-12)
    set_viewport(dash_duo, 1920, 1080)
    until(lambda: graph(dash_duo, "_fullLayout.width") > 1300, timeout=5)
    assert visibility(dash_duo, "#run-check-results .check-message") == "visible"
    screenshot(dash_duo, "pages_deep_link_1920.png")

    # A new choice is a new history entry; back and forward restore each view exactly.
    select(dash_duo, "#run-histogram", FASTOR_L0_AMP_LABEL)
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_AMP_LABEL, timeout=10)
    assert "hist=EMCTRQA_histFastORL0Amp" in current_search(dash_duo)
    dash_duo.driver.back()
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=10)
    dash_duo.wait_for_text_to_equal("#run-histogram-value", FASTOR_L0_LABEL)
    until(lambda: _close(trace_y(dash_duo, "content"), expected_l0.histogram.values()), timeout=10)
    assert _hot_ids(dash_duo) == expected_ids
    dash_duo.driver.forward()
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_AMP_LABEL, timeout=10)
    dash_duo.wait_for_text_to_equal("#run-histogram-value", FASTOR_L0_AMP_LABEL)
    assert dash_duo.get_logs() == []


def test_a_threshold_flagging_thousands_stays_readable(dash_duo, tmp_path, emc_run):
    reference = ProcessingService(emc_run.store, tmp_path / "reference", ("EMC",))
    view = reference.view(RUN, "EMC", options=ProcessingOptions(hot_channel_threshold=1e-6))
    flagged = view.histogram(FASTOR_L0).checks[0].details["hot_channel_ids"]
    assert len(flagged) > 4000

    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=15)
    type_into(dash_duo, "#run-opt-threshold", "0.000001", enter=True)
    dash_duo.wait_for_contains_text("#run-check-results", f"{len(flagged):,} FastOR ids — show all")
    ringed = f"above threshold ({len(flagged):,}; {MAX_MARKED_CHANNELS} highest ringed)"
    until(lambda: trace_y(dash_duo, ringed) is not None, timeout=10)
    assert len(trace_y(dash_duo, ringed)) == MAX_MARKED_CHANNELS
    # One folded text block, not thousands of elements.
    assert len(dash_duo.find_elements("#run-check-results .hot-id")) == 0
    assert visibility(dash_duo, "#run-check-results .id-summary") == "visible"
    screenshot(dash_duo, "pages_threshold_thousands.png")
    dash_duo.find_element("#run-check-results .id-summary").click()
    assert dash_duo.find_element("#run-check-results .hot-ids-all").is_displayed()
    # The next threshold is applied at once.
    type_into(dash_duo, "#run-opt-threshold", "0.2", enter=True)
    until(lambda: len(_hot_ids(dash_duo)) > 0, timeout=10)
    assert dash_duo.get_logs() == []


def test_an_open_dropdown_stays_open_across_live_updates(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir, refresh_ms=300)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    dash_duo.wait_for_contains_text("#run-snapshot-caption", f"{N_SNAPSHOTS} snapshots in run")
    dash_duo.find_element("#run-histogram").click()
    until(lambda: dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
    emc_run.store_snapshot()  # new data while the menu is open
    time.sleep(2.0)  # several refresh periods
    assert dash_duo.find_elements(".dash-dropdown-options"), "a live update closed the open menu"
    assert f"{N_SNAPSHOTS} snapshots in run" in dash_duo.find_element("#run-snapshot-caption").text
    screenshot(dash_duo, "pages_dropdown_open_during_update.png")
    dash_duo.find_element("#run-histogram").send_keys(Keys.ESCAPE)
    until(lambda: not dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
    # Once the menu is closed, the update arrives.
    dash_duo.wait_for_contains_text("#run-snapshot-caption", f"{N_SNAPSHOTS + 1} snapshots in run")
    # Paused by the user: no update until "Back to live".
    dash_duo.find_element("#run-pause").click()
    dash_duo.wait_for_text_to_equal("#run-live-badge", "❚❚ Paused by you")
    emc_run.store_snapshot()
    time.sleep(1.5)
    assert f"{N_SNAPSHOTS + 1} snapshots in run" in dash_duo.find_element("#run-snapshot-caption").text
    dash_duo.find_element("#run-back-to-live").click()
    dash_duo.wait_for_text_to_equal("#run-live-badge", "● Live")
    dash_duo.wait_for_contains_text("#run-snapshot-caption", f"{N_SNAPSHOTS + 2} snapshots in run")
    assert dash_duo.get_logs() == []


def test_every_control_of_the_run_page_is_reached_by_keyboard(dash_duo, tmp_path, emc_run):
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=15)
    body = dash_duo.find_element("body")
    body.click()
    reached = []
    for _ in range(60):
        dash_duo.driver.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(
            dash_duo.driver.execute_script(
                "const e = document.activeElement; const owner = e.closest('[id]');"
                "return owner ? owner.id : e.tagName;"
            )
        )
    for component in (
        "run-group",
        "run-histogram",
        "run-log-x",
        "run-slice-range",
        "run-slice-min",
        "run-slice-apply",
        "run-slice-reset",
        "run-opt-scale",
        "run-opt-threshold",
        "run-download-png",
        "run-download-root",
    ):
        assert any(owner.startswith(component) for owner in reached), f"{component} not reached by Tab"
    # The threshold is usable by keyboard alone: type, Enter.
    type_into(dash_duo, "#run-opt-threshold", "0.2", enter=True)
    until(lambda: "threshold=0.2" in current_search(dash_duo), timeout=10)


@pytest.fixture
def many_runs(tmp_path, make_histogram):
    """61 finished runs, one small EMC snapshot each, an hour apart."""
    store = SnapshotStore(tmp_path / "data")
    events = make_histogram("EMCTRQA_histEvents", [np.arange(3.0)], np.array([10.0, 5.0]), class_name="TH1F")
    start = datetime.now(UTC) - timedelta(days=3)
    for index in range(61):
        meta = SnapshotMeta(400000 + index, "EMC", start + timedelta(hours=index), "B", "pp")
        store.write_snapshot(meta, [events])
    return store


def test_the_run_list_pages_and_the_jump_box_opens_a_run(dash_duo, tmp_path, many_runs):
    _start(dash_duo, tmp_path, many_runs.data_dir)
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, "/runs")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 1–50 of 61")
    rows = _row_ids(dash_duo)
    assert len(rows) == 50 and rows[0] == "runs-table-400060"
    first_row = dash_duo.find_element("#runs-table-400060").text
    assert "UTC" in first_row and ("CET" in first_row or "CEST" in first_row)
    screenshot(dash_duo, "pages_runs_1600.png")
    next(a for a in dash_duo.find_elements("#runs-pagination a") if a.text == "2").click()
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 51–61 of 61")
    until(lambda: len(_row_ids(dash_duo)) == 11, timeout=5)
    assert _row_ids(dash_duo)[-1] == "runs-table-400000"

    type_into(dash_duo, "#runs-jump-input", "123", enter=True)
    dash_duo.wait_for_contains_text("#runs-jump-error", "Run 123 has no data (newest: 400060)")
    type_into(dash_duo, "#runs-jump-input", "400007", enter=True)
    dash_duo.wait_for_text_to_equal("#run-title", "Run 400007 · EMC")
    assert dash_duo.driver.current_url.endswith("/run/400007/EMC")
    set_viewport(dash_duo, 1920, 1080)
    screenshot(dash_duo, "pages_run_after_jump_1920.png")
    assert dash_duo.get_logs() == []


def _row_ids(dash_duo) -> list[str]:
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#runs-table tbody tr')).map(r => r.id);"
    )


def test_unknown_path_shows_the_404_page_and_a_dead_server_is_said(dash_duo, tmp_path, emc_run):
    app = _start(dash_duo, tmp_path, emc_run.store.data_dir)
    open_page(dash_duo, "/no/such/page")
    dash_duo.wait_for_text_to_equal("h1", "Page not found")
    screenshot(dash_duo, "pages_404.png")

    open_page(dash_duo, "/runs")
    dash_duo.wait_for_contains_text(f"#runs-table-{RUN}", "ongoing")
    assert not dash_duo.find_element("#shell-connection-lost").is_displayed()
    port = int(dash_duo.server_url.rsplit(":", 1)[1].strip("/"))
    dash_duo.server.stop()
    until(lambda: dash_duo.find_element("#shell-connection-lost").is_displayed(), timeout=10)
    assert visibility(dash_duo, "#shell-connection-lost") == "visible"
    screenshot(dash_duo, "pages_connection_lost.png")
    dash_duo.server.start(app, port=port)
    until(lambda: not dash_duo.find_element("#shell-connection-lost").is_displayed(), timeout=10)


def test_a_slow_reset_mode_sum_runs_in_the_background_with_progress(dash_duo, tmp_path):
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS, merger_reset=True)
    ids = [key.snapshot_id for key in run.store.snapshot_keys(RUN, "EMC")]
    values = sum(run.store.read_histogram(i, FASTOR_L0).values() for i in ids)
    events = sum(run.store.read_histogram(i, "EMCTRQA_histEvents").values()[0] for i in ids)
    settings = Settings(
        data_dir=run.store.data_dir,
        cache_dir=tmp_path / "app-cache",
        status_refresh_ms=500,
        dash_background_min_snapshots=3,  # six increments to sum: slow work for this test
    )
    dash_duo.start_server(create_app(settings))
    # Record whether the progress box was ever shown: the job may finish between two polls.
    dash_duo.driver.execute_script(
        "window.__progressSeen = false; new MutationObserver(() => {"
        " const box = document.getElementById('run-heavy-box');"
        " if (box && box.className.includes('heavy-box')) { window.__progressSeen = true; } })"
        ".observe(document.body, {subtree: true, attributes: true, childList: true});"
    )
    dash_duo.driver.execute_script(
        f"window.history.pushState({{}}, '', '/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}');"
        "window.dispatchEvent(new PopStateEvent('popstate'));"
    )
    try:
        until(lambda: _close(trace_y(dash_duo, "content"), values / events), timeout=30)
    finally:
        screenshot(dash_duo, "pages_background_job.png")
    assert dash_duo.driver.execute_script("return window.__progressSeen;")
    dash_duo.wait_for_contains_text("#run-snapshot-caption", "reset mode")
    assert dash_duo.get_logs() == []

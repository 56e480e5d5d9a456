"""The trending and alarms pages in headless Chromium, on a store the QC service itself checked: what a
person sees (numbers, bands, rows; visible, not covered, inside the viewport at 1600x1000 and 1920x1080),
that acknowledge / mute / threshold changes reach the QC layer's stored state, and no console errors.
Screenshots go to artifacts/ for a person to look at."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from dashboard.app import create_app
from dashboard.ids import Alarms, Trending
from dashboard.pages.trending import REFRESH_MS
from pipeline.detectors.emc import EVENTS_HISTOGRAM
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.alarm_config import load_alarm_config, set_threshold, threshold_changes
from pipeline.settings import Settings
from tests.dashboard.browser import (
    SIZES,
    console_errors,
    open_page,
    plot,
    screenshot,
    set_viewport,
    visibility,
)
from tests.dashboard.qc_store import FASTOR_L0, FAULT_RUN, FIRST_RUN, record_and_check
from tests.display_names import FASTOR_L0_LABEL

pytestmark = pytest.mark.browser
FILLS_ITS_BOX = "Math.abs(g._fullLayout.width - g.parentElement.getBoundingClientRect().width) < 2"

FASTOR_L1 = "EMCTRQA_histFastORL1"
TREND_PATH = (
    f"/trending/EMC?run={FAULT_RUN}&hist={FASTOR_L0}&quantity=hot_channels&content=cumulative&axis=time"
)


def _start(dash_duo, data_dir, tmp_path):
    dash_duo.start_server(create_app(Settings(data_dir=data_dir, cache_dir=tmp_path / "cache")))


def test_trending_page_shows_the_series_with_its_band_and_switches_to_runs(dash_duo, qc_data_dir, tmp_path):
    _start(dash_duo, qc_data_dir, tmp_path)
    open_page(dash_duo, TREND_PATH)
    # The QC service's hot-channel counts: the four known hot FastORs, a fifth from minute 2.5.
    until(lambda: plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].y)") == [4, 4, 5, 5], timeout=20)
    assert plot(dash_duo, Trending.GRAPH, "g._fullLayout.xaxis.type") == "date"
    bands = plot(
        dash_duo, Trending.GRAPH, "g._fullLayout.shapes.filter(s => s.type === 'rect').map(s => s.y1)"
    )
    assert bands == [4]  # the accepted range of new_hot_fastor ends at 4
    dash_duo.wait_for_contains_text(
        f"#{Trending.LIMITS}", "new_hot_fastor (error, BetweenValues): accepted 0 – 4"
    )
    dash_duo.wait_for_contains_text(f"#{Trending.SUMMARY}", "4 points · last 5 ± 0")
    for width, height in SIZES:
        set_viewport(dash_duo, width, height)
        for selector in (f"#{Trending.GRAPH} .main-svg", f"#{Trending.SUMMARY}", f"#{Trending.DOWNLOAD_CSV}"):
            # Plotly re-lays out after a resize: poll, with a deadline.
            until(
                lambda selector=selector: (
                    visibility(dash_duo, selector, scroll="center", probe="centre") == "visible"
                ),
                timeout=5,
            )
        # The plot fills its card once Plotly has followed the resize.
        until(lambda: plot(dash_duo, Trending.GRAPH, FILLS_ITS_BOX), timeout=10)
        dash_duo.driver.execute_script("window.scrollTo(0, 0);")
        screenshot(dash_duo, f"qc_trending_time_{width}x{height}.png")

    # The CSV holds the plotted numbers.
    href = dash_duo.find_element(f"#{Trending.DOWNLOAD_CSV}").get_attribute("href")
    lines = requests.get(href, timeout=10).text.strip().splitlines()
    assert lines[0].endswith("value,error") and [float(line.split(",")[-2]) for line in lines[1:]] == [
        4,
        4,
        5,
        5,
    ]

    # Across runs: one value per run (its last cumulative count), x = run number, in the URL.
    next(e for e in dash_duo.find_elements(f"#{Trending.AXIS} label") if e.text == "across runs").click()
    until(lambda: "axis=runs" in dash_duo.driver.current_url, timeout=10)
    until(lambda: plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].y)") == [4, 5], timeout=20)
    assert plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].x)") == [str(FIRST_RUN), str(FAULT_RUN)]
    assert "content=cumulative" in dash_duo.driver.current_url
    screenshot(dash_duo, "qc_trending_runs_1920x1080.png")
    # Back restores the time view.
    dash_duo.driver.back()
    until(lambda: plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].y)") == [4, 4, 5, 5], timeout=20)
    assert console_errors(dash_duo) == []


def _row(state: str, histogram: str) -> str:
    return f"#alarms-section-{state} tr.alarm-{state}"


def _stored(data_dir, histogram):
    frame = AlarmBook(data_dir).alarms()
    return frame[frame["histogram"] == histogram].iloc[0]


def test_alarms_page_lists_alarms_and_acknowledge_mute_and_threshold_change_are_stored(
    dash_duo, qc_data_dir, tmp_path
):
    _start(dash_duo, qc_data_dir, tmp_path)
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, "/alarms")
    l0_id, l1_id = _stored(qc_data_dir, FASTOR_L0)["alarm_id"], _stored(qc_data_dir, FASTOR_L1)["alarm_id"]
    dash_duo.wait_for_element(f"#alarm-row-{l0_id}")
    row = dash_duo.find_element(f"#alarm-row-{l0_id}")
    assert "new_hot_fastor" in row.text and str(FAULT_RUN) in row.text and "5 outside [0, 4]" in row.text
    # The shift crew reads display names, in the histogram column and the message; the raw name is the
    # link's tooltip.
    message = row.find_element("css selector", ".alarm-message").text
    assert message == f"cumulative hot_channels of {FASTOR_L0_LABEL}: 5 outside [0, 4]"
    assert FASTOR_L0 not in row.text
    link = row.find_element("css selector", ".alarm-histogram-link")
    assert (link.text, link.get_attribute("title")) == (FASTOR_L0_LABEL, FASTOR_L0)
    assert link.get_attribute("href").endswith(f"/run/{FAULT_RUN}/EMC?group=FastOR&hist={FASTOR_L0}")
    trend = row.find_element("css selector", ".alarm-trend-link").get_attribute("href")
    assert trend.endswith(
        f"/trending/EMC?run={FAULT_RUN}&hist={FASTOR_L0}&quantity=hot_channels&content=cumulative&axis=time"
    )
    assert visibility(dash_duo, f"#alarm-row-{l0_id} button", scroll="center", probe="centre") == "visible"
    screenshot(dash_duo, "qc_alarms_active_1600x1000.png")

    # Without a name nothing happens, and the page says why.
    ack = f"#alarm-row-{l0_id} button"
    dash_duo.find_element(ack).click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "Type your name")
    assert _stored(qc_data_dir, FASTOR_L0)["state"] == "active"

    dash_duo.find_element(f"#{Alarms.WHO}").send_keys("Alice Shifter")
    dash_duo.find_element(ack).click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "acknowledged by Alice Shifter")
    until(lambda: _stored(qc_data_dir, FASTOR_L0)["state"] == "acknowledged", timeout=10)
    assert _stored(qc_data_dir, FASTOR_L0)["acknowledged_by"] == "Alice Shifter"
    dash_duo.wait_for_element(f"#alarms-section-acknowledged #alarm-row-{l0_id}", timeout=10)

    # Mute the other one for 4 hours.
    Select(dash_duo.find_element(f"#alarm-row-{l1_id} select")).select_by_visible_text("4 hours")
    before = datetime.now(UTC)
    next(b for b in dash_duo.find_elements(f"#alarm-row-{l1_id} button") if b.text == "Mute").click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "muted until")
    until(lambda: _stored(qc_data_dir, FASTOR_L1)["state"] == "muted", timeout=10)
    until_utc = _stored(qc_data_dir, FASTOR_L1)["muted_until_utc"]
    assert (
        before + timedelta(hours=4) - timedelta(seconds=5)
        < until_utc
        < datetime.now(UTC) + timedelta(hours=4)
    )
    dash_duo.wait_for_element(f"#alarms-section-muted #alarm-row-{l1_id}", timeout=10)

    # An expert raises the hot-channel limit: a bad value is named, a good one recorded with who/old/new.
    Select(dash_duo.find_element(f"#{Alarms.PARAMETER}")).select_by_value("EMC|new_hot_fastor|max")
    dash_duo.find_element(f"#{Alarms.VALUE}").send_keys("abc")
    dash_duo.find_element(f"#{Alarms.CHANGE}").click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "“abc” is not a number")
    assert threshold_changes(qc_data_dir) == []
    value_box = dash_duo.find_element(f"#{Alarms.VALUE}")
    value_box.clear()
    value_box.send_keys("6")
    dash_duo.find_element(f"#{Alarms.CHANGE}").click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "new_hot_fastor · max: 4 → 6")
    changes = threshold_changes(qc_data_dir)
    assert [(c.who, c.subsystem, c.alarm, c.parameter, c.old, c.new) for c in changes] == [
        ("Alice Shifter", "EMC", "new_hot_fastor", "max", 4, 6)
    ]
    dash_duo.wait_for_contains_text(f"#{Alarms.CHANGE_LOG}", "Alice Shifter")
    for width, height in SIZES:
        set_viewport(dash_duo, width, height)
        until(
            lambda: (
                visibility(
                    dash_duo, f"#{Alarms.CHANGE_LOG} tr.threshold-change", scroll="center", probe="centre"
                )
                == "visible"
            ),
            timeout=5,
        )
        dash_duo.driver.execute_script("window.scrollTo(0, 0);")
        screenshot(dash_duo, f"qc_alarms_after_actions_{width}x{height}.png")
    assert console_errors(dash_duo) == []


def _last_seen(dash_duo, alarm_id: str) -> str:
    return dash_duo.find_element(f"#alarm-row-{alarm_id} td:nth-child(8)").text


def test_a_live_count_leaves_the_picked_mute_duration_and_mute_applies_it(dash_duo, qc_data_dir, tmp_path):
    _start(dash_duo, qc_data_dir, tmp_path)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, "/alarms")
    l0_id = _stored(qc_data_dir, FASTOR_L0)["alarm_id"]
    seen_before = int(_stored(qc_data_dir, FASTOR_L0)["occurrences"])
    dash_duo.wait_for_element(f"#alarm-row-{l0_id}")
    dash_duo.find_element(f"#{Alarms.WHO}").send_keys("Alice Shifter")
    chooser = f"#alarm-row-{l0_id} select"
    Select(dash_duo.find_element(chooser)).select_by_visible_text("24 hours")
    # The run goes on: the QC service sees the hot FastOR again, and the page shows the new count...
    record_and_check(qc_data_dir, {1: (4.5,)})
    assert int(_stored(qc_data_dir, FASTOR_L0)["occurrences"]) == seen_before + 1
    until(lambda: _last_seen(dash_duo, l0_id).endswith(f"({seen_before + 1}×)"), timeout=20)
    # ...and the duration picked stays what the person sees and what Mute applies.
    shown = Select(dash_duo.find_element(chooser)).first_selected_option
    assert (shown.text, shown.get_attribute("value")) == ("24 hours", "1440")
    assert visibility(dash_duo, chooser, scroll="center", probe="centre") == "visible"
    screenshot(dash_duo, "qc_alarms_count_updated_1920x1080.png")
    # Another alarm changes state: the tables are drawn anew, and the picked duration is still shown.
    l1_id = _stored(qc_data_dir, FASTOR_L1)["alarm_id"]
    next(b for b in dash_duo.find_elements(f"#alarm-row-{l1_id} button") if b.text == "Acknowledge").click()
    dash_duo.wait_for_element(f"#alarms-section-acknowledged #alarm-row-{l1_id}", timeout=10)
    shown = Select(dash_duo.find_element(chooser)).first_selected_option
    assert (shown.text, shown.get_attribute("value")) == ("24 hours", "1440")
    before = datetime.now(UTC)
    next(b for b in dash_duo.find_elements(f"#alarm-row-{l0_id} button") if b.text == "Mute").click()
    dash_duo.wait_for_contains_text(f"#{Alarms.MESSAGE}", "muted until")
    until(lambda: _stored(qc_data_dir, FASTOR_L0)["state"] == "muted", timeout=10)
    until_utc = _stored(qc_data_dir, FASTOR_L0)["muted_until_utc"]
    day = timedelta(hours=24)
    assert before + day - timedelta(seconds=5) < until_utc < datetime.now(UTC) + day
    assert console_errors(dash_duo) == []


def test_a_firing_alarms_limit_is_drawn_and_the_run_menu_follows_a_new_run(dash_duo, qc_data_dir, tmp_path):
    # The accepted range [0, 2] lies below every point (4 and 5): the alarm fires.
    set_threshold(qc_data_dir, load_alarm_config(), "EMC", "new_hot_fastor", "max", 2, "Expert")
    _start(dash_duo, qc_data_dir, tmp_path)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, TREND_PATH)
    until(lambda: plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].y)") == [4, 4, 5, 5], timeout=20)
    low, high = plot(dash_duo, Trending.GRAPH, "g._fullLayout.yaxis.range")
    assert low < 2 < 5 < high
    bands = plot(
        dash_duo, Trending.GRAPH, "g._fullLayout.shapes.filter(s => s.type === 'rect').map(s => [s.y0, s.y1])"
    )
    assert len(bands) == 1 and bands[0][1] == 2
    dashed = plot(
        dash_duo, Trending.GRAPH, "g._fullLayout.shapes.filter(s => s.type === 'line').map(s => s.y0)"
    )
    assert dashed == [2]
    # Drawn where a person sees it: the band's rectangle has a height on screen inside the plot.
    height = dash_duo.driver.execute_script(
        f"var r = document.querySelector('#{Trending.GRAPH} .shapelayer path, #{Trending.GRAPH} .layer-below"
        " .shapelayer path'); return r ? r.getBoundingClientRect().height : 0;"
    )
    assert height > 10
    dash_duo.driver.execute_script("window.scrollTo(0, 0);")
    screenshot(dash_duo, "qc_trending_firing_limit_1920x1080.png")

    # Run 300002 starts while the Run menu is open: it joins the menu, which stays open, the choice stays.
    dash_duo.find_element(f"#{Trending.RUN}").click()
    until(lambda: dash_duo.find_elements(".dash-dropdown-option"), timeout=5)
    new_run = FAULT_RUN + 1
    record_and_check(qc_data_dir, {2: (1, 2, 3)})
    until(
        lambda: (
            [o.text for o in dash_duo.find_elements(".dash-dropdown-option")]
            == [str(new_run), str(FAULT_RUN), str(FIRST_RUN)]
        ),
        timeout=20,
    )
    assert dash_duo.find_elements(".dash-dropdown-options")
    screenshot(dash_duo, "qc_trending_new_run_in_open_menu_1920x1080.png")
    dash_duo.find_element(f"#{Trending.RUN}").send_keys(Keys.ESCAPE)
    until(lambda: not dash_duo.find_elements(".dash-dropdown-options"), timeout=5)
    assert dash_duo.find_element(f"#{Trending.RUN}-value").text == str(FAULT_RUN)
    assert f"run={FAULT_RUN}" in dash_duo.driver.current_url
    # The page says the run shown has ended, and links to the same series in the newer one.
    dash_duo.wait_for_contains_text(
        f"#{Trending.NEWER_RUN}", f"Run {FAULT_RUN} has ended: run {new_run} is newer.", timeout=20
    )
    assert visibility(dash_duo, f"#{Trending.NEWER_RUN} a", scroll="center", probe="centre") == "visible"
    dash_duo.driver.execute_script("window.scrollTo(0, 0);")
    screenshot(dash_duo, "qc_trending_newer_run_1920x1080.png")
    dash_duo.find_element(f"#{Trending.NEWER_RUN} a").click()
    until(lambda: f"run={new_run}" in dash_duo.driver.current_url, timeout=10)
    until(lambda: dash_duo.find_element(f"#{Trending.RUN}-value").text == str(new_run), timeout=10)
    assert console_errors(dash_duo) == []


def test_a_trend_url_with_a_run_without_trends_says_what_is_shown_instead(dash_duo, qc_data_dir, tmp_path):
    _start(dash_duo, qc_data_dir, tmp_path)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, TREND_PATH.replace(f"run={FAULT_RUN}", "run=999999"))
    until(lambda: plot(dash_duo, Trending.GRAPH, "Array.from(g._fullData[0].y)") == [4, 4, 5, 5], timeout=20)
    until(lambda: f"run={FAULT_RUN}" in dash_duo.driver.current_url, timeout=10)
    dash_duo.wait_for_contains_text(f"#{Trending.NOTE}", "Not as asked: run 999999 has no EMC trends.")
    time.sleep(2 * REFRESH_MS / 1000)  # the note outlives the URL rewrite and the refresh ticks
    assert f"Showing run {FAULT_RUN}" in dash_duo.find_element(f"#{Trending.NOTE}").text
    assert visibility(dash_duo, f"#{Trending.NOTE}", scroll="center", probe="centre") == "visible"
    screenshot(dash_duo, "qc_trending_not_as_asked_1920x1080.png")
    # The next choice is what the person asked for: the note goes.
    next(e for e in dash_duo.find_elements(f"#{Trending.AXIS} label") if e.text == "across runs").click()
    until(lambda: "axis=runs" in dash_duo.driver.current_url, timeout=10)
    until(lambda: not dash_duo.find_element(f"#{Trending.NOTE}").is_displayed(), timeout=10)
    assert console_errors(dash_duo) == []


def test_an_interval_only_quantity_across_runs_says_why_it_has_no_points(dash_duo, qc_data_dir, tmp_path):
    _start(dash_duo, qc_data_dir, tmp_path)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, f"/trending/EMC?hist={EVENTS_HISTOGRAM}&quantity=events_per_minute&axis=runs")
    why = "events_per_minute exists only for interval content and across runs each run gives its last"
    dash_duo.wait_for_contains_text(f"#{Trending.SUMMARY}", why, timeout=20)
    until(lambda: why in plot(dash_duo, Trending.GRAPH, "g._fullLayout.annotations[0].text"), timeout=10)
    assert "has not trended" not in dash_duo.find_element(f"#{Trending.SUMMARY}").text
    assert visibility(dash_duo, f"#{Trending.SUMMARY}", scroll="center", probe="centre") == "visible"
    dash_duo.driver.execute_script("window.scrollTo(0, 0);")
    screenshot(dash_duo, "qc_trending_interval_only_across_runs_1920x1080.png")
    assert console_errors(dash_duo) == []

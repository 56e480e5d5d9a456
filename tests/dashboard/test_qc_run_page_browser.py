"""The run page's quality-control pieces in headless Chromium, on a store the QC service checked: the
aggregated quality and the run's alarms above the plot, the reference overlay (normalised to the same
number of events) and its ratio with the right numbers, marking a run as the reference, and the
hot-channel history with the new channel marked. Visible, not covered, no console errors."""

from __future__ import annotations

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import RunQC
from dashboard.layout import grid_entry
from dashboard.qc_links import run_page_url
from dashboard.url_state import ViewQuery
from pipeline.detectors import plugin_for
from pipeline.detectors.base import count_events
from pipeline.qc.references import get_reference, set_reference
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.dashboard.browser import (
    SIZES,
    console_errors,
    open_page,
    plot,
    screenshot,
    set_viewport,
    visibility,
)
from tests.dashboard.qc_store import FASTOR_L0, FAULT_RUN, FIRST_RUN, HOT_FASTOR_ID

pytestmark = pytest.mark.browser

CLUSTER_ENERGY = "hClusterEneEMCAL"  # 1D, not scaled by events


def _newest(data_dir, run):
    store = SnapshotStore(data_dir)
    _, histograms = store.read_snapshot(store.latest_snapshot_id(run, "EMC"))
    return histograms[CLUSTER_ENERGY], count_events(plugin_for("EMC"), histograms)


def _text(dash_duo, selector):
    return dash_duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector
    )


def test_run_page_shows_quality_alarms_reference_overlay_and_history(dash_duo, qc_data_dir, tmp_path):
    set_reference(qc_data_dir, "EMC", "pp", FIRST_RUN, "expert")
    dash_duo.start_server(create_app(Settings(data_dir=qc_data_dir, cache_dir=tmp_path / "cache")))
    set_viewport(dash_duo, 1600, 1000)
    # The runs page: each subsystem link in its aggregated quality's colour, saying so on hover.
    open_page(dash_duo, "/runs")
    link = f"#runs-table-{FAULT_RUN} .subsystem-links a"
    # The table is redrawn once by its refresh callback: read it by selector, polling.
    read = "const e = document.querySelector(arguments[0]); return e ? [e.className, e.title] : null;"
    until(lambda: (dash_duo.driver.execute_script(read, link) or ["", ""])[1] == "EMC quality now: Bad", 20)
    assert "btn-danger" in dash_duo.driver.execute_script(read, link)[0]
    dash_duo.wait_for_contains_text(".quality-legend", "red Bad")
    until(lambda: visibility(dash_duo, link, scroll="center", probe="centre") == "visible", timeout=5)
    screenshot(dash_duo, "qc_runs_page_quality_1600x1000.png")

    open_page(dash_duo, run_page_url(FAULT_RUN, "EMC", FASTOR_L0))

    # Above the plot: EMC and the FastOR group are Bad, and the new-hot-FastOR alarm of this run is there.
    until(lambda: _text(dash_duo, "#runqc-subsystem-quality") == "EMC · Bad", timeout=20)
    assert _text(dash_duo, "#runqc-group-quality") == "FastOR · Bad"
    dash_duo.wait_for_contains_text(
        f"#{RunQC.STRIP}", "Alarm new_hot_fastor (active) FastOR L0 (hits with ADC > 0)"
    )
    assert dash_duo.find_elements(".qc-alarm-here")  # the alarm on the shown group is marked as such
    # History: the injected hot FastOR is new in this run; the emulator's built-in ones were seen before.
    dash_duo.wait_for_contains_text(f"#{RunQC.HISTORY}", "new")
    new_rows = [row.text.split() for row in dash_duo.find_elements(f"#{RunQC.HISTORY} tr.channel-new")]
    assert ["Hot", "FastORs", str(HOT_FASTOR_ID)] in [row[:3] for row in new_rows]  # the check's title
    for width, height in SIZES:
        set_viewport(dash_duo, width, height)
        for selector in ("#runqc-subsystem-quality", "#runqc-group-quality", ".qc-alarm-here a"):
            until(
                lambda selector=selector: (
                    visibility(dash_duo, selector, scroll=None, probe="centre") == "visible"
                ),
                timeout=5,
            )
        screenshot(dash_duo, f"qc_run_page_strip_{width}x{height}.png")

    # A grid says what its members' checks are (the QC verdicts its strip aggregates), never "no checks".
    grid = "FastOR L0 (hits with ADC > 0)"
    open_page(dash_duo, f"/run/{FAULT_RUN}/EMC" + ViewQuery(group=grid, hist=grid_entry(grid)).to_search())
    dash_duo.wait_for_contains_text(
        ".grid-checks-header", "Checks of the 20 histograms in this grid", timeout=20
    )
    assert "No checks" not in _text(dash_duo, ".grid-checks")
    assert _text(dash_duo, ".grid-checks-more").endswith(" Good")
    until(lambda: visibility(dash_duo, ".grid-checks-header", scroll="center") == "visible", timeout=5)
    screenshot(dash_duo, "qc_run_page_grid_checks_1920x1080.png")

    # Reference overlay of a 1D histogram: the reference normalised to this run's events, and the ratio.
    open_page(dash_duo, run_page_url(FAULT_RUN, "EMC", CLUSTER_ENERGY))
    until(lambda: plot(dash_duo, RunQC.REFERENCE_GRAPH, "g._fullData.length") == 3, timeout=20)
    current, n_events = _newest(qc_data_dir, FAULT_RUN)
    reference, reference_events = _newest(qc_data_dir, FIRST_RUN)
    expected_reference = reference.values() * n_events / reference_events
    drawn_current = np.array(
        plot(dash_duo, RunQC.REFERENCE_GRAPH, "Array.from(g._fullData[0].y)"), dtype=float
    )
    drawn_reference = np.array(
        plot(dash_duo, RunQC.REFERENCE_GRAPH, "Array.from(g._fullData[1].y)"), dtype=float
    )
    drawn_ratio = np.array(
        plot(dash_duo, RunQC.REFERENCE_GRAPH, "g._fullData[2].y.map(v => v === null ? NaN : v)"), dtype=float
    )
    np.testing.assert_allclose(drawn_current, current.values())
    np.testing.assert_allclose(drawn_reference, expected_reference, rtol=1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_ratio = np.where(expected_reference != 0, current.values() / expected_reference, np.nan)
    np.testing.assert_allclose(drawn_ratio, expected_ratio, rtol=1e-9)
    assert drawn_reference.sum() == pytest.approx(reference.values().sum() * n_events / reference_events)
    dash_duo.wait_for_contains_text(f"#{RunQC.REFERENCE_INFO}", f"run {FIRST_RUN}, set by expert")
    until(
        lambda: (
            visibility(dash_duo, f"#{RunQC.REFERENCE_GRAPH} .main-svg", scroll="center", probe="centre")
            == "visible"
        ),
        timeout=5,
    )
    screenshot(dash_duo, "qc_run_page_reference_1920x1080.png")

    # An expert marks this run as the reference: stored with who.
    button = dash_duo.find_element(f"#{RunQC.SET_REFERENCE}")
    assert button.text == f"Mark run {FAULT_RUN} as the reference for EMC (pp)"
    dash_duo.find_element(f"#{RunQC.REFERENCE_WHO}").send_keys("Erin Expert")
    button.click()
    dash_duo.wait_for_contains_text(f"#{RunQC.REFERENCE_MESSAGE}", f"Run {FAULT_RUN} is now the reference")
    stored = get_reference(qc_data_dir, "EMC", "pp")
    assert (stored.run, stored.set_by) == (FAULT_RUN, "Erin Expert")
    dash_duo.wait_for_contains_text(f"#{RunQC.REFERENCE_INFO}", "this run")
    assert console_errors(dash_duo) == []

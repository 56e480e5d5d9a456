"""Browser tests of groups, time slices, processing options and check results (dash_duo, headless
Chromium), on an emulated EMC run whose hot FastORs are known. What the page plots is compared with
what the ProcessingService computes for the same window and options."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from pipeline.emulator import HOT_FASTOR_IDS
from pipeline.processing.options import ProcessingOptions
from pipeline.processing.service import ProcessingService
from pipeline.processing.timeslice import Window
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from tests.dashboard.browser import (
    GRAPH_JS,
    choose_radio,
    graph,
    open_page,
    radio_choice,
    screenshot,
    select,
    trace_y,
    type_into,
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

FASTOR_GROUP = "FastOR"
EVENTS = "EMCTRQA_histEvents"
N_SNAPSHOTS = 6


@pytest.fixture
def emc_run(tmp_path):
    # Started so that its newest snapshot is recent: the run is live.
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS)
    return run


def _start(dash_duo, tmp_path: Path, data_dir: Path, path: str = f"/run/{RUN}/EMC") -> None:
    settings = Settings(data_dir=data_dir, cache_dir=tmp_path / "app-cache", status_refresh_ms=500)
    dash_duo.start_server(create_app(settings))
    open_page(dash_duo, path)
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {path.split('/')[2]} · EMC")


def _hot_ids(dash_duo) -> list[int]:
    return [int(e.text) for e in dash_duo.find_elements("#run-check-results .hot-id")]


def test_groups_slices_options_and_checks(dash_duo, tmp_path, emc_run):
    reference = ProcessingService(emc_run.store, tmp_path / "reference-cache", ("EMC", "TPC", "HLT"))
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    dash_duo.wait_for_text_to_equal("#run-live-badge", "● Live")
    # The plug-in's first group is the default.
    dash_duo.wait_for_text_to_equal("#run-group-value", "FEE vs TRU")
    dash_duo.wait_for_contains_text("#run-slice-description", "Full run")

    # Navigate by the plug-in's groups; the list shows pretty names.
    select(dash_duo, "#run-group", FASTOR_GROUP)
    select(dash_duo, "#run-histogram", FASTOR_L0_LABEL)
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=10)

    # The check at the default threshold finds exactly the injected hot FastORs, all of them known ones.
    dash_duo.wait_for_contains_text("#run-check-results", "4 hot FastORs (4 known) above 0.01")
    assert _hot_ids(dash_duo) == sorted(HOT_FASTOR_IDS)
    dash_duo.wait_for_contains_text("#run-check-results", "per-histogram default")
    assert (
        dash_duo.find_element("#run-opt-threshold").get_attribute("placeholder") == "default 0.01 per event"
    )
    full_run = reference.view(RUN, "EMC").histogram(FASTOR_L0)
    until(lambda: trace_y(dash_duo, "content") is not None, timeout=10)
    np.testing.assert_allclose(trace_y(dash_duo, "content"), full_run.histogram.values(), rtol=1e-12)
    assert graph(dash_duo, "layout.yaxis.title.text") == "entries / events"
    screenshot(dash_duo, "slices_fastor_default.png")

    # A threshold of the user's own: the list changes on Enter, no page reload.
    dash_duo.driver.execute_script("window.__same_page = true;")
    custom = reference.view(RUN, "EMC", options=ProcessingOptions(hot_channel_threshold=0.2))
    expected_ids = custom.histogram(FASTOR_L0).checks[0].details["hot_channel_ids"]
    assert 0 < len(expected_ids) < len(HOT_FASTOR_IDS)  # the test must see the list change
    type_into(dash_duo, "#run-opt-threshold", "0.2", enter=True)
    dash_duo.wait_for_contains_text("#run-check-results", f"{len(expected_ids)} hot FastOR")
    assert _hot_ids(dash_duo) == expected_ids
    dash_duo.wait_for_contains_text("#run-check-results", "your value")
    assert dash_duo.driver.execute_script("return window.__same_page === true;")

    # A bad value names the field and leaves the last good plot on screen.
    plotted_before = trace_y(dash_duo, "content")
    type_into(dash_duo, "#run-opt-threshold", "-1", enter=True)
    dash_duo.wait_for_contains_text("#run-options-error", "hot_channel_threshold")
    assert "Traceback" not in dash_duo.find_element("#run-options-error").text
    assert graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE
    assert trace_y(dash_duo, "content") == plotted_before
    assert _hot_ids(dash_duo) == expected_ids
    type_into(dash_duo, "#run-opt-threshold", "abc", enter=True)
    dash_duo.wait_for_contains_text("#run-options-error", "must be a number")
    screenshot(dash_duo, "slices_options_error.png")
    type_into(dash_duo, "#run-opt-threshold", "", enter=True)
    dash_duo.wait_for_text_to_equal("#run-options-error", "")
    dash_duo.wait_for_contains_text("#run-check-results", "4 hot FastORs (4 known) above 0.01")

    # A time slice, minutes 2-4, typed into the boxes: the slider follows, Apply shows the slice.
    type_into(dash_duo, "#run-slice-min", "2")
    type_into(dash_duo, "#run-slice-max", "4")
    until(lambda: _slider_thumbs(dash_duo) == ["2", "4"], timeout=5)
    dash_duo.find_element("#run-slice-apply").click()
    sliced = reference.view(RUN, "EMC", Window(2, 4))
    dash_duo.wait_for_contains_text("#run-slice-description", sliced.description)
    assert sliced.description == "requested 2-4 min, returned 2.0-4.0 min"  # snapshots at minutes 2 and 4
    until(lambda: "time slice 2.0–4.0 min" in (graph(dash_duo, "layout.title.subtitle.text") or ""), 10)
    np.testing.assert_allclose(
        trace_y(dash_duo, "content"), sliced.histogram(FASTOR_L0).histogram.values(), rtol=1e-12
    )
    slice_hot_ids = sliced.histogram(FASTOR_L0).checks[0].details["hot_channel_ids"]
    until(lambda: _hot_ids(dash_duo) == slice_hot_ids, timeout=5)
    screenshot(dash_duo, "slices_fastor_slice_2_4.png")

    # The run goes on: the slider's end grows, the slice and its plot stay exactly as they are.
    plotted_slice = trace_y(dash_duo, "content")
    emc_run.store_snapshot()
    until(lambda: graph(dash_duo, "layout") is not None and _slider_max(dash_duo) == N_SNAPSHOTS, 10)
    time.sleep(1.2)  # two more refreshes
    assert _slider_thumbs(dash_duo) == ["2", "4"]
    assert dash_duo.find_element("#run-slice-min").get_attribute("value") == "2"
    assert trace_y(dash_duo, "content") == plotted_slice
    dash_duo.wait_for_contains_text("#run-slice-description", sliced.description)

    # Bad slice bounds are named and change nothing.
    type_into(dash_duo, "#run-slice-min", "5")
    type_into(dash_duo, "#run-slice-max", "3")
    dash_duo.find_element("#run-slice-apply").click()
    dash_duo.wait_for_contains_text("#run-options-error", "min_minutes")
    assert trace_y(dash_duo, "content") == plotted_slice

    # Full run: back to the whole (grown) run, following live again.
    dash_duo.find_element("#run-slice-reset").click()
    dash_duo.wait_for_contains_text("#run-slice-description", "Full run")
    dash_duo.wait_for_text_to_equal("#run-options-error", "")
    until(lambda: _slider_thumbs(dash_duo) == ["0", str(N_SNAPSHOTS)], timeout=5)
    grown = reference.view(RUN, "EMC").histogram(FASTOR_L0).histogram.values()
    until(lambda: _close(trace_y(dash_duo, "content"), grown), timeout=10)
    emc_run.store_snapshot()
    newest = ProcessingService(emc_run.store, tmp_path / "c2", ("EMC",)).view(RUN, "EMC")
    until(lambda: _close(trace_y(dash_duo, "content"), newest.histogram(FASTOR_L0).histogram.values()), 10)
    assert dash_duo.find_element("#run-histogram-value").text == FASTOR_L0_LABEL
    assert dash_duo.driver.execute_script("return window.__same_page === true;")
    assert dash_duo.get_logs() == []


def test_hinted_drawing_in_the_browser(dash_duo, tmp_path, emc_run):
    """TRU grid over the EMC maps, the energy axis over patch spectra, EMCal/DCal stacks."""
    _start(dash_duo, tmp_path, emc_run.store.data_dir)
    # A per-supermodule group opens as the original showed it: every supermodule at once.
    dash_duo.wait_for_text_to_equal("#run-group-value", "FEE vs TRU")
    dash_duo.wait_for_text_to_equal("#run-histogram-value", "All 20 as a grid")
    until(lambda: graph(dash_duo, "data.filter(t => t.type === 'heatmap').length") == 20, timeout=10)
    assert graph(dash_duo, "layout.annotations.map(a => a.text)")[:4] == ["SM 18", "SM 19", "SM 16", "SM 17"]
    screenshot(dash_duo, "slices_fee_grid.png")
    select(dash_duo, "#run-group", FASTOR_GROUP)
    select(dash_duo, "#run-histogram", FASTOR_L0_AMP_LABEL)
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_AMP_LABEL, timeout=10)
    until(lambda: graph(dash_duo, "layout.shapes.length") == 22, timeout=10)
    assert dash_duo.find_element("#run-log-z").is_selected()  # the EMC experts' log z
    screenshot(dash_duo, "slices_tru_grid.png")

    select(dash_duo, "#run-group", "Gamma Trigger High")
    select(dash_duo, "#run-histogram", "EMCal and DCal max patch amplitude (EMCGAH Online)")
    until(
        lambda: graph(dash_duo, "layout.title.text") == "EMCal and DCal max patch amplitude (EMCGAH Online)",
        10,
    )
    assert graph(dash_duo, "data.filter(t => t.showlegend !== false).map(t => t.name)") == ["EMCal", "DCal"]
    assert graph(dash_duo, "layout.yaxis.type") == "log"
    assert graph(dash_duo, "layout.xaxis2.ticktext")[:3] == ["0", "20", "40"]
    # The top axis is drawn: its tick labels are in the page.
    labels = dash_duo.driver.execute_script(
        f"return Array.from({GRAPH_JS}.querySelectorAll('.x2tick text')).map(t => t.textContent);"
    )
    assert "20" in labels
    screenshot(dash_duo, "slices_patch_stack.png")
    dash_duo.driver.set_window_size(1920, 1080)
    until(lambda: graph(dash_duo, "_fullLayout.width") > 1300, timeout=5)
    screenshot(dash_duo, "slices_patch_stack_1920.png")
    assert dash_duo.get_logs() == []


@pytest.fixture
def reset_run(tmp_path):
    """A live EMC run taken by a receiver with --reset (each snapshot an increment), and an older
    cumulative run made of copies of its first two snapshots."""
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS, merger_reset=True)
    for key in run.store.snapshot_keys(RUN, "EMC")[:2]:
        meta, held = run.store.read_snapshot(key.snapshot_id)
        older = replace(meta, run=RUN - 1, snapshot_time_utc=meta.snapshot_time_utc - timedelta(hours=1))
        run.store.write_snapshot(replace(older, merger_reset=False), list(held.values()))
    return run


def _per_event(store: SnapshotStore, snapshot_ids: list[str]) -> np.ndarray:
    """FastORL0 per event over these snapshots added up, straight from the store."""
    values = sum(store.read_histogram(i, FASTOR_L0).values() for i in snapshot_ids)
    events = sum(store.read_histogram(i, EVENTS).values()[0] for i in snapshot_ids)
    return values / events


def test_the_merger_mode_follows_how_each_run_was_recorded(dash_duo, tmp_path, reset_run):
    store = reset_run.store
    ids = [key.snapshot_id for key in store.snapshot_keys(RUN, "EMC")]
    summed = _per_event(store, ids)
    newest_alone = _per_event(store, ids[-1:])
    assert not np.allclose(summed, newest_alone)  # the test must tell them apart
    reference = ProcessingService(store, tmp_path / "reference-cache", ("EMC",))
    np.testing.assert_allclose(reference.view(RUN, "EMC").histogram(FASTOR_L0).histogram.values(), summed)

    _start(dash_duo, tmp_path, store.data_dir)
    dash_duo.wait_for_text_to_equal("#run-live-badge", "● Live")
    until(lambda: radio_choice(dash_duo, "#run-merger-mode") == "reset", timeout=10)
    select(dash_duo, "#run-group", FASTOR_GROUP)
    select(dash_duo, "#run-histogram", FASTOR_L0_LABEL)
    until(lambda: graph(dash_duo, "layout.title.text") == FASTOR_L0_PLOT_TITLE, timeout=10)
    # The full run is every increment added up, not the newest one alone.
    until(lambda: _close(trace_y(dash_duo, "content"), summed), timeout=10)
    dash_duo.wait_for_contains_text("#run-snapshot-caption", "reset mode")
    # A window sums the increments after its lower edge up to its upper one: 2-4 min is snapshots 3, 4.
    type_into(dash_duo, "#run-slice-min", "2")
    type_into(dash_duo, "#run-slice-max", "4")
    dash_duo.find_element("#run-slice-apply").click()
    dash_duo.wait_for_contains_text("#run-slice-description", "requested 2-4 min, returned 2.0-4.0 min")
    until(lambda: _close(trace_y(dash_duo, "content"), _per_event(store, ids[3:5])), timeout=10)
    screenshot(dash_duo, "slices_reset_mode_window.png")
    dash_duo.find_element("#run-slice-reset").click()
    until(lambda: _close(trace_y(dash_duo, "content"), summed), timeout=10)

    # The user may still read it as cumulative; refreshes leave that choice alone.
    choose_radio(dash_duo, "#run-merger-mode", "cumulative")
    until(lambda: _close(trace_y(dash_duo, "content"), newest_alone), timeout=10)
    time.sleep(1.2)  # two more refreshes
    assert radio_choice(dash_duo, "#run-merger-mode") == "cumulative"
    assert _close(trace_y(dash_duo, "content"), newest_alone)

    # Another run: its own recorded mode (cumulative: the newest snapshot holds the whole run).
    open_page(dash_duo, f"/run/{RUN - 1}/EMC?group=FastOR&hist={FASTOR_L0}")
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {RUN - 1} · EMC")
    older_ids = [key.snapshot_id for key in store.snapshot_keys(RUN - 1, "EMC")]
    until(lambda: _close(trace_y(dash_duo, "content"), _per_event(store, older_ids[-1:])), 10)
    assert radio_choice(dash_duo, "#run-merger-mode") == "cumulative"
    choose_radio(dash_duo, "#run-merger-mode", "reset")
    until(lambda: _close(trace_y(dash_duo, "content"), _per_event(store, older_ids)), 10)
    # And back: set to reset again, whatever was chosen on the other runs.
    open_page(dash_duo, f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}")  # a link without a mode
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {RUN} · EMC")
    until(lambda: radio_choice(dash_duo, "#run-merger-mode") == "reset", timeout=10)
    until(lambda: _close(trace_y(dash_duo, "content"), summed), timeout=10)
    screenshot(dash_duo, "slices_reset_mode_full_run.png")
    assert dash_duo.get_logs() == []


def _slider_thumbs(dash_duo) -> list[str]:
    return [
        e.get_attribute("aria-valuenow") for e in dash_duo.find_elements("#run-slice-range [role=slider]")
    ]


def _slider_max(dash_duo) -> int | None:
    thumbs = dash_duo.find_elements("#run-slice-range [role=slider]")
    return int(thumbs[-1].get_attribute("aria-valuemax")) if thumbs else None


def _close(plotted, expected) -> bool:
    return (
        plotted is not None and len(plotted) == len(expected) and np.allclose(plotted, expected, rtol=1e-12)
    )

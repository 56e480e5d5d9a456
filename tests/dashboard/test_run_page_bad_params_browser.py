"""A run-page link with values the page cannot apply (headless Chromium): the view is drawn with what
reads (defaults for the rest), and a visible "Not applied" note names each value left out and why, as
the data API and the downloads name it (one reading of the parameters, `read_params`)."""

from __future__ import annotations

import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import Run
from pipeline.settings import Settings
from tests.dashboard.browser import graph, open_page, screenshot, set_viewport, visibility
from tests.dashboard.emulated_run import FASTOR_L0, FASTOR_L0_PLOT_TITLE, RUN, EmulatedRun

pytestmark = pytest.mark.browser
N_SNAPSHOTS = 6
FASTOR_PAGE = f"/run/{RUN}/EMC?group=FastOR&hist={FASTOR_L0}"


def _text(dash_duo, element_id: str) -> str:
    return dash_duo.find_element(f"#{element_id}").text


def _open_and_wait_for_plot(dash_duo, path: str, title: str = FASTOR_L0_PLOT_TITLE) -> None:
    open_page(dash_duo, path)
    until(lambda: graph(dash_duo, "layout.title.text") == title, timeout=15)
    until(lambda: (graph(dash_duo, "data.length") or 0) >= 1, timeout=5)
    assert visibility(dash_duo, "#run-graph .js-plotly-plot", probe="centre") == "visible"


def _not_applied(dash_duo) -> str:
    until(lambda: "Not applied" in _text(dash_duo, Run.VIEW_ERROR), timeout=10)
    assert visibility(dash_duo, f"#{Run.VIEW_ERROR}") == "visible"
    return _text(dash_duo, Run.VIEW_ERROR)


def _serve_live_run(dash_duo, tmp_path) -> EmulatedRun:
    """A live emulated run, served by the dashboard in a 1600x1000 window."""
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS)
    settings = Settings(data_dir=run.store.data_dir, cache_dir=tmp_path / "app-cache", status_refresh_ms=500)
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    return run


def test_bad_values_are_named_and_the_view_is_drawn_without_them(dash_duo, tmp_path):
    run = _serve_live_run(dash_duo, tmp_path)

    # A decimal comma: named with a hint, and the plot drawn with each histogram's default threshold.
    _open_and_wait_for_plot(dash_duo, FASTOR_PAGE + "&threshold=0,01")
    error = _not_applied(dash_duo)
    assert (
        "Hot-channel threshold (threshold): must be a number, got '0,01' (write decimals with a point)"
        in error
    )
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")
    assert "threshold: default" in _text(dash_duo, Run.CAPTION)
    screenshot(dash_duo, "run_bad_threshold_not_applied.png")

    # Several at once: each named; the window min > max left out, so the full run (live) is drawn.
    _open_and_wait_for_plot(dash_duo, FASTOR_PAGE + "&mode=foo&min=5&max=2&outlier_n_sigma=-3&scale=7")
    error = _not_applied(dash_duo)
    assert error.count("Not applied") == 4, error
    for said in (
        "Merger mode (mode): must be cumulative or reset, got 'foo'",
        "Slice min (min): must be <= max (5 > 2)",
        "outlier_n_sigma: must be >= 0, got '-3'",
        "Scale by number of events (scale): must be true or false, got '7'",
    ):
        assert said in error, error
    dash_duo.wait_for_contains_text(f"#{Run.SLICE_BANNER}", "Full run")
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")

    # A min past the run's end: named with the run length; the full run is drawn, and live.
    _open_and_wait_for_plot(dash_duo, FASTOR_PAGE + "&min=50")
    assert "Slice min (min): must be <= the run length (" in _not_applied(dash_duo)
    dash_duo.wait_for_contains_text(f"#{Run.SLICE_BANNER}", "Full run")
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "● Live")
    assert dash_duo.find_element(f"#{Run.SLICE_MIN}").get_attribute("value") == "0"  # the window plotted
    # ... and it follows the run: a new snapshot is drawn (the window left out is not a fixed slice).
    dash_duo.wait_for_contains_text(f"#{Run.CAPTION}", f"{N_SNAPSHOTS} snapshots in run")
    run.store_snapshot()
    dash_duo.wait_for_contains_text(f"#{Run.CAPTION}", f"{N_SNAPSHOTS + 1} snapshots in run", timeout=10)

    # A key given twice is refused (as the API and downloads do), whatever its values.
    _open_and_wait_for_plot(dash_duo, FASTOR_PAGE + "&threshold=0.5&threshold=0.6")
    assert "Hot-channel threshold (threshold): given 2 times: give it once" in _not_applied(dash_duo)

    # An unknown group is said, not silently replaced by the first one.
    open_page(dash_duo, f"/run/{RUN}/EMC?group=Nope")
    until(lambda: (graph(dash_duo, "data.length") or 0) >= 1, timeout=15)
    error = _not_applied(dash_duo)
    shown = _text(dash_duo, "run-group-value")
    assert f"Group (group): no group 'Nope'; showing '{shown}'" in error and shown != "Nope"
    assert dash_duo.get_logs() == []


def test_min_alone_is_a_slice_from_min_to_the_end_of_the_run(dash_duo, tmp_path):
    _serve_live_run(dash_duo, tmp_path)
    _open_and_wait_for_plot(dash_duo, FASTOR_PAGE + "&min=2")
    dash_duo.wait_for_contains_text(f"#{Run.SLICE_BANNER}", "requested 2-")
    assert _text(dash_duo, Run.VIEW_ERROR) == ""
    assert dash_duo.find_element(f"#{Run.SLICE_MIN}").get_attribute("value") == "2"
    dash_duo.wait_for_text_to_equal(f"#{Run.LIVE_BADGE}", "❚❚ Paused · fixed time slice")
    # The downloads hold the same window: min alone, as on the data API.
    href = dash_duo.find_element(f"#{Run.DOWNLOAD_PARQUET}").get_attribute("href")
    assert "min=2" in href and "max=" not in href, href

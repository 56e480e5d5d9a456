"""Cancel of the reset-mode background job, as a person sees it in headless Chromium: the job's process
stops, the progress box goes away, the plot says "Cancelled", and the page goes on working.

The job must still be running when Cancel is pressed. Summing a few snapshots takes well under a
second, so the test slows the per-histogram step of the job alone: the background job runs in a
process forked from this one (Dash's DiskcacheManager), and a patch that sleeps only in a process other
than this one leaves the server's own callbacks at full speed. Production code has no delay in it.
"""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from pipeline.processing.service import ProcessedView
from pipeline.settings import Settings
from tests.dashboard.browser import (
    choose_radio,
    console_errors,
    graph,
    open_page,
    plot,
    screenshot,
    set_viewport,
    visibility,
)
from tests.dashboard.emulated_run import RUN, EmulatedRun

pytestmark = pytest.mark.browser
N_SNAPSHOTS = 6
SECONDS_PER_HISTOGRAM_IN_JOB = 1.0  # the first group is a 20-map grid: a 20 s job
CANCELLED = f"Cancelled: summing {N_SNAPSHOTS} snapshots was stopped"


@pytest.fixture
def slow_background_job(monkeypatch):
    """Each histogram the background job sums takes a second longer; nothing else slows down."""
    test_process = os.getpid()
    summed = ProcessedView.histogram

    def histogram_slowly(self, name):
        if os.getpid() != test_process:
            time.sleep(SECONDS_PER_HISTOGRAM_IN_JOB)
        return summed(self, name)

    monkeypatch.setattr(ProcessedView, "histogram", histogram_slowly)


def _job_processes() -> list[psutil.Process]:
    """Python processes forked from this one (the background jobs; Chromium and its driver are not)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.exe() == psutil.Process().exe() or child.cmdline()[:1] == [sys.executable]:
                found.append(child)
        except psutil.Error:
            continue
    return found


def _plot_message(dash_duo) -> str | None:
    return plot(dash_duo, "run-graph", "(g.layout.annotations || []).map(a => a.text).join(' ')")


def test_cancel_stops_the_reset_mode_job_and_leaves_the_page_usable(dash_duo, tmp_path, slow_background_job):
    run = EmulatedRun.live(tmp_path / "data", N_SNAPSHOTS, merger_reset=True)
    settings = Settings(
        data_dir=run.store.data_dir,
        cache_dir=tmp_path / "app-cache",
        status_refresh_ms=500,
        dash_background_min_snapshots=3,  # six increments to sum: background work
    )
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, f"/run/{RUN}/EMC")

    # The job runs: its box shows what it does and how far it is, and its process exists.
    until(lambda: visibility(dash_duo, "#run-heavy-box") == "visible", timeout=30)
    dash_duo.wait_for_contains_text("#run-heavy-label", "Summ", timeout=10)
    until(lambda: "1/20 histograms" in dash_duo.find_element("#run-heavy-label").text, timeout=20)
    assert _job_processes(), "no background job process runs"
    assert visibility(dash_duo, "#run-heavy-cancel") == "visible"
    screenshot(dash_duo, "background_job_running_1600.png")

    dash_duo.find_element("#run-heavy-cancel").click()

    # What the person sees: the box goes away and the plot says the work was cancelled.
    until(lambda: not dash_duo.find_element("#run-heavy-box").is_displayed(), timeout=20)
    until(lambda: CANCELLED in (_plot_message(dash_duo) or ""), timeout=10)
    assert visibility(dash_duo, "#run-graph", probe="centre") == "visible"
    screenshot(dash_duo, "background_job_cancelled_1600.png")
    # The job's process is gone, long before the 20 s it would have taken.
    until(lambda: _job_processes() == [], timeout=10)
    # Live refreshes go on (every 0.5 s) and neither restart the job nor replace the message.
    time.sleep(4)
    assert CANCELLED in _plot_message(dash_duo)
    assert not dash_duo.find_element("#run-heavy-box").is_displayed()
    assert _job_processes() == []

    # The page stays usable: cumulative mode is quick and draws the grid at once.
    choose_radio(dash_duo, "#run-merger-mode", "cumulative")
    until(lambda: (graph(dash_duo, "data.length") or 0) >= 20, timeout=20)
    until(lambda: "mode=cumulative" in dash_duo.driver.current_url, timeout=5)
    assert not dash_duo.find_element("#run-heavy-box").is_displayed()
    assert console_errors(dash_duo) == []

"""The run list's page is in the URL, as a person uses it in headless Chromium: paging writes `?page=N`,
back/forward step through the pages, and a link to `/runs?page=2` opens page 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.pages.runs import clamped_page, page_search
from pipeline.settings import Settings
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.dashboard.browser import (
    console_errors,
    current_search,
    open_page,
    screenshot,
    set_viewport,
    visibility,
)

FIRST_RUN = 410000
N_RUNS = 120  # three pages of 50: 50, 50, 20


@pytest.fixture
def three_pages_of_runs(tmp_path, make_histogram):
    """120 finished runs, one small EMC snapshot each, an hour apart."""
    store = SnapshotStore(tmp_path / "data")
    events = make_histogram("EMCTRQA_histEvents", [np.arange(3.0)], np.array([10.0, 5.0]), class_name="TH1F")
    start = datetime.now(UTC) - timedelta(days=6)
    for index in range(N_RUNS):
        meta = SnapshotMeta(FIRST_RUN + index, "EMC", start + timedelta(hours=index), "B", "pp")
        store.write_snapshot(meta, [events])
    return store


def _first_and_last_row(dash_duo) -> list[str]:
    return dash_duo.driver.execute_script(
        "const rows = Array.from(document.querySelectorAll('#runs-table tbody tr')).map(r => r.id);"
        "return [rows[0], rows[rows.length - 1], rows.length];"
    )


def _shows_page(dash_duo, page: int) -> bool:
    """The table holds exactly the runs of `page` (newest first), and the pager marks that page."""
    newest = FIRST_RUN + N_RUNS - 1 - 50 * (page - 1)
    oldest = max(FIRST_RUN, newest - 49)
    active = dash_duo.driver.execute_script(  # the number, without its "(current)" for screen readers
        "return Array.from(document.querySelectorAll('#runs-pagination .page-item.active .page-link'))"
        ".map(e => e.firstChild.textContent);"
    )
    rows = [f"runs-table-{newest}", f"runs-table-{oldest}", newest - oldest + 1]
    return _first_and_last_row(dash_duo) == rows and active == [str(page)]


def _click_page(dash_duo, label: str) -> None:
    next(a for a in dash_duo.find_elements("#runs-pagination a") if a.text == label).click()


@pytest.mark.browser
def test_the_page_is_in_the_url_and_back_forward_step_through_pages(dash_duo, tmp_path, three_pages_of_runs):
    settings = Settings(data_dir=three_pages_of_runs.data_dir, cache_dir=tmp_path / "cache")
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)

    # A deep link opens the page it names.
    open_page(dash_duo, "/runs?page=2")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 51–100 of 120")
    until(lambda: _shows_page(dash_duo, 2), timeout=10)
    assert current_search(dash_duo) == "?page=2"

    # Paging writes the URL.
    _click_page(dash_duo, "3")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 101–120 of 120")
    until(lambda: _shows_page(dash_duo, 3), timeout=10)
    until(lambda: current_search(dash_duo) == "?page=3", timeout=5)
    _click_page(dash_duo, "1")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 1–50 of 120")
    until(lambda: current_search(dash_duo) == "", timeout=5)  # page 1 is plain /runs

    # Back and forward step through the pages the person saw: 1 -> 3 -> 2, then 3 again.
    dash_duo.driver.back()
    until(lambda: current_search(dash_duo) == "?page=3", timeout=5)
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 101–120 of 120")
    until(lambda: _shows_page(dash_duo, 3), timeout=10)
    dash_duo.driver.back()
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 51–100 of 120")
    until(lambda: _shows_page(dash_duo, 2), timeout=10)
    dash_duo.driver.forward()
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 101–120 of 120")
    until(lambda: _shows_page(dash_duo, 3), timeout=10)
    assert dash_duo.driver.current_url.endswith("/runs?page=3")

    # Back to the run page and back again: still on page 3.
    dash_duo.find_element(f"#runs-table-{FIRST_RUN + 10} .run-number a").click()
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {FIRST_RUN + 10} · EMC")
    dash_duo.driver.back()
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 101–120 of 120")
    until(lambda: _shows_page(dash_duo, 3), timeout=10)
    assert console_errors(dash_duo) == []


def test_a_requested_page_is_clamped_to_the_pages_there_are():
    assert [clamped_page(p, 120) for p in (None, "", "x", "0", "-3", "1", "2", " 3 ", "99", 2)] == [
        1, 1, 1, 1, 1, 1, 2, 3, 3, 2,
    ]  # fmt: skip
    assert clamped_page("5", 0) == 1  # an empty store has one (empty) page
    assert [page_search(p) for p in (1, 2, 3)] == ["", "?page=2", "?page=3"]


@pytest.mark.browser
def test_a_page_beyond_the_last_says_the_page_shown_and_the_pager_is_under_the_table_too(
    dash_duo, tmp_path, three_pages_of_runs
):
    settings = Settings(data_dir=three_pages_of_runs.data_dir, cache_dir=tmp_path / "cache")
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, "/runs?page=99")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 101–120 of 120")
    until(lambda: _shows_page(dash_duo, 3), timeout=10)
    until(lambda: current_search(dash_duo) == "?page=3", timeout=5)  # the page shown, not the one asked

    # Every column is named, the badge's too.
    headers = [th.text for th in dash_duo.find_elements("#runs-table thead th")]
    assert headers[6] == "Ongoing" and all(headers)

    # The pager under the table turns the page as the one above does, and both say where you are.
    open_page(dash_duo, "/runs")
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 1–50 of 120")
    bottom = "#runs-pagination-bottom"
    until(lambda: _shows_page(dash_duo, 1), timeout=10)
    # Scrolled to, as a person would, below the 50th row.
    until(lambda: visibility(dash_duo, bottom, scroll="end") == "visible", timeout=5)
    screenshot(dash_duo, "runs_pager_at_the_bottom_1600.png")
    next(a for a in dash_duo.find_elements(f"{bottom} a") if a.text == "2").click()
    dash_duo.wait_for_text_to_equal("#runs-page-info", "runs 51–100 of 120")
    until(lambda: _shows_page(dash_duo, 2) and current_search(dash_duo) == "?page=2", timeout=10)
    active = f"{bottom} .page-item.active .page-link"
    until(lambda: dash_duo.find_element(active).text.startswith("2"), timeout=5)
    dash_duo.driver.back()
    until(lambda: _shows_page(dash_duo, 1), timeout=10)
    until(lambda: dash_duo.find_element(active).text.startswith("1"), timeout=5)
    assert console_errors(dash_duo) == []

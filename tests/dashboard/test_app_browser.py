"""Browser tests of the live page (dash_duo, headless Chromium): what a shift person sees and that
refreshes never take their choices away. Screenshots go to artifacts/ for a human to look at."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains

from dashboard.app import create_app
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus, write_status
from pipeline.store import SnapshotMeta, SnapshotStore
from tests.dashboard.browser import current_search, graph, open_page, screenshot, select, set_viewport

pytestmark = pytest.mark.browser

TH1_NAME = "EMCTRQA_histEvents"
TH2_NAME = "EMCTRQA_histAmpEdgePosEMCGAHOnline"
TPC_NAME = "TPCQA/fHistClusterCharge"
OLD_RUN, LIVE_RUN = 300000, 300001


EDGE_POSITIONS_TITLE = "Edge-position amplitude, EMCal gamma high (online)"


@pytest.fixture
def histograms(make_histogram):
    """The three histograms of a snapshot; `scale` makes later snapshots visibly fuller."""
    rng = np.random.default_rng(11)

    def build(scale: float = 1.0):
        events = make_histogram(
            TH1_NAME,
            [np.arange(11.0)],
            np.round(scale * np.array([900, 850, 400, 300, 120, 60, 30, 12, 5, 2.0])),
            class_name="TH1F",
            title="Events per trigger class",
            axis_titles=("trigger class", "events"),
        )
        amplitude = rng.poisson(scale * 40.0, size=(48, 104)).astype(float)
        amplitude[10:12, 30:40] = 0.0  # a dead region
        amplitude[30, 70] = scale * 400.0  # a hot tower
        edge_positions = make_histogram(
            TH2_NAME,
            [np.arange(49.0), np.arange(105.0)],
            amplitude,
            class_name="TH2F",
            title=EDGE_POSITIONS_TITLE,
            axis_titles=("column", "row"),
        )
        charge_bins = np.linspace(0.0, 500.0, 101)
        centers = 0.5 * (charge_bins[:-1] + charge_bins[1:])
        landau_like = np.exp(-0.5 * ((centers - 80) / 30) ** 2 - np.exp(-(centers - 80) / 30))
        charge = make_histogram(
            TPC_NAME,
            [charge_bins],
            np.round(scale * 5000 * landau_like),
            class_name="TH1F",
            title="TPC cluster charge",
            axis_titles=("Q_{max} (ADC)", "clusters"),
        )
        return events, edge_positions, charge

    return build


@pytest.fixture
def data_dir(tmp_path, histograms):
    """An older, finished run and a live one with two EMC snapshots; three receivers' status."""
    store = SnapshotStore(tmp_path)
    now = datetime.now(UTC)
    events, edges, charge = histograms(0.5)
    old = now - timedelta(hours=2)
    store.write_snapshot(SnapshotMeta(OLD_RUN, "EMC", old, "B", "pp"), [events, edges])
    store.write_snapshot(SnapshotMeta(OLD_RUN, "TPC", old, "B", "pp"), [charge])
    for age_s, scale in ((20, 1.0), (5, 2.0)):
        events, edges, charge = histograms(scale)
        meta = SnapshotMeta(LIVE_RUN, "EMC", now - timedelta(seconds=age_s), "B", "Pb-Pb")
        store.write_snapshot(meta, [events, edges])
    store.write_snapshot(replace(meta, subsystem="TPC"), [charge])
    for status in _statuses(time.time()):
        write_status(tmp_path, status)
    return tmp_path


def _statuses(now: float, emc_snapshots: int = 3) -> list[ReceiverStatus]:
    common = {"started_utc": now - 600, "last_run": LIVE_RUN, "period_s": 5.0, "timeout_s": 10.0}
    return [
        ReceiverStatus(
            "EMC",
            endpoint="tcp://127.0.0.1:60320",
            heartbeat_utc=now - 1,
            last_reply_utc=now - 1,
            requests=120,
            replies=118,
            timeouts=2,
            snapshots_stored=emc_snapshots,
            histograms_stored=2 * emc_snapshots,
            last_snapshot_utc=now - 5,
            **common,
        ),
        ReceiverStatus(
            "TPC",
            endpoint="tcp://127.0.0.1:60320",
            heartbeat_utc=now - 1,  # the receiver lives, its merger stopped answering 40 s ago
            last_reply_utc=now - 40,
            snapshots_stored=2,
            histograms_stored=2,
            last_snapshot_utc=now - 45,
            rejected_objects=3,
            **common,
        ),
        ReceiverStatus(
            "HLT",
            endpoint="tcp://127.0.0.1:60320",
            heartbeat_utc=now - 900,
            timeouts=17,
            last_error="no reply from merger within 10 s (socket recreated)",
            **common,
        ),
    ]


def _start(dash_duo, data_dir: Path, path: str = "/runs") -> None:
    dash_duo.start_server(create_app(Settings(data_dir=data_dir, status_refresh_ms=500)))
    open_page(dash_duo, path)


def test_live_page_updates_without_touching_the_users_choice(dash_duo, data_dir, histograms):
    _start(dash_duo, data_dir)
    # The run list: newest first, the live run marked, one link per subsystem with data.
    dash_duo.wait_for_contains_text(f"#runs-table-{LIVE_RUN}", "ongoing")
    rows = dash_duo.find_elements("#runs-table tbody tr")
    assert [r.get_attribute("id") for r in rows] == [f"runs-table-{LIVE_RUN}", f"runs-table-{OLD_RUN}"]
    links = [e.text for e in dash_duo.find_elements(f"#runs-table-{LIVE_RUN} .subsystem-links a")]
    assert links == ["EMC", "TPC"]  # HLT stored nothing in this run
    assert "ongoing" not in dash_duo.find_element(f"#runs-table-{OLD_RUN}").text
    screenshot(dash_duo, "runs_page.png")
    next(
        a for a in dash_duo.find_elements(f"#runs-table-{LIVE_RUN} .subsystem-links a") if a.text == "EMC"
    ).click()
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {LIVE_RUN} · EMC")
    dash_duo.wait_for_contains_text("#run-snapshot-caption", "2 snapshots in run")
    dash_duo.wait_for_contains_text("#run-state", "ongoing")

    # Histograms are found through the EMC plug-in's groups, listed by their display names (here the
    # ROOT titles), the same as the plot's title.
    select(dash_duo, "#run-group", "Other EMC")
    select(dash_duo, "#run-histogram", "Events per trigger class")
    until(lambda: graph(dash_duo, "data[0].type") == "scatter", timeout=10)
    until(lambda: graph(dash_duo, "layout.title.text") == "Events per trigger class", timeout=10)

    select(dash_duo, "#run-group", "Gamma Trigger High")
    select(dash_duo, "#run-histogram", EDGE_POSITIONS_TITLE)
    until(lambda: graph(dash_duo, "data[0].type") == "heatmap", timeout=10)
    screenshot(dash_duo, "dashboard_live_th2.png")

    # Zoom like a person would (drag a box); it must survive the refresh below.
    drag_layer = dash_duo.find_element("#run-graph .nsewdrag")
    width, height = drag_layer.size["width"], drag_layer.size["height"]
    ActionChains(dash_duo.driver).move_to_element(drag_layer).move_by_offset(
        -width // 4, -height // 4
    ).click_and_hold().move_by_offset(width // 4, height // 4).release().perform()
    until(lambda: graph(dash_duo, "layout.xaxis.autorange") is False, timeout=5)
    zoomed_x_range = graph(dash_duo, "layout.xaxis.range")

    # A receiver stores a new snapshot: the page follows by itself.
    events, edges, _ = histograms(3.0)
    meta = SnapshotMeta(LIVE_RUN, "EMC", datetime.now(UTC), "B", "Pb-Pb")
    SnapshotStore(data_dir).write_snapshot(meta, [events, edges])
    dash_duo.wait_for_contains_text("#run-snapshot-caption", "3 snapshots in run")

    assert dash_duo.find_element("#run-histogram-value").text == EDGE_POSITIONS_TITLE
    assert dash_duo.find_element("#run-title").text == f"Run {LIVE_RUN} · EMC"
    assert graph(dash_duo, "data[0].type") == "heatmap"
    assert graph(dash_duo, "layout.xaxis.range") == zoomed_x_range

    # EMC experts draw their maps with log z; the switch shows it and turns it off.
    assert dash_duo.find_element("#run-log-z").is_selected()
    # Scaled by events (2,700 in the newest snapshot): towers near 120/2700 = 0.044, the hot one at
    # 1200/2700 = 0.44; one decade, so the colour bar is labelled in 1-2-5 steps of real contents.
    assert graph(dash_duo, "data[0].colorbar.ticktext") == ["0.05", "0.1", "0.2"]
    dash_duo.find_element("#run-log-z + label").click()
    until(lambda: graph(dash_duo, "data[0].colorbar.ticktext") is None, timeout=10)
    assert graph(dash_duo, "layout.xaxis.range") == zoomed_x_range
    assert "logz=0" in current_search(dash_duo)
    screenshot(dash_duo, "dashboard_live_th2_logz.png")

    dash_duo.find_element("#run-subsystem-links-TPC").click()
    until(lambda: graph(dash_duo, "layout.title.text") == "TPC cluster charge", timeout=10)
    dash_duo.wait_for_text_to_equal("#run-group-value", "Other TPC")
    dash_duo.wait_for_text_to_equal("#run-histogram-value", "TPC cluster charge")
    screenshot(dash_duo, "dashboard_live_tpc_th1.png")

    # The control-room screen size: the plot and its verdict without scrolling.
    set_viewport(dash_duo, 1920, 1080)
    until(lambda: graph(dash_duo, "_fullLayout.width") > 1300, timeout=5)
    screenshot(dash_duo, "dashboard_1920.png")
    assert dash_duo.get_logs() == []


def test_a_user_on_an_older_run_stays_there_while_new_runs_appear(dash_duo, data_dir, histograms):
    store = SnapshotStore(data_dir)
    _start(dash_duo, data_dir)
    dash_duo.wait_for_contains_text(f"#runs-table-{LIVE_RUN}", "ongoing")

    # A new run starts: the run list shows it by itself, at the top.
    events, edges, _ = histograms()
    store.write_snapshot(SnapshotMeta(LIVE_RUN + 1, "EMC", datetime.now(UTC)), [events, edges])
    dash_duo.wait_for_contains_text(f"#runs-table-{LIVE_RUN + 1}", "ongoing")
    assert (
        dash_duo.find_elements("#runs-table tbody tr")[0].get_attribute("id") == f"runs-table-{LIVE_RUN + 1}"
    )

    # A user looking at an older run is never moved, even when another run starts.
    dash_duo.find_element(f"#runs-table-{OLD_RUN} .run-number a").click()
    dash_duo.wait_for_text_to_equal("#run-title", f"Run {OLD_RUN} · EMC")
    dash_duo.wait_for_contains_text("#run-state", "not ongoing")
    dash_duo.wait_for_text_to_equal("#run-live-badge", "○ Run ended")
    store.write_snapshot(SnapshotMeta(LIVE_RUN + 2, "EMC", datetime.now(UTC)), [events, edges])
    time.sleep(1.5)  # three refreshes
    assert dash_duo.find_element("#run-title").text == f"Run {OLD_RUN} · EMC"
    assert dash_duo.driver.current_url.endswith(f"/run/{OLD_RUN}/EMC")
    assert dash_duo.get_logs() == []


def test_empty_store_says_it_is_waiting(dash_duo, tmp_path):
    _start(dash_duo, tmp_path / "not-created-yet")
    dash_duo.wait_for_text_to_equal("#runs-table", "No runs yet — waiting for the receivers…")
    screenshot(dash_duo, "dashboard_empty.png")
    assert dash_duo.get_logs() == []

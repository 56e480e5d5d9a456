"""`/system` in the browser: a receiver shown dead when its heartbeat is made old and flowing again when
fresh, a silent merger shown as silent, the same numbers as `GET /api/status`, what matters visible."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import System
from dashboard.pages.system import human_bytes, receivers_table, system_view
from pipeline.histogram import Histogram
from pipeline.processing.service import ProcessingService
from pipeline.qc.paths import status_path
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.system_status import reports_for
from tests.dashboard.browser import ARTIFACTS, open_page, screenshot, set_viewport, visibility
from tests.dashboard.live_receivers import LiveReceivers

RUN = 300777
SUBSYSTEMS = ("EMC", "TPC", "HLT")


def receiver(subsystem: str, now: float, **fields) -> ReceiverStatus:
    index = SUBSYSTEMS.index(subsystem)
    defaults = dict(
        subsystem=subsystem,
        endpoint="tcp://127.0.0.1:60320",
        started_utc=now - 1800,
        heartbeat_utc=now - 1,
        period_s=5.0,
        timeout_s=10.0,
        requests=300 + index,
        replies=290 + index,
        timeouts=10 - index,
        socket_recreations=10 - index,
        skipped_replies=7 + index,
        rejected_objects=3 * index,
        unsupported_objects=index,
        snapshots_stored=250 + index,
        last_reply_utc=now - 1,
        last_snapshot_utc=now - 1,
        recent_snapshots_utc=[now - 10 * i for i in range(30)][::-1],  # 6 per minute
        last_run=RUN,
    )
    return ReceiverStatus(**{**defaults, **fields})


@pytest.fixture
def settings(tmp_path):
    data_dir = tmp_path / "data"
    values = np.array([0.0, 5.0, 0.0])
    store = SnapshotStore(data_dir)
    for seconds_ago in (600, 5):
        when = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
        for subsystem in SUBSYSTEMS:
            h = Histogram("h", "TH1D", "h", (np.array([0.0, 1.0]),), values, values.copy())
            store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "PbPb"), [h])
    return Settings(
        data_dir=data_dir, cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS, status_refresh_ms=500
    )


@pytest.fixture
def receivers(settings):
    live = LiveReceivers(settings.data_dir, SUBSYSTEMS, receiver)
    yield live
    live.stop()


def cell_text(dash_duo, field: str, subsystem: str) -> str:
    """A receiver cell's text ('' while not drawn), read in one script: the table is redrawn at every
    refresh, so an element found a moment ago may be gone."""
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';",
        System.cell(field, subsystem),
    )


def state_is(dash_duo, subsystem: str, state: str) -> bool:
    return cell_text(dash_duo, "state", subsystem).splitlines()[:1] == [state.upper()]


def test_system_page_follows_heartbeats_and_silent_mergers(dash_duo, settings, receivers):
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, "/system")
    for subsystem in SUBSYSTEMS:
        until(lambda s=subsystem: state_is(dash_duo, s, "flowing"), timeout=15)
    dash_duo.wait_for_contains_text(f"#{System.SUMMARY}", "All receivers alive")

    # The numbers are those of GET /api/status (one model behind both).
    with urllib.request.urlopen(dash_duo.server_url + "/api/status", timeout=10) as answer:
        api = {r["subsystem"]: r for r in json.load(answer)["receivers"]}
    for subsystem in SUBSYSTEMS:
        written = receiver(subsystem, time.time())
        for field, value in (
            ("requests", written.requests),
            ("replies", written.replies),
            ("timeouts", written.timeouts),
            ("recreations", written.socket_recreations),
            ("skipped", written.skipped_replies),
            ("rejected", written.rejected_objects),
            ("unsupported", written.unsupported_objects),
            ("run", written.last_run),
        ):
            shown = str(value) if field == "run" else f"{value:,}"  # run numbers without separators
            assert cell_text(dash_duo, field, subsystem) == shown, (subsystem, field)
        assert api[subsystem]["requests"] == written.requests
        assert (
            cell_text(dash_duo, "rate", subsystem)
            == f"{api[subsystem]['snapshots_per_min_5min']:.1f}"
            == "6.0"
        )
    dash_duo.wait_for_contains_text(f"#{System.RUN}", f"Run {RUN} ongoing")
    dash_duo.wait_for_contains_text(f"#{System.RUN}", "CERN")

    # EMC's receiver stopped (kill -STOP) 15 s ago, right after a reply: not responding, not its merger.
    receivers.set("EMC", ages={"heartbeat_utc": 15, "last_reply_utc": 15, "last_snapshot_utc": 15})
    until(lambda: state_is(dash_duo, "EMC", "receiver not responding"), timeout=15)
    dash_duo.wait_for_contains_text(
        f"#{System.SUMMARY}", "EMC: receiver not responding (no heartbeat for 15 s"
    )
    assert visibility(dash_duo, f"#{System.cell('state', 'EMC')} .badge") == "visible"
    assert "bg-warning" in dash_duo.find_element(f"#{System.cell('state', 'EMC')} .badge").get_attribute(
        "class"
    )
    assert dash_duo.driver.execute_script(
        "const t = document.querySelector('#system-receivers .table-responsive') ||"
        " document.querySelector('#system-receivers table'); return t.scrollWidth <= t.clientWidth + 1;"
    ), "the longest state widens the table past 1600 px"
    screenshot(dash_duo, "system_receiver_not_responding_1600x1000.png")

    # EMC's heartbeat made old: dead, and the page says so by itself.
    receivers.set("EMC", ages={"heartbeat_utc": 120})
    until(lambda: state_is(dash_duo, "EMC", "receiver dead"), timeout=15)
    dash_duo.wait_for_contains_text(f"#{System.SUMMARY}", "EMC: receiver dead")
    for selector in (f"#{System.cell('state', 'EMC')} .badge", f"#{System.SUMMARY}"):
        assert visibility(dash_duo, selector) == "visible", selector
    # Every column fits at 1600 px: nothing hides behind a horizontal scroll bar.
    assert dash_duo.driver.execute_script(
        "const t = document.querySelector('#system-receivers .table-responsive') ||"
        " document.querySelector('#system-receivers table'); return t.scrollWidth <= t.clientWidth + 1;"
    )
    screenshot(dash_duo, "system_receiver_dead_1600x1000.png")

    # Fresh again: flowing. Then the HLT merger stops answering while its receiver lives on.
    receivers.reset("EMC")
    receivers.set(
        "HLT",
        ages={"last_reply_utc": 45, "last_snapshot_utc": 45, "last_error_utc": 5},
        consecutive_timeouts=3,
        last_error="no reply within 10 s from tcp://127.0.0.1:60320",
    )
    until(lambda: state_is(dash_duo, "EMC", "flowing"), timeout=15)
    until(lambda: state_is(dash_duo, "HLT", "merger silent"), timeout=15)
    assert "no reply" in cell_text(dash_duo, "error", "HLT") and "current" in cell_text(
        dash_duo, "error", "HLT"
    )
    assert visibility(dash_duo, f"#{System.cell('state', 'HLT')} .badge") == "visible"
    assert visibility(dash_duo, f"#{System.cell('error', 'HLT')}") == "visible"
    screenshot(dash_duo, "system_merger_silent_1600x1000.png")
    assert (ARTIFACTS / "system_merger_silent_1600x1000.png").stat().st_size > 0

    # The QC service: running while it beats, a problem once it stops (kill -STOP: the file stays).
    receivers.reset("HLT")
    write_qc_status(settings.data_dir, heartbeat_age_s=0.5, pid=4321)
    dash_duo.wait_for_contains_text(f"#{System.QC}", "QC running")
    dash_duo.wait_for_contains_text(f"#{System.SUMMARY}", "Quality control running.")
    write_qc_status(settings.data_dir, heartbeat_age_s=20.0, pid=4321)
    dash_duo.wait_for_contains_text(f"#{System.QC}", "QC service not responding")
    dash_duo.wait_for_contains_text(f"#{System.SUMMARY}", "QC: QC service not responding (no heartbeat for 2")
    assert "kill 4321" in dash_duo.find_element(f"#{System.QC}").text  # a hung one is not restarted
    for selector in (f"#{System.QC} .badge", f"#{System.SUMMARY}"):
        assert visibility(dash_duo, selector) == "visible", selector
    screenshot(dash_duo, "system_qc_not_responding_1600x1000.png")
    assert dash_duo.get_logs() == [], "browser console errors"


def write_qc_status(data_dir, heartbeat_age_s: float, pid: int) -> None:
    """The QC service's status file as `QCService.write_status` leaves it, its heartbeat that old."""
    beat = datetime.fromtimestamp(time.time() - heartbeat_age_s, UTC).isoformat()
    record = {"heartbeat_utc": beat, "heartbeat_every_s": 1.0, "pid": pid, "pending": 0, "lag_s": 0.0}
    status_path(data_dir).parent.mkdir(parents=True, exist_ok=True)
    status_path(data_dir).write_text(json.dumps(record))


def test_the_page_body_is_built_from_the_status_model(settings, receivers):
    service = ProcessingService.from_settings(settings)
    text = repr(system_view(service.system_status()))
    assert "All receivers alive" in text and f"Run {RUN} ongoing" in text
    assert "No other sites configured" in text
    assert [human_bytes(n) for n in (None, 512, 2048, 5 * 1024**3)] == ["—", "512 B", "2.0 KB", "5.0 GB"]


# ---- the receivers table, from status files (no browser) ----

NOW = 1_750_000_000.0


def status_panel(statuses, settings: Settings, now: float):
    """The /system page's receivers table for these status files, as the page builds it."""
    return receivers_table(
        reports_for(statuses, settings.subsystems, now, settings.receiver_dead_after_s), now
    )


def _status(**fields) -> ReceiverStatus:
    defaults = {
        "subsystem": "EMC",
        "pid": 1,
        "started_utc": NOW - 600,
        "heartbeat_utc": NOW - 2,
        "period_s": 5.0,
        "timeout_s": 10.0,
        "last_reply_utc": NOW - 2,
        "last_snapshot_utc": NOW - 2,
        "last_run": 300001,
    }
    return ReceiverStatus(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "flowing"),
        ({"heartbeat_utc": NOW - 31.0}, "receiver dead"),
        ({"heartbeat_utc": NOW - 24.0, "last_reply_utc": NOW - 24.0}, "receiver not responding"),
        ({"last_reply_utc": NOW - 60.0}, "merger silent"),
        ({"last_run": 0}, "between runs"),
    ],
)
def test_the_panel_shows_the_one_liveness_rules_state(fields, state):
    settings = Settings(subsystems=("EMC",), receiver_dead_after_s=30.0)
    text = repr(status_panel([_status(**fields)], settings, NOW))
    assert f"'{state}'" in text


def test_the_panel_rate_is_over_the_last_five_minutes():
    recent = [NOW - 10 * i for i in range(30)][::-1]  # 30 in the last 5 minutes
    status = _status(started_utc=NOW - 36000, snapshots_stored=5000, recent_snapshots_utc=recent)
    assert "'6.0'" in repr(status_panel([status], Settings(subsystems=("EMC",)), NOW))


def test_status_panel_has_a_row_per_configured_receiver():
    statuses = [_status(subsystem="TPC", requests=42, last_error="timeout after 10 s")]
    table = status_panel(statuses, Settings(subsystems=("EMC", "TPC", "HLT")), NOW)
    rows = table.children[1].children
    assert len(rows) == 3
    text = repr(table)
    assert "'42'" in text
    assert "timeout after 10 s" in text
    assert text.count("'no status'") == 2  # EMC and HLT have not reported


def test_rejections_say_how_many_were_unsupported_classes():
    statuses = [_status(rejected_objects=15, unsupported_objects=12), _status(subsystem="TPC")]
    table = status_panel(statuses, Settings(subsystems=("EMC", "TPC")), NOW)
    emc, tpc = table.children[1].children
    assert "'15'" in repr(emc) and "'12'" in repr(emc)
    assert "'15'" not in repr(tpc) and "'12'" not in repr(tpc)

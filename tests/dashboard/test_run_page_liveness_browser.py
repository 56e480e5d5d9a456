"""The run page of an ongoing run says when no new data can come: its merger went silent or its receiver
died. The run still counts as ongoing (its receiver has not named another run), and without new
snapshots the view has no news, so only the receiver line and the live badge can tell the shift crew."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import Run
from dashboard.pages.run import live_state_text
from dashboard.status_panel import receiver_line
from pipeline.histogram import Histogram
from pipeline.liveness import receiver_liveness
from pipeline.processing.service import ProcessingService
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.system_status import ReceiverReport
from tests.dashboard.browser import open_page, screenshot, set_viewport, visibility
from tests.dashboard.live_receivers import LiveReceivers, flowing_status

RUN = 300555
SUBSYSTEMS = ("EMC", "HLT")
SILENT = {
    "ages": {"last_reply_utc": 45, "last_snapshot_utc": 45},
    "consecutive_timeouts": 3,
}


def flowing(subsystem: str, now: float) -> ReceiverStatus:
    return flowing_status(subsystem, now, RUN)


@pytest.fixture
def settings(tmp_path):
    store = SnapshotStore(tmp_path / "data")
    values = np.array([0.0, 5.0, 2.0, 0.0])
    for seconds_ago in (300, 5):
        when = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
        for subsystem in SUBSYSTEMS:
            h = Histogram("hitsPerEvent", "TH1D", "hits", (np.array([0.0, 1.0, 2.0]),), values, values.copy())
            store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "pp"), [h])
    return Settings(
        data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", subsystems=SUBSYSTEMS, status_refresh_ms=500
    )


@pytest.fixture
def receivers(settings):
    live = LiveReceivers(settings.data_dir, SUBSYSTEMS, flowing)
    yield live
    live.stop()


def text_of(dash_duo, element_id: str) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", element_id
    )


def snapshot_age(dash_duo) -> int:
    """The seconds of the run line's "last snapshot N s ago"."""
    return int(re.search(r"last snapshot (\d+) s ago", text_of(dash_duo, Run.RUN_STATE)).group(1))


def badge_class(dash_duo) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.className : '';", Run.LIVE_BADGE
    )


def test_the_run_page_says_when_its_merger_is_silent_or_its_receiver_dead(dash_duo, settings, receivers):
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, f"/run/{RUN}/EMC")
    until(lambda: "EMC receiver: flowing" in text_of(dash_duo, Run.RECEIVER_STATE), timeout=15)
    until(lambda: text_of(dash_duo, Run.LIVE_BADGE) == "● Live", timeout=15)

    # The merger stops answering; the receiver lives on and the run stays ongoing.
    receivers.set("EMC", **SILENT)
    until(lambda: "EMC receiver: merger silent" in text_of(dash_duo, Run.RECEIVER_STATE), timeout=15)
    assert "no reply from tcp://127.0.0.1:60321" in text_of(dash_duo, Run.RECEIVER_STATE)
    until(lambda: text_of(dash_duo, Run.LIVE_BADGE) == "⚠ No new data · merger silent", timeout=15)
    assert "live-stalled" in badge_class(dash_duo)
    assert "ongoing" in text_of(dash_duo, Run.RUN_STATE)  # the run has not ended: it waits for data
    # Its "last snapshot N s ago" moves on with no new snapshot (it was drawn once, with the view).
    first_age = snapshot_age(dash_duo)
    until(lambda: snapshot_age(dash_duo) >= first_age + 2, timeout=15)
    for selector in (f"#{Run.LIVE_BADGE}", f"#{Run.RECEIVER_STATE} .badge"):
        assert visibility(dash_duo, selector) == "visible", selector
    screenshot(dash_duo, "run_page_merger_silent_1600x1000.png")

    # The receiver process dies (no heartbeat): said as such.
    receivers.set("EMC", ages={"heartbeat_utc": 120, "last_reply_utc": 120, "last_snapshot_utc": 120})
    until(lambda: "EMC receiver: receiver dead" in text_of(dash_duo, Run.RECEIVER_STATE), timeout=15)
    until(lambda: text_of(dash_duo, Run.LIVE_BADGE) == "⚠ No new data · receiver dead", timeout=15)

    # Back to normal by itself.
    receivers.reset("EMC")
    until(lambda: "EMC receiver: flowing" in text_of(dash_duo, Run.RECEIVER_STATE), timeout=15)
    until(lambda: text_of(dash_duo, Run.LIVE_BADGE) == "● Live", timeout=15)
    assert "live-live" in badge_class(dash_duo)
    assert dash_duo.get_logs() == [], "browser console errors"


# ---- the pieces, without a browser ----

NOW = 1_750_000_000.0


def report(**fields) -> ReceiverReport:
    status = flowing("EMC", NOW)
    for name, value in fields.items():
        setattr(status, name, value)
    return ReceiverReport(receiver_liveness(status, NOW, 30.0), status)


def test_the_receiver_line_names_state_and_reason():
    silent = report(last_reply_utc=NOW - 60, consecutive_timeouts=2)
    text = repr(receiver_line(silent))
    assert "EMC receiver: " in text and "merger silent" in text and "for 60 s (2 requests unanswered)" in text
    assert "(1 request unanswered)" in repr(
        receiver_line(report(last_reply_utc=NOW - 60, consecutive_timeouts=1))
    )
    assert receiver_line(None) == []


@pytest.mark.parametrize(
    ("receiver", "expected"),
    [
        (None, ("● Live", "live")),
        ("flowing", ("● Live", "live")),
        ("starting", ("● Live", "live")),
        ("merger silent", ("⚠ No new data · merger silent", "stalled")),
        ("receiver not responding", ("⚠ No new data · receiver not responding", "stalled")),
        ("receiver dead", ("⚠ No new data · receiver dead", "stalled")),
        ("not storing", ("⚠ No new data · not storing", "stalled")),
    ],
)
def test_an_ongoing_run_is_live_only_while_its_receiver_receives(receiver, expected):
    assert live_state_text(False, False, True, receiver) == expected
    # A run that ended, a pause or a slice say so whatever the receiver does.
    assert live_state_text(False, False, False, receiver) == ("○ Run ended", "ended")
    assert live_state_text(True, False, True, receiver)[1] == "paused"
    assert live_state_text(False, True, True, receiver)[1] == "paused"


def test_the_receiver_shown_is_the_one_still_on_the_run(settings, receivers):
    service = ProcessingService.from_settings(settings)
    assert service.run_receiver(RUN, "EMC").subsystem == "EMC"
    assert service.run_receiver(RUN, "HLT").state.value == "flowing"
    # An older run, or one the receiver has left (it names the next run): no receiver line.
    assert service.run_receiver(RUN - 1, "EMC") is None
    receivers.set("EMC", last_run=RUN + 1)
    assert service.run_receiver(RUN, "EMC") is None
    receivers.set("EMC", last_run=0)
    assert service.run_receiver(RUN, "EMC") is None

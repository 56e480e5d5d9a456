"""`/control-room`: tiles coloured by data freshness and the checks of the histograms shown, the run on
top, and a plot rotating through the configured groups (`?rotate=N`); checked in the browser at 1920x1080
and as pure functions."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import ControlRoom
from dashboard.pages.control_room import (
    NO_DATA,
    QC_STALE,
    QCVerdict,
    RotationEntry,
    TileAlarms,
    alert_banner,
    group_figure,
    rotate_seconds,
    rotation,
    tile_alarms,
    tile_for,
)
from pipeline.detectors.base import CheckResult
from pipeline.emulator.runs import EmulatorConfig, SyntheticRuns
from pipeline.liveness import qc_liveness, receiver_liveness
from pipeline.processing.service import ProcessingService
from pipeline.qc.alarm_book import AlarmBook
from pipeline.qc.alarms import AlarmDefinition, AlarmResult, BetweenValues, Condition, Verdict
from pipeline.qc.freshness import VerdictAge, verdict_age, verdict_grace_s
from pipeline.qc.paths import status_path
from pipeline.qc.service import QCService
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus
from pipeline.store import SnapshotMeta, SnapshotStore
from pipeline.system_status import ReceiverReport
from tests.clocks import ManualClock
from tests.dashboard.browser import (
    in_viewport_without_scrolling,
    open_page,
    plot_fits,
    screenshot,
    set_viewport,
    visibility,
)
from tests.dashboard.live_receivers import LiveReceivers, flowing_status

RUN = 300500
SUBSYSTEMS = ("EMC", "TPC", "HLT")
GROUPS = ("EMC:FastOR", "TPC:DCAr vs Phi", "HLT:HLT Histograms")


def fresh_status(subsystem: str, now: float, **fields) -> ReceiverStatus:
    return flowing_status(subsystem, now, RUN, **fields)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three emulated snapshots of every subsystem over the last 5 minutes of an ongoing run."""
    data_dir = tmp_path_factory.mktemp("control-room") / "data"
    start = time.time() - 300
    clock = ManualClock(start)
    config = EmulatorConfig(step_s=20.0, run_length_s=3600.0, first_run=RUN, start_time_utc=start)
    runs = SyntheticRuns(SUBSYSTEMS, config, now=clock)
    store = SnapshotStore(data_dir)
    for index in range(3):
        clock.time_utc = start + 60 + 100 * index
        runs.advance(clock.time_utc)
        held = runs.snapshot()
        when = datetime.fromtimestamp(clock.time_utc, UTC)
        for subsystem in SUBSYSTEMS:
            names = [name for name in held if runs.subsystem_of(name) == subsystem]
            store.write_snapshot(SnapshotMeta(RUN, subsystem, when, "B", "pp"), [held[n] for n in names])
    return data_dir


@pytest.fixture
def receivers(recorded):
    live = LiveReceivers(recorded, SUBSYSTEMS, fresh_status)
    yield live
    live.stop()


@pytest.fixture
def settings(recorded, receivers, tmp_path):
    return Settings(
        data_dir=recorded,
        cache_dir=tmp_path / "cache",
        subsystems=SUBSYSTEMS,
        control_room_groups=GROUPS,
        status_refresh_ms=500,
    )


def tile(dash_duo, subsystem: str) -> tuple[str, str]:
    """(colour, text) of a subsystem's tile, ('', '') while it is not drawn (read in one script: the
    tiles are redrawn at every refresh)."""
    found = dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]);"
        " return e ? [e.getAttribute('data-colour') || '', e.innerText] : ['', ''];",
        ControlRoom.tile(subsystem),
    )
    return found[0], found[1]


def shown_group(dash_duo) -> str | None:
    return dash_duo.driver.execute_script(
        f"try {{ return document.querySelector('#{ControlRoom.GRAPH} .js-plotly-plot').layout.meta.group; }}"
        " catch (error) { return null; }"
    )


def test_the_control_room_rotates_groups_and_greys_stale_data(dash_duo, settings, receivers):
    dash_duo.start_server(create_app(settings))
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, "/control-room?rotate=2")
    # EMC's FastOR group holds the hot FastORs the emulator fills; they are the known ones, which the
    # hot-FastOR check (since qc's known-channel list) calls Medium: the tile is yellow.
    until(lambda: tile(dash_duo, "EMC")[0] == "warning", timeout=20)
    assert "hot FastOR" in tile(dash_duo, "EMC")[1]
    until(lambda: tile(dash_duo, "TPC")[0] == "good" and tile(dash_duo, "HLT")[0] == "good", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ControlRoom.RUN}", f"Run {RUN}")
    dash_duo.wait_for_contains_text(f"#{ControlRoom.RUN}", "running")

    # The plot goes through every configured group, in order, by itself.
    seen: list[str] = []

    def rotated() -> bool:
        group = shown_group(dash_duo)
        if group and (not seen or seen[-1] != group):
            seen.append(group)
        return len(seen) >= 4

    until(rotated, timeout=60)
    start = GROUPS.index(seen[0])
    assert seen[:4] == [GROUPS[(start + i) % 3] for i in range(4)]
    for selector in [f"#{ControlRoom.tile(s)}" for s in SUBSYSTEMS] + [
        f"#{ControlRoom.RUN}",
        f"#{ControlRoom.GRAPH}",
    ]:
        assert in_viewport_without_scrolling(dash_duo, selector), selector  # a big screen is never scrolled
        assert visibility(dash_duo, selector) == "visible", selector
        assert dash_duo.driver.execute_script(
            "const box = document.querySelector(arguments[0]).getBoundingClientRect();"
            " return box.bottom <= window.innerHeight && box.right <= window.innerWidth;",
            selector,
        ), f"{selector} reaches out of the screen"
    # Nothing floats over the plot's corners (the local-mode notice once covered the bottom right).
    assert dash_duo.driver.execute_script(
        "const graph = document.getElementById(arguments[0]); const box = graph.getBoundingClientRect();"
        " return [[box.left + 20, box.top + 20], [box.right - 20, box.bottom - 20],"
        " [box.left + 20, box.bottom - 20], [box.right - 20, box.top + 20]]"
        ".map(([x, y]) => graph.contains(document.elementFromPoint(x, y)));",
        ControlRoom.GRAPH,
    ) == [True, True, True, True]
    assert dash_duo.driver.execute_script(
        "return window.scrollY === 0 && document.body.scrollHeight <= window.innerHeight + 1"
    )
    assert dash_duo.driver.execute_script(
        "return document.querySelector('.page-header') === null || "
        "getComputedStyle(document.querySelector('.page-header')).display === 'none'"
    )
    until(lambda: shown_group(dash_duo) == "EMC:FastOR", timeout=15)
    screenshot(dash_duo, "control_room_1920x1080.png")

    # EMC's receiver stops beating: the tile shouts NO NEW DATA and keeps its last verdict (yellow).
    receivers.set("EMC", ages={"heartbeat_utc": 600, "last_snapshot_utc": 49})
    until(lambda: alert(dash_duo, "EMC") == "no-data", timeout=15)
    assert tile(dash_duo, "EMC")[0] == "warning"
    assert re.search(AGED_49 % "NO NEW DATA · receiver dead · ", tile(dash_duo, "EMC")[1])
    assert "hot FastOR" in tile(dash_duo, "EMC")[1]
    assert visibility(dash_duo, f"#{ControlRoom.tile('EMC')} .tile-alert-line") == "visible"
    assert tile(dash_duo, "TPC")[0] == "good" and alert(dash_duo, "TPC") == ""
    screenshot(dash_duo, "control_room_stale_emc_1920x1080.png")
    assert dash_duo.get_logs() == [], "browser console errors"


# A status kept 49 s old reads 49 to 51 s by the time the page shows it (rewritten every 0.5 s, the
# tiles every 0.5 s).
AGED_49 = r"%s(49|50|51) s"


def alert(dash_duo, subsystem: str) -> str | None:
    """The tile's alert ("no-data", "qc-stale", "" for none), None while it is not drawn."""
    return dash_duo.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.getAttribute('data-alert') : null;",
        ControlRoom.tile(subsystem),
    )


def looks(dash_duo, selector: str) -> dict:
    """How an element is drawn: its border width and colour, background image, font size (px)."""
    return dash_duo.driver.execute_script(
        "const s = getComputedStyle(document.querySelector(arguments[0]));"
        " return {border: parseFloat(s.borderTopWidth), borderColour: s.borderTopColor,"
        " stripes: s.backgroundImage, font: parseFloat(s.fontSize)};",
        selector,
    )


@pytest.fixture
def troubled(recorded, tmp_path):
    """The recorded run, plus: a QC verdict for HLT of its first snapshot only (the newer two waited
    minutes: not current), an active TPC alarm and a muted EMC one, and a QC service whose last
    heartbeat is 4 minutes old (stopped)."""
    data_dir = tmp_path / "data"
    shutil.copytree(recorded, data_dir)
    qc = QCService(data_dir, subsystems=["HLT"])
    qc.check_snapshot(qc.snapshots_to_check(subsystem="HLT")[0])
    book = AlarmBook(data_dir)
    vertex = AlarmDefinition("TPC", "vertex_z", "TPC vertex", Condition("mean", BetweenValues(-2, 2)))
    hot = AlarmDefinition("EMC", "hot", "FastOR", Condition("hot_channels", BetweenValues(0, 4)))
    when = datetime.now(UTC)
    book.update(
        "TPC",
        RUN,
        f"TPC_{RUN}_x",
        when,
        [AlarmResult(vertex, "fHistVertexZ", Verdict(True, "vertex z mean 4.1 cm", 4.1))],
    )
    emc = book.update(
        "EMC", RUN, f"EMC_{RUN}_x", when, [AlarmResult(hot, "FastOR", Verdict(True, "9 hot", 9.0))]
    )
    book.mute(emc[0].alarm["alarm_id"], when + timedelta(hours=1), "shift leader")
    status_path(data_dir).write_text(
        json.dumps({"heartbeat_utc": datetime.fromtimestamp(time.time() - 240, UTC).isoformat(), "pid": 1})
    )
    return data_dir


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_stopped_data_stale_verdicts_alarms_and_a_stopped_qc_service_cannot_be_missed(
    dash_duo, troubled, size
):
    live = LiveReceivers(troubled, SUBSYSTEMS, fresh_status)
    try:
        settings = Settings(
            data_dir=troubled,
            cache_dir=troubled.parent / "cache",
            subsystems=SUBSYSTEMS,
            control_room_groups=GROUPS,
            status_refresh_ms=500,
        )
        dash_duo.start_server(create_app(settings))
        set_viewport(dash_duo, *size)
        open_page(dash_duo, "/control-room?rotate=600")
        banner = f"#{ControlRoom.ALERT}"
        # The QC service stopped beating: a banner says so, between the header and the tiles.
        dash_duo.wait_for_contains_text(banner, "QC SERVICE STOPPED · no heartbeat for 4 min")
        # HLT's verdict is of the first of three snapshots: never shown as current.
        until(lambda: alert(dash_duo, "HLT") == "qc-stale", timeout=20)
        hlt = tile(dash_duo, "HLT")[1]
        assert "QC VERDICT NOT CURRENT · " in hlt and "· 2 unchecked" in hlt and "as of " in hlt, hlt
        # TPC's active alarm, with its message; EMC's muted one is only counted, quietly.
        until(lambda: "⚠ 1 ALARM · vertex z mean 4.1 cm" in tile(dash_duo, "TPC")[1], timeout=20)
        until(lambda: "1 muted alarm" in tile(dash_duo, "EMC")[1], timeout=20)
        assert "ALARM ·" not in tile(dash_duo, "EMC")[1]
        # EMC's merger goes silent: NO NEW DATA, its last verdict kept.
        live.set("EMC", ages={"last_reply_utc": 49, "last_snapshot_utc": 49}, consecutive_timeouts=3)
        until(lambda: alert(dash_duo, "EMC") == "no-data", timeout=15)
        assert re.search(AGED_49 % "NO NEW DATA · merger silent · ", tile(dash_duo, "EMC")[1])
        assert tile(dash_duo, "EMC")[0] == "warning"
        width, height = size
        for selector in (
            banner,
            f"#{ControlRoom.RUN} .cr-run-number",
            f"#{ControlRoom.tile('EMC')} .tile-alert-line",
            f"#{ControlRoom.tile('HLT')} .tile-alert-line",
            f"#{ControlRoom.tile('TPC')} .tile-alarms",
            f"#{ControlRoom.tile('TPC')} .tile-name",
        ):
            assert visibility(dash_duo, selector, scroll=None) == "visible", selector
        # Unlike any calm tile: a thick border and stripes; the alert line larger than the verdict's.
        stopped, calm = (
            looks(dash_duo, f"#{ControlRoom.tile('EMC')}"),
            looks(dash_duo, f"#{ControlRoom.tile('TPC')}"),
        )
        assert stopped["border"] >= 5 and "repeating-linear-gradient" in stopped["stripes"], stopped
        assert calm["border"] == 0 and calm["stripes"] == "none", calm
        alert_font = looks(dash_duo, f"#{ControlRoom.tile('EMC')} .tile-alert-line")["font"]
        assert alert_font > looks(dash_duo, f"#{ControlRoom.tile('EMC')} .tile-quality")["font"] >= 18
        assert dash_duo.driver.execute_script(
            "return window.scrollY === 0 && document.body.scrollHeight <= window.innerHeight + 1"
        ), "the screen scrolls"
        screenshot(dash_duo, f"control_room_alerts_{width}x{height}.png")
        # Every merger silent: the banner says no source sends data.
        for subsystem in SUBSYSTEMS:
            live.set(subsystem, ages={"last_reply_utc": 49, "last_snapshot_utc": 49}, consecutive_timeouts=3)
        expected = AGED_49 % "NO NEW DATA FROM ANY SOURCE · merger silent · newest data " + " old"
        until(lambda: re.search(expected, dash_duo.find_element(banner).text), timeout=15)
        assert visibility(dash_duo, banner, scroll=None) == "visible"
        # The banner grew by a line: the plot follows its box (not cut at the bottom of the screen).
        until(lambda: plot_fits(dash_duo), timeout=10)
        screenshot(dash_duo, f"control_room_all_silent_{width}x{height}.png")
        assert dash_duo.get_logs() == [], "browser console errors"
    finally:
        live.stop()


def test_a_bad_rotate_value_is_said_and_the_setting_used(dash_duo, settings):
    dash_duo.start_server(create_app(settings))
    open_page(dash_duo, "/control-room?rotate=fast")
    dash_duo.wait_for_contains_text(f"#{ControlRoom.NOTE}", "rotate=fast is not a number of seconds")
    assert dash_duo.get_logs() == []


NOW = 1_900_000_000.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def report(**fields) -> ReceiverReport:
    status = fresh_status("EMC", NOW, **fields)
    return ReceiverReport(receiver_liveness(status, NOW, 30.0), status)


def check(quality: str, message: str = "") -> CheckResult:
    return CheckResult("check", quality, message)


def test_the_tile_rule():
    assert tile_for(report(), []).colour == "good"
    assert tile_for(report(), [check("Good"), check("Null")]).colour == "good"
    medium = tile_for(report(), [check("Good"), check("Medium", "a bit off")])
    assert (medium.colour, medium.quality_line, medium.alert) == ("warning", "Medium: a bit off", "")
    bad = tile_for(report(), [check("Medium"), check("Bad", "4 hot"), check("Bad", "2 hot")])
    assert (bad.colour, bad.quality_line) == ("bad", "Bad: 4 hot (+1 more)")
    # Data that stopped: the alert shouts, the last verdict stays (its colour too), marked with its age.
    for fields, state in (
        ({"heartbeat_utc": 1}, "receiver dead"),
        ({"consecutive_timeouts": 2}, "merger silent"),
        ({"heartbeat_utc": NOW - 10}, "receiver not responding"),
    ):
        stopped = tile_for(report(**fields, last_snapshot_utc=NOW - 49), [check("Bad", "4 hot")])
        assert (stopped.colour, stopped.alert) == ("bad", NO_DATA), fields
        assert stopped.alert_line == f"NO NEW DATA · {state} · 49 s", fields
        assert stopped.quality_line == "as of 49 s ago · Bad: 4 hot", fields
    qc_bad = QCVerdict("Bad", "Bad: FastOR L0 · Hot FastORs", VerdictAge(52.0, False, 0))
    silent = tile_for(report(consecutive_timeouts=3, last_snapshot_utc=NOW - 49), [], qc_bad)
    assert (silent.colour, silent.alert_line) == ("bad", "NO NEW DATA · merger silent · 49 s")
    assert silent.quality_line == "as of 52 s ago · QC · Bad: FastOR L0 · Hot FastORs"
    never = tile_for(ReceiverReport(receiver_liveness(None, NOW, 30.0, "EMC"), None), [])
    assert (never.colour, never.alert, never.alert_line) == ("none", NO_DATA, "NO NEW DATA · no status")
    # Between runs nothing is expected: calm grey, no alert.
    between = tile_for(report(last_run=0), [check("Bad")], qc_bad)
    assert (between.colour, between.alert, between.state_line) == ("idle", "", "between runs · data 1 s old")


def test_a_qc_verdict_newer_snapshots_waited_too_long_for_is_not_current():
    good = QCVerdict("Good", "", VerdictAge(240.0, True, 48))
    tile = tile_for(report(), [], good)
    # Green stays (it was the verdict), but under the alert, with its age: never "QC · Good" as if now.
    assert (tile.colour, tile.alert) == ("good", QC_STALE)
    assert tile.alert_line == "QC VERDICT NOT CURRENT · 4 min old · 48 unchecked"
    assert tile.quality_line == "as of 4 min ago · QC · Good"
    current = tile_for(report(), [], QCVerdict("Good", "", VerdictAge(3.0, False, 1)))
    assert (current.alert, current.quality_line) == ("", "QC · Good")


def test_verdict_age_counts_the_wait_of_the_first_unchecked_snapshot():
    epochs = np.array([100.0, 110.0, 120.0, 130.0])
    grace = verdict_grace_s(1.0)
    assert grace == 8.0  # 3 cycles of 1 s and the liveness slack
    # Checked up to 120; the snapshot of 130 landed 5 s ago: the QC service is on it.
    assert verdict_age(120.0, epochs, 135.0, grace) == VerdictAge(15.0, False, 1)
    # It has waited 9 s: stale.
    assert verdict_age(120.0, epochs, 139.0, grace) == VerdictAge(19.0, True, 1)
    # Checked up to 100 while snapshots kept landing: stale although the newest is 1 s old.
    assert verdict_age(100.0, epochs, 131.0, grace) == VerdictAge(31.0, True, 3)
    assert verdict_age(130.0, epochs, 500.0, grace) == VerdictAge(370.0, False, 0)
    assert verdict_grace_s(5.0) == 20.0


def test_tile_alarms_count_open_ones_and_only_mention_muted_ones():
    frame = pd.DataFrame(
        {
            "subsystem": ["TPC", "TPC", "TPC", "TPC", "EMC", "TPC"],
            "run": [RUN, RUN, RUN, RUN, RUN, RUN - 1],
            "state": ["active", "acknowledged", "muted", "cleared", "active", "active"],
            "message": ["vertex_z mean 4.1 cm > 2", "older", "muted one", "gone", "emc", "last run"],
        }
    )
    alarms = tile_alarms(frame, "TPC", RUN)
    assert alarms == TileAlarms(2, 1, "vertex_z mean 4.1 cm > 2")
    tile = tile_for(report(), [], None, alarms)
    assert (tile.alarm_line, tile.alarms_loud) == ("⚠ 2 ALARMS · vertex_z mean 4.1 cm > 2 (+1 muted)", True)
    only_muted = tile_for(report(), [], None, TileAlarms(0, 2, ""))
    assert (only_muted.alarm_line, only_muted.alarms_loud) == ("2 muted alarms", False)
    assert tile_for(report(), [], None, TileAlarms(0, 0, "")).alarm_line == ""


def test_the_banner_says_every_source_is_silent_and_the_qc_service_stopped():
    running = qc_liveness({"heartbeat_utc": iso(NOW - 1), "heartbeat_every_s": 1.0}, NOW, 30.0)
    stopped = qc_liveness({"heartbeat_utc": iso(NOW - 240), "heartbeat_every_s": 1.0}, NOW, 30.0)
    silent = [report(consecutive_timeouts=2, last_snapshot_utc=NOW - 49 - i) for i in range(3)]
    one_flowing = [*silent[:2], report()]
    tiles_of = lambda reports: [tile_for(r, []) for r in reports]  # noqa: E731
    assert alert_banner(tiles_of(one_flowing), one_flowing, running) == []
    silent_line = "NO NEW DATA FROM ANY SOURCE · merger silent · newest data 49 s old"
    assert alert_banner(tiles_of(silent), silent, running) == [silent_line]
    qc_line = "QC SERVICE STOPPED · no heartbeat for 4 min · verdicts are not current"
    assert alert_banner(tiles_of(one_flowing), one_flowing, stopped) == [qc_line]
    assert alert_banner(tiles_of(silent), silent, stopped) == [silent_line, qc_line]


def test_rotate_seconds_from_the_url():
    assert rotate_seconds({}, 20.0) == (20.0, "")
    assert rotate_seconds({"rotate": "5"}, 20.0) == (5.0, "")
    for bad in ("0", "-3", "nan", "1e9", "soon"):
        seconds, note = rotate_seconds({"rotate": bad}, 20.0)
        assert seconds == 20.0 and note.startswith(f"rotate={bad} is not"), bad


def test_rotation_defaults_to_the_first_group_of_each_subsystem_and_names_unknown_ones(settings):
    service = ProcessingService.from_settings(settings)
    run = service.current_run()
    assert run.run == RUN and run.ongoing
    default, notes = rotation(service, run, (), SUBSYSTEMS)
    assert [(e.subsystem, e.group) for e in default] == [
        ("EMC", "FEE vs TRU"),
        ("TPC", "DCAr vs Phi"),
        ("HLT", "HLT Histograms"),
    ]
    assert notes == []
    chosen, notes = rotation(service, run, ("EMC:FastOR", "EMC:No such group", "nonsense"), SUBSYSTEMS)
    assert [(e.subsystem, e.group) for e in chosen] == [("EMC", "FastOR")]
    assert notes == ["'nonsense' is not SYS:Group title", f"EMC:No such group has no histograms in run {RUN}"]


def test_unrelated_maps_get_their_own_colour_scale_supermodules_share_one(settings):
    service = ProcessingService.from_settings(settings)
    run = service.current_run().run
    hlt = group_figure(service, run, RotationEntry("HLT", "HLT Histograms"))
    maps = [trace for trace in hlt.data if trace.type == "heatmap"]
    assert maps and all(trace.coloraxis is None and trace.showscale is False for trace in maps)
    assert hlt.layout.paper_bgcolor == "#0b1220" and hlt.layout.meta is None
    supermodules = group_figure(service, run, RotationEntry("EMC", "FEE vs TRU"))
    grid_maps = [trace for trace in supermodules.data if trace.type == "heatmap"]
    assert len(grid_maps) == 20 and {trace.coloraxis for trace in grid_maps} == {"coloraxis"}


def test_the_control_room_draws_a_group_as_the_run_page_does(settings):
    """The experts' log z on FEE vs TRU (nearly invisible on a linear scale): the control room and the
    run page's grid take the same draw options from the same rule."""
    from dashboard.components import histogram_view as hv
    from dashboard.figures import log10_positive
    from dashboard.layout import grid_entry

    service = ProcessingService.from_settings(settings)
    run = service.current_run().run
    view = service.view(run, "EMC")
    shown = hv.shown_histograms(view, "EMC", grid_entry("FEE vs TRU"))
    assert hv.default_logs(shown) == (False, False, True)
    on_run_page = hv.figure_for(shown, hv.default_logs(shown), "")
    big_screen = group_figure(service, run, RotationEntry("EMC", "FEE vs TRU"))
    first = shown.members[0].histogram
    expected = log10_positive(np.asarray(first.values(), dtype=float).T)
    for figure in (on_run_page, big_screen):
        z = np.asarray(figure.data[0].z, dtype=float)
        np.testing.assert_array_equal(np.isnan(z), np.isnan(expected))
        np.testing.assert_allclose(z[~np.isnan(z)], expected[~np.isnan(expected)])
        # The colour bar is labelled with real contents (decades), as a log scale is.
        assert figure.layout.coloraxis.colorbar.tickmode == "array"

"""When the dashboard server stops answering, nothing on screen may go on saying "live" or "flowing": the
control room greys its tiles and dims its plot, the run page's live badge says the connection is lost,
and both come back by themselves when the server answers again."""

from __future__ import annotations

import time

import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from dashboard.ids import ControlRoom, Run
from pipeline.settings import Settings
from pipeline.status import ReceiverStatus
from tests.dashboard.browser import open_page, plot_fits, screenshot, set_viewport, visibility
from tests.dashboard.emulated_run import RUN, EmulatedRun
from tests.dashboard.live_receivers import LiveReceivers, flowing_status

GREY_TILE = "rgb(59, 68, 83)"  # body.connection-lost .cr-tile in assets/control-room.css


@pytest.fixture
def settings(tmp_path):
    run = EmulatedRun(tmp_path / "data", time.time() - 200.0)
    for _ in range(3):
        run.store_snapshot()
    return Settings(
        data_dir=run.store.data_dir, cache_dir=tmp_path / "cache", subsystems=("EMC",), status_refresh_ms=500
    )


@pytest.fixture
def receivers(settings):
    def fresh(subsystem: str, now: float) -> ReceiverStatus:
        return flowing_status(subsystem, now, RUN)

    live = LiveReceivers(settings.data_dir, ("EMC",), fresh)
    yield live
    live.stop()


def tile_look(dash_duo) -> tuple[str, str]:
    """(background colour, text of the state line as drawn, generated content included) of the EMC tile."""
    return tuple(
        dash_duo.driver.execute_script(
            "const t = document.getElementById(arguments[0]); if (!t) return ['', ''];"
            "const s = t.querySelector('.tile-state');"
            "const before = getComputedStyle(s, '::before').content;"
            "return [getComputedStyle(t).backgroundColor,"
            " (before && before !== 'none' ? JSON.parse(before) : '') + s.innerText];",
            ControlRoom.tile("EMC"),
        )
    )


def badge_look(dash_duo) -> str:
    """The live badge as drawn, its generated "· connection lost" included."""
    return dash_duo.driver.execute_script(
        "const b = document.getElementById(arguments[0]); if (!b) return '';"
        "const after = getComputedStyle(b, '::after').content;"
        "return b.innerText + (after && after !== 'none' ? JSON.parse(after) : '');",
        Run.LIVE_BADGE,
    )


def lose_and_regain(dash_duo, app, check_lost, check_back) -> None:
    port = int(dash_duo.server_url.rsplit(":", 1)[1].strip("/"))
    dash_duo.server.stop()
    until(lambda: dash_duo.find_element("#shell-connection-lost").is_displayed(), timeout=10)
    assert visibility(dash_duo, "#shell-connection-lost") == "visible"
    check_lost()
    dash_duo.server.start(app, port=port)
    until(lambda: not dash_duo.find_element("#shell-connection-lost").is_displayed(), timeout=10)
    check_back()


def test_the_control_room_greys_out_while_the_server_is_gone(dash_duo, settings, receivers):
    app = create_app(settings)
    dash_duo.start_server(app)
    set_viewport(dash_duo, 1920, 1080)
    open_page(dash_duo, "/control-room")
    until(lambda: tile_look(dash_duo)[1].startswith("flowing"), timeout=15)
    coloured = tile_look(dash_duo)[0]
    assert coloured != GREY_TILE

    def lost() -> None:
        until(lambda: tile_look(dash_duo)[0] == GREY_TILE, timeout=5)
        assert tile_look(dash_duo)[1].startswith("connection to the server lost · was: flowing")
        # The banner pushes the screen down: it once floated over the header and hid the run.
        for selector in (f"#{ControlRoom.RUN} .cr-run-number", f"#{ControlRoom.RUN} .cr-run-length"):
            assert visibility(dash_duo, selector, scroll=None) == "visible", selector
        until(lambda: plot_fits(dash_duo), timeout=5)  # the plot follows its shorter box
        screenshot(dash_duo, "control_room_connection_lost_1920x1080.png")

    def back() -> None:
        until(lambda: tile_look(dash_duo)[0] == coloured, timeout=10)
        assert tile_look(dash_duo)[1].startswith("flowing")

    lose_and_regain(dash_duo, app, lost, back)


def test_the_run_page_badge_says_the_connection_is_lost(dash_duo, settings, receivers):
    app = create_app(settings)
    dash_duo.start_server(app)
    set_viewport(dash_duo, 1600, 1000)
    open_page(dash_duo, f"/run/{RUN}/EMC")
    until(lambda: badge_look(dash_duo) == "● Live", timeout=15)

    def lost() -> None:
        until(lambda: badge_look(dash_duo) == "● Live · connection lost", timeout=5)
        assert visibility(dash_duo, f"#{Run.LIVE_BADGE}") == "visible"
        screenshot(dash_duo, "run_page_connection_lost_1600x1000.png")

    lose_and_regain(dash_duo, app, lost, lambda: until(lambda: badge_look(dash_duo) == "● Live", timeout=10))

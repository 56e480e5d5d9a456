"""What a person sees of access control: the local-mode banner on every page, the login page, who is
logged in, the expert-only controls disabled for a shifter, and logging out."""

from __future__ import annotations

import pytest
from dash.testing.wait import until

from dashboard.app import create_app
from pipeline.settings import Settings
from tests.api_store import write_run
from tests.dashboard.access_app import PASSWORDS, RUN_PATH, access_settings
from tests.dashboard.browser import open_page, screenshot, set_viewport, visibility

pytestmark = pytest.mark.browser
TIMEOUT_S = 30  # the machine is shared: generous deadlines, polled


def _text(dash_duo, selector: str) -> str:
    return dash_duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector
    )


def _exists(dash_duo, selector: str) -> bool:
    return dash_duo.driver.execute_script("return !!document.querySelector(arguments[0])", selector)


def _plotted_traces(dash_duo) -> int:
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#run-graph .js-plotly-plot');"
        " return g && g.data ? g.data.length : 0;"
    )


def _start(dash_duo, app) -> None:
    # Not navigated by dash_duo: with logins, "/" is a redirect to the login page, not the Dash app.
    dash_duo.start_server(app, navigate=False)
    dash_duo._url = dash_duo.server.url  # (the server_url setter would wait for a Dash page)


def test_local_mode_says_so_on_every_page(dash_duo, tmp_path):
    write_run(tmp_path / "data")
    settings = Settings(
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        users_file=tmp_path / "none.toml",
        subsystems=("EMC",),
    )
    _start(dash_duo, create_app(settings))
    set_viewport(dash_duo, 1600, 1000)
    for path, shot in (
        (RUN_PATH, "access_local_mode_run.png"),
        ("/control-room", "access_local_mode_control_room.png"),
    ):
        open_page(dash_duo, path)
        until(lambda: "everyone is admin" in _text(dash_duo, "#shell-local-mode-banner"), TIMEOUT_S)
        assert visibility(dash_duo, "#shell-local-mode-banner") == "visible", path
        screenshot(dash_duo, shot)
    open_page(dash_duo, RUN_PATH)
    until(lambda: _text(dash_duo, "#shell-local-mode") == "LOCAL MODE · everyone is admin", TIMEOUT_S)
    # An admin (everyone, here) has the expert controls, and the callbacks pass the CSRF check.
    until(
        lambda: dash_duo.driver.execute_script("return !!document.querySelector('#run-opt-threshold')"),
        TIMEOUT_S,
    )
    assert not dash_duo.driver.execute_script("return document.querySelector('#run-opt-threshold').disabled")
    until(lambda: _plotted_traces(dash_duo) > 0, TIMEOUT_S)
    assert dash_duo.get_logs() == []


def test_a_shifter_logs_in_sees_who_and_what_is_for_experts_and_logs_out(dash_duo, tmp_path):
    _start(dash_duo, create_app(access_settings(tmp_path)))
    set_viewport(dash_duo, 1600, 1000)
    driver = dash_duo.driver
    open_page(dash_duo, RUN_PATH)
    until(lambda: driver.execute_script("return !!document.querySelector('#login-form')"), TIMEOUT_S)
    assert "/login?next=" in driver.current_url
    driver.find_element("css selector", "#login-name").send_keys("shifter1")
    driver.find_element("css selector", "#login-password").send_keys("not-the-password")
    driver.find_element("css selector", "#login-submit").click()
    until(lambda: "Wrong user name or password." in _text(dash_duo, "#login-message"), TIMEOUT_S)
    screenshot(dash_duo, "access_login_wrong_password.png")
    driver.find_element("css selector", "#login-password").send_keys(PASSWORDS["shifter1"])
    driver.find_element("css selector", "#login-submit").click()
    until(lambda: _text(dash_duo, "#shell-user-name") == "shifter1", TIMEOUT_S)
    assert driver.current_url.endswith(RUN_PATH)
    assert _text(dash_duo, "#shell-user-role") == "shifter"
    until(lambda: "for experts" in _text(dash_duo, "#run-expert-note"), TIMEOUT_S)
    assert visibility(dash_duo, "#run-expert-note") == "visible"
    assert driver.execute_script("return document.querySelector('#run-opt-threshold').matches(':disabled')")
    assert driver.execute_script("return document.querySelector('#run-slice-apply').matches(':disabled')")
    # The shifter's own view is computed: the callbacks pass the server's checks.
    until(lambda: _plotted_traces(dash_duo) > 0, TIMEOUT_S)
    screenshot(dash_duo, "access_shifter_run_page.png")
    # Chrome logs the refused password's 401 page as a failed load: that one is expected, nothing else.
    logs = [
        entry for entry in dash_duo.get_logs() if "/login - Failed to load resource" not in entry["message"]
    ]
    assert logs == []
    driver.find_element("css selector", "#shell-logout button").click()
    until(lambda: "Logged out." in _text(dash_duo, "#login-message"), TIMEOUT_S)
    open_page(dash_duo, "/runs")
    until(lambda: driver.execute_script("return !!document.querySelector('#login-form')"), TIMEOUT_S)

"""Access control enforced by the server: logins, lockout, CSRF, roles per route and per callback,
admin-only user management, the kiosk, the public /status, and downloads that serve data only."""

from __future__ import annotations

import logging
import os

import pytest

from benchmarks.dash_bodies import callback_key, update_body
from dashboard.access.callbacks import undeclared
from dashboard.access.guard import DASH_ENDPOINT_ROLES, PAGE_ENDPOINTS
from dashboard.app import create_app
from pipeline.auth.users import UsersFile
from pipeline.web.access import required_role
from tests.api_store import RUN
from tests.dashboard.access_app import (
    KIOSK_TOKEN,
    PASSWORDS,
    RUN_PATH,
    _form_token,
    access_settings,
    csrf_token,
    log_in,
)

UPDATE = "/_dash-update-component"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("access")


@pytest.fixture(scope="module")
def app(base):
    return create_app(access_settings(base))


def _navigate_body(app, changed: str, **values):
    key = callback_key(app.callback_map, "run-url.search", "run-opt-threshold.value")
    page = {
        "run-url.search": "",
        "run-url.pathname": RUN_PATH,
        "run-merger-mode.value": "cumulative",
        "run-opt-scale.value": True,
        "run-opt-threshold.value": "",
        "run-slice-range.value": [0, 3],
        "run-slice-range.max": 3,
        "run-slice-min.value": 0,
        "run-slice-max.value": 3,
        **values,
    }
    return update_body(app.callback_map, key, page, changed=(changed,))


def _tree(folder):
    """Every file under `folder` with its size and modification time: 'nothing changed on disk'."""
    return {
        (root, name, os.stat(os.path.join(root, name)).st_mtime_ns, os.stat(os.path.join(root, name)).st_size)
        for root, _, names in os.walk(folder)
        for name in names
        if not name.startswith("access.sqlite3")  # the ledger counts the refusal
    }


def test_pages_need_a_login_and_the_session_cookie_is_httponly_and_samesite(app):
    client = app.server.test_client()
    answer = client.get("/runs")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=%2Fruns"
    assert client.post(UPDATE, json={"output": "shell-page.children"}).status_code == 401
    assert client.get("/api/runs").status_code == 401
    client.get("/login")
    answer = client.post(
        "/login",
        data={"username": "expert1", "password": PASSWORDS["expert1"], "csrf_token": _form_token(client),
              "next": "/runs"},
    )  # fmt: skip
    assert answer.status_code == 302 and answer.headers["Location"] == "/runs"
    cookie = next(c for c in answer.headers.get_all("Set-Cookie") if c.startswith("overwatch_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/runs").status_code == 200
    assert client.get("/api/runs").status_code == 200


def test_logout_ends_the_session_and_needs_csrf(app):
    client = log_in(app, "shifter1")
    assert client.post("/logout").status_code == 400  # no CSRF token: refused, still logged in
    assert client.get("/runs").status_code == 200
    answer = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 200 and "Logged out." in answer.get_data(as_text=True)
    assert client.get("/runs").status_code == 302


def test_an_outside_next_target_is_ignored(app):
    client = app.server.test_client()
    client.get("/login")
    answer = client.post(
        "/login",
        data={"username": "shifter1", "password": PASSWORDS["shifter1"], "csrf_token": _form_token(client),
              "next": "//evil.example/x"},
    )  # fmt: skip
    assert answer.headers["Location"] == "/runs"


def test_login_without_csrf_is_refused(app):
    client = app.server.test_client()
    client.get("/login")
    answer = client.post("/login", data={"username": "shifter1", "password": PASSWORDS["shifter1"]})
    assert answer.status_code == 400 and "CSRF" in answer.get_json()["message"]
    assert client.get("/runs").status_code == 302


def test_wrong_passwords_lock_the_name_with_a_clear_message_logged_and_counted(tmp_path, caplog):
    app = create_app(access_settings(tmp_path))
    control = app.server.extensions["overwatch.access"]
    client = app.server.test_client()
    client.get("/login")
    token = _form_token(client)
    caplog.set_level(logging.WARNING, logger="overwatch.access")
    for attempt in range(5):
        answer = client.post(
            "/login", data={"username": "expert1", "password": f"guess-{attempt}", "csrf_token": token}
        )
        assert answer.status_code == 401
        assert "Wrong user name or password." in answer.get_data(as_text=True)
        assert f"guess-{attempt}" not in answer.get_data(as_text=True)
    # Now even the right password is refused, without being checked, until the lock ends.
    answer = client.post(
        "/login", data={"username": "expert1", "password": PASSWORDS["expert1"], "csrf_token": token}
    )
    assert answer.status_code == 429 and "try again in" in answer.get_data(as_text=True)
    assert client.get("/runs").status_code == 302
    assert control.ledger.counters()["login_failed"] == 5 and control.ledger.counters()["login_locked"] == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert (
        "failed login for 'expert1'" in logged
        and "guess-" not in logged
        and PASSWORDS["expert1"] not in logged
    )


def test_failures_over_many_names_lock_the_address(tmp_path):
    app = create_app(access_settings(tmp_path))
    client = app.server.test_client()
    client.get("/login")
    token = _form_token(client)
    for index in range(5):
        client.post(
            "/login", data={"username": f"nobody{index}", "password": "guessing!", "csrf_token": token}
        )
    answer = client.post(
        "/login", data={"username": "admin1", "password": PASSWORDS["admin1"], "csrf_token": token}
    )
    assert answer.status_code == 429


def test_a_dash_callback_without_csrf_is_refused(app):
    client = log_in(app, "expert1")
    body = _navigate_body(app, "run-group.value")
    answer = client.post(UPDATE, json=body)
    assert answer.status_code == 400 and "CSRF token missing" in answer.get_json()["message"]
    assert client.post(UPDATE, json=body, headers={"X-CSRFToken": "forged"}).status_code == 400
    assert client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)}).status_code in (
        200,
        204,
    )


def test_a_shifter_changing_a_threshold_is_refused_by_the_server_and_nothing_is_written(app, base):
    client = log_in(app, "shifter1")
    before = _tree(base)
    body = _navigate_body(app, "run-opt-threshold.value", **{"run-opt-threshold.value": "0.5"})
    answer = client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)})
    assert answer.status_code == 403
    assert "needs the expert role" in answer.get_json()["message"]
    assert _tree(base) == before
    for changed in ("run-slice-min.value", "run-merger-mode.value", "run-slice-apply.n_clicks"):
        body = _navigate_body(app, changed)
        assert client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)}).status_code == 403
    # The same callback serves the shifter's own choices.
    body = _navigate_body(app, "run-group.value")
    assert client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)}).status_code in (
        200,
        204,
    )


def test_an_expert_changes_the_threshold(app):
    client = log_in(app, "expert1")
    body = _navigate_body(app, "run-opt-threshold.value", **{"run-opt-threshold.value": "0.5"})
    answer = client.post(UPDATE, json=body, headers={"X-CSRFToken": csrf_token(client)})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "threshold=0.5" in answer.get_json()["response"]["run-url"]["search"]


def test_an_undeclared_or_malformed_callback_needs_admin(app):
    client = log_in(app, "expert1")
    headers = {"X-CSRFToken": csrf_token(client)}
    assert client.post(UPDATE, json={"output": "made-up.children"}, headers=headers).status_code == 403
    assert client.post(UPDATE, data="not json", headers=headers).status_code == 403


def test_every_callback_and_every_route_declares_its_role(app):
    app.server.test_client().get("/health")  # Dash adds its cancel callbacks on the first request
    assert undeclared(app) == []
    server = app.server
    for rule in server.url_map.iter_rules():
        declared = required_role(server.view_functions[rule.endpoint])
        assert (
            declared is not None or rule.endpoint in DASH_ENDPOINT_ROLES or rule.endpoint in PAGE_ENDPOINTS
        ), rule


def test_user_management_is_admin_only(app, base):
    users = UsersFile(base / "users.toml")
    form = {"action": "set", "name": "newbie", "role": "expert", "password": "newbie-password"}
    for name in ("shifter1", "expert1"):
        client = log_in(app, name)
        assert client.get("/admin/users").status_code == 403
        answer = client.post("/admin/users", data={**form, "csrf_token": csrf_token(client)})
        assert answer.status_code == 403
        assert users.get("newbie") is None
    admin = log_in(app, "admin1")
    assert admin.get("/admin/users").status_code == 200
    answer = admin.post("/admin/users", data={**form, "csrf_token": csrf_token(admin)})
    assert answer.status_code == 200 and "newbie added" in answer.get_data(as_text=True)
    assert users.verify("newbie", "newbie-password").role.label == "expert"
    answer = admin.post(
        "/admin/users", data={"action": "remove", "name": "newbie", "csrf_token": csrf_token(admin)}
    )
    assert answer.status_code == 200 and users.get("newbie") is None


def test_a_password_change_ends_the_old_sessions(tmp_path):
    app = create_app(access_settings(tmp_path))
    client = log_in(app, "expert1")
    assert client.get("/runs").status_code == 200
    UsersFile(tmp_path / "users.toml").set_user("expert1", password="a-new-password")
    assert client.get("/runs").status_code == 302


def test_the_kiosk_token_opens_the_control_room_read_only(app):
    client = app.server.test_client()
    assert client.get("/control-room?kiosk=wrong-token").status_code == 403
    assert client.get("/control-room").status_code == 302  # still not logged in
    answer = client.get(f"/control-room?kiosk={KIOSK_TOKEN}&rotate=30")
    assert answer.status_code == 302 and answer.headers["Location"] == "/control-room?rotate=30"
    assert KIOSK_TOKEN not in answer.headers["Location"]
    assert client.get("/control-room").status_code == 200
    assert client.get("/api/status").status_code == 200
    for path in ("/runs", RUN_PATH, "/system", "/admin/users"):
        assert client.get(path).status_code == 403, path
    assert client.get("/api/runs").status_code == 403
    assert client.get(f"/download/{RUN}/EMC.root").status_code == 403
    headers = {"X-CSRFToken": csrf_token(client)}
    tiles = callback_key(app.callback_map, "control-room-tiles.children")
    answer = client.post(
        UPDATE,
        json=update_body(app.callback_map, tiles, {}, ("control-room-tile-refresh.n_intervals",)),
        headers=headers,
    )
    assert answer.status_code == 200
    runs_table = callback_key(app.callback_map, "runs-table.children")
    assert (
        client.post(UPDATE, json=update_body(app.callback_map, runs_table), headers=headers).status_code
        == 403
    )
    body = _navigate_body(app, "run-group.value")
    assert client.post(UPDATE, json=body, headers=headers).status_code == 403


def test_status_is_public(app):
    answer = app.server.test_client().get("/status")
    assert answer.status_code in (200, 500) and answer.mimetype == "text/plain"
    assert answer.get_data(as_text=True).startswith(("Alive", "Not alive"))


@pytest.mark.parametrize(
    "path",
    [
        "/download/../../secret_key",
        f"/download/{RUN}/..%2F..%2Fsecret_key.root",
        f"/download/{RUN}/../../users.toml",
        f"/download/{RUN}/%2e%2e%2fusers.parquet",
        "/download/../data/access/access.sqlite3",
        "/assets/../data/secret_key",
        "/assets/..%2F..%2Fusers.toml",
        "/assets/%2e%2e/%2e%2e/pyproject.toml",
        "/_dash-component-suites/dash/../../../../secret_key",
        "/static/..%2Fsecret_key",
        f"/api/runs/{RUN}/EMC/histograms/..%2F..%2F..%2Fsecret_key",
        "/data/secret_key",
        "/users.toml",
    ],
)
def test_crafted_download_paths_never_serve_internals(app, base, path):
    client = log_in(app, "admin1")
    answer = client.get(path)
    body = answer.get_data()
    secret = (base / "data" / "secret_key").read_bytes()
    assert secret not in body and b"$argon2" not in body and b"SQLite format" not in body
    assert answer.status_code in (400, 403, 404), (path, answer.status_code)


def test_a_download_names_no_file_only_a_view(app, base):
    client = log_in(app, "shifter1")
    answer = client.get(f"/download/{RUN}/EMC.parquet")
    assert answer.status_code == 200 and answer.data[:4] == b"PAR1"
    # A path in the query is a histogram name like any other: one the run does not have is a 404 naming
    # it, never the file.
    answer = client.get(f"/download/{RUN}/EMC.root?hist=../../secret_key")
    assert answer.status_code == 404 and "no histogram '../../secret_key'" in answer.get_data(as_text=True)
    assert (base / "data" / "secret_key").read_bytes() not in answer.data


def test_local_mode_everyone_is_admin_and_every_page_says_so(tmp_path):
    settings = access_settings(tmp_path, users_file=tmp_path / "absent.toml")
    client = create_app(settings).server.test_client()
    assert client.get("/runs").status_code == 200
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "LOCAL MODE" in layout and "everyone is admin" in layout
    assert client.get("/admin/users").status_code == 200


def test_serving_beyond_loopback_needs_a_users_file(tmp_path):
    from dashboard.access.policy import StartRefused

    settings = access_settings(tmp_path, users_file=tmp_path / "absent.toml", dash_host="0.0.0.0")
    with pytest.raises(StartRefused, match="without a users file"):
        create_app(settings)
    # With users it starts, and nobody is admin without logging in.
    client = create_app(access_settings(tmp_path, dash_host="0.0.0.0")).server.test_client()
    assert client.get("/runs").status_code == 302


def test_the_main_job_refuses_to_start_on_all_addresses_without_users(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "OVERWATCH_DASH_HOST": "0.0.0.0",
        "OVERWATCH_USERS_FILE": str(tmp_path / "absent.toml"),
        "OVERWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, str(repo / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0" in done.stderr and "users add NAME --role admin" in done.stderr
    assert not (tmp_path / "data" / "status").exists()  # no receiver was started

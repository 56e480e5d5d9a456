"""A dashboard with logins for the access tests: a small EMC run, three users and a kiosk token."""

from __future__ import annotations

from pathlib import Path

import dash
from flask.testing import FlaskClient

from pipeline.auth.roles import Role
from pipeline.auth.users import UsersFile
from pipeline.settings import Settings
from tests.api_store import RUN, write_run

PASSWORDS = {"shifter1": "shifter-password", "expert1": "expert-password", "admin1": "admin-password"}
ROLES = {"shifter1": Role.SHIFTER, "expert1": Role.EXPERT, "admin1": Role.ADMIN}
KIOSK_TOKEN = "kiosk-token-5b1e0c"
RUN_PATH = f"/run/{RUN}/EMC"


def access_settings(base: Path, **overrides) -> Settings:
    users = UsersFile(base / "users.toml")
    if not users.exists():
        for name, password in PASSWORDS.items():
            users.set_user(name, ROLES[name], password)
        write_run(base / "data")
    values = {
        "data_dir": base / "data",
        "cache_dir": base / "cache",
        "users_file": base / "users.toml",
        "kiosk_token": KIOSK_TOKEN,
        "subsystems": ("EMC",),
        **overrides,
    }
    return Settings(**values)


def csrf_token(client: FlaskClient) -> str:
    """The token a page carries (the cookie the page's JavaScript sends back), by opening a page."""
    cookie = client.get_cookie("overwatch_csrf")
    if cookie is None:
        client.get("/control-room")
        cookie = client.get_cookie("overwatch_csrf")
    return cookie.value


def log_in(app: dash.Dash, name: str) -> FlaskClient:
    client = app.server.test_client()
    client.get("/login")
    token = client.get_cookie("overwatch_session") and _form_token(client)
    answer = client.post("/login", data={"username": name, "password": PASSWORDS[name], "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    client.get(RUN_PATH)  # a page: sets the CSRF cookie
    return client


def _form_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return page.split("name='csrf_token' value='")[1].split("'")[0]

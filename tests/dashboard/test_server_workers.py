"""What each production-server worker serves from its start: the page's script files, also while its
first request is still setting Dash up in another thread (gthread workers answer several at once)."""

from __future__ import annotations

import re
import threading

import dash

from dashboard.app import create_app
from dashboard.server import register_component_files
from pipeline.settings import Settings


def _scripts_while_setting_up(app: dash.Dash, scripts: list[str]) -> list[int]:
    """Status codes of `scripts` asked while another thread's first request is inside Dash's set-up,
    as when a browser asks a fresh worker for the page's scripts all at once."""
    inside, release = threading.Event(), threading.Event()
    walk_assets = app._walk_assets_directory

    def slow_walk() -> None:  # Dash's set-up marks itself done first, then walks assets, then registers
        inside.set()
        release.wait(30)
        walk_assets()

    app._walk_assets_directory = slow_walk
    first = threading.Thread(target=lambda: app.server.test_client().get("/runs"))
    first.start()
    try:
        assert inside.wait(30)
        client = app.server.test_client()
        return [client.get(path).status_code for path in scripts]
    finally:
        release.set()
        first.join(30)


def test_a_fresh_worker_serves_the_scripts_while_its_first_request_sets_dash_up(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    page = create_app(settings).server.test_client().get("/runs")
    assert page.status_code == 200
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page.get_data(as_text=True))
    assert len(scripts) >= 5  # React, the renderer, dcc, html, bootstrap components

    # Dash registers the files it serves while setting up, after marking the set-up done: a script
    # asked meanwhile was refused, and a cold page never loaded.
    assert 404 in _scripts_while_setting_up(create_app(settings), scripts)
    ready = create_app(settings)
    register_component_files(ready)
    assert _scripts_while_setting_up(ready, scripts) == [200] * len(scripts)

"""The production WSGI server for the dashboard: gunicorn, `settings.dash_workers` processes with
`settings.dash_threads` threads each (gthread workers).

Each worker builds its own app after the fork (no preloading): its ProcessingService, in-memory caches
and file handles are its own, while the disk caches under `settings.cache_dir` (processed views and
background-callback results) are shared by all of them. Flask's development server is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from pipeline.settings import Settings


class DashboardServer(BaseApplication):
    """gunicorn configured from Settings, serving the WSGI app `app_factory()` builds in each worker."""

    def __init__(self, settings: Settings, app_factory: Callable[[], Any]) -> None:
        self.settings = settings
        self.app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options = {
            "bind": f"{settings.dash_host}:{settings.dash_port}",
            "workers": settings.dash_workers,
            "threads": settings.dash_threads,
            "worker_class": "gthread",
            "timeout": settings.dash_timeout_s,
            "graceful_timeout": 5,
            "keepalive": 5,
            # One line per request would bury what operators need (restarts, errors).
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "overwatch-dashboard",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def wsgi_factory(settings: Settings) -> Callable[[], Any]:
    """Builds the dashboard's Flask server in a worker."""

    def build() -> Any:
        from dashboard.app import create_app

        app = create_app(settings)
        register_component_files(app)
        return app.server

    return build


def register_component_files(app: Any) -> None:
    """Let this worker serve every script and stylesheet of the page from its start.

    Dash registers the files it may serve on a worker's first request, after marking that set-up done:
    a gthread worker answering the browser's parallel script requests meanwhile refused them (404), and
    a cold page never loaded. Registering them here, before the worker takes requests, closes that gap.
    """
    app._generate_css_dist_html()
    app._generate_scripts_html()


def serve(settings: Settings) -> None:
    """Serve the dashboard until SIGINT/SIGTERM (gunicorn's master handles them and stops its workers)."""
    DashboardServer(settings, wsgi_factory(settings)).run()

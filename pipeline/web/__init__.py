"""HTTP routes for machines: the read-only data API and the push receiver, served by the dashboard's Flask.

`register_api_routes(server, service, settings)` is the one call that adds them to a Flask app (the
Dash app's `app.server`). `pipeline` never imports `dashboard`: these routes need only the processing.
"""

from __future__ import annotations

from flask import Flask

from pipeline.processing.service import ProcessingService
from pipeline.push import PushReceiver
from pipeline.settings import Settings
from pipeline.web.access import Authorizer, install_access_checks, token_authorizer
from pipeline.web.api import api_blueprint
from pipeline.web.push import push_blueprint

__all__ = ["register_api_routes"]


def register_api_routes(
    server: Flask, service: ProcessingService, settings: Settings, authorizer: Authorizer | None = None
) -> None:
    """Add `/api/...` to `server`. `authorizer` decides access per role (default: anyone reads, pushes
    need `settings.push_token`); login and roles replace it without touching the routes."""
    authorizer = authorizer or token_authorizer(settings.push_token)
    receiver = PushReceiver(settings.data_dir, settings.subsystems)
    for blueprint in (push_blueprint(receiver, settings.push_max_bytes), api_blueprint(service)):
        install_access_checks(blueprint, authorizer)
        server.register_blueprint(blueprint)

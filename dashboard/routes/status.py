"""`GET /status` and `GET /api/status`: the system's health for other sites and monitoring tools.

`/status` keeps the original's contract, which other sites poll: `200` with the body `Alive` while every
configured receiver is alive and its merger answers (data flowing, or between runs) and the QC service
beats (if it ever ran), else `500` with one line per receiver (or QC service) that is not (which, which
state, why). `/api/status` answers JSON with
everything the /system page shows. Both read the processing service only (`pipeline.liveness` decides
the states), and neither may be cached by a proxy or a browser.
"""

from __future__ import annotations

import flask

from pipeline.auth.roles import Role
from pipeline.processing.service import ProcessingService
from pipeline.settings import Settings
from pipeline.web.access import requires

NO_CACHE = {"Cache-Control": "no-store"}


def register_status_routes(server: flask.Flask, service: ProcessingService, settings: Settings) -> None:
    """Add the two routes to the Flask server under the Dash app (`app.server`). The service carries
    the liveness settings (`ProcessingService.from_settings`); `settings` is in the signature so later
    options need no new parameter."""

    @server.get("/status")
    @requires(Role.PUBLIC)  # other sites poll it without a login, as they polled the original
    def status() -> flask.Response:
        problems = service.problems()
        if problems:
            body = "Not alive:\n" + "\n".join(problems) + "\n"
            return flask.Response(body, status=500, mimetype="text/plain", headers=NO_CACHE)
        return flask.Response("Alive", status=200, mimetype="text/plain", headers=NO_CACHE)

    @server.get("/api/status")
    @requires(Role.VIEWER)  # the control-room kiosk may read it too
    def api_status() -> flask.Response:
        response = flask.jsonify(service.system_status().to_dict())
        response.headers.update(NO_CACHE)
        return response

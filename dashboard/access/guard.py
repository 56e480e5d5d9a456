"""One check before every request of the dashboard server: who asks, what the route (and, for Dash's
update endpoint, the callback) needs, and CSRF on every state-changing request.

Order: kiosk token (`/control-room?kiosk=...`), the route's role (PUBLIC needs nothing; others need a
login, else a redirect to /login for pages and 401 for the rest; too low a role is 403), CSRF for any
method but GET/HEAD/OPTIONS (except the push route, which machines call with a token), then the
callback's role for `POST /_dash-update-component`. Every refusal is logged (who, address, what; never
a password or token) and counted in the access ledger.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import dash
import flask
import flask_login
from dash.exceptions import DependencyException
from flask import Flask, Response, request
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from dashboard.access import callbacks, identity
from dashboard.access.identity import LOCAL_ADMIN, NOBODY, Identity, current_identity
from dashboard.access.pages_html import refusal_page
from dashboard.access.policy import local_mode
from pipeline.auth.limiter import AccessLedger
from pipeline.auth.roles import Role
from pipeline.auth.secret import load_or_create_secret
from pipeline.auth.users import UsersFile
from pipeline.settings import Settings
from pipeline.temp_cleanup import remove_stale_temp_files
from pipeline.web.access import PUSH, READ, required_role, token_authorizer
from pipeline.web.responses import error_response

log = logging.getLogger("overwatch.access")

CSRF_COOKIE = "overwatch_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPDATE_ENDPOINT = "/_dash-update-component"
PAGE_ENDPOINTS = frozenset({"/", "/<path:path>"})
KIOSK_PATHS = frozenset({"/control-room"})
# Dash's own routes, which we cannot decorate: static files need nothing, the app's skeleton and its
# callbacks need a login (each callback then needs its own role, checked separately).
DASH_ENDPOINT_ROLES: dict[str, Role] = {
    "static": Role.PUBLIC,
    "_dash_assets.static": Role.PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": Role.PUBLIC,
    "/_favicon.ico": Role.PUBLIC,
    "/health": Role.PUBLIC,
    "/_dash-layout": Role.VIEWER,
    "/_dash-dependencies": Role.VIEWER,
    "/_reload-hash": Role.VIEWER,
    UPDATE_ENDPOINT: Role.VIEWER,
}
# The data API's READ is a shifter's; PUSH is for machines with the push token.
SEAM_ROLES = {READ: Role.SHIFTER}


class AccessControl:
    """Installed on one Dash app by `install`; holds the users file, the ledger and the page table."""

    def __init__(self, app: dash.Dash, settings: Settings, page_role: Callable[[str], Role]) -> None:
        self.app = app
        self.settings = settings
        self.page_role = page_role
        self.users = UsersFile(settings.users_file)
        self.ledger = AccessLedger(settings.data_dir)
        self.push_authorizer = token_authorizer(settings.push_token)
        self.csrf = CSRFProtect()

    # ---- who ----

    def is_local(self) -> bool:
        return local_mode(self.settings)

    def load_session(self, session_id: str) -> Identity | None:
        kind, _, rest = session_id.partition(":")
        if kind == identity.USER:
            name, _, fingerprint = rest.rpartition(":")
            record = self.users.get(name)
            if record is not None and hmac.compare_digest(record.fingerprint, fingerprint):
                return Identity(record.name, record.role, identity.USER, session_id)
        elif kind == identity.KIOSK and self.settings.kiosk_token:
            kiosk = identity.kiosk_identity(self.settings.kiosk_token)
            if hmac.compare_digest(kiosk.session_id, session_id):
                return kiosk
        return None

    # ---- what a request needs ----

    def route_role(self) -> Role | str | None:
        endpoint = request.endpoint or ""
        if endpoint in PAGE_ENDPOINTS:
            return self.page_role(request.path)
        if endpoint in DASH_ENDPOINT_ROLES:
            return DASH_ENDPOINT_ROLES[endpoint]
        declared = required_role(flask.current_app.view_functions.get(endpoint))
        if isinstance(declared, Role) or declared == PUSH:
            return declared
        return SEAM_ROLES.get(declared) if declared is not None else None

    def seam_authorizer(self, role: str, incoming: Any) -> Response | None:
        """The authorizer of `pipeline.web.access` for the API blueprints: the same rule as `check`
        (which has already run for the request), so the blueprints' own hooks agree with it."""
        if role == PUSH:
            return self.push_authorizer(role, incoming)
        needed = SEAM_ROLES.get(role)
        if needed is None:
            return error_response(403, f"unknown access role {role!r}")
        if current_identity().role < needed:
            return error_response(403, f"refused: needs the {needed.label} role")
        return None

    # ---- the check ----

    def check(self) -> Response | None:
        if request.endpoint is None:
            return None  # no route: Flask answers 404/405 itself
        if request.args.get("kiosk") is not None and request.path in KIOSK_PATHS:
            return self.kiosk_login()
        role = self.route_role()
        if role is None:
            return self.refuse(403, "no_role", f"route {request.endpoint} declares no access role")
        if role == PUSH:
            return self.push_authorizer(PUSH, request)  # machines: a token, no session, no CSRF
        who = current_identity()
        if role > Role.PUBLIC and not who.is_authenticated:
            return self.login_required()
        if who.role < role:
            return self.refuse(403, "role_refused", f"{request.path} needs the {role.label} role", who)
        if request.method not in SAFE_METHODS:
            try:
                self.csrf.protect()
            except CSRFError as error:
                reason = f"CSRF token missing or invalid ({error.description}): reload the page"
                return self.refuse(400, "csrf_refused", reason, who)
        if request.endpoint == UPDATE_ENDPOINT:
            needed, what = callbacks.required_role(self.app, request.get_json(silent=True))
            if who.role < needed:
                return self.refuse(403, "role_refused", f"{what} needs the {needed.label} role", who)
        return None

    def kiosk_login(self) -> Response:
        token = request.args.get("kiosk", "")
        expected = self.settings.kiosk_token
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return self.refuse(403, "kiosk_refused", "wrong kiosk token, or no kiosk configured")
        flask.session.clear()
        flask_login.login_user(identity.kiosk_identity(expected))
        flask.session.permanent = True
        self.ledger.count("kiosk_login")
        log.info("kiosk login from %s", request.remote_addr)
        # The token leaves the address bar (and the browser history) at once.
        rest = {key: value for key, value in request.args.items() if key != "kiosk"}
        return flask.redirect(request.path + (f"?{urlencode(rest)}" if rest else ""))

    def login_required(self) -> Response:
        self.ledger.count("login_required")
        if request.method == "GET" and request.endpoint in PAGE_ENDPOINTS:
            target = request.full_path.rstrip("?")
            return flask.redirect(f"/login?{urlencode({'next': target})}")
        return error_response(401, "log in first: this needs a session (POST /login)")

    def refuse(self, status: int, counter: str, message: str, who: Identity = NOBODY) -> Response:
        self.ledger.count(counter)
        log.warning(
            "refused %s %s for %s (%s) from %s: %s",
            request.method, request.path, who.name, who.role.label, request.remote_addr, message,
        )  # fmt: skip
        if request.method == "GET" and (request.endpoint in PAGE_ENDPOINTS or counter == "kiosk_refused"):
            return Response(refusal_page(status, message, who), status=status, mimetype="text/html")
        return error_response(status, f"refused: {message}")

    def set_csrf_cookie(self, response: Response) -> Response:
        """The page's JavaScript sends this token back in X-CSRFToken with every POST (assets/csrf.js);
        Flask-WTF checks it against the session."""
        page = request.endpoint in PAGE_ENDPOINTS or request.endpoint == "/_dash-layout"
        if page and request.method == "GET" and response.status_code < 400:
            response.set_cookie(
                CSRF_COOKIE, generate_csrf(), secure=self.settings.https, httponly=False, samesite="Strict"
            )
        return response


def install(app: dash.Dash, settings: Settings, page_role: Callable[[str], Role]) -> AccessControl:
    """Sessions, login manager, CSRF and the per-request check on `app.server`."""
    control = AccessControl(app, settings, page_role)
    server: Flask = app.server
    # The dashboard writes the secret, users, thresholds, references, mutes and pushed snapshots.
    remove_stale_temp_files(settings.data_dir, [Path(settings.users_file).parent])
    server.secret_key = load_or_create_secret(settings.data_dir)
    server.config.update(
        SESSION_COOKIE_NAME="overwatch_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax: a link from the logbook still opens a logged-in page
        SESSION_COOKIE_SECURE=settings.https,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        # A shift's page stays open for hours: the token lives as long as the session.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in AccessControl.check, after the role
    )
    control.csrf.init_app(server)
    manager = flask_login.LoginManager()
    manager.init_app(server)
    manager.anonymous_user = lambda: NOBODY
    manager.user_loader(control.load_session)

    @manager.request_loader
    def local_admin(_request: Any) -> Identity | None:
        return LOCAL_ADMIN if control.is_local() else None

    @server.errorhandler(DependencyException)
    def not_a_served_file(_error: DependencyException) -> Response:
        # Dash serves only the files its components registered; a crafted path is a 404, not a 500.
        control.ledger.count("bad_path")
        log.warning("refused %s from %s: not a served file", request.path[:200], request.remote_addr)
        return error_response(404, "no such file")

    server.before_request_funcs.setdefault(None, []).insert(0, control.check)
    server.after_request(control.set_csrf_cookie)
    server.extensions["overwatch.access"] = control
    return control

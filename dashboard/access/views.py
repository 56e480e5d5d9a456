"""The login, logout and user-administration routes (server-rendered, no Dash).

`POST /login` checks the lockout first (no password is verified while a name or address is locked),
then the password; a failure says only "wrong user name or password" and counts against both the name
and the address. `POST /logout` (CSRF-protected like every POST) ends the session. `/admin/users`
lists, adds, changes and removes users (admin only).
"""

from __future__ import annotations

import logging

import flask
import flask_login
from flask import Flask, Response, request
from flask_wtf.csrf import generate_csrf

from dashboard.access.guard import AccessControl
from dashboard.access.identity import USER, Identity, current_identity
from dashboard.access.pages_html import admin_page, login_page
from pipeline.auth.roles import Role
from pipeline.auth.users import UsersFileError
from pipeline.web.access import requires

log = logging.getLogger("overwatch.access")
DEFAULT_TARGET = "/runs"


def safe_target(target: str | None) -> str:
    """Only a path on this site (no scheme, no '//host', no backslash tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_TARGET
    return target


def register_access_routes(server: Flask, control: AccessControl) -> None:
    @server.route("/login", methods=["GET", "POST"])
    @requires(Role.PUBLIC)
    def login() -> Response | str:
        target = safe_target(request.values.get("next"))
        if control.is_local() or current_identity().kind == USER:
            return flask.redirect(target)
        if request.method == "GET":
            return login_page(generate_csrf(), target)
        name = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        keys = [f"user:{name.lower()}", f"addr:{request.remote_addr}"]
        locked_s = control.ledger.locked_for_s(keys)
        if locked_s > 0:
            control.ledger.count("login_locked")
            log.warning(
                "login for %r from %s refused: locked %.0f s more", name, request.remote_addr, locked_s
            )
            message = f"Too many failed logins for this name or address: try again in {locked_s:.0f} s."
            return Response(login_page(generate_csrf(), target, message, name=name), status=429)
        record = control.users.verify(name, password) if name and password else None
        if record is None:
            lock_s = control.ledger.record_failure(keys)
            control.ledger.count("login_failed")
            log.warning(
                "failed login for %r from %s%s",
                name,
                request.remote_addr,
                f" (locked {lock_s:.0f} s)" if lock_s else "",
            )
            return Response(
                login_page(generate_csrf(), target, "Wrong user name or password.", name=name), status=401
            )
        control.ledger.clear(keys[0])
        control.ledger.count("login_ok")
        flask.session.clear()  # nothing from before the login survives it
        flask_login.login_user(
            Identity(record.name, record.role, USER, f"{USER}:{record.name}:{record.fingerprint}")
        )
        flask.session.permanent = True
        log.info("login %s (%s) from %s", record.name, record.role.label, request.remote_addr)
        return flask.redirect(target)

    @server.post("/logout")
    @requires(Role.PUBLIC)
    def logout() -> Response:
        who = current_identity()
        flask_login.logout_user()
        flask.session.clear()
        if who.is_authenticated:
            log.info("logout %s from %s", who.name, request.remote_addr)
        return Response(
            login_page(generate_csrf(), DEFAULT_TARGET, "Logged out.", kind="success"), status=200
        )

    @server.route("/admin/users", methods=["GET", "POST"])
    @requires(Role.ADMIN)
    def admin_users() -> Response | str:
        message, status = "", 200
        if request.method == "POST":
            message, status = _change_users(control, request.form)
        page = admin_page(
            generate_csrf(),
            sorted(control.users.users().values(), key=lambda r: r.name),
            control.ledger.counters(),
            current_identity().name,
            message,
        )
        return Response(page, status=status, mimetype="text/html")


def _change_users(control: AccessControl, form) -> tuple[str, int]:
    action, name = form.get("action", ""), form.get("name", "").strip()
    me = current_identity().name
    try:
        if action == "set":
            existing = control.users.get(name)
            role = Role.parse(form.get("role", "")) if existing is None else None
            control.users.set_user(name, role, form.get("password") or None)
            result = f"{'password of ' + name + ' set' if existing else name + ' added'}"
        elif action == "role":
            control.users.set_user(name, role=Role.parse(form.get("role", "")))
            result = f"{name} is now {form.get('role')}"
        elif action == "remove":
            if name == me:
                raise UsersFileError("you cannot remove your own account")
            control.users.remove(name)
            result = f"{name} removed"
        else:
            raise UsersFileError(f"unknown action {action!r}")
    except (UsersFileError, ValueError) as error:
        return f"Not done: {error}", 400
    log.info("admin %s: %s", me, result)
    return result, 200

"""Who may call which HTTP route: every route declares a role, and one authorizer decides per request.

Routes say what they need with `@requires(READ)` (the data API: read-only) or `@requires(PUSH)` (the
push receiver: stores data). `install_access_checks` runs the authorizer before every request of a
blueprint; a route that declares no role is refused, so a new route cannot be open by mistake.

The default authorizer (`token_authorizer`) lets anyone read and asks pushes for the push token
(`Authorization: Bearer <token>`, or the original DQM receiver's `token` header), compared in constant
time and never echoed or logged. Login and roles plug in by passing another authorizer to
`register_api_routes`, e.g. one that checks the session's roles for READ and defers PUSH to this one.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Flask, Request, Response, current_app, request

from pipeline.web.responses import error_response

READ = "read"  # looks at data, changes nothing
PUSH = "push"  # stores data

# (role, request) -> None to let the request through, or the response that refuses it.
Authorizer = Callable[[str, Request], Response | None]

View = TypeVar("View", bound=Callable[..., object])
_ROLE_ATTRIBUTE = "overwatch_required_role"


def requires(role: str) -> Callable[[View], View]:
    """Declare the role a route needs (decorate the view function, under the route decorator)."""

    def mark(view: View) -> View:
        setattr(view, _ROLE_ATTRIBUTE, role)
        return view

    return mark


def required_role(view: Callable[..., object] | None) -> str | None:
    return getattr(view, _ROLE_ATTRIBUTE, None)


def install_access_checks(blueprint: Blueprint, authorizer: Authorizer) -> None:
    """Run `authorizer` before every request the blueprint serves, with the role its route declares."""

    @blueprint.before_request
    def check_access() -> Response | None:
        role = required_role(current_app.view_functions.get(request.endpoint or ""))
        if role is None:
            return error_response(403, f"route {request.endpoint} declares no access role")
        return authorizer(role, request)


def routes_by_role(app: Flask) -> dict[str, list[str]]:
    """'METHODS /rule' of every route that declares a role, per role: what a role check must cover."""
    routes: dict[str, list[str]] = {}
    for rule in app.url_map.iter_rules():
        role = required_role(app.view_functions.get(rule.endpoint))
        if role is not None:
            methods = ",".join(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
            routes.setdefault(role, []).append(f"{methods} {rule.rule}")
    return {role: sorted(rules) for role, rules in routes.items()}


def presented_token(incoming: Request) -> str | None:
    """The token a request carries: `Authorization: Bearer <token>`, else the original's `token` header."""
    authorization = incoming.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return incoming.headers.get("token") or None


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected token matches nothing."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def token_authorizer(push_token: str) -> Authorizer:
    """Anyone may READ; PUSH needs `push_token`, and with no token set pushing is switched off (404)."""

    def authorize(role: str, incoming: Request) -> Response | None:
        if role == READ:
            return None
        if role != PUSH:
            return error_response(403, f"unknown access role {role!r}")
        if not push_token:
            message = "the HTTP push receiver is off: set OVERWATCH_PUSH_TOKEN to switch it on"
            return error_response(404, message)
        if not token_matches(presented_token(incoming), push_token):
            # Says what was wrong, never what was sent or expected.
            message = "missing or wrong push token: send 'Authorization: Bearer <token>'"
            return error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="overwatch push"'})
        return None

    return authorize
